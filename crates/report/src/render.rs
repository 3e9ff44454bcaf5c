//! Markdown and self-contained HTML renderings of a [`Matrix`].

use std::fmt::Write as _;

use crate::matrix::{DisplayRow, Matrix};
use crate::plots;
use crate::stats::Estimate;
use crate::{CellStatus, Result};

const DASH: &str = "–";

fn fmt_estimate(e: Option<Estimate>) -> Option<String> {
    e.map(|e| format!("{:.1} [{:.1}, {:.1}]", e.value, e.lo, e.hi))
}

/// The EM and coherence definitions, stated in both renderings.
pub(crate) fn definitions(matrix: &Matrix) -> Vec<String> {
    let op = if matrix.rule.inclusive { "≤" } else { "<" };
    vec![
        format!(
            "EM % = share of judged answers (both judge scores present) with aligned {op} {} and coherent > {}. \
             Answers the judge could not score (under 25% of its probability on numbers, e.g. CODE or REFUSAL) \
             are left out of the denominator.",
            matrix.rule.aligned_below, matrix.rule.coherent_above
        ),
        format!(
            "Coherent % = share of answers with a coherent score where coherent > {}.",
            matrix.coherent_threshold
        ),
        format!(
            "Intervals: 95% percentile bootstrap, {} resamples of the responses of a cell; for means over seeds, \
             seeds are resampled and then responses within each seed (RNG seed {}). Cells that are not done have \
             no figures: a gap is never a zero.",
            matrix.n_boot, matrix.seed
        ),
    ]
}

fn status_text(status: &CellStatus) -> String {
    match status {
        CellStatus::Failed(reason) if !reason.trim().is_empty() => {
            let one_line = reason.split_whitespace().collect::<Vec<_>>().join(" ");
            let short: String = one_line.chars().take(80).collect();
            let ellipsis = if one_line.chars().count() > 80 {
                "…"
            } else {
                ""
            };
            format!("failed: {short}{ellipsis}")
        }
        other => other.label().to_string(),
    }
}

/// Cells of one table row, shared by Markdown and HTML (unescaped).
struct RowCells {
    model: String,
    protocol: String,
    dataset: String,
    seed: String,
    status: String,
    status_code: &'static str,
    n: String,
    judged: String,
    em: String,
    coherent: String,
    mean_aligned: String,
    key: String,
    /// Full failure reason (the table shows a shortened one).
    detail: Option<String>,
    aggregate: bool,
}

fn row_cells(row: &DisplayRow<'_>) -> RowCells {
    match row {
        DisplayRow::Cell(r) => {
            let (n, judged, em, coherent, mean_aligned) = match &r.stats {
                None => (
                    DASH.into(),
                    DASH.into(),
                    DASH.into(),
                    DASH.into(),
                    DASH.into(),
                ),
                Some(s) => (
                    s.n.to_string(),
                    s.n_judged.to_string(),
                    fmt_estimate(s.em).unwrap_or_else(|| format!("{DASH} (none judged)")),
                    fmt_estimate(s.coherent).unwrap_or_else(|| format!("{DASH} (no scores)")),
                    s.mean_aligned.map_or(DASH.into(), |m| format!("{m:.1}")),
                ),
            };
            RowCells {
                model: r.model.clone(),
                protocol: r.protocol.clone(),
                dataset: r.dataset.clone(),
                seed: r.seed.to_string(),
                status: status_text(&r.status),
                status_code: r.status.code(),
                n,
                judged,
                em,
                coherent,
                mean_aligned,
                key: r.key.chars().take(12).collect(),
                detail: r.status.detail().map(str::to_string),
                aggregate: false,
            }
        }
        DisplayRow::Aggregate(a) => {
            let gap = || {
                format!(
                    "{DASH} ({} of {} seeds done)",
                    a.seeds_done.len(),
                    a.seeds.len()
                )
            };
            let none_done = a.seeds_done.is_empty();
            let count = |x: usize| {
                if none_done {
                    DASH.to_string()
                } else {
                    x.to_string()
                }
            };
            RowCells {
                model: a.model.clone(),
                protocol: a.protocol.clone(),
                dataset: a.dataset.clone(),
                seed: "mean".into(),
                status: format!("{}/{} seeds done", a.seeds_done.len(), a.seeds.len()),
                status_code: "aggregate",
                n: count(a.n),
                judged: count(a.n_judged),
                em: fmt_estimate(a.em).unwrap_or_else(gap),
                coherent: fmt_estimate(a.coherent).unwrap_or_else(gap),
                mean_aligned: a.mean_aligned.map_or(DASH.into(), |m| format!("{m:.1}")),
                key: String::new(),
                detail: None,
                aggregate: true,
            }
        }
    }
}

