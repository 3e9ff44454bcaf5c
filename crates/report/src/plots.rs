//! SVG charts drawn with plotters (SVG backend only: no fonts or C libraries needed).
//!
//! - [`interval_chart`]: one horizontal row per cell (and per mean over seeds), a point at the
//!   estimate and a bar over its 95% interval. Rows without a figure say why (`not run`,
//!   `failed`, ...) instead of drawing a zero.
//! - [`scatter_panels`]: small multiples of aligned vs coherent per done cell, with the EM
//!   thresholds drawn and the EM region shaded.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::matrix::{DisplayRow, Matrix};
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
const MAX_LABEL_CHARS: usize = 64;
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
        if !out.iter().any(|(p, _)| *p == row.protocol) {
            let c = PALETTE[out.len() % PALETTE.len()];
            out.push((row.protocol.clone(), c));
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
        .map(|r| truncate(&r.label(), MAX_LABEL_CHARS))
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
            let caption = format!(
                "{} · {} · {} · s{} · {}",
                truncate(&row.model, 16),
                truncate(&row.protocol, 12),
                truncate(&row.dataset, 14),
                row.seed,
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
