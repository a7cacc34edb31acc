//! `action.yml`: the metadata of an action.

use super::common::{Env, Text};
use super::step::{self, Step};
use crate::validate::reader::{Loc, Reader};
use crate::validate::schema::{ACTION, RUNS_KEYS};
use crate::validate::{suggest_hint, Diagnostics};
use crate::yaml::{self, Node};

/// An action's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// `name`.
    pub name: Option<Text>,
    /// `author`.
    pub author: Option<Text>,
    /// `description`.
    pub description: Option<Text>,
    /// `inputs`, in source order.
    pub inputs: Vec<ActionInput>,
    /// `outputs`, in source order.
    pub outputs: Vec<ActionOutput>,
    /// `runs`: how the action runs.
    pub runs: Runs,
    /// `branding` for the marketplace.
    pub branding: Option<Branding>,
}

/// An input of an action.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionInput {
    /// The input's name.
    pub name: Text,
    /// `description`.
    pub description: Option<Text>,
    /// `required`. GitHub only warns about a missing required input, and
    /// many actions write `'true'` as a string, so any truthy text counts.
    pub required: bool,
    /// `default`, which may use `github`, `job`, `runner`, `strategy`,
    /// `matrix` and `hashFiles`.
    pub default: Option<Text>,
    /// `deprecationMessage`.
    pub deprecation_message: Option<Text>,
}

/// An output of an action.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionOutput {
    /// The output's name.
    pub name: Text,
    /// `description`.
    pub description: Option<Text>,
    /// `value` (composite actions).
    pub value: Option<Text>,
}

/// `branding`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Branding {
    /// `icon`.
    pub icon: Option<Text>,
    /// `color`.
    pub color: Option<Text>,
}

/// `runs`, by its `using`.
#[derive(Debug, Clone, PartialEq)]
pub enum Runs {
    /// A JavaScript action: `using: nodeNN`.
    Node {
        /// `using`, e.g. `node20`.
        using: Text,
        /// The Node.js major version from `using`.
        version: u32,
        /// `main`.
        main: Text,
        /// `pre`.
        pre: Option<Text>,
        /// `pre-if`.
        pre_if: Option<Text>,
        /// `post`.
        post: Option<Text>,
        /// `post-if`.
        post_if: Option<Text>,
    },
    /// A Docker action: `using: docker`.
    Docker {
        /// `image`: `Dockerfile`, a path to one, or `docker://image`.
        image: Text,
        /// `entrypoint`.
        entrypoint: Option<Text>,
        /// `args`, which may use `inputs`.
        args: Vec<Text>,
        /// `env`, which may use `inputs`.
        env: Option<Env>,
        /// `pre-entrypoint`.
        pre_entrypoint: Option<Text>,
        /// `pre-if`.
        pre_if: Option<Text>,
        /// `post-entrypoint`.
        post_entrypoint: Option<Text>,
        /// `post-if`.
        post_if: Option<Text>,
    },
    /// A composite action: `using: composite`.
    Composite {
        /// `steps`.
        steps: Vec<Step>,
    },
}

/// Keys of `runs` each kind of action takes.
const NODE_KEYS: &[&str] = &["using", "main", "pre", "pre-if", "post", "post-if"];
const DOCKER_KEYS: &[&str] = &[
    "using",
    "image",
    "entrypoint",
    "args",
    "env",
    "pre-entrypoint",
    "pre-if",
    "post-entrypoint",
    "post-if",
];
const COMPOSITE_KEYS: &[&str] = &["using", "steps"];

impl Action {
    /// Loads and validates the `action.yml` in `source`.
    ///
    /// # Errors
    ///
    /// Every problem in the file, YAML errors included.
    pub fn parse(source: &str, file: &str) -> Result<Action, Diagnostics> {
        let root = yaml::load(source, file)?;
        Action::from_yaml(&root, file)
    }

