//! One module per subcommand.

pub mod bench;
pub mod calibrate;
pub mod demo;
pub mod eval;
pub mod r#gen;
pub mod import;
pub mod infer;
pub mod info;
pub mod kernels;
pub mod replay;
pub mod sensitivity;

use std::path::Path;

use anyhow::Context;

/// Creates the missing parent folders of an output file: outputs are written after the
/// command's work, and failing then for want of `out/` would waste the whole run.
fn create_parent(path: &Path) -> anyhow::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display())),
        None => Ok(()),
    }
}

/// Writes a report or plan the command produced, creating missing parent folders.
fn write_output(path: &Path, text: &str) -> anyhow::Result<()> {
    create_parent(path)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
