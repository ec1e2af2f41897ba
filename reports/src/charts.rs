//! The report's charts, drawn by plotters into SVG strings (text stays
//! `<text>`, so no fonts are needed to build or to view them). One function
//! per chart; faults are shaded bands on every chart over time.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::spectrum::Spectrum;
use crate::ReportError;
use tierlab_record::{FaultRecord, Percentiles, RunRecord, Second};

const SIZE: (u32, u32) = (960, 340);
const FONT: &str = "sans-serif";
/// Four series colours that stay apart in print (and for most colour-blind readers).
const INK: [RGBColor; 4] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(204, 121, 167),
    RGBColor(0, 0, 0),
];
const FAULT_FILL: RGBAColor = RGBAColor(213, 94, 0, 0.15);
const GREY: RGBColor = RGBColor(110, 110, 110);
/// SLO lines: the one red of the charts, so a limit reads as a limit.
const SLO_RED: RGBColor = RGBColor(180, 35, 24);

/// One value read off a row, named where it is drawn.
pub type Pick<T> = fn(&T) -> f64;

fn fail<E: std::fmt::Display>(e: E) -> ReportError {
    ReportError::Chart(e.to_string())
}

/// Draws into an SVG string with `draw`.
fn svg(
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), ReportError>,
) -> Result<String, ReportError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        draw(&root)?;
        root.present().map_err(fail)?;
    }
    Ok(out)
}

fn end_of_run(run: &RunRecord) -> f64 {
    run.timeseries.last().map_or(1.0, |s| s.t as f64).max(1.0)
}

fn legend(colour: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
}

/// The legend, boxed in the upper left, the same on every chart.
fn legend_box<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> Result<(), ReportError>
where
    DB: DrawingBackend + 'a,
    X: Ranged,
    Y: Ranged,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(GREY)
        .label_font((FONT, 12))
        .draw()
        .map_err(fail)
}

/// Each fault as a band from its start to its end (or the end of the run).
fn fault_bands(
    faults: &[FaultRecord],
    end: f64,
    low: f64,
    high: f64,
) -> Vec<Rectangle<(f64, f64)>> {
    faults
        .iter()
        .map(|f| {
            let until = f.end_s.unwrap_or(end).max(f.start_s + 0.5);
            Rectangle::new([(f.start_s, low), (until, high)], FAULT_FILL.filled())
        })
        .collect()
}

fn fault_labels(faults: &[FaultRecord], high: f64) -> Vec<Text<'static, (f64, f64), String>> {
    faults
        .iter()
        .map(|f| {
            Text::new(
                f.name.clone(),
                (f.start_s, high),
                (FONT, 13).into_font().color(&GREY),
            )
        })
        .collect()
}

/// What a latency-over-time chart plots and the ranges of its axes.
struct Frame {
    /// The seconds that had samples, with their percentiles.
    rows: Vec<(f64, Percentiles)>,
    end: f64,
    low: f64,
    high: f64,
    /// The right axis's top: the most players seen or targeted.
    players: f64,
}

impl Frame {
    fn of(run: &RunRecord, pick: fn(&Second) -> Percentiles, slos: &[(String, f64)]) -> Frame {
        let rows: Vec<(f64, Percentiles)> = run
            .timeseries
            .iter()
            .map(|s| (s.t as f64, pick(s)))
            .filter(|(_, p)| p.count > 0)
            .collect();
        // The SLO lines stay in view even when every second is far under them.
        let high = rows
            .iter()
            .map(|(_, p)| p.max)
            .chain(slos.iter().map(|(_, ms)| *ms))
            .fold(1.0, f64::max)
            * 1.5;
        let players = run
            .timeseries
            .iter()
            .map(|s| s.target.max(s.players as f64))
            .fold(1.0, f64::max)
            * 1.1;
        Frame {
            rows,
            end: end_of_run(run),
            low: 0.1,
            high,
            players,
        }
    }
}

