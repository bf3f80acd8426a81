//! `lidarq kernels [--bench] [--json]`: which kernel path this CPU runs and why, and with
//! `--bench` int8 vs fp32 3×3 convolution throughput at the PointPillars backbone shapes,
//! for both algorithms (im2col GEMM, Winograd F(2×2, 3×3)), measured in one run, against
//! this machine's measured arithmetic peaks. Throughput counts the direct convolution's
//! operations for both, so Winograd's (2.25× fewer multiplies) can pass the peak.

use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use lidarq_quant::kernels::bench::{BACKBONE_3X3, LayerData};
use lidarq_quant::kernels::{ConvAlgorithm, cpu, peak};
use serde::Serialize;

/// Arguments of `lidarq kernels`.
#[derive(clap::Args)]
pub struct Args {
    /// Measure int8 and fp32 3×3 convolution throughput at PointPillars shapes.
    #[arg(long)]
    pub bench: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Timed runs per layer and precision (the median is reported).
    #[arg(long, default_value_t = 7)]
    pub runs: usize,
}

#[derive(Serialize)]
struct Report {
    selected: String,
    best_available: String,
    available: Vec<String>,
    reasons: Vec<String>,
    features: Vec<&'static str>,
    /// Logical CPUs (the kernels' rayon pool uses all of them unless RAYON_NUM_THREADS says
    /// otherwise).
    cpus: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    bench: Option<Bench>,
}

#[derive(Serialize)]
struct Bench {
    /// Measured peaks (`null` on the scalar path).
    peak_fp32_gflops: Option<f64>,
    peak_int8_gops: Option<f64>,
    /// The instructions the int8 peak streams.
    peak_int8_via: Option<&'static str>,
    /// Threads the kernels and the peak measurement ran on.
    threads: usize,
    layers: Vec<LayerResult>,
    /// Per layer, int8 vs fp32 each by the algorithm its kernel picks by default.
    defaults: Vec<DefaultResult>,
}

/// One layer as the detector runs it: each precision by its default algorithm
/// (`best_int8_for` on this path, `best_for`), from the same runs as `layers`.
#[derive(Serialize)]
struct DefaultResult {
    layer: String,
    int8_algorithm: &'static str,
    int8_ms: f64,
    fp32_algorithm: &'static str,
    fp32_ms: f64,
    int8_speedup: f64,
}

