//! The secret scanner: key-like values (cloud and API keys, tokens, private keys, passwords in URLs
//! and assignments) in any text, so that they are refused before they reach a job script, the
//! store or a message.
//!
//! Secrets belong in the environment of the shell that runs `emorg` (the local workers and sbatch
//! inherit it). The sweep check ([`crate::load`] runs it with the others) refuses a sweep that
//! holds one anywhere; the sweep record (emorg-exec) and the rendered job scripts (emorg-slurm)
//! are scanned again before they are written.
//!
//! What counts as a finding ([`Kind`]): AWS access key ids (`AKIA`/`ASIA` + 16), 40-character AWS
//! secret keys next to a secret-ish word, OpenAI keys (`sk-`, `sk-proj-`), GitHub tokens (`ghp_`,
//! `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`), Hugging Face tokens (`hf_`), Slack tokens
//! (`xoxb-`, ...), JWTs, PEM private keys, URLs with a password (`scheme://user:pass@host`), and
//! assignments of a literal to a secret-named variable or option (`HF_TOKEN=...`,
//! `--password ...`; a `$VAR` reference is no secret). Hashes (64 hex characters), paths, module
//! loads and the like are not findings.
//!
//! A [`Finding`] says what was found and where (byte offset, line, column), never the value.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// What a finding looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `AKIA...` / `ASIA...`.
    AwsAccessKeyId,
    /// A 40-character base64 value next to a secret-ish word.
    AwsSecretAccessKey,
    /// `sk-...`, `sk-proj-...`.
    OpenAiKey,
    /// `ghp_...`, `github_pat_...`.
    GitHubToken,
    /// `hf_...`.
    HuggingFaceToken,
    /// `xoxb-...`.
    SlackToken,
    /// `eyJ....eyJ....`.
    Jwt,
    /// `-----BEGIN ... PRIVATE KEY-----`.
    PrivateKey,
    /// `scheme://user:password@host`.
    UrlPassword,
    /// A literal assigned to a secret-named variable, option or field (`HF_TOKEN=...`).
    SecretAssignment,
}

impl Kind {
    /// What it looks like, for messages ("an AWS access key id").
    pub fn describe(self) -> &'static str {
        match self {
            Kind::AwsAccessKeyId => "an AWS access key id",
            Kind::AwsSecretAccessKey => "an AWS secret access key",
            Kind::OpenAiKey => "an OpenAI API key",
            Kind::GitHubToken => "a GitHub token",
            Kind::HuggingFaceToken => "a Hugging Face token",
            Kind::SlackToken => "a Slack token",
            Kind::Jwt => "a JSON web token",
            Kind::PrivateKey => "a private key",
            Kind::UrlPassword => "a password in a URL",
            Kind::SecretAssignment => "a secret assigned to a secret-named variable",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A secret found in a text: what and where, never the value itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    /// Byte offset of the secret in the text (for an assignment, of the value).
    pub offset: usize,
    /// Its length in bytes (what [`redact`] cuts out).
    pub len: usize,
    /// 1-based line of `offset`.
    pub line: usize,
    /// 1-based column of `offset`, in characters.
    pub column: usize,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 1 {
            write!(
                f,
                "{} (line {}, column {})",
                self.kind, self.line, self.column
            )
        } else {
            write!(f, "{} (column {})", self.kind, self.column)
        }
    }
}

/// What replaces a secret in [`redact`].
pub const REDACTED: &str = "[REDACTED]";

/// The first secret in `text`, if any.
pub fn find(text: &str) -> Option<Finding> {
    find_all(text).into_iter().next()
}

