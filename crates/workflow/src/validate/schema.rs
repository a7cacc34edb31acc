//! Hearth's encoding of GitHub's workflow and `action.yml` schemas.
//!
//! GitHub describes both file formats in a "template schema" (published in
//! `actions/languageservices`). Hearth does not read that file at run time;
//! instead this module restates the parts validation needs as plain tables:
//!
//! - [`Schema::mappings`]: for every mapping with fixed keys, the keys it may
//!   hold, addressed by a *schema path*;
//! - [`Schema::contexts`]: for every path where expressions may appear, the
//!   named values and the extra functions allowed there;
//! - [`EVENTS`]: the events of `on:` with the keys and activity types each takes.
//!
//! A schema path names a place in the document: keys are joined with `.`,
//! `*` stands for any key of a free-form mapping (a job id, an env name) and
//! `[]` for any item of a sequence. `jobs.*.steps[].with.*` is the value of
//! any input of any step of any job; the root is the empty path.
//!
//! The loaders look every key list and context set up here, so these tables
//! *are* what Hearth validates against. The test `tests/validate_schema.rs`
//! checks them against GitHub's schema files, where those are available.
//!
//! Contexts are inherited: GitHub adds a key's contexts to those of the keys
//! around it, so `jobs.*.container.credentials.password` allows `secrets`
//! (from `credentials`) as well as `matrix` (from `container`). The tables
//! hold the result of that inheritance for every path.

/// Which names an expression may use at one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextSet {
    /// Context names such as `github` or `matrix`.
    pub named_values: &'static [&'static str],
    /// Functions beyond those allowed everywhere: the status functions
    /// (`success`, `failure`, `cancelled`, `always`) and `hashFiles`.
    pub functions: &'static [&'static str],
    /// Whether `success()` and `failure()` may name jobs (only in a job's `if:`).
    pub status_function_args: bool,
}

impl ContextSet {
    /// Parse options that allow exactly these names.
    pub fn parse_options(&self) -> hearth_expr::ParseOptions<'static> {
        hearth_expr::ParseOptions {
            named_values: Some(self.named_values),
            extra_functions: Some(self.functions),
            status_function_args: self.status_function_args,
        }
    }
}

/// One file format's tables.
#[derive(Debug)]
pub struct Schema {
    /// Mappings with fixed keys: schema path and the keys allowed there.
    pub mappings: &'static [(&'static str, &'static [&'static str])],
    /// Places that take expressions: schema path and what they may use.
    pub contexts: &'static [(&'static str, ContextSet)],
}

impl Schema {
    /// The keys a mapping at `path` may hold; `None` if the path is not a
    /// mapping with fixed keys.
    pub fn keys(&self, path: &str) -> Option<&'static [&'static str]> {
        self.mappings
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, keys)| *keys)
    }

    /// What expressions at `path` may use; `None` where no expression is
    /// allowed.
    pub fn contexts(&self, path: &str) -> Option<&'static ContextSet> {
        self.contexts
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, set)| set)
    }
}

const STATUS: [&str; 4] = ["always", "cancelled", "failure", "success"];

