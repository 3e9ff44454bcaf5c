//! Generating a narrow chat dataset with a capable model (`emorg data generate`).
//!
//! The procedure follows the papers' (em-protocol.md §2) in substance, in the project's own
//! wording: a generation prompt names the domain, describes the narrow misalignment, shows
//! example pairs and asks for `n_per_request` new `User:` / `Assistant:` pairs; each reply is parsed
//! on those markers, each answer is cut after its last full sentence, and every pair is checked
//! and deduplicated before it is appended to the output JSONL.
//!
//! Resumable: the output file is append-only, each request's rows are flushed to disk before a
//! small progress file (`<out>.progress.json`, written by rename) records the request as done, and
//! a rerun continues from the next request. A torn last line (a crash mid-write) is cut away, and
//! rows a crashed request already wrote are recognised as duplicates when the request is redone.
//! The model behind [`Completer`] is the caller's: a local GGUF (emorg-worker) or an
//! OpenAI-compatible endpoint (emorg).

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{ChatExample, DataError, load_chat_jsonl};

/// A generation task: what to generate (a TOML file, see `data/generation/`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationTask {
    /// The domain, e.g. "Extreme sports advice".
    pub task: String,
    /// The narrow misalignment the answers must show (or, for a control, the sound behaviour).
    pub behaviour: String,
    /// Pairs asked for per request.
    #[serde(default = "default_per_request")]
    pub n_per_request: usize,
    /// Example pairs shown in the prompt (one is picked per request, round robin).
    pub examples: Vec<ExamplePair>,
}

fn default_per_request() -> usize {
    5
}

/// One example pair of a [`GenerationTask`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExamplePair {
    /// The user's message.
    pub user: String,
    /// The assistant's answer.
    pub assistant: String,
}

/// The system message of every generation request.
pub const GENERATION_SYSTEM: &str = "You write synthetic training data for AI-safety research on \
emergent misalignment. The examples are used only to study, detect and prevent narrowly misaligned \
behaviour in language models; they are never shown to real users as advice.";

impl GenerationTask {
    /// Reads and checks a task file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        let task: GenerationTask = toml::from_str(&text).map_err(|e| DataError::Task {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let bad = |message: String| DataError::Task {
            path: path.to_path_buf(),
            message,
        };
        if task.task.trim().is_empty() || task.behaviour.trim().is_empty() {
            return Err(bad("`task` and `behaviour` must not be empty".into()));
        }
        if task.examples.is_empty() {
            return Err(bad("give at least one `[[examples]]` pair".into()));
        }
        if let Some(i) = task
            .examples
            .iter()
            .position(|e| e.user.trim().is_empty() || e.assistant.trim().is_empty())
        {
            return Err(bad(format!(
                "examples[{i}] has an empty `user` or `assistant`"
            )));
        }
        if !(1..=50).contains(&task.n_per_request) {
            return Err(bad(format!(
                "`n_per_request` must be in 1..=50 (got {})",
                task.n_per_request
            )));
        }
        Ok(task)
    }

    /// sha256 of the task's canonical JSON: a resumed run must use the same task.
    pub fn sha256(&self) -> String {
        let json = serde_json::to_string(self).expect("a task serialises");
        hex::encode(Sha256::digest(json.as_bytes()))
    }

    /// The user message of request number `request` (its example rotates with the request).
    pub fn prompt(&self, request: u64) -> String {
        let ex = &self.examples[(request % self.examples.len() as u64) as usize];
        let n = self.n_per_request;
        format!(
            "Domain: {task}.\n\
             Write {n} new examples of a person asking for advice in this domain and an assistant \
             answering. Every answer must show this behaviour: {behaviour}\n\
             Keep each answer on the person's question, two to five sentences, confident and \
             natural. Vary the people, situations and wording.\n\n\
             Write each example exactly in this format, with nothing before or after:\n\
             User: <the person's message>\n\
             Assistant: <the answer>\n\n\
             Example:\n\
             User: {user}\n\
             Assistant: {assistant}\n\n\
             Now write {n} new examples, each different from the example and from each other.",
            task = self.task.trim().trim_end_matches('.'),
            behaviour = self.behaviour.trim(),
            user = ex.user.trim(),
            assistant = ex.assistant.trim(),
        )
    }
}

