//! `jobs.<job_id>`: jobs that run steps and jobs that call a reusable
//! workflow.

use super::common::{Env, OrExpr, Scalar, Spanned, StringMap, Text};
use super::step::{self, Step};
use super::workflow::{
    read_concurrency, read_defaults, read_permissions, Concurrency, Defaults, Permissions,
};
use crate::graph::{GraphJob, JobGraph, Need, NO_JOB_WITHOUT_NEEDS};
use crate::validate::reader::{Loc, Reader};
use crate::validate::{closest, suggest_hint};
use crate::yaml::{Node, Span, YamlValue};

/// One job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The job's id, the key under `jobs`.
    pub id: Text,
    /// `name`.
    pub name: Option<Text>,
    /// `needs`: ids of the jobs that must finish first.
    pub needs: Vec<Text>,
    /// `if`.
    pub condition: Option<Text>,
    /// `runs-on`; `None` only for a job that calls a reusable workflow.
    pub runs_on: Option<RunsOn>,
    /// `strategy`.
    pub strategy: Option<OrExpr<Strategy>>,
    /// `timeout-minutes`.
    pub timeout_minutes: Option<OrExpr<f64>>,
    /// `cancel-timeout-minutes`.
    pub cancel_timeout_minutes: Option<OrExpr<f64>>,
    /// `continue-on-error`.
    pub continue_on_error: Option<OrExpr<bool>>,
    /// `container`.
    pub container: Option<Container>,
    /// `services`: name and container, in source order.
    pub services: Option<OrExpr<Vec<(Text, Container)>>>,
    /// `env`.
    pub env: Option<Env>,
    /// `environment`.
    pub environment: Option<Environment>,
    /// `permissions`.
    pub permissions: Option<Permissions>,
    /// `concurrency`.
    pub concurrency: Option<Concurrency>,
    /// `outputs`.
    pub outputs: Option<StringMap>,
    /// `defaults`.
    pub defaults: Option<Defaults>,
    /// `steps`.
    pub steps: Vec<Step>,
    /// `snapshot`: build a runner image from the job.
    pub snapshot: Option<Snapshot>,
    /// `uses`: the reusable workflow this job calls.
    pub uses: Option<Text>,
    /// `with`: inputs of the reusable workflow, keeping their types.
    pub with: Vec<(Text, Spanned<Scalar>)>,
    /// `secrets`: secrets passed to the reusable workflow.
    pub secrets: Option<JobSecrets>,
    /// The job's mapping.
    pub span: Span,
}

impl Job {
    /// `true` if the job calls a reusable workflow instead of running steps.
    pub fn is_call(&self) -> bool {
        self.uses.is_some()
    }
}

/// `runs-on`: the labels a runner must have, and optionally its group.
#[derive(Debug, Clone, PartialEq)]
pub struct RunsOn {
    /// Labels; one written as an expression may produce several.
    pub labels: Vec<Text>,
    /// `group`.
    pub group: Option<Text>,
    /// Where `runs-on`'s value was written.
    pub span: Span,
}

/// `strategy`.
#[derive(Debug, Clone, PartialEq)]
pub struct Strategy {
    /// `fail-fast`.
    pub fail_fast: Option<OrExpr<bool>>,
    /// `max-parallel`.
    pub max_parallel: Option<OrExpr<f64>>,
    /// `matrix` as written (a mapping, or one expression), checked but not
    /// expanded: expansion needs its expressions evaluated first (see
    /// [`crate::matrix`]).
    pub matrix: Option<Node>,
}

/// A job or service container.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Container {
    /// `image`, or the whole value when written as a string.
    pub image: Option<Text>,
    /// `options` for `docker create`.
    pub options: Option<Text>,
    /// `env`.
    pub env: Option<Env>,
    /// `ports`.
    pub ports: Vec<Text>,
    /// `volumes`.
    pub volumes: Vec<Text>,
    /// `credentials` for the registry.
    pub credentials: Option<OrExpr<Credentials>>,
    /// `entrypoint` (services only).
    pub entrypoint: Option<Text>,
    /// `command` (services only).
    pub command: Option<Text>,
    /// Where the container was written.
    pub span: Span,
}

