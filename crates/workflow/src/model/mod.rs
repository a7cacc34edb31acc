//! Typed models of workflow files and `action.yml`, loaded from the
//! positioned YAML tree with every problem reported at `file:line:col`.
//!
//! ```
//! use hearth_workflow::model::Workflow;
//!
//! let source = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make\n";
//! let workflow = Workflow::parse(source, "ci.yml").unwrap();
//! assert_eq!(workflow.jobs[0].id.value, "build");
//!
//! let errors = Workflow::parse("on: push\njobs:\n  build:\n    runs_on: x\n", "ci.yml").unwrap_err();
//! assert_eq!(
//!     errors.to_string(),
//!     "ci.yml:4:5: error: unknown key 'runs_on' in job 'build'; did you mean 'runs-on'?"
//! );
//! ```

mod action;
pub mod common;
mod cron;
mod job;
mod step;
mod trigger;
mod workflow;

pub use action::{Action, ActionInput, ActionOutput, Branding, Runs};
pub use common::{is_insert_directive, Env, OrExpr, Scalar, Spanned, StringMap, Text};
pub(crate) use job::graph_jobs;
pub use job::{Container, Credentials, Environment, Job, JobSecrets, RunsOn, Snapshot, Strategy};
pub use step::{ActionRefError, RemoteActionRef, Step, StepKind};
pub use trigger::{
    CallInput, CallOutput, CallSecret, DispatchInput, Event, EventConfig, EventFilters, InputType,
    Schedule, Triggers, WorkflowCall, WorkflowDispatch,
};
pub use workflow::{
    Concurrency, Defaults, PermissionLevel, Permissions, RunDefaults, Workflow, MAX_FILE_LENGTH,
};
