//! The figure: one CDF panel per cache state, latency on a log axis (like
//! the original figure), one curve per Map-Resolver. SVG through `plotters`.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

/// One curve: its label, colour and the latencies (ms) of the answered
/// requests; `sent` normalises the CDF, so losses keep it below 1.
pub struct Curve {
    pub label: String,
    pub color: RGBColor,
    pub latencies_ms: Vec<f64>,
    pub sent: usize,
}

pub struct Panel {
    pub title: String,
    pub curves: Vec<Curve>,
}

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("plot: {e}")
}

/// Bounds on the 1-2-5 grid around all values.
fn x_range(panels: &[Panel]) -> (f64, f64) {
    let all = panels
        .iter()
        .flat_map(|p| p.curves.iter())
        .flat_map(|c| c.latencies_ms.iter().copied())
        .filter(|v| v.is_finite() && *v > 0.0);
    let (lo, hi) = all.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return (1.0, 100.0);
    }
    let grid = |v: f64| {
        let d = 10f64.powf(v.log10().floor());
        [1.0, 2.0, 5.0, 10.0].map(|m| m * d)
    };
    let lo = grid(lo).into_iter().rev().find(|g| *g <= lo).unwrap_or(lo);
    let hi = grid(hi).into_iter().find(|g| *g >= hi).unwrap_or(hi);
    (lo, hi.max(lo * 2.0))
}

/// Writes the CDF panels side by side to `path` (SVG), with one legend
/// strip below them (the curves are the same in every panel) and each
/// curve's median marked.
pub fn cdf_svg(path: &Path, title: &str, panels: &[Panel]) -> Result<()> {
    let width = 560 * panels.len().max(1) as u32;
    let root = SVGBackend::new(path, (width, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(err)?;
    let (plots, legend) = root.split_vertically(460);
    let (x0, x1) = x_range(panels);
    let areas = plots.split_evenly((1, panels.len().max(1)));
    for (area, panel) in areas.iter().zip(panels) {
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(52)
            .build_cartesian_2d((x0..x1).log_scale(), 0.0f64..1.0)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("Map-Request to Map-Reply at the ITR (ms, log scale)")
            .y_desc("fraction of resolutions")
            .x_label_formatter(&|v| format!("{v}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .draw()
            .map_err(err)?;
        for (i, c) in panel.curves.iter().enumerate() {
            let mut v = c.latencies_ms.clone();
            v.sort_by(f64::total_cmp);
            let n = c.sent.max(1) as f64;
            // An empirical CDF as a staircase.
            let mut pts = Vec::with_capacity(2 * v.len() + 2);
            if let Some(first) = v.first() {
                pts.push((*first, 0.0));
            }
            for (k, x) in v.iter().enumerate() {
                pts.push((*x, k as f64 / n));
                pts.push((*x, (k + 1) as f64 / n));
            }
            if let Some(last) = v.last() {
                pts.push((x1.max(*last), v.len() as f64 / n));
            }
            let color = c.color;
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(err)?;
            if let Some(med) = crate::stats::quantile(&v, 0.5) {
                let y = 0.5;
                let ty = 0.42 - 0.09 * i as f64;
                chart
                    .draw_series([Circle::new((med, y), 4, color.filled())])
                    .map_err(err)?;
                chart
                    .draw_series([Text::new(
                        format!("{med:.1} ms"),
                        (med * 1.04, ty),
                        ("sans-serif", 13).into_font().color(&color),
                    )])
                    .map_err(err)?;
            }
        }
    }
    // The legend: one entry per curve of the first panel.
    if let Some(first) = panels.first() {
        let n = first.curves.len().max(1) as i32;
        let (w, _) = legend.dim_in_pixel();
        let slot = w as i32 / n;
        for (i, c) in first.curves.iter().enumerate() {
            let x = slot * i as i32 + 30;
            legend
                .draw(&PathElement::new(
                    vec![(x, 30), (x + 28, 30)],
                    c.color.stroke_width(3),
                ))
                .map_err(err)?;
            legend
                .draw(&Text::new(
                    c.label.clone(),
                    (x + 36, 24),
                    ("sans-serif", 14).into_font(),
                ))
                .map_err(err)?;
        }
    }
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg() {
        let dir = std::env::temp_dir().join(format!("fig6-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.svg");
        let curve = |label: &str, base: f64| Curve {
            label: label.into(),
            color: BLUE,
            latencies_ms: (0..50).map(|i| base + f64::from(i) * 0.01).collect(),
            sent: 50,
        };
        let panels = [
            Panel {
                title: "cold".into(),
                curves: vec![curve("a", 5.0), curve("b", 20.0)],
            },
            Panel {
                title: "warm".into(),
                curves: vec![curve("a", 5.0)],
            },
        ];
        cdf_svg(&path, "test", &panels).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("cold") && svg.contains("warm"));
        assert_eq!(x_range(&panels), (5.0, 50.0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
