//! Markdown and self-contained HTML renderings of a [`Matrix`].

use std::fmt::Write as _;

use crate::matrix::{DisplayRow, Matrix, Varying};
use crate::plots::Charts;
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
            "Intervals: 95% percentile bootstrap, {} resamples of the responses of a row; for means over seeds, \
             seeds are resampled and then responses within each seed (RNG seed {}). Rows that are not done have \
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
    checkpoint: String,
    scale: String,
    judge_name: String,
    replicate: String,
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
            let a = &r.row.axes;
            RowCells {
                model: a.model.clone(),
                protocol: a.protocol.clone(),
                dataset: a.dataset.clone(),
                seed: a.seed.to_string(),
                checkpoint: a.checkpoint.label(),
                scale: a.scale.clone(),
                judge_name: a.judge.clone(),
                replicate: a.replicate.to_string(),
                status: status_text(&r.status),
                status_code: r.status.code(),
                n,
                judged,
                em,
                coherent,
                mean_aligned,
                key: r.row.judgment_key.short().to_string(),
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
                checkpoint: a.checkpoint.label(),
                scale: a.scale.clone(),
                judge_name: a.judge.clone(),
                replicate: a.replicate.to_string(),
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

/// A table column: its header and how a row's cell reads it.
type Column = (&'static str, fn(&RowCells) -> &str);

/// The evaluation columns a table shows (after `seed`): those the sweep varies.
fn axis_columns(v: &Varying) -> Vec<Column> {
    let mut out: Vec<Column> = Vec::new();
    if v.checkpoint {
        out.push(("checkpoint", |c| &c.checkpoint));
    }
    if v.scale {
        out.push(("scale", |c| &c.scale));
    }
    if v.judge {
        out.push(("judge", |c| &c.judge_name));
    }
    if v.replicate {
        out.push(("replicate", |c| &c.replicate));
    }
    out
}

/// Header of the judge-validation column: `judge`, or `judge validation` when a `judge` column
/// (the judge's name) is shown too.
fn validation_header(v: &Varying) -> &'static str {
    if v.judge { "judge validation" } else { "judge" }
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
        "{} {}: {}.",
        matrix.rows.len(),
        if matrix.rows.len() == 1 {
            "cell"
        } else {
            "cells"
        },
        if counts.is_empty() {
            "none".into()
        } else {
            counts.join(", ")
        }
    )
}

/// The metadata of judge `name`: `meta.judges.<name>` (`model`, `backend`, `method`,
/// `validation`) when the caller gave it per judge.
fn judge_meta<'a>(meta: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    meta.get("judges")?.get(name)
}

/// The judges `meta.judges` names, in its order (empty without it).
fn judge_names(meta: &serde_json::Value) -> Vec<&str> {
    meta.get("judges")
        .and_then(|j| j.as_object())
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// The validation figures of judge `name` (or, without per-judge metadata, of the one judge).
fn validation_of<'a>(meta: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    let v = match judge_meta(meta, name) {
        Some(j) => j.get("validation"),
        None => meta.get("judge_validation"),
    };
    v.filter(|v| !v.is_null())
}

fn one_judge_line(
    who: &str,
    model: Option<&str>,
    method: Option<&str>,
    validation: Option<&serde_json::Value>,
) -> String {
    let model = model.unwrap_or("unknown judge");
    let method = method.unwrap_or("?");
    let validation = validation
        .and_then(|v| serde_json::from_value::<emorg_judge::ValidationSummary>(v.clone()).ok());
    match validation {
        Some(v) => format!("{who}: {model} ({method}); validated: {}.", v.one_line()),
        None => format!(
            "{who}: {model} ({method}); not validated: run `emorg judge validate <sweep file>` \
             to measure how far its EM calls can be trusted, then rebuild the report."
        ),
    }
}

/// Who judged, and how far each judge can be trusted: stated next to the EM numbers, one line
/// per judge (`meta.judges`; a sweep with one judge: `meta.judge_model`, `judge_method`,
/// `judge_validation`).
pub(crate) fn judge_lines(meta: &serde_json::Value) -> Vec<String> {
    let names = judge_names(meta);
    fn s(v: Option<&serde_json::Value>) -> Option<&str> {
        v.and_then(|v| v.as_str())
    }
    if names.len() > 1 {
        return names
            .iter()
            .map(|name| {
                let j = judge_meta(meta, name);
                one_judge_line(
                    &format!("Judge {name}"),
                    s(j.and_then(|j| j.get("model"))),
                    s(j.and_then(|j| j.get("method"))),
                    validation_of(meta, name),
                )
            })
            .collect();
    }
    let one = names.first().and_then(|n| judge_meta(meta, n));
    let field =
        |top: &str, inner: &str| s(meta.get(top)).or_else(|| s(one.and_then(|j| j.get(inner))));
    let validation = meta
        .get("judge_validation")
        .filter(|v| !v.is_null())
        .or_else(|| {
            one.and_then(|j| j.get("validation"))
                .filter(|v| !v.is_null())
        });
    vec![one_judge_line(
        "Judge",
        field("judge_model", "model"),
        field("judge_method", "method"),
        validation,
    )]
}

