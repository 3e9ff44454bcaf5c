//! SVG charts drawn with plotters (SVG backend only: no fonts or C libraries needed).
//!
//! - [`interval_chart`]: one horizontal row per cell (and per mean over seeds), a point at the
//!   estimate and a bar over its 95% interval. Rows without a figure say why (`not run`,
//!   `failed`, ...) instead of drawing a zero.
//! - [`scatter_panels`]: small multiples of aligned vs coherent per done row, with the EM
//!   thresholds drawn and the EM region shaded.
//! - [`step_chart`]: for sweeps with checkpoints, EM % (or mean aligned) vs training step, one
//!   line per scale (per model, protocol and dataset when there are several), one panel per
//!   judge; `final` is its own tick after the last step, reached by a dashed segment.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use emorg_spec::Weights;

use crate::matrix::{CurvePoint, DisplayRow, Matrix};
use crate::{ReportError, Result};

/// Tableau-10 without its grey (grey marks base rows).
const PALETTE: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const BASE_COLOUR: RGBColor = RGBColor(110, 110, 110);
const GAP_COLOUR: RGBColor = RGBColor(150, 150, 150);
const STRIPE: RGBColor = RGBColor(244, 245, 247);
const FONT: &str = "sans-serif";
const MAX_LABEL_CHARS: usize = 72;
/// A scatter panel shows at most this many points (an even subsample beyond it).
pub(crate) const MAX_POINTS_PER_PANEL: usize = 1500;

