//! Cross-checks Hearth's schema tables (`hearth_workflow::validate::schema`)
//! against GitHub's own schema files.
//!
//! GitHub publishes the workflow and `action.yml` schemas in its
//! template-schema format. They live beside the repository, in
//! `../shared/conformance/schema/` (or `$HEARTH_CONFORMANCE_DIR/schema/`),
//! and are never copied into it; without them these tests say so and pass.
//!
//! The walk below follows GitHub's reader: from the root definition through
//! `mapping` properties, loose mapping values (`*`), sequence items (`[]`)
//! and every branch of a `one-of`, adding each definition's `context` to the
//! contexts inherited from the keys around it. A definition that is already
//! being walked (the recursion of `parallel` steps) is not walked again.
//! For every place reached it records the keys of mappings with fixed keys
//! and the contexts of places that allow expressions; Hearth's tables must
//! hold exactly the same.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use hearth_workflow::validate::schema::{Schema, ACTION, EVENTS, WORKFLOW};
use serde_json::Value;

type Table = BTreeMap<String, BTreeSet<String>>;

/// Keys GitHub's schema has and Hearth deliberately does not.
const NOT_IN_HEARTH: &[(&str, &str)] = &[
    // `runs.plugin` is for GitHub's own first-party actions; no runner
    // outside GitHub can run one.
    ("runs", "plugin"),
];

fn conformance_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("HEARTH_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
        });
    dir.join("schema").is_dir().then_some(dir)
}

fn load_definitions(file: &str) -> Option<serde_json::Map<String, Value>> {
    let Some(dir) = conformance_dir() else {
        eprintln!("skipping: GitHub's schema not found (set HEARTH_CONFORMANCE_DIR or put it in ../shared/conformance)");
        return None;
    };
    let path = dir.join("schema").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let json: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    match json.get("definitions") {
        Some(Value::Object(definitions)) => Some(definitions.clone()),
        _ => panic!("{} has no definitions", path.display()),
    }
}

struct Walk<'a> {
    definitions: &'a serde_json::Map<String, Value>,
    keys: Table,
    contexts: Table,
}

const BUILT_IN: &[&str] = &[
    "string", "boolean", "number", "null", "any", "sequence", "mapping",
];

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `hashFiles(1,255)` names the function `hashFiles`.
fn context_name(entry: &str) -> String {
    entry.split('(').next().unwrap_or(entry).to_owned()
}

impl Walk<'_> {
    fn walk(
        &mut self,
        path: &str,
        name: &str,
        inherited: &BTreeSet<String>,
        stack: &mut Vec<String>,
    ) {
        if stack.iter().any(|s| s == name) {
            return;
        }
        if BUILT_IN.contains(&name) {
            if !inherited.is_empty() {
                self.contexts
                    .entry(path.to_owned())
                    .or_default()
                    .extend(inherited.iter().cloned());
                // The items of a built-in sequence (a matrix vector) inherit its contexts too.
                if name == "sequence" {
                    self.contexts
                        .entry(format!("{path}[]"))
                        .or_default()
                        .extend(inherited.iter().cloned());
                }
            }
            return;
        }
        let Some(definition) = self.definitions.get(name) else {
            panic!("GitHub's schema refers to an unknown definition '{name}'");
        };
        let mut contexts = inherited.clone();
        if let Some(Value::Array(own)) = definition.get("context") {
            contexts.extend(own.iter().filter_map(Value::as_str).map(context_name));
        }
        if !contexts.is_empty() {
            self.contexts
                .entry(path.to_owned())
                .or_default()
                .extend(contexts.iter().cloned());
        }
        stack.push(name.to_owned());
        if let Some(Value::Array(alternatives)) = definition.get("one-of") {
            for alternative in alternatives.iter().filter_map(Value::as_str) {
                self.walk(path, alternative, &contexts, stack);
            }
        }
        if let Some(mapping) = definition.get("mapping") {
            if let Some(Value::Object(properties)) = mapping.get("properties") {
                for (key, property) in properties {
                    self.keys
                        .entry(path.to_owned())
                        .or_default()
                        .insert(key.clone());
                    let type_name = match property {
                        Value::String(t) => t.as_str(),
                        other => other.get("type").and_then(Value::as_str).unwrap_or("any"),
                    };
                    self.walk(&join(path, key), type_name, &contexts, stack);
                }
            }
            if let Some(Value::String(loose)) = mapping.get("loose-value-type") {
                self.walk(&join(path, "*"), loose, &contexts, stack);
            }
        }
        if let Some(item) = definition
            .get("sequence")
            .and_then(|s| s.get("item-type"))
            .and_then(Value::as_str)
        {
            self.walk(&format!("{path}[]"), item, &contexts, stack);
        }
        stack.pop();
    }
}

