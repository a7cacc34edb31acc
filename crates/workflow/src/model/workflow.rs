//! The workflow file: its root keys and the small types they use.

use super::common::{Env, OrExpr, Spanned, Text};
use super::job::{self, Job};
use super::trigger::{self, Triggers};
use crate::validate::reader::{Loc, Reader};
use crate::validate::schema::WORKFLOW;
use crate::validate::tree::{check_tree, WORKFLOW_MAX_DEPTH};
use crate::validate::{Diagnostic, Diagnostics};
use crate::yaml::{self, Node, Pos, Span};

/// Longest workflow file GitHub reads, in UTF-16 code units as .NET counts characters.
pub const MAX_FILE_LENGTH: usize = 1024 * 1024;

/// A workflow file.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// `name`.
    pub name: Option<Text>,
    /// `description`.
    pub description: Option<Text>,
    /// `run-name`, which may use `github`, `inputs` and `vars`.
    pub run_name: Option<Text>,
    /// `on`: the events that trigger the workflow.
    pub on: Triggers,
    /// `env` for every job.
    pub env: Option<Env>,
    /// `defaults` for every job.
    pub defaults: Option<Defaults>,
    /// `permissions` of the token, for every job.
    pub permissions: Option<Permissions>,
    /// `concurrency` of the whole run.
    pub concurrency: Option<Concurrency>,
    /// `jobs`, in source order.
    pub jobs: Vec<Job>,
    /// The whole document.
    pub span: Span,
}

impl Workflow {
    /// Loads and validates the workflow in `source`; `file` labels it in
    /// messages.
    ///
    /// # Errors
    ///
    /// Every problem in the file, YAML errors included.
    pub fn parse(source: &str, file: &str) -> Result<Workflow, Diagnostics> {
        // UTF-8 never takes fewer bytes than UTF-16 takes units, so short files need no count.
        let length = if source.len() <= MAX_FILE_LENGTH {
            0
        } else {
            source.encode_utf16().count()
        };
        if length > MAX_FILE_LENGTH {
            let message = format!(
                "the workflow file is {length} characters long; GitHub reads at most \
                 {MAX_FILE_LENGTH}"
            );
            return Err(Diagnostic::new(file, Pos::START, message).into());
        }
        let root = yaml::load(source, file)?;
        Workflow::from_yaml(&root, file)
    }

    /// Reads and validates a workflow from its YAML tree.
    ///
    /// # Errors
    ///
    /// Every problem found, in source order.
    pub fn from_yaml(root: &Node, file: &str) -> Result<Workflow, Diagnostics> {
        let mut reader = Reader::new(file, &WORKFLOW, "the workflow");
        check_tree(&mut reader, root, WORKFLOW_MAX_DEPTH);
        let workflow = read_workflow(&mut reader, root);
        reader.finish(workflow)
    }

    /// Reads a workflow the forge already accepted and sent as a task: GitHub's whole-tree
    /// checks (keys that differ only in case, nesting depth) come back as warnings, not
    /// errors, because Gitea and Forgejo read YAML case-sensitively and run such a job; a
    /// runner that refused it would fail jobs act_runner runs.
    pub(crate) fn from_forge_yaml(
        root: &Node,
        file: &str,
    ) -> (Result<Workflow, Diagnostics>, Vec<Diagnostic>) {
        let mut tree = Reader::new(file, &WORKFLOW, "the workflow");
        check_tree(&mut tree, root, WORKFLOW_MAX_DEPTH);
        let warnings = tree.finish(()).err().map(|d| d.0).unwrap_or_default();
        let mut reader = Reader::new(file, &WORKFLOW, "the workflow");
        let workflow = read_workflow(&mut reader, root);
        (reader.finish(workflow), warnings)
    }

    /// The job with id `id`.
    pub fn job(&self, id: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.id.value == id)
    }
}

fn read_workflow(r: &mut Reader, root: &Node) -> Workflow {
    let loc = Loc::root();
    let mut workflow = Workflow {
        name: None,
        description: None,
        run_name: None,
        on: Triggers::default(),
        env: None,
        defaults: None,
        permissions: None,
        concurrency: None,
        jobs: Vec::new(),
        span: root.span,
    };
    let Some(entries) = r.mapping(root, &loc) else {
        return workflow;
    };
    let mut seen_on = false;
    let mut seen_jobs = false;
    let mut jobs_span = root.span;
    for (key, key_node, value) in r.fixed_entries(entries, &loc) {
        let at = loc.key(key);
        match key {
            "name" => workflow.name = r.string(value, &at),
            "description" => workflow.description = r.string(value, &at),
            "run-name" => workflow.run_name = r.string(value, &at),
            "on" => {
                seen_on = true;
                workflow.on = trigger::read_triggers(r, key_node, value, &at);
            }
            "env" => workflow.env = r.string_map(value, &at),
            "defaults" => workflow.defaults = read_defaults(r, value, &at),
            "permissions" => workflow.permissions = read_permissions(r, value, &at),
            "concurrency" => workflow.concurrency = read_concurrency(r, value, &at),
            "jobs" => {
                jobs_span = value.span;
                seen_jobs = true;
                workflow.jobs = job::read_jobs(r, value, &at);
            }
            _ => {}
        }
    }
    if !seen_on {
        r.error(
            root.span.start,
            "the workflow has no 'on' key: it needs at least one event to trigger it",
        );
    }
    if !seen_jobs {
        r.error(root.span.start, "the workflow has no 'jobs' key");
    }
    job::check_needs(r, &workflow.jobs, jobs_span);
    workflow
}

