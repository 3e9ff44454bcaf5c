//! Percentages with percentile bootstrap intervals.
//!
//! An *outcome column* is one `Option<bool>` per response: `Some(true)` counts in the numerator
//! and the denominator, `Some(false)` only in the denominator, `None` in neither (e.g. an answer
//! the judge could not score). Resampling draws whole responses with replacement, so the number
//! of scored answers varies between replicates as it would between reruns. Several columns of
//! the same responses (EM and coherence) are resampled jointly.
//!
//! Intervals are the 2.5% and 97.5% quantiles of the replicates (statrs' R-8 quantile).
//! Replicates whose denominator is zero are dropped; with no replicate left (or `n_boot == 0`)
//! the interval collapses to the point estimate.

use rand::RngExt;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use statrs::statistics::{Data, OrderStatistics};

/// A percentage (0-100) with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Estimate {
    pub fn width(&self) -> f64 {
        self.hi - self.lo
    }

    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }
}

/// Numerator and denominator of one outcome column.
pub fn counts(column: &[Option<bool>]) -> (usize, usize) {
    column.iter().fold((0, 0), |(num, den), o| match o {
        Some(true) => (num + 1, den + 1),
        Some(false) => (num, den + 1),
        None => (num, den),
    })
}

/// The percentage of `Some(true)` among the `Some` outcomes; `None` when there are none.
pub fn pct(column: &[Option<bool>]) -> Option<f64> {
    let (num, den) = counts(column);
    (den > 0).then(|| 100.0 * num as f64 / den as f64)
}

/// A deterministic RNG for one purpose: `seed` mixed with a stable hash of `label` (FNV-1a, then
/// SplitMix64), so it does not depend on the Rust version or the platform.
pub fn rng_for(seed: u64, label: &str) -> ChaCha8Rng {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in label.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = seed ^ h.rotate_left(29);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    ChaCha8Rng::seed_from_u64(z)
}

fn interval(value: f64, mut replicates: Vec<f64>) -> Estimate {
    if replicates.is_empty() {
        return Estimate {
            value,
            lo: value,
            hi: value,
        };
    }
    replicates.sort_by(f64::total_cmp);
    let mut data = Data::new(replicates);
    Estimate {
        value,
        lo: data.quantile(0.025),
        hi: data.quantile(0.975),
    }
}

/// One percentage with its bootstrap interval (responses resampled `n_boot` times).
pub fn bootstrap_pct(
    column: &[Option<bool>],
    n_boot: usize,
    rng: &mut ChaCha8Rng,
) -> Option<Estimate> {
    bootstrap_joint(&[column], n_boot, rng).pop().flatten()
}

