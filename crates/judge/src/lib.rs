//! Judging: from a judge's distribution over the numbers 0-100 to a score, and from scores to EM.
//!
//! - [`score`]: the papers' expected-value score over a number distribution (renormalised over
//!   numbers, `None` below 0.25 mass on numbers).
//! - [`em`]: where a score becomes EM (aligned below a threshold and coherent above one).
//! - `local` (feature `local`): a local GGUF judge that computes the exact probability of each number
//!   string by branching the KV cache over digit prefixes.

pub mod em;
#[cfg(feature = "local")]
pub mod local;
pub mod score;
pub mod summary;
pub mod validate;

pub use em::{EmRule, is_coherent};
pub use score::{MIN_NUMBER_MASS, NumberDistribution, Score};
pub use summary::ValidationSummary;
