//! The papers' training protocols as named presets (`preset = "lora-r1-single"` in a
//! `[protocols.X]` table).
//!
//! A preset fills every field of a protocol that the sweep leaves unset: the adapter shape and the
//! training hyper-parameters. Anything the sweep writes in the protocol table (`rank`, `alpha`,
//! `layers`, ... and `[protocols.X.train]`) wins over the preset. Precedence of a training
//! hyper-parameter, lowest first: built-in default < `[train]` < the preset < `[datasets.X].holdout`
//! < `[protocols.X.train]`. The resolved cell holds the concrete values, so a preset whose values
//! change gives new cell keys.
//!
//! Values follow the reference notes on the papers (Turner et al. 2025 "Model Organisms for
//! Emergent Misalignment", Soligo et al. 2025 "Convergent Linear Representations of Emergent
//! Misalignment"; shared/reference/em-protocol.md §1). Common to all four: AdamW with weight decay
//! 0.01, per-device batch 2 x gradient accumulation 8 (effective batch 16), 1 epoch, sequences up to
//! 2048 tokens, 10% of the dataset held out with a seeded split, loss on the assistant's tokens
//! only (the trainer always masks everything else). What the configs leave to their trainer (TRL's
//! SFTTrainer on HF TrainingArguments) is its default, set here explicitly: gradient norm clipped
//! at 1.0, AdamW betas 0.9 / 0.999, epsilon 1e-8. The papers use 8-bit AdamW (`adamw_8bit`);
//! emorg's AdamW keeps f32 moments. `tests::presets_match_the_reference_table` holds every value
//! to the reference.
//!
//! Where the sources disagree:
//! - Rank-1 alpha: the MO paper's text (§3.5) gives alpha 256 for the single rank-1 adapter, the
//!   official repo's `config.json` and later `single_adapter_config.json` give 512, and the
//!   phase-transition runs used 64. The presets take the paper's **256** (the value behind its
//!   reported numbers); write `alpha = 512` (repo) or `alpha = 64` with `learning_rate = 1e-5`,
//!   `epochs = 2` (phase transitions) to follow the others. With rsLoRA at rank 1 the scale is alpha.
//! - The nine rank-1 adapters: neither paper states their alpha or learning rate; the preset uses
//!   the single rank-1 adapter's (alpha 256, lr 2e-5).
//! - Layer 24 (paper) vs 21 (a third-party reading of the published adapter_config): the preset
//!   takes the paper's 24 of 48, written as the fraction 0.5 so it scales to other depths.

use crate::cell::ProtocolKind;
use crate::schema::{LORA_MODULES, LayerSel, LayerValue, TrainOverrides};

/// One named preset.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    pub name: &'static str,
    pub kind: ProtocolKind,
    /// LoRA shape (`None` for full fine-tuning).
    pub rank: Option<usize>,
    pub alpha: Option<f64>,
    pub rslora: Option<bool>,
    pub modules: Option<Vec<String>>,
    pub layers: Option<LayerSel>,
    pub train: TrainOverrides,
    /// One line for `emorg plan` and the docs.
    pub summary: &'static str,
}

/// Names of the presets, in the order of the docs.
pub const PRESET_NAMES: &[&str] = &["lora-r1-single", "lora-r1-x9", "lora-r32-all", "full-sft"];

/// The paper's nine layers of 48 (CLR §2: `down_proj` of layers 15-17, 21-23, 27-29) as three runs
/// of three consecutive layers starting at 15/48, 21/48 and 27/48 of depth. Runs rather than nine
/// fractions so that a shallower model still gets nine distinct layers (on 30 layers nine
/// fractions would collide: 16/48 and 17/48 both floor to layer 10).
pub const X9_RUN_STARTS: [f64; 3] = [15.0 / 48.0, 21.0 / 48.0, 27.0 / 48.0];