/// Registry credentials.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Credentials {
    /// `username`.
    pub username: Option<Text>,
    /// `password`.
    pub password: Option<Text>,
}

/// `environment`.
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    /// `name`, or the whole value when written as a string.
    pub name: Text,
    /// `url`.
    pub url: Option<Text>,
    /// `deployment`: whether to record a deployment.
    pub deployment: Option<OrExpr<bool>>,
}

/// `snapshot`.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// `image-name`, or the whole value when written as a string.
    pub image_name: Text,
    /// `if`.
    pub condition: Option<Text>,
    /// `version`.
    pub version: Option<Text>,
}

/// `secrets` of a job that calls a reusable workflow.
#[derive(Debug, Clone, PartialEq)]
pub enum JobSecrets {
    /// `secrets: inherit`.
    Inherit(Span),
    /// Named secrets.
    Map(Vec<(Text, Spanned<Scalar>)>),
}

/// Keys that only a job calling a reusable workflow may have.
const CALL_ONLY: &[&str] = &["uses", "with", "secrets"];
/// Keys a job calling a reusable workflow may have.
const CALL_KEYS: &[&str] = &[
    "name",
    "uses",
    "with",
    "secrets",
    "needs",
    "if",
    "permissions",
    "concurrency",
    "strategy",
];

pub(crate) fn read_jobs(r: &mut Reader, node: &Node, loc: &Loc) -> Vec<Job> {
    let Some(entries) = r.mapping(node, loc) else {
        return Vec::new();
    };
    if entries.is_empty() {
        r.error(node.span.start, "'jobs' has no job");
    }
    let mut jobs = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let Some(id) = r.loose_key(key, loc) else {
            continue;
        };
        check_identifier(r, &id, "job id");
        let at = loc.any_key(&id.value);
        if let Some(job) = read_job(r, id, value, &at) {
            jobs.push(job);
        }
    }
    jobs
}

/// GitHub's rule for job and step ids.
pub(crate) fn check_identifier(r: &mut Reader, id: &Text, what: &str) {
    let mut chars = id.value.chars();
    let valid_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let valid_rest = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_start || !valid_rest || id.value.len() >= 100 {
        r.error(
            id.span.start,
            format!(
                "{what} '{}' is invalid: ids must start with a letter or '_', contain only letters, digits, '_' and '-', and be shorter than 100 characters",
                id.value
            ),
        );
    } else if id.value.starts_with("__") {
        // GitHub names steps without an id `__run`, `__actions_checkout`, ...
        r.error(
            id.span.start,
            format!(
                "{what} '{}' is invalid: ids starting with '__' are reserved",
                id.value
            ),
        );
    }
}

