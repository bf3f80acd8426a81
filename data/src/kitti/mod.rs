//! The KITTI object benchmark: velodyne scans, `label_2` / result files, calib files and
//! the dataset layout.

mod bin;
mod calib_file;
mod dataset;
mod labels;

pub use bin::{encode_bin, parse_bin, read_bin, write_bin};
pub use calib_file::{format_calib, parse_calib, read_calib, write_calib};
pub use dataset::KittiDataset;
pub use labels::{format_labels, parse_labels, read_labels, write_labels};
