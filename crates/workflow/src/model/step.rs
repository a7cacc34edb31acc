//! Steps of a job or of a composite action.

use super::common::{Env, OrExpr, Spanned, Text};
use super::job::check_identifier;
use crate::validate::reader::{Loc, Reader};
use crate::yaml::{Node, Span};

/// One step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// `id`.
    pub id: Option<Text>,
    /// `name`.
    pub name: Option<Text>,
    /// `if`.
    pub condition: Option<Text>,
    /// `env`.
    pub env: Option<Env>,
    /// `continue-on-error`.
    pub continue_on_error: Option<OrExpr<bool>>,
    /// `timeout-minutes`.
    pub timeout_minutes: Option<OrExpr<f64>>,
    /// `background`: run without waiting for the step to finish.
    pub background: Option<Spanned<bool>>,
    /// What the step does.
    pub kind: StepKind,
    /// The step's mapping.
    pub span: Span,
}

/// What a step does, by the key that defines it.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// `run`: a script.
    Run {
        /// The script.
        run: Text,
        /// `shell`.
        shell: Option<Text>,
        /// `working-directory`.
        working_directory: Option<Text>,
    },
    /// `uses`: an action.
    Uses {
        /// The action: `owner/repo[/path]@ref`, `./path` or `docker://image`.
        uses: Text,
        /// `with`: the action's inputs.
        with: Option<Env>,
    },
    /// `wait`: wait for background steps.
    Wait {
        /// Ids of the steps to wait for.
        targets: Vec<Text>,
    },
    /// `wait-all`: wait for every background step.
    WaitAll,
    /// `cancel`: cancel a background step.
    Cancel {
        /// Id of the step to cancel.
        target: Text,
    },
    /// `parallel`: run steps side by side.
    Parallel {
        /// The steps.
        steps: Vec<Step>,
    },
}

/// The keys that say what a step does; exactly one must be present.
const KIND_KEYS: &[&str] = &["run", "uses", "wait", "wait-all", "cancel", "parallel"];

/// Which other keys each kind of step takes.
fn allowed_with(kind: &str) -> &'static [&'static str] {
    match kind {
        "run" => &[
            "name",
            "id",
            "if",
            "timeout-minutes",
            "continue-on-error",
            "env",
            "working-directory",
            "shell",
            "background",
        ],
        "uses" => &[
            "name",
            "id",
            "if",
            "timeout-minutes",
            "continue-on-error",
            "env",
            "with",
            "background",
        ],
        "parallel" => &[],
        _ => &["name", "id", "continue-on-error"],
    }
}

/// Reads `steps`; `schema` is the schema path of one step
/// (`jobs.*.steps[]` or `runs.steps[]` for a composite action).
pub(crate) fn read_steps(r: &mut Reader, node: &Node, loc: &Loc, schema: &str) -> Vec<Step> {
    let Some(items) = r.sequence(node, loc) else {
        return Vec::new();
    };
    let mut steps = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = loc.item(i).with_schema(schema);
        if let Some(step) = read_step(r, item, &at, schema) {
            steps.push(step);
        }
    }
    check_unique_ids(r, &steps, loc);
    steps
}

fn check_unique_ids(r: &mut Reader, steps: &[Step], loc: &Loc) {
    let mut seen: Vec<&str> = Vec::new();
    let mut all = Vec::new();
    collect_ids(steps, &mut all);
    for id in all {
        if seen.contains(&id.value.as_str()) {
            r.error(
                id.span.start,
                format!(
                    "step id '{}' is used more than once in '{}'",
                    id.value, loc.path
                ),
            );
        } else {
            seen.push(&id.value);
        }
    }
}

fn collect_ids<'s>(steps: &'s [Step], out: &mut Vec<&'s Text>) {
    for step in steps {
        out.extend(step.id.iter());
        if let StepKind::Parallel { steps } = &step.kind {
            collect_ids(steps, out);
        }
    }
}