fn plot_err(plot: &str) -> impl Fn(String) -> ReportError + '_ {
    move |reason| ReportError::Plot {
        plot: plot.to_string(),
        reason,
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Colour per protocol: grey for base rows, else a palette colour in order of first appearance.
fn protocol_colours(matrix: &Matrix) -> Vec<(String, RGBColor)> {
    let mut out: Vec<(String, RGBColor)> = Vec::new();
    for row in matrix.rows.iter().filter(|r| !r.is_base) {
        let protocol = &row.row.axes.protocol;
        if !out.iter().any(|(p, _)| p == protocol) {
            let c = PALETTE[out.len() % PALETTE.len()];
            out.push((protocol.clone(), c));
        }
    }
    out
}

fn colour_of(colours: &[(String, RGBColor)], row: &DisplayRow<'_>) -> RGBColor {
    if row.is_base() {
        return BASE_COLOUR;
    }
    colours
        .iter()
        .find(|(p, _)| p == row.protocol())
        .map_or(PALETTE[0], |(_, c)| *c)
}

/// The EM % (or, with `coherence`, the coherence %) chart: one row per display row.
pub(crate) fn interval_chart(matrix: &Matrix, coherence: bool) -> Result<String> {
    let name = if coherence { "coherence" } else { "em" };
    let err = plot_err(name);
    let rows = matrix.display_rows();
    let n = rows.len().max(1);
    let labels: Vec<String> = rows
        .iter()
        .map(|r| truncate(&r.label(&matrix.varying), MAX_LABEL_CHARS))
        .collect();
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(10);
    let label_w = (longest as u32 * 7 + 24).clamp(140, 470);
    let row_h = 24u32;
    let (width, height) = (980u32, 70 + n as u32 * row_h + 50);

    let estimate = |r: &DisplayRow<'_>| if coherence { r.coherent() } else { r.em() };
    let x_max = if coherence {
        100.0
    } else {
        let top = rows
            .iter()
            .filter_map(estimate)
            .map(|e| e.hi)
            .fold(0.0f64, f64::max);
        ((top * 1.15 / 10.0).ceil() * 10.0).clamp(10.0, 100.0)
    };
    let (title, x_desc) = if coherence {
        (
            format!(
                "Coherence % (coherent > {}) with 95% bootstrap CI",
                matrix.coherent_threshold
            ),
            "coherent answers, % of answers with a coherent score",
        )
    } else {
        (
            "EM % with 95% bootstrap CI".to_string(),
            "emergently misaligned answers, % of judged answers",
        )
    };
    let colours = protocol_colours(matrix);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 17))
            .margin(12)
            .margin_left(label_w)
            .x_label_area_size(40)
            .build_cartesian_2d(0f64..x_max, -0.5f64..(n as f64 - 0.5))
            .map_err(|e| err(e.to_string()))?;
        let y_of = |i: usize| (n - 1 - i) as f64;
        // stripes behind every other row
        chart
            .draw_series((0..rows.len()).filter(|i| i % 2 == 0).map(|i| {
                Rectangle::new(
                    [(0.0, y_of(i) - 0.5), (x_max, y_of(i) + 0.5)],
                    STRIPE.filled(),
                )
            }))
            .map_err(|e| err(e.to_string()))?;

        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_labels(11)
            .x_desc(x_desc)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .light_line_style(RGBColor(240, 240, 240))
            .max_light_lines(1)
            .draw()
            .map_err(|e| err(e.to_string()))?;

        for (i, row) in rows.iter().enumerate() {
            let y = y_of(i);
            let colour = colour_of(&colours, row);
            let aggregate = matches!(row, DisplayRow::Aggregate(_));
            // the label, right-aligned left of the plot
            let (px, py) = chart.backend_coord(&(0.0, y));
            let mut font = (FONT, 12).into_font();
            if aggregate {
                font = font.style(FontStyle::Bold);
            }
            let style = font.color(&BLACK).pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(labels[i].clone(), (px - 8, py), style))
                .map_err(|e| err(e.to_string()))?;

            match estimate(row) {
                Some(e) => {
                    let (lo, hi, v) = (e.lo.min(x_max), e.hi.min(x_max), e.value.min(x_max));
                    let cap = 0.22;
                    let stroke = colour.stroke_width(if aggregate { 3 } else { 2 });
                    chart
                        .draw_series([
                            PathElement::new(vec![(lo, y), (hi, y)], stroke),
                            PathElement::new(vec![(lo, y - cap), (lo, y + cap)], stroke),
                            PathElement::new(vec![(hi, y - cap), (hi, y + cap)], stroke),
                        ])
                        .map_err(|e| err(e.to_string()))?;
                    if aggregate {
                        chart
                            .draw_series([TriangleMarker::new((v, y), 7, colour.filled())])
                            .map_err(|e| err(e.to_string()))?;
                    } else {
                        chart
                            .draw_series([Circle::new((v, y), 4, colour.filled())])
                            .map_err(|e| err(e.to_string()))?;
                    }
                    let (tx, ty) = chart.backend_coord(&(hi, y));
                    let text = format!("{:.1}", e.value);
                    let style = (FONT, 11)
                        .into_font()
                        .color(&RGBColor(60, 60, 60))
                        .pos(Pos::new(HPos::Left, VPos::Center));
                    root.draw(&Text::new(text, (tx + 6, ty), style))
                        .map_err(|e| err(e.to_string()))?;
                }
                None => {
                    let reason = row
                        .gap_reason(coherence)
                        .unwrap_or_else(|| "no figure".into());
                    let (tx, ty) = chart.backend_coord(&(0.0, y));
                    let style = (FONT, 11)
                        .into_font()
                        .style(FontStyle::Italic)
                        .color(&GAP_COLOUR)
                        .pos(Pos::new(HPos::Left, VPos::Center));
                    root.draw(&Text::new(format!("— {reason} —"), (tx + 6, ty), style))
                        .map_err(|e| err(e.to_string()))?;
                }
            }
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(svg)
}