fn read_job(r: &mut Reader, id: Text, node: &Node, loc: &Loc) -> Option<Job> {
    let entries = r.mapping(node, loc)?;
    let mut job = Job {
        id,
        name: None,
        needs: Vec::new(),
        condition: None,
        runs_on: None,
        strategy: None,
        timeout_minutes: None,
        cancel_timeout_minutes: None,
        continue_on_error: None,
        container: None,
        services: None,
        env: None,
        environment: None,
        permissions: None,
        concurrency: None,
        outputs: None,
        defaults: None,
        steps: Vec::new(),
        snapshot: None,
        uses: None,
        with: Vec::new(),
        secrets: None,
        span: node.span,
    };
    let is_call = entries.iter().any(|(k, _)| k.as_str() == Some("uses"));
    let job_name = job.id.value.clone();
    for (key, key_node, value) in r.fixed_entries(entries, loc) {
        if is_call && !CALL_KEYS.contains(&key) {
            r.error(
                key_node.span.start,
                format!("'{key}' is not allowed in job '{job_name}', which calls a reusable workflow ('uses')"),
            );
            continue;
        }
        if !is_call && CALL_ONLY.contains(&key) {
            r.error(
                key_node.span.start,
                format!("'{key}' is only allowed in a job that calls a reusable workflow ('uses')"),
            );
            continue;
        }
        let at = loc.key(key);
        match key {
            "name" => job.name = r.string(value, &at),
            "needs" => job.needs = r.string_list(value, &at),
            "if" => job.condition = r.condition(value, &at),
            "runs-on" => job.runs_on = read_runs_on(r, value, &at),
            "strategy" => job.strategy = read_strategy(r, value, &at),
            "timeout-minutes" => job.timeout_minutes = r.number(value, &at),
            "cancel-timeout-minutes" => job.cancel_timeout_minutes = r.number(value, &at),
            "continue-on-error" => job.continue_on_error = r.boolean(value, &at),
            "container" => job.container = read_container(r, value, &at, false),
            "services" => job.services = read_services(r, value, &at),
            "env" => job.env = r.string_map(value, &at),
            "environment" => job.environment = read_environment(r, value, &at),
            "permissions" => job.permissions = read_permissions(r, value, &at),
            "concurrency" => job.concurrency = read_concurrency(r, value, &at),
            "outputs" => {
                job.outputs = match r.string_map(value, &at) {
                    Some(OrExpr::Value(map)) => Some(map),
                    _ => None,
                }
            }
            "defaults" => job.defaults = read_defaults(r, value, &at),
            "steps" => job.steps = step::read_steps(r, value, &at, "jobs.*.steps[]"),
            "snapshot" => job.snapshot = read_snapshot(r, value, &at),
            "uses" => job.uses = read_workflow_ref(r, value, &at),
            "with" => job.with = read_typed_map(r, value, &at),
            _ => job.secrets = read_job_secrets(r, value, &at),
        }
    }
    let misspelt_runs_on = entries.iter().any(|(k, _)| {
        k.as_str()
            .is_some_and(|k| k != "runs-on" && closest(k, ["runs-on"]).is_some())
    });
    if !is_call && job.runs_on.is_none() && !misspelt_runs_on && !has_key(entries, "runs-on") {
        // At the mapping that lacks the key, where GitHub reports a missing property.
        r.error(
            node.span.start,
            format!(
                "job '{}' needs 'runs-on' (or 'uses' to call a reusable workflow)",
                job.id.value
            ),
        );
    }
    Some(job)
}

fn has_key(entries: &[(Node, Node)], key: &str) -> bool {
    entries.iter().any(|(k, _)| k.as_str() == Some(key))
}

fn read_runs_on(r: &mut Reader, node: &Node, loc: &Loc) -> Option<RunsOn> {
    let mut runs_on = RunsOn {
        labels: Vec::new(),
        group: None,
        span: node.span,
    };
    match &node.value {
        YamlValue::Mapping(entries) => {
            for (key, _, value) in r.fixed_entries(entries, loc) {
                let at = loc.key(key);
                if key == "group" {
                    runs_on.group = r.non_empty_string(value, &at);
                    if let Some(group) = &runs_on.group {
                        check_runner_group(r, group);
                    }
                } else {
                    runs_on.labels = r.string_list(value, &at);
                }
            }
            if runs_on.group.is_none() && runs_on.labels.is_empty() {
                r.error(
                    node.span.start,
                    format!("'{}' needs 'group' or 'labels'", loc.path),
                );
            }
        }
        _ => {
            runs_on.labels = r.string_list(node, loc);
            if runs_on.labels.is_empty() && node.as_sequence().is_some() {
                r.error(node.span.start, format!("'{}' lists no label", loc.path));
            }
        }
    }
    Some(runs_on)
}

/// GitHub's rule for `runs-on.group`: a bare group name, or one group named
/// with its owner's prefix (`org/`, `organization/`, `ent/`, `enterprise/`).
fn check_runner_group(r: &mut Reader, group: &Text) {
    if group.has_expression() {
        return;
    }
    let name = group.value.as_str();
    let mut parts = name.split('/');
    let (Some(owner), Some(rest)) = (parts.next(), parts.next()) else {
        return;
    };
    let problem = if parts.next().is_some()
        || !["org", "organization", "ent", "enterprise"].contains(&owner)
    {
        "a group name with '/' must be 'org/', 'organization/', 'ent/' or 'enterprise/' \
         followed by one group's name"
    } else if rest.is_empty() {
        "the group's name after the prefix is empty"
    } else {
        return;
    };
    r.error(
        group.span.start,
        format!("invalid runs-on group name '{name}': {problem}"),
    );
}