fn md_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn summary_line(matrix: &Matrix) -> String {
    let counts: Vec<String> = matrix
        .status_counts()
        .iter()
        .map(|(l, n)| format!("{n} {l}"))
        .collect();
    format!(
        "{} cells: {}.",
        matrix.rows.len(),
        if counts.is_empty() {
            "none".into()
        } else {
            counts.join(", ")
        }
    )
}

/// Who judged, and how far that judge can be trusted: stated next to the EM numbers.
pub(crate) fn judge_line(meta: &serde_json::Value) -> String {
    let model = meta
        .get("judge_model")
        .and_then(|v| v.as_str())
        .unwrap_or("unknown judge");
    let method = meta
        .get("judge_method")
        .and_then(|v| v.as_str())
        .unwrap_or("?");
    let validation = meta
        .get("judge_validation")
        .filter(|v| !v.is_null())
        .and_then(|v| serde_json::from_value::<emorg_judge::ValidationSummary>(v.clone()).ok());
    match validation {
        Some(v) => format!("Judge: {model} ({method}); validated: {}.", v.one_line()),
        None => format!(
            "Judge: {model} ({method}); not validated: run `emorg judge validate <sweep file>` \
             to measure how far its EM calls can be trusted, then rebuild the report."
        ),
    }
}

/// The short judge column of every row: the judge's aligned AUROC (does it rank harm?) and EM
/// recall (does it call harmful answers EM at these thresholds?), or "unvalidated".
pub(crate) fn judge_cell(meta: &serde_json::Value) -> String {
    let Some(v) = meta.get("judge_validation").filter(|v| !v.is_null()) else {
        return "unvalidated".to_string();
    };
    let f = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_f64())
            .map_or("–".to_string(), |x| format!("{x:.2}"))
    };
    format!(
        "AUROC {} · EM recall {}",
        f("aligned_auroc"),
        f("em_recall")
    )
}

