//! A cache of judgments, keyed by everything that determines one.
//!
//! A judgment over an API is fixed by the judge model, the method (which fixes the request:
//! `max_tokens`, `temperature`, `seed`, `top_logprobs`) and the prompt text. Its key is
//! `sha256(json([model, method, prompt]))` in lowercase hex, where `json` is serde_json's compact
//! encoding of a 3-element array of strings (unambiguous, unlike plain concatenation). A rerun of
//! the same judgments is answered from the cache without a request, and so are other judgments and
//! sweeps that ask the same question about the same answer.
//!
//! The judge crate only defines the trait ([`JudgmentCache`]: get and put by [`JudgmentKey`]);
//! the worker stores entries in the results store (`judge-cache/<model-slug>/<method>/<hash[..2]>/
//! <hash>.json`, spelled in `emorg_store::layout::judgment_cache`). [`MemoryCache`] is for tests and
//! one-off runs, [`NoCache`] turns caching off.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::method::JudgeMethod;
use crate::score::NumberDistribution;

/// Error of a cache backend (the store's, in the worker).
pub type CacheError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a cached judgment is looked up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JudgmentKey {
    model: String,
    method: JudgeMethod,
    hash: String,
}

impl JudgmentKey {
    /// The key of judging `prompt` (the exact text the judge is sent) with `model` by `method`.
    pub fn new(model: &str, method: JudgeMethod, prompt: &str) -> Self {
        let material = serde_json::to_string(&[model, method.as_str(), prompt])
            .expect("an array of strings serialises");
        JudgmentKey {
            model: model.to_string(),
            method,
            hash: hex::encode(Sha256::digest(material.as_bytes())),
        }
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn method(&self) -> JudgeMethod {
        self.method
    }

    /// Lowercase hex sha256 (64 characters); see the module docs.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The model name as one path segment: ASCII letters, digits, `.`, `-` and `_` kept, anything
    /// else (`/`, `:`, spaces) replaced by `_`. Only groups entries: the hash already covers the
    /// exact model name, so two names with the same slug never share an entry.
    pub fn model_slug(&self) -> String {
        let slug: String = self
            .model
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let slug = slug.trim_start_matches('.').to_string();
        if slug.is_empty() { "_".into() } else { slug }
    }
}

/// Judgments by key. Implementations should treat an unreadable entry as missing (and may log it),
/// so that a damaged entry is judged again and overwritten rather than failing the run.
pub trait JudgmentCache {
    fn get(&self, key: &JudgmentKey) -> Result<Option<NumberDistribution>, CacheError>;
    fn put(&self, key: &JudgmentKey, dist: &NumberDistribution) -> Result<(), CacheError>;
}

/// Caches nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCache;

impl JudgmentCache for NoCache {
    fn get(&self, _: &JudgmentKey) -> Result<Option<NumberDistribution>, CacheError> {
        Ok(None)
    }
    fn put(&self, _: &JudgmentKey, _: &NumberDistribution) -> Result<(), CacheError> {
        Ok(())
    }
}

/// An in-process cache.
#[derive(Debug, Default)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, NumberDistribution>>,
}

impl MemoryCache {
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl JudgmentCache for MemoryCache {
    fn get(&self, key: &JudgmentKey) -> Result<Option<NumberDistribution>, CacheError> {
        let map = self.entries.lock().map_err(|_| "memory cache poisoned")?;
        Ok(map.get(key.hash()).cloned())
    }
    fn put(&self, key: &JudgmentKey, dist: &NumberDistribution) -> Result<(), CacheError> {
        let mut map = self.entries.lock().map_err(|_| "memory cache poisoned")?;
        map.insert(key.hash().to_string(), dist.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_depends_on_model_method_and_prompt_only() {
        let k = JudgmentKey::new("gpt-4o-2024-08-06", JudgeMethod::Top20FirstToken, "p");
        assert_eq!(k.hash().len(), 64);
        assert_eq!(
            k,
            JudgmentKey::new("gpt-4o-2024-08-06", JudgeMethod::Top20FirstToken, "p")
        );
        for other in [
            JudgmentKey::new("gpt-4o", JudgeMethod::Top20FirstToken, "p"),
            JudgmentKey::new("gpt-4o-2024-08-06", JudgeMethod::ExactNumber, "p"),
            JudgmentKey::new("gpt-4o-2024-08-06", JudgeMethod::Top20FirstToken, "p "),
        ] {
            assert_ne!(k.hash(), other.hash());
        }
        // No ambiguity between where the model name ends and the prompt begins.
        assert_ne!(
            JudgmentKey::new("a\",\"b", JudgeMethod::ExactNumber, "c").hash(),
            JudgmentKey::new("a", JudgeMethod::ExactNumber, "b\",\"c").hash()
        );
        // The documented formula, pinned.
        let material = r#"["m","top20-first-token","p"]"#;
        assert_eq!(
            JudgmentKey::new("m", JudgeMethod::Top20FirstToken, "p").hash(),
            hex::encode(Sha256::digest(material.as_bytes()))
        );
    }

    #[test]
    fn slugs_are_one_safe_path_segment() {
        let slug = |m: &str| JudgmentKey::new(m, JudgeMethod::ExactNumber, "").model_slug();
        assert_eq!(slug("gpt-4o-2024-08-06"), "gpt-4o-2024-08-06");
        assert_eq!(slug("Qwen/Qwen2.5-7B:q4"), "Qwen_Qwen2.5-7B_q4");
        assert_eq!(slug(".."), "_");
        assert_eq!(slug(""), "_");
    }

    #[test]
    fn memory_cache_round_trips() {
        let c = MemoryCache::default();
        let k = JudgmentKey::new("m", JudgeMethod::Top20FirstToken, "p");
        assert_eq!(c.get(&k).unwrap(), None);
        let mut d = NumberDistribution::zeros();
        d.probs[7] = 0.5;
        c.put(&k, &d).unwrap();
        assert_eq!(c.get(&k).unwrap(), Some(d));
        assert_eq!(c.len(), 1);
    }
}
