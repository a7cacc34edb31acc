//! The `github`/`gitea` context a task carries (spec §3.4.3), and its conversion to the
//! `google.protobuf.Struct` on the wire.

use serde_json::{json, Value};

/// The repository every default context names.
pub const DEFAULT_REPOSITORY: &str = "test-owner/test-repo";
/// The commit every default context names.
pub const DEFAULT_SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A context with every key Gitea (≥ 1.22) sends for a push to `main` of
/// [`DEFAULT_REPOSITORY`], as served by the forge at `server_url`. `token` and
/// `gitea_runtime_token` are empty here: the forge fills them when a runner picks the task.
pub fn gitea_context(server_url: &str, run_id: i64, job_key: &str) -> Value {
    let base = server_url.trim_end_matches('/');
    let (owner, name) = DEFAULT_REPOSITORY
        .split_once('/')
        .unwrap_or((DEFAULT_REPOSITORY, ""));
    let repo_url = format!("{base}/{DEFAULT_REPOSITORY}");
    let user = json!({ "id": 1, "login": "test-user", "username": "test-user", "full_name": "",
                       "email": "test-user@example.invalid" });
    let event = json!({
        "ref": "refs/heads/main",
        "before": "0000000000000000000000000000000000000000",
        "after": DEFAULT_SHA,
        "compare_url": "",
        "commits": [],
        "total_commits": 0,
        "head_commit": { "id": DEFAULT_SHA, "message": "test commit\n", "url": format!("{repo_url}/commit/{DEFAULT_SHA}") },
        "repository": {
            "id": 1, "name": name, "full_name": DEFAULT_REPOSITORY, "private": false,
            "owner": { "id": 2, "login": owner, "username": owner },
            "html_url": repo_url, "clone_url": format!("{repo_url}.git"),
            "default_branch": "main",
        },
        "pusher": user,
        "sender": user,
    });
    json!({
        "action": "", "action_path": "", "action_ref": "", "action_repository": "",
        "action_status": "",
        "actor": "test-user",
        "api_url": format!("{base}/api/v1"),
        "base_ref": "", "head_ref": "",
        "env": "", "path": "", "event_path": "", "graphql_url": "", "workspace": "",
        "retention_days": "",
        "event": event,
        "event_name": "push",
        "job": job_key,
        "ref": "refs/heads/main", "ref_name": "main", "ref_type": "branch",
        "ref_protected": false,
        "repository": DEFAULT_REPOSITORY, "repository_owner": owner,
        "repositoryUrl": repo_url,
        "run_id": run_id.to_string(), "run_number": run_id.to_string(), "run_attempt": "1",
        "secret_source": "Actions",
        "server_url": format!("{base}/"),
        "sha": DEFAULT_SHA,
        "triggering_actor": "test-user",
        "workflow": "test.yml",
        "gitea_default_actions_url": "https://github.com",
        "token": "",
        "gitea_runtime_token": "",
    })
}

/// Merges `overrides` into `base`: objects key by key, recursively; anything else replaces.
/// A `null` override removes the key (no value of a real context is null), which lets a test
/// play an older server (e.g. without `gitea_runtime_token`). A `null` `overrides` as a whole
/// changes nothing.
pub fn merge(base: &mut Value, overrides: Value) {
    match (base, overrides) {
        (_, Value::Null) => {}
        (Value::Object(base), Value::Object(overrides)) => {
            for (key, value) in overrides {
                if value.is_null() {
                    base.remove(&key);
                } else if let Some(existing) = base.get_mut(&key) {
                    merge(existing, value);
                } else {
                    base.insert(key, value);
                }
            }
        }
        (base, overrides) => *base = overrides,
    }
}

/// A JSON object as a `google.protobuf.Struct` (numbers become doubles, as on the wire), with
/// the runner's own conversion. Anything but an object gives an empty Struct.
pub fn to_struct(value: &Value) -> prost_types::Struct {
    match value {
        Value::Object(map) => hearth_forge::task::json_to_struct(map),
        _ => prost_types::Struct::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::value::Kind;

    #[test]
    fn merge_replaces_nested_keys_and_null_removes() {
        let mut ctx = gitea_context("http://127.0.0.1:1", 7, "build");
        merge(
            &mut ctx,
            json!({ "event": { "ref": "refs/tags/v1" }, "gitea_runtime_token": null }),
        );
        assert_eq!(ctx["event"]["ref"], "refs/tags/v1");
        assert_eq!(ctx["event"]["after"], DEFAULT_SHA);
        assert!(ctx.get("gitea_runtime_token").is_none());
        assert_eq!(ctx["server_url"], "http://127.0.0.1:1/");
        assert_eq!(ctx["run_id"], "7");
        let before = ctx.clone();
        merge(&mut ctx, Value::Null);
        assert_eq!(ctx, before);
    }

    #[test]
    fn struct_conversion_keeps_types() {
        let s = to_struct(&json!({ "n": 3, "b": true, "l": ["x"], "o": { "k": null } }));
        assert_eq!(s.fields["n"].kind, Some(Kind::NumberValue(3.0)));
        assert_eq!(s.fields["b"].kind, Some(Kind::BoolValue(true)));
        assert!(matches!(s.fields["l"].kind, Some(Kind::ListValue(_))));
        assert!(matches!(s.fields["o"].kind, Some(Kind::StructValue(_))));
    }
}
