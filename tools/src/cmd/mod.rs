//! One module per subcommand.

pub mod bench;
pub mod import;
pub mod infer;
pub mod info;
pub mod kernels;
