//! The loss curve as a PNG (plotters), encoded in memory so the file is written atomically.
//! Text is drawn in pure Rust (plotters' `ab_glyph` path) with the bundled DejaVu Sans
//! (assets/DejaVuSans.ttf, license beside it), so no system font library is linked or needed.

use std::sync::OnceLock;

use crate::error::{Error, Result};
use plotters::prelude::*;

/// DejaVu Sans, registered with plotters as its "sans-serif" family.
const SANS_SERIF: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn plot_err(e: impl std::fmt::Display) -> Error {
    Error::Input(format!("drawing the loss plot failed: {e}"))
}

/// Registers the bundled font once per process; every later call returns the first outcome.
fn register_sans_serif() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, SANS_SERIF).is_ok()
    });
    if ok {
        Ok(())
    } else {
        // plotters' InvalidFont carries no detail
        Err(plot_err(
            "the bundled font assets/DejaVuSans.ttf is not a valid font",
        ))
    }
}

/// PNG bytes of `losses` (one per step) on a log-scaled y axis.
pub fn loss_png(losses: &[f32], title: &str) -> Result<Vec<u8>> {
    loss_curves_png(losses, &[], title)
}

/// PNG bytes of the training loss (`train`, one per step, blue) and the validation loss
/// (`val`, (step, loss) points, red, with a legend) on a log-scaled y axis.
pub fn loss_curves_png(train: &[f32], val: &[(u64, f32)], title: &str) -> Result<Vec<u8>> {
    register_sans_serif()?;
    let (w, h) = (800u32, 500u32);
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let shown = |l: f32| l.is_finite() && l > 0.0;
        let finite: Vec<f32> = train
            .iter()
            .copied()
            .chain(val.iter().map(|(_, l)| *l))
            .filter(|&l| shown(l))
            .collect();
        let (lo, hi) = finite
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &l| (lo.min(l), hi.max(l)));
        let (lo, hi) = if finite.is_empty() {
            (1e-3, 1.0)
        } else {
            (lo * 0.8, hi * 1.25)
        };
        let last = val.iter().map(|(s, _)| *s as usize).max().unwrap_or(0);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(1usize..train.len().max(last).max(2), (lo..hi).log_scale())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("loss")
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(
                train
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| shown(**l))
                    .map(|(i, &l)| (i + 1, l)),
                &BLUE,
            ))
            .map_err(plot_err)?
            .label("training")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
        if !val.is_empty() {
            let points = || {
                val.iter()
                    .filter(|(_, l)| shown(*l))
                    .map(|&(s, l)| (s as usize, l))
            };
            chart
                .draw_series(LineSeries::new(points(), &RED))
                .map_err(plot_err)?
                .label("validation")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
            chart
                .draw_series(points().map(|p| Circle::new(p, 3, RED.filled())))
                .map_err(plot_err)?;
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    let mut png_bytes = Vec::new();
    {
        let err =
            |e: png::EncodingError| Error::Input(format!("encoding the loss plot failed: {e}"));
        let mut encoder = png::Encoder::new(&mut png_bytes, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(err)?;
        writer.write_image_data(&rgb).map_err(err)?;
        writer.finish().map_err(err)?;
    }
    Ok(png_bytes)
}
