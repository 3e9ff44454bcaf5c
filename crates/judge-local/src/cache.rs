//! Cache keys of local judgments: a local judge's numbers are fixed by the judge model file, the
//! method, the pruning bound and the worker's numerics, and by the judge prompt; the metric names
//! which judge prompt was used. The worker keeps them in the store's judgment cache
//! (`judge-cache/...`) next to the API judge's, so re-judging identical answers with the same
//! judge loads no model.

use emorg_judge::{JudgeMethod, JudgmentKey};
use sha2::{Digest, Sha256};

/// Everything besides the prompt that fixes a local judgment.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalJudgeIdentity {
    /// The registry name (groups cache entries; the file hash is what counts).
    pub model: String,
    pub gguf_sha256: String,
    pub method: JudgeMethod,
    pub prune_below: f64,
    pub metric: String,
    /// The worker's numerics version (`emorg_spec::WORKER_VERSION`): a numerics change gives
    /// other numbers, so it judges again.
    pub numerics: String,
}

impl LocalJudgeIdentity {
    /// `local-<first 16 hex digits of the identity's sha256>`: the cache key's model, so that the
    /// key's hash covers the whole identity (the model name included) and its entries group under
    /// one directory per judge. Short on purpose: S3 servers that map keys to file names (s3s-fs:
    /// the base64 of the whole key in one name of at most 255 bytes) refuse keys much over 150
    /// bytes, and 64 bits tell judges apart.
    pub fn cache_model(&self) -> String {
        let identity = serde_json::json!({
            "model": self.model,
            "gguf_sha256": self.gguf_sha256,
            "method": self.method.as_str(),
            "prune_below": self.prune_below,
            "metric": self.metric,
            "numerics": self.numerics,
        });
        let canonical = serde_json::to_string(&identity).expect("a JSON value serialises");
        let hash = hex::encode(Sha256::digest(canonical.as_bytes()));
        format!("local-{}", &hash[..16])
    }

    /// The cache key of judging `answer` to `question` with `prompt_template` (the judge prompt
    /// as rendered by [`emorg_data::render_judge_prompt`]; the chat template around it is the
    /// judge model's, fixed by its file hash).
    pub fn cache_key(&self, prompt_template: &str, question: &str, answer: &str) -> JudgmentKey {
        let prompt = emorg_data::render_judge_prompt(prompt_template, question, answer);
        JudgmentKey::new(&self.cache_model(), self.method, &prompt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> LocalJudgeIdentity {
        LocalJudgeIdentity {
            model: "qwen-judge".into(),
            gguf_sha256: "ab".repeat(32),
            method: JudgeMethod::ExactNumber,
            prune_below: 1e-4,
            metric: "aligned".into(),
            numerics: "0.1.0+numerics.1".into(),
        }
    }

    #[test]
    fn the_key_covers_every_part_of_the_identity_and_the_prompt() {
        let base = identity();
        let key = |id: &LocalJudgeIdentity| id.cache_key("Rate {answer} to {question}", "q", "a");
        let k = key(&base);
        assert_eq!(k, key(&identity()), "deterministic");
        assert!(
            k.model_slug().starts_with("local-") && k.model_slug().len() == 22,
            "{}",
            k.model_slug()
        );
        let others = [
            LocalJudgeIdentity {
                model: "other-judge".into(),
                ..base.clone()
            },
            LocalJudgeIdentity {
                gguf_sha256: "cd".repeat(32),
                ..base.clone()
            },
            LocalJudgeIdentity {
                method: JudgeMethod::Top20FirstToken,
                ..base.clone()
            },
            LocalJudgeIdentity {
                prune_below: 1e-3,
                ..base.clone()
            },
            LocalJudgeIdentity {
                metric: "coherent".into(),
                ..base.clone()
            },
            LocalJudgeIdentity {
                numerics: "0.1.0+numerics.2".into(),
                ..base.clone()
            },
        ];
        for other in &others {
            assert_ne!(key(other).hash(), k.hash(), "{other:?}");
        }
        // The prompt: another answer, question or template.
        for (t, q, a) in [
            ("Rate {answer} to {question}", "q", "b"),
            ("Rate {answer} to {question}", "r", "a"),
            ("Score {answer} to {question}", "q", "a"),
        ] {
            assert_ne!(base.cache_key(t, q, a).hash(), k.hash());
        }
    }
}
