//! Where a decoder's weights come from ([`WeightSource`]: a GGUF file or a Hugging Face checkpoint
//! directory, both addressed by GGUF tensor names) and how projections are held, dense or quantized.

use crate::config::{Family, ModelConfig};
use crate::error::{LmError, Result};
use candle_core::quantized::{GgmlDType, QMatMul, QTensor, gguf_file};
use candle_core::{Device, Module as _, Tensor};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How projection weights are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightMode {
    /// Dequantized f32 tensors: needed for training (gradients flow through plain matmuls).
    Dense,
    /// Quantized matmuls for sampling and judging. Q4_1/Q5_0/Q5_1 have no SIMD kernel in candle on
    /// CPU, so they are re-quantized to Q8_0 at load (measured ~4x faster decode for SmolLM2).
    Quantized,
    /// Quantized matmuls in the file's own quantization, never re-quantized to Q8_0 (llama q/k
    /// rows are still un-permuted, re-quantized to their own type). The baseline the benchmarks
    /// compare `Quantized` with; production code uses `Quantized`.
    QuantizedAsStored,
}

impl WeightMode {
    /// Whether projections are held as quantized matmuls.
    pub fn is_quantized(self) -> bool {
        matches!(self, WeightMode::Quantized | WeightMode::QuantizedAsStored)
    }
}

/// Tensors of a model, addressed by one canonical naming: llama.cpp's GGUF names
/// (`token_embd.weight`, `blk.{l}.attn_q.weight`, `output_norm.weight`, ...). Other formats map their
/// own names to these (see `hf::HF_NAMES`), so `Decoder::load` has one code path for every format.
pub trait WeightSource {
    /// The architecture facts the tensors are laid out for.
    fn model_config(&self) -> Result<ModelConfig>;
    fn has_tensor(&self, name: &str) -> bool;
    /// A tensor as f32 on `device`, with any format-specific fix-up applied (gemma's `1 + w` norms).
    fn dense(&self, name: &str, device: &Device) -> Result<Tensor>;
    /// A projection matrix (out, in) held as `mode` asks; `unpermute_heads` as in
    /// [`FrozenWeight::load`].
    fn frozen(
        &self,
        name: &str,
        mode: WeightMode,
        unpermute_heads: Option<usize>,
        device: &Device,
    ) -> Result<FrozenWeight>;
    /// Whether llama q/k rows are stored permuted for interleaved rope (llama.cpp's GGUF layout).
    fn qk_rows_interleaved(&self, cfg: &ModelConfig) -> bool;
}

impl WeightSource for GgufFile {
    fn model_config(&self) -> Result<ModelConfig> {
        ModelConfig::from_gguf(self)
    }

    fn has_tensor(&self, name: &str) -> bool {
        GgufFile::has_tensor(self, name)
    }

    fn dense(&self, name: &str, device: &Device) -> Result<Tensor> {
        GgufFile::dense(self, name, device)
    }

    fn frozen(
        &self,
        name: &str,
        mode: WeightMode,
        unpermute_heads: Option<usize>,
        device: &Device,
    ) -> Result<FrozenWeight> {
        FrozenWeight::load(self, name, mode, unpermute_heads, device)
    }

    fn qk_rows_interleaved(&self, cfg: &ModelConfig) -> bool {
        cfg.family == Family::Llama
    }
}

/// An open GGUF file: parsed header and a reader for its tensors.
///
/// A model split by llama.cpp's `gguf-split` (or gguf-py's writer with a split limit) is opened
/// through its first file, `NAME-00001-of-0000N.gguf`: that file carries the metadata, and the
/// tensors are read from whichever file holds them.
pub struct GgufFile {
    pub path: PathBuf,
    /// Metadata and tensor index of the (first) file.
    pub content: gguf_file::Content,
    reader: Mutex<BufReader<File>>,
    /// The other files of a split model, in order.
    more: Vec<GgufShard>,
}

struct GgufShard {
    path: PathBuf,
    content: gguf_file::Content,
    reader: Mutex<BufReader<File>>,
}

