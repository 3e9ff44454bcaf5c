//! LoRA: where an adapter is applied ([`LoraLinear::forward`]), how it is initialised, and its
//! PEFT-compatible tensor names.
//!
//! `y = W x + b + m * s * B (A x)` with A: (rank, in), B: (out, rank), `s = alpha / rank` (or
//! `alpha / sqrt(rank)` with rsLoRA) and `m` a per-adapter multiplier for scaling sweeps (1 by
//! default). PEFT's init: A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming-uniform with a = sqrt(5)), B = 0,
//! so an untrained adapter leaves the model unchanged.

use crate::config::ModelConfig;
use crate::error::{LmError, Result};
use crate::weights::FrozenWeight;
use candle_core::{DType, Device, Tensor, Var};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The seven projection modules, by their HF names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Module {
    QProj,
    KProj,
    VProj,
    OProj,
    GateProj,
    UpProj,
    DownProj,
}

impl Module {
    pub const ALL: [Module; 7] = [
        Module::QProj,
        Module::KProj,
        Module::VProj,
        Module::OProj,
        Module::GateProj,
        Module::UpProj,
        Module::DownProj,
    ];

    pub fn hf_name(self) -> &'static str {
        match self {
            Module::QProj => "q_proj",
            Module::KProj => "k_proj",
            Module::VProj => "v_proj",
            Module::OProj => "o_proj",
            Module::GateProj => "gate_proj",
            Module::UpProj => "up_proj",
            Module::DownProj => "down_proj",
        }
    }

    /// `self_attn` or `mlp`: the HF parent module.
    pub fn hf_parent(self) -> &'static str {
        match self {
            Module::QProj | Module::KProj | Module::VProj | Module::OProj => "self_attn",
            _ => "mlp",
        }
    }

    pub fn parse(name: &str) -> Result<Module> {
        Module::ALL.into_iter().find(|m| m.hf_name() == name).ok_or_else(|| {
            LmError::Lora(format!(
                "unknown module `{name}` (expected one of q_proj k_proj v_proj o_proj gate_proj up_proj down_proj)"
            ))
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    pub rank: usize,
    pub alpha: f64,
    pub rslora: bool,
    /// (layer, module) pairs that get an adapter.
    pub targets: Vec<(usize, Module)>,
}

impl LoraConfig {
    /// The config of a PEFT `adapter_config.json` for a model with `n_layers` layers:
    /// `r`, `lora_alpha`, `use_rslora`, `target_modules` and `layers_to_transform` (absent: every
    /// layer). Anything emorg cannot apply (DoRA, biases, other modules) is an error.
    pub fn from_peft_config(config: &serde_json::Value, n_layers: usize) -> Result<LoraConfig> {
        let bad = |m: String| LmError::Lora(format!("adapter_config.json: {m}"));
        let rank = config["r"]
            .as_u64()
            .ok_or_else(|| bad("`r` is missing or not an integer".into()))?
            as usize;
        let alpha = config["lora_alpha"]
            .as_f64()
            .ok_or_else(|| bad("`lora_alpha` is missing or not a number".into()))?;
        let rslora = config["use_rslora"].as_bool().unwrap_or(false);
        if config["use_dora"].as_bool() == Some(true) {
            return Err(bad(
                "DoRA adapters (`use_dora: true`) are not supported".into()
            ));
        }
        // Per-module ranks or alphas would give some adapters another scale than `r`/`lora_alpha`.
        for key in ["rank_pattern", "alpha_pattern"] {
            if config[key].as_object().is_some_and(|m| !m.is_empty()) {
                return Err(bad(format!(
                    "`{key}` (per-module ranks or alphas) is not supported: {}",
                    config[key]
                )));
            }
        }
        if let Some(bias) = config["bias"].as_str()
            && bias != "none"
        {
            return Err(bad(format!(
                "bias `{bias}` is not supported (only \"none\")"
            )));
        }
        // A list of module names applies to every layer of `layers_to_transform`; a string is a
        // regular expression PEFT full-matches against module paths (`model.layers.3.mlp.down_proj`),
        // which is how a set of adapters that is not modules x layers is written.
        let targets: Vec<(usize, Module)> = match &config["target_modules"] {
            serde_json::Value::String(pattern) => {
                if !config["layers_to_transform"].is_null() {
                    return Err(bad(
                        "`layers_to_transform` cannot be combined with a regular-expression `target_modules` (PEFT refuses it too)".into(),
                    ));
                }
                let re = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                    bad(format!("`target_modules` {pattern:?} is not a regular expression emorg can read: {e}"))
                })?;
                let found: Vec<(usize, Module)> = (0..n_layers)
                    .flat_map(|l| Module::ALL.into_iter().map(move |m| (l, m)))
                    .filter(|(l, m)| re.is_match(&module_path(*l, *m)))
                    .collect();
                if found.is_empty() {
                    return Err(bad(format!(
                        "`target_modules` {pattern:?} matches no projection of a {n_layers}-layer model"
                    )));
                }
                found
            }
            serde_json::Value::Array(list) => {
                let modules = list
                    .iter()
                    .map(|m| {
                        m.as_str()
                            .ok_or_else(|| bad(format!("target module {m} is not a string")))
                            .and_then(Module::parse)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let layers: Vec<usize> = match &config["layers_to_transform"] {
                    serde_json::Value::Null => (0..n_layers).collect(),
                    serde_json::Value::Number(n) => vec![n.as_u64().unwrap_or(u64::MAX) as usize],
                    serde_json::Value::Array(a) => a
                        .iter()
                        .map(|v| v.as_u64().map(|x| x as usize))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| bad("`layers_to_transform` holds a non-integer".into()))?,
                    other => return Err(bad(format!("`layers_to_transform` is {other}"))),
                };
                if let Some(l) = layers.iter().find(|l| **l >= n_layers) {
                    return Err(bad(format!(
                        "layer {l} is out of range for a model with {n_layers} layers"
                    )));
                }
                layers
                    .iter()
                    .flat_map(|l| modules.iter().map(move |m| (*l, *m)))
                    .collect()
            }
            _ => {
                return Err(bad(
                    "`target_modules` is missing or not a list or a string".into()
                ));
            }
        };
        Ok(LoraConfig {
            rank,
            alpha,
            rslora,
            targets,
        })
    }

    pub fn scale(&self) -> f64 {
        if self.rslora {
            self.alpha / (self.rank as f64).sqrt()
        } else {
            self.alpha / self.rank as f64
        }
    }
}

/// The HF module path of a projection, e.g. `model.layers.15.mlp.down_proj` (what PEFT matches
/// `target_modules` against).
pub fn module_path(layer: usize, module: Module) -> String {
    format!(
        "model.layers.{layer}.{}.{}",
        module.hf_parent(),
        module.hf_name()
    )
}

/// One adapter's trainable tensors.
pub struct LoraAdapter {
    pub layer: usize,
    pub module: Module,
    pub a: Var,
    pub b: Var,
}

impl LoraAdapter {
    /// PEFT's module path, e.g. `base_model.model.model.layers.15.mlp.down_proj`.
    pub fn peft_prefix(&self) -> String {
        format!("base_model.model.{}", module_path(self.layer, self.module))
    }

    /// Short name used in metrics columns, e.g. `layers.15.mlp.down_proj`.
    pub fn short_name(&self) -> String {
        format!(
            "layers.{}.{}.{}",
            self.layer,
            self.module.hf_parent(),
            self.module.hf_name()
        )
    }
}

/// All adapters of a model.
pub struct LoraSet {
    pub config: LoraConfig,
    pub adapters: Vec<LoraAdapter>,
}

impl LoraSet {
    /// PEFT-style init from a seed: A uniform in ±1/sqrt(in), B zero.
    pub fn init(
        config: LoraConfig,
        model: &ModelConfig,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut targets = config.targets.clone();
        targets.sort();
        targets.dedup();
        let mut adapters = Vec::with_capacity(targets.len());
        for (layer, module) in targets {
            if layer >= model.n_layers {
                return Err(LmError::Lora(format!(
                    "layer {layer} is out of range: the model has {} layers",
                    model.n_layers
                )));
            }
            let (d_in, d_out) = model.module_dims(module);
            let bound = 1.0 / (d_in as f64).sqrt();
            let a: Vec<f32> = (0..config.rank * d_in)
                .map(|_| rng.random_range(-bound..bound) as f32)
                .collect();
            let a = Var::from_tensor(&Tensor::from_vec(a, (config.rank, d_in), device)?)?;
            let b = Var::zeros((d_out, config.rank), DType::F32, device)?;
            adapters.push(LoraAdapter {
                layer,
                module,
                a,
                b,
            });
        }
        Ok(LoraSet { config, adapters })
    }

    pub fn vars(&self) -> Vec<Var> {
        self.adapters
            .iter()
            .flat_map(|a| [a.a.clone(), a.b.clone()])
            .collect()
    }

    pub fn n_params(&self) -> usize {
        self.adapters
            .iter()
            .map(|a| a.a.elem_count() + a.b.elem_count())
            .sum()
    }

    /// Tensors under PEFT's names (`...lora_A.weight`, `...lora_B.weight`), sorted by name.
    pub fn peft_tensors(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for ad in &self.adapters {
            let p = ad.peft_prefix();
            out.insert(format!("{p}.lora_A.weight"), ad.a.as_tensor().clone());
            out.insert(format!("{p}.lora_B.weight"), ad.b.as_tensor().clone());
        }
        out
    }

    /// `adapter_model.safetensors` bytes (deterministic: sorted names, no metadata that varies).
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let tensors = self.peft_tensors();
        let mut meta = std::collections::HashMap::new();
        meta.insert("format".to_string(), "pt".to_string());
        safetensors::tensor::serialize(tensors.iter().map(|(k, v)| (k.as_str(), v)), Some(meta))
            .map_err(|e| LmError::Lora(format!("serialising adapter: {e}")))
    }

    /// PEFT's `adapter_config.json` for these adapters. When they are every listed module on
    /// every listed layer (all the presets), `target_modules` is the module list and
    /// `layers_to_transform` the layers; otherwise `target_modules` is a regular expression of
    /// exactly their module paths, so that PEFT creates no adapter emorg did not train.
    pub fn peft_config_json(&self, base_model: &str) -> serde_json::Value {
        let mut modules: Vec<&str> = self.adapters.iter().map(|a| a.module.hf_name()).collect();
        modules.sort();
        modules.dedup();
        let mut layers: Vec<usize> = self.adapters.iter().map(|a| a.layer).collect();
        layers.sort();
        layers.dedup();
        let mut pairs: Vec<(usize, Module)> =
            self.adapters.iter().map(|a| (a.layer, a.module)).collect();
        pairs.sort();
        pairs.dedup();
        let (targets, layers) = if pairs.len() == modules.len() * layers.len() {
            (serde_json::json!(modules), serde_json::json!(layers))
        } else {
            let paths: Vec<String> = pairs
                .iter()
                .map(|(l, m)| regex::escape(&module_path(*l, *m)))
                .collect();
            (serde_json::json!(paths.join("|")), serde_json::Value::Null)
        };
        serde_json::json!({
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": base_model,
            "r": self.config.rank,
            "lora_alpha": self.config.alpha,
            "use_rslora": self.config.rslora,
            "lora_dropout": 0.0,
            "bias": "none",
            "target_modules": targets,
            "layers_to_transform": layers,
            "fan_in_fan_out": false,
            "init_lora_weights": true,
        })
    }

    /// Load adapters saved by [`LoraSet::to_safetensors`] (or by PEFT with the same names).
    pub fn from_safetensors(config: LoraConfig, bytes: &[u8], device: &Device) -> Result<Self> {
        let tensors = candle_core::safetensors::load_buffer(bytes, device)?;
        let mut targets = config.targets.clone();
        targets.sort();
        targets.dedup();
        let mut adapters = Vec::new();
        for (layer, module) in targets {
            let probe = LoraAdapter {
                layer,
                module,
                a: Var::zeros(1, DType::F32, device)?,
                b: Var::zeros(1, DType::F32, device)?,
            };
            let p = probe.peft_prefix();
            let get = |suffix: &str| {
                tensors
                    .get(&format!("{p}.{suffix}"))
                    .ok_or_else(|| {
                        LmError::Lora(format!("adapter file has no tensor `{p}.{suffix}`"))
                    })
                    .and_then(|t| Ok(t.to_dtype(DType::F32)?))
            };
            let a = Var::from_tensor(&get("lora_A.weight")?)?;
            let b = Var::from_tensor(&get("lora_B.weight")?)?;
            adapters.push(LoraAdapter {
                layer,
                module,
                a,
                b,
            });
        }
        Ok(LoraSet { config, adapters })
    }
}

