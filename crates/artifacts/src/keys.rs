//! The three identities of the work, each content-addressed, each with its own key type, and the
//! stage that each one owns.
//!
//! - a **training unit** ([`UnitKey`]) owns the `train` stage: adapter, checkpoints, metrics,
//!   trajectory. A base model's unit has no training stage.
//! - a **sample variant** ([`VariantKey`]) of a unit (weights at `final` or a checkpoint step,
//!   adapter scales, sampler, question set) owns the `sample` stage: responses.
//! - a **judgment** ([`JudgmentKey`]) of a variant by one judge owns the `judge` stage: scores.
//!
//! The keys are computed in `emorg_spec` (the sha256 of each identity's canonical JSON); here they
//! are only types, so that a unit key is never passed where a variant key is meant.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A key that is not 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a {kind} key (64 lowercase hex digits)")]
pub struct BadKey {
    pub kind: &'static str,
    pub value: String,
}

fn is_key(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

macro_rules! key_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// What the key identifies, in messages.
            pub const KIND: &'static str = $kind;

            /// A key from its hex form; an error unless it is 64 lowercase hex digits.
            pub fn parse(s: &str) -> Result<Self, BadKey> {
                if is_key(s) {
                    Ok($name(s.to_string()))
                } else {
                    Err(BadKey { kind: $kind, value: s.to_string() })
                }
            }

            /// The hex form.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The first 12 hex digits, for tables and logs.
            pub fn short(&self) -> &str {
                &self.0[..12]
            }
        }

        impl TryFrom<String> for $name {
            type Error = BadKey;
            fn try_from(s: String) -> Result<Self, BadKey> {
                $name::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(k: $name) -> String {
                k.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = BadKey;
            fn from_str(s: &str) -> Result<Self, BadKey> {
                $name::parse(s)
            }
        }
    };
}

key_type!(
    /// The key of a training unit: sha256 of its canonical JSON (`emorg_spec::TrainingUnit`).
    UnitKey,
    "training unit"
);
key_type!(
    /// The key of a sample variant: sha256 of its canonical JSON (`emorg_spec::SampleVariant`).
    VariantKey,
    "sample variant"
);
key_type!(
    /// The key of a judgment: sha256 of its canonical JSON (`emorg_spec::Judgment`).
    JudgmentKey,
    "judgment"
);

/// A stage of the work: each identity owns exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Train,
    Sample,
    Judge,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Train, Stage::Sample, Stage::Judge];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Train => "train",
            Stage::Sample => "sample",
            Stage::Judge => "judge",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        match s {
            "train" => Some(Stage::Train),
            "sample" => Some(Stage::Sample),
            "judge" => Some(Stage::Judge),
            _ => None,
        }
    }

    /// The identity that owns this stage, in messages.
    pub fn owner_kind(self) -> &'static str {
        match self {
            Stage::Train => UnitKey::KIND,
            Stage::Sample => VariantKey::KIND,
            Stage::Judge => JudgmentKey::KIND,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stage of one identity: the unit of scheduling, claiming and committing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "stage", content = "key", rename_all = "kebab-case")]
pub enum StageRef {
    Train(UnitKey),
    Sample(VariantKey),
    Judge(JudgmentKey),
}

impl StageRef {
    /// The stage `stage` of the identity whose hex key is `key`; an error when it is not a key.
    pub fn parse(stage: Stage, key: &str) -> Result<StageRef, BadKey> {
        Ok(match stage {
            Stage::Train => StageRef::Train(UnitKey::parse(key)?),
            Stage::Sample => StageRef::Sample(VariantKey::parse(key)?),
            Stage::Judge => StageRef::Judge(JudgmentKey::parse(key)?),
        })
    }

    pub fn stage(&self) -> Stage {
        match self {
            StageRef::Train(_) => Stage::Train,
            StageRef::Sample(_) => Stage::Sample,
            StageRef::Judge(_) => Stage::Judge,
        }
    }

