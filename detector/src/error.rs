use std::path::PathBuf;

/// Every failure of the detector. Each variant names the file, layer or tensor concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DetectorError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The model config is malformed or inconsistent.
    #[error("{path}: bad model config: {msg}")]
    Config {
        /// The config file (`<preset>` for built-in ones).
        path: PathBuf,
        /// What was wrong.
        msg: String,
    },
    /// The weights file is not a readable safetensors file.
    #[error("{path}: {msg}")]
    WeightsFile {
        /// The weights file.
        path: PathBuf,
        /// What was wrong.
        msg: String,
    },
    /// Tensors are missing, unexpected, mis-shaped or of the wrong dtype — all listed.
    #[error("{path}: {} tensor problem(s):\n  {}", problems.len(), problems.join("\n  "))]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// One line per tensor, e.g. `backbone_2d.blocks.0.1.weight: expected [64, 64, 3, 3], got [64, 64, 1, 1]`.
        problems: Vec<String>,
    },
    /// The input does not fit the model (feature count, coordinates outside the grid, ...).
    #[error("input: {0}")]
    Input(String),
    /// A kernel of the quant crate refused its arguments.
    #[error("layer {layer}: {source}")]
    Kernel {
        /// The graph layer.
        layer: String,
        /// The kernel's error.
        source: lidarq_quant::QuantError,
    },
    /// A quantized model is inconsistent (missing parameters, unsupported precision).
    #[error("layer {layer}: {msg}")]
    Quantized {
        /// The graph layer (or tensor).
        layer: String,
        /// What was wrong.
        msg: String,
    },
    /// A quantized-model artifact is malformed.
    #[error("{path}: bad quantized model: {msg}")]
    Artifact {
        /// The artifact file.
        path: PathBuf,
        /// What was wrong (tensor or metadata key named).
        msg: String,
    },
    /// Calibration could not pick parameters.
    #[error("calibration of {tensor}: {source}")]
    Calibration {
        /// The graph tensor.
        tensor: String,
        /// The quant crate's error.
        source: lidarq_quant::QuantError,
    },
    /// The voxelizer refused its config or the cloud.
    #[error(transparent)]
    Voxel(#[from] lidarq_voxelizer::VoxelError),
    /// Reading or writing a data file failed.
    #[error(transparent)]
    Data(#[from] lidarq_data::DataError),
}

/// Result of the detector.
pub type Result<T> = std::result::Result<T, DetectorError>;

/// The bytes of `path`, or an error naming it.
pub(crate) fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| DetectorError::Io {
        path: path.into(),
        source,
    })
}

/// The text of `path`, or an error naming it.
pub(crate) fn read_text(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| DetectorError::Io {
        path: path.into(),
        source,
    })
}
