use std::path::PathBuf;

/// Every failure of the evaluation crate. Each variant says which file or which input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// Reading labels, results, point clouds or calibration failed in the data layer.
    #[error(transparent)]
    Data(#[from] lidarq_data::DataError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A dataset or prediction folder is not laid out as KITTI's.
    #[error("{path}: {msg}")]
    Layout {
        /// The file or folder.
        path: PathBuf,
        /// What was wrong.
        msg: String,
    },
    /// The inputs of an evaluation do not fit together (frame counts, columns).
    #[error("invalid evaluation input: {0}")]
    Input(String),
    /// Serializing the report failed.
    #[error("{path}: cannot write JSON: {source}")]
    Json {
        /// The output file.
        path: PathBuf,
        /// The serializer's error.
        source: serde_json::Error,
    },
    /// Drawing a precision-recall plot failed.
    #[error("{path}: cannot draw plot: {msg}")]
    Plot {
        /// The output image.
        path: PathBuf,
        /// The backend's message.
        msg: String,
    },
}

/// Result of the evaluation crate.
pub type Result<T> = std::result::Result<T, EvalError>;