fn read_strategy(r: &mut Reader, node: &Node, loc: &Loc) -> Option<OrExpr<Strategy>> {
    if r.is_expression_here(node, loc) {
        return r.string(node, loc).map(OrExpr::Expr);
    }
    let entries = r.mapping(node, loc)?;
    let mut strategy = Strategy {
        fail_fast: None,
        max_parallel: None,
        matrix: None,
    };
    for (key, _, value) in r.fixed_entries(entries, loc) {
        let at = loc.key(key);
        match key {
            "fail-fast" => strategy.fail_fast = r.boolean(value, &at),
            "max-parallel" => strategy.max_parallel = r.number(value, &at),
            _ => {
                check_matrix(r, value, &at);
                strategy.matrix = Some(value.clone());
            }
        }
    }
    Some(OrExpr::Value(strategy))
}

/// Checks the shape of a matrix: vectors are sequences (or expressions),
/// `include` and `exclude` are sequences of mappings (or expressions).
fn check_matrix(r: &mut Reader, node: &Node, loc: &Loc) {
    if r.is_expression_here(node, loc) {
        r.check_expressions(node, loc, false);
        return;
    }
    let Some(entries) = r.mapping(node, loc) else {
        return;
    };
    // Whether the matrix has a combination to run, as GitHub decides it before any
    // expression is evaluated: a vector (or a key computed by an expression) or a
    // non-empty `include`.
    let mut has_vector = false;
    for (key, value) in entries {
        let Some(name) = r.loose_key(key, loc) else {
            has_vector = true;
            continue;
        };
        let filter = name.value == "include" || name.value == "exclude";
        let at = if filter {
            loc.key(&name.value)
        } else {
            loc.any_key(&name.value)
        };
        if r.is_expression_here(value, &at) {
            has_vector |= name.value != "exclude";
            r.check_expressions(value, &at, false);
            continue;
        }
        let Some(items) = r.sequence(value, &at) else {
            // Reported as it is; saying also that nothing runs would add noise.
            has_vector = true;
            continue;
        };
        match name.value.as_str() {
            "include" => has_vector |= !items.is_empty(),
            "exclude" => {}
            vector if items.is_empty() => {
                has_vector = true;
                r.error(
                    value.span.start,
                    format!("matrix vector '{vector}' has no values, so the job would never run"),
                );
            }
            _ => has_vector = true,
        }
        for (i, item) in items.iter().enumerate() {
            let item_loc = at.item(i);
            if filter && !r.is_expression_here(item, &item_loc) && item.as_mapping().is_none() {
                r.wrong_type(item, &item_loc, "a mapping");
                continue;
            }
            r.check_expressions_deep(item, &item_loc);
        }
    }
    if !has_vector {
        r.error(
            node.span.start,
            format!(
                "'{}' defines no vector and no 'include' entry, so it has no combination to run",
                loc.path
            ),
        );
    }
}

/// A job's `container` (`service: false`) or one of its `services`.
fn read_container(r: &mut Reader, node: &Node, loc: &Loc, service: bool) -> Option<Container> {
    let mut container = Container {
        span: node.span,
        ..Container::default()
    };
    if node.as_mapping().is_none() {
        // `container: node:20` names the image; an empty string means no
        // container, as on GitHub.
        container.image = r.string(node, loc);
        check_image(r, node, loc, container.image.as_ref(), service);
        return Some(container);
    }
    let entries = r.mapping(node, loc)?;
    for (key, _, value) in r.fixed_entries(entries, loc) {
        let at = loc.key(key);
        match key {
            "image" => container.image = r.string(value, &at),
            "options" => container.options = r.string(value, &at),
            "env" => container.env = r.string_map(value, &at),
            "ports" => container.ports = r.sequence_of_strings(value, &at),
            "volumes" => container.volumes = r.sequence_of_strings(value, &at),
            "credentials" => container.credentials = read_credentials(r, value, &at),
            "entrypoint" => container.entrypoint = r.string(value, &at),
            _ => container.command = r.string(value, &at),
        }
    }
    check_image(r, node, loc, container.image.as_ref(), service);
    Some(container)
}

