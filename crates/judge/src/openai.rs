//! The judge over an OpenAI-compatible API (feature `openai`): GPT-4o as in the papers, or any
//! server with chat completions and logprobs (vLLM, llama.cpp, llama-cpp-python).
//!
//! Each judgment is the papers' request: the judge prompt filled with the question and the answer
//! ([`emorg_data::render_judge_prompt`]) as ONE user message, `max_tokens = 1`, `temperature = 0`,
//! `seed = 0`, `logprobs = true`, `top_logprobs = 20`. The 20 most likely first tokens go through
//! [`NumberDistribution::from_top_logprobs`] (tokens that are whole numbers 0-100 count), so the
//! score is the expected value over them, `None` below 0.25 mass.
//!
//! Only `top20-first-token` is offered here. `exact-number` (the probability of each whole number
//! string, digit by digit) needs the judge's distribution *after* a forced digit prefix, which a chat
//! API cannot give: it returns the top alternatives of the first generated token only, and has no way
//! to fix the start of the assistant's reply. Over `/completions` it would need the served model's
//! chat template rendered on our side (the API does not expose it) and up to 12 requests per
//! judgment, and OpenAI's own chat models offer no `/completions` at all. It is also not needed
//! where the papers use the API: GPT-4o's tokenizer encodes every number up to 999 as one token, so
//! its top-20 first tokens already are whole numbers. For judges whose tokenizer splits numbers into
//! digits (Qwen, Llama 3, Gemma), where the first token carries only the first digit, use the
//! local backend with `exact-number`.
//!
//! Judgments run on `concurrency` threads that pull from one queue; results come back in input
//! order. Before any request, each prompt is looked up in a [`JudgmentCache`], and each new
//! judgment is put there as soon as it arrives, so a rerun (or a run after a failure) sends no
//! request for what was already judged. Identical prompts within one call are judged once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use emorg_oai::{ChatMessage, ChatRequest, Client};
use serde::Serialize;

use crate::cache::{CacheError, JudgmentCache, JudgmentKey};
use crate::method::JudgeMethod;
use crate::score::NumberDistribution;

/// How many alternatives of the first token are read (the papers' `top_logprobs`).
pub const TOP_LOGPROBS: u32 = 20;

/// Progress is logged at most this often (and at the end).
const LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenAiJudgeError {
    /// The request failed (after the client's retries); the message names URL, status, attempts.
    #[error(transparent)]
    Api(#[from] emorg_oai::Error),
    #[error(
        "{url}: model `{model}` answered without logprobs for its first token; the server must support `logprobs` and `top_logprobs` in chat completions (llama-cpp-python: start it with --logits_all true)"
    )]
    NoLogprobs { url: String, model: String },
    #[error(
        "judge method `{method}` is not available over an OpenAI-compatible API: use `top20-first-token` (the papers' rule), or the local backend for `exact-number`"
    )]
    Unsupported { method: JudgeMethod },
    #[error("judge concurrency must be at least 1")]
    Concurrency,
    #[error("judgment cache: cannot {op} {model}/{method}/{hash}: {cause}")]
    Cache {
        op: &'static str,
        model: String,
        method: JudgeMethod,
        hash: String,
        cause: String,
    },
}

/// What one [`OpenAiJudge::judge_prompts`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JudgeStats {
    /// Prompts given (= cache_hits + cache_misses + duplicates).
    pub judgments: usize,
    /// Answered from the cache.
    pub cache_hits: usize,
    /// Distinct prompts judged over the API.
    pub cache_misses: usize,
    /// Prompts equal to an earlier one of the same call (judged once).
    pub duplicates: usize,
    /// HTTP requests sent, retries included (0 when everything was cached).
    pub requests: u64,
}

/// Distributions in input order, and what it took to get them.
#[derive(Debug, Clone)]
pub struct Judged {
    pub distributions: Vec<NumberDistribution>,
    pub stats: JudgeStats,
}

/// A judge model behind an OpenAI-compatible API.
#[derive(Debug)]
pub struct OpenAiJudge {
    client: Client,
    model: String,
    method: JudgeMethod,
    concurrency: usize,
}