/// p50/p95/p99/max of one latency per second (log scale), the load
/// shape's target on the right axis, faults shaded.
pub fn latency_over_time(
    run: &RunRecord,
    title: &str,
    pick: fn(&Second) -> Percentiles,
    slos: &[(String, f64)],
) -> Result<String, ReportError> {
    let Frame {
        rows,
        end,
        low,
        high,
        players,
    } = Frame::of(run, pick, slos);
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 18))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(60)
            .right_y_label_area_size(60)
            .build_cartesian_2d(0.0..end, (low..high).log_scale())
            .map_err(fail)?
            .set_secondary_coord(0.0..end, 0.0..players);
        chart
            .configure_mesh()
            .x_desc("seconds since start")
            .y_desc("latency, ms (log)")
            .label_style((FONT, 12))
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(fail)?;
        chart
            .configure_secondary_axes()
            .y_desc("players (target)")
            .label_style((FONT, 12))
            .draw()
            .map_err(fail)?;
        chart
            .draw_series(fault_bands(&run.faults, end, low, high))
            .map_err(fail)?;
        chart
            .draw_series(fault_labels(&run.faults, high / 1.3))
            .map_err(fail)?;
        chart
            .draw_secondary_series(LineSeries::new(
                run.timeseries.iter().map(|s| (s.t as f64, s.target)),
                GREY.stroke_width(1),
            ))
            .map_err(fail)?
            .label("target players")
            .legend(legend(GREY));
        let series: [(&str, Pick<Percentiles>); 4] = [
            ("p50", |p| p.p50),
            ("p95", |p| p.p95),
            ("p99", |p| p.p99),
            ("max", |p| p.max),
        ];
        for ((name, value), colour) in series.into_iter().zip(INK) {
            chart
                .draw_series(LineSeries::new(
                    rows.iter().map(|(t, p)| (*t, value(p).max(low))),
                    colour.stroke_width(2),
                ))
                .map_err(fail)?
                .label(name)
                .legend(legend(colour));
        }
        for (label, ms) in slos {
            let level = ms.max(low);
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, level), (end, level)],
                    6,
                    4,
                    SLO_RED.stroke_width(2),
                ))
                .map_err(fail)?
                .label(label.as_str())
                .legend(legend(SLO_RED));
        }
        legend_box(&mut chart)
    })
}

/// Lines over time on a linear axis, players on the right, faults shaded.
pub fn counts_over_time(
    run: &RunRecord,
    title: &str,
    unit: &str,
    lines: &[(&str, Pick<Second>)],
) -> Result<String, ReportError> {
    let end = end_of_run(run);
    let high = run
        .timeseries
        .iter()
        .flat_map(|s| lines.iter().map(move |(_, f)| f(s)))
        .fold(1.0, f64::max)
        * 1.15;
    let players = run
        .timeseries
        .iter()
        .map(|s| s.players as f64)
        .fold(1.0, f64::max)
        * 1.1;
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 18))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(60)
            .right_y_label_area_size(60)
            .build_cartesian_2d(0.0..end, 0.0..high)
            .map_err(fail)?
            .set_secondary_coord(0.0..end, 0.0..players);
        chart
            .configure_mesh()
            .x_desc("seconds since start")
            .y_desc(unit)
            .label_style((FONT, 12))
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(fail)?;
        chart
            .configure_secondary_axes()
            .y_desc("players connected")
            .label_style((FONT, 12))
            .draw()
            .map_err(fail)?;
        chart
            .draw_series(fault_bands(&run.faults, end, 0.0, high))
            .map_err(fail)?;
        chart
            .draw_series(fault_labels(&run.faults, high * 0.97))
            .map_err(fail)?;
        chart
            .draw_secondary_series(LineSeries::new(
                run.timeseries
                    .iter()
                    .map(|s| (s.t as f64, s.players as f64)),
                GREY.stroke_width(2),
            ))
            .map_err(fail)?
            .label("players")
            .legend(legend(GREY));
        for ((name, value), colour) in lines.iter().zip(INK) {
            chart
                .draw_series(LineSeries::new(
                    run.timeseries.iter().map(|s| (s.t as f64, value(s))),
                    colour.stroke_width(2),
                ))
                .map_err(fail)?
                .label(*name)
                .legend(legend(colour));
        }
        legend_box(&mut chart)
    })
}