/// Small multiples of aligned (x) vs coherent (y) per done cell with judged answers. `None`
/// when no cell has a judged answer.
pub(crate) fn scatter_panels(matrix: &Matrix) -> Result<Option<String>> {
    let err = plot_err("scatter");
    let cells: Vec<_> = matrix
        .rows
        .iter()
        .filter(|r| !r.points.is_empty())
        .collect();
    if cells.is_empty() {
        return Ok(None);
    }
    let cols = cells.len().min(4);
    let grid_rows = cells.len().div_ceil(cols);
    let (pw, ph) = (300u32, 270u32);
    let colours = protocol_colours(matrix);
    let aligned_t = matrix.rule.aligned_below;
    let coherent_t = matrix.rule.coherent_above;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (pw * cols as u32, ph * grid_rows as u32))
            .into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let panels: Vec<DrawingArea<SVGBackend<'_>, Shift>> = root.split_evenly((grid_rows, cols));
        for (panel, row) in panels.iter().zip(&cells) {
            let colour = colour_of(&colours, &DisplayRow::Cell(row));
            let shown = row.points.len().min(MAX_POINTS_PER_PANEL);
            // shorten the names, never the seed
            let a = &row.row.axes;
            let v = &matrix.varying;
            let mut extra = String::new();
            if v.checkpoint {
                extra.push_str(&format!(" · {}", a.checkpoint.label()));
            }
            if v.scale {
                extra.push_str(&format!(" · ×{}", truncate(&a.scale, 6)));
            }
            if v.judge {
                extra.push_str(&format!(" · {}", truncate(&a.judge, 10)));
            }
            let caption = format!(
                "{} · {} · {} · s{}{extra} · {}",
                truncate(&a.model, 16),
                truncate(&a.protocol, 12),
                truncate(&a.dataset, 14),
                a.seed,
                if shown < row.points.len() {
                    format!("{shown} of {}", row.points.len())
                } else {
                    format!("n={shown}")
                },
            );
            let mut chart = ChartBuilder::on(panel)
                .caption(caption, (FONT, 11))
                .margin(6)
                .x_label_area_size(30)
                .y_label_area_size(42)
                .build_cartesian_2d(0f64..100f64, 0f64..100f64)
                .map_err(|e| err(e.to_string()))?;
            chart
                .configure_mesh()
                .x_labels(6)
                .y_labels(6)
                .x_desc("aligned")
                .y_desc("coherent")
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&|v| format!("{v:.0}"))
                .label_style((FONT, 10))
                .axis_desc_style((FONT, 10))
                .light_line_style(RGBColor(246, 246, 246))
                .max_light_lines(1)
                .draw()
                .map_err(|e| err(e.to_string()))?;
            // EM region: aligned below the threshold and coherent above it
            chart
                .draw_series([Rectangle::new(
                    [(0.0, coherent_t), (aligned_t, 100.0)],
                    RGBColor(214, 39, 40).mix(0.08).filled(),
                )])
                .map_err(|e| err(e.to_string()))?;
            let line = RGBColor(214, 39, 40).mix(0.7).stroke_width(1);
            chart
                .draw_series([
                    DashedPathElement::new(vec![(aligned_t, 0.0), (aligned_t, 100.0)], 4, 3, line),
                    DashedPathElement::new(
                        vec![(0.0, coherent_t), (100.0, coherent_t)],
                        4,
                        3,
                        line,
                    ),
                ])
                .map_err(|e| err(e.to_string()))?;
            let step = row.points.len().div_ceil(MAX_POINTS_PER_PANEL).max(1);
            chart
                .draw_series(row.points.iter().step_by(step).map(|&(a, c)| {
                    Circle::new(
                        (a.clamp(0.0, 100.0), c.clamp(0.0, 100.0)),
                        2,
                        colour.mix(0.45).filled(),
                    )
                }))
                .map_err(|e| err(e.to_string()))?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(Some(svg))
}

/// Every chart of a report, drawn once: the page inlines them, `plots/` holds them as files.
pub(crate) struct Charts {
    pub em: String,
    pub coherence: String,
    /// `None` when no row has a judged answer.
    pub scatter: Option<String>,
    /// EM % vs step; `None` unless the sweep has checkpoints other than `final`.
    pub em_vs_step: Option<String>,
    /// Mean aligned vs step; as `em_vs_step`.
    pub aligned_vs_step: Option<String>,
}

impl Charts {
    pub fn draw(matrix: &Matrix) -> Result<Charts> {
        Ok(Charts {
            em: interval_chart(matrix, false)?,
            coherence: interval_chart(matrix, true)?,
            scatter: scatter_panels(matrix)?,
            em_vs_step: step_chart(matrix, StepMetric::Em)?,
            aligned_vs_step: step_chart(matrix, StepMetric::MeanAligned)?,
        })
    }

    /// `(file name under plots/, svg)` of every chart drawn.
    pub fn files(&self) -> Vec<(&'static str, &str)> {
        [
            ("em.svg", Some(&self.em)),
            ("coherence.svg", Some(&self.coherence)),
            ("scatter.svg", self.scatter.as_ref()),
            ("em-vs-step.svg", self.em_vs_step.as_ref()),
            ("aligned-vs-step.svg", self.aligned_vs_step.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, svg)| Some((name, svg?.as_str())))
        .collect()
    }
}

/// What a step chart plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepMetric {
    /// EM % with its 95% interval as a bar.
    Em,
    /// Mean aligned score (0-100).
    MeanAligned,
}

/// At most this many step ticks are labelled (`final` always is).
const MAX_STEP_TICKS: usize = 12;

/// Where a checkpoint sits on the x axis: its step, or `final_x` for `final`.
fn x_of(w: &Weights, final_x: f64) -> f64 {
    w.step().map_or(final_x, |n| n as f64)
}

