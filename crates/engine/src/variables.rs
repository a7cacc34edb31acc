//! The `GITHUB_*` and `RUNNER_*` variables of every step, derived from the `github` and
//! `runner` contexts as GitHub's runner derives them.
//!
//! GitHub's runner exports an allow-list of `github` context keys as `GITHUB_<KEY>` (upper
//! case) and of `runner` context keys as `RUNNER_<KEY>`; string values as they are, booleans
//! as `true`/`false`, numbers as GitHub formats them. Keys that are missing or hold objects
//! (such as `event`) are not exported. On top, `CI=true` and `GITHUB_ACTIONS=true`.

use hearth_expr::{Object, Value};

/// The `github` context keys GitHub's runner exports (`GitHubContext._contextEnvAllowlist`).
pub const GITHUB_KEYS: &[&str] = &[
    "action",
    "action_path",
    "action_ref",
    "action_repository",
    "actor",
    "actor_id",
    "api_url",
    "base_ref",
    "env",
    "event_name",
    "event_path",
    "graphql_url",
    "head_ref",
    "job",
    "output",
    "path",
    "ref",
    "ref_name",
    "ref_protected",
    "ref_type",
    "repository",
    "repository_id",
    "repository_owner",
    "repository_owner_id",
    "retention_days",
    "run_attempt",
    "run_id",
    "run_number",
    "server_url",
    "sha",
    "state",
    "step_summary",
    "triggering_actor",
    "workflow",
    "workflow_ref",
    "workflow_sha",
    "workspace",
];

/// The `runner` context keys exported as `RUNNER_<KEY>`.
pub const RUNNER_KEYS: &[&str] = &[
    "name",
    "os",
    "arch",
    "temp",
    "tool_cache",
    "debug",
    "environment",
];

/// `CI`, `GITHUB_ACTIONS`, then `GITHUB_*` from `github` and `RUNNER_*` from `runner`, in
/// that order.
pub fn step_variables(github: &Object, runner: &Object) -> Vec<(String, String)> {
    let mut variables = vec![
        ("CI".to_owned(), "true".to_owned()),
        ("GITHUB_ACTIONS".to_owned(), "true".to_owned()),
    ];
    variables.extend(exported("GITHUB_", GITHUB_KEYS, github));
    variables.extend(exported("RUNNER_", RUNNER_KEYS, runner));
    variables
}

fn exported<'a>(
    prefix: &'a str,
    keys: &'a [&'a str],
    context: &'a Object,
) -> impl Iterator<Item = (String, String)> + 'a {
    keys.iter().filter_map(move |key| {
        let value = match context.get(key)? {
            Value::String(s) => s.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => hearth_expr::format_number(*n),
            _ => return None,
        };
        Some((format!("{prefix}{}", key.to_ascii_uppercase()), value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_the_allow_listed_keys_only() {
        let mut github = Object::new();
        github.insert("ref", "refs/heads/main");
        github.insert("ref_protected", false);
        github.insert("run_number", 7.0);
        github.insert("event", Object::new());
        github.insert("token", "secret-token");
        let mut runner = Object::new();
        runner.insert("os", "Linux");
        runner.insert("temp", "/tmp/job/temp");
        let vars = step_variables(&github, &runner);
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("CI"), Some("true"));
        assert_eq!(get("GITHUB_ACTIONS"), Some("true"));
        assert_eq!(get("GITHUB_REF"), Some("refs/heads/main"));
        assert_eq!(get("GITHUB_REF_PROTECTED"), Some("false"));
        assert_eq!(get("GITHUB_RUN_NUMBER"), Some("7"));
        assert_eq!(get("GITHUB_EVENT"), None);
        assert_eq!(
            get("GITHUB_TOKEN"),
            None,
            "the token is a secret, never a variable"
        );
        assert_eq!(get("RUNNER_OS"), Some("Linux"));
        assert_eq!(get("RUNNER_TEMP"), Some("/tmp/job/temp"));
    }
}