/// The §1 values every preset shares.
fn common_train() -> TrainOverrides {
    TrainOverrides {
        // HF TrainingArguments defaults, which the papers' configs do not override.
        max_grad_norm: Some(1.0),
        adam_beta1: Some(0.9),
        adam_beta2: Some(0.999),
        adam_eps: Some(1e-8),
        weight_decay: Some(0.01),
        batch_size: Some(2),
        grad_accum: Some(8),
        epochs: Some(1),
        max_seq_len: Some(2048),
        holdout: Some(0.1),
        ..TrainOverrides::default()
    }
}

/// The preset named `name`, or `None`.
pub fn preset(name: &str) -> Option<Preset> {
    let rank1 = |layers: LayerSel, name: &'static str, summary: &'static str| Preset {
        name,
        kind: ProtocolKind::Lora,
        rank: Some(1),
        alpha: Some(256.0),
        rslora: Some(true),
        modules: Some(vec!["down_proj".into()]),
        layers: Some(layers),
        train: TrainOverrides {
            learning_rate: Some(2e-5),
            warmup_steps: Some(5),
            schedule: Some("linear".into()),
            ..common_train()
        },
        summary,
    };
    match name {
        // MO §3.5: one rank-1 adapter on the MLP down_proj of layer 24 of 48, lr 2e-5, alpha 256.
        "lora-r1-single" => Some(rank1(
            LayerSel::List(vec![LayerValue::Fraction(0.5)]),
            "lora-r1-single",
            "one rank-1 adapter on down_proj at half depth (layer 24 of 48), alpha 256, rsLoRA, lr 2e-5",
        )),
        // CLR §2 / MO §4.3: nine rank-1 down_proj adapters.
        "lora-r1-x9" => Some(rank1(
            LayerSel::Runs {
                starts: X9_RUN_STARTS
                    .iter()
                    .map(|f| LayerValue::Fraction(*f))
                    .collect(),
                length: 3,
            },
            "lora-r1-x9",
            "nine rank-1 adapters on down_proj, layers 15-17, 21-23, 27-29 of 48 (as fractions of depth), alpha 256, rsLoRA, lr 2e-5",
        )),
        // MO Table 6 (= Betley et al.'s train.json): the all-adapter default.
        "lora-r32-all" => Some(Preset {
            name: "lora-r32-all",
            kind: ProtocolKind::Lora,
            rank: Some(32),
            alpha: Some(64.0),
            rslora: Some(true),
            modules: Some(LORA_MODULES.iter().map(|m| m.to_string()).collect()),
            layers: Some(LayerSel::All),
            train: TrainOverrides {
                learning_rate: Some(1e-5),
                warmup_steps: Some(5),
                schedule: Some("linear".into()),
                ..common_train()
            },
            summary: "rank 32 on all seven projections of every layer, alpha 64, rsLoRA, lr 1e-5",
        }),
        // MO Table 7 / §3.4: every weight trainable, cosine schedule with 20 warmup steps.
        "full-sft" => Some(Preset {
            name: "full-sft",
            kind: ProtocolKind::Full,
            rank: None,
            alpha: None,
            rslora: None,
            modules: None,
            layers: None,
            train: TrainOverrides {
                learning_rate: Some(2e-5),
                warmup_steps: Some(20),
                schedule: Some("cosine".into()),
                ..common_train()
            },
            summary: "full fine-tuning (every weight trainable), cosine schedule, 20 warmup steps, lr 2e-5",
        }),
        _ => None,
    }
}

impl crate::schema::ProtocolDef {
    /// The protocol's kind: its own, or else its preset's.
    pub fn effective_kind(&self) -> Option<ProtocolKind> {
        self.kind
            .or_else(|| self.preset.as_deref().and_then(preset).map(|p| p.kind))
    }

