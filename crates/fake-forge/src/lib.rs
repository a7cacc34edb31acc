//! A fake Gitea/Forgejo Actions server — only the runner protocol (`/api/actions/`, Connect
//! unary, binary protobuf) — for Hearth's integration tests and benchmarks. It follows
//! `shared/spec/forge-protocol.md`, quirks included: Gitea's `unknown`-wrapped errors (or
//! Forgejo's real Connect codes), the `tasks_version` shortcut, UpdateTask's cancellation
//! channel and output rules, UpdateLog's ack rules (an empty `no_more` never archives on
//! Gitea ≤ 1.26.1).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Duration;
//! use hearth_fake_forge::{FakeForge, Options, TaskSpec};
//!
//! let forge = FakeForge::start(Options::gitea().with_registration_token("REG")).await?;
//! let job = forge.queue_task(
//!     TaskSpec::new("on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n")
//!         .with_secret("API_KEY", "s3cret")
//!         .with_context(serde_json::json!({ "event_name": "workflow_dispatch" })),
//! );
//! // ... run a runner against forge.url() ...
//! let task = forge.wait_for_task_done(job, Duration::from_secs(30)).await.unwrap();
//! let lines = forge.log_lines(job);
//! # Ok(()) }
//! ```
//!
//! Plain HTTP/1.1 by default. `Options::gitea().with_tls(Tls::SelfSigned)` serves `https://`
//! with a certificate for `127.0.0.1`/`localhost` made at start (or the test's own with
//! [`Tls::Pem`]), HTTP/2 or HTTP/1.1 as the client's ALPN asks; [`FakeForge::certificate_pem`]
//! gives the certificate for a client's CA file, and [`RequestRecord::http_version`] tells
//! which version each request came over.
//!
//! Not served: the JSON codec (`application/json` gets the 415 connect-go sends for a codec
//! it lacks), compressed bodies, Forgejo's FetchSingleTask and request keys, the
//! `cancelling` state, server timers (use [`FakeForge::fail_as_zombie`]).
//!
//! The `fake-forge` binary (for shell benchmarks) serves until SIGINT/SIGTERM:
//! `fake-forge [--host ADDR] --port P --token REG [--flavour gitea|forgejo] [--tasks N --payload FILE]
//! [--stats-file F]`. It prints `listening on http://127.0.0.1:P` (or the `--host`
//! address) once ready. Its stats (also
//! served at any time as `GET /_fake/stats`, and written to `--stats-file` on exit) are JSON:
//! `{"requests": {"FetchTask": n, ...}, "jobs_total", "jobs_done", "jobs": [{"job_id",
//! "status", "task_id", "runner_id", "final_result_reported", "log_rows", "log_archived",
//! "outputs"}], "tasks_version", "queue_lookups", "runners"}`.

pub mod context;
mod error;
mod faults;
mod forge;
mod git_http;
mod method;
mod options;
mod rpc;
pub mod runner;
mod server;
mod state;
mod stats;
mod status;
mod task_spec;
mod tls;
mod view;

pub use error::Code;
pub use faults::{Fault, FaultTiming};
pub use forge::{FakeForge, WaitTimeout};
pub use method::Method;
pub use options::{Flavour, LogRules, Options, Tls};
pub use status::Status;
pub use task_spec::{ContextSpec, NeedSpec, TaskSpec};
pub use view::{
    GitRequest, HttpVersion, JobId, JobView, LogRecord, RequestRecord, RunnerInfo, StepView,
    TaskView,
};
