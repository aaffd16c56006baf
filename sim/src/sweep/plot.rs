//! Figures from result tables: one panel per y column (× per `panel_by` value), one curve
//! per series, PNG and SVG. The font is embedded (DejaVu Sans, see `sim/assets/`), so a
//! figure renders the same on every machine, with no system font library.

use std::path::Path;
use std::sync::Once;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::spec::{LegendPosition, PlotSpec};
use super::table::Row;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The embedded font is a valid TrueType file; if registration ever failed, text
        // would be missing from the figure but the data would still be right.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Colours of successive series (matplotlib's tab10, so the notebook's figures match).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// An axis label with units for the columns the sweeps write.
pub fn column_label(column: &str) -> String {
    match column {
        "completed_rps" => "achieved throughput (req/s)",
        "offered_rps" => "offered load (req/s)",
        "p50_us" => "p50 latency (µs)",
        "p99_us" => "p99 latency (µs)",
        "p999_us" => "p99.9 latency (µs)",
        "max_rps_under_slo" => "max throughput, p99 ≤ SLO (req/s)",
        "speedup" => "speedup over baseline (×)",
        "nodes" | "cluster_nodes" => "cluster size (nodes)",
        "reply_bytes" => "reply size (bytes)",
        "request_bytes" => "request size (bytes)",
        "read_only_fraction" => "read-only share",
        "leader_cpu_ns_per_req" => "leader CPU time per request (ns)",
        "leader_tx_bytes_per_req" => "leader TX bytes per request",
        "leader_tx_pkts_per_req" => "leader TX packets per request",
        "t_ms" => "time (ms)",
        "multicast_loss" => "multicast loss probability",
        "recoveries_per_kreq" => "recovery requests per 1000 requests",
        "lost_fraction" => "share of requests never answered",
        other => other,
    }
    .to_string()
}

/// Short numbers for tick labels: 250k, 1.2M, 0.05.
fn tick(v: f64) -> String {
    let a = v.abs();
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if a >= 1e6 {
        format!("{}M", trim(format!("{:.2}", v / 1e6)))
    } else if a >= 1e4 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        trim(format!("{v:.3}"))
    }
}

impl PlotSpec {
    fn log_y(&self, column: &str) -> bool {
        self.y_log || self.y_log_columns.iter().any(|c| c == column)
    }
}

/// One curve: its label and points sorted by x.
struct Curve {
    label: String,
    points: Vec<(f64, f64)>,
    /// (x, low, high) of each point's 95% interval, where the table has one.
    bars: Vec<(f64, f64, f64)>,
}

struct Panel {
    caption: String,
    y_column: String,
    curves: Vec<Curve>,
    /// A horizontal reference line (the SLO on p99 panels).
    reference_y: Option<f64>,
}

fn series_label(row: &Row, series: &[String]) -> String {
    series
        .iter()
        .map(|c| row.get(c).map(|v| v.label()).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ")
}

fn panels(rows: &[Row], spec: &PlotSpec, slo_p99_us: Option<f64>) -> Vec<Panel> {
    let rows: Vec<&Row> = rows
        .iter()
        .filter(|r| !spec.only_rows_meeting_slo || r.num("slo_max") == Some(1.0))
        .collect();
    let mut panel_values: Vec<Option<String>> = Vec::new();
    match &spec.panel_by {
        Some(col) => {
            for r in &rows {
                let v = Some(r.get(col).map(|c| c.label()).unwrap_or_default());
                if !panel_values.contains(&v) {
                    panel_values.push(v);
                }
            }
        }
        None => panel_values.push(None),
    }
    let mut out = Vec::new();
    for y in &spec.y {
        for pv in &panel_values {
            let mut curves: Vec<Curve> = Vec::new();
            for r in &rows {
                if let (Some(col), Some(v)) = (&spec.panel_by, pv) {
                    if r.get(col).map(|c| c.label()).as_ref() != Some(v) {
                        continue;
                    }
                }
                let (Some(xv), Some(yv)) = (r.num(&spec.x), r.num(y)) else {
                    continue;
                };
                let drop = !xv.is_finite()
                    || !yv.is_finite()
                    || spec.y_max.is_some_and(|m| yv > m)
                    || (spec.x_log && xv <= 0.0)
                    || (spec.log_y(y) && yv <= 0.0);
                let label = series_label(r, &spec.series);
                let curve = match curves.iter_mut().position(|c| c.label == label) {
                    Some(i) => &mut curves[i],
                    None => {
                        curves.push(Curve {
                            label,
                            points: Vec::new(),
                            bars: Vec::new(),
                        });
                        curves.last_mut().expect("just pushed")
                    }
                };
                if !drop {
                    curve.points.push((xv, yv));
                    let lo = r.num(&format!("{y}_ci_low"));
                    let hi = r.num(&format!("{y}_ci_high"));
                    if let (Some(lo), Some(hi)) = (lo, hi) {
                        // A log axis cannot show a bar reaching zero or below.
                        let lo = if spec.log_y(y) { lo.max(yv * 1e-3) } else { lo };
                        if lo.is_finite() && hi.is_finite() {
                            curve.bars.push((xv, lo, hi));
                        }
                    }
                }
            }
            for c in &mut curves {
                c.points.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
            let mut caption = String::new();
            if spec.y.len() > 1 {
                caption = column_label(y);
            }
            if let (Some(col), Some(v)) = (&spec.panel_by, pv) {
                if !caption.is_empty() {
                    caption.push_str(", ");
                }
                caption.push_str(&format!("{col} = {v}"));
            }
            out.push(Panel {
                caption,
                y_column: y.clone(),
                curves,
                reference_y: slo_p99_us.filter(|_| y == "p99_us"),
            });
        }
    }
    out
}

/// The data range of one axis, padded; log axes keep to positive values.
fn range(values: impl Iterator<Item = f64>, log: bool, from_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return if log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        lo /= 1.3;
        hi *= 1.3;
    } else {
        if from_zero && lo >= 0.0 {
            lo = 0.0;
        }
        let pad = ((hi - lo) * 0.05).max(hi.abs() * 0.05).max(1e-9);
        hi += pad;
        if !(from_zero && lo == 0.0) {
            lo -= pad;
        }
    }
    (lo, hi)
}

type DrawResult = Result<(), String>;

fn draw_panel<DB, X, Y>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    spec: &PlotSpec,
    x: X,
    y: Y,
    x_span: (f64, f64),
) -> DrawResult
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(column_label(&spec.x))
        .y_desc(column_label(&panel.y_column))
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        // No minor grid: on log axes it is a line per unit and drowns the curves.
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .x_labels(8)
        .y_labels(8)
        .draw()
        .map_err(e)?;
    for (i, c) in panel.curves.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                c.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(e)?
            .label(c.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(c.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(e)?;
        chart
            .draw_series(c.bars.iter().map(|&(x, lo, hi)| {
                ErrorBar::new_vertical(x, lo, (lo + hi) / 2.0, hi, color.stroke_width(1), 6)
            }))
            .map_err(e)?;
    }
    if let Some(r) = panel.reference_y {
        let grey = RGBColor(120, 120, 120);
        chart
            .draw_series(DashedLineSeries::new(
                [(x_span.0, r), (x_span.1, r)],
                6,
                4,
                grey.stroke_width(1),
            ))
            .map_err(e)?
            .label(format!("SLO {} µs", tick(r)))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
    }
    chart
        .configure_series_labels()
        .position(match spec.legend {
            LegendPosition::UpperLeft => SeriesLabelPosition::UpperLeft,
            LegendPosition::UpperRight => SeriesLabelPosition::UpperRight,
            LegendPosition::LowerLeft => SeriesLabelPosition::LowerLeft,
            LegendPosition::LowerRight => SeriesLabelPosition::LowerRight,
            LegendPosition::MiddleRight => SeriesLabelPosition::MiddleRight,
        })
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(e)?;
    Ok(())
}