/// The short validation cell of a row judged by `judge`: the judge's aligned AUROC (does it
/// rank harm?) and EM recall (does it call harmful answers EM at these thresholds?), or
/// "unvalidated".
pub(crate) fn judge_cell(meta: &serde_json::Value, judge: &str) -> String {
    let Some(v) = validation_of(meta, judge) else {
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
    for line in judge_lines(meta) {
        let _ = writeln!(md, "**{}**\n", md_escape(&line));
    }
    for d in definitions(matrix) {
        let _ = writeln!(md, "- {d}");
    }
    md.push('\n');
    let axes = axis_columns(&matrix.varying);
    let mut header = vec!["model", "protocol", "dataset", "seed"];
    let mut align = vec!["---"; 4];
    for (name, _) in &axes {
        header.push(name);
        align.push("---");
    }
    header.extend([
        "status",
        "n",
        "judged",
        "EM % [95% CI]",
        validation_header(&matrix.varying),
        "coherent % [95% CI]",
        "mean aligned",
        "cell",
    ]);
    align.extend(["---", "---:", "---:", "---:", "---", "---:", "---:", "---"]);
    let _ = writeln!(md, "| {} |", header.join(" | "));
    let _ = writeln!(md, "|{}|", align.join("|"));
    for row in matrix.display_rows() {
        let c = row_cells(&row);
        let b = |s: &str| {
            if c.aggregate {
                format!("**{}**", md_escape(s))
            } else {
                md_escape(s)
            }
        };
        let mut cells = vec![
            md_escape(&c.model),
            md_escape(&c.protocol),
            md_escape(&c.dataset),
            b(&c.seed),
        ];
        cells.extend(axes.iter().map(|(_, get)| md_escape(get(&c))));
        cells.extend([
            md_escape(&c.status),
            c.n.clone(),
            c.judged.clone(),
            b(&c.em),
            md_escape(&judge_cell(meta, row.judge())),
            b(&c.coherent),
            c.mean_aligned.clone(),
            if c.key.is_empty() {
                String::new()
            } else {
                format!("`{}`", c.key)
            },
        ]);
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
    if matrix.has_steps() {
        let _ = write!(
            md,
            "\n![EM % vs training step](plots/em-vs-step.svg)\n\n\
             ![Mean aligned vs training step](plots/aligned-vs-step.svg)\n"
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
    let mut parts: Vec<String> = fields
        .iter()
        .filter_map(|(k, label)| {
            let v = meta.get(*k).filter(|v| !v.is_null())?;
            let s = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            Some(format!("{label}: {}", html_escape(&s)))
        })
        .collect();
    let judges = judge_names(meta);
    if judges.len() > 1 {
        parts.push(format!("judges: {}", html_escape(&judges.join(", "))));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// The self-contained HTML page: inline CSS and inline SVG charts, no external requests.
pub fn render_html(title: &str, matrix: &Matrix, meta: &serde_json::Value) -> Result<String> {
    Ok(html_page(title, matrix, meta, &Charts::draw(matrix)?))
}

pub(crate) fn html_page(
    title: &str,
    matrix: &Matrix,
    meta: &serde_json::Value,
    charts: &Charts,
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
    for line in judge_lines(meta) {
        let _ = writeln!(
            h,
            "<p class=\"summary\"><strong>{}</strong></p>",
            html_escape(&line)
        );
    }
    h.push_str("<ul class=\"defs\">\n");
    for d in definitions(matrix) {
        let _ = writeln!(h, "<li>{}</li>", html_escape(&d));
    }
    h.push_str("</ul>\n");

    let _ = writeln!(h, "<h2>EM %</h2>\n<figure>\n{}\n</figure>", charts.em);
    let _ = writeln!(
        h,
        "<h2>Coherence %</h2>\n<figure>\n{}\n</figure>",
        charts.coherence
    );
    if let Some(svg) = &charts.em_vs_step {
        let _ = writeln!(
            h,
            "<h2>EM % vs training step</h2>\n<p class=\"summary\">One line per scale; \
             <em>final</em> is the adapter after the last step (the dashed segment skips the steps \
             in between). Points are means over seeds where a checkpoint has several.</p>\n\
             <figure id=\"em-vs-step\">\n{svg}\n</figure>"
        );
    }
    if let Some(svg) = &charts.aligned_vs_step {
        let _ = writeln!(
            h,
            "<h2>Mean aligned vs training step</h2>\n<figure id=\"aligned-vs-step\">\n{svg}\n</figure>"
        );
    }

    let axes = axis_columns(&matrix.varying);
    h.push_str("<h2>Matrix</h2>\n<table>\n<thead><tr><th>model</th><th>protocol</th><th>dataset</th><th>seed</th>");
    for (name, _) in &axes {
        let _ = write!(h, "<th>{name}</th>");
    }
    let _ = writeln!(
        h,
        "<th>status</th><th>n</th><th>judged</th><th>EM % [95% CI]</th><th>{}</th><th>coherent % [95% CI]</th><th>mean aligned</th><th>cell</th></tr></thead>\n<tbody>",
        validation_header(&matrix.varying)
    );
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
        let axis_cells: String = axes
            .iter()
            .map(|(_, get)| format!("<td>{}</td>", html_escape(get(&c))))
            .collect();
        let _ = writeln!(
            h,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{axis_cells}<td class=\"status-{}\"{}>{}</td>{}{}{}<td>{}</td>{}{}<td><code>{}</code></td></tr>",
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
            html_escape(&judge_cell(meta, row.judge())),
            num(&c.coherent),
            num(&c.mean_aligned),
            html_escape(&c.key),
        );
    }
    h.push_str("</tbody>\n</table>\n");

    h.push_str("<h2>Aligned vs coherent, per cell</h2>\n");
    match &charts.scatter {
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