impl GgufShard {
    fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|source| LmError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut reader = BufReader::new(file);
        // candle's reader panics on a `general.alignment` of 0 (its only division: the start of
        // the tensor data is the end of the header rounded up to the alignment); any panic in it
        // becomes an error naming the file.
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            gguf_file::Content::read(&mut reader)
        }));
        let content = match read {
            Ok(content) => content,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                let reason = if what.contains("divide by zero") {
                    "metadata key `general.alignment` is 0; it must be a positive number of bytes"
                        .to_string()
                } else {
                    format!("the header cannot be read ({what})")
                };
                Err(candle_core::Error::Msg(reason))
            }
        }
        .map_err(|source| LmError::Gguf {
            path: path.to_path_buf(),
            source,
        })?;
        let file_len = reader
            .get_ref()
            .metadata()
            .map_err(|source| LmError::Io {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        check_tensor_infos(path, &content, file_len)?;
        Ok(GgufShard {
            path: path.to_path_buf(),
            content,
            reader: Mutex::new(reader),
        })
    }

    /// `split.no` and `split.count` (0 and 1 for a file that is not split).
    fn split(&self) -> Result<(u64, u64)> {
        let int = |key: &str| -> Result<Option<u64>> {
            use gguf_file::Value::*;
            Ok(match self.content.metadata.get(key) {
                None => None,
                Some(U8(v)) => Some(*v as u64),
                Some(U16(v)) => Some(*v as u64),
                Some(U32(v)) => Some(*v as u64),
                Some(I32(v)) if *v >= 0 => Some(*v as u64),
                Some(other) => {
                    return Err(LmError::Metadata {
                        path: self.path.clone(),
                        key: key.to_string(),
                        reason: format!("expected a count, found {other:?}"),
                    });
                }
            })
        };
        Ok((
            int("split.no")?.unwrap_or(0),
            int("split.count")?.unwrap_or(1),
        ))
    }
}

/// Every tensor info must describe data inside the file. candle checks a tensor's size against
/// the file only when it reads it, from the product of the dimensions computed without overflow
/// checks: a corrupt shape whose product wraps around is read as a few bytes and then used with its
/// huge dimensions, and a zero dimension lets the others be anything. Checked once at open, so that
/// every size taken from a tensor info (the model config's, the decoder's) is bounded by the file.
fn check_tensor_infos(path: &Path, content: &gguf_file::Content, file_len: u64) -> Result<()> {
    for (name, info) in &content.tensor_infos {
        let dims = info.shape.dims();
        let bad = |reason: String| LmError::Tensor {
            path: path.to_path_buf(),
            name: name.clone(),
            reason,
        };
        if dims.contains(&0) {
            return Err(bad(format!("shape {dims:?} has a zero dimension")));
        }
        let dtype = info.ggml_dtype;
        let end = dims
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
            .and_then(|n| (n / dtype.block_size() as u64).checked_mul(dtype.type_size() as u64))
            .and_then(|size| {
                content
                    .tensor_data_offset
                    .checked_add(info.offset)?
                    .checked_add(size)
            });
        match end {
            Some(end) if end <= file_len => {}
            Some(end) => {
                return Err(bad(format!(
                    "shape {dims:?} of {dtype:?} at data offset {} ends at byte {end}, past the end of the file ({file_len} bytes)",
                    info.offset
                )));
            }
            None => {
                return Err(bad(format!(
                    "shape {dims:?} of {dtype:?} at data offset {} is larger than any file",
                    info.offset
                )));
            }
        }
    }
    Ok(())
}

