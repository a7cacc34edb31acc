//! The `strategy` context of matrix jobs.

use serde_json::{Map, Value};

/// One job's `strategy` context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrategyContext {
    pub fail_fast: bool,
    /// 0-based, in expansion order.
    pub job_index: usize,
    pub job_total: usize,
    /// `max-parallel`, or `job-total` when it is not set (or not positive), as GitHub reports.
    pub max_parallel: usize,
}

impl StrategyContext {
    /// The context as GitHub builds it: `fail-fast`, `job-index`, `job-total`, `max-parallel`.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("fail-fast".into(), Value::Bool(self.fail_fast));
        map.insert("job-index".into(), Value::from(self.job_index));
        map.insert("job-total".into(), Value::from(self.job_total));
        map.insert("max-parallel".into(), Value::from(self.max_parallel));
        Value::Object(map)
    }
}

/// The `strategy` contexts of `job_total` matrix jobs.
///
/// `fail_fast` is `strategy.fail-fast` (GitHub's default: `true`). `max_parallel` is
/// `strategy.max-parallel` truncated to an integer, as GitHub casts it; `None`, zero or a
/// negative number mean unlimited, which GitHub reports as `job-total`.
pub fn strategy_contexts(
    job_total: usize,
    fail_fast: bool,
    max_parallel: Option<i64>,
) -> Vec<StrategyContext> {
    let max_parallel = match max_parallel {
        Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
        _ => job_total,
    };
    (0..job_total)
        .map(|job_index| StrategyContext {
            fail_fast,
            job_index,
            job_total,
            max_parallel,
        })
        .collect()
}
