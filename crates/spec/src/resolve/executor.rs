//! Pass 3, where and how the cells run: `[store]` and `[executor]` (static).
//!
//! Takes the parsed sweep; reports an empty store URL and a zero parallelism or thread count.
//! (`[slurm]` is checked by [`crate::slurm`].)

use super::Problems;
use crate::load::Sweep;

/// `[store]` and `[executor]`.
pub(super) fn check(sweep: &Sweep, problems: &mut Problems) {
    let f = &sweep.file;
    if f.store.url.trim().is_empty() {
        problems.bad("store.url", "`store.url` is empty".to_string());
    }
    for (field, v) in [
        ("parallel", f.executor.parallel),
        ("threads_per_job", f.executor.threads_per_job),
        ("max_cells", f.executor.max_cells),
    ] {
        if v == 0 {
            problems.bad(
                &format!("executor.{field}"),
                format!("bad value for `executor.{field}`: must be >= 1"),
            );
        }
    }
}
