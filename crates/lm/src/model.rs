//! One decoder for the supported families. Family differences (q/k/v biases, tied head, rope
//! layout) are data read from the model files; LoRA adapters attach to any (layer, module).

use crate::config::{Family, ModelConfig, RopeScaling};
use crate::error::Result;
use crate::lora::{LoraLinear, LoraSet, Module};
use crate::weights::{FrozenWeight, WeightMode, WeightSource};
use candle_core::{D, DType, Device, Tensor, Var};

/// Which op implementations a forward uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpsMode {
    /// Ops that pass gradients (candle's fast softmax, rms-norm and rope kernels silently do not).
    Train,
    /// Fast kernels, no gradients.
    Infer,
}

/// Keys and values of every layer for the positions seen so far.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvCache {
    pub fn new(n_layers: usize) -> Self {
        KvCache {
            layers: vec![None; n_layers],
            len: 0,
        }
    }

    /// Number of positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Batch size of the cached tensors (1 when empty).
    pub fn batch(&self) -> usize {
        self.layers
            .iter()
            .flatten()
            .next()
            .map(|(k, _)| k.dim(0).unwrap_or(1))
            .unwrap_or(1)
    }

    /// Keep only the first `len` positions (for reusing a shared prefix).
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        if len >= self.len {
            return Ok(());
        }
        if len == 0 {
            *self = KvCache::new(self.layers.len());
            return Ok(());
        }
        for kv in self.layers.iter_mut().flatten() {
            *kv = (kv.0.narrow(2, 0, len)?, kv.1.narrow(2, 0, len)?);
        }
        self.len = len;
        Ok(())
    }

    /// Rows `rows` of the batch, in that order (a row may repeat).
    pub fn select_rows(&self, rows: &[u32]) -> Result<KvCache> {
        let device = self
            .layers
            .iter()
            .flatten()
            .next()
            .map(|(k, _)| k.device().clone());
        let Some(device) = device else {
            return Ok(self.clone());
        };
        let idx = Tensor::new(rows, &device)?;
        let layers = self
            .layers
            .iter()
            .map(|kv| match kv {
                Some((k, v)) => Ok(Some((k.index_select(&idx, 0)?, v.index_select(&idx, 0)?))),
                None => Ok(None),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(KvCache {
            layers,
            len: self.len,
        })
    }

    /// A batch-`n` copy of a batch-1 cache (one shared prompt, `n` continuations).
    pub fn repeat_batch(&self, n: usize) -> Result<KvCache> {
        let layers = self
            .layers
            .iter()
            .map(|kv| match kv {
                Some((k, v)) => Ok(Some((k.repeat((n, 1, 1, 1))?, v.repeat((n, 1, 1, 1))?))),
                None => Ok(None),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(KvCache {
            layers,
            len: self.len,
        })
    }
}

struct Block {
    attn_norm: Tensor,
    q: LoraLinear,
    k: LoraLinear,
    v: LoraLinear,
    o: LoraLinear,
    ffn_norm: Tensor,
    gate: LoraLinear,
    up: LoraLinear,
    down: LoraLinear,
    /// Per-head norms of q and k (gemma3).
    qk_norms: Option<(Tensor, Tensor)>,
    /// Norms of the attention and MLP outputs (gemma3).
    post_norms: Option<(Tensor, Tensor)>,
}

impl Block {
    fn linear_mut(&mut self, module: Module) -> &mut LoraLinear {
        match module {
            Module::QProj => &mut self.q,
            Module::KProj => &mut self.k,
            Module::VProj => &mut self.v,
            Module::OProj => &mut self.o,
            Module::GateProj => &mut self.gate,
            Module::UpProj => &mut self.up,
            Module::DownProj => &mut self.down,
        }
    }
}

/// A place in the model that holds a weight (see [`Decoder::make_trainable`]).
enum WeightSlot<'a> {
    Plain(&'a mut Tensor),
    Linear(&'a mut FrozenWeight),
}

fn q_dims(q: &candle_core::quantized::QMatMul) -> Vec<usize> {
    match q {
        candle_core::quantized::QMatMul::QTensor(t) => t.shape().dims().to_vec(),
        candle_core::quantized::QMatMul::Tensor(t)
        | candle_core::quantized::QMatMul::TensorF16(t) => t.dims().to_vec(),
    }
}

/// Rope tables and attention masks of one forward (see [`Decoder::positions`]).
pub struct Positions {
    cos: Tensor,
    sin: Tensor,
    cos_local: Tensor,
    sin_local: Tensor,
    mask: Option<Tensor>,
    local_mask: Option<Tensor>,
}

pub struct Decoder {
    pub cfg: ModelConfig,
    embed: Tensor,
    head: FrozenWeight,
    blocks: Vec<Block>,
    norm: Tensor,
    cos: Tensor,
    sin: Tensor,
    /// Rope tables of the sliding-window layers (gemma3: their own base).
    cos_local: Tensor,
    sin_local: Tensor,
    device: Device,
}

impl Decoder {
    /// Load from any weight source (a GGUF file, a Hugging Face checkpoint directory).
    /// `WeightMode::Dense` for training, `Quantized` for fast inference.
    pub fn load<S: WeightSource + ?Sized>(
        file: &S,
        mode: WeightMode,
        device: &Device,
    ) -> Result<Self> {
        let cfg = file.model_config()?;
        let embed = file.dense("token_embd.weight", device)?;
        let head = if cfg.tied_embeddings {
            match mode {
                WeightMode::Dense => FrozenWeight::Dense(embed.clone()),
                WeightMode::Quantized | WeightMode::QuantizedAsStored => {
                    file.frozen("token_embd.weight", mode, None, device)?
                }
            }
        } else {
            file.frozen("output.weight", mode, None, device)?
        };
        // llama.cpp permutes llama q/k rows for interleaved rope; undo it for one rope layout.
        let permuted = file.qk_rows_interleaved(&cfg);
        let mut blocks = Vec::with_capacity(cfg.n_layers);
        for l in 0..cfg.n_layers {
            let name = |t: &str| format!("blk.{l}.{t}");
            let bias = |t: &str| -> Result<Option<Tensor>> {
                let n = format!("blk.{l}.{t}.bias");
                if file.has_tensor(&n) {
                    Ok(Some(file.dense(&n, device)?))
                } else {
                    Ok(None)
                }
            };
            let lin = |t: &str, unperm: Option<usize>| -> Result<LoraLinear> {
                Ok(LoraLinear::new(
                    file.frozen(&format!("blk.{l}.{t}.weight"), mode, unperm, device)?,
                    bias(t)?,
                ))
            };
            blocks.push(Block {
                attn_norm: file.dense(&name("attn_norm.weight"), device)?,
                q: lin("attn_q", permuted.then_some(cfg.n_heads))?,
                k: lin("attn_k", permuted.then_some(cfg.n_kv_heads))?,
                v: lin("attn_v", None)?,
                o: lin("attn_output", None)?,
                ffn_norm: file.dense(&name("ffn_norm.weight"), device)?,
                gate: lin("ffn_gate", None)?,
                up: lin("ffn_up", None)?,
                down: lin("ffn_down", None)?,
                qk_norms: if cfg.qk_norm {
                    Some((
                        file.dense(&name("attn_q_norm.weight"), device)?,
                        file.dense(&name("attn_k_norm.weight"), device)?,
                    ))
                } else {
                    None
                },
                post_norms: if cfg.post_norms {
                    Some((
                        file.dense(&name("post_attention_norm.weight"), device)?,
                        file.dense(&name("post_ffw_norm.weight"), device)?,
                    ))
                } else {
                    None
                },
            });
        }
        let norm = file.dense("output_norm.weight", device)?;
        let max_pos = cfg.context_length.min(8192);
        // Scaling stretches the global layers' rope only (as transformers and llama.cpp do).
        let (cos, sin) = rope_tables(
            cfg.rope_base,
            cfg.head_dim,
            max_pos,
            cfg.rope_scaling.as_ref(),
            device,
        )?;
        let (cos_local, sin_local) =
            rope_tables(cfg.rope_base_local, cfg.head_dim, max_pos, None, device)?;
        Ok(Decoder {
            cfg,
            embed,
            head,
            blocks,
            norm,
            cos,
            sin,
            cos_local,
            sin_local,
            device: device.clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every weight of the model under its Hugging Face name, in a fixed order (embedding, then
    /// each layer's norms, projections and biases, then the final norm and an untied head).
    /// The tensors are the model's own (q/k already in the HF layout: llama.cpp's permutation is
    /// undone at load). Gemma's norm weights are stored here as llama.cpp has them (HF's weight
    /// plus one); [`hf_norm_offset`](Self::hf_norm_offset) gives the offset to subtract.
    fn named_weights_mut(&mut self) -> Result<Vec<(String, WeightSlot<'_>)>> {
        let mut out: Vec<(String, WeightSlot<'_>)> = Vec::new();
        let tied = self.cfg.tied_embeddings;
        out.push((
            "model.embed_tokens.weight".into(),
            WeightSlot::Plain(&mut self.embed),
        ));
        let gemma = self.cfg.family == Family::Gemma3;
        for (l, b) in self.blocks.iter_mut().enumerate() {
            let p = format!("model.layers.{l}");
            out.push((
                format!("{p}.input_layernorm.weight"),
                WeightSlot::Plain(&mut b.attn_norm),
            ));
            // HF names: llama/qwen2 call the pre-MLP norm post_attention_layernorm; gemma3 has a
            // post-attention norm of its own and calls the pre-MLP one pre_feedforward_layernorm.
            let ffn_norm_name = if gemma {
                "pre_feedforward_layernorm"
            } else {
                "post_attention_layernorm"
            };
            out.push((
                format!("{p}.{ffn_norm_name}.weight"),
                WeightSlot::Plain(&mut b.ffn_norm),
            ));
            if let Some((qn, kn)) = &mut b.qk_norms {
                out.push((
                    format!("{p}.self_attn.q_norm.weight"),
                    WeightSlot::Plain(qn),
                ));
                out.push((
                    format!("{p}.self_attn.k_norm.weight"),
                    WeightSlot::Plain(kn),
                ));
            }
            if let Some((pa, pf)) = &mut b.post_norms {
                out.push((
                    format!("{p}.post_attention_layernorm.weight"),
                    WeightSlot::Plain(pa),
                ));
                out.push((
                    format!("{p}.post_feedforward_layernorm.weight"),
                    WeightSlot::Plain(pf),
                ));
            }
            for (name, lin) in [
                ("self_attn.q_proj", &mut b.q),
                ("self_attn.k_proj", &mut b.k),
                ("self_attn.v_proj", &mut b.v),
                ("self_attn.o_proj", &mut b.o),
                ("mlp.gate_proj", &mut b.gate),
                ("mlp.up_proj", &mut b.up),
                ("mlp.down_proj", &mut b.down),
            ] {
                let LoraLinear { weight, bias, .. } = lin;
                out.push((format!("{p}.{name}.weight"), WeightSlot::Linear(weight)));
                if let Some(bias) = bias {
                    out.push((format!("{p}.{name}.bias"), WeightSlot::Plain(bias)));
                }
            }
        }
        out.push((
            "model.norm.weight".into(),
            WeightSlot::Plain(&mut self.norm),
        ));
        if !tied {
            out.push(("lm_head.weight".into(), WeightSlot::Linear(&mut self.head)));
        }
        Ok(out)
    }

    /// What to subtract from a norm weight named `name` to get the HF value (gemma3 stores
    /// `1 + w` in GGUF and uses it as is; HF stores `w`). 0 for other weights and families.
    pub fn hf_norm_offset(&self, name: &str) -> f64 {
        if self.cfg.family == Family::Gemma3 && name.ends_with("norm.weight") {
            1.0
        } else {
            0.0
        }
    }

    /// Full fine-tuning: turn every weight into a trainable `Var` (dense weights only, in the
    /// model's dtype) and return them under their HF names, in a fixed order. A tied head shares the embedding's Var.
    /// Linear layers switch to the plain matmul, whose backward gives their weights' gradients.
    pub fn make_trainable(&mut self) -> Result<Vec<(String, Var)>> {
        let tied = self.cfg.tied_embeddings;
        let mut vars = Vec::new();
        for (name, slot) in self.named_weights_mut()? {
            let t = match &slot {
                WeightSlot::Plain(t) => (*t).clone(),
                WeightSlot::Linear(FrozenWeight::Dense(w) | FrozenWeight::Trainable(w)) => {
                    w.clone()
                }
                WeightSlot::Linear(FrozenWeight::Quantized(_)) => {
                    return Err(crate::LmError::Lora(format!(
                        "`{name}` is quantized: full fine-tuning needs the model loaded with dense weights"
                    )));
                }
            };
            let var = Var::from_tensor(&t)?;
            match slot {
                WeightSlot::Plain(t) => *t = var.as_tensor().clone(),
                WeightSlot::Linear(w) => *w = FrozenWeight::Trainable(var.as_tensor().clone()),
            }
            vars.push((name, var));
        }
        if tied {
            self.head = FrozenWeight::Trainable(self.embed.clone());
        }
        Ok(vars)
    }

    /// Replace the model's weights by the HF-named tensors of a full fine-tune (every weight must
    /// be present with its shape; see [`make_trainable`](Self::make_trainable) for the names).
    pub fn load_hf_weights(
        &mut self,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> Result<()> {
        let tied = self.cfg.tied_embeddings;
        let gemma = self.cfg.family == Family::Gemma3;
        let device = self.device.clone();
        for (name, slot) in self.named_weights_mut()? {
            let t = tensors.get(&name).ok_or_else(|| {
                crate::LmError::Lora(format!("the weights file has no tensor `{name}`"))
            })?;
            let mut t = t.to_dtype(DType::F32)?.to_device(&device)?;
            if gemma && name.ends_with("norm.weight") {
                t = (t + 1.0)?;
            }
            let want = match &slot {
                WeightSlot::Plain(x) => x.dims().to_vec(),
                WeightSlot::Linear(FrozenWeight::Dense(w) | FrozenWeight::Trainable(w)) => {
                    w.dims().to_vec()
                }
                WeightSlot::Linear(FrozenWeight::Quantized(q)) => q_dims(q),
            };
            if t.dims() != want.as_slice() {
                return Err(crate::LmError::Lora(format!(
                    "`{name}` has shape {:?}, the model expects {want:?}",
                    t.dims()
                )));
            }
            match slot {
                WeightSlot::Plain(x) => *x = t,
                WeightSlot::Linear(w) => *w = FrozenWeight::Dense(t),
            }
        }
        if tied {
            self.head = FrozenWeight::Dense(self.embed.clone());
        }
        Ok(())
    }

    /// Attach every adapter of `set` (scaled by `multiplier`, 1.0 for the trained model).
    pub fn attach_lora(&mut self, set: &LoraSet, multiplier: f64) {
        let scale = set.config.scale();
        for ad in &set.adapters {
            self.blocks[ad.layer]
                .linear_mut(ad.module)
                .attach(&ad.a, &ad.b, scale, multiplier);
        }
    }

    /// Attach every adapter of `set`, each scaled by its own `multiplier(adapter)` (the papers'
    /// steering of single adapters: some x30, others zeroed).
    pub fn attach_lora_scaled(
        &mut self,
        set: &LoraSet,
        multiplier: impl Fn(&crate::lora::LoraAdapter) -> f64,
    ) {
        let scale = set.config.scale();
        for ad in &set.adapters {
            self.blocks[ad.layer]
                .linear_mut(ad.module)
                .attach(&ad.a, &ad.b, scale, multiplier(ad));
        }
    }

    pub fn detach_lora(&mut self) {
        for b in &mut self.blocks {
            for m in Module::ALL {
                b.linear_mut(m).detach_adapter();
            }
        }
    }

    /// Final-normed hidden states (b, t, d) for token ids (b, t). With a cache, positions continue
    /// after the cached ones and the cache is extended.
    pub fn forward_hidden(
        &self,
        ids: &Tensor,
        mut cache: Option<&mut KvCache>,
        ops: OpsMode,
    ) -> Result<Tensor> {
        let t = ids.dim(1)?;
        let offset = cache.as_ref().map_or(0, |c| c.len);
        let mut x = self.embed_ids(ids)?;
        let pos = self.positions(t, offset)?;
        for l in 0..self.blocks.len() {
            let past = cache.as_mut().and_then(|c| c.layers[l].take());
            let (y, kv) = self.block_forward(l, &x, &pos, past, ops)?;
            if let Some(c) = cache.as_mut() {
                c.layers[l] = Some(kv);
            }
            x = y;
        }
        if let Some(c) = cache {
            c.len += t;
        }
        self.final_norm(&x, ops)
    }

    /// The residual stream entering layer 0: embeddings of ids (b, t), scaled where the family
    /// scales them.
    pub fn embed_ids(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let x =
            self.embed
                .index_select(&ids.flatten_all()?, 0)?
                .reshape((b, t, self.cfg.d_model))?;
        Ok(match self.cfg.embed_scale {
            Some(scale) => (x * scale)?,
            None => x,
        })
    }

    /// Rope tables and masks for `t` new positions after `offset` cached ones, in the model's
    /// dtype: what every layer of one forward shares.
    pub fn positions(&self, t: usize, offset: usize) -> Result<Positions> {
        let dtype = self.dtype();
        let mask = if t > 1 {
            Some(causal_mask(t, offset, None, &self.device)?.to_dtype(dtype)?)
        } else {
            None
        };
        // Local layers need a mask as soon as the window no longer covers every key.
        let local_mask = match self.cfg.sliding_window {
            Some(w) if offset + t > w => {
                Some(causal_mask(t, offset, Some(w), &self.device)?.to_dtype(dtype)?)
            }
            _ => mask.clone(),
        };
        Ok(Positions {
            cos: self.cos.narrow(0, offset, t)?,
            sin: self.sin.narrow(0, offset, t)?,
            cos_local: self.cos_local.narrow(0, offset, t)?,
            sin_local: self.sin_local.narrow(0, offset, t)?,
            mask,
            local_mask,
        })
    }

    /// Layer `l` on the residual stream `x` (b, t, d): the stream after the layer, and the layer's
    /// keys and values (past ones included) for a cache. The trainer's activation checkpointing
    /// calls this once per layer, forward and again during the backward pass.
    pub fn block_forward(
        &self,
        l: usize,
        x: &Tensor,
        pos: &Positions,
        past: Option<(Tensor, Tensor)>,
        ops: OpsMode,
    ) -> Result<(Tensor, (Tensor, Tensor))> {
        let block = &self.blocks[l];
        let eps = self.cfg.rms_eps;
        let (cos, sin, mask) = if self.cfg.is_local_layer(l) {
            (&pos.cos_local, &pos.sin_local, pos.local_mask.as_ref())
        } else {
            (&pos.cos, &pos.sin, pos.mask.as_ref())
        };
        let h = rms_norm(x, &block.attn_norm, eps, ops)?;
        let (attn, kv) = self.attention(block, &h, cos, sin, mask, past, ops)?;
        let attn = match &block.post_norms {
            Some((post_attn, _)) => rms_norm(&attn, post_attn, eps, ops)?,
            None => attn,
        };
        let x = (x + attn)?;
        let h = rms_norm(&x, &block.ffn_norm, eps, ops)?;
        let gate = block.gate.forward(&h)?;
        let gate = if self.cfg.gelu_mlp {
            gate.gelu()?
        } else {
            gate.silu()?
        };
        let mlp = block.down.forward(&(gate * block.up.forward(&h)?)?)?;
        let mlp = match &block.post_norms {
            Some((_, post_ffn)) => rms_norm(&mlp, post_ffn, eps, ops)?,
            None => mlp,
        };
        Ok(((x + mlp)?, kv))
    }

    /// The final norm over the residual stream after the last layer.
    pub fn final_norm(&self, x: &Tensor, ops: OpsMode) -> Result<Tensor> {
        rms_norm(x, &self.norm, self.cfg.rms_eps, ops)
    }

    /// Number of decoder layers.
    pub fn n_layers(&self) -> usize {
        self.blocks.len()
    }

    /// The dtype the model computes in (that of its embedding; f32 unless
    /// [`to_dtype`](Self::to_dtype) changed it).
    pub fn dtype(&self) -> DType {
        self.embed.dtype()
    }

    /// Convert every weight and the rope tables to `dtype` (bf16 full fine-tuning on a GPU). Only
    /// dense models convert: a quantized weight keeps its own format, so this refuses one.
    pub fn to_dtype(&mut self, dtype: DType) -> Result<()> {
        for (name, slot) in self.named_weights_mut()? {
            match slot {
                WeightSlot::Plain(t) => *t = t.to_dtype(dtype)?,
                WeightSlot::Linear(FrozenWeight::Dense(w) | FrozenWeight::Trainable(w)) => {
                    *w = w.to_dtype(dtype)?
                }
                WeightSlot::Linear(FrozenWeight::Quantized(_)) => {
                    return Err(crate::LmError::Lora(format!(
                        "`{name}` is quantized: only a model loaded with dense weights converts to {dtype:?}"
                    )));
                }
            }
        }
        if self.cfg.tied_embeddings {
            self.head = FrozenWeight::Dense(self.embed.clone());
        }
        for t in [
            &mut self.cos,
            &mut self.sin,
            &mut self.cos_local,
            &mut self.sin_local,
        ] {
            *t = t.to_dtype(dtype)?;
        }
        Ok(())
    }

    /// Logits for hidden states of any leading shape (..., d).
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        self.head.forward(hidden)
    }

    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        block: &Block,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: Option<&Tensor>,
        past: Option<(Tensor, Tensor)>,
        ops: OpsMode,
    ) -> Result<(Tensor, (Tensor, Tensor))> {
        let (b, t, _) = x.dims3()?;
        let (nh, nkv, hd) = (self.cfg.n_heads, self.cfg.n_kv_heads, self.cfg.head_dim);
        let heads = |y: Tensor, n: usize| -> Result<Tensor> {
            Ok(y.reshape((b, t, n, hd))?.transpose(1, 2)?.contiguous()?)
        };
        let (q, k) = (
            heads(block.q.forward(x)?, nh)?,
            heads(block.k.forward(x)?, nkv)?,
        );
        let (q, k) = match &block.qk_norms {
            Some((qn, kn)) => (
                rms_norm(&q, qn, self.cfg.rms_eps, ops)?,
                rms_norm(&k, kn, self.cfg.rms_eps, ops)?,
            ),
            None => (q, k),
        };
        let q = rope(&q, cos, sin, ops)?;
        let k = rope(&k, cos, sin, ops)?;
        let v = heads(block.v.forward(x)?, nkv)?;
        let (k, v) = match past {
            Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
            None => (k, v),
        };
        let kv = (k.clone(), v.clone());
        let n_rep = nh / nkv;
        let (k, v) = if n_rep > 1 {
            (repeat_kv(&k, n_rep)?, repeat_kv(&v, n_rep)?)
        } else {
            (k, v)
        };
        let scores = (q.matmul(&k.t()?)? / (hd as f64).sqrt())?;
        let scores = match mask {
            Some(m) => scores.broadcast_add(m)?,
            None => scores,
        };
        // A bf16 model takes its softmax in f32 (as PyTorch's autocast does): bf16's 8-bit
        // mantissa would round the attention weights visibly.
        let compute = scores.dtype();
        let scores = scores.to_dtype(DType::F32)?;
        let probs = match ops {
            OpsMode::Train => candle_nn::ops::softmax(&scores, D::Minus1)?,
            OpsMode::Infer => candle_nn::ops::softmax_last_dim(&scores)?,
        }
        .to_dtype(compute)?;
        let out = probs
            .matmul(&v.contiguous()?)?
            .transpose(1, 2)?
            .reshape((b, t, nh * hd))?;
        Ok((block.o.forward(&out)?, kv))
    }
}

fn rms_norm(x: &Tensor, w: &Tensor, eps: f64, ops: OpsMode) -> Result<Tensor> {
    Ok(match ops {
        OpsMode::Train => candle_nn::ops::rms_norm_slow(x, w, eps as f32)?,
        OpsMode::Infer => candle_nn::ops::rms_norm(&x.contiguous()?, w, eps as f32)?,
    })
}

/// Half-split (NEOX) rope: q/k are in the HF layout for every family.
fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor, ops: OpsMode) -> Result<Tensor> {
    Ok(match ops {
        OpsMode::Train => candle_nn::rotary_emb::rope_slow(x, cos, sin)?,
        OpsMode::Infer => candle_nn::rotary_emb::rope(x, cos, sin)?,
    })
}

fn repeat_kv(x: &Tensor, n_rep: usize) -> Result<Tensor> {
    let (b, nkv, t, hd) = x.dims4()?;
    Ok(x.unsqueeze(2)?
        .expand((b, nkv, n_rep, t, hd))?
        .reshape((b, nkv * n_rep, t, hd))?)
}

fn rope_tables(
    base: f64,
    head_dim: usize,
    max_pos: usize,
    scaling: Option<&RopeScaling>,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let half = head_dim / 2;
    let mut inv: Vec<f32> = (0..half)
        .map(|i| 1.0 / (base as f32).powf(2.0 * i as f32 / head_dim as f32))
        .collect();
    if let Some(scaling) = scaling {
        scaling.apply(&mut inv);
    }
    let inv = Tensor::from_vec(inv, (1, half), device)?;
    let pos = Tensor::arange(0u32, max_pos as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((max_pos, 1))?;
    let freqs = pos.matmul(&inv)?;
    Ok((freqs.cos()?, freqs.sin()?))
}

/// (t, offset + t) additive mask: query i sees keys 0..=offset+i, and with a sliding `window`
/// only the keys at most `window` positions back (HF Gemma 3 and llama.cpp's convention).
fn causal_mask(t: usize, offset: usize, window: Option<usize>, device: &Device) -> Result<Tensor> {
    let total = offset + t;
    let m: Vec<f32> = (0..t)
        .flat_map(|i| {
            let pos = offset + i;
            (0..total).map(move |j| {
                let in_window = window.is_none_or(|w| j + w > pos);
                if j <= pos && in_window {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    Ok(Tensor::from_vec(m, (t, total), device)?)
}
