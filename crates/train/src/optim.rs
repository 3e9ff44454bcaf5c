//! Decoupled AdamW (Loshchilov & Hutter; PyTorch's `AdamW`) and learning-rate schedules.
//!
//! Hand-written rather than candle-nn's `AdamW` because the moments must be readable and restorable
//! for trainer-state checkpoints, and candle-nn keeps them private.

use candle_core::{DType, Result, Tensor, Var};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

/// AdamW over `vars`. Moments are f32 whatever the parameters' dtype; a parameter held in a lower
/// precision (bf16 full fine-tuning) also gets an f32 master copy that the updates accumulate in,
/// and the model's copy is the master rounded after each step (mixed-precision training: updates
/// far below bf16's resolution would otherwise be lost).
pub struct AdamW {
    pub config: AdamWConfig,
    pub vars: Vec<Var>,
    /// f32 master weights of the parameters that are not f32 themselves (`None`: the Var is f32
    /// and is its own master).
    pub master: Vec<Option<Tensor>>,
    pub m: Vec<Tensor>,
    pub v: Vec<Tensor>,
    /// Number of updates done.
    pub t: u64,
}

impl AdamW {
    pub fn new(vars: Vec<Var>, config: AdamWConfig) -> Result<Self> {
        let f32_zeros = |v: &Var| Tensor::zeros(v.shape(), DType::F32, v.device());
        let m = vars.iter().map(f32_zeros).collect::<Result<Vec<_>>>()?;
        let v = vars.iter().map(f32_zeros).collect::<Result<Vec<_>>>()?;
        let master = vars
            .iter()
            .map(|v| match v.dtype() {
                DType::F32 => Ok(None),
                _ => Ok(Some(v.as_tensor().to_dtype(DType::F32)?)),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW {
            config,
            vars,
            master,
            m,
            v,
            t: 0,
        })
    }

    /// Parameter `i` in f32: its master copy, or the Var itself when that is f32.
    pub fn param_f32(&self, i: usize) -> Tensor {
        match &self.master[i] {
            Some(m) => m.clone(),
            None => self.vars[i].as_tensor().clone(),
        }
    }

    /// Set parameter `i` from an f32 value (a checkpoint's): the master and the model's copy.
    pub fn set_param_f32(&mut self, i: usize, value: &Tensor) -> Result<()> {
        let value = value.to_dtype(DType::F32)?;
        self.vars[i].set(&value.to_dtype(self.vars[i].dtype())?)?;
        if let Some(m) = &mut self.master[i] {
            *m = value;
        }
        Ok(())
    }

    /// One update with learning rate `lr` from gradients aligned with `vars` (any float dtype;
    /// the update is computed in f32).
    pub fn step(&mut self, grads: &[Tensor], lr: f64) -> Result<()> {
        self.t += 1;
        let c = self.config;
        let bc1 = 1.0 - c.beta1.powi(self.t as i32);
        let bc2 = 1.0 - c.beta2.powi(self.t as i32);
        for (i, g) in grads.iter().enumerate().take(self.vars.len()) {
            let g = g.to_dtype(DType::F32)?;
            self.m[i] = ((&self.m[i] * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            self.v[i] = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let m_hat = (&self.m[i] / bc1)?;
            let v_hat = (&self.v[i] / bc2)?;
            let theta = self.param_f32(i);
            // Decoupled weight decay: shrink the weights, then apply the Adam step.
            let decayed = (theta * (1.0 - lr * c.weight_decay))?;
            let update = (m_hat / (v_hat.sqrt()? + c.eps)?)?;
            let new = (decayed - (update * lr)?)?;
            match &mut self.master[i] {
                Some(master) => {
                    self.vars[i].set(&new.to_dtype(self.vars[i].dtype())?)?;
                    *master = new;
                }
                None => self.vars[i].set(&new)?,
            }
        }
        Ok(())
    }
}

/// Learning-rate schedules with linear warmup, as in HF transformers: at optimizer step `s`
/// (0-based) the factor is `s / warmup` during warmup, then decays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Linear decay to 0 at `total` steps.
    Linear,
    /// Half-cosine decay to 0 at `total` steps.
    Cosine,
    /// Constant after warmup.
    Constant,
}

impl Schedule {
    pub fn parse(s: &str) -> Option<Schedule> {
        match s {
            "linear" => Some(Schedule::Linear),
            "cosine" => Some(Schedule::Cosine),
            "constant" => Some(Schedule::Constant),
            _ => None,
        }
    }

    pub fn factor(self, step: usize, warmup: usize, total: usize) -> f64 {
        if step < warmup {
            return step as f64 / warmup.max(1) as f64;
        }
        let progress = (step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64;
        match self {
            Schedule::Linear => (1.0 - progress).max(0.0),
            Schedule::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos()),
            Schedule::Constant => 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn linear_warmup_then_decay() {
        let s = Schedule::Linear;
        assert_eq!(s.factor(0, 4, 20), 0.0);
        assert_eq!(s.factor(2, 4, 20), 0.5);
        assert_eq!(s.factor(4, 4, 20), 1.0);
        assert!((s.factor(12, 4, 20) - 0.5).abs() < 1e-12);
        assert_eq!(s.factor(20, 4, 20), 0.0);
        assert!((Schedule::Cosine.factor(12, 4, 20) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn adamw_matches_hand_computation_and_decays_decoupled() {
        // PyTorch: p = torch.tensor([1.0, -2.0]); opt = AdamW([p], lr=0.1, weight_decay=0.5)
        // grad [0.5, 0.5]: one step gives p = [1*(1-0.05) - 0.1, -2*(1-0.05) - 0.1] = [0.85, -2.0]
        let var = Var::from_tensor(&Tensor::new(&[1.0f32, -2.0], &Device::Cpu).unwrap()).unwrap();
        let cfg = AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.5,
        };
        let mut opt = AdamW::new(vec![var.clone()], cfg).unwrap();
        let g = Tensor::new(&[0.5f32, 0.5], &Device::Cpu).unwrap();
        opt.step(&[g], 0.1).unwrap();
        let p: Vec<f32> = var.as_tensor().to_vec1().unwrap();
        assert!((p[0] - 0.85).abs() < 1e-5, "{p:?}");
        assert!((p[1] + 2.0).abs() < 1e-5, "{p:?}");
    }

    #[test]
    fn bf16_parameters_accumulate_in_f32_masters() {
        // 1.0 in bf16 has a resolution of 2^-7; 100 Adam steps of lr 1e-4 (each moves by about
        // lr) add up to 0.01 in the f32 master, while a bf16-only update would round every step
        // back to 1.0.
        let w = Tensor::new(&[1.0f32, 1.0], &Device::Cpu)
            .unwrap()
            .to_dtype(DType::BF16)
            .unwrap();
        let var = Var::from_tensor(&w).unwrap();
        let cfg = AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        };
        let mut opt = AdamW::new(vec![var.clone()], cfg).unwrap();
        assert_eq!(opt.m[0].dtype(), DType::F32);
        let g = Tensor::new(&[1.0f32, -1.0], &Device::Cpu)
            .unwrap()
            .to_dtype(DType::BF16)
            .unwrap();
        for _ in 0..100 {
            opt.step(std::slice::from_ref(&g), 1e-4).unwrap();
        }
        let master: Vec<f32> = opt.param_f32(0).to_vec1().unwrap();
        assert!((master[0] - 0.99).abs() < 1e-4, "{master:?}");
        assert!((master[1] - 1.01).abs() < 1e-4, "{master:?}");
        assert_eq!(var.dtype(), DType::BF16);
        let model: Vec<f32> = var.to_dtype(DType::F32).unwrap().to_vec1().unwrap();
        // The model's copy is the master rounded to bf16 (0.99 -> 0.98828125, 1.01 -> 1.0078125).
        assert_eq!(model, [0.98828125, 1.0078125]);
    }
}
