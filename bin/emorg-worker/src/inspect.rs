//! `tokenize` and `logits`: what the runtime sees and computes, for anyone checking parity with
//! another implementation. Input is plain text or a chat (JSON list of {role, content}, rendered
//! with the model's own chat template, generation prompt on); logits come from the dequantized
//! (training) weights unless `--quantized`, optionally with a PEFT adapter applied.

use anyhow::{Context as _, Result, bail};
use candle_core::{DType, Tensor};
use emorg_lm::{Decoder, LoraConfig, LoraSet, Message, ModelFiles};
use emorg_lm::{OpsMode, WeightMode};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct InputArgs {
    /// The model: a GGUF file or a Hugging Face checkpoint directory (config.json, safetensors,
    /// tokenizer.json).
    #[arg(long)]
    pub model: PathBuf,
    /// Plain text, tokenized as is (no chat template, no BOS unless the text has it).
    #[arg(long, conflicts_with = "chat")]
    pub text: Option<String>,
    /// A chat as JSON, `[{"role":"user","content":"..."}]`, rendered with the model's template.
    #[arg(long, required_unless_present = "text")]
    pub chat: Option<String>,
}

#[derive(clap::Args)]
pub struct LogitsArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// A PEFT adapter: a directory with adapter_config.json and adapter_model.safetensors.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Logits at every position (default: the last one only).
    #[arg(long)]
    pub all_positions: bool,
    /// Write the logits as a float32 .npy file (shape [positions, vocab]) instead of JSON.
    #[arg(long)]
    pub npy: Option<PathBuf>,
    /// Use the quantized sampling weights instead of the dequantized ones.
    #[arg(long)]
    pub quantized: bool,
}

struct Loaded {
    files: ModelFiles,
    text: String,
    ids: Vec<u32>,
}

fn load_input(input: &InputArgs) -> Result<Loaded> {
    let files = ModelFiles::open(&input.model)
        .with_context(|| format!("opening model {}", input.model.display()))?;
    let text = match (&input.text, &input.chat) {
        (Some(t), _) => t.clone(),
        (None, Some(chat)) => {
            let messages: Vec<serde_json::Value> = serde_json::from_str(chat)
                .context("--chat: expected a JSON list of {\"role\", \"content\"} objects")?;
            let messages = messages
                .iter()
                .enumerate()
                .map(|(i, m)| match (m["role"].as_str(), m["content"].as_str()) {
                    (Some(r), Some(c)) => Ok(Message::new(r, c)),
                    _ => bail!("--chat: message {i} needs string `role` and `content`"),
                })
                .collect::<Result<Vec<_>>>()?;
            files.template.render(&messages, true)?
        }
        (None, None) => bail!("give --text or --chat"),
    };
    let ids = files.tokenizer.encode(&text)?;
    Ok(Loaded { files, text, ids })
}

pub fn tokenize(input: &InputArgs) -> Result<()> {
    let l = load_input(input)?;
    let pieces: Vec<&str> = l
        .ids
        .iter()
        .map(|i| {
            l.files
                .tokenizer
                .pieces
                .get(*i as usize)
                .map_or("", String::as_str)
        })
        .collect();
    let out = serde_json::json!({
        "text": l.text,
        "ids": l.ids,
        "pieces": pieces,
        "decoded": l.files.tokenizer.decode(&l.ids)?,
    });
    println!("{out}");
    Ok(())
}

/// The PEFT adapter in `dir`, for `model`.
fn load_adapter(dir: &Path, model: &Decoder) -> Result<LoraSet> {
    let config_path = dir.join("adapter_config.json");
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&config_path)
            .with_context(|| format!("reading {}", config_path.display()))?,
    )
    .with_context(|| format!("parsing {}", config_path.display()))?;
    let cfg = LoraConfig::from_peft_config(&config, model.cfg.n_layers)?;
    let weights = dir.join("adapter_model.safetensors");
    let bytes =
        std::fs::read(&weights).with_context(|| format!("reading {}", weights.display()))?;
    Ok(LoraSet::from_safetensors(cfg, &bytes, model.device())?)
}

pub fn logits(args: &LogitsArgs) -> Result<()> {
    let l = load_input(&args.input)?;
    if l.ids.is_empty() {
        bail!(
            "the input encodes to no tokens, and logits need at least one: give a non-empty --text \
             (or a --chat)"
        );
    }
    let mode = if args.quantized {
        WeightMode::Quantized
    } else {
        WeightMode::Dense
    };
    let mut model = l.files.decoder(mode, &crate::context::device()?)?;
    let _adapter = match &args.adapter {
        Some(dir) => {
            let set = load_adapter(dir, &model)?;
            model.attach_lora(&set, 1.0);
            Some(set)
        }
        None => None,
    };
    let ids = Tensor::new(l.ids.as_slice(), model.device())?.unsqueeze(0)?;
    let hidden = model.forward_hidden(&ids, None, OpsMode::Infer)?;
    let t = l.ids.len();
    let hidden = if args.all_positions {
        hidden
    } else {
        hidden.narrow(1, t - 1, 1)?
    };
    let logits = model.logits(&hidden)?.squeeze(0)?.to_dtype(DType::F32)?;
    if let Some(path) = &args.npy {
        logits
            .write_npy(path)
            .with_context(|| format!("writing {}", path.display()))?;
        println!(
            "{}",
            serde_json::json!({"ids": l.ids, "npy": path, "shape": logits.dims()})
        );
    } else {
        let rows: Vec<Vec<f32>> = logits.to_vec2()?;
        println!(
            "{}",
            serde_json::json!({
                "ids": l.ids,
                "positions": if args.all_positions { (0..t).collect::<Vec<_>>() } else { vec![t - 1] },
                "logits": rows,
            })
        );
    }
    Ok(())
}