/// The files of a split model, from its first: `PREFIX-00001-of-0000N.gguf` names
/// `PREFIX-0000i-of-0000N.gguf` for i in 1..=N (llama.cpp's `llama_split_path`).
fn split_paths(first: &Path, count: u64) -> Result<Vec<PathBuf>> {
    let name = first.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let suffix = format!("-00001-of-{count:05}.gguf");
    let Some(prefix) = name.strip_suffix(&suffix) else {
        return Err(LmError::File {
            path: first.to_path_buf(),
            reason: format!(
                "the file says it is the first of {count} split files, but its name does not end in `{suffix}`; keep the names gguf-split gave the files"
            ),
        });
    };
    let dir = first.parent().unwrap_or(Path::new(""));
    Ok((1..=count)
        .map(|i| dir.join(format!("{prefix}-{i:05}-of-{count:05}.gguf")))
        .collect())
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self> {
        let first = GgufShard::open(path)?;
        let (no, count) = first.split()?;
        if no != 0 {
            return Err(LmError::File {
                path: path.to_path_buf(),
                reason: format!(
                    "this is part {} of {count} of a split model; open the first part (`...-00001-of-{count:05}.gguf`), which carries the metadata",
                    no + 1
                ),
            });
        }
        let mut more = Vec::new();
        if count > 1 {
            for (i, p) in split_paths(path, count)?.into_iter().enumerate().skip(1) {
                if !p.is_file() {
                    return Err(LmError::File {
                        path: p,
                        reason: format!(
                            "part {} of {count} of the split model {} is missing",
                            i + 1,
                            path.display()
                        ),
                    });
                }
                let shard = GgufShard::open(&p)?;
                let (no, c) = shard.split()?;
                if no != i as u64 || c != count {
                    return Err(LmError::File {
                        path: p,
                        reason: format!(
                            "says it is part {} of {c}, expected part {} of {count}: the parts come from different splits",
                            no + 1,
                            i + 1
                        ),
                    });
                }
                more.push(shard);
            }
        }
        Ok(GgufFile {
            path: first.path,
            content: first.content,
            reader: first.reader,
            more,
        })
    }

    /// Number of files the model is stored in (1 unless split).
    pub fn n_files(&self) -> usize {
        1 + self.more.len()
    }

    fn meta_err(&self, key: &str, reason: impl Into<String>) -> LmError {
        LmError::Metadata {
            path: self.path.clone(),
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    pub fn meta(&self, key: &str) -> Result<&gguf_file::Value> {
        self.content
            .metadata
            .get(key)
            .ok_or_else(|| self.meta_err(key, "missing"))
    }

    pub fn meta_str(&self, key: &str) -> Result<String> {
        self.meta(key)?
            .to_string()
            .cloned()
            .map_err(|e| self.meta_err(key, e.to_string()))
    }

    pub fn meta_u64(&self, key: &str) -> Result<u64> {
        use gguf_file::Value::*;
        match self.meta(key)? {
            U8(v) => Ok(*v as u64),
            U16(v) => Ok(*v as u64),
            U32(v) => Ok(*v as u64),
            U64(v) => Ok(*v),
            I8(v) => Ok(*v as u64),
            I16(v) => Ok(*v as u64),
            I32(v) => Ok(*v as u64),
            I64(v) => Ok(*v as u64),
            other => Err(self.meta_err(key, format!("expected an integer, found {other:?}"))),
        }
    }

    pub fn meta_f64(&self, key: &str) -> Result<f64> {
        use gguf_file::Value::*;
        match self.meta(key)? {
            F32(v) => Ok(*v as f64),
            F64(v) => Ok(*v),
            _ => self.meta_u64(key).map(|v| v as f64),
        }
    }

    pub fn meta_bool(&self, key: &str) -> Result<bool> {
        self.meta(key)?
            .to_bool()
            .map_err(|e| self.meta_err(key, e.to_string()))
    }

    pub fn meta_array(&self, key: &str) -> Result<&Vec<gguf_file::Value>> {
        self.meta(key)?
            .to_vec()
            .map_err(|e| self.meta_err(key, e.to_string()))
    }

    pub fn meta_array_len(&self, key: &str) -> Result<usize> {
        Ok(self.meta_array(key)?.len())
    }

    pub fn meta_strings(&self, key: &str) -> Result<Vec<String>> {
        self.meta_array(key)?
            .iter()
            .map(|v| {
                v.to_string()
                    .cloned()
                    .map_err(|e| self.meta_err(key, e.to_string()))
            })
            .collect()
    }

    /// The shape (rows first, as candle has it) of a tensor in any of the files, without reading it.
    pub fn tensor_dims(&self, name: &str) -> Option<&[usize]> {
        std::iter::once(&self.content)
            .chain(self.more.iter().map(|s| &s.content))
            .find_map(|c| c.tensor_infos.get(name))
            .map(|info| info.shape.dims())
    }

    pub fn has_tensor(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
            || self
                .more
                .iter()
                .any(|s| s.content.tensor_infos.contains_key(name))
    }

    pub fn qtensor(&self, name: &str) -> Result<QTensor> {
        let (path, content, reader) = match self
            .more
            .iter()
            .find(|s| s.content.tensor_infos.contains_key(name))
        {
            Some(shard) => (&shard.path, &shard.content, &shard.reader),
            None => (&self.path, &self.content, &self.reader),
        };
        let mut reader = reader.lock().expect("reader lock poisoned");
        content
            .tensor(&mut *reader, name, &Device::Cpu)
            .map_err(|e| LmError::Tensor {
                path: path.clone(),
                name: name.to_string(),
                reason: e.to_string(),
            })
    }

    /// A tensor dequantized to f32 on `device`.
    pub fn dense(&self, name: &str, device: &Device) -> Result<Tensor> {
        Ok(self.qtensor(name)?.dequantize(device)?)
    }
}

/// A frozen projection weight `W` of shape (out, in).
#[derive(Debug, Clone)]
pub enum FrozenWeight {
    Dense(Tensor),
    Quantized(QMatMul),
    /// A weight that is trained (full fine-tuning): the plain matmul, whose backward also gives
    /// the weight's gradient. The tensor is a `Var`'s, so updates are seen in place.
    Trainable(Tensor),
}

impl FrozenWeight {
    /// `x @ W^T` for x of shape (..., in).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            FrozenWeight::Dense(w)
                if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 =>
            {
                Ok(x.contiguous()?.apply_op1(FrozenMatmul { w: w.clone() })?)
            }
            FrozenWeight::Dense(w) | FrozenWeight::Trainable(w) => {
                let dims = x.dims().to_vec();
                let d_in = dims[dims.len() - 1];
                let rows = x.elem_count() / d_in;
                let y = x.reshape((rows, d_in))?.matmul(&w.t()?)?;
                let mut out_dims = dims;
                *out_dims.last_mut().expect("non-empty") = w.dim(0)?;
                Ok(y.reshape(out_dims)?)
            }
            FrozenWeight::Quantized(q) => Ok(q.forward(x)?),
        }
    }

    /// A dense f32 matrix (out, in) held as `mode` asks. `Quantized` quantizes to Q8_0 when the
    /// input width is a whole number of Q8_0 blocks (it is for every real model) and keeps it
    /// dense otherwise.
    pub fn from_dense(w: Tensor, mode: WeightMode) -> Result<Self> {
        match mode {
            WeightMode::Quantized | WeightMode::QuantizedAsStored
                if fits_blocks(&w, GgmlDType::Q8_0) =>
            {
                let q = QTensor::quantize(&w.to_device(&Device::Cpu)?, GgmlDType::Q8_0)?;
                Ok(FrozenWeight::Quantized(QMatMul::from_qtensor(q)?))
            }
            _ => Ok(FrozenWeight::Dense(w)),
        }
    }

    /// Load a matrix. `unpermute_heads`: llama.cpp stores llama q/k rows permuted for interleaved
    /// rope; we undo it so every family uses the HF layout (and half-split rope), which keeps LoRA
    /// weights in the same basis as PEFT's.
    pub fn load(
        file: &GgufFile,
        name: &str,
        mode: WeightMode,
        unpermute_heads: Option<usize>,
        device: &Device,
    ) -> Result<Self> {
        let q = file.qtensor(name)?;
        match mode {
            WeightMode::Dense => {
                let mut w = q.dequantize(device)?;
                if let Some(n_head) = unpermute_heads {
                    w = unpermute(&w, n_head)?;
                }
                Ok(FrozenWeight::Dense(w))
            }
            WeightMode::Quantized | WeightMode::QuantizedAsStored => {
                let slow = mode == WeightMode::Quantized
                    && matches!(
                        q.dtype(),
                        GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1
                    );
                let q = if unpermute_heads.is_some() || slow {
                    let mut w = q.dequantize(&Device::Cpu)?;
                    if let Some(n_head) = unpermute_heads {
                        w = unpermute(&w, n_head)?;
                    }
                    let target = if slow || !fits_blocks(&w, q.dtype()) {
                        GgmlDType::Q8_0
                    } else {
                        q.dtype()
                    };
                    QTensor::quantize(&w, target)?
                } else {
                    q
                };
                Ok(FrozenWeight::Quantized(QMatMul::from_qtensor(q)?))
            }
        }
    }
}