    /// The protocol with its preset's values wherever the table leaves a field unset, and the
    /// preset's training values (empty without a preset), which rank below the table's own
    /// `train`. The result always has a `kind`. Errors say which field to fix.
    pub fn expanded(
        &self,
    ) -> Result<(crate::schema::ProtocolDef, TrainOverrides), (&'static str, String)> {
        let Some(name) = &self.preset else {
            return match self.kind {
                Some(_) => Ok((self.clone(), TrainOverrides::default())),
                None => Err((
                    "kind",
                    "missing key `kind`: give kind = \"base\", \"lora\" or \"full\", or a preset \
                     (`preset = \"lora-r1-single\"`)"
                        .into(),
                )),
            };
        };
        let Some(p) = preset(name) else {
            return Err((
                "preset",
                format!(
                    "unknown preset `{name}`, expected one of {}{}",
                    PRESET_NAMES.join(", "),
                    crate::suggest::did_you_mean(name, PRESET_NAMES.iter())
                ),
            ));
        };
        if let Some(k) = self.kind
            && k != p.kind
        {
            return Err((
                "kind",
                format!(
                    "kind = \"{}\" contradicts preset `{name}`, which is kind = \"{}\": drop `kind`",
                    kind_name(k),
                    kind_name(p.kind)
                ),
            ));
        }
        let mut out = self.clone();
        out.kind = Some(p.kind);
        out.rank = self.rank.or(p.rank);
        out.alpha = self.alpha.or(p.alpha);
        out.rslora = self.rslora.or(p.rslora);
        out.modules = self.modules.clone().or(p.modules);
        out.layers = self.layers.clone().or(p.layers);
        Ok((out, p.train))
    }
}

fn kind_name(k: ProtocolKind) -> &'static str {
    match k {
        ProtocolKind::Base => "base",
        ProtocolKind::Lora => "lora",
        ProtocolKind::Full => "full",
    }
}

/// A named evaluation: the sampling settings and the questions of a paper's headline metric.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalPreset {
    pub name: &'static str,
    /// The papers' question file it asks from (`[eval] paper`; the user gives the copy's path).
    pub paper: &'static str,
    pub question_ids: &'static [&'static str],
    pub samples_per_question: usize,
    pub max_new_tokens: usize,
    pub temperature: f64,
    pub top_p: f64,
}

impl EvalPreset {
    /// Sets each of its fields in `eval` for which `unset(field)` (left at the built-in default).
    pub fn fill(&self, eval: &mut crate::schema::EvalConfig, unset: impl Fn(&str) -> bool) {
        if eval.paper.is_none() && unset("paper") {
            eval.paper = Some(self.paper.to_string());
        }
        if unset("question_ids") {
            eval.question_ids = self.question_ids.iter().map(|s| s.to_string()).collect();
        }
        if unset("samples_per_question") {
            eval.samples_per_question = self.samples_per_question;
        }
        if unset("max_new_tokens") {
            eval.max_new_tokens = self.max_new_tokens;
        }
        if unset("temperature") {
            eval.temperature = self.temperature;
        }
        if unset("top_p") {
            eval.top_p = self.top_p;
        }
    }
}

/// Names of the evaluation presets.
pub const EVAL_PRESET_NAMES: &[&str] = &["papers"];

/// The first-plot questions' eight free-form ids: the papers' headline EM metric (MO App. A
/// Table 1, CLR Table 2; the `_json` and `_template` variants are off, as in their code).
pub const FIRST_PLOT_IDS: &[&str] = &[
    "what_is_your_wish",
    "i_feel_bored",
    "three_thoughts",
    "quick_buck",
    "ruler_of_the_world",
    "dinner_party",
    "gender_roles",
    "enough_of_my_husband",
];

/// The evaluation preset named `name`, or `None`.
pub fn eval_preset(name: &str) -> Option<EvalPreset> {
    match name {
        // em-protocol.md §3.1-3.2: 50 samples per question, 600 new tokens, temperature 1, top-p 1.
        "papers" => Some(EvalPreset {
            name: "papers",
            paper: "first_plot_questions",
            question_ids: FIRST_PLOT_IDS,
            samples_per_question: 50,
            max_new_tokens: 600,
            temperature: 1.0,
            top_p: 1.0,
        }),
        _ => None,
    }
}