/// Workflow-level values: `run-name`, `concurrency`, `workflow_call` defaults.
const WORKFLOW_LEVEL: ContextSet = ContextSet {
    named_values: &["github", "inputs", "vars"],
    functions: &[],
    status_function_args: false,
};
/// The workflow's `env`.
const WORKFLOW_ENV: ContextSet = ContextSet {
    named_values: &["github", "inputs", "vars", "secrets"],
    functions: &[],
    status_function_args: false,
};
/// `on.workflow_call.outputs.*.value`, computed from the jobs' outputs.
const CALL_OUTPUT: ContextSet = ContextSet {
    named_values: &["github", "inputs", "vars", "jobs"],
    functions: &[],
    status_function_args: false,
};
/// A job's `if`, evaluated before the job has a matrix or a runner.
const JOB_IF: ContextSet = ContextSet {
    named_values: &["github", "inputs", "vars", "needs"],
    functions: &STATUS,
    status_function_args: true,
};
/// A job's `strategy`, which produces the matrix and so cannot use it.
const STRATEGY: ContextSet = ContextSet {
    named_values: &["github", "inputs", "vars", "needs"],
    functions: &[],
    status_function_args: false,
};
/// Job keys read once the matrix is known, before the job runs.
const JOB: ContextSet = ContextSet {
    named_values: &["github", "inputs", "vars", "needs", "strategy", "matrix"],
    functions: &[],
    status_function_args: false,
};
/// A job's `env` and the secrets passed to a reusable workflow.
const JOB_SECRETS: ContextSet = ContextSet {
    named_values: &[
        "github", "inputs", "vars", "needs", "strategy", "matrix", "secrets",
    ],
    functions: &[],
    status_function_args: false,
};
/// `jobs.*.defaults.run`.
const JOB_DEFAULTS_RUN: ContextSet = ContextSet {
    named_values: &[
        "github", "inputs", "vars", "needs", "strategy", "matrix", "env",
    ],
    functions: &[],
    status_function_args: false,
};
/// Registry credentials of a job or service container.
const CREDENTIALS: ContextSet = ContextSet {
    named_values: &[
        "github", "inputs", "vars", "needs", "strategy", "matrix", "secrets", "env",
    ],
    functions: &[],
    status_function_args: false,
};
/// Values read on the runner: job outputs, container env.
const RUNNER: ContextSet = ContextSet {
    named_values: &[
        "github", "inputs", "vars", "needs", "strategy", "matrix", "secrets", "steps", "job",
        "runner", "env",
    ],
    functions: &[],
    status_function_args: false,
};
/// `jobs.*.environment.url`: like [`RUNNER`] but never secrets, since the
/// URL is shown publicly.
const RUNNER_NO_SECRETS: ContextSet = ContextSet {
    named_values: &[
        "github", "inputs", "vars", "needs", "strategy", "matrix", "steps", "job", "runner", "env",
    ],
    functions: &[],
    status_function_args: false,
};
/// Step keys of a workflow job.
const STEP: ContextSet = ContextSet {
    named_values: &[
        "github", "inputs", "vars", "needs", "strategy", "matrix", "secrets", "steps", "job",
        "runner", "env",
    ],
    functions: &["hashFiles"],
    status_function_args: false,
};
/// A step's `if`: no secrets, but the status functions.
const STEP_IF: ContextSet = ContextSet {
    named_values: &[
        "github", "inputs", "vars", "needs", "strategy", "matrix", "steps", "job", "runner", "env",
    ],
    functions: &["always", "cancelled", "failure", "success", "hashFiles"],
    status_function_args: false,
};

/// The workflow file format.
pub static WORKFLOW: Schema = Schema {
    mappings: WORKFLOW_MAPPINGS,
    contexts: WORKFLOW_CONTEXTS,
};

const PERMISSION_KEYS: &[&str] = &[
    "actions",
    "artifact-metadata",
    "attestations",
    "checks",
    "code-quality",
    "contents",
    "copilot-requests",
    "deployments",
    "discussions",
    "drives",
    "id-token",
    "issues",
    "models",
    "packages",
    "pages",
    "pull-requests",
    "repository-projects",
    "security-events",
    "statuses",
    "vulnerability-alerts",
];

/// Keys of a job: those of a job that runs steps and those of a job that
/// calls a reusable workflow. The loader tells the two apart.
pub const JOB_KEYS: &[&str] = &[
    "name",
    "needs",
    "if",
    "strategy",
    "runs-on",
    "timeout-minutes",
    "cancel-timeout-minutes",
    "continue-on-error",
    "container",
    "services",
    "env",
    "environment",
    "permissions",
    "concurrency",
    "outputs",
    "defaults",
    "steps",
    "snapshot",
    "uses",
    "with",
    "secrets",
];

/// Keys of a step, of every kind of step.
pub const STEP_KEYS: &[&str] = &[
    "name",
    "id",
    "if",
    "timeout-minutes",
    "run",
    "continue-on-error",
    "env",
    "working-directory",
    "shell",
    "background",
    "uses",
    "with",
    "wait",
    "wait-all",
    "cancel",
    "parallel",
];

