//! The replay report as two PNGs (plotters' bitmap backend):
//!
//! - `recall-by-scenario.png`: one bar per scenario, the share of its
//!   attack sources enforced (blue) or of its benign sources acted on
//!   (red), each labelled `enforced of sources`;
//! - `time-to-enforcement.png`: the share of all attack sources enforced
//!   within t of their first packet, t on a log scale. The curve ends at
//!   the share enforced at all; a dashed line marks 5 ms.

use std::path::{Path, PathBuf};

use plotters::{
    prelude::*,
    style::text_anchor::{HPos, Pos, VPos},
};

use super::Report;
use crate::plot::{FAMILY, register_font};

/// The file names `write_plots` uses in its directory.
pub const RECALL_PNG: &str = "recall-by-scenario.png";
pub const TTE_PNG: &str = "time-to-enforcement.png";

/// At most this many scenario bars (an image 110 + 26 px per bar tall).
pub const MAX_BARS: usize = 120;

const ATTACK_BAR: RGBColor = RGBColor(45, 105, 190);
const BENIGN_BAR: RGBColor = RGBColor(200, 55, 45);

/// Drawing failed: the file and what plotters said.
#[derive(Debug, thiserror::Error)]
#[error("plot {path}: {message}")]
pub struct PlotError {
    pub path: PathBuf,
    pub message: String,
}