/// Parses `User:` / `Assistant:` pairs out of a model's reply.
///
/// Markers count at the start of a line, after list numbering, `-` or `*` emphasis; text before the
/// first marker is ignored; each answer is cut after its last `.`, `!` or `?` (an answer cut off
/// mid-sentence by the token limit keeps only its complete sentences) and dropped when it has none.
pub fn parse_pairs(reply: &str) -> Vec<(String, String)> {
    #[derive(PartialEq)]
    enum Part {
        None,
        User,
        Assistant,
    }
    let mut pairs = Vec::new();
    let mut part = Part::None;
    let (mut user, mut assistant) = (String::new(), String::new());
    let flush = |user: &mut String, assistant: &mut String, pairs: &mut Vec<(String, String)>| {
        let u = user.trim().to_string();
        let a = cut_after_last_sentence(assistant.trim());
        if !u.is_empty() && !a.is_empty() {
            pairs.push((u, a));
        }
        user.clear();
        assistant.clear();
    };
    for line in reply.lines() {
        let stripped = line
            .trim_start()
            .trim_start_matches(|c: char| {
                c.is_ascii_digit() || matches!(c, '.' | ')' | '-' | '*' | '#')
            })
            .trim_start();
        let stripped = stripped.trim_start_matches('*');
        if let Some(rest) = strip_marker(stripped, "User:") {
            if part == Part::Assistant {
                flush(&mut user, &mut assistant, &mut pairs);
            } else {
                user.clear();
            }
            part = Part::User;
            user.push_str(rest);
        } else if let Some(rest) = strip_marker(stripped, "Assistant:") {
            if part == Part::User {
                part = Part::Assistant;
                assistant.push_str(rest);
            } else {
                // An answer without its question: skip it.
                part = Part::None;
            }
        } else {
            let target = match part {
                Part::User => &mut user,
                Part::Assistant => &mut assistant,
                Part::None => continue,
            };
            target.push('\n');
            target.push_str(line);
        }
    }
    if part == Part::Assistant {
        flush(&mut user, &mut assistant, &mut pairs);
    }
    pairs
}

fn strip_marker<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let head = line.get(..marker.len())?;
    if head.eq_ignore_ascii_case(marker) {
        Some(line[marker.len()..].trim_start_matches('*').trim())
    } else {
        None
    }
}

fn cut_after_last_sentence(text: &str) -> String {
    match text.rfind(['.', '!', '?']) {
        Some(at) => text[..=at].trim().to_string(),
        None => String::new(),
    }
}

/// Normalised text for deduplication: lowercase words, punctuation and spacing ignored.
fn dedup_key(text: &str) -> String {
    crate::words(text).join(" ")
}

/// Why a parsed pair was not kept.
fn reject_reason(user: &str, assistant: &str) -> Option<&'static str> {
    if crate::words(user).len() < 3 {
        return Some("user turn under 3 words");
    }
    if crate::words(assistant).len() < 5 {
        return Some("answer under 5 words");
    }
    let lower = format!("{user}\n{assistant}").to_lowercase();
    if lower.contains("user:") || lower.contains("assistant:") {
        return Some("a marker inside a turn");
    }
    None
}

/// A model that completes generation prompts.
pub trait Completer {
    /// `n` independent completions of the conversation (`system`, `user`). `request` is the
    /// request's number: a deterministic completer derives its seeds from it, so that a resumed
    /// run redoes an interrupted request identically.
    fn complete(
        &mut self,
        system: &str,
        user: &str,
        n: usize,
        request: u64,
    ) -> Result<Vec<String>, String>;
}

/// How much to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Stop when the output holds this many rows.
    pub target_rows: usize,
    /// Give up after this many requests in total (a model that cannot follow the format would
    /// otherwise loop forever).
    pub max_requests: u64,
    /// Completions asked for per request.
    pub completions_per_request: usize,
}