/// A frozen linear layer with an optional bias and an optional LoRA adapter.
#[derive(Debug, Clone)]
pub struct LoraLinear {
    pub weight: FrozenWeight,
    pub bias: Option<Tensor>,
    adapter: Option<AttachedAdapter>,
}

#[derive(Debug, Clone)]
struct AttachedAdapter {
    a: Tensor,
    b: Tensor,
    /// scale x multiplier
    factor: f64,
}

impl LoraLinear {
    pub fn new(weight: FrozenWeight, bias: Option<Tensor>) -> Self {
        LoraLinear {
            weight,
            bias,
            adapter: None,
        }
    }

    /// Attach an adapter. The tensors share storage with the set's `Var`s, so optimizer updates are
    /// seen without re-attaching.
    pub fn attach(&mut self, a: &Var, b: &Var, scale: f64, multiplier: f64) {
        self.adapter = Some(AttachedAdapter {
            a: a.as_tensor().clone(),
            b: b.as_tensor().clone(),
            factor: scale * multiplier,
        });
    }

    pub fn detach_adapter(&mut self) {
        self.adapter = None;
    }

    /// Here is where a LoRA is applied.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = self.weight.forward(x)?;
        if let Some(b) = &self.bias {
            y = y.broadcast_add(b)?;
        }
        if let Some(ad) = &self.adapter {
            let down = x.broadcast_matmul(&ad.a.t()?)?;
            let up = down.broadcast_matmul(&ad.b.t()?)?;
            y = (y + (up * ad.factor)?)?;
        }
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_of(targets: &[(usize, Module)]) -> LoraSet {
        let v = || Var::zeros(1, DType::F32, &Device::Cpu).unwrap();
        LoraSet {
            config: LoraConfig {
                rank: 2,
                alpha: 4.0,
                rslora: false,
                targets: targets.to_vec(),
            },
            adapters: targets
                .iter()
                .map(|(layer, module)| LoraAdapter {
                    layer: *layer,
                    module: *module,
                    a: v(),
                    b: v(),
                })
                .collect(),
        }
    }