/// Several outcome columns over the same responses (all of one length), resampled jointly.
/// Returns one estimate per column (`None` for a column with an empty denominator).
pub fn bootstrap_joint(
    columns: &[&[Option<bool>]],
    n_boot: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<Option<Estimate>> {
    let n = columns.first().map_or(0, |c| c.len());
    assert!(
        columns.iter().all(|c| c.len() == n),
        "outcome columns must have the same length"
    );
    let points: Vec<Option<f64>> = columns.iter().map(|c| pct(c)).collect();
    let mut reps: Vec<Vec<f64>> = vec![Vec::with_capacity(n_boot); columns.len()];
    if n > 0 && points.iter().any(Option::is_some) {
        let mut num = vec![0usize; columns.len()];
        let mut den = vec![0usize; columns.len()];
        for _ in 0..n_boot {
            num.iter_mut().for_each(|x| *x = 0);
            den.iter_mut().for_each(|x| *x = 0);
            for _ in 0..n {
                let i = rng.random_range(0..n);
                for (k, col) in columns.iter().enumerate() {
                    if let Some(b) = col[i] {
                        den[k] += 1;
                        num[k] += usize::from(b);
                    }
                }
            }
            for k in 0..columns.len() {
                if den[k] > 0 {
                    reps[k].push(100.0 * num[k] as f64 / den[k] as f64);
                }
            }
        }
    }
    points
        .into_iter()
        .zip(reps)
        .map(|(p, r)| p.map(|v| interval(v, r)))
        .collect()
}

/// Mean over groups (seeds) of each column's percentage, with a two-level bootstrap: each
/// replicate draws as many groups as there are, with replacement, then resamples the responses
/// of each drawn group. `groups[g][k]` is column `k` of group `g`. Groups whose column has an
/// empty denominator do not count for that column.
pub fn bootstrap_mean_over_groups(
    groups: &[Vec<&[Option<bool>]>],
    n_columns: usize,
    n_boot: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<Option<Estimate>> {
    let mean = |xs: &[f64]| (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
    let points: Vec<Option<f64>> = (0..n_columns)
        .map(|k| {
            let per_group: Vec<f64> = groups.iter().filter_map(|g| pct(g[k])).collect();
            mean(&per_group)
        })
        .collect();
    let mut reps: Vec<Vec<f64>> = vec![Vec::with_capacity(n_boot); n_columns];
    let g_count = groups.len();
    if g_count > 0 && points.iter().any(Option::is_some) {
        let mut sums = vec![Vec::with_capacity(g_count); n_columns];
        for _ in 0..n_boot {
            sums.iter_mut().for_each(Vec::clear);
            for _ in 0..g_count {
                let group = &groups[rng.random_range(0..g_count)];
                let n = group.first().map_or(0, |c| c.len());
                let mut num = vec![0usize; n_columns];
                let mut den = vec![0usize; n_columns];
                for _ in 0..n {
                    let i = rng.random_range(0..n);
                    for k in 0..n_columns {
                        if let Some(b) = group[k][i] {
                            den[k] += 1;
                            num[k] += usize::from(b);
                        }
                    }
                }
                for k in 0..n_columns {
                    if den[k] > 0 {
                        sums[k].push(100.0 * num[k] as f64 / den[k] as f64);
                    }
                }
            }
            for k in 0..n_columns {
                if let Some(m) = mean(&sums[k]) {
                    reps[k].push(m);
                }
            }
        }
    }
    points
        .into_iter()
        .zip(reps)
        .map(|(p, r)| p.map(|v| interval(v, r)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(n_true: usize, n_false: usize, n_none: usize) -> Vec<Option<bool>> {
        let mut v = vec![Some(true); n_true];
        v.extend(vec![Some(false); n_false]);
        v.extend(vec![None; n_none]);
        v
    }

    #[test]
    fn pct_ignores_unscored() {
        assert_eq!(pct(&column(3, 7, 2)), Some(30.0));
        assert_eq!(pct(&column(0, 0, 5)), None);
        assert_eq!(pct(&[]), None);
    }

    #[test]
    fn interval_contains_estimate_and_shrinks_with_more_data() {
        let small = column(6, 14, 0);
        let big = column(600, 1400, 0);
        let a = bootstrap_pct(&small, 2000, &mut rng_for(1, "small")).unwrap();
        let b = bootstrap_pct(&big, 2000, &mut rng_for(1, "big")).unwrap();
        assert_eq!(a.value, 30.0);
        assert_eq!(b.value, 30.0);
        assert!(a.contains(a.value) && b.contains(b.value), "{a:?} {b:?}");
        assert!(b.width() < a.width() / 3.0, "{a:?} {b:?}");
        // normal approximation of the 95% CI for p = 0.3, n = 2000: +-2.0 points
        assert!((b.width() - 4.0).abs() < 0.8, "{b:?}");
    }

    #[test]
    fn same_seed_same_interval_other_label_other_stream() {
        let c = column(5, 20, 3);
        let a = bootstrap_pct(&c, 500, &mut rng_for(7, "cell-a")).unwrap();
        let b = bootstrap_pct(&c, 500, &mut rng_for(7, "cell-a")).unwrap();
        assert_eq!(a, b);
        let mut r1 = rng_for(7, "cell-a");
        let mut r2 = rng_for(7, "cell-b");
        let x: Vec<u32> = (0..4).map(|_| r1.random_range(0..1_000_000)).collect();
        let y: Vec<u32> = (0..4).map(|_| r2.random_range(0..1_000_000)).collect();
        assert_ne!(x, y);
    }

    #[test]
    fn degenerate_columns() {
        let all = column(10, 0, 0);
        let e = bootstrap_pct(&all, 200, &mut rng_for(0, "x")).unwrap();
        assert_eq!((e.value, e.lo, e.hi), (100.0, 100.0, 100.0));
        assert!(bootstrap_pct(&column(0, 0, 4), 200, &mut rng_for(0, "x")).is_none());
        let e = bootstrap_pct(&column(1, 1, 0), 0, &mut rng_for(0, "x")).unwrap();
        assert_eq!((e.lo, e.hi), (50.0, 50.0));
    }

    #[test]
    fn group_mean_and_between_seed_spread() {
        let a = column(10, 90, 0); // 10 %
        let b = column(30, 70, 0); // 30 %
        let groups: Vec<Vec<&[Option<bool>]>> = vec![vec![&a], vec![&b]];
        let e = bootstrap_mean_over_groups(&groups, 1, 2000, &mut rng_for(3, "g"))
            .pop()
            .unwrap()
            .unwrap();
        assert!((e.value - 20.0).abs() < 1e-12);
        assert!(e.contains(20.0));
        // seed-to-seed spread widens the interval beyond a pooled 200-response bootstrap
        let pooled: Vec<Option<bool>> = a.iter().chain(&b).copied().collect();
        let p = bootstrap_pct(&pooled, 2000, &mut rng_for(3, "p")).unwrap();
        assert!(e.width() > p.width(), "{e:?} vs pooled {p:?}");
    }
}