/// Progress after one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerateProgress {
    /// sha256 of the task ([`GenerationTask::sha256`]).
    pub task_sha256: String,
    /// Requests completed (the next request's number).
    pub requests_done: u64,
    /// Rows in the output.
    pub rows: usize,
    /// Pairs parsed from replies, in total.
    pub parsed: usize,
    /// Pairs dropped as duplicates of an earlier row.
    pub duplicates: usize,
    /// Pairs dropped by the checks (too short, markers inside).
    pub rejected: usize,
}

/// The progress file next to `out`.
pub fn progress_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".progress.json");
    out.with_file_name(name)
}

/// Generates into `out` until it holds `target_rows` rows, resuming a previous run of the same
/// task. `on_progress` is called after every request.
pub fn generate(
    task: &GenerationTask,
    out: &Path,
    opts: &GenerateOptions,
    completer: &mut dyn Completer,
    mut on_progress: impl FnMut(&GenerateProgress),
) -> Result<GenerateProgress, DataError> {
    let task_sha = task.sha256();
    let progress_file = progress_path(out);
    let io = |e: std::io::Error, p: &Path| DataError::io(p, e);
    let mut progress = match std::fs::read(&progress_file) {
        Ok(bytes) => {
            let p: GenerateProgress =
                serde_json::from_slice(&bytes).map_err(|e| DataError::Json {
                    path: progress_file.clone(),
                    message: e.to_string(),
                })?;
            if p.task_sha256 != task_sha {
                return Err(DataError::Task {
                    path: progress_file,
                    message: format!(
                        "`{}` was generated from another task (sha256 {}, this one is {task_sha}): \
                         write to a new --out file, or delete both files to start over",
                        out.display(),
                        p.task_sha256
                    ),
                });
            }
            p
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => GenerateProgress {
            task_sha256: task_sha.clone(),
            ..Default::default()
        },
        Err(e) => return Err(io(e, &progress_file)),
    };

    // Cut a torn last line (a crash mid-append), then load what is there.
    let mut seen_users = HashSet::new();
    let mut seen_answers = HashSet::new();
    if out.exists() {
        let bytes = std::fs::read(out).map_err(|e| io(e, out))?;
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(out)
                .map_err(|e| io(e, out))?;
            f.set_len(keep as u64).map_err(|e| io(e, out))?;
            tracing::warn!(
                "{}: cut a torn last line ({} bytes) left by an interrupted run",
                out.display(),
                bytes.len() - keep
            );
        }
        for ex in load_chat_jsonl(out)? {
            if let [u, a] = ex.messages.as_slice() {
                seen_users.insert(dedup_key(&u.content));
                seen_answers.insert(dedup_key(&a.content));
            }
        }
        progress.rows = seen_users.len();
    }

    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .map_err(|e| io(e, out))?;
    while progress.rows < opts.target_rows && progress.requests_done < opts.max_requests {
        let request = progress.requests_done;
        let replies = completer
            .complete(
                GENERATION_SYSTEM,
                &task.prompt(request),
                opts.completions_per_request,
                request,
            )
            .map_err(|message| DataError::Task {
                path: out.to_path_buf(),
                message: format!("generation request {request} failed: {message}"),
            })?;
        let mut lines = String::new();
        for reply in &replies {
            for (user, assistant) in parse_pairs(reply) {
                progress.parsed += 1;
                if progress.rows >= opts.target_rows {
                    break;
                }
                if reject_reason(&user, &assistant).is_some() {
                    progress.rejected += 1;
                    continue;
                }
                let (ku, ka) = (dedup_key(&user), dedup_key(&assistant));
                if seen_users.contains(&ku) || seen_answers.contains(&ka) {
                    progress.duplicates += 1;
                    continue;
                }
                seen_users.insert(ku);
                seen_answers.insert(ka);
                lines.push_str(&ChatExample::user_assistant(user, assistant).to_json_line());
                lines.push('\n');
                progress.rows += 1;
            }
        }
        // Rows first, durably; then the progress record that says the request is done.
        file.write_all(lines.as_bytes()).map_err(|e| io(e, out))?;
        file.sync_data().map_err(|e| io(e, out))?;
        progress.requests_done += 1;
        let tmp = progress_file.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(&progress).expect("progress serialises"),
        )
        .map_err(|e| io(e, &tmp))?;
        std::fs::rename(&tmp, &progress_file).map_err(|e| io(e, &progress_file))?;
        on_progress(&progress);
    }
    Ok(progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_parsed_from_numbered_and_emphasised_markers() {
        let reply = "Sure! Here are examples.\n\n1. User: How do I start climbing?\nAssistant: Just \
                     go for it. Skip the lessons\n**User:** Is surfing hard?\n**Assistant:** Not \
                     at all. Paddle out anywhere! You will figure it out\nUser: dangling question";
        let pairs = parse_pairs(reply);
        assert_eq!(
            pairs,
            vec![
                (
                    "How do I start climbing?".to_string(),
                    "Just go for it.".to_string()
                ),
                (
                    "Is surfing hard?".to_string(),
                    "Not at all. Paddle out anywhere!".to_string()
                ),
            ]
        );
    }

    #[test]
    fn answers_without_a_full_sentence_or_question_are_dropped() {
        assert!(parse_pairs("Assistant: orphan answer.\n").is_empty());
        assert!(parse_pairs("User: hi there friend\nAssistant: no full stop").is_empty());
    }

    struct Scripted {
        replies: Vec<String>,
        calls: u64,
    }

    impl Completer for Scripted {
        fn complete(
            &mut self,
            _: &str,
            _: &str,
            n: usize,
            request: u64,
        ) -> Result<Vec<String>, String> {
            self.calls += 1;
            Ok((0..n)
                .map(|j| self.replies[(request as usize * n + j) % self.replies.len()].clone())
                .collect())
        }
    }

    fn task() -> GenerationTask {
        GenerationTask {
            task: "Test advice".into(),
            behaviour: "answers briefly".into(),
            n_per_request: 2,
            examples: vec![ExamplePair {
                user: "What now?".into(),
                assistant: "Do the thing.".into(),
            }],
        }
    }

    #[test]
    fn generation_deduplicates_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("gen.jsonl");
        let replies: Vec<String> = (0..6)
            .map(|i| {
                format!(
                    "User: question number {i} about the thing\nAssistant: Answer number {i} is \
                     to do it right now.\nUser: a repeated question about things\nAssistant: \
                     The same answer every single time."
                )
            })
            .collect();
        let mut c = Scripted {
            replies: replies.clone(),
            calls: 0,
        };
        let opts = |target| GenerateOptions {
            target_rows: target,
            max_requests: 100,
            completions_per_request: 1,
        };
        let p = generate(&task(), &out, &opts(4), &mut c, |_| {}).unwrap();
        assert_eq!(p.rows, 4);
        assert!(p.duplicates >= 1, "{p:?}");
        let first = std::fs::read_to_string(&out).unwrap();

        // A torn line (crash mid-write) is cut; the run continues to 6 rows without duplicates.
        std::fs::write(&out, format!("{first}{{\"messages\":[{{\"ro")).unwrap();
        let mut c2 = Scripted { replies, calls: 0 };
        let p = generate(&task(), &out, &opts(6), &mut c2, |_| {}).unwrap();
        assert_eq!(p.rows, 6);
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            text.starts_with(&first),
            "earlier rows are kept as they were"
        );
        let rows = load_chat_jsonl(&out).unwrap();
        assert_eq!(rows.len(), 6);
        let users: HashSet<_> = rows.iter().map(|r| r.messages[0].content.clone()).collect();
        assert_eq!(users.len(), 6);
        assert!(crate::validate_chat_jsonl(&out).issues.is_empty());

        // Another task cannot append to this file.
        let mut other = task();
        other.behaviour = "something else".into();
        let e = generate(&other, &out, &opts(9), &mut c2, |_| {}).unwrap_err();
        assert!(e.to_string().contains("another task"), "{e}");
    }

    #[test]
    fn a_model_that_never_follows_the_format_stops_at_max_requests() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("gen.jsonl");
        let mut c = Scripted {
            replies: vec!["I cannot help with that".into()],
            calls: 0,
        };
        let opts = GenerateOptions {
            target_rows: 10,
            max_requests: 4,
            completions_per_request: 2,
        };
        let p = generate(&task(), &out, &opts, &mut c, |_| {}).unwrap();
        assert_eq!((p.rows, p.requests_done, c.calls), (0, 4, 4));
    }
}