    /// Modules x layers is written as PEFT's list and layers; any other set as a regular
    /// expression of its module paths; both read back to the same adapters.
    #[test]
    fn peft_config_json_round_trips_dense_and_sparse_sets() {
        let dense = [
            (1, Module::QProj),
            (1, Module::DownProj),
            (4, Module::QProj),
            (4, Module::DownProj),
        ];
        let sparse = [
            (0, Module::QProj),
            (0, Module::VProj),
            (5, Module::DownProj),
        ];
        for (targets, is_list) in [(&dense[..], true), (&sparse[..], false)] {
            let json = set_of(targets).peft_config_json("base");
            assert_eq!(json["target_modules"].is_array(), is_list, "{json}");
            assert_eq!(json["layers_to_transform"].is_null(), !is_list, "{json}");
            let mut back = LoraConfig::from_peft_config(&json, 6).unwrap().targets;
            back.sort();
            assert_eq!(back, targets.to_vec(), "{json}");
        }
        let json = set_of(&sparse).peft_config_json("base");
        assert_eq!(
            json["target_modules"],
            "model\\.layers\\.0\\.self_attn\\.q_proj|model\\.layers\\.0\\.self_attn\\.v_proj|model\\.layers\\.5\\.mlp\\.down_proj"
        );
        // A pattern PEFT would accept but that names no projection, and one combined with layers.
        let mut bad = json.clone();
        bad["target_modules"] = serde_json::json!("model\\.layers\\.9\\.mlp\\.down_proj");
        let e = LoraConfig::from_peft_config(&bad, 6)
            .unwrap_err()
            .to_string();
        assert!(e.contains("matches no projection"), "{e}");
        bad["layers_to_transform"] = serde_json::json!([1]);
        let e = LoraConfig::from_peft_config(&bad, 6)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be combined"), "{e}");
    }