fn err(path: &Path) -> impl Fn(&dyn std::fmt::Display) -> PlotError + '_ {
    move |e| PlotError {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Writes both plots into `dir` (created if missing); returns their paths.
pub fn write_plots(report: &Report, dir: &Path) -> Result<[PathBuf; 2], PlotError> {
    std::fs::create_dir_all(dir).map_err(|e| err(dir)(&e))?;
    let recall = dir.join(RECALL_PNG);
    recall_png(report, &recall)?;
    let tte = dir.join(TTE_PNG);
    tte_png(report, &tte)?;
    Ok([recall, tte])
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// Per-scenario bars, the report's first scenario (attacks come first) on
/// top.
pub fn recall_png(report: &Report, path: &Path) -> Result<(), PlotError> {
    register_font();
    let e = err(path);
    // A labels file may name any number of scenarios; the image's height
    // grows with them, so past MAX_BARS only the first are drawn (attack
    // scenarios come first) and the caption says so.
    let rows = &report.scenarios[..report.scenarios.len().min(MAX_BARS)];
    let n = rows.len().max(1);
    // Scenario i's bar spans y ∈ [top(i) - 0.85, top(i) - 0.15].
    let top = |i: usize| (n - i) as f64;
    let height = 110 + 26 * n as u32;
    let root = BitMapBackend::new(path, (760, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut caption = format!(
        "Attack sources enforced {} of {}, benign acted on {} of {}",
        report.attack_enforced,
        report.attack_sources,
        report.benign_acted_on,
        report.benign_sources
    );
    if rows.len() < report.scenarios.len() {
        caption += &format!(
            " (first {MAX_BARS} of {} scenarios)",
            report.scenarios.len()
        );
    }
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, (FAMILY, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(170)
        .build_cartesian_2d(0f64..120f64, 0f64..n as f64)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_label_formatter(&|v| {
            // Room right of 100 % is for the counts, not the axis.
            if *v <= 100.0 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        })
        .x_desc("% of the scenario's sources enforced (attack) or acted on (benign)")
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 15))
        .draw()
        .map_err(|x| e(&x))?;
    chart
        .draw_series(rows.iter().enumerate().map(|(i, s)| {
            let colour = if s.attack { ATTACK_BAR } else { BENIGN_BAR };
            Rectangle::new(
                [
                    (0.0, top(i) - 0.85),
                    (share(s.enforced, s.sources), top(i) - 0.15),
                ],
                colour.filled(),
            )
        }))
        .map_err(|x| e(&x))?;
    let font = (FAMILY, 13).into_font();
    chart
        .draw_series(rows.iter().enumerate().map(|(i, s)| {
            Text::new(
                format!("{} of {}", s.enforced, s.sources),
                (share(s.enforced, s.sources) + 1.5, top(i) - 0.3),
                font.clone(),
            )
        }))
        .map_err(|x| e(&x))?;
    // Scenario names left of the axis, right-aligned on their bars.
    let name = TextStyle::from((FAMILY, 14).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
    for (i, s) in rows.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(0.0, top(i) - 0.5));
        root.draw(&Text::new(s.scenario.as_str(), (x - 8, y), name.clone()))
            .map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))
}

/// The share of attack sources enforced within t, t from 0.1 ms to the
/// slowest enforcement (at least 10 s), log scale.
pub fn tte_png(report: &Report, path: &Path) -> Result<(), PlotError> {
    register_font();
    let e = err(path);
    let mut tte: Vec<f64> = report
        .sources
        .iter()
        .filter(|s| s.attack)
        .filter_map(|s| s.first.as_ref().map(|f| f.after_ms.max(0.1)))
        .collect();
    tte.sort_by(f64::total_cmp);
    let total = report.attack_sources.max(1) as f64;
    let right = tte.last().copied().unwrap_or(0.0).max(10_000.0) * 1.5;
    let root = BitMapBackend::new(path, (760, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Time to enforcement, {} of {} attack sources enforced",
                tte.len(),
                report.attack_sources
            ),
            (FAMILY, 20),
        )
        .margin(14)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((0.1f64..right).log_scale(), 0f64..100.5f64)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("ms from the source's first packet (log scale)")
        .y_desc("% of attack sources enforced")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .x_label_formatter(&|v| {
            if *v >= 1000.0 {
                format!("{:.0} s", v / 1000.0)
            } else {
                format!("{v} ms")
            }
        })
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 15))
        .draw()
        .map_err(|x| e(&x))?;
    chart
        .draw_series(DashedLineSeries::new(
            [(5.0, 0.0), (5.0, 100.0)],
            6,
            4,
            BLACK.mix(0.5).stroke_width(1),
        ))
        .map_err(|x| e(&x))?;
    // A step curve: flat until each enforcement, then up by one source.
    let mut steps = vec![(0.1, 0.0)];
    for (k, &t) in tte.iter().enumerate() {
        steps.push((t, 100.0 * k as f64 / total));
        steps.push((t, 100.0 * (k + 1) as f64 / total));
    }
    steps.push((right, 100.0 * tte.len() as f64 / total));
    chart
        .draw_series(LineSeries::new(steps, ATTACK_BAR.stroke_width(3)))
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::{Counts, SourceOutcome, report::tests::src};

    fn pixels_of(path: &Path, c: RGBColor) -> usize {
        let img = image::open(path).unwrap().to_rgb8();
        img.pixels().filter(|p| p.0 == [c.0, c.1, c.2]).count()
    }

    #[test]
    fn bars_are_as_long_as_the_shares_and_the_curve_is_drawn() {
        let report = Report::new(
            1,
            16,
            Counts::default(),
            vec![
                src(1, "full", true, Some((2.0, 5))),
                src(2, "full", true, Some((40.0, 5))),
                src(3, "half", true, Some((3000.0, 5))),
                src(4, "half", true, None),
                src(5, "benign_web", false, Some((900.0, 5))),
                src(6, "benign_web", false, None),
            ],
        );
        let dir = tempfile::tempdir().unwrap();
        // PN_PLOT_DIR keeps the images for a look.
        let keep = std::env::var_os("PN_PLOT_DIR").map(PathBuf::from);
        let base = keep.as_deref().unwrap_or(dir.path()).join("replay");
        let [recall, tte] = write_plots(&report, &base).unwrap();
        assert_eq!(recall, base.join(RECALL_PNG));
        // Blue: a 100 % bar and a 50 % bar; red: one 50 % bar. Equal
        // heights, so red is a third of blue, give or take the edges.
        let blue = pixels_of(&recall, ATTACK_BAR) as f64;
        let red = pixels_of(&recall, BENIGN_BAR) as f64;
        assert!(red > 1_000.0, "{red}");
        let ratio = red / blue;
        assert!((0.28..0.39).contains(&ratio), "red {red} / blue {blue}");
        // The first scenario's bar is on top: the topmost blue row is the
        // 100 % bar, twice as wide as the 50 % one.
        let img = image::open(&recall).unwrap().to_rgb8();
        let blue_in = |y: u32| {
            (0..img.width())
                .filter(|&x| img.get_pixel(x, y).0 == [ATTACK_BAR.0, ATTACK_BAR.1, ATTACK_BAR.2])
                .count()
        };
        let widths: Vec<usize> = (0..img.height()).map(blue_in).filter(|&w| w > 0).collect();
        let (first, last) = (widths[0] as f64, widths[widths.len() - 1] as f64);
        assert!((1.8..2.2).contains(&(first / last)), "{first} vs {last}");
        // The curve: three of four attack sources, drawn in the bar blue.
        let curve = pixels_of(&tte, ATTACK_BAR);
        assert!(curve > 500, "{curve}");
        let img = image::open(&tte).unwrap().to_rgb8();
        assert_eq!((img.width(), img.height()), (760, 480));
    }

    #[test]
    fn a_labels_file_with_thousands_of_scenarios_draws_the_first_only() {
        let sources: Vec<SourceOutcome> = (0..2000u32)
            .map(|i| {
                let mut s = src(0, &format!("scenario_{i:04}"), true, Some((1.0, 5)));
                s.source = std::net::Ipv4Addr::from(0xC000_0000u32 + i).to_string();
                s
            })
            .collect();
        let report = Report::new(1, 16, Counts::default(), sources);
        let dir = tempfile::tempdir().unwrap();
        let [recall, _] = write_plots(&report, dir.path()).unwrap();
        let img = image::open(&recall).unwrap().to_rgb8();
        assert_eq!(img.height(), 110 + 26 * MAX_BARS as u32);
    }

    #[test]
    fn an_empty_report_still_draws() {
        let report = Report::new(1, 16, Counts::default(), Vec::new());
        let dir = tempfile::tempdir().unwrap();
        let [recall, tte] = write_plots(&report, dir.path()).unwrap();
        assert!(recall.exists() && tte.exists());
        assert_eq!(pixels_of(&recall, ATTACK_BAR), 0);
    }

    #[test]
    fn an_unwritable_directory_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let report = Report::new(1, 16, Counts::default(), Vec::new());
        let e = write_plots(&report, &file).unwrap_err();
        assert!(e.to_string().contains("not-a-dir"), "{e}");
    }
}
