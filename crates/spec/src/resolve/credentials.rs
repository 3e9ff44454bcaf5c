//! Pass 3, secrets (static): no credential anywhere in the sweep, whichever layer it comes from
//! (the file, an `EMORG_*` variable, a `--set` argument).
//!
//! Takes the layered sweep; gives one diagnostic per value that holds a secret, located at it
//! (file and line of the setup entry, env name, URL, ...; or the variable or argument): any
//! finding of the [`crate::secrets`] scanner in any string or table key of the sweep (`[slurm]`
//! `setup`, `env` values, `extra`, every other field); any field with a secret name holding a
//! literal; any `[slurm] env` name that looks like a credential, whatever its value; and any user
//! info in `store.url` (`s3://KEY:SECRET@bucket`, `s3://KEY@bucket`). No message holds the value
//! (the store URL is shown with its user info as `***`). A loaded sweep, and so its record in the
//! store, the workers' command lines and the job scripts, carries no secret: credentials stay in
//! the environment of the shell that runs emorg.

use serde_json::Value;

use crate::error::Diagnostic;
use crate::load::Sweep;
use crate::secrets::{self, PathSeg, Place, is_secret_name};

/// The secrets check's diagnostics, the key paths they are about and the secrets themselves (kept
/// only to tell which other diagnostics quote one; never shown).
pub(super) struct Found {
    pub diagnostics: Vec<Diagnostic>,
    keys: Vec<String>,
    texts: Vec<String>,
}

impl Found {
    /// True when another check's diagnostic quotes a secret (as is or `{:?}`-escaped): it is
    /// dropped, the secrets check has reported that value.
    pub fn quoted_in(&self, d: &Diagnostic) -> bool {
        let Some(key) = d.key.as_deref() else {
            return false;
        };
        let about_flagged = self.keys.iter().any(|k| {
            k == key
                || k.strip_prefix(key).is_some_and(|r| r.starts_with('.'))
                || key
                    .strip_prefix(k.as_str())
                    .is_some_and(|r| r.starts_with('.'))
        });
        about_flagged
            && self.texts.iter().any(|t| {
                let escaped = format!("{t:?}");
                d.message.contains(t.as_str()) || d.message.contains(&escaped[1..escaped.len() - 1])
            })
    }

    /// Reports `key` (once: the first problem found with a value is the one named); `secret` is
    /// the text that must not be quoted elsewhere.
    fn flag(&mut self, sweep: &Sweep, key: String, secret: &str, message: String) {
        if !secret.is_empty() {
            self.texts.push(secret.to_string());
        }
        if !self.keys.contains(&key) {
            self.diagnostics.push(sweep.diag(&key, message));
            self.keys.push(key);
        }
    }
}

/// Where a secret goes instead.
const ADVICE: &str = "a sweep's settings are copied into the store's sweep record, job scripts and \
     logs: export secrets in the shell that runs emorg (the workers and sbatch inherit its \
     environment)";

/// The secrets in the sweep.
pub(super) fn check(sweep: &Sweep) -> Found {
    let mut found = Found {
        diagnostics: Vec::new(),
        keys: Vec::new(),
        texts: Vec::new(),
    };

    let url = sweep.file.store.url.trim();
    if let Some(userinfo) = secrets::url_userinfo(url) {
        found.flag(
            sweep,
            "store.url".into(),
            &url[userinfo],
            format!(
                "`store.url` holds credentials before `@` ({}): a store URL is recorded in the \
                 store, passed to every worker on its command line and written into job scripts; \
                 set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment instead",
                secrets::redact_url_userinfo(url)
            ),
        );
    }

    let json = serde_json::to_value(&sweep.file).expect("a sweep file serialises");
    let mut names = Vec::new();
    slurm_env_names(&json, &mut Vec::new(), &mut names);
    for (path, value) in names {
        let Some(PathSeg::Key(name)) = path.last() else {
            continue;
        };
        let message = format!(
            "`{}`: `{name}` looks like a credential: job scripts carry no secrets; export it in \
             the shell that runs `emorg submit` (sbatch passes the environment to the job)",
            secrets::display_path(&path)
        );
        found.flag(sweep, secrets::dotted_path(&path), &value, message);
    }

    for f in secrets::find_in_json(&json) {
        let secret = value_at(&json, &f.path, f.place == Place::Name)
            .map(|s| s[f.finding.offset..f.finding.offset + f.finding.len].to_string())
            .unwrap_or_default();
        let message = match f.place {
            Place::Name => format!("`{f}`: the name holds {}; {ADVICE}", f.finding),
            Place::SecretNamedValue => {
                format!("`{f}` looks like a credential and holds a literal value; {ADVICE}")
            }
            Place::Value => format!("`{f}` holds {}; {ADVICE}", f.finding),
        };
        found.flag(sweep, f.dotted(), &secret, message);
    }
    // In the order of the file (then the variables and arguments).
    found
        .diagnostics
        .sort_by_key(|d| d.location.line().unwrap_or(usize::MAX));
    found
}

/// The string at a path of a JSON document (the member's name when `name`).
fn value_at<'v>(json: &'v Value, path: &[PathSeg], name: bool) -> Option<&'v str> {
    let mut v = json;
    for (i, seg) in path.iter().enumerate() {
        match seg {
            PathSeg::Key(k) => {
                let (key, value) = v.as_object()?.get_key_value(k)?;
                if name && i + 1 == path.len() {
                    return Some(key);
                }
                v = value;
            }
            PathSeg::Index(n) => v = v.as_array()?.get(*n)?,
        }
    }
    v.as_str()
}

/// The paths and values of the `[slurm]` env names that look like credentials, at every layer
/// (`slurm.env.X`, `slurm.train.env.X`, `slurm.protocols.P.env.X`, ...).
fn slurm_env_names(value: &Value, path: &mut Vec<PathSeg>, out: &mut Vec<(Vec<PathSeg>, String)>) {
    let Value::Object(map) = value else { return };
    let in_env = matches!(path.first(), Some(PathSeg::Key(k)) if k == "slurm")
        && matches!(path.last(), Some(PathSeg::Key(k)) if k == "env");
    for (k, v) in map {
        path.push(PathSeg::Key(k.clone()));
        if in_env {
            if is_secret_name(k) {
                out.push((path.clone(), v.as_str().unwrap_or_default().to_string()));
            }
        } else if path.len() == 1 && k != "slurm" {
            // Only `[slurm]` has env tables.
        } else {
            slurm_env_names(v, path, out);
        }
        path.pop();
    }
}
