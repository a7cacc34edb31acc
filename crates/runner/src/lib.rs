//! The runner core as a library: everything `hearth exec` and `hearth daemon` do besides
//! parsing their command lines.
//!
//! - [`route`]: `Backends`, which sends each job to the backend of its label's scheme.
//! - [`labels`]: the forges' `name:scheme:args` labels, act's `-P`, Gitea's matching rule.
//! - [`config`] and [`runner_file`]: act_runner's `config.yaml` and `.runner`.
//! - [`exec`]: running the workflows an event triggers locally (the scheduler and the console
//!   and JSON sinks).
//! - [`daemon`]: taking tasks from a forge, running them and reporting them.
//! - [`actions`]: actions of other repositories, fetched with `git`.
//! - [`local_event`], [`git`], [`workflow_files`]: the local repository and its workflows.
//! - [`register`]: registering with a forge.
//! - [`system`]: the host name and the signal counter.

pub mod action_pull;
pub mod actions;
pub mod cache;
pub mod config;
pub mod daemon;
pub mod doctor;
pub mod exec;
pub mod git;
pub mod job_docker_config;
pub mod labels;
pub mod local_event;
pub mod proxy;
pub mod register;
pub mod route;
pub mod runner_file;
pub mod system;
pub mod trust;
pub mod workflow_files;
