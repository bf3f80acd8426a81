//! The report: fits a 100-column terminal, the JSON and Markdown carry every number the
//! table shows, changes are against the first column, plots are PNG files.

use std::path::Path;

use lidarq_eval::GroundTruth;
use lidarq_eval::kitti::{Evaluation, RecallPoints, evaluate};
use lidarq_eval::report::{Column, Report, StageLatency, write_pr_plots};

fn crosscheck() -> Evaluation {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/crosscheck");
    let gt = GroundTruth::open(&root).unwrap();
    let ids = gt.ids(None).unwrap();
    evaluate(&gt.load(&ids, &root.join("results"), false, &|| {}).unwrap())
}

fn column(name: &str, evaluation: Evaluation, ms: f64) -> Column {
    let latency = vec![StageLatency::from_samples("backbone", &[ms, ms * 2.0, ms * 3.0]).unwrap()];
    Column {
        name: name.into(),
        evaluation,
        by_points: None,
        latency,
        model_bytes: Some(19_400_000),
    }
}

#[test]
fn table_fits_100_columns_and_every_number_is_in_json_and_markdown() {
    let e = crosscheck();
    // A second column with one detection set evaluated as it is and another as perfect:
    // the change column must equal the difference.
    let report = Report::new(
        RecallPoints::R40,
        vec![column("fp32", e.clone(), 10.0), column("int8", e, 4.0)],
    )
    .unwrap();
    let table = report.to_table(100);
    for line in table.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} chars: {line}",
            line.chars().count()
        );
    }
    let summary = report.summary();
    let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    let markdown = report.to_markdown();
    let car_3d_mod = summary
        .ap
        .iter()
        .find(|r| r.metric == "3D" && r.class == "Car" && r.difficulty == "moderate")
        .unwrap();
    // R40 moderate Car 3D of the reference on this fixture.
    assert!((car_3d_mod.ap[0].unwrap() - 13.1959).abs() < 1e-4);
    assert_eq!(car_3d_mod.change, vec![Some(0.0)]);
    for row in &summary.ap {
        for v in row.ap.iter().flatten() {
            let shown = format!("{v:.2}");
            assert!(
                table.contains(&shown) && markdown.contains(&shown),
                "{shown} missing"
            );
        }
    }
    let rows = json["summary"]["ap"].as_array().unwrap();
    assert_eq!(rows.len(), summary.ap.len());
    // 4 quantities (3D, BEV, 2D, AOS) × (9 class rows + 3 mAP rows).
    assert_eq!(rows.len(), 48);
    assert_eq!(
        json["summary"]["latency"][0]["columns"][1]["median_ms"],
        8.0
    );
    assert!(table.contains("20.0/30.0") && table.contains("8.0/12.0") && table.contains("19.40"));
    assert!(markdown.contains("| Δ int8 |"));
}

#[test]
fn latency_percentiles() {
    let samples: Vec<f64> = (1..=100).map(f64::from).collect();
    let l = StageLatency::from_samples("voxelize", &samples).unwrap();
    assert_eq!((l.median_ms, l.p95_ms, l.samples), (50.5, 95.0, 100));
    assert!(StageLatency::from_samples("x", &[]).is_none());
}

#[test]
fn pr_plots_are_png_files() {
    let report = Report::new(
        RecallPoints::R11,
        vec![column("predictions", crosscheck(), 1.0)],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = write_pr_plots(&report, dir.path()).unwrap();
    assert_eq!(files.len(), 9);
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", f.display());
        assert!(bytes.len() > 5_000);
    }
}

#[test]
fn long_column_names_widen_the_cells_instead_of_being_cut() {
    let e = crosscheck();
    let names = ["fp32", "int8-minmax", "int8-percentile"];
    let columns = names.iter().map(|n| column(n, e.clone(), 5.0)).collect();
    let table = Report::new(RecallPoints::R40, columns)
        .unwrap()
        .to_table(100);
    let header = table.lines().find(|l| l.starts_with("class")).unwrap();
    assert!(
        header.contains(" fp32 ") && header.contains(" int8-minmax "),
        "{header}"
    );
    // 16 characters: clipped to the widest cell.
    assert!(header.contains(" int8-percent"), "{header}");
    assert!(table.lines().all(|l| l.chars().count() <= 100), "{table}");
}

#[test]
fn reports_are_written_into_folders_that_do_not_exist_yet() {
    let report = Report::new(RecallPoints::R40, vec![column("fp32", crosscheck(), 10.0)]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("out/run1/report.md");
    let json = dir.path().join("out/run2/report.json");
    report.write_markdown(&md).unwrap();
    report.write_json(&json).unwrap();
    assert_eq!(std::fs::read_to_string(&md).unwrap(), report.to_markdown());
    assert_eq!(
        std::fs::read_to_string(&json).unwrap(),
        report.to_json().unwrap()
    );
    // A path under a file cannot be created: the error names it.
    let blocked = md.join("x.md");
    let err = report.write_markdown(&blocked).unwrap_err().to_string();
    assert!(err.contains("report.md"), "{err}");
}