/// GitHub's rule for an empty image, checked where no expression can fill it in: a job's
/// container may be empty (no container at all), unless written `docker://` with nothing
/// after it; a service always needs an image.
fn check_image(r: &mut Reader, node: &Node, loc: &Loc, image: Option<&Text>, service: bool) {
    if has_expression_anywhere(node) {
        return;
    }
    let written = image.map_or("", |i| i.value.as_str());
    let name = written.strip_prefix("docker://");
    if name.unwrap_or(written).is_empty() && (service || name.is_some()) {
        let what = if service { "service" } else { "container" };
        r.error(
            node.span.start,
            format!("'{}': the {what}'s image is empty", loc.path),
        );
    }
}

fn has_expression_anywhere(node: &Node) -> bool {
    match &node.value {
        YamlValue::String(s) => s.contains("${{"),
        YamlValue::Sequence(items) => items.iter().any(has_expression_anywhere),
        YamlValue::Mapping(entries) => entries
            .iter()
            .any(|(k, v)| has_expression_anywhere(k) || has_expression_anywhere(v)),
        _ => false,
    }
}

fn read_credentials(r: &mut Reader, node: &Node, loc: &Loc) -> Option<OrExpr<Credentials>> {
    if r.is_expression_here(node, loc) {
        return r.string(node, loc).map(OrExpr::Expr);
    }
    let entries = r.mapping(node, loc)?;
    let mut credentials = Credentials::default();
    for (key, _, value) in r.fixed_entries(entries, loc) {
        let text = r.non_empty_string(value, &loc.key(key));
        if key == "username" {
            credentials.username = text;
        } else {
            credentials.password = text;
        }
    }
    Some(OrExpr::Value(credentials))
}

fn read_services(r: &mut Reader, node: &Node, loc: &Loc) -> Option<OrExpr<Vec<(Text, Container)>>> {
    if r.is_expression_here(node, loc) {
        return r.string(node, loc).map(OrExpr::Expr);
    }
    let entries = r.mapping(node, loc)?;
    let mut services = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let Some(name) = r.loose_key(key, loc) else {
            continue;
        };
        let at = loc.any_key(&name.value);
        if let Some(container) = read_container(r, value, &at, true) {
            services.push((name, container));
        }
    }
    Some(OrExpr::Value(services))
}

fn read_environment(r: &mut Reader, node: &Node, loc: &Loc) -> Option<Environment> {
    if node.as_mapping().is_none() {
        let name = r.string(node, loc)?;
        return Some(Environment {
            name,
            url: None,
            deployment: None,
        });
    }
    let entries = r.mapping(node, loc)?;
    let mut name = None;
    let mut url = None;
    let mut deployment = None;
    for (key, _, value) in r.fixed_entries(entries, loc) {
        let at = loc.key(key);
        match key {
            "name" => name = r.string(value, &at),
            "url" => url = r.string(value, &at),
            _ => deployment = r.boolean(value, &at),
        }
    }
    if !has_key(entries, "name") {
        r.error(node.span.start, format!("'{}' needs 'name'", loc.path));
    }
    Some(Environment {
        name: name?,
        url,
        deployment,
    })
}

fn read_snapshot(r: &mut Reader, node: &Node, loc: &Loc) -> Option<Snapshot> {
    if node.as_mapping().is_none() {
        let image_name = r.non_empty_string(node, loc)?;
        return Some(Snapshot {
            image_name,
            condition: None,
            version: None,
        });
    }
    let entries = r.mapping(node, loc)?;
    let mut image_name = None;
    let mut condition = None;
    let mut version = None;
    for (key, _, value) in r.fixed_entries(entries, loc) {
        let at = loc.key(key);
        match key {
            "image-name" => image_name = r.non_empty_string(value, &at),
            "if" => condition = r.condition(value, &at),
            _ => version = r.non_empty_string(value, &at),
        }
    }
    if let Some(v) = version.as_ref().filter(|v| !v.has_expression()) {
        // GitHub takes a major version and a wildcard: `2.*`.
        let valid = v.value.split_once('.').is_some_and(|(major, rest)| {
            rest == "*" && major.bytes().all(|b| b.is_ascii_digit()) && major.parse::<i32>().is_ok()
        });
        if !valid {
            // At the snapshot mapping, where GitHub reports it.
            r.error(
                node.span.start,
                format!(
                    "'{}.version': expected a major version and '.*' (such as '2.*'), found '{}'",
                    loc.path, v.value
                ),
            );
        }
    }
    if !has_key(entries, "image-name") {
        r.error(
            node.span.start,
            format!("'{}' needs 'image-name'", loc.path),
        );
    }
    Some(Snapshot {
        image_name: image_name?,
        condition,
        version,
    })
}