#[derive(Serialize)]
struct LayerResult {
    layer: String,
    algorithm: &'static str,
    /// The direct convolution's operations (2 per multiply-accumulate).
    gop: f64,
    int8_ms: f64,
    int8_gops: f64,
    fp32_ms: f64,
    fp32_gflops: f64,
    int8_speedup: f64,
    int8_fraction_of_peak: Option<f64>,
    fp32_fraction_of_peak: Option<f64>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let sel = cpu::selection();
    let f = sel.features;
    let features = [
        ("avx2", f.avx2),
        ("fma", f.fma),
        ("f16c", f.f16c),
        ("avx512f", f.avx512f),
        ("avx512bw", f.avx512bw),
        ("avx512vnni", f.avx512vnni),
        ("amx-int8", f.amx_int8),
    ]
    .into_iter()
    .filter_map(|(name, has)| has.then_some(name))
    .collect();
    let bench = if args.bench {
        Some(bench(sel.isa, args.runs.max(1), !args.json)?)
    } else {
        None
    };
    let report = Report {
        selected: sel.isa.to_string(),
        best_available: sel.best_available.to_string(),
        available: cpu::Isa::available()
            .iter()
            .map(ToString::to_string)
            .collect(),
        reasons: sel.reasons.clone(),
        features,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        bench,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(())
}

fn bench(isa: cpu::Isa, runs: usize, progress: bool) -> anyhow::Result<Bench> {
    let bar = if progress {
        ProgressBar::new(
            (BACKBONE_3X3.len() * ConvAlgorithm::ALL.len() * 2 * (runs + 1)) as u64 + 1,
        )
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{msg:>24} [{bar:30}] {pos}/{len}")?.progress_chars("=> "),
    );
    bar.set_message("measuring peaks");
    let peak = peak::measure(isa);
    bar.inc(1);
    let mut layers = Vec::new();
    let mut defaults = Vec::new();
    for (ch, h, w) in BACKBONE_3X3 {
        let name = format!("3x3 {ch}->{ch} @ {h}x{w}");
        bar.set_message(name.clone());
        let data = LayerData::new(ch, h, w)?;
        let results = measure(&data, runs, &bar)?;
        let by = |algorithm: ConvAlgorithm| {
            results
                .iter()
                .find(|r| r.algorithm == algorithm.name())
                .context("an algorithm was not measured")
        };
        let int8 = by(ConvAlgorithm::best_int8_for(&data.shape, isa))?;
        let fp32 = by(ConvAlgorithm::best_for(&data.shape))?;
        defaults.push(DefaultResult {
            layer: name.clone(),
            int8_algorithm: int8.algorithm,
            int8_ms: int8.int8_ms,
            fp32_algorithm: fp32.algorithm,
            fp32_ms: fp32.fp32_ms,
            int8_speedup: fp32.fp32_ms / int8.int8_ms,
        });
        for mut r in results {
            r.layer = name.clone();
            r.int8_fraction_of_peak = peak.map(|p| r.int8_gops / p.int8_gops);
            r.fp32_fraction_of_peak = peak.map(|p| r.fp32_gflops / p.fp32_gflops);
            layers.push(r);
        }
    }
    bar.finish_and_clear();
    Ok(Bench {
        peak_fp32_gflops: peak.map(|p| p.fp32_gflops),
        peak_int8_gops: peak.map(|p| p.int8_gops),
        peak_int8_via: peak.map(|p| p.int8_via),
        threads: peak.map_or(1, |p| p.threads),
        layers,
        defaults,
    })
}

/// int8 and fp32 runs of one layer by each algorithm, all four kernels taking turns so
/// that a load change on the machine hits them alike; the first run of each is a warm-up
/// (page faults, packing buffers). One result per algorithm.
fn measure(data: &LayerData, runs: usize, bar: &ProgressBar) -> anyhow::Result<Vec<LayerResult>> {
    let shape = data.shape;
    let kernels = ConvAlgorithm::ALL
        .iter()
        .map(|&algorithm| data.kernels(algorithm))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out_q = vec![0i8; shape.output_len()];
    let mut out_f = vec![0f32; shape.output_len()];
    let mut times = vec![(Vec::new(), Vec::new()); kernels.len()];
    for i in 0..=runs {
        for ((q, fp), (tq, tf)) in kernels.iter().zip(&mut times) {
            let t = Instant::now();
            q.run(&data.input_u8, &mut out_q).context("int8 conv")?;
            let dq = t.elapsed().as_secs_f64();
            let t = Instant::now();
            fp.run(&data.input_f32, &mut out_f).context("fp32 conv")?;
            let df = t.elapsed().as_secs_f64();
            if i > 0 {
                tq.push(dq);
                tf.push(df);
            }
            bar.inc(2);
        }
    }
    let ops = 2.0 * shape.macs() as f64;
    Ok(ConvAlgorithm::ALL
        .iter()
        .zip(&mut times)
        .map(|(algorithm, (tq, tf))| {
            let (int8_s, fp32_s) = (median(tq), median(tf));
            LayerResult {
                layer: String::new(),
                algorithm: algorithm.name(),
                gop: ops / 1e9,
                int8_ms: int8_s * 1e3,
                int8_gops: ops / int8_s / 1e9,
                fp32_ms: fp32_s * 1e3,
                fp32_gflops: ops / fp32_s / 1e9,
                int8_speedup: fp32_s / int8_s,
                int8_fraction_of_peak: None,
                fp32_fraction_of_peak: None,
            }
        })
        .collect())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn print_text(r: &Report) {
    println!(
        "kernel path: {} (best available: {})",
        r.selected, r.best_available
    );
    println!("paths this CPU can run: {}", r.available.join(", "));
    println!("CPU features: {}", r.features.join(" "));
    for reason in &r.reasons {
        println!("  - {reason}");
    }
    println!("logical CPUs: {}", r.cpus);
    let Some(b) = &r.bench else { return };
    println!("threads: {}", b.threads);
    let pct = |f: Option<f64>| f.map_or("-".to_string(), |f| format!("{:.0}%", f * 100.0));
    if let (Some(f), Some(i), Some(via)) = (b.peak_fp32_gflops, b.peak_int8_gops, b.peak_int8_via) {
        println!("measured peaks: fp32 {f:.1} GFLOP/s (FMA), int8 {i:.1} GOP/s ({via})");
    }
    println!("(GOP/s and GFLOP/s count the direct convolution's operations for both algorithms)");
    println!(
        "{:<26} {:<18} {:>6} {:>9} {:>9} {:>6} {:>9} {:>10} {:>6} {:>7}",
        "layer",
        "algorithm",
        "GOP",
        "int8 ms",
        "GOP/s",
        "peak",
        "fp32 ms",
        "GFLOP/s",
        "peak",
        "int8 ×"
    );
    for l in &b.layers {
        println!(
            "{:<26} {:<18} {:>6.2} {:>9.2} {:>9.1} {:>6} {:>9.2} {:>10.1} {:>6} {:>7.2}",
            l.layer,
            l.algorithm,
            l.gop,
            l.int8_ms,
            l.int8_gops,
            pct(l.int8_fraction_of_peak),
            l.fp32_ms,
            l.fp32_gflops,
            pct(l.fp32_fraction_of_peak),
            l.int8_speedup
        );
    }
    println!("each precision by its default algorithm (as the detector runs the layer):");
    println!(
        "{:<26} {:<18} {:>9} {:<18} {:>9} {:>7}",
        "layer", "int8 algorithm", "int8 ms", "fp32 algorithm", "fp32 ms", "int8 ×"
    );
    for d in &b.defaults {
        println!(
            "{:<26} {:<18} {:>9.2} {:<18} {:>9.2} {:>7.2}",
            d.layer, d.int8_algorithm, d.int8_ms, d.fp32_algorithm, d.fp32_ms, d.int8_speedup
        );
    }
}