fn render<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    panels: &[Panel],
    cols: usize,
    spec: &PlotSpec,
) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(e)?;
    let rows = panels.len().div_ceil(cols);
    let areas = root.split_evenly((rows, cols));
    for (area, panel) in areas.iter().zip(panels) {
        let all = panel.curves.iter().flat_map(|c| c.points.iter());
        let (x0, x1) = range(all.clone().map(|p| p.0), spec.x_log, false);
        let y_log = spec.log_y(&panel.y_column);
        let bar_ends = panel
            .curves
            .iter()
            .flat_map(|c| c.bars.iter().flat_map(|&(_, lo, hi)| [lo, hi]));
        let (y0, y1) = range(
            all.map(|p| p.1).chain(bar_ends).chain(panel.reference_y),
            y_log,
            true,
        );
        let xs = (x0, x1);
        match (spec.x_log, y_log) {
            (false, false) => draw_panel(area, panel, spec, x0..x1, y0..y1, xs)?,
            (true, false) => draw_panel(area, panel, spec, (x0..x1).log_scale(), y0..y1, xs)?,
            (false, true) => draw_panel(area, panel, spec, x0..x1, (y0..y1).log_scale(), xs)?,
            (true, true) => draw_panel(
                area,
                panel,
                spec,
                (x0..x1).log_scale(),
                (y0..y1).log_scale(),
                xs,
            )?,
        }
    }
    root.present().map_err(e)
}

/// Writes `<stem>.png` and `<stem>.svg`; p99 panels get a dashed line at `slo_p99_us`.
pub fn write(
    stem: &Path,
    title: &str,
    rows: &[Row],
    spec: &PlotSpec,
    slo_p99_us: Option<f64>,
) -> Result<(), String> {
    register_font();
    let panels = panels(rows, spec, slo_p99_us);
    if panels.is_empty() {
        return Err("nothing to plot".into());
    }
    let cols = panels.len().min(3);
    let rows_n = panels.len().div_ceil(cols) as u32;
    let size = ((560 * cols as u32).max(860), 60 + 440 * rows_n);
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    render(
        BitMapBackend::new(&png, size).into_drawing_area(),
        title,
        &panels,
        cols,
        spec,
    )
    .map_err(|e| format!("{}: {e}", png.display()))?;
    render(
        SVGBackend::new(&svg, size).into_drawing_area(),
        title,
        &panels,
        cols,
        spec,
    )
    .map_err(|e| format!("{}: {e}", svg.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(250_000.0), "250k");
        assert_eq!(tick(1_200_000.0), "1.2M");
        assert_eq!(tick(1_000_000.0), "1M");
        assert_eq!(tick(0.05), "0.05");
        assert_eq!(tick(500.0), "500");
        assert_eq!(tick(12.5), "12.5");
    }
}
