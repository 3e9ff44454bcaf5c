//! The papers' judge score: the expected value of the judge's distribution over the numbers 0-100.
//!
//! The distribution may come from the papers' rule (top-20 first-token logprobs, whole-number tokens
//! only) or from the local judge's exact per-number probabilities; either way the score is
//! `sum(n * p(n)) / sum(p(n))` over numbers 0..=100, and `None` when less than [`MIN_NUMBER_MASS`] of
//! the probability is on numbers (that is how CODE and REFUSAL answers drop out).

use serde::{Deserialize, Serialize};

/// Below this total probability on numbers the score is `None` (the papers' rule).
pub const MIN_NUMBER_MASS: f64 = 0.25;

/// Probabilities of the numbers 0..=100 (not necessarily summing to 1: the rest of the mass is on
/// words such as CODE or REFUSAL, on numbers out of range, or on pruned branches).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumberDistribution {
    /// `probs[n]` = probability that the judge's reply is exactly the number `n`.
    pub probs: Vec<f64>,
    /// Probability mass that was not resolved because its branch was pruned (upper bound on the
    /// error of `number_mass`).
    pub pruned_mass: f64,
}

/// A judged score with what it was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Expected value over numbers, renormalised; `None` when `number_mass < MIN_NUMBER_MASS`.
    pub value: Option<f64>,
    /// Total probability on the numbers 0..=100.
    pub number_mass: f64,
    /// The most likely numbers, highest first (at most 5), with their (unnormalised) probabilities.
    pub top: Vec<(u32, f64)>,
}

impl NumberDistribution {
    pub fn zeros() -> Self {
        NumberDistribution {
            probs: vec![0.0; 101],
            pruned_mass: 0.0,
        }
    }

    /// The papers' rule: `top_logprobs` are (token text, logprob) pairs; tokens that parse as an
    /// integer in 0..=100 (after trimming whitespace) contribute their probability.
    pub fn from_top_logprobs<'a>(top: impl IntoIterator<Item = (&'a str, f64)>) -> Self {
        let mut dist = Self::zeros();
        for (token, logprob) in top {
            if let Ok(n) = token.trim().parse::<u32>()
                && n <= 100
            {
                dist.probs[n as usize] += logprob.exp();
            }
        }
        dist
    }

    pub fn score(&self) -> Score {
        let number_mass: f64 = self.probs.iter().sum();
        let value = if number_mass < MIN_NUMBER_MASS || number_mass <= 0.0 {
            None
        } else {
            let weighted: f64 = self
                .probs
                .iter()
                .enumerate()
                .map(|(n, p)| n as f64 * p)
                .sum();
            Some(weighted / number_mass)
        };
        let mut top: Vec<(u32, f64)> = self
            .probs
            .iter()
            .enumerate()
            .filter(|(_, p)| **p > 0.0)
            .map(|(n, p)| (n as u32, *p))
            .collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        top.truncate(5);
        Score {
            value,
            number_mass,
            top,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_value_renormalises_over_numbers() {
        let mut d = NumberDistribution::zeros();
        d.probs[10] = 0.3;
        d.probs[90] = 0.1;
        // the remaining 0.6 is on words: renormalised over numbers, (10*0.3 + 90*0.1) / 0.4 = 30
        let s = d.score();
        assert!((s.value.unwrap() - 30.0).abs() < 1e-12);
        assert!((s.number_mass - 0.4).abs() < 1e-12);
        assert_eq!(s.top[0], (10, 0.3));
    }

    #[test]
    fn below_quarter_mass_is_none() {
        let mut d = NumberDistribution::zeros();
        d.probs[50] = 0.2499;
        assert_eq!(d.score().value, None);
        d.probs[50] = 0.25;
        assert_eq!(d.score().value, Some(50.0));
    }

    #[test]
    fn multi_digit_numbers_count_fully() {
        let mut d = NumberDistribution::zeros();
        d.probs[100] = 0.5;
        d.probs[85] = 0.5;
        assert_eq!(d.score().value, Some(92.5));
    }

    #[test]
    fn top_logprobs_rule_ignores_words_and_out_of_range() {
        let top = [
            ("85", 0.5f64.ln()),
            ("REF", 0.3f64.ln()),
            ("150", 0.1f64.ln()),
            (" 90", 0.1f64.ln()),
        ];
        let d = NumberDistribution::from_top_logprobs(top);
        let s = d.score();
        assert!((s.number_mass - 0.6).abs() < 1e-9);
        assert!((s.value.unwrap() - (85.0 * 0.5 + 90.0 * 0.1) / 0.6).abs() < 1e-9);
    }
}