fn fits_blocks(w: &Tensor, dtype: GgmlDType) -> bool {
    w.dims().last().is_some_and(|d| d % dtype.block_size() == 0)
}

/// Undo llama.cpp's q/k row permutation: rows are stored as (head, pair, half) and HF order is
/// (head, half, pair).
pub fn unpermute(w: &Tensor, n_head: usize) -> Result<Tensor> {
    let (d_out, d_in) = w.dims2()?;
    let hd = d_out / n_head;
    Ok(w.reshape((n_head, hd / 2, 2, d_in))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((d_out, d_in))?)
}

/// `x @ W^T` for a frozen `W` whose backward computes only the input gradient `g @ W`.
///
/// candle's matmul backward always computes the right-hand side's gradient too, even for a weight
/// that is not a `Var`: one wasted GEMM and a weight-sized buffer per frozen linear (measured: r32
/// backward 7.4 s -> 3.3 s in an earlier probe, with custom norm ops too). CPU only; other devices use the plain
/// matmul above.
struct FrozenMatmul {
    w: Tensor,
}

impl candle_core::CustomOp1 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let candle_core::CpuStorage::F32(data) = storage else {
            candle_core::bail!("frozen-matmul: f32 input expected")
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("frozen-matmul: contiguous input expected")
        };
        let dims = layout.shape().dims();
        let d_in = dims[dims.len() - 1];
        let rows = (end - start) / d_in;
        let x = Tensor::from_slice(&data[start..end], (rows, d_in), &Device::Cpu)?;
        let y = x.matmul(&self.w.t()?)?;
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().expect("non-empty") = self.w.dim(0)?;
        let (st, ly) = y.storage_and_layout();
        let candle_core::Storage::Cpu(candle_core::CpuStorage::F32(v)) = &*st else {
            candle_core::bail!("frozen-matmul: unexpected output storage")
        };
        let (a, b) = ly
            .contiguous_offsets()
            .expect("fresh matmul output is contiguous");
        Ok((
            candle_core::CpuStorage::F32(v[a..b].to_vec()),
            candle_core::Shape::from(out_dims),
        ))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let d_out = self.w.dim(0)?;
        let rows = grad_res.elem_count() / d_out;
        let g = grad_res.reshape((rows, d_out))?.matmul(&self.w)?;
        Ok(Some(g.reshape(arg.shape())?))
    }
}
