//! `--plot`: fan-out latency CDFs, one line per implementation, one panel per scenario
//! (its paced run with the most subscribers; for `slow`, the run with the slow one; with
//! `--rates`, at the first rate).

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

use super::{Row, Scenario};

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(23, 23, 23),
];

pub fn cdfs(rows: &[Row], out: &Path) -> Result<(), Box<dyn Error>> {
    let scenarios: Vec<Scenario> = [Scenario::Fanout, Scenario::Filtered, Scenario::Slow]
        .into_iter()
        .filter(|s| rows.iter().any(|r| r.scenario == *s))
        .collect();
    let height = 360 * scenarios.len().max(1) as u32;
    let root = SVGBackend::new(out, (1000, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled("fan-out latency CDF (paced runs)", ("sans-serif", 22))?;
    let panels = root.split_evenly((scenarios.len().max(1), 1));
    for (scenario, area) in scenarios.iter().zip(&panels) {
        let phase = if *scenario == Scenario::Slow { "paced+slow" } else { "paced" };
        let mut paced: Vec<&Row> =
            rows.iter().filter(|r| r.scenario == *scenario && r.phase == phase).collect();
        // With `--rates`, the first rate only: one line per implementation.
        let first_rate = paced.first().and_then(|r| r.spec.rate);
        paced.retain(|r| r.spec.rate == first_rate);
        let Some(n) = paced.iter().map(|r| r.spec.subscribers).max() else { continue };
        let lines: Vec<&Row> = paced
            .into_iter()
            .filter(|r| r.spec.subscribers == n && !r.summary.cdf.is_empty())
            .collect();
        // Microseconds on a log axis: p50 and max are often decades apart.
        let us = |ns: u64| (ns.max(1) as f64) / 1e3;
        let lo =
            lines.iter().flat_map(|r| r.summary.cdf.first()).map(|p| us(p.0)).fold(1e9, f64::min);
        let hi =
            lines.iter().flat_map(|r| r.summary.cdf.last()).map(|p| us(p.0)).fold(0.0, f64::max);
        let (lo, hi) = if hi > 0.0 { (lo / 1.5, hi * 1.5) } else { (0.1, 10.0) };
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{} ({} subscribers)", scenario.name(), n), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((lo..hi).log_scale(), 0.0..1.05)?;
        chart
            .configure_mesh()
            .x_desc("fan-out latency (us, log scale)")
            .y_desc("fraction of events")
            .draw()?;
        for (i, row) in lines.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let points: Vec<(f64, f64)> =
                row.summary.cdf.iter().map(|&(v, q)| (us(v), q)).collect();
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                .label(row.imp.name())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present().map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(())
}
