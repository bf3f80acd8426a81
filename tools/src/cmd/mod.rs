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