/// Figures vs training step, one line per [`Curve`], one panel per judge (stacked). `None` when
/// the sweep has no checkpoint other than `final`. Steps are on x, `final` its own tick one step
/// interval after the last step (joined by a dashed segment: the steps between are not shown);
/// a base model's reference is a dashed horizontal line. A point without a figure (not done) is
/// a gap in its line, never a zero.
pub(crate) fn step_chart(matrix: &Matrix, metric: StepMetric) -> Result<Option<String>> {
    let name = match metric {
        StepMetric::Em => "em-vs-step",
        StepMetric::MeanAligned => "aligned-vs-step",
    };
    let err = plot_err(name);
    let curves = matrix.curves();
    if curves.is_empty() {
        return Ok(None);
    }
    let value = |p: &CurvePoint| match metric {
        StepMetric::Em => p.em.map(|e| e.value),
        StepMetric::MeanAligned => p.mean_aligned,
    };
    let mut steps: Vec<usize> = curves
        .iter()
        .flat_map(|c| c.points.iter().filter_map(|p| p.checkpoint.step()))
        .collect();
    steps.sort_unstable();
    steps.dedup();
    let (first, last) = (steps[0], *steps.last().expect("has_steps"));
    let gap = steps
        .windows(2)
        .map(|w| w[1] - w[0])
        .min()
        .unwrap_or(0)
        .max((last - first) / 10)
        .max(1);
    let final_x = (last + gap) as f64;
    let x_range = (first as f64 - gap as f64 * 0.4)..(final_x + gap as f64 * 0.4);
    let y_max = match metric {
        StepMetric::MeanAligned => 100.0,
        StepMetric::Em => {
            let top = curves
                .iter()
                .flat_map(|c| c.points.iter().filter_map(|p| p.em.map(|e| e.hi)))
                .fold(0.0f64, f64::max);
            ((top * 1.15 / 10.0).ceil() * 10.0).clamp(10.0, 100.0)
        }
    };
    // labelled ticks: every k-th step so that at most MAX_STEP_TICKS show, the last step, final
    let every = steps.len().div_ceil(MAX_STEP_TICKS).max(1);
    let mut ticks: Vec<f64> = steps.iter().step_by(every).map(|&s| s as f64).collect();
    if ticks.last() != Some(&(last as f64)) {
        ticks.push(last as f64);
    }
    ticks.push(final_x);

    let judges: Vec<&str> = {
        let mut j: Vec<&str> = Vec::new();
        for c in &curves {
            if !j.contains(&c.judge.as_str()) {
                j.push(&c.judge);
            }
        }
        j
    };
    let several_judges = judges.len() > 1;
    let (width, panel_h) = (980u32, 380u32);
    let (title, y_desc) = match metric {
        StepMetric::Em => (
            "EM % vs training step, one line per scale (95% bootstrap CI)",
            "EM, % of judged answers",
        ),
        StepMetric::MeanAligned => (
            "Mean aligned score vs training step, one line per scale",
            "mean aligned (0-100)",
        ),
    };

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, panel_h * judges.len() as u32))
            .into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let panels = root.split_evenly((judges.len(), 1));
        for (panel, judge) in panels.iter().zip(&judges) {
            let caption = if several_judges {
                format!("{title}: judge {judge}")
            } else {
                title.to_string()
            };
            let mut chart = ChartBuilder::on(panel)
                .caption(caption, (FONT, 16))
                .margin(12)
                .margin_right(24)
                .x_label_area_size(40)
                .y_label_area_size(48)
                .build_cartesian_2d(x_range.clone(), 0f64..y_max)
                .map_err(|e| err(e.to_string()))?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(0)
                .x_desc("training step")
                .y_desc(y_desc)
                .y_label_formatter(&|v| format!("{v:.0}"))
                .label_style((FONT, 12))
                .axis_desc_style((FONT, 13))
                .light_line_style(RGBColor(240, 240, 240))
                .max_light_lines(1)
                .draw()
                .map_err(|e| err(e.to_string()))?;
            // the step ticks, and `final` as a tick of its own
            chart
                .draw_series(ticks.iter().map(|&x| {
                    PathElement::new(vec![(x, 0.0), (x, y_max)], RGBColor(232, 232, 232))
                }))
                .map_err(|e| err(e.to_string()))?;
            let (base_x, base_y) = panel.get_base_pixel();
            for &x in &ticks {
                let text = if (x - final_x).abs() < 1e-9 {
                    "final".to_string()
                } else {
                    format!("{x:.0}")
                };
                let (px, py) = chart.backend_coord(&(x, 0.0));
                let style = (FONT, 12)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Top));
                panel
                    .draw(&Text::new(text, (px - base_x, py - base_y + 6), style))
                    .map_err(|e| err(e.to_string()))?;
            }

            let mut colour_index = 0usize;
            for curve in curves.iter().filter(|c| c.judge == *judge) {
                let colour = if curve.is_base {
                    BASE_COLOUR
                } else {
                    let c = PALETTE[colour_index % PALETTE.len()];
                    colour_index += 1;
                    c
                };
                let stroke = colour.stroke_width(2);
                let label = curve.name.clone();
                let legend = move |(x, y): (i32, i32)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                };
                if curve.is_base || curve.points.iter().all(|p| p.checkpoint == Weights::Final) {
                    // a reference: the untrained model (or a row with only `final`)
                    let Some(v) = curve.points.iter().find_map(value) else {
                        continue;
                    };
                    chart
                        .draw_series([DashedPathElement::new(
                            vec![(x_range.start, v), (x_range.end, v)],
                            6,
                            4,
                            stroke,
                        )])
                        .map_err(|e| err(e.to_string()))?
                        .label(label)
                        .legend(legend);
                    continue;
                }
                // the line over the steps, broken where a checkpoint has no figure
                let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
                for p in curve
                    .points
                    .iter()
                    .filter(|p| p.checkpoint != Weights::Final)
                {
                    match value(p) {
                        Some(v) => segments
                            .last_mut()
                            .expect("one segment")
                            .push((x_of(&p.checkpoint, final_x), v)),
                        None => segments.push(Vec::new()),
                    }
                }
                segments.retain(|s| !s.is_empty());
                let mut labelled = false;
                for segment in &segments {
                    let series = chart
                        .draw_series([PathElement::new(segment.clone(), stroke)])
                        .map_err(|e| err(e.to_string()))?;
                    if !labelled {
                        series.label(label.clone()).legend(legend);
                        labelled = true;
                    }
                }
                // `final`, reached by a dashed segment from the last step with a figure
                let last_step = curve
                    .points
                    .iter()
                    .rev()
                    .find(|p| p.checkpoint != Weights::Final)
                    .and_then(|p| Some((x_of(&p.checkpoint, final_x), value(p)?)));
                let fin = curve
                    .points
                    .iter()
                    .find(|p| p.checkpoint == Weights::Final)
                    .and_then(|p| value(p).map(|v| (final_x, v)));
                if let (Some(from), Some(to)) = (last_step, fin) {
                    chart
                        .draw_series([DashedPathElement::new(vec![from, to], 4, 3, stroke)])
                        .map_err(|e| err(e.to_string()))?;
                }
                if let Some(to) = fin {
                    let series = chart
                        .draw_series([TriangleMarker::new(to, 6, colour.filled())])
                        .map_err(|e| err(e.to_string()))?;
                    // a line whose steps all lack figures is still in the legend
                    if !labelled {
                        series.label(label.clone()).legend(legend);
                    }
                }
                // points, with their interval for EM
                for p in &curve.points {
                    let x = x_of(&p.checkpoint, final_x);
                    if metric == StepMetric::Em
                        && let Some(e) = p.em
                    {
                        let (lo, hi) = (e.lo.min(y_max), e.hi.min(y_max));
                        let cap = gap as f64 * 0.08;
                        chart
                            .draw_series([
                                PathElement::new(vec![(x, lo), (x, hi)], colour.stroke_width(1)),
                                PathElement::new(
                                    vec![(x - cap, lo), (x + cap, lo)],
                                    colour.stroke_width(1),
                                ),
                                PathElement::new(
                                    vec![(x - cap, hi), (x + cap, hi)],
                                    colour.stroke_width(1),
                                ),
                            ])
                            .map_err(|e| err(e.to_string()))?;
                    }
                    if p.checkpoint != Weights::Final
                        && let Some(v) = value(p)
                    {
                        chart
                            .draw_series([Circle::new((x, v), 3, colour.filled())])
                            .map_err(|e| err(e.to_string()))?;
                    }
                }
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .label_font((FONT, 12))
                .draw()
                .map_err(|e| err(e.to_string()))?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(Some(svg))
}