/// Every secret in `text`, in order, without overlaps.
pub fn find_all(text: &str) -> Vec<Finding> {
    let mut spans: Vec<(Kind, usize, usize)> = Vec::new();
    for detect in DETECTORS {
        detect(text, &mut spans);
    }
    // Earliest first, the longest of those starting together; what overlaps joins the one before.
    spans.sort_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
    let mut out: Vec<Finding> = Vec::new();
    let mut end = 0;
    for (kind, start, stop) in spans {
        if let Some(last) = out.last_mut()
            && start < end
        {
            // Overlapping: one finding, covering both (so that redaction leaves no tail).
            if stop > end {
                last.len = stop - last.offset;
                end = stop;
            }
            continue;
        }
        end = stop;
        let (line, column) = line_col(text, start);
        out.push(Finding {
            kind,
            offset: start,
            len: stop - start,
            line,
            column,
        });
    }
    out
}

/// `text` with every secret replaced by [`REDACTED`].
pub fn redact(text: &str) -> String {
    let findings = find_all(text);
    if findings.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in findings {
        out.push_str(&text[at..f.offset]);
        out.push_str(REDACTED);
        at = f.offset + f.len;
    }
    out.push_str(&text[at..]);
    out
}

/// The byte range of a URL's user info (`user:pass` in `s3://user:pass@bucket`), if it has one.
///
/// For `file://` URLs, whose "host" is the first directory of a relative path, only the
/// `user:password@` form counts (`file://runs@2/x` is a directory); for other schemes any `@`
/// before the path does.
pub fn url_userinfo(url: &str) -> Option<std::ops::Range<usize>> {
    let scheme_end = url.find("://")?;
    let scheme = &url[..scheme_end];
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    {
        return None;
    }
    let start = scheme_end + 3;
    let rest = &url[start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_len].rfind('@')?;
    if scheme.eq_ignore_ascii_case("file") && !rest[..at].contains(':') {
        return None;
    }
    Some(start..start + at)
}

/// `url` with its user info replaced by `***` (`s3://***@bucket/p`); unchanged without one.
pub fn redact_url_userinfo(url: &str) -> String {
    match url_userinfo(url) {
        Some(r) => format!("{}***{}", &url[..r.start], &url[r.end..]),
        None => url.to_string(),
    }
}

/// True when a variable, option or field name looks like it holds a credential: one of its words
/// (split at `_`, `-`, `.` and camelCase) ends in token, secret, password, passwd, passphrase,
/// apikey, credential(s) or auth, or two of them are `api key`, `access key`, `private key`,
/// `session key`; `HF_TOKEN`, `WANDB_API_KEY`, `AWS_ACCESS_KEY_ID`, `PGPASSWORD`, `apiKey`. A name
/// whose last word says it holds a reference, not the secret (`api_key_env`, `TOKEN_FILE`,
/// `HF_TOKEN_PATH`), is not one; neither are `MAX_TOKENS` or `TOKENIZERS_PARALLELISM`.
pub fn is_secret_name(name: &str) -> bool {
    let words = words(name);
    let Some(last) = words.last() else {
        return false;
    };
    if REFERENCE_WORDS.contains(&last.as_str()) {
        return false;
    }
    let one = words.iter().any(|w| {
        SECRET_WORD_ENDINGS.iter().any(|s| w.ends_with(s)) || (w == "pwd" && words.len() > 1)
    });
    let pair = words.windows(2).any(|p| {
        p[1] == "key" && ["api", "access", "private", "session", "secret"].contains(&p[0].as_str())
    });
    one || pair
}

/// Word endings that make a name secret.
const SECRET_WORD_ENDINGS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "apikey",
    "accesskey",
    "privatekey",
    "credential",
    "credentials",
    "auth",
    "authorization",
];

/// Last words of a name that holds where a secret is, or something about it, not the secret.
const REFERENCE_WORDS: &[&str] = &[
    "env", "var", "vars", "variable", "file", "path", "dir", "name", "names", "header", "type",
    "kind", "mode", "method", "url", "uri", "endpoint", "host", "enabled", "required", "len",
    "length",
];