fn walk_github(file: &str, roots: &[&str]) -> Option<(Table, Table)> {
    let definitions = load_definitions(file)?;
    let mut walk = Walk {
        definitions: &definitions,
        keys: Table::new(),
        contexts: Table::new(),
    };
    for root in roots {
        walk.walk("", root, &BTreeSet::new(), &mut Vec::new());
    }
    for (path, key) in NOT_IN_HEARTH {
        if let Some(keys) = walk.keys.get_mut(*path) {
            keys.remove(*key);
        }
    }
    Some((walk.keys, walk.contexts))
}

fn hearth_tables(schema: &Schema) -> (Table, Table) {
    let keys = schema
        .mappings
        .iter()
        .map(|(path, keys)| {
            (
                (*path).to_owned(),
                keys.iter().map(|k| (*k).to_owned()).collect(),
            )
        })
        .collect();
    let contexts = schema
        .contexts
        .iter()
        .map(|(path, set)| {
            let names = set.named_values.iter().chain(set.functions);
            ((*path).to_owned(), names.map(|n| (*n).to_owned()).collect())
        })
        .collect();
    (keys, contexts)
}

/// Lists every path where the two tables differ.
fn compare(what: &str, github: &Table, hearth: &Table) -> Vec<String> {
    let mut problems = Vec::new();
    for (path, expected) in github {
        match hearth.get(path) {
            None => problems.push(format!(
                "{what} at '{path}': GitHub has {expected:?}, Hearth has none"
            )),
            Some(actual) if actual != expected => {
                let missing: Vec<_> = expected.difference(actual).collect();
                let extra: Vec<_> = actual.difference(expected).collect();
                problems.push(format!(
                    "{what} at '{path}': Hearth lacks {missing:?} and has extra {extra:?}"
                ));
            }
            Some(_) => {}
        }
    }
    for path in hearth.keys().filter(|p| !github.contains_key(*p)) {
        problems.push(format!(
            "{what} at '{path}': Hearth has {:?}, GitHub has none",
            hearth[path]
        ));
    }
    problems
}

#[test]
fn workflow_tables_match_githubs_schema() {
    let Some((github_keys, github_contexts)) = walk_github(
        "workflow-v1.0.json",
        &["workflow-root", "workflow-root-strict"],
    ) else {
        return;
    };
    let (mut keys, contexts) = hearth_tables(&WORKFLOW);
    // Events and their filters live in `EVENTS`.
    keys.insert(
        "on".to_owned(),
        EVENTS.iter().map(|e| e.name.to_owned()).collect(),
    );
    for event in EVENTS.iter().filter(|e| !e.keys.is_empty()) {
        keys.insert(
            format!("on.{}", event.name),
            event.keys.iter().map(|k| (*k).to_owned()).collect(),
        );
    }
    let mut problems = compare("keys", &github_keys, &keys);
    problems.extend(compare("contexts", &github_contexts, &contexts));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn event_activity_types_match_githubs_schema() {
    let Some(definitions) = load_definitions("workflow-v1.0.json") else {
        return;
    };
    let strict = definitions
        .get("on-mapping-strict")
        .and_then(|d| d.pointer("/mapping/properties"))
        .and_then(Value::as_object)
        .expect("on-mapping-strict has properties");
    let mut problems = Vec::new();
    for (event, definition_name) in strict {
        let definition_name = definition_name.as_str().unwrap_or_default();
        // `<event>-activity-type` holds the allowed values, where there are any.
        let types_definition = format!("{}-activity-type", definition_name);
        let github: Option<BTreeSet<&str>> = definitions
            .get(&types_definition)
            .and_then(|d| d.get("allowed-values"))
            .and_then(Value::as_array)
            .map(|values| values.iter().filter_map(Value::as_str).collect());
        let hearth = EVENTS
            .iter()
            .find(|e| e.name == event)
            .and_then(|e| e.types)
            .map(|types| types.iter().copied().collect::<BTreeSet<&str>>());
        // `pull_request_comment` reuses `issue_comment`'s mapping.
        let github = github.or_else(|| {
            let mapping = definitions
                .get(definition_name)?
                .get("one-of")?
                .as_array()?;
            let mapping_name = mapping
                .iter()
                .filter_map(Value::as_str)
                .find(|n| *n != "null")?;
            let activity = mapping_name.strip_suffix("-mapping")?;
            definitions
                .get(&format!("{activity}-activity-type"))?
                .get("allowed-values")?
                .as_array()
                .map(|values| values.iter().filter_map(Value::as_str).collect())
        });
        if github != hearth {
            problems.push(format!(
                "types of '{event}': GitHub {github:?}, Hearth {hearth:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn action_tables_match_githubs_schema() {
    let Some((github_keys, github_contexts)) =
        walk_github("action-v1.0.json", &["action-root", "action-root-strict"])
    else {
        return;
    };
    let (keys, contexts) = hearth_tables(&ACTION);
    let mut problems = compare("keys", &github_keys, &keys);
    problems.extend(compare("contexts", &github_contexts, &contexts));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