/// `defaults:` of the workflow or of a job.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Defaults {
    /// `defaults.run`; only a job's may be an expression.
    pub run: Option<OrExpr<RunDefaults>>,
}

/// `defaults.run`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunDefaults {
    /// `shell`.
    pub shell: Option<Text>,
    /// `working-directory`.
    pub working_directory: Option<Text>,
}

pub(crate) fn read_defaults(r: &mut Reader, node: &Node, loc: &Loc) -> Option<Defaults> {
    let entries = r.mapping(node, loc)?;
    let mut defaults = Defaults::default();
    for (key, _, value) in r.fixed_entries(entries, loc) {
        if key != "run" {
            continue;
        }
        let at = loc.key("run");
        if r.is_expression_here(value, &at) {
            defaults.run = r.string(value, &at).map(OrExpr::Expr);
            continue;
        }
        let Some(run_entries) = r.mapping(value, &at) else {
            continue;
        };
        let mut run = RunDefaults::default();
        for (run_key, _, run_value) in r.fixed_entries(run_entries, &at) {
            let text = r.non_empty_string(run_value, &at.key(run_key));
            match run_key {
                "shell" => run.shell = text,
                _ => run.working_directory = text,
            }
        }
        defaults.run = Some(OrExpr::Value(run));
    }
    Some(defaults)
}

/// `permissions:` of the `GITHUB_TOKEN`.
#[derive(Debug, Clone, PartialEq)]
pub enum Permissions {
    /// `read-all`.
    ReadAll,
    /// `write-all`.
    WriteAll,
    /// A level per scope; scopes not listed get no access.
    Scopes(Vec<(Text, Spanned<PermissionLevel>)>),
}

/// The access a token has to one scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionLevel {
    /// `read`.
    Read,
    /// `write`.
    Write,
    /// `none`.
    None,
}

pub(crate) fn read_permissions(r: &mut Reader, node: &Node, loc: &Loc) -> Option<Permissions> {
    if node.as_str().is_some() {
        let text = r.one_of(node, loc, &["read-all", "write-all"])?;
        return Some(if text.value == "read-all" {
            Permissions::ReadAll
        } else {
            Permissions::WriteAll
        });
    }
    if node.is_null() {
        return Some(Permissions::Scopes(Vec::new()));
    }
    let entries = r.mapping(node, loc)?;
    let mut scopes = Vec::new();
    for (key, key_node, value) in r.fixed_entries(entries, loc) {
        let at = loc.key(key);
        // GitHub limits a few scopes to fewer levels.
        let allowed: &[&str] = match key {
            "id-token" | "copilot-requests" => &["write", "none"],
            "models" | "vulnerability-alerts" => &["read", "none"],
            _ => &["read", "write", "none"],
        };
        let Some(level) = r.one_of(value, &at, allowed) else {
            continue;
        };
        let parsed = match level.value.as_str() {
            "read" => PermissionLevel::Read,
            "write" => PermissionLevel::Write,
            _ => PermissionLevel::None,
        };
        scopes.push((
            Spanned::new(key.to_owned(), key_node.span),
            Spanned::new(parsed, level.span),
        ));
    }
    Some(Permissions::Scopes(scopes))
}

/// `concurrency:` of the workflow or of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Concurrency {
    /// `group`, or the whole value when written as a string.
    pub group: Text,
    /// `cancel-in-progress`.
    pub cancel_in_progress: Option<OrExpr<bool>>,
    /// `queue`: `single` or `max`.
    pub queue: Option<Text>,
}

pub(crate) fn read_concurrency(r: &mut Reader, node: &Node, loc: &Loc) -> Option<Concurrency> {
    if node.as_mapping().is_none() {
        let group = if loc.schema.starts_with("jobs.") {
            r.non_empty_string(node, loc)?
        } else {
            r.string(node, loc)?
        };
        check_group_length(r, node, &group);
        return Some(Concurrency {
            group,
            cancel_in_progress: None,
            queue: None,
        });
    }
    let entries = r.mapping(node, loc)?;
    let mut group = None;
    let mut cancel_in_progress = None;
    let mut queue = None;
    for (key, _, value) in r.fixed_entries(entries, loc) {
        let at = loc.key(key);
        match key {
            "group" => group = r.non_empty_string(value, &at),
            "cancel-in-progress" => cancel_in_progress = r.boolean(value, &at),
            _ => {
                queue = if r.is_expression_here(value, &at) {
                    r.string(value, &at)
                } else {
                    r.one_of(value, &at, &["single", "max"])
                }
            }
        }
    }
    if let Some(g) = &group {
        check_group_length(r, node, g);
    }
    let Some(group) = group else {
        // A `group` that is present was reported where it is wrong.
        if !entries.iter().any(|(k, _)| k.as_str() == Some("group")) {
            let place = r.describe(loc);
            r.error(node.span.start, format!("{place} needs 'group'"));
        }
        return None;
    };
    Some(Concurrency {
        group,
        cancel_in_progress,
        queue,
    })
}

/// Longest concurrency group GitHub takes, in UTF-16 code units as .NET counts them.
const MAX_CONCURRENCY_GROUP: usize = 400;

/// A group written out (not computed) may not be longer than GitHub allows; it is
/// reported at the `concurrency` value, where GitHub reports it.
fn check_group_length(r: &mut Reader, node: &Node, group: &Text) {
    if group.has_expression() {
        return;
    }
    let length = group.value.encode_utf16().count();
    if length > MAX_CONCURRENCY_GROUP {
        r.error(
            node.span.start,
            format!(
                "the concurrency group name is {length} characters long; GitHub allows at most \
                 {MAX_CONCURRENCY_GROUP}"
            ),
        );
    }
}