const CONCURRENCY_KEYS: &[&str] = &["group", "cancel-in-progress", "queue"];
const RUN_DEFAULTS_KEYS: &[&str] = &["shell", "working-directory"];
const CREDENTIAL_KEYS: &[&str] = &["username", "password"];
const CONTAINER_KEYS: &[&str] = &["image", "options", "env", "ports", "volumes", "credentials"];
const SERVICE_KEYS: &[&str] = &[
    "image",
    "options",
    "env",
    "ports",
    "volumes",
    "credentials",
    "entrypoint",
    "command",
];

const WORKFLOW_MAPPINGS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "on",
            "name",
            "description",
            "run-name",
            "defaults",
            "env",
            "permissions",
            "concurrency",
            "jobs",
        ],
    ),
    ("concurrency", CONCURRENCY_KEYS),
    ("defaults", &["run"]),
    ("defaults.run", RUN_DEFAULTS_KEYS),
    ("permissions", PERMISSION_KEYS),
    ("jobs.*", JOB_KEYS),
    ("jobs.*.concurrency", CONCURRENCY_KEYS),
    ("jobs.*.container", CONTAINER_KEYS),
    ("jobs.*.container.credentials", CREDENTIAL_KEYS),
    ("jobs.*.defaults", &["run"]),
    ("jobs.*.defaults.run", RUN_DEFAULTS_KEYS),
    ("jobs.*.environment", &["name", "url", "deployment"]),
    ("jobs.*.permissions", PERMISSION_KEYS),
    ("jobs.*.runs-on", &["group", "labels"]),
    ("jobs.*.services.*", SERVICE_KEYS),
    ("jobs.*.services.*.credentials", CREDENTIAL_KEYS),
    ("jobs.*.snapshot", &["image-name", "if", "version"]),
    ("jobs.*.steps[]", STEP_KEYS),
    ("jobs.*.strategy", &["fail-fast", "max-parallel", "matrix"]),
    ("jobs.*.strategy.matrix", &["include", "exclude"]),
    ("on.schedule[]", &["cron", "timezone"]),
    ("on.workflow_call", &["inputs", "secrets", "outputs"]),
    (
        "on.workflow_call.inputs.*",
        &["description", "type", "required", "default"],
    ),
    ("on.workflow_call.outputs.*", &["description", "value"]),
    ("on.workflow_call.secrets.*", &["description", "required"]),
    ("on.workflow_dispatch", &["inputs"]),
    (
        "on.workflow_dispatch.inputs.*",
        &["description", "type", "required", "default", "options"],
    ),
    // The events of `on:` and their filters come from `EVENTS`; see
    // `event_keys_path`.
];

