//! Confusion-matrix and ROC-curve PNGs with plotters' bitmap backend, in
//! the embedded font of [`crate::plot`].

use std::path::Path;

use plotters::prelude::*;

use super::TrainError;
use super::metrics::Confusion;
use crate::plot::{FAMILY, register_font};

fn plot_err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Other(format!("plot {}: {e}", path.display()))
}

/// A 2×2 confusion matrix: rows = actual, columns = predicted.
pub fn confusion_png(c: &Confusion, path: &Path) -> Result<(), TrainError> {
    register_font();
    let root = BitMapBackend::new(path, (640, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let root = root
        .titled("Confusion matrix", (FAMILY, 30))
        .map_err(|e| plot_err(path, e))?;
    let cells = [[c.tn, c.fp], [c.fn_, c.tp]];
    let max = cells.iter().flatten().copied().max().unwrap_or(0).max(1) as f64;
    let names = ["benign", "attack"];
    let (x0, y0, size) = (170i32, 60i32, 190i32);
    for (r, row) in cells.iter().enumerate() {
        for (col, &v) in row.iter().enumerate() {
            let shade = (v as f64 / max * 200.0) as u8;
            let fill = RGBColor(235 - shade, 240 - shade / 2, 255);
            let (x, y) = (x0 + col as i32 * size, y0 + r as i32 * size);
            root.draw(&Rectangle::new(
                [(x, y), (x + size, y + size)],
                fill.filled(),
            ))
            .map_err(|e| plot_err(path, e))?;
            root.draw(&Rectangle::new(
                [(x, y), (x + size, y + size)],
                BLACK.stroke_width(1),
            ))
            .map_err(|e| plot_err(path, e))?;
            let colour = if shade > 120 { WHITE } else { BLACK };
            let style = TextStyle::from((FAMILY, 34).into_font())
                .color(&colour)
                .pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Center,
                ));
            root.draw(&Text::new(
                v.to_string(),
                (x + size / 2, y + size / 2),
                style,
            ))
            .map_err(|e| plot_err(path, e))?;
        }
    }
    let label = TextStyle::from((FAMILY, 22).into_font()).color(&BLACK);
    for (i, n) in names.iter().enumerate() {
        root.draw(&Text::new(
            *n,
            (x0 + i as i32 * size + size / 2 - 30, y0 + 2 * size + 12),
            label.clone(),
        ))
        .map_err(|e| plot_err(path, e))?;
        root.draw(&Text::new(
            *n,
            (x0 - 90, y0 + i as i32 * size + size / 2 - 10),
            label.clone(),
        ))
        .map_err(|e| plot_err(path, e))?;
    }
    root.draw(&Text::new(
        "predicted",
        (x0 + size - 45, y0 + 2 * size + 42),
        label.clone(),
    ))
    .map_err(|e| plot_err(path, e))?;
    root.draw(&Text::new("actual", (20, y0 - 35), label))
        .map_err(|e| plot_err(path, e))?;
    root.present().map_err(|e| plot_err(path, e))?;
    Ok(())
}

/// The ROC curve with the chance diagonal and the AUC in the caption.
pub fn roc_png(points: &[(f64, f64)], auc: Option<f64>, path: &Path) -> Result<(), TrainError> {
    register_font();
    let root = BitMapBackend::new(path, (640, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let caption = match auc {
        Some(a) => format!("ROC curve (AUC = {a:.4})"),
        None => "ROC curve (AUC undefined: one class)".to_string(),
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, (FAMILY, 28))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..1f64, 0f64..1.0001f64)
        .map_err(|e| plot_err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("false positive rate")
        .y_desc("true positive rate")
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 20))
        .draw()
        .map_err(|e| plot_err(path, e))?;
    chart
        .draw_series(LineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            BLACK.mix(0.3).stroke_width(1),
        ))
        .map_err(|e| plot_err(path, e))?;
    chart
        .draw_series(LineSeries::new(
            points.iter().copied(),
            BLUE.stroke_width(3),
        ))
        .map_err(|e| plot_err(path, e))?;
    root.present().map_err(|e| plot_err(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a PNG's size and counts pixels that are not white.
    fn ink(path: &Path) -> (u32, u32, usize) {
        let img = image::open(path).unwrap().to_rgb8();
        let dark = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        (img.width(), img.height(), dark)
    }

    #[test]
    fn both_plots_render_with_text() {
        let dir = tempfile::tempdir().unwrap();
        // PN_PLOT_DIR keeps the images for a look.
        let keep = std::env::var_os("PN_PLOT_DIR").map(std::path::PathBuf::from);
        let base = keep.as_deref().unwrap_or(dir.path());
        let cm = base.join("cm.png");
        confusion_png(
            &Confusion {
                tn: 90,
                fp: 3,
                fn_: 5,
                tp: 40,
            },
            &cm,
        )
        .unwrap();
        let (w, h, dark) = ink(&cm);
        assert_eq!((w, h), (640, 560));
        assert!(dark > 10_000, "{dark}");
        let roc = base.join("roc.png");
        roc_png(&[(0.0, 0.0), (0.1, 0.8), (1.0, 1.0)], Some(0.93), &roc).unwrap();
        let (w, h, dark) = ink(&roc);
        assert_eq!((w, h), (640, 600));
        assert!(dark > 1_000, "{dark}");
        // The title text is drawn: the caption band is not blank.
        let img = image::open(&roc).unwrap().to_rgb8();
        let caption_ink = (0..img.width())
            .flat_map(|x| (5..45).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0 != [255, 255, 255])
            .count();
        assert!(caption_ink > 200, "{caption_ink}");
    }
}
