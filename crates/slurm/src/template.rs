//! Job-script templates (minijinja): the built-in `templates/slurm/*.sbatch.j2`, or a directory of
//! the same names that overrides them (`[slurm].templates`).
//!
//! Every `{{ value }}` is shell-quoted unless marked `|safe`; `|directive` refuses a value that
//! sbatch would misread in an `#SBATCH` line. A variable the context does not define is an error
//! that names it (checked before rendering, and by minijinja's strict undefined behaviour).

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};
use emorg_spec::Stage;
use minijinja::value::ValueKind;
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value};
use serde::Serialize;

const BUILTIN: &[(&str, &str)] = &[
    (
        "base.sbatch.j2",
        include_str!("../../../templates/slurm/base.sbatch.j2"),
    ),
    (
        "train.sbatch.j2",
        include_str!("../../../templates/slurm/train.sbatch.j2"),
    ),
    (
        "sample.sbatch.j2",
        include_str!("../../../templates/slurm/sample.sbatch.j2"),
    ),
    (
        "judge.sbatch.j2",
        include_str!("../../../templates/slurm/judge.sbatch.j2"),
    ),
];

/// Quotes a string for a POSIX shell: as is when every character is safe, else in single quotes.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn directive(value: Value) -> Result<Value, Error> {
    let s = value.to_string();
    let bad: String = s
        .chars()
        .filter(|c| !c.is_ascii_graphic() || "'\"`$;#\\<>".contains(*c))
        .collect();
    if s.is_empty() || !bad.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "{s:?} cannot go into an #SBATCH line (spaces, quotes and shell metacharacters are refused)"
            ),
        ));
    }
    Ok(Value::from_safe_string(s))
}

/// The variables a job script may use.
#[derive(Debug, Clone, Serialize)]
pub struct ScriptContext {
    pub sweep: String,
    pub stage: String,
    pub job_name: String,
    /// The array's indices (`0-499`, `0,2,5-9`) plus `%throttle`.
    pub array: String,
    /// Tasks in the array.
    pub n_tasks: usize,
    /// The Slurm output path pattern (`%A`, `%a`).
    pub output: String,
    /// The keys file: line i+1 is the key of the stage's owner (unit, variant or judgment) at
    /// array index i.
    pub keys_file: String,
    pub worker: String,
    pub store_url: String,
    pub threads: u32,
    pub grace_s: u32,
    pub max_requeues: u32,
    pub emorg_version: String,
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    pub time: Option<String>,
    pub mem: Option<String>,
    pub cpus_per_task: Option<u32>,
    pub gpus: Option<String>,
    pub gres: Option<String>,
    pub constraint: Option<String>,
    pub exclusive: bool,
    pub setup: Vec<String>,
    pub env: std::collections::BTreeMap<String, String>,
    pub extra: Vec<String>,
}

impl ScriptContext {
    fn names() -> BTreeSet<String> {
        // The field names, from a serialised value of every field.
        let v = serde_json::to_value(ScriptContext {
            sweep: String::new(),
            stage: String::new(),
            job_name: String::new(),
            array: String::new(),
            n_tasks: 0,
            output: String::new(),
            keys_file: String::new(),
            worker: String::new(),
            store_url: String::new(),
            threads: 1,
            grace_s: 0,
            max_requeues: 0,
            emorg_version: String::new(),
            partition: None,
            account: None,
            qos: None,
            time: None,
            mem: None,
            cpus_per_task: None,
            gpus: None,
            gres: None,
            constraint: None,
            exclusive: false,
            setup: vec![],
            env: Default::default(),
            extra: vec![],
        })
        .expect("serialisable");
        v.as_object().expect("an object").keys().cloned().collect()
    }
}

pub struct Templates {
    env: Environment<'static>,
    /// Where the templates come from, for messages.
    origin: String,
}