    /// Reads and validates an action from its YAML tree.
    ///
    /// Unknown top-level keys and unknown keys of an input are accepted, as
    /// GitHub's runner accepts them; everything else is checked.
    ///
    /// # Errors
    ///
    /// Every problem found, in source order.
    pub fn from_yaml(root: &Node, file: &str) -> Result<Action, Diagnostics> {
        let mut reader = Reader::new(file, &ACTION, "the action");
        crate::validate::tree::check_tree(
            &mut reader,
            root,
            crate::validate::tree::ACTION_MAX_DEPTH,
        );
        let action = read_action(&mut reader, root);
        match action {
            Some(action) => reader.finish(action),
            None => {
                let placeholder = Action {
                    name: None,
                    author: None,
                    description: None,
                    inputs: Vec::new(),
                    outputs: Vec::new(),
                    runs: Runs::Composite { steps: Vec::new() },
                    branding: None,
                };
                // `read_action` reported why there is no action.
                reader.finish(placeholder)
            }
        }
    }
}

fn read_action(r: &mut Reader, root: &Node) -> Option<Action> {
    let loc = Loc::root();
    let entries = r.mapping(root, &loc)?;
    let mut action = Action {
        name: None,
        author: None,
        description: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        runs: Runs::Composite { steps: Vec::new() },
        branding: None,
    };
    let mut runs = None;
    for (key, value) in entries {
        let Some(key) = key.as_str() else {
            continue;
        };
        let at = loc.key(key);
        match key {
            "name" => action.name = r.string(value, &at),
            "author" => action.author = r.string(value, &at),
            "description" => action.description = r.string(value, &at),
            "inputs" => action.inputs = read_inputs(r, value, &at),
            "outputs" => action.outputs = read_outputs(r, value, &at),
            "runs" => runs = read_runs(r, value, &at),
            "branding" => action.branding = read_branding(r, value, &at),
            // GitHub's runner ignores other keys of action.yml.
            _ => {}
        }
    }
    match runs {
        Some(runs) => action.runs = runs,
        None => {
            if !entries.iter().any(|(k, _)| k.as_str() == Some("runs")) {
                r.error(root.span.start, "the action has no 'runs' key");
            }
            return None;
        }
    }
    Some(action)
}

fn read_inputs(r: &mut Reader, node: &Node, loc: &Loc) -> Vec<ActionInput> {
    if node.is_null() {
        return Vec::new();
    }
    let Some(entries) = r.mapping(node, loc) else {
        return Vec::new();
    };
    let mut inputs = Vec::new();
    for (key, value) in entries {
        let Some(name) = r.loose_key(key, loc) else {
            continue;
        };
        let at = loc.any_key(&name.value);
        let mut input = ActionInput {
            name,
            description: None,
            required: false,
            default: None,
            deprecation_message: None,
        };
        if !value.is_null() {
            let Some(fields) = r.mapping(value, &at) else {
                continue;
            };
            for (field, field_value) in fields {
                let Some(field) = field.as_str() else {
                    continue;
                };
                let field_loc = at.key(field);
                match field {
                    "description" => input.description = r.string(field_value, &field_loc),
                    "required" => {
                        input.required = field_value.as_bool().unwrap_or_else(|| {
                            field_value
                                .as_str()
                                .is_some_and(|s| s.eq_ignore_ascii_case("true"))
                        })
                    }
                    "default" => input.default = r.string(field_value, &field_loc),
                    "deprecationMessage" => {
                        input.deprecation_message = r.string(field_value, &field_loc)
                    }
                    // Inputs are free-form on GitHub, too.
                    _ => {}
                }
            }
        }
        inputs.push(input);
    }
    inputs
}

fn read_outputs(r: &mut Reader, node: &Node, loc: &Loc) -> Vec<ActionOutput> {
    if node.is_null() {
        return Vec::new();
    }
    let Some(entries) = r.mapping(node, loc) else {
        return Vec::new();
    };
    let mut outputs = Vec::new();
    for (key, value) in entries {
        let Some(name) = r.loose_key(key, loc) else {
            continue;
        };
        let at = loc.any_key(&name.value);
        let mut output = ActionOutput {
            name,
            description: None,
            value: None,
        };
        if !value.is_null() {
            let Some(fields) = r.mapping(value, &at) else {
                continue;
            };
            for (field, _, field_value) in r.fixed_entries(fields, &at) {
                let text = r.string(field_value, &at.key(field));
                if field == "value" {
                    output.value = text;
                } else {
                    output.description = text;
                }
            }
        }
        outputs.push(output);
    }
    outputs
}

fn read_branding(r: &mut Reader, node: &Node, loc: &Loc) -> Option<Branding> {
    let entries = r.mapping(node, loc)?;
    let mut branding = Branding::default();
    for (key, _, value) in r.fixed_entries(entries, loc) {
        let text = r.string(value, &loc.key(key));
        if key == "icon" {
            branding.icon = text;
        } else {
            branding.color = text;
        }
    }
    Some(branding)
}

