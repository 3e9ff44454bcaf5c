//! How a distribution over the numbers 0-100 is read from a judge.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JudgeMethod {
    /// Exact probabilities of "0".."100" followed by a non-digit (digit-splitting tokenizers);
    /// local judge only (it branches the model's KV cache over digit prefixes).
    ExactNumber,
    /// The papers' rule: top-20 first-token logprobs, tokens that are whole numbers 0-100.
    Top20FirstToken,
}

impl JudgeMethod {
    /// The sweep file's spelling: `exact-number`, `top20-first-token`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "exact-number" => Some(JudgeMethod::ExactNumber),
            "top20-first-token" => Some(JudgeMethod::Top20FirstToken),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JudgeMethod::ExactNumber => "exact-number",
            JudgeMethod::Top20FirstToken => "top20-first-token",
        }
    }
}

impl fmt::Display for JudgeMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for m in [JudgeMethod::ExactNumber, JudgeMethod::Top20FirstToken] {
            assert_eq!(JudgeMethod::parse(m.as_str()), Some(m));
        }
        assert_eq!(JudgeMethod::parse("top-20"), None);
    }
}
