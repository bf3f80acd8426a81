use std::path::PathBuf;

/// Every failure of the data layer. Each variant names the file and where in it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A text file (label, calib, PCD header) has a bad line.
    #[error("{path}:{line}: {msg}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        msg: String,
    },
    /// A binary file is malformed at a byte offset.
    #[error("{path} at byte {offset}: {msg}")]
    Bytes {
        /// The file.
        path: PathBuf,
        /// Byte offset of the problem.
        offset: u64,
        /// What was wrong.
        msg: String,
    },
    /// A problem that concerns the file as a whole.
    #[error("{path}: {msg}")]
    File {
        /// The file or folder.
        path: PathBuf,
        /// What was wrong.
        msg: String,
    },
}

/// Result of the data layer.
pub type Result<T> = std::result::Result<T, DataError>;