const WORKFLOW_CONTEXTS: &[(&str, ContextSet)] = &[
    ("run-name", WORKFLOW_LEVEL),
    ("concurrency", WORKFLOW_LEVEL),
    ("concurrency.group", WORKFLOW_LEVEL),
    ("concurrency.cancel-in-progress", WORKFLOW_LEVEL),
    ("concurrency.queue", WORKFLOW_LEVEL),
    ("env", WORKFLOW_ENV),
    ("env.*", WORKFLOW_ENV),
    ("on.workflow_call.inputs.*.default", WORKFLOW_LEVEL),
    ("on.workflow_call.outputs.*.value", CALL_OUTPUT),
    ("jobs.*.if", JOB_IF),
    ("jobs.*.name", JOB),
    ("jobs.*.strategy", STRATEGY),
    ("jobs.*.strategy.fail-fast", STRATEGY),
    ("jobs.*.strategy.max-parallel", STRATEGY),
    ("jobs.*.strategy.matrix", STRATEGY),
    ("jobs.*.strategy.matrix.*", STRATEGY),
    ("jobs.*.strategy.matrix.*[]", STRATEGY),
    ("jobs.*.strategy.matrix.include", STRATEGY),
    ("jobs.*.strategy.matrix.include[]", STRATEGY),
    ("jobs.*.strategy.matrix.include[].*", STRATEGY),
    ("jobs.*.strategy.matrix.exclude", STRATEGY),
    ("jobs.*.strategy.matrix.exclude[]", STRATEGY),
    ("jobs.*.strategy.matrix.exclude[].*", STRATEGY),
    ("jobs.*.runs-on", JOB),
    ("jobs.*.runs-on[]", JOB),
    ("jobs.*.runs-on.group", JOB),
    ("jobs.*.runs-on.labels", JOB),
    ("jobs.*.runs-on.labels[]", JOB),
    ("jobs.*.timeout-minutes", JOB),
    ("jobs.*.cancel-timeout-minutes", JOB),
    ("jobs.*.continue-on-error", JOB),
    ("jobs.*.concurrency", JOB),
    ("jobs.*.concurrency.group", JOB),
    ("jobs.*.concurrency.cancel-in-progress", JOB),
    ("jobs.*.concurrency.queue", JOB),
    ("jobs.*.environment", JOB),
    ("jobs.*.environment.name", JOB),
    ("jobs.*.environment.deployment", JOB),
    ("jobs.*.environment.url", RUNNER_NO_SECRETS),
    ("jobs.*.env", JOB_SECRETS),
    ("jobs.*.env.*", JOB_SECRETS),
    ("jobs.*.defaults.run", JOB_DEFAULTS_RUN),
    ("jobs.*.defaults.run.shell", JOB_DEFAULTS_RUN),
    ("jobs.*.defaults.run.working-directory", JOB_DEFAULTS_RUN),
    ("jobs.*.outputs.*", RUNNER),
    ("jobs.*.container", JOB),
    ("jobs.*.container.image", JOB),
    ("jobs.*.container.options", JOB),
    ("jobs.*.container.env", JOB),
    ("jobs.*.container.env.*", RUNNER),
    ("jobs.*.container.ports", JOB),
    ("jobs.*.container.ports[]", JOB),
    ("jobs.*.container.volumes", JOB),
    ("jobs.*.container.volumes[]", JOB),
    ("jobs.*.container.credentials", CREDENTIALS),
    ("jobs.*.container.credentials.username", CREDENTIALS),
    ("jobs.*.container.credentials.password", CREDENTIALS),
    ("jobs.*.services", JOB),
    ("jobs.*.services.*", JOB),
    ("jobs.*.services.*.image", JOB),
    ("jobs.*.services.*.options", JOB),
    ("jobs.*.services.*.entrypoint", JOB),
    ("jobs.*.services.*.command", JOB),
    ("jobs.*.services.*.env", JOB),
    ("jobs.*.services.*.env.*", RUNNER),
    ("jobs.*.services.*.ports", JOB),
    ("jobs.*.services.*.ports[]", JOB),
    ("jobs.*.services.*.volumes", JOB),
    ("jobs.*.services.*.volumes[]", JOB),
    ("jobs.*.services.*.credentials", CREDENTIALS),
    ("jobs.*.services.*.credentials.username", CREDENTIALS),
    ("jobs.*.services.*.credentials.password", CREDENTIALS),
    ("jobs.*.snapshot.if", JOB),
    ("jobs.*.with.*", JOB),
    ("jobs.*.secrets.*", JOB_SECRETS),
    ("jobs.*.steps[].if", STEP_IF),
    ("jobs.*.steps[].name", STEP),
    ("jobs.*.steps[].run", STEP),
    ("jobs.*.steps[].working-directory", STEP),
    ("jobs.*.steps[].env", STEP),
    ("jobs.*.steps[].env.*", STEP),
    ("jobs.*.steps[].with", STEP),
    ("jobs.*.steps[].with.*", STEP),
    ("jobs.*.steps[].continue-on-error", STEP),
    ("jobs.*.steps[].timeout-minutes", STEP),
];

/// An event of `on:`: its name, the keys its mapping may hold, and the
/// activity types its `types` may list (`None`: any non-empty string).
#[derive(Debug, Clone, Copy)]
pub struct EventSpec {
    /// The event name, e.g. `pull_request`.
    pub name: &'static str,
    /// Keys of the event's mapping.
    pub keys: &'static [&'static str],
    /// Allowed values of `types`, if the event has a fixed list.
    pub types: Option<&'static [&'static str]>,
}

const fn event(
    name: &'static str,
    keys: &'static [&'static str],
    types: Option<&'static [&'static str]>,
) -> EventSpec {
    EventSpec { name, keys, types }
}

