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

/// Adds `hosts` to the runner's `NO_PROXY`/`no_proxy`, where it gives the job one (a runner
/// passing its proxy on): the addresses the job reaches the runner's side at (a container
/// job's network gateway, known only once the job started) and its service names are on the
/// job's side of any proxy. A runner that gives no `NO_PROXY` gets none.
pub fn extend_no_proxy(env: &mut [(String, String)], hosts: &[String]) {
    for (name, value) in env.iter_mut() {
        if name != "NO_PROXY" && name != "no_proxy" {
            continue;
        }
        let mut list: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        for host in hosts {
            if !list.iter().any(|h| h.eq_ignore_ascii_case(host)) {
                list.push(host.clone());
            }
        }
        *value = list.join(",");
    }
}

/// The host of `url` (`http://172.17.0.1:40001/x` → `172.17.0.1`, `http://[::1]:8/` → `::1`).
pub fn url_host(url: &str) -> Option<&str> {
    let after = url.split_once("://")?.1;
    let authority = after.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next()?,
        None => host_port.split(':').next()?,
    };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod no_proxy_tests {
    use super::*;

    #[test]
    fn hosts_join_the_no_proxy_list_once_and_only_where_there_is_one() {
        let mut env = vec![
            ("NO_PROXY".to_owned(), "localhost, 10.0.0.1".to_owned()),
            ("no_proxy".to_owned(), String::new()),
            ("HTTP_PROXY".to_owned(), "http://p:1".to_owned()),
        ];
        extend_no_proxy(&mut env, &["10.0.0.1".to_owned(), "redis".to_owned()]);
        assert_eq!(env[0].1, "localhost,10.0.0.1,redis");
        assert_eq!(env[1].1, "10.0.0.1,redis");
        assert_eq!(env[2].1, "http://p:1");
    }

    #[test]
    fn a_urls_host_is_found_in_its_forms() {
        assert_eq!(url_host("http://172.17.0.1:40001/x"), Some("172.17.0.1"));
        assert_eq!(
            url_host("https://user:pw@git.example.com/"),
            Some("git.example.com")
        );
        assert_eq!(url_host("http://[::1]:8080/"), Some("::1"));
        assert_eq!(url_host("http://cache?x"), Some("cache"));
        assert_eq!(url_host("not a url"), None);
    }
}