fn read_step(r: &mut Reader, node: &Node, loc: &Loc, schema: &str) -> Option<Step> {
    let entries = r.mapping(node, loc)?;
    let composite = schema.starts_with("runs.");
    let kinds: Vec<(&str, &Node)> = entries
        .iter()
        .filter_map(|(k, _)| {
            let name = k.as_str()?;
            KIND_KEYS.contains(&name).then_some((name, k))
        })
        .collect();
    let Some(&(kind, _)) = kinds.first() else {
        r.error(
            node.span.start,
            format!("step '{}' needs 'run' or 'uses'", loc.path),
        );
        return None;
    };
    for (other, key) in &kinds[1..] {
        r.error(
            key.span.start,
            format!("a step cannot have both '{kind}' and '{other}'"),
        );
    }
    let mut step = Step {
        id: None,
        name: None,
        condition: None,
        env: None,
        continue_on_error: None,
        timeout_minutes: None,
        background: None,
        kind: StepKind::WaitAll,
        span: node.span,
    };
    let allowed = allowed_with(kind);
    let mut shell = None;
    let mut working_directory = None;
    let mut with = None;
    for (key, key_node, value) in r.fixed_entries(entries, loc) {
        if key != kind && !allowed.contains(&key) && !KIND_KEYS.contains(&key) {
            r.error(
                key_node.span.start,
                format!("'{key}' is not allowed in a '{kind}' step"),
            );
            continue;
        }
        let at = loc.key(key);
        match key {
            "id" => {
                step.id = r.non_empty_string(value, &at);
                if let Some(id) = &step.id {
                    check_identifier(r, id, "step id");
                }
            }
            "name" => step.name = r.string(value, &at),
            "if" => step.condition = r.condition(value, &at),
            "env" => step.env = r.string_map(value, &at),
            "continue-on-error" => step.continue_on_error = r.boolean(value, &at),
            "timeout-minutes" => step.timeout_minutes = r.number(value, &at),
            "background" => step.background = r.plain_boolean(value, &at),
            "shell" => shell = r.non_empty_string(value, &at),
            "working-directory" => working_directory = r.non_empty_string(value, &at),
            "with" => with = r.string_map(value, &at),
            _ if key != kind => {}
            "run" => {
                if let Some(run) = r.string(value, &at) {
                    step.kind = StepKind::Run {
                        run,
                        shell: None,
                        working_directory: None,
                    };
                }
            }
            "uses" => {
                if let Some(uses) = read_action_ref(r, value, &at) {
                    step.kind = StepKind::Uses { uses, with: None };
                }
            }
            "wait" => {
                step.kind = StepKind::Wait {
                    targets: r.string_list(value, &at),
                }
            }
            "wait-all" => {
                if !value.is_null() {
                    r.plain_boolean(value, &at);
                }
            }
            "cancel" => {
                if let Some(target) = r.non_empty_string(value, &at) {
                    step.kind = StepKind::Cancel { target };
                }
            }
            _ => {
                step.kind = StepKind::Parallel {
                    steps: read_steps(r, value, &at, schema),
                }
            }
        }
    }
    match &mut step.kind {
        StepKind::Run {
            shell: s,
            working_directory: w,
            ..
        } => {
            if composite
                && shell.is_none()
                && !entries.iter().any(|(k, _)| k.as_str() == Some("shell"))
            {
                r.error(
                    node.span.start,
                    format!("step '{}' of a composite action needs 'shell'", loc.path),
                );
            }
            *s = shell;
            *w = working_directory;
        }
        StepKind::Uses { with: w, .. } => *w = with,
        _ => {}
    }
    Some(step)
}

/// A step's `uses`: `./path`, `docker://image` or `owner/repo[/path]@ref`
/// (Gitea and Forgejo also take a full URL with `@ref`).
fn read_action_ref(r: &mut Reader, node: &Node, loc: &Loc) -> Option<Text> {
    let text = r.non_empty_string(node, loc)?;
    let value = text.value.as_str();
    let local = value.starts_with("./") || value.starts_with("../");
    let docker = value.starts_with("docker://");
    let remote = value.contains('@') && value.contains('/');
    if !(local || docker || remote) {
        r.error(
            node.span.start,
            format!("invalid action reference '{value}': expected 'owner/repo[/path]@ref', './path' or 'docker://image'"),
        );
    }
    Some(text)
}