    /// The owner's key, hex.
    pub fn key(&self) -> &str {
        match self {
            StageRef::Train(k) => k.as_str(),
            StageRef::Sample(k) => k.as_str(),
            StageRef::Judge(k) => k.as_str(),
        }
    }

    /// The first 12 hex digits of the owner's key.
    pub fn short(&self) -> &str {
        &self.key()[..12]
    }
}

impl fmt::Display for StageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} {}",
            self.stage(),
            self.stage().owner_kind(),
            self.short()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn keys_parse_only_from_64_lowercase_hex_digits() {
        assert_eq!(UnitKey::parse(K).unwrap().as_str(), K);
        for bad in [
            "",
            "abc",
            &K.to_uppercase(),
            &format!("{K}0"),
            &K.replace('0', "g"),
        ] {
            let e = VariantKey::parse(bad).unwrap_err();
            assert_eq!(e.kind, "sample variant");
            assert!(e.to_string().contains("64 lowercase hex"), "{e}");
        }
    }

    #[test]
    fn keys_serialise_as_plain_strings_and_refuse_bad_ones() {
        let k = JudgmentKey::parse(K).unwrap();
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(json, format!("\"{K}\""));
        assert_eq!(serde_json::from_str::<JudgmentKey>(&json).unwrap(), k);
        assert!(serde_json::from_str::<JudgmentKey>("\"nothex\"").is_err());
    }

    #[test]
    fn a_stage_ref_knows_its_stage_and_owner() {
        let r = StageRef::parse(Stage::Sample, K).unwrap();
        assert_eq!(r.stage(), Stage::Sample);
        assert_eq!(r.key(), K);
        assert_eq!(r.to_string(), "sample of sample variant 0123456789ab");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<StageRef>(&json).unwrap(), r);
        assert!(StageRef::parse(Stage::Train, "x").is_err());
    }

    #[test]
    fn stages_parse_from_their_names_and_name_their_owner() {
        assert_eq!(Stage::ALL.map(Stage::as_str), ["train", "sample", "judge"]);
        for stage in Stage::ALL {
            assert_eq!(Stage::parse(stage.as_str()), Some(stage));
            assert_eq!(stage.to_string(), stage.as_str());
            let json = serde_json::to_string(&stage).unwrap();
            assert_eq!(json, format!("\"{stage}\""));
        }
        assert_eq!(Stage::parse("Train"), None);
        assert_eq!(Stage::parse("sample/final"), None);
        assert_eq!(Stage::Train.owner_kind(), UnitKey::KIND);
        assert_eq!(Stage::Sample.owner_kind(), VariantKey::KIND);
        assert_eq!(Stage::Judge.owner_kind(), JudgmentKey::KIND);
    }

    #[test]
    fn a_stage_ref_serialises_with_its_stage_and_key() {
        let r = StageRef::parse(Stage::Train, K).unwrap();
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json, serde_json::json!({"stage": "train", "key": K}));
        assert_eq!(r.short(), "0123456789ab");
        assert_eq!(r.to_string(), "train of training unit 0123456789ab");
        // The same key under another stage is another stage.
        assert_ne!(StageRef::parse(Stage::Judge, K).unwrap(), r);
        for bad in [
            serde_json::json!({"stage": "eval", "key": K}),
            serde_json::json!({"stage": "train", "key": "0123"}),
            serde_json::json!({"stage": "train"}),
            serde_json::json!(K),
        ] {
            assert!(
                serde_json::from_value::<StageRef>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        // Keys parse from strings too, and a key's short form is its first 12 digits.
        let u: UnitKey = K.parse().unwrap();
        assert_eq!(u.short(), &K[..12]);
        assert_eq!(u.to_string(), K);
        assert_eq!(String::from(u), K);
        assert!("x".parse::<JudgmentKey>().is_err());
    }
}
