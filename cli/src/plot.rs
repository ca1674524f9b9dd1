//! `shardcast stats plot`: a capture (from `shardcast::stats::StatsRecorder`) as an SVG chart.
//!
//! Three panels share the time axis (seconds since the first sample, from the bus's own
//! `uptime_seconds`, so a slow sampler does not distort rates): throughput (published/s and
//! delivered/s), drops (dropped/s), and the bus-wide receive latency percentiles. Rates
//! are the counter difference between consecutive samples over their time difference,
//! drawn at the later sample. The latency percentiles are what each snapshot reports:
//! cumulative since the bus started, not per interval, and the panel says so.
//!
//! SVG text is SVG `<text>`: no font files, so the chart renders the same on any machine.

use std::error::Error;
use std::fs;
use std::path::Path;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use shardcast::stats::{Capture, StatsSnapshot};

const SIZE: (u32, u32) = (1100, 1000);
const PUBLISHED: RGBColor = RGBColor(31, 119, 180);
const DELIVERED: RGBColor = RGBColor(44, 160, 44);
const DROPPED: RGBColor = RGBColor(214, 39, 40);
const P50: RGBColor = RGBColor(31, 119, 180);
const P99: RGBColor = RGBColor(255, 127, 14);
const P999: RGBColor = RGBColor(214, 39, 40);