impl Templates {
    /// The built-in templates, each replaced by a file of the same name in `dir` when given (a
    /// directory may also add templates that its files include or extend).
    pub fn load(dir: Option<&Path>) -> Result<Templates> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_formatter(|out, _state, value| {
            let text =
                if value.is_safe() || matches!(value.kind(), ValueKind::Number | ValueKind::Bool) {
                    value.to_string()
                } else if value.is_none() {
                    String::new()
                } else {
                    shell_quote(&value.to_string())
                };
            out.write_str(&text)
                .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()))
        });
        env.add_filter("directive", directive);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()
                .expect("a valid syntax"),
        );
        let mut sources: Vec<(String, String)> = BUILTIN
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        let origin = match dir {
            None => "the built-in templates (templates/slurm/)".to_string(),
            Some(dir) => {
                let entries = std::fs::read_dir(dir).with_context(|| {
                    format!(
                        "cannot read the templates directory {} ([slurm].templates)",
                        dir.display()
                    )
                })?;
                for entry in entries {
                    let path = entry?.path();
                    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                        continue;
                    };
                    if !name.ends_with(".j2") {
                        continue;
                    }
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    sources.retain(|(n, _)| n != name);
                    sources.push((name.to_string(), text));
                }
                format!("{} (over the built-in templates)", dir.display())
            }
        };
        for (name, text) in sources {
            env.add_template_owned(name.clone(), text)
                .map_err(|e| anyhow::anyhow!("template {name} in {origin}: {e:#}"))?;
        }
        let t = Templates { env, origin };
        t.check_variables()?;
        Ok(t)
    }

    /// Every variable a template reads must be one of [`ScriptContext`]'s.
    fn check_variables(&self) -> Result<()> {
        let known = ScriptContext::names();
        let mut problems = Vec::new();
        for (name, template) in self.env.templates() {
            let used = template.undeclared_variables(false);
            let mut unknown: Vec<&String> = used.iter().filter(|v| !known.contains(*v)).collect();
            unknown.sort();
            for v in unknown {
                let hint = suggest(v, &known);
                problems.push(format!(
                    "template {name} uses an unknown variable `{v}`{hint}"
                ));
            }
        }
        if !problems.is_empty() {
            bail!(
                "{} in {}; the variables are: {}",
                problems.join("; "),
                self.origin,
                known.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
        Ok(())
    }

    pub fn render(&self, stage: Stage, ctx: &ScriptContext) -> Result<String> {
        let name = format!("{}.sbatch.j2", stage.as_str());
        let template = self
            .env
            .get_template(&name)
            .map_err(|e| anyhow::anyhow!("no template {name} in {}: {e}", self.origin))?;
        template.render(minijinja::value::Serde(ctx)).map_err(|e| {
            let line = e.line().map(|l| format!(":{l}")).unwrap_or_default();
            let detail = e
                .detail()
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string());
            anyhow::anyhow!(
                "cannot render {}{line} ({}): {detail}",
                e.name().unwrap_or(&name),
                self.origin,
            )
        })
    }
}

/// " (did you mean `x`?)" when a known name is close (the one suggestion rule, emorg-spec's).
fn suggest(word: &str, known: &BTreeSet<String>) -> String {
    emorg_spec::suggest::nearest(word, known)
        .map(|k| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn context() -> ScriptContext {
        ScriptContext {
            sweep: "s".into(),
            stage: "train".into(),
            job_name: "emorg-s-train".into(),
            array: "0-2,5%2".into(),
            n_tasks: 4,
            output: "/tmp/x/logs/train-%A_%a.out".into(),
            keys_file: "/tmp/dir with space/c000-default-train.keys".into(),
            worker: "/opt/emorg-worker".into(),
            store_url: "file:///tmp/store".into(),
            threads: 2,
            grace_s: 120,
            max_requeues: 3,
            emorg_version: "0".into(),
            partition: Some("gpu".into()),
            account: None,
            qos: None,
            time: Some("01:00:00".into()),
            mem: Some("4G".into()),
            cpus_per_task: Some(2),
            gpus: None,
            gres: None,
            constraint: None,
            exclusive: true,
            setup: vec!["module load cuda/12".into()],
            env: [("HF_HOME".to_string(), "/a b/'c'".to_string())].into(),
            extra: vec!["--mail-type=FAIL".into()],
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("abc/d-1.2"), "abc/d-1.2");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn builtin_templates_render_with_quoted_values() {
        let t = Templates::load(None).unwrap();
        let s = t.render(Stage::Train, &context()).unwrap();
        assert!(
            s.starts_with("#!/bin/bash\n#SBATCH --job-name=emorg-s-train\n"),
            "{s}"
        );
        for line in [
            "#SBATCH --array=0-2,5%2",
            "#SBATCH --partition=gpu",
            "#SBATCH --mem=4G",
            "#SBATCH --cpus-per-task=2",
            "#SBATCH --exclusive",
            "#SBATCH --mail-type=FAIL",
            "#SBATCH --signal=B:USR1@120",
            "module load cuda/12",
            r"export HF_HOME='/a b/'\''c'\'''",
            "keys_file='/tmp/dir with space/c000-default-train.keys'",
            "/opt/emorg-worker train --store file:///tmp/store --key \"$key\" --threads 2 &",
        ] {
            assert!(s.lines().any(|l| l == line), "no line {line:?} in\n{s}");
        }
        assert!(!s.contains("--account"), "{s}");
    }

    #[test]
    fn unknown_variable_and_bad_directive_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("train.sbatch.j2"),
            "{% extends \"base.sbatch.j2\" %}{% block resources %}\n#SBATCH --partition={{ partiton }}{% endblock %}",
        )
        .unwrap();
        let e = Templates::load(Some(dir.path())).err().unwrap().to_string();
        assert!(
            e.contains("train.sbatch.j2 uses an unknown variable `partiton`"),
            "{e}"
        );
        assert!(e.contains("did you mean `partition`"), "{e}");

        let t = Templates::load(None).unwrap();
        let mut ctx = context();
        ctx.partition = Some("a b".into());
        let e = t.render(Stage::Sample, &ctx).unwrap_err().to_string();
        assert!(e.contains("cannot go into an #SBATCH line"), "{e}");
    }
}
