//! `emorg models ...` and `emorg data ...`.

use std::process::ExitCode;

use anyhow::Result;
use emorg_models::{CacheState, FetchOptions, Registry, render_table};

use crate::{DataCmd, ModelsCmd};

pub fn models(cmd: &ModelsCmd) -> Result<ExitCode> {
    let registry = Registry::from_env();
    match cmd {
        ModelsCmd::List => {
            println!("cache: {}", registry.cache_dir().display());
            println!("{}", render_table(&registry.list()));
        }
        ModelsCmd::Fetch { name, force } => {
            let names: Vec<String> = match name {
                Some(n) => vec![n.clone()],
                None => registry.names().into_iter().map(str::to_string).collect(),
            };
            for n in names {
                let report = registry.fetch(&n, &FetchOptions { force: *force })?;
                println!("{report}");
            }
        }
        ModelsCmd::Verify { name } => {
            let names: Vec<String> = match name {
                Some(n) => vec![n.clone()],
                None => registry
                    .list()
                    .into_iter()
                    .filter(|s| s.state != CacheState::Missing)
                    .map(|s| s.name)
                    .collect(),
            };
            if names.is_empty() {
                println!(
                    "no model in the cache ({}); run `emorg models fetch NAME`",
                    registry.cache_dir().display()
                );
            }
            let mut bad = 0;
            for n in names {
                match registry.verify(&n) {
                    Ok(report) => println!("{report}"),
                    Err(e) => {
                        println!("{n}: FAILED: {e}");
                        bad += 1;
                    }
                }
            }
            if bad > 0 {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn data(cmd: &DataCmd) -> Result<ExitCode> {
    match cmd {
        DataCmd::Validate { file } => {
            let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
            if matches!(ext, "yaml" | "yml") {
                return match emorg_data::load_questions(file) {
                    Ok(set) => {
                        let free: Vec<&str> = set.free_form().map(|q| q.id.as_str()).collect();
                        println!(
                            "{}: {} questions, {} free-form: {}",
                            file.display(),
                            set.questions.len(),
                            free.len(),
                            free.join(", ")
                        );
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(e) => {
                        println!("{e}");
                        Ok(ExitCode::from(1))
                    }
                };
            }
            let report = emorg_data::validate_chat_jsonl(file);
            println!("{report}");
            Ok(if report.has_errors() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
