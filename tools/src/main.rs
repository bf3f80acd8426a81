//! `lidarq`: LiDAR 3D object detection with an int8 backbone on the CPU — the command line.
//! Thin by design: parse arguments, call the crates, print. Each subcommand lives in
//! `cmd/<name>.rs`.

mod cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "lidarq",
    version,
    about = "LiDAR 3D detection with an int8 backbone, on the CPU"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Describe a point cloud, label, calib file or KITTI/sequence folder.
    Info(cmd::info::Args),
    /// KITTI AP (3D/BEV/2D/AOS, R40 or R11) of result files, as the reference evaluation.
    Eval(cmd::eval::Args),
    /// Generate a synthetic LiDAR dataset (KITTI layout) or drive.
    Gen(cmd::r#gen::Args),
    /// Show the kernel path chosen for this CPU; --bench measures int8 vs fp32 conv.
    Kernels(cmd::kernels::Args),
    /// Calibrate a model on KITTI frames and write a quantized (int8/fp16) model file.
    Calibrate(cmd::calibrate::Args),
    /// Per-layer int8 sensitivity (SQNR, AP drop); --budget picks the layers to keep in fp16.
    Sensitivity(cmd::sensitivity::Args),
    /// Time each detector stage on a realistic frame (median, p95, GFLOP/s).
    Bench(cmd::bench::Args),
    /// Run the detector on point clouds and write KITTI result files.
    Infer(cmd::infer::Args),
    /// Convert an OpenPCDet checkpoint (.pth) into a model folder.
    Import(cmd::import::Args),
    /// Replay a drive log (KITTI, scan folder, ROS 2 MCAP) into Rerun and/or result files.
    Replay(cmd::replay::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(args) => cmd::info::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Gen(args) => cmd::r#gen::run(args),
        Command::Kernels(args) => cmd::kernels::run(args),
        Command::Calibrate(args) => cmd::calibrate::run(args),
        Command::Sensitivity(args) => cmd::sensitivity::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Infer(args) => cmd::infer::run(args),
        Command::Import(args) => cmd::import::run(args),
        Command::Replay(args) => cmd::replay::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by ": ", leaving out a cause whose text the message
/// already ends with (the library errors print their source in their own message).
fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if !text.ends_with(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(lidarq_detector::DetectorError::Io {
            path: "models/x/model.json".into(),
            source: io,
        });
        assert_eq!(describe(&e), "models/x/model.json: no such file");
        let e = e.context("loading the model");
        assert_eq!(
            describe(&e),
            "loading the model: models/x/model.json: no such file"
        );
    }
}