/// Lower-case words of a name: split at non-alphanumerics and at lower-to-upper case changes.
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A secret found in a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonFinding {
    /// Where: the members and indices down to the value (or the member name).
    pub path: Vec<PathSeg>,
    /// What at that path holds the secret.
    pub place: Place,
    /// The finding, with offsets in that string (for a secret-named member: the whole value).
    pub finding: Finding,
}

/// Which part of a JSON member a [`JsonFinding`] is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A secret inside the string value.
    Value,
    /// A secret inside the member's name.
    Name,
    /// The whole value, a literal, because the member's name is secret ([`is_secret_name`]).
    SecretNamedValue,
}

/// One step of a [`JsonFinding`]'s path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

impl JsonFinding {
    /// The path as dotted segments (`slurm.setup.0`), the form `Sweep::locate` takes.
    pub fn dotted(&self) -> String {
        dotted_path(&self.path)
    }
}

impl fmt::Display for JsonFinding {
    /// The path for messages: `slurm.setup[0]`, `spec.slurm.env.HF_TOKEN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&display_path(&self.path))
    }
}

/// A JSON path as dotted segments: `slurm.setup.0`.
pub fn dotted_path(path: &[PathSeg]) -> String {
    path.iter()
        .map(|s| match s {
            PathSeg::Key(k) => k.clone(),
            PathSeg::Index(i) => i.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// A JSON path for messages: `slurm.setup[0]`.
pub fn display_path(path: &[PathSeg]) -> String {
    let mut out = String::new();
    for (i, s) in path.iter().enumerate() {
        match s {
            PathSeg::Key(k) if i == 0 => out.push_str(k),
            PathSeg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            PathSeg::Index(n) => out.push_str(&format!("[{n}]")),
        }
    }
    out
}

/// Every secret in a JSON document: in any string value or member name, and any member with a
/// secret name ([`is_secret_name`]) whose value is a literal string (not empty, not a `$VAR`).
pub fn find_in_json(value: &serde_json::Value) -> Vec<JsonFinding> {
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

fn walk(value: &serde_json::Value, path: &mut Vec<PathSeg>, out: &mut Vec<JsonFinding>) {
    match value {
        serde_json::Value::String(s) => {
            out.extend(find_all(s).into_iter().map(|finding| JsonFinding {
                path: path.clone(),
                place: Place::Value,
                finding,
            }));
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(PathSeg::Index(i));
                walk(v, path, out);
                path.pop();
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                path.push(PathSeg::Key(k.clone()));
                out.extend(find_all(k).into_iter().map(|finding| JsonFinding {
                    path: path.clone(),
                    place: Place::Name,
                    finding,
                }));
                match v {
                    serde_json::Value::String(s) if is_secret_name(k) && is_literal(s) => {
                        out.push(JsonFinding {
                            path: path.clone(),
                            place: Place::SecretNamedValue,
                            finding: Finding {
                                kind: Kind::SecretAssignment,
                                offset: 0,
                                len: s.len(),
                                line: 1,
                                column: 1,
                            },
                        });
                    }
                    _ => walk(v, path, out),
                }
                path.pop();
            }
        }
        _ => {}
    }
}

/// 1-based (line, column in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A value that is a secret when assigned to a secret name: not empty, not a reference to a
/// variable or command (`$X`, `${X}`, `$(cmd)`, `` `cmd` ``), not already redacted.
fn is_literal(value: &str) -> bool {
    let v = value.trim();
    let v = v
        .strip_prefix('"')
        .map(|v| v.strip_suffix('"').unwrap_or(v))
        .or_else(|| {
            v.strip_prefix('\'')
                .map(|v| v.strip_suffix('\'').unwrap_or(v))
        })
        .unwrap_or(v)
        .trim();
    !(v.is_empty()
        || v.starts_with('$')
        || v.starts_with('`')
        || v.chars().all(|c| c == '*')
        || v == REDACTED)
}

type Spans = Vec<(Kind, usize, usize)>;

const DETECTORS: &[fn(&str, &mut Spans)] = &[
    aws_access_key_id,
    aws_secret_access_key,
    openai_key,
    github_token,
    huggingface_token,
    slack_token,
    jwt,
    private_key,
    url_password,
    assignment,
    option,
];

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a valid pattern")
}

fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// No `tok` character right before `start` and right after `end`.
fn bounded(text: &str, start: usize, end: usize, tok: fn(u8) -> bool) -> bool {
    let b = text.as_bytes();
    (start == 0 || !tok(b[start - 1])) && (end == b.len() || !tok(b[end]))
}

fn mixed_case_and_digit(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_uppercase())
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && s.bytes().any(|b| b.is_ascii_digit())
}

/// Adds every match of `pattern` that stands alone (no alphanumeric right before or after) and
/// passes `ok`.
fn simple(text: &str, out: &mut Spans, kind: Kind, pattern: &Regex, ok: fn(&str) -> bool) {
    for m in pattern.find_iter(text) {
        if bounded(text, m.start(), m.end(), alnum) && ok(m.as_str()) {
            out.push((kind, m.start(), m.end()));
        }
    }
}

fn aws_access_key_id(text: &str, out: &mut Spans) {
    static RE: LazyLock<Regex> = LazyLock::new(|| re(r"(?:AKIA|ASIA)[A-Z0-9]{16}"));
    simple(text, out, Kind::AwsAccessKeyId, &RE, |_| true);
}

/// Words that, a little before a 40-character base64 run on the same line, make it a secret key.
const SECRET_CONTEXT: &[&str] = &[
    "secret",
    "aws",
    "password",
    "passwd",
    "token",
    "credential",
    "api_key",
    "apikey",
    "access_key",
    "private",
];

fn aws_secret_access_key(text: &str, out: &mut Spans) {
    static RE: LazyLock<Regex> = LazyLock::new(|| re(r"[A-Za-z0-9/+]+"));
    for m in RE.find_iter(text) {
        let s = m.as_str();
        if s.len() != 40 || s.starts_with('/') || s.contains("//") || !mixed_case_and_digit(s) {
            continue;
        }
        let line_start = text[..m.start()].rfind('\n').map_or(0, |i| i + 1);
        let mut from = m.start().saturating_sub(100).max(line_start);
        while !text.is_char_boundary(from) {
            from += 1;
        }
        let context = text[from..m.start()].to_ascii_lowercase();
        if SECRET_CONTEXT.iter().any(|w| context.contains(w)) {
            out.push((Kind::AwsSecretAccessKey, m.start(), m.end()));
        }
    }
}

fn openai_key(text: &str, out: &mut Spans) {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| re(r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"));
    simple(text, out, Kind::OpenAiKey, &RE, |s| {
        let body: String = s.chars().filter(char::is_ascii_alphanumeric).collect();
        body.len() >= 22 && mixed_case_and_digit(&body)
    });
}

fn github_token(text: &str, out: &mut Spans) {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        re(r"(?:(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})")
    });
    simple(text, out, Kind::GitHubToken, &RE, |_| true);
}

