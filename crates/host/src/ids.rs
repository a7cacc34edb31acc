//! Unique names: job folder names and tracking ids.
//!
//! Both only need to be unique on this machine for the life of the job, so they are built from
//! std alone (no RNG crate): the process id, the clock, a counter, hashed with std's randomly
//! keyed `RandomState` so that two runners started in the same nanosecond still differ.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest part of a job folder name taken from the job's name; keeps paths short.
const MAX_NAME: usize = 40;

/// 16 hex digits that differ on every call.
pub(crate) fn unique_hex() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    // A clock before 1970 only loses one ingredient; the counter and the keys remain.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(nanos);
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", hasher.finish())
}

/// A job-wide tracking id, in the spirit of GitHub's `RUNNER_TRACKING_ID` (`github_<guid>`).
pub(crate) fn tracking_id() -> String {
    format!("hearth_{}{}", unique_hex(), unique_hex())
}

/// A folder name for a job: its name made safe for a path, plus a unique suffix (job names
/// repeat across a matrix and across runs).
pub(crate) fn folder_name(job: &str) -> String {
    let mut name: String = job
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME)
        .collect();
    if name.trim_matches('.').is_empty() {
        name = "job".to_owned();
    }
    format!("{name}-{}", unique_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_are_safe_and_unique() {
        let a = folder_name("build (ubuntu, 1.2/3)");
        let b = folder_name("build (ubuntu, 1.2/3)");
        assert_ne!(a, b);
        assert!(a.starts_with("build__ubuntu__1.2_3_-"), "{a}");
        assert!(!a.contains('/'));
        assert!(folder_name("").starts_with("job-"));
        assert!(folder_name("..").starts_with("job-"));
        assert!(folder_name(&"x".repeat(500)).len() < 60);
    }

    #[test]
    fn tracking_ids_differ() {
        assert_ne!(tracking_id(), tracking_id());
    }
}
