//! A task as the rest of Hearth sees it: plain Rust and JSON, no protobuf.

use std::collections::BTreeMap;
use std::fmt;

use prost_types::value::Kind;
use serde_json::{Map, Number, Value};

use crate::proto::runner::{self, Task};
use crate::secret::{Secret, PLACEHOLDER};

/// One job the forge handed to this runner. `Debug` shows neither its secrets nor the tokens
/// of its context.
#[derive(Clone, PartialEq)]
pub struct TaskInfo {
    pub id: i64,
    /// The single-job workflow, as YAML (empty when the forge sent none).
    pub payload: Vec<u8>,
    /// The `github` context as the forge built it (§3.4.3 of the protocol spec): `event`,
    /// `repository`, `sha`, `ref`, `token`, `gitea_runtime_token`, ...
    pub context: Map<String, Value>,
    pub secrets: BTreeMap<String, Secret>,
    pub vars: BTreeMap<String, String>,
    /// The results and outputs of the jobs this one needs, by job id.
    pub needs: BTreeMap<String, NeedInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeedInfo {
    /// `success`, `failure`, `cancelled` or `skipped` (or the forge's number for a status
    /// that is none of them).
    pub result: String,
    pub outputs: BTreeMap<String, String>,
}

impl TaskInfo {
    pub fn from_task(task: Task) -> TaskInfo {
        let context = task.context.map(struct_to_json).unwrap_or_default();
        let needs = task
            .needs
            .into_iter()
            .map(|(id, need)| {
                let info = NeedInfo {
                    result: result_name(need.result),
                    outputs: need.outputs.into_iter().collect(),
                };
                (id, info)
            })
            .collect();
        TaskInfo {
            id: task.id,
            payload: task.workflow_payload.unwrap_or_default(),
            context,
            secrets: task
                .secrets
                .into_iter()
                .map(|(name, value)| (name, Secret::from(value)))
                .collect(),
            vars: task.vars.into_iter().collect(),
            needs,
        }
    }

    /// A string value of the context (`""` when absent or not a string).
    pub fn context_str(&self, key: &str) -> &str {
        self.context.get(key).and_then(Value::as_str).unwrap_or("")
    }

    /// The tokens the forge put in the context: `token`, `gitea_runtime_token`, the OIDC
    /// request tokens (`actions_id_token_request_token`, Forgejo's `forgejo_`-prefixed one),
    /// and any it adds later under a `*_token` key. Each is as secret as a secret.
    pub fn context_tokens(&self) -> impl Iterator<Item = &str> {
        self.context
            .iter()
            .filter(|(key, _)| is_token_key(key))
            .filter_map(|(_, value)| value.as_str())
    }
}

fn is_token_key(key: &str) -> bool {
    key == "token" || key.ends_with("_token")
}

impl fmt::Debug for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let context: Map<String, Value> = self
            .context
            .iter()
            .map(|(key, value)| match is_token_key(key) {
                true => (key.clone(), Value::String(PLACEHOLDER.to_owned())),
                false => (key.clone(), value.clone()),
            })
            .collect();
        f.debug_struct("TaskInfo")
            .field("id", &self.id)
            .field("payload", &String::from_utf8_lossy(&self.payload))
            .field("context", &context)
            .field("secrets", &self.secrets)
            .field("vars", &self.vars)
            .field("needs", &self.needs)
            .finish()
    }
}

/// `needs.<id>.result` for a forge result (an open enum: Gitea casts its statuses into it).
fn result_name(result: i32) -> String {
    match runner::Result::try_from(result) {
        Ok(runner::Result::Success) => "success".into(),
        Ok(runner::Result::Failure) => "failure".into(),
        Ok(runner::Result::Cancelled) => "cancelled".into(),
        Ok(runner::Result::Skipped) => "skipped".into(),
        Ok(runner::Result::Unspecified) => String::new(),
        Err(_) => result.to_string(),
    }
}

fn struct_to_json(value: prost_types::Struct) -> Map<String, Value> {
    value
        .fields
        .into_iter()
        .map(|(key, value)| (key, value_to_json(value)))
        .collect()
}

/// Struct values to JSON. Numbers travel as doubles; integral ones become JSON integers again,
/// so a pull request's `number` is `42`, not `42.0`, in the event file.
fn value_to_json(value: prost_types::Value) -> Value {
    match value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::NumberValue(n)) => number(n),
        Some(Kind::StructValue(s)) => Value::Object(struct_to_json(s)),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.into_iter().map(value_to_json).collect())
        }
    }
}

fn number(n: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: every integer below is exact
    if n.fract() == 0.0 && n.abs() < EXACT {
        Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// JSON to a Struct value, for tests and the fake forge.
pub fn json_to_struct(map: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map
            .iter()
            .map(|(key, value)| (key.clone(), json_to_value(value)))
            .collect(),
    }
}

fn json_to_value(value: &Value) -> prost_types::Value {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        Value::Object(map) => Kind::StructValue(json_to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::runner::TaskNeed;

    #[test]
    fn the_context_comes_back_as_json() {
        let context = serde_json::json!({
            "repository": "acme/app",
            "ref_protected": false,
            "event": {"number": 42, "ratio": 0.5, "labels": [{"name": "x"}], "none": null},
        });
        let Value::Object(map) = context.clone() else {
            unreachable!()
        };
        let task = Task {
            id: 9,
            workflow_payload: Some(b"jobs: {}".to_vec()),
            context: Some(json_to_struct(&map)),
            needs: [(
                "build".to_string(),
                TaskNeed {
                    outputs: [("v".to_string(), "1".to_string())].into(),
                    result: runner::Result::Success as i32,
                },
            )]
            .into(),
            ..Task::default()
        };
        let info = TaskInfo::from_task(task);
        assert_eq!(Value::Object(info.context.clone()), context);
        assert_eq!(info.context_str("repository"), "acme/app");
        assert_eq!(info.needs["build"].result, "success");
        assert_eq!(info.needs["build"].outputs["v"], "1");
        assert_eq!(result_name(7), "7");
    }

    #[test]
    fn debug_never_shows_a_secret_or_a_token() {
        let context = serde_json::json!({
            "repository": "acme/app",
            "token": "task-token-77",
            "gitea_runtime_token": "runtime-token-88",
            "forgejo_actions_id_token_request_token": "oidc-token-99",
        });
        let Value::Object(map) = context else {
            unreachable!()
        };
        let info = TaskInfo::from_task(Task {
            id: 3,
            context: Some(json_to_struct(&map)),
            secrets: [("API_KEY".to_string(), "secret-value-66".to_string())].into(),
            ..Task::default()
        });
        for shown in [format!("{info:?}"), format!("{info:#?}")] {
            for value in ["task-token", "runtime-token", "oidc-token", "secret-value"] {
                assert!(!shown.contains(value), "{value} in {shown}");
            }
            assert!(
                shown.contains("API_KEY") && shown.contains("acme/app"),
                "{shown}"
            );
        }
    }
}