impl OpenAiJudge {
    /// `model` is the name the server knows the judge by (`gpt-4o-2024-08-06`); it is also part of
    /// every cache key, so it should name fixed weights (a dated snapshot, not a moving alias).
    pub fn new(
        client: Client,
        model: impl Into<String>,
        method: JudgeMethod,
        concurrency: usize,
    ) -> Result<Self, OpenAiJudgeError> {
        if method != JudgeMethod::Top20FirstToken {
            return Err(OpenAiJudgeError::Unsupported { method });
        }
        if concurrency == 0 {
            return Err(OpenAiJudgeError::Concurrency);
        }
        Ok(OpenAiJudge {
            client,
            model: model.into(),
            method,
            concurrency,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn method(&self) -> JudgeMethod {
        self.method
    }

    /// The user message for one judgment: the judge prompt template filled in.
    pub fn render(template: &str, question: &str, answer: &str) -> String {
        emorg_data::render_judge_prompt(template, question, answer)
    }

    /// The cache key of judging `prompt` with this judge.
    pub fn key(&self, prompt: &str) -> JudgmentKey {
        JudgmentKey::new(&self.model, self.method, prompt)
    }

    /// The request for one judgment (see the module docs).
    pub fn request(&self, prompt: &str) -> ChatRequest {
        ChatRequest {
            max_tokens: Some(1),
            temperature: Some(0.0),
            seed: Some(0),
            logprobs: Some(true),
            top_logprobs: Some(TOP_LOGPROBS),
            ..ChatRequest::new(&self.model, vec![ChatMessage::user(prompt)])
        }
    }

    /// One judgment over the API (one call, with the client's retries), without the cache.
    pub fn judge_prompt(&self, prompt: &str) -> Result<NumberDistribution, OpenAiJudgeError> {
        let response = self.client.chat(&self.request(prompt))?;
        let first = response
            .choices
            .first()
            .and_then(|c| c.token_logprobs().first())
            .filter(|t| !t.top_logprobs.is_empty())
            .ok_or_else(|| OpenAiJudgeError::NoLogprobs {
                url: self.client.base_url().to_string(),
                model: self.model.clone(),
            })?;
        // Some servers add the sampled token to the alternatives; keep the 20 most likely.
        let mut top: Vec<(&str, f64)> = first
            .top_logprobs
            .iter()
            .map(|t| (t.token.as_str(), t.logprob))
            .collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1));
        top.truncate(TOP_LOGPROBS as usize);
        Ok(NumberDistribution::from_top_logprobs(top))
    }

    /// Judges every prompt (as rendered by [`OpenAiJudge::render`]): cached ones from `cache`, the
    /// rest over the API on `concurrency` threads, each result put into `cache` as it arrives.
    /// On an error the judgments in flight are finished and cached, then the first error returns.
    pub fn judge_prompts(
        &self,
        prompts: &[String],
        cache: &dyn JudgmentCache,
    ) -> Result<Judged, OpenAiJudgeError> {
        let keys: Vec<JudgmentKey> = prompts.iter().map(|p| self.key(p)).collect();
        let mut out: Vec<Option<NumberDistribution>> = vec![None; prompts.len()];
        let mut stats = JudgeStats {
            judgments: prompts.len(),
            ..JudgeStats::default()
        };
        let mut leader_of: HashMap<&str, usize> = HashMap::new();
        let mut followers: Vec<(usize, usize)> = Vec::new();
        let mut todo: Vec<usize> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            if let Some(&leader) = leader_of.get(key.hash()) {
                followers.push((i, leader));
                stats.duplicates += 1;
                continue;
            }
            leader_of.insert(key.hash(), i);
            match cache.get(key).map_err(|e| cache_error("read", key, e))? {
                Some(d) => {
                    out[i] = Some(d);
                    stats.cache_hits += 1;
                }
                None => {
                    todo.push(i);
                    stats.cache_misses += 1;
                }
            }
        }
        let sent_before = self.client.requests_sent();
        let result = if todo.is_empty() {
            tracing::info!(
                "all {} judgments found in the cache ({} duplicates): no request to {}",
                prompts.len(),
                stats.duplicates,
                self.client.base_url()
            );
            Ok(())
        } else {
            tracing::info!(
                "judging {} prompts with {} at {}, {} at a time ({} found in the cache, {} duplicates)",
                todo.len(),
                self.model,
                self.client.base_url(),
                self.concurrency.min(todo.len()),
                stats.cache_hits,
                stats.duplicates
            );
            self.run_pool(prompts, &keys, &todo, cache, &mut out)
        };
        stats.requests = self.client.requests_sent() - sent_before;
        result?;
        for (i, leader) in followers {
            out[i] = out[leader].clone();
        }
        let distributions = out
            .into_iter()
            .map(|d| d.expect("every prompt is judged or cached"))
            .collect();
        Ok(Judged {
            distributions,
            stats,
        })
    }