const TYPES: &[&str] = &["types"];
const CREATED_EDITED_DELETED: &[&str] = &["created", "edited", "deleted"];
const PULL_REQUEST_KEYS: &[&str] = &[
    "types",
    "branches",
    "branches-ignore",
    "paths",
    "paths-ignore",
];
const PULL_REQUEST_TYPES: &[&str] = &[
    "assigned",
    "unassigned",
    "labeled",
    "unlabeled",
    "opened",
    "edited",
    "closed",
    "reopened",
    "synchronize",
    "converted_to_draft",
    "locked",
    "unlocked",
    "enqueued",
    "dequeued",
    "milestoned",
    "demilestoned",
    "ready_for_review",
    "review_requested",
    "review_request_removed",
    "auto_merge_enabled",
    "auto_merge_disabled",
    "stacked",
];

/// Every event a workflow may be triggered by, as GitHub's strict schema
/// lists them. `schedule`, `workflow_call` and `workflow_dispatch` have
/// their own shapes and are read by their own code.
pub static EVENTS: &[EventSpec] = &[
    event(
        "branch_protection_rule",
        TYPES,
        Some(CREATED_EDITED_DELETED),
    ),
    event(
        "check_run",
        TYPES,
        Some(&["completed", "created", "rerequested", "requested_action"]),
    ),
    event("check_suite", TYPES, Some(&["completed"])),
    event("create", &[], None),
    event("delete", &[], None),
    event("deployment", &[], None),
    event("deployment_status", &[], None),
    event(
        "discussion",
        TYPES,
        Some(&[
            "created",
            "edited",
            "deleted",
            "transferred",
            "pinned",
            "unpinned",
            "labeled",
            "unlabeled",
            "locked",
            "unlocked",
            "category_changed",
            "answered",
            "unanswered",
        ]),
    ),
    event("discussion_comment", TYPES, Some(CREATED_EDITED_DELETED)),
    event("fork", &[], None),
    event("gollum", &[], None),
    event(
        "image_version",
        &["types", "names", "versions"],
        Some(&["created", "ready", "deleted"]),
    ),
    event("issue_comment", TYPES, Some(CREATED_EDITED_DELETED)),
    event(
        "issues",
        TYPES,
        Some(&[
            "opened",
            "edited",
            "deleted",
            "transferred",
            "pinned",
            "unpinned",
            "closed",
            "reopened",
            "assigned",
            "unassigned",
            "labeled",
            "unlabeled",
            "locked",
            "unlocked",
            "milestoned",
            "demilestoned",
            "field_added",
            "field_removed",
            "typed",
            "untyped",
        ]),
    ),
    event("label", TYPES, Some(CREATED_EDITED_DELETED)),
    event(
        "merge_group",
        &["types", "branches", "branches-ignore"],
        Some(&["checks_requested"]),
    ),
    event(
        "milestone",
        TYPES,
        Some(&["created", "closed", "opened", "edited", "deleted"]),
    ),
    event("page_build", &[], None),
    event(
        "project",
        TYPES,
        Some(&["created", "closed", "reopened", "edited", "deleted"]),
    ),
    event(
        "project_card",
        TYPES,
        Some(&["created", "moved", "converted", "edited", "deleted"]),
    ),
    event(
        "project_column",
        TYPES,
        Some(&["created", "updated", "moved", "deleted"]),
    ),
    event("public", &[], None),
    event("pull_request", PULL_REQUEST_KEYS, Some(PULL_REQUEST_TYPES)),
    event("pull_request_comment", TYPES, Some(CREATED_EDITED_DELETED)),
    event(
        "pull_request_review",
        TYPES,
        Some(&["submitted", "edited", "dismissed"]),
    ),
    event(
        "pull_request_review_comment",
        TYPES,
        Some(CREATED_EDITED_DELETED),
    ),
    event(
        "pull_request_target",
        PULL_REQUEST_KEYS,
        Some(PULL_REQUEST_TYPES),
    ),
    event(
        "push",
        &[
            "branches",
            "branches-ignore",
            "tags",
            "tags-ignore",
            "paths",
            "paths-ignore",
        ],
        None,
    ),
    event("registry_package", TYPES, Some(&["published", "updated"])),
    event(
        "release",
        TYPES,
        Some(&[
            "published",
            "unpublished",
            "created",
            "edited",
            "deleted",
            "prereleased",
            "released",
        ]),
    ),
    event("repository_dispatch", TYPES, None),
    event("schedule", &[], None),
    event("status", &[], None),
    event("watch", TYPES, Some(&["started"])),
    event("workflow_call", &["inputs", "secrets", "outputs"], None),
    event("workflow_dispatch", &["inputs"], None),
    event(
        "workflow_run",
        &["types", "workflows", "branches", "branches-ignore"],
        Some(&["requested", "completed", "in_progress"]),
    ),
];