    #[test]
    fn peft_configs_are_read_or_refused_with_the_reason() {
        let cfg = serde_json::json!({
            "r": 8, "lora_alpha": 16, "use_rslora": true,
            "target_modules": ["q_proj", "down_proj"], "layers_to_transform": [2, 5],
        });
        let c = LoraConfig::from_peft_config(&cfg, 30).unwrap();
        assert_eq!((c.rank, c.alpha, c.rslora), (8, 16.0, true));
        // PEFT writes empty patterns: accepted.
        let mut empty = cfg.clone();
        empty["rank_pattern"] = serde_json::json!({});
        assert!(LoraConfig::from_peft_config(&empty, 30).is_ok());
        assert_eq!(c.targets.len(), 4);
        assert!(c.targets.contains(&(5, Module::DownProj)));
        // Every layer when layers_to_transform is absent.
        let mut all = cfg.clone();
        all.as_object_mut().unwrap().remove("layers_to_transform");
        assert_eq!(
            LoraConfig::from_peft_config(&all, 30)
                .unwrap()
                .targets
                .len(),
            60
        );
        for (patch, want) in [
            (serde_json::json!({"use_dora": true}), "DoRA"),
            (
                serde_json::json!({"layers_to_transform": [30]}),
                "out of range",
            ),
            (
                serde_json::json!({"target_modules": ["lm_head"]}),
                "lm_head",
            ),
            (serde_json::json!({"bias": "all"}), "bias"),
            (
                serde_json::json!({"alpha_pattern": {"down_proj": 64}}),
                "alpha_pattern",
            ),
        ] {
            let mut c = cfg.clone();
            for (k, v) in patch.as_object().unwrap() {
                c[k] = v.clone();
            }
            let e = LoraConfig::from_peft_config(&c, 30)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
        }
    }
}
