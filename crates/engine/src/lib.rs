//! The job engine: runs one job of a workflow on a backend and reports what happens to sinks.
//!
//! It knows nothing of forges or Docker. Pieces so far:
//!
//! - Events go to sinks through `hearth_events` (what a job reports and the
//!   [`hearth_events::EventSink`] trait).
//! - [`mask`]: the streaming secret masker every line passes through before any sink sees it.
//! - [`commands`]: workflow commands (`::add-mask::`, `::group::`, `::error file=...::`, ...)
//!   recognised in a step's output.
//! - [`matchers`]: problem matchers (`::add-matcher::`): their files, and output lines matched
//!   into annotations.
//! - [`env_files`]: the files a step writes to talk back (`GITHUB_ENV`, `GITHUB_OUTPUT`,
//!   `GITHUB_PATH`, `GITHUB_STATE`).
//! - [`shell`]: a `run:` step's `shell:` as GitHub's command line, script extension and fix-ups.
//! - [`variables`]: the `GITHUB_*` / `RUNNER_*` variables derived from the contexts.

pub mod commands;
pub mod env_files;
pub mod job;
pub mod mask;
pub mod matchers;
pub mod shell;
pub mod variables;
pub mod workspace_files;