/// The Node.js version of `using: nodeNN`.
fn node_version(using: &str) -> Option<u32> {
    let digits = using.strip_prefix("node")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn read_runs(r: &mut Reader, node: &Node, loc: &Loc) -> Option<Runs> {
    let entries = r.mapping(node, loc)?;
    let Some((_, using_node)) = entries.iter().find(|(k, _)| k.as_str() == Some("using")) else {
        r.error(
            node.span.start,
            "'runs' needs 'using' (node20, node24, docker or composite)",
        );
        // Still report unknown keys.
        r.fixed_entries(entries, loc);
        return None;
    };
    let using = r.non_empty_string(using_node, &loc.key("using"))?;
    let (kind_keys, label) = if let Some(version) = node_version(&using.value) {
        (NODE_KEYS, format!("node{version}"))
    } else if using.value == "docker" {
        (DOCKER_KEYS, "docker".to_owned())
    } else if using.value == "composite" {
        (COMPOSITE_KEYS, "composite".to_owned())
    } else {
        let hint = suggest_hint(&using.value, ["node20", "node24", "docker", "composite"]);
        r.error(
            using.span.start,
            format!(
                "unknown value '{}' for 'runs.using'{hint} (expected nodeNN such as node20, docker or composite)",
                using.value
            ),
        );
        return None;
    };
    let mut fields: Vec<(&str, &Node, &Node)> = Vec::new();
    for (key, key_node, value) in r.fixed_entries(entries, loc) {
        if kind_keys.contains(&key) {
            fields.push((key, key_node, value));
        } else if RUNS_KEYS.contains(&key) {
            r.error(
                key_node.span.start,
                format!("'{key}' is not allowed in 'runs' of an action using '{label}'"),
            );
        }
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _, _)| *k == name)
            .map(|(_, _, v)| *v)
    };
    let text = |r: &mut Reader, name: &str| {
        field(name).and_then(|v| r.non_empty_string(v, &loc.key(name)))
    };
    let condition =
        |r: &mut Reader, name: &str| field(name).and_then(|v| r.condition(v, &loc.key(name)));
    let required = |r: &mut Reader, name: &str| {
        if field(name).is_none() {
            r.error(
                node.span.start,
                format!("'runs' of an action using '{label}' needs '{name}'"),
            );
        }
    };
    if let Some(version) = node_version(&using.value) {
        required(r, "main");
        let main = text(r, "main");
        let pre = text(r, "pre");
        let pre_if = condition(r, "pre-if");
        let post = text(r, "post");
        let post_if = condition(r, "post-if");
        return Some(Runs::Node {
            using,
            version,
            main: main?,
            pre,
            pre_if,
            post,
            post_if,
        });
    }
    if using.value == "docker" {
        required(r, "image");
        let image = text(r, "image");
        let entrypoint = text(r, "entrypoint");
        let args = field("args")
            .map(|v| {
                let at = loc.key("args");
                match r.sequence(v, &at) {
                    Some(items) => items
                        .iter()
                        .enumerate()
                        .filter_map(|(i, item)| r.string(item, &at.item(i)))
                        .collect(),
                    None => Vec::new(),
                }
            })
            .unwrap_or_default();
        let env = field("env").and_then(|v| r.string_map(v, &loc.key("env")));
        let pre_entrypoint = text(r, "pre-entrypoint");
        let pre_if = condition(r, "pre-if");
        let post_entrypoint = text(r, "post-entrypoint");
        let post_if = condition(r, "post-if");
        return Some(Runs::Docker {
            image: image?,
            entrypoint,
            args,
            env,
            pre_entrypoint,
            pre_if,
            post_entrypoint,
            post_if,
        });
    }
    required(r, "steps");
    let steps = field("steps")
        .map(|v| step::read_steps(r, v, &loc.key("steps"), "runs.steps[]"))
        .unwrap_or_default();
    Some(Runs::Composite { steps })
}

impl Runs {
    /// `using` as the action wrote it, or `composite` / `docker`.
    pub fn using(&self) -> &str {
        match self {
            Runs::Node { using, .. } => &using.value,
            Runs::Docker { .. } => "docker",
            Runs::Composite { .. } => "composite",
        }
    }
}
