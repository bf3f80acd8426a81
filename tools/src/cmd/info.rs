//! `lidarq info PATH`: what the data layer reads from a file or folder.

use std::path::PathBuf;

/// Arguments of `lidarq info`.
#[derive(clap::Args)]
pub struct Args {
    /// A point cloud (.bin, .pcd, .pcd.bin), label, calib file, or a KITTI / sequence folder.
    pub path: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::bail!("{}: info is not implemented yet", args.path.display())
}
