//! Judging: from a judge's distribution over the numbers 0-100 to a score, and from scores to EM.
//!
//! - [`score`]: the papers' expected-value score over a number distribution (renormalised over
//!   numbers, `None` below 0.25 mass on numbers).
//! - [`em`]: where a score becomes EM (aligned below a threshold and coherent above one).
//! - [`JudgeMethod`]: how the distribution is read (`exact-number`, `top20-first-token`).
//! - [`cache`]: judgments cached by (judge model, method, prompt) behind a small trait.
//! - `openai` (feature `openai`): a judge behind an OpenAI-compatible API (the papers' GPT-4o
//!   request: one token, top-20 logprobs), with bounded concurrency and the cache.
//!
//! The local GGUF judge (candle), which computes the exact probability of each number string by
//! branching the KV cache over digit prefixes, is the crate `emorg-judge-local` (worker only), so
//! that nothing the launcher depends on has a candle feature.

pub mod cache;
pub mod em;
mod method;
#[cfg(feature = "openai")]
pub mod openai;
pub mod score;
pub mod summary;
pub mod validate;

pub use cache::{CacheError, JudgmentCache, JudgmentKey, MemoryCache, NoCache};
pub use em::{EmRule, is_coherent};
pub use method::JudgeMethod;
pub use score::{MIN_NUMBER_MASS, NumberDistribution, Score};
pub use summary::ValidationSummary;
