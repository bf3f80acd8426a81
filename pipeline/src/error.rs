//! The pipeline's one error type. Corrupt frames are not errors of the run (they are
//! [`crate::Skip`]s, counted in the summary); these are the failures that stop it: a source
//! that cannot be opened, a sink that cannot write.

use std::path::PathBuf;

/// Every failure of the pipeline crate, with the file, frame or stage it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The data layer failed (reading a KITTI folder, a scan, a label or calib file).
    #[error(transparent)]
    Data(#[from] lidarq_data::DataError),
    /// A file or folder could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An MCAP file is malformed at the container level (records, chunks, compression).
    #[error("{path}: MCAP: {source}")]
    Mcap {
        /// The file.
        path: PathBuf,
        /// What the MCAP reader found.
        source: mcap::McapError,
    },
    /// One message of a log could not be decoded.
    #[error(
        "{path}: message {index} on {topic} (log time {log_time_ns} ns), payload byte {offset}: {msg}"
    )]
    Message {
        /// The log file.
        path: PathBuf,
        /// Topic of the message.
        topic: String,
        /// 0-based index of the message among the topic's messages.
        index: u64,
        /// The message's log time (ns since the epoch).
        log_time_ns: u64,
        /// Byte offset in the message payload where decoding failed.
        offset: usize,
        /// What was wrong.
        msg: String,
    },
    /// A source cannot be used as asked (no point-cloud topic, unknown layout, ...).
    #[error("{path}: {msg}")]
    Source {
        /// The file or folder.
        path: PathBuf,
        /// What was wrong.
        msg: String,
    },
    /// A stage failed on one frame (the frame is skipped with this as its reason).
    #[error("{stage}: {msg}")]
    Stage {
        /// The stage.
        stage: String,
        /// What was wrong.
        msg: String,
    },
    /// A sink failed to write.
    #[error("sink {sink}: {msg}")]
    Sink {
        /// The sink's name.
        sink: String,
        /// What was wrong.
        msg: String,
    },
    /// A pipeline thread panicked (a bug, reported rather than propagated).
    #[error("pipeline thread {thread} panicked")]
    Panicked {
        /// The thread's name.
        thread: String,
    },
}

/// Result of the pipeline crate.
pub type Result<T> = std::result::Result<T, PipelineError>;

pub(crate) fn io_error(path: &std::path::Path, source: std::io::Error) -> PipelineError {
    PipelineError::Io {
        path: path.to_path_buf(),
        source,
    }
}