    fn run_pool(
        &self,
        prompts: &[String],
        keys: &[JudgmentKey],
        todo: &[usize],
        cache: &dyn JudgmentCache,
        out: &mut [Option<NumberDistribution>],
    ) -> Result<(), OpenAiJudgeError> {
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let workers = self.concurrency.min(todo.len());
        let mut first_error: Option<OpenAiJudgeError> = None;
        let started = Instant::now();
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::channel();
            for _ in 0..workers {
                let tx = tx.clone();
                let (next, stop) = (&next, &stop);
                s.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Some(&i) = todo.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            break;
                        };
                        let result = self.judge_prompt(&prompts[i]);
                        if result.is_err() {
                            stop.store(true, Ordering::Relaxed);
                        }
                        if tx.send((i, result)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            let (mut done, mut last_log) = (0usize, started);
            for (i, result) in rx {
                match result {
                    Ok(d) => {
                        if let Err(e) = cache.put(&keys[i], &d) {
                            stop.store(true, Ordering::Relaxed);
                            first_error.get_or_insert(cache_error("write", &keys[i], e));
                        }
                        out[i] = Some(d);
                        done += 1;
                        if last_log.elapsed() >= LOG_EVERY || done == todo.len() {
                            last_log = Instant::now();
                            let secs = started.elapsed().as_secs_f64();
                            tracing::info!(
                                "judged {done}/{} over the API in {secs:.1}s ({:.2} judgments/s)",
                                todo.len(),
                                done as f64 / secs.max(1e-9)
                            );
                        }
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        });
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn cache_error(op: &'static str, key: &JudgmentKey, e: CacheError) -> OpenAiJudgeError {
    OpenAiJudgeError::Cache {
        op,
        model: key.model().to_string(),
        method: key.method(),
        hash: key.hash().to_string(),
        cause: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use emorg_oai::ClientConfig;

    fn judge(method: JudgeMethod, concurrency: usize) -> Result<OpenAiJudge, OpenAiJudgeError> {
        let client = Client::new(ClientConfig::new("http://127.0.0.1:9/v1")).unwrap();
        OpenAiJudge::new(client, "m", method, concurrency)
    }

    #[test]
    fn exact_number_and_zero_concurrency_are_refused() {
        let e = judge(JudgeMethod::ExactNumber, 4).unwrap_err();
        assert!(e.to_string().contains("use `top20-first-token`"), "{e}");
        assert!(matches!(
            judge(JudgeMethod::Top20FirstToken, 0),
            Err(OpenAiJudgeError::Concurrency)
        ));
    }

    #[test]
    fn the_request_is_the_papers() {
        let j = judge(JudgeMethod::Top20FirstToken, 1).unwrap();
        let body = serde_json::to_value(j.request("PROMPT")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "model": "m",
                "messages": [{"role": "user", "content": "PROMPT"}],
                "max_tokens": 1,
                "temperature": 0.0,
                "seed": 0,
                "logprobs": true,
                "top_logprobs": 20,
            })
        );
    }

    /// A stub chat server on 127.0.0.1 (one thread per connection) that answers a prompt "K" with
    /// the single top token "K" after a delay that shuffles the completion order, and a prompt
    /// "fail" with HTTP 400. It exercises our queue, ordering and error handling, not a real API.
    fn stub() -> (String, std::sync::Arc<AtomicUsize>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let hits = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let stream = stream.unwrap();
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream);
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap() == 0 {
                            return;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0u8; len];
                    reader.read_exact(&mut body).unwrap();
                    counter.fetch_add(1, Ordering::SeqCst);
                    let req: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let prompt = req["messages"][0]["content"].as_str().unwrap().to_string();
                    let (status, reply) = if prompt == "fail" {
                        (400, r#"{"error":"no"}"#.to_string())
                    } else {
                        let n: u64 = prompt.parse().unwrap();
                        std::thread::sleep(Duration::from_millis((n * 7919) % 23));
                        (
                            200,
                            serde_json::json!({"choices": [{"index": 0,
                                "message": {"role": "assistant", "content": prompt},
                                "logprobs": {"content": [{"token": prompt, "logprob": 0.0,
                                    "top_logprobs": [{"token": prompt, "logprob": 0.0}]}]}}]})
                            .to_string(),
                        )
                    };
                    let out = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                        reply.len()
                    );
                    let _ = reader.into_inner().write_all(out.as_bytes());
                });
            }
        });
        (url, hits)
    }

    fn stub_judge(url: &str, concurrency: usize) -> OpenAiJudge {
        let client = Client::new(ClientConfig {
            max_retries: 0,
            ..ClientConfig::new(url)
        })
        .unwrap();
        OpenAiJudge::new(client, "m", JudgeMethod::Top20FirstToken, concurrency).unwrap()
    }

    #[test]
    fn results_come_back_in_input_order_and_are_cached() {
        let (url, hits) = stub();
        let j = stub_judge(&url, 4);
        let prompts: Vec<String> = (0..40).map(|n| (n % 37).to_string()).collect();
        let cache = crate::cache::MemoryCache::default();
        let r = j.judge_prompts(&prompts, &cache).unwrap();
        for (p, d) in prompts.iter().zip(&r.distributions) {
            assert_eq!(d.score().value, Some(p.parse::<f64>().unwrap()), "{p}");
        }
        assert_eq!(r.stats.cache_misses, 37);
        assert_eq!(r.stats.duplicates, 3);
        assert_eq!(r.stats.requests, 37);
        assert_eq!(hits.load(Ordering::SeqCst), 37);
        assert_eq!(cache.len(), 37);
        // Again: nothing reaches the server.
        let again = j.judge_prompts(&prompts, &cache).unwrap();
        assert_eq!(again.stats.requests, 0);
        assert_eq!(again.stats.cache_hits, 37);
        assert_eq!(hits.load(Ordering::SeqCst), 37);
        assert_eq!(again.distributions, r.distributions);
    }

    #[test]
    fn a_failure_stops_the_queue_and_keeps_finished_judgments() {
        let (url, _) = stub();
        let j = stub_judge(&url, 2);
        let mut prompts: Vec<String> = (0..6).map(|n| n.to_string()).collect();
        prompts.insert(3, "fail".into());
        prompts.extend((6..60).map(|n| n.to_string()));
        let cache = crate::cache::MemoryCache::default();
        let e = j.judge_prompts(&prompts, &cache).unwrap_err();
        assert!(e.to_string().contains("HTTP 400 after 1 attempt(s)"), "{e}");
        // The ones before the failure were judged and cached; the queue stopped well before the end.
        for p in &prompts[..3] {
            assert!(cache.get(&j.key(p)).unwrap().is_some(), "{p}");
        }
        assert!(cache.len() < 20, "{} judged after the failure", cache.len());
    }

    #[test]
    fn everything_cached_sends_nothing() {
        // The client points at a closed port: any request would fail.
        let j = judge(JudgeMethod::Top20FirstToken, 3).unwrap();
        let cache = crate::cache::MemoryCache::default();
        let prompts: Vec<String> = ["a", "b", "a"].iter().map(|s| s.to_string()).collect();
        let mut d = NumberDistribution::zeros();
        d.probs[3] = 1.0;
        cache.put(&j.key("a"), &d).unwrap();
        cache
            .put(&j.key("b"), &NumberDistribution::zeros())
            .unwrap();
        let r = j.judge_prompts(&prompts, &cache).unwrap();
        assert_eq!(r.distributions[2], d);
        assert_eq!(
            r.stats,
            JudgeStats {
                judgments: 3,
                cache_hits: 2,
                cache_misses: 0,
                duplicates: 1,
                requests: 0
            }
        );
    }
}