/// HDR percentile spectra ("1 in N" on a log axis), this run's solid and
/// the baseline's dashed.
pub fn spectrum(
    current: &[Spectrum],
    baseline: Option<&[Spectrum]>,
) -> Result<String, ReportError> {
    let all = current.iter().chain(baseline.unwrap_or_default());
    let widest = all
        .clone()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(10.0, f64::max);
    let high = all
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.5;
    let low = 0.1;
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Latency by percentile (whole run)", (FONT, 18))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(60)
            .build_cartesian_2d((1.0..widest).log_scale(), (low..high).log_scale())
            .map_err(fail)?;
        chart
            .configure_mesh()
            .x_desc("1 in N (log): 2 = median, 100 = p99, 1000 = p99.9")
            .y_desc("ms (log)")
            .label_style((FONT, 12))
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(fail)?;
        for (spectrum, colour) in current.iter().zip(INK) {
            chart
                .draw_series(LineSeries::new(
                    spectrum.points.iter().map(|&(n, ms)| (n, ms.max(low))),
                    colour.stroke_width(2),
                ))
                .map_err(fail)?
                .label(spectrum.metric.clone())
                .legend(legend(colour));
            let Some(before) =
                baseline.and_then(|b| b.iter().find(|s| s.metric == spectrum.metric))
            else {
                continue;
            };
            chart
                .draw_series(DashedLineSeries::new(
                    before.points.iter().map(|&(n, ms)| (n, ms.max(low))),
                    6,
                    4,
                    colour.stroke_width(1),
                ))
                .map_err(fail)?
                .label(format!("{} (baseline)", spectrum.metric))
                .legend(legend(colour));
        }
        legend_box(&mut chart)
    })
}

/// p95 fan-out against players, with the SLO line and the knee.
pub fn capacity(
    curve: &[(f64, f64)],
    knee: Option<f64>,
    slo_ms: Option<f64>,
) -> Result<String, ReportError> {
    curves(&Curves {
        title: "Capacity: p95 fan-out against players",
        x_desc: "players connected",
        y_desc: "p95 fan-out, ms",
        series: vec![("p95 fan-out".to_owned(), curve.to_vec())],
        dashed: Vec::new(),
        y_cap: None,
        level: slo_ms.map(|slo| (format!("SLO {slo} ms"), slo)),
        marks: knee
            .map(|k| (format!("knee ≈ {k:.0} players"), k))
            .into_iter()
            .collect(),
    })
}

/// Several measured curves (solid, with points), model curves (dashed), a
/// horizontal level (an SLO) and vertical marks (knees, limits).
#[derive(Debug, Clone, Default)]
pub struct Curves<'a> {
    pub title: &'a str,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    pub dashed: Vec<(String, Vec<(f64, f64)>)>,
    pub level: Option<(String, f64)>,
    pub marks: Vec<(String, f64)>,
    /// The top of the y axis at most (a curve that runs away above it is
    /// cut off, so the others stay readable).
    pub y_cap: Option<f64>,
}

/// The axes' ends: every point, mark and level inside, with a margin.
fn extent(c: &Curves<'_>) -> (f64, f64) {
    let all = c
        .series
        .iter()
        .chain(&c.dashed)
        .flat_map(|(_, points)| points.iter());
    let right = all
        .clone()
        .map(|p| p.0)
        .chain(c.marks.iter().map(|m| m.1))
        .fold(1.0, f64::max)
        * 1.05;
    let high = all
        .map(|p| p.1)
        .chain(c.level.iter().map(|l| l.1))
        .fold(1.0, f64::max)
        * 1.2;
    (right, c.y_cap.map_or(high, |cap| high.min(cap)))
}

pub fn curves(c: &Curves<'_>) -> Result<String, ReportError> {
    let (right, high) = extent(c);
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(c.title, (FONT, 18))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..right, 0.0..high)
            .map_err(fail)?;
        chart
            .configure_mesh()
            .x_desc(c.x_desc)
            .y_desc(c.y_desc)
            .label_style((FONT, 12))
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(fail)?;
        if let Some((label, level)) = &c.level {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(0.0, *level), (right, *level)],
                    8,
                    5,
                    GREY.stroke_width(2),
                ))
                .map_err(fail)?
                .label(label.clone())
                .legend(legend(GREY));
        }
        for ((name, points), colour) in c.series.iter().zip(INK.iter().cycle()) {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(fail)?
                .label(name.clone())
                .legend(legend(*colour));
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(fail)?;
        }
        for ((name, points), colour) in c.dashed.iter().zip(INK.iter().cycle()) {
            chart
                .draw_series(DashedLineSeries::new(
                    points.iter().copied(),
                    6,
                    4,
                    colour.stroke_width(1),
                ))
                .map_err(fail)?
                .label(name.clone())
                .legend(legend(*colour));
        }
        for ((name, x), colour) in c.marks.iter().zip(INK.iter().cycle()) {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(*x, 0.0), (*x, high)],
                    colour.stroke_width(1),
                )))
                .map_err(fail)?
                .label(name.clone())
                .legend(legend(*colour));
        }
        legend_box(&mut chart)
    })
}