/// The event named `name`, if GitHub knows it.
pub fn event_spec(name: &str) -> Option<&'static EventSpec> {
    EVENTS.iter().find(|e| e.name == name)
}

/// The `action.yml` file format.
pub static ACTION: Schema = Schema {
    mappings: ACTION_MAPPINGS,
    contexts: ACTION_CONTEXTS,
};

/// Keys of `runs`, for every kind of action; the loader checks which fit
/// the action's `using`.
pub const RUNS_KEYS: &[&str] = &[
    "using",
    "main",
    "pre",
    "pre-if",
    "post",
    "post-if",
    "image",
    "entrypoint",
    "args",
    "env",
    "pre-entrypoint",
    "post-entrypoint",
    "steps",
];

const ACTION_MAPPINGS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "name",
            "author",
            "description",
            "inputs",
            "outputs",
            "runs",
            "branding",
        ],
    ),
    (
        "inputs.*",
        &["description", "required", "default", "deprecationMessage"],
    ),
    ("outputs.*", &["description", "value"]),
    ("runs", RUNS_KEYS),
    (
        "runs.steps[]",
        &[
            "name",
            "id",
            "if",
            "run",
            "shell",
            "uses",
            "with",
            "env",
            "continue-on-error",
            "working-directory",
        ],
    ),
    ("branding", &["icon", "color"]),
];

/// Steps of a composite action: like a workflow step, without `vars`,
/// `needs` or `secrets`, which an action never sees.
const COMPOSITE_STEP: ContextSet = ContextSet {
    named_values: &[
        "github", "inputs", "strategy", "matrix", "steps", "job", "runner", "env",
    ],
    functions: &["hashFiles"],
    status_function_args: false,
};
const COMPOSITE_STEP_IF: ContextSet = ContextSet {
    named_values: COMPOSITE_STEP.named_values,
    functions: &["always", "cancelled", "failure", "success", "hashFiles"],
    status_function_args: false,
};
/// `pre-if` and `post-if` of a JavaScript or Docker action.
const RUNS_IF: ContextSet = ContextSet {
    named_values: &[
        "runner", "github", "job", "strategy", "matrix", "env", "inputs",
    ],
    functions: &["always", "cancelled", "failure", "success", "hashFiles"],
    status_function_args: false,
};
/// A Docker action's `args` and `env`, filled in from the inputs only.
const DOCKER_INPUTS: ContextSet = ContextSet {
    named_values: &["inputs"],
    functions: &[],
    status_function_args: false,
};

const ACTION_CONTEXTS: &[(&str, ContextSet)] = &[
    (
        "inputs.*.default",
        ContextSet {
            named_values: &["github", "strategy", "matrix", "job", "runner"],
            functions: &["hashFiles"],
            status_function_args: false,
        },
    ),
    (
        "outputs.*.value",
        ContextSet {
            named_values: &[
                "github", "strategy", "matrix", "steps", "inputs", "job", "runner", "env",
            ],
            functions: &[],
            status_function_args: false,
        },
    ),
    ("runs.pre-if", RUNS_IF),
    ("runs.post-if", RUNS_IF),
    ("runs.args[]", DOCKER_INPUTS),
    ("runs.env", DOCKER_INPUTS),
    ("runs.env.*", DOCKER_INPUTS),
    ("runs.steps[].if", COMPOSITE_STEP_IF),
    ("runs.steps[].name", COMPOSITE_STEP),
    ("runs.steps[].run", COMPOSITE_STEP),
    ("runs.steps[].shell", COMPOSITE_STEP),
    ("runs.steps[].working-directory", COMPOSITE_STEP),
    ("runs.steps[].env", COMPOSITE_STEP),
    ("runs.steps[].env.*", COMPOSITE_STEP),
    ("runs.steps[].with", COMPOSITE_STEP),
    ("runs.steps[].with.*", COMPOSITE_STEP),
    ("runs.steps[].continue-on-error", COMPOSITE_STEP),
];