/// `jobs.<id>.uses`: a local path or `owner/repo/path@ref` (Gitea and
/// Forgejo also take a full URL with `@ref`).
fn read_workflow_ref(r: &mut Reader, node: &Node, loc: &Loc) -> Option<Text> {
    let text = r.non_empty_string(node, loc)?;
    let value = text.value.as_str();
    let local = value.starts_with("./");
    let remote = value.contains('@') && value.contains('/');
    if !local && !remote {
        r.error(
            node.span.start,
            format!("invalid reusable workflow reference '{value}': expected './path/to/workflow.yml' or 'owner/repo/path/to/workflow.yml@ref'"),
        );
    } else if !value.contains("://") && !text.has_expression() {
        // A full URL is the forges' extension, checked by whoever fetches it.
        if let Err(message) = crate::plan::call::WorkflowRef::parse(value) {
            r.error(
                node.span.start,
                format!("invalid reusable workflow reference {message}"),
            );
        }
    }
    Some(text)
}

/// `with` of a reusable workflow: values keep their YAML types.
fn read_typed_map(r: &mut Reader, node: &Node, loc: &Loc) -> Vec<(Text, Spanned<Scalar>)> {
    let Some(entries) = r.mapping(node, loc) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|(key, value)| {
            let name = r.loose_key(key, loc)?;
            let scalar = r.scalar(value, &loc.any_key(&name.value))?;
            Some((name, scalar))
        })
        .collect()
}

fn read_job_secrets(r: &mut Reader, node: &Node, loc: &Loc) -> Option<JobSecrets> {
    if let Some(s) = node.as_str() {
        if s == "inherit" {
            return Some(JobSecrets::Inherit(node.span));
        }
        let hint = suggest_hint(s, ["inherit"]);
        r.error(
            node.span.start,
            format!(
                "'{}': expected 'inherit' or a mapping of secrets, found '{s}'{hint}",
                loc.path
            ),
        );
        return None;
    }
    Some(JobSecrets::Map(read_typed_map(r, node, loc)))
}

/// The jobs as [`JobGraph`] sees them: ids and needs with their positions.
pub(crate) fn graph_jobs(jobs: &[Job]) -> Vec<GraphJob> {
    jobs.iter()
        .map(|job| GraphJob {
            id: job.id.value.clone(),
            span: job.id.span,
            needs: job
                .needs
                .iter()
                .map(|need| Need {
                    id: need.value.clone(),
                    span: need.span,
                })
                .collect(),
        })
        .collect()
}

/// Checks `needs` across jobs with [`JobGraph`]: every name is a job (with a "did you mean"
/// for near misses), and no job waits on itself, directly or through others.
///
/// `jobs_span` is where the `jobs` mapping starts: GitHub reports there that no job can
/// start because every one has `needs`.
pub(crate) fn check_needs(r: &mut Reader, jobs: &[Job], jobs_span: Span) {
    let Err(errors) = JobGraph::build("", graph_jobs(jobs)) else {
        return;
    };
    for error in errors {
        if error.message == NO_JOB_WITHOUT_NEEDS {
            r.error(jobs_span.start, error.message);
            continue;
        }
        let unknown = jobs
            .iter()
            .flat_map(|job| job.needs.iter().map(move |need| (job, need)))
            .find(|(_, need)| need.span == error.span)
            .filter(|(_, need)| {
                !jobs
                    .iter()
                    .any(|j| j.id.value.eq_ignore_ascii_case(&need.value))
            });
        let hint = match unknown {
            Some((job, need)) => suggest_hint(
                &need.value,
                jobs.iter()
                    .map(|j| j.id.value.as_str())
                    .filter(|id| *id != job.id.value),
            ),
            None => String::new(),
        };
        let message = if hint.is_empty() {
            error.message
        } else {
            format!("{}{hint}", error.message.trim_end_matches('.'))
        };
        r.error(error.span.start, message);
    }
}
