//! The spec crate's [`Resolver`] over the built-in model registry and local files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use emorg_models::Registry;
use emorg_spec::{ModelInfo, Resolver};

pub struct LocalResolver {
    pub registry: Registry,
}

impl LocalResolver {
    pub fn from_env() -> Self {
        LocalResolver {
            registry: Registry::from_env(),
        }
    }
}

impl Resolver for LocalResolver {
    fn model(&self, name: &str) -> Result<ModelInfo, String> {
        self.registry
            .models
            .iter()
            .find(|m| m.name == name)
            .map(|m| ModelInfo {
                gguf_sha256: m.sha256.clone(),
                n_layers: m.arch.n_layers,
                n_params: m.arch.n_params,
            })
            .ok_or_else(|| {
                format!(
                    "no model `{name}` in the built-in registry (known: {})",
                    self.registry.names().join(", ")
                )
            })
    }

    fn model_names(&self) -> Vec<String> {
        self.registry
            .names()
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    fn file_sha256(&self, path: &Path) -> Result<String, String> {
        if !path.is_file() {
            return Err("no such file".to_string());
        }
        emorg_data::sha256_file(path).map_err(|e| e.to_string())
    }

    fn question_ids(&self, path: &Path) -> Option<Result<Vec<String>, String>> {
        Some(
            emorg_data::load_questions(path)
                .map(|set| set.free_form().map(|q| q.id.clone()).collect())
                .map_err(|e| e.to_string()),
        )
    }

    fn judge_prompt_metrics(
        &self,
        path: &Path,
    ) -> Option<Result<BTreeMap<String, BTreeSet<String>>, String>> {
        Some(
            emorg_data::load_questions(path)
                .map(|set| {
                    set.free_form()
                        .map(|q| (q.id.clone(), q.judge_prompts.keys().cloned().collect()))
                        .collect()
                })
                .map_err(|e| e.to_string()),
        )
    }
}