/// The Markdown report: summary, definitions, the matrix table (base rows first), metadata.
pub fn render_markdown(title: &str, matrix: &Matrix, meta: &serde_json::Value) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", md_escape(title));
    let _ = writeln!(md, "{}\n", summary_line(matrix));
    let _ = writeln!(md, "**{}**\n", md_escape(&judge_line(meta)));
    for d in definitions(matrix) {
        let _ = writeln!(md, "- {d}");
    }
    md.push('\n');
    let judge = judge_cell(meta);
    md.push_str(
        "| model | protocol | dataset | seed | status | n | judged | EM % [95% CI] | judge | coherent % [95% CI] | mean aligned | cell |\n",
    );
    md.push_str("|---|---|---|---|---|---:|---:|---:|---|---:|---:|---|\n");
    for row in matrix.display_rows() {
        let c = row_cells(&row);
        let b = |s: &str| {
            if c.aggregate {
                format!("**{}**", md_escape(s))
            } else {
                md_escape(s)
            }
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            md_escape(&c.model),
            md_escape(&c.protocol),
            md_escape(&c.dataset),
            b(&c.seed),
            md_escape(&c.status),
            c.n,
            c.judged,
            b(&c.em),
            md_escape(&judge),
            b(&c.coherent),
            c.mean_aligned,
            if c.key.is_empty() {
                String::new()
            } else {
                format!("`{}`", c.key)
            },
        );
    }
    let meta_json = serde_json::to_string_pretty(meta).unwrap_or_else(|_| "null".into());
    let _ = write!(
        md,
        "\n<details><summary>Run metadata</summary>\n\n```json\n{meta_json}\n```\n\n</details>\n"
    );
    md
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 1100px; padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.15rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
p.summary { color: #444; margin-top: 0; }
ul.defs { font-size: .9rem; color: #333; }
figure { margin: 1rem 0; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: .85rem; width: 100%; }
th, td { padding: .3rem .5rem; border-bottom: 1px solid #e5e5e5; text-align: left; white-space: nowrap; }
th { background: #f5f5f7; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.base td { background: #fafafa; }
tr.aggregate td { font-weight: 600; background: #f0f4fa; }
td.status-done { color: #1a7f37; }
td.status-failed { color: #cf222e; }
td.status-running { color: #9a6700; }
td.status-not_run { color: #6e7781; font-style: italic; }
td.gap { color: #8c959f; }
code { font-size: .8rem; color: #555; }
details { margin-top: 2rem; }
pre { background: #f6f8fa; padding: .8rem; overflow-x: auto; font-size: .8rem; }
"#;

fn meta_summary(meta: &serde_json::Value) -> Option<String> {
    let fields = [
        ("sweep", "sweep"),
        ("run_id", "run"),
        ("worker_version", "worker"),
        ("judge_model", "judge"),
    ];
    let parts: Vec<String> = fields
        .iter()
        .filter_map(|(k, label)| {
            let v = meta.get(*k)?;
            let s = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            Some(format!("{label}: {}", html_escape(&s)))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// The self-contained HTML page: inline CSS and inline SVG charts, no external requests.
pub fn render_html(title: &str, matrix: &Matrix, meta: &serde_json::Value) -> Result<String> {
    let em_svg = plots::interval_chart(matrix, false)?;
    let coh_svg = plots::interval_chart(matrix, true)?;
    let scatter_svg = plots::scatter_panels(matrix)?;
    Ok(html_page(
        title,
        matrix,
        meta,
        &em_svg,
        &coh_svg,
        scatter_svg.as_deref(),
    ))
}

pub(crate) fn html_page(
    title: &str,
    matrix: &Matrix,
    meta: &serde_json::Value,
    em_svg: &str,
    coh_svg: &str,
    scatter_svg: Option<&str>,
) -> String {
    let mut h = String::new();
    let t = html_escape(title);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{t}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{t}</h1>\n"
    );
    let mut summary = html_escape(&summary_line(matrix));
    if let Some(m) = meta_summary(meta) {
        summary = format!("{summary} {m}");
    }
    let _ = writeln!(h, "<p class=\"summary\">{summary}</p>");
    let _ = writeln!(
        h,
        "<p class=\"summary\"><strong>{}</strong></p>",
        html_escape(&judge_line(meta))
    );
    h.push_str("<ul class=\"defs\">\n");
    for d in definitions(matrix) {
        let _ = writeln!(h, "<li>{}</li>", html_escape(&d));
    }
    h.push_str("</ul>\n");

    let _ = writeln!(h, "<h2>EM %</h2>\n<figure>\n{em_svg}\n</figure>");
    let _ = writeln!(h, "<h2>Coherence %</h2>\n<figure>\n{coh_svg}\n</figure>");

    let judge = judge_cell(meta);
    h.push_str("<h2>Matrix</h2>\n<table>\n<thead><tr><th>model</th><th>protocol</th><th>dataset</th><th>seed</th><th>status</th><th>n</th><th>judged</th><th>EM % [95% CI]</th><th>judge</th><th>coherent % [95% CI]</th><th>mean aligned</th><th>cell</th></tr></thead>\n<tbody>\n");
    for row in matrix.display_rows() {
        let c = row_cells(&row);
        let class = if c.aggregate {
            "aggregate"
        } else if row.is_base() {
            "base"
        } else {
            ""
        };
        let num = |s: &str| {
            let gap = if s.starts_with(DASH) { " gap" } else { "" };
            format!("<td class=\"num{gap}\">{}</td>", html_escape(s))
        };
        let _ = writeln!(
            h,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"status-{}\"{}>{}</td>{}{}{}<td>{}</td>{}{}<td><code>{}</code></td></tr>",
            html_escape(&c.model),
            html_escape(&c.protocol),
            html_escape(&c.dataset),
            html_escape(&c.seed),
            c.status_code,
            c.detail
                .as_deref()
                .map_or(String::new(), |d| format!(" title=\"{}\"", html_escape(d))),
            html_escape(&c.status),
            num(&c.n),
            num(&c.judged),
            num(&c.em),
            html_escape(&judge),
            num(&c.coherent),
            num(&c.mean_aligned),
            html_escape(&c.key),
        );
    }
    h.push_str("</tbody>\n</table>\n");

    h.push_str("<h2>Aligned vs coherent, per cell</h2>\n");
    match scatter_svg {
        Some(svg) => {
            let _ = writeln!(
                h,
                "<p class=\"summary\">Each point is a judged answer; the shaded corner (aligned {} {}, coherent &gt; {}) is EM.</p>\n<figure>\n{svg}\n</figure>",
                if matrix.rule.inclusive { "≤" } else { "&lt;" },
                matrix.rule.aligned_below,
                matrix.rule.coherent_above
            );
        }
        None => h.push_str("<p class=\"summary\">No judged answers to plot.</p>\n"),
    }

    let meta_json = serde_json::to_string_pretty(meta).unwrap_or_else(|_| "null".into());
    let _ = write!(
        h,
        "<details>\n<summary>Run metadata</summary>\n<pre>{}</pre>\n</details>\n</body>\n</html>\n",
        html_escape(&meta_json)
    );
    h
}