fn huggingface_token(text: &str, out: &mut Spans) {
    static RE: LazyLock<Regex> = LazyLock::new(|| re(r"hf_[A-Za-z0-9]{30,}"));
    simple(text, out, Kind::HuggingFaceToken, &RE, |s| {
        let body = &s[3..];
        body.bytes().any(|b| b.is_ascii_uppercase()) && body.bytes().any(|b| b.is_ascii_lowercase())
    });
}

fn slack_token(text: &str, out: &mut Spans) {
    static RE: LazyLock<Regex> = LazyLock::new(|| re(r"xox[abposr]-[A-Za-z0-9-]{10,}"));
    simple(text, out, Kind::SlackToken, &RE, |_| true);
}

fn jwt(text: &str, out: &mut Spans) {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| re(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"));
    simple(text, out, Kind::Jwt, &RE, |_| true);
}

fn private_key(text: &str, out: &mut Spans) {
    static BEGIN: LazyLock<Regex> =
        LazyLock::new(|| re(r"-----BEGIN[A-Z0-9 ]* PRIVATE KEY(?: BLOCK)?-----"));
    static END: LazyLock<Regex> =
        LazyLock::new(|| re(r"-----END[A-Z0-9 ]* PRIVATE KEY(?: BLOCK)?-----"));
    for m in BEGIN.find_iter(text) {
        // The whole key: up to its END line, else to the end of the text.
        let end = END.find_at(text, m.end()).map_or(text.len(), |e| e.end());
        out.push((Kind::PrivateKey, m.start(), end));
    }
}

fn url_password(text: &str, out: &mut Spans) {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| re(r#"[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:'"]*:([^\s/?#@'"]+)@"#));
    for c in RE.captures_iter(text) {
        let pass = c.get(1).expect("group 1");
        if is_literal(pass.as_str()) {
            out.push((Kind::UrlPassword, pass.start(), pass.end()));
        }
    }
}

/// The value part of an assignment or option: quoted, or up to a space or shell operator.
const VALUE: &str = r#"("[^"\n]*"|'[^'\n]*'|[^\s"';&|)]+)"#;

fn assignment(text: &str, out: &mut Spans) {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| re(&format!(r"([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*{VALUE}")));
    let b = text.as_bytes();
    let mut at = 0;
    while let Some(c) = RE.captures_at(text, at) {
        let (name, value) = (c.get(1).expect("name"), c.get(2).expect("value"));
        // `$NAME = x` compares a variable, `NAME == x` too: not assignments.
        let before = name.start().checked_sub(1).map(|i| b[i]);
        if before.is_some_and(|p| p == b'$' || p == b'{')
            || value.as_str().starts_with('=')
            || !is_secret_name(name.as_str())
            || !is_literal(value.as_str())
        {
            // The value may itself hold an assignment (`X=HF_TOKEN=...`): go on after the name.
            at = name.end();
            continue;
        }
        out.push((Kind::SecretAssignment, value.start(), value.end()));
        at = value.end();
    }
}

fn option(text: &str, out: &mut Spans) {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| re(&format!(r"--([A-Za-z][A-Za-z0-9_-]*)(?:=|[ \t]+){VALUE}")));
    let mut at = 0;
    while let Some(c) = RE.captures_at(text, at) {
        let (name, value) = (c.get(1).expect("name"), c.get(2).expect("value"));
        if value.as_str().starts_with('-')
            || !is_secret_name(name.as_str())
            || !is_literal(value.as_str())
        {
            at = name.end();
            continue;
        }
        out.push((Kind::SecretAssignment, value.start(), value.end()));
        at = value.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made-up secrets of each kind (none of them real).
    const AKIA: &str = "AKIAZZZZMARKER123456";
    const AWS_SECRET: &str = "Zm9vYmFyMARKERbazQux1234567890abcdEFGHIJ";
    const OPENAI: &str = "sk-proj-MARKERabc123DEF456ghi789JKL012mno";
    const GITHUB: &str = "ghp_MARKERabcdefghijklmnopqrstuvwxyz012345";
    const HF: &str = "hf_MARKERabcdefghijklmnopqrstuvwxyzABCD";

    #[test]
    fn each_pattern_is_found_where_it_is() {
        let cases: &[(String, Kind)] = &[
            (format!("export AWS_ID={AKIA}"), Kind::AwsAccessKeyId),
            ("ASIAZZZZMARKER123456 rest".to_string(), Kind::AwsAccessKeyId),
            (
                format!("aws configure set aws_secret {AWS_SECRET}"),
                Kind::AwsSecretAccessKey,
            ),
            (format!("curl -H 'x: {OPENAI}'"), Kind::OpenAiKey),
            (
                "key sk-MARKERabcdefghij0123456789ABCDEFGH".to_string(),
                Kind::OpenAiKey,
            ),
            (format!("git clone https://x/{GITHUB}/r"), Kind::GitHubToken),
            (
                "github_pat_11MARKER0abcdefghijklmnop_qrstuvwxyz".to_string(),
                Kind::GitHubToken,
            ),
            (format!("huggingface-cli login {HF}"), Kind::HuggingFaceToken),
            (
                "notify xoxb-1234567890-MARKERabcdef".to_string(),
                Kind::SlackToken,
            ),
            (
                "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJNQVJLRVIifQ.c2lnbmF0dXJl".to_string(),
                Kind::Jwt,
            ),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n-----END OPENSSH PRIVATE KEY-----"
                    .to_string(),
                Kind::PrivateKey,
            ),
            (
                "-----BEGIN PRIVATE KEY-----".to_string(),
                Kind::PrivateKey,
            ),
            (
                "pip install --index-url https://me:MARKERpw@pypi.example/simple x".to_string(),
                Kind::UrlPassword,
            ),
            (
                "redis://:MARKERpw@localhost:6379/0".to_string(),
                Kind::UrlPassword,
            ),
            (
                "export HF_TOKEN=MARKERvalue".to_string(),
                Kind::SecretAssignment,
            ),
            (
                "WANDB_API_KEY='MARKER value' python x.py".to_string(),
                Kind::SecretAssignment,
            ),
            (
                "db_password = \"MARKER\"".to_string(),
                Kind::SecretAssignment,
            ),
            (
                "PGPASSWORD=MARKER psql".to_string(),
                Kind::SecretAssignment,
            ),
            (
                "login --password MARKER --user me".to_string(),
                Kind::SecretAssignment,
            ),
            (
                "tool --api-key=MARKER".to_string(),
                Kind::SecretAssignment,
            ),
            (
                "https://api.example/v1?access_token=MARKER".to_string(),
                Kind::SecretAssignment,
            ),
            (
                "export apiKey=MARKER".to_string(),
                Kind::SecretAssignment,
            ),
        ];
        for (text, want) in cases {
            let f = find(text).unwrap_or_else(|| panic!("nothing found in {text:?}"));
            assert_eq!(f.kind, *want, "{text:?}");
            // The span is the secret: redacting it removes the marker.
            let red = redact(text);
            assert!(!red.contains("MARKER"), "{text:?} -> {red:?}");
            assert!(red.contains(REDACTED), "{red:?}");
            assert!(f.len > 0 && f.offset + f.len <= text.len(), "{f:?}");
        }
    }

    #[test]
    fn ordinary_text_hashes_and_references_are_not_findings() {
        let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        for text in [
            "module load cuda/12.4",
            "export HF_HOME=/scratch/hf",
            "source /opt/venv/bin/activate",
            "export TOKENIZERS_PARALLELISM=false",
            "export MAX_TOKENS=512",
            "max_new_tokens=256",
            sha,
            &format!("cells/{sha}/cell.json"),
            &format!("sha256:{sha}"),
            "0123456789abcdef0123456789abcdef01234567",
            "export AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY",
            "export HF_TOKEN=\"${HF_TOKEN}\"",
            "OPENAI_API_KEY=$(cat ~/.openai)",
            "HF_TOKEN=",
            "api_key_env = OPENAI_API_KEY",
            "export HF_TOKEN_PATH=/home/me/.cache/hf/token",
            "--password-file /run/secrets/db",
            "if [ \"$TOKEN\" = \"\" ]; then exit 1; fi",
            "s3://bucket/prefix",
            "ssh://git@github.com/org/repo",
            "https://user:$PASSWORD@host/x",
            "#SBATCH --mail-type=FAIL",
            "--output=/shared/logs/c000-default-train-%A_%a.out",
            "emorg-worker train --store file:///tmp/store --cell \"$cell\" --threads 2 &",
            "task-sk-is-a-word",
            "export AUTHOR=me",
            "risk-assessment-model-checkpoint-number-12",
            "aws s3 sync /scratch/x/ s3://bucket/results/2026/run-abc/xyz",
        ] {
            assert_eq!(find(text), None, "{text:?}");
            assert_eq!(redact(text), text);
        }
    }

    #[test]
    fn findings_name_the_place_never_the_value() {
        let text = format!("line one\n  export X={GITHUB} y");
        let f = find(&text).unwrap();
        assert_eq!((f.kind, f.line, f.column), (Kind::GitHubToken, 2, 12));
        assert_eq!(&text[f.offset..f.offset + f.len], GITHUB);
        let shown = format!("{f} {f:?}");
        assert!(!shown.contains("MARKER"), "{shown}");
        assert_eq!(f.to_string(), "a GitHub token (line 2, column 12)");
        // Only the value of an assignment is cut out.
        assert_eq!(
            redact("export HF_TOKEN=abc; echo ok"),
            "export HF_TOKEN=[REDACTED]; echo ok"
        );
        assert_eq!(find_all(&format!("{AKIA} {HF}")).len(), 2);
        // Findings that overlap are one.
        let text = "DB_PASSWORD=postgres://u:MARKERpw@host/x";
        assert_eq!(find_all(text).len(), 1);
        assert_eq!(redact(text), "DB_PASSWORD=[REDACTED]");
    }

    #[test]
    fn secret_names() {
        for name in [
            "HF_TOKEN",
            "HUGGING_FACE_HUB_TOKEN",
            "WANDB_API_KEY",
            "OPENAI_API_KEY",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "GITHUB_TOKEN",
            "PGPASSWORD",
            "MYSQL_PWD",
            "DB_PASSWD",
            "APIKEY",
            "apiKey",
            "accessToken",
            "CLIENT_SECRET",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "AUTH",
            "OAUTH_CLIENT",
            "SSH_PRIVATE_KEY",
            "password",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "HF_HOME",
            "TOKENIZERS_PARALLELISM",
            "MAX_TOKENS",
            "max_new_tokens",
            "api_key_env",
            "HF_TOKEN_PATH",
            "PASSWORD_FILE",
            "AUTHOR",
            "PWD",
            "key",
            "cell_key",
            "CUDA_VISIBLE_DEVICES",
            "",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn url_userinfo_is_found_and_redacted() {
        assert_eq!(
            redact_url_userinfo("s3://KEY:SECRET@bucket/p"),
            "s3://***@bucket/p"
        );
        assert_eq!(redact_url_userinfo("s3://KEY@bucket"), "s3://***@bucket");
        assert_eq!(redact_url_userinfo("s3://bucket/a@b"), "s3://bucket/a@b");
        assert_eq!(url_userinfo("file://runs@2/x"), None);
        assert!(url_userinfo("file://u:p@host/x").is_some());
        assert_eq!(url_userinfo("memory://"), None);
        assert_eq!(url_userinfo("no url"), None);
    }

    #[test]
    fn json_findings_have_paths() {
        let doc = serde_json::json!({
            "store_url": "file:///x",
            "judge": {"api_key_env": "OPENAI_API_KEY"},
            "cells": [{"key": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}],
            "spec": {"slurm": {
                "setup": ["module load x", format!("export X={GITHUB}")],
                "env": {"MY_SECRET": "MARKER", "REF_TOKEN": "$REF_TOKEN", "HF_HOME": "/x"},
            }},
        });
        let found = find_in_json(&doc);
        let mut shown: Vec<String> = found
            .iter()
            .map(|f| format!("{f} {}", f.finding.kind))
            .collect();
        shown.sort();
        assert_eq!(
            shown,
            [
                "spec.slurm.env.MY_SECRET a secret assigned to a secret-named variable",
                "spec.slurm.setup[1] a GitHub token",
            ],
            "{found:?}"
        );
        let setup = found.iter().find(|f| f.finding.kind == Kind::GitHubToken);
        assert_eq!(setup.unwrap().dotted(), "spec.slurm.setup.1");
    }
}