/// Renders the capture file `capture` to the SVG file `out`.
///
/// # Errors
/// The capture cannot be read or parsed, has no samples, or the SVG cannot be written.
pub fn plot_capture(capture: &Path, out: &Path) -> Result<(), Box<dyn Error>> {
    let bytes = fs::read(capture).map_err(|e| format!("cannot read {}: {e}", capture.display()))?;
    let capture: Capture = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not a capture: {e}", capture.display()))?;
    if capture.samples.is_empty() {
        return Err(format!("capture {} has no samples", capture.meta.id).into());
    }
    let series = Series::of(&capture.samples);

    let root = SVGBackend::new(out, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let meta = &capture.meta;
    let title = format!(
        "shardcast capture {}: {} samples every {}s{}",
        meta.id,
        meta.samples,
        meta.interval_seconds,
        if meta.truncated {
            format!(" (truncated: {} later samples dropped)", meta.dropped_samples)
        } else {
            String::new()
        },
    );
    let root = root.titled(&title, ("sans-serif", 22))?;
    let panels = root.split_evenly((3, 1));
    let x_max = series.x_max();

    let rate_lines = [
        ("published/s", PUBLISHED, &series.published),
        ("delivered/s", DELIVERED, &series.delivered),
    ];
    panel(&panels[0], "throughput", "events/s", x_max, 0.0..headroom(&rate_lines), &rate_lines)?;
    let drop_lines = [("dropped/s", DROPPED, &series.dropped)];
    panel(&panels[1], "drops", "events/s", x_max, 0.0..headroom(&drop_lines), &drop_lines)?;
    // Percentiles span decades (p50 in µs, p99.9 in ms under load): a log axis shows all
    // three. Samples before the first latency sample (0 s) have no place on it.
    let (unit, scale) = latency_unit(&series);
    let scaled = |points: &[(f64, f64)]| -> Vec<(f64, f64)> {
        points.iter().filter(|&&(_, y)| y > 0.0).map(|&(x, y)| (x, y * scale)).collect()
    };
    let (p50, p99, p999) = (scaled(&series.p50), scaled(&series.p99), scaled(&series.p999));
    let latency_lines = [("p50", P50, &p50), ("p99", P99, &p99), ("p99.9", P999, &p999)];
    let (lo, hi) = latency_lines
        .iter()
        .flat_map(|(_, _, points)| points.iter().map(|&(_, y)| y))
        .fold((f64::INFINITY, 0.0_f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    // Room above for the legend (a factor, on a log axis); a default decade with no data.
    let (lo, hi) = if hi > 0.0 { (lo / 2.0, hi * 8.0) } else { (1.0, 10.0) };
    panel(
        &panels[2],
        "receive latency (bus-wide, cumulative since bus start; log scale)",
        &format!("latency ({unit})"),
        x_max,
        (lo..hi).log_scale(),
        &latency_lines,
    )?;
    root.present().map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(())
}

type Line<'a> = (&'a str, RGBColor, &'a Vec<(f64, f64)>);

/// A linear y range from 0 with room above the highest point for the legend; a flat zero
/// line still gets a visible axis.
fn headroom(lines: &[Line<'_>]) -> f64 {
    let max = lines
        .iter()
        .flat_map(|(_, _, points)| points.iter().map(|&(_, y)| y))
        .fold(0.0_f64, f64::max);
    if max > 0.0 {
        max * 1.3
    } else {
        1.0
    }
}

/// One panel: a line per `(label, colour, points)` over `y`, a linear or log range.
fn panel<Y>(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    y_desc: &str,
    x_max: f64,
    y: Y,
    lines: &[Line<'_>],
) -> Result<(), Box<dyn Error>>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, y)?;
    chart
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc(y_desc)
        .y_label_formatter(&|v| compact(*v))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for &(label, colour, points) in lines {
        chart
            .draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Axis numbers: `12k`, `1.5M`, `250`, `2.5`, `0.04`: at most 3 significant digits.
fn compact(v: f64) -> String {
    let (value, suffix) = match v.abs() {
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let decimals = match value.abs() {
        a if a >= 100.0 || a == 0.0 => 0,
        a if a >= 10.0 => 1,
        a if a >= 1.0 => 2,
        a => (-a.log10().floor()) as usize + 2,
    };
    let text = format!("{value:.decimals$}");
    let text =
        if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
    format!("{text}{suffix}")
}

/// The plotted values, `(seconds since the first sample, value)`.
#[derive(Debug, Default)]
struct Series {
    published: Vec<(f64, f64)>,
    delivered: Vec<(f64, f64)>,
    dropped: Vec<(f64, f64)>,
    /// In seconds.
    p50: Vec<(f64, f64)>,
    p99: Vec<(f64, f64)>,
    p999: Vec<(f64, f64)>,
    last_x: f64,
}

impl Series {
    fn of(samples: &[StatsSnapshot]) -> Self {
        let t0 = samples[0].uptime_seconds;
        let mut s = Series::default();
        for (i, now) in samples.iter().enumerate() {
            let x = now.uptime_seconds - t0;
            s.last_x = s.last_x.max(x);
            s.p50.push((x, now.latency.p50_seconds));
            s.p99.push((x, now.latency.p99_seconds));
            s.p999.push((x, now.latency.p999_seconds));
            let Some(before) = i.checked_sub(1).map(|j| &samples[j]) else { continue };
            let dt = now.uptime_seconds - before.uptime_seconds;
            if dt <= 0.0 {
                // Not the same bus (its uptime went back): no rate across the gap.
                continue;
            }
            let rate = |a: u64, b: u64| b.saturating_sub(a) as f64 / dt;
            s.published.push((x, rate(before.published, now.published)));
            s.delivered.push((x, rate(delivered(before), delivered(now))));
            s.dropped.push((x, rate(before.dropped(), now.dropped())));
        }
        s
    }

    /// The time axis' end; at least 1 s so a single sample still has an axis.
    fn x_max(&self) -> f64 {
        if self.last_x > 0.0 {
            self.last_x
        } else {
            1.0
        }
    }
}

/// Deliveries queued to subscribers, over every shard.
fn delivered(s: &StatsSnapshot) -> u64 {
    s.shards.iter().map(|shard| shard.delivered).sum()
}

/// The unit that makes the largest latency read as a number between 1 and 1000.
fn latency_unit(series: &Series) -> (&'static str, f64) {
    let max = [&series.p50, &series.p99, &series.p999]
        .iter()
        .flat_map(|points| points.iter().map(|&(_, y)| y))
        .fold(0.0_f64, f64::max);
    if max >= 1.0 {
        ("s", 1.0)
    } else if max >= 1e-3 {
        ("ms", 1e3)
    } else {
        ("µs", 1e6)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::{SystemTime, UNIX_EPOCH};

    use shardcast::stats::{CaptureMeta, LatencyStats, ShardStats};

    use super::*;

    /// A unique temp folder, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
            let dir = std::env::temp_dir()
                .join(format!("shardcast-plot-{name}-{}-{nanos}", std::process::id()));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// 60 one-second samples: steady 1000 events/s over two shards, a burst of drops and
    /// a latency climb in the middle.
    fn synthetic() -> Capture {
        let mut meta = CaptureMeta::default();
        meta.version = 1;
        meta.id = "2026-11-24T18-37-41Z".to_owned();
        meta.interval_seconds = 1.0;
        meta.samples = 60;
        meta.max_samples = 5400;
        let mut capture = Capture::default();
        capture.meta = meta;
        let (mut published, mut delivered, mut dropped) = (0u64, 0u64, 0u64);
        for i in 0..60u64 {
            let mut s = StatsSnapshot::default();
            s.version = shardcast::stats::STATS_VERSION;
            s.uptime_seconds = 100.0 + i as f64;
            s.published = published;
            for shard in 0..2 {
                let mut sh = ShardStats::default();
                sh.shard = shard;
                sh.delivered = delivered / 2;
                sh.dropped = dropped / 2;
                s.shards.push(sh);
            }
            let incident = (20..35).contains(&i);
            let mut latency = LatencyStats::default();
            latency.samples = published / 64;
            latency.p50_seconds = 20e-6 + if incident { 5e-6 * (i - 20) as f64 } else { 0.0 };
            latency.p99_seconds = latency.p50_seconds * 4.0;
            latency.p999_seconds = latency.p50_seconds * 10.0;
            s.latency = latency;
            capture.samples.push(s);
            published += 1000;
            let lost = if incident { 400 } else { 0 };
            delivered += 2 * (1000 - lost);
            dropped += 2 * lost;
        }
        capture
    }

    #[test]
    fn plots_a_capture_to_svg() {
        let tmp = TempDir::new("svg");
        let input = tmp.0.join("capture.json");
        fs::write(&input, serde_json::to_vec(&synthetic()).unwrap()).unwrap();
        let out = tmp.0.join("plot.svg");
        plot_capture(&input, &out).unwrap();
        let svg = fs::read_to_string(&out).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
        assert!(svg.trim_end().ends_with("</svg>"));
        for text in [
            "shardcast capture 2026-11-24T18-37-41Z",
            "throughput",
            "drops",
            "receive latency",
            "seconds since start",
            "published/s",
            "delivered/s",
            "dropped/s",
            "p99.9",
            "latency (µs)",
            "log scale",
        ] {
            assert!(svg.contains(text), "missing {text:?}");
        }
        assert!(svg.matches("<polyline").count() >= 6, "one line per series");
    }

    #[test]
    fn rates_are_differences_over_uptime() {
        let series = Series::of(&synthetic().samples);
        assert_eq!(series.published.len(), 59);
        assert_eq!(series.published[0], (1.0, 1000.0));
        assert_eq!(series.delivered[0], (1.0, 2000.0));
        assert_eq!(series.dropped[0], (1.0, 0.0));
        // The interval ending at sample 21 was an incident one.
        assert_eq!(series.dropped[20], (21.0, 800.0));
        assert_eq!(series.x_max(), 59.0);
    }

    #[test]
    fn axis_numbers_are_compact() {
        let cases = [
            (0.0, "0"),
            (250.0, "250"),
            (2500.0, "2.5k"),
            (40_000.0, "40k"),
            (1_500_000.0, "1.5M"),
            (12.5, "12.5"),
            (2.0, "2"),
            (0.04, "0.04"),
            (0.0125, "0.0125"),
        ];
        for (v, text) in cases {
            assert_eq!(compact(v), text, "{v}");
        }
    }

    #[test]
    fn single_sample_and_errors() {
        let tmp = TempDir::new("errors");
        let mut capture = synthetic();
        capture.samples.truncate(1);
        let input = tmp.0.join("one.json");
        fs::write(&input, serde_json::to_vec(&capture).unwrap()).unwrap();
        plot_capture(&input, &tmp.0.join("one.svg")).unwrap();

        capture.samples.clear();
        fs::write(&input, serde_json::to_vec(&capture).unwrap()).unwrap();
        let err = plot_capture(&input, &tmp.0.join("none.svg")).unwrap_err();
        assert!(err.to_string().contains("no samples"), "{err}");

        fs::write(&input, "{\"meta\": ").unwrap();
        let err = plot_capture(&input, &tmp.0.join("bad.svg")).unwrap_err();
        assert!(err.to_string().contains("is not a capture"), "{err}");

        let err = plot_capture(&tmp.0.join("missing.json"), &tmp.0.join("x.svg")).unwrap_err();
        assert!(err.to_string().starts_with("cannot read"), "{err}");
    }
}
