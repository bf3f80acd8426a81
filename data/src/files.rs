//! File access and token parsing shared by every format, so that each error names its file.

use crate::{DataError, Result};
use std::path::Path;
use std::str::FromStr;

pub(crate) fn io_error(path: &Path, source: std::io::Error) -> DataError {
    DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| io_error(path, e))
}

pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| io_error(path, e))
}

pub(crate) fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| io_error(path, e))
}

pub(crate) fn line_error(path: &Path, line: usize, msg: impl Into<String>) -> DataError {
    DataError::Line {
        path: path.to_path_buf(),
        line,
        msg: msg.into(),
    }
}

pub(crate) fn file_error(path: &Path, msg: impl Into<String>) -> DataError {
    DataError::File {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// Parses one whitespace-separated token of a text file; `what` names it in the error.
pub(crate) fn parse_token<T: FromStr>(
    token: &str,
    path: &Path,
    line: usize,
    what: &str,
) -> Result<T> {
    token.parse().map_err(|_| {
        line_error(
            path,
            line,
            format!("{what}: cannot parse {token:?} as a number"),
        )
    })
}

/// Entries of a folder whose names end with one of `suffixes`, sorted by name.
pub(crate) fn list_files(dir: &Path, suffixes: &[&str]) -> Result<Vec<std::path::PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io_error(dir, e))?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_file() && suffixes.iter().any(|s| name.ends_with(s)) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
