//! Decoupled AdamW (Loshchilov & Hutter; PyTorch's `AdamW`) and learning-rate schedules.
//!
//! Hand-written rather than candle-nn's `AdamW` because the moments must be readable and restorable
//! for trainer-state checkpoints, and candle-nn keeps them private.

use candle_core::{Result, Tensor, Var};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

pub struct AdamW {
    pub config: AdamWConfig,
    pub vars: Vec<Var>,
    pub m: Vec<Tensor>,
    pub v: Vec<Tensor>,
    /// Number of updates done.
    pub t: u64,
}

impl AdamW {
    pub fn new(vars: Vec<Var>, config: AdamWConfig) -> Result<Self> {
        let m = vars
            .iter()
            .map(|v| v.zeros_like())
            .collect::<Result<Vec<_>>>()?;
        let v = vars
            .iter()
            .map(|v| v.zeros_like())
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW {
            config,
            vars,
            m,
            v,
            t: 0,
        })
    }

    /// One update with learning rate `lr` from gradients aligned with `vars`.
    pub fn step(&mut self, grads: &[Tensor], lr: f64) -> Result<()> {
        self.t += 1;
        let c = self.config;
        let bc1 = 1.0 - c.beta1.powi(self.t as i32);
        let bc2 = 1.0 - c.beta2.powi(self.t as i32);
        for (i, g) in grads.iter().enumerate().take(self.vars.len()) {
            self.m[i] = ((&self.m[i] * c.beta1)? + (g * (1.0 - c.beta1))?)?;
            self.v[i] = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let m_hat = (&self.m[i] / bc1)?;
            let v_hat = (&self.v[i] / bc2)?;
            let theta = self.vars[i].as_tensor();
            // Decoupled weight decay: shrink the weights, then apply the Adam step.
            let decayed = (theta * (1.0 - lr * c.weight_decay))?;
            let update = (m_hat / (v_hat.sqrt()? + c.eps)?)?;
            self.vars[i].set(&(decayed - (update * lr)?)?)?;
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
}
