//! [`FakeForge`]: the handle tests hold — start, queue jobs, steer, inspect, inject faults.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::context;
use crate::faults::Fault;
use crate::method::Method;
use crate::options::{Flavour, LogRules, Options};
use crate::server::{listen, Listening, Shared};
use crate::state::{now, JobRecord, State, TokenState};
use crate::status::Status;
use crate::task_spec::{payload_facts, ContextSpec, TaskSpec};
use crate::tls::ServerTls;
use crate::view::{JobId, JobView, LogRecord, RequestRecord, RunnerInfo, TaskView};

/// A fake Gitea/Forgejo serving the runner protocol on 127.0.0.1. Dropping it stops the
/// server (its tasks end on the runtime it was started on).
pub struct FakeForge {
    shared: Arc<Shared>,
    addr: SocketAddr,
    flavour: Flavour,
    /// Set in HTTPS mode; kept so the server comes back up with the same certificate.
    tls: Option<ServerTls>,
    listening: Mutex<Option<Listening>>,
}

/// A wait ran out of time; carries what was last seen, for the test's failure message.
#[derive(Debug, Clone)]
pub struct WaitTimeout {
    pub waited: Duration,
    pub last_seen: Option<JobView>,
}

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?}; last seen: {:?}",
            self.waited, self.last_seen
        )
    }
}

impl std::error::Error for WaitTimeout {}

impl FakeForge {
    /// Starts serving. Must be called inside a tokio runtime. Fails if the port is taken or
    /// the TLS certificate or key of [`Options::tls`] is unusable.
    pub async fn start(options: Options) -> io::Result<FakeForge> {
        let host = options.host.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let addr = SocketAddr::from((host, options.port.unwrap_or(0)));
        let tls = options.tls.as_ref().map(ServerTls::new).transpose()?;
        // The URL is only known once bound; the state is filled in right after.
        let shared = Arc::new(Shared::new(State::new(&options, String::new())));
        let (addr, listening) =
            listen(shared.clone(), addr, tls.as_ref().map(ServerTls::acceptor)).await?;
        let forge = FakeForge {
            shared,
            addr,
            flavour: options.flavour,
            tls,
            listening: Mutex::new(Some(listening)),
        };
        forge.shared.state().server_url = forge.url();
        Ok(forge)
    }

    /// The instance URL a runner registers with (no trailing slash): `https://127.0.0.1:P`
    /// in HTTPS mode, `http://127.0.0.1:P` otherwise.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The certificate chain served in HTTPS mode (PEM), for a test's CA file; `None` over
    /// plain HTTP.
    pub fn certificate_pem(&self) -> Option<String> {
        self.tls
            .as_ref()
            .map(|tls| tls.certificate_pem().to_string())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn flavour(&self) -> Flavour {
        self.flavour
    }

    // ---- configuration -------------------------------------------------------------------

    /// Accepts `token` for Register (reusable until invalidated).
    pub fn add_registration_token(&self, token: &str) {
        self.change(|s| {
            s.registration_tokens
                .insert(token.to_string(), TokenState::Active);
        });
    }

    /// Makes `token` answer Gitea's "has been invalidated, please use the latest one", as
    /// after regenerating the scope's token.
    pub fn invalidate_registration_token(&self, token: &str) {
        self.change(|s| {
            s.registration_tokens
                .insert(token.to_string(), TokenState::Invalidated);
        });
    }

    /// The `X-Gitea-Actions-Capabilities` header of Declare responses (`None`: no header).
    pub fn set_declare_capabilities(&self, capabilities: Option<&str>) {
        self.change(|s| s.declare_capabilities = capabilities.map(str::to_string));
    }

    /// Plays a server without Declare (HTTP 404, read as `unimplemented`).
    pub fn set_declare_unimplemented(&self, unimplemented: bool) {
        self.change(|s| s.declare_unimplemented = unimplemented);
    }

    pub fn set_log_rules(&self, rules: LogRules) {
        self.change(|s| s.log_rules = rules);
    }

    // ---- jobs ----------------------------------------------------------------------------

    /// Queues a job (status waiting) and bumps `tasks_version`, as Gitea does when a job
    /// becomes waiting. Jobs are picked oldest first.
    pub fn queue_task(&self, spec: TaskSpec) -> JobId {
        let facts = payload_facts(&spec.payload_yaml);
        self.change(|s| {
            let id = s.new_job_id();
            let context = match spec.context {
                ContextSpec::GiteaDefaults(overrides) => {
                    let mut ctx = context::gitea_context(&s.server_url, id, &facts.job_key);
                    context::merge(&mut ctx, overrides);
                    ctx
                }
                ContextSpec::Exact(ctx) => ctx,
            };
            s.jobs.insert(
                id,
                JobRecord {
                    id,
                    // One run per job: the fake has no multi-job runs.
                    run_id: id,
                    payload: spec.payload_yaml.into_bytes(),
                    job_key: facts.job_key.clone(),
                    context,
                    secrets: spec.secrets,
                    vars: spec.vars,
                    needs: spec.needs,
                    runs_on: spec.runs_on.unwrap_or(facts.runs_on),
                    step_count: spec.step_count.unwrap_or(facts.step_count),
                    status: Status::Waiting,
                    task: None,
                },
            );
            s.tasks_version += 1;
            JobId(id)
        })
    }

    /// Bumps `tasks_version` without queueing (as Gitea does on other events).
    pub fn bump_tasks_version(&self) {
        self.change(|s| s.tasks_version += 1);
    }

    /// Cancels the job as a user would: a waiting job is never handed out; a running task
    /// ends now (unfinished steps cancelled), the next UpdateTask reply says CANCELLED and
    /// the runner's later reports are no longer written. `false` if the job is unknown or
    /// already done.
    pub fn cancel_task(&self, job: JobId) -> bool {
        self.stop_job(job, Status::Cancelled)
    }

    /// Ends a running task as the zombie/endless reaper does: the next UpdateTask reply says
    /// FAILURE.
    pub fn fail_as_zombie(&self, job: JobId) -> bool {
        self.stop_job(job, Status::Failure)
    }

    fn stop_job(&self, job: JobId, status: Status) -> bool {
        self.change(|s| {
            let Some(record) = s.jobs.get_mut(&job.0) else {
                return false;
            };
            if record.status.is_done() {
                return false;
            }
            record.status = status;
            // Gitea's StopTask: the task and its unfinished steps take the status.
            if let Some(task) = record.task.as_mut() {
                let stopped = now();
                task.status = status;
                task.stopped_at = Some(stopped);
                for step in task.steps.iter_mut().filter(|s| !s.status.is_done()) {
                    step.status = status;
                    step.started_at.get_or_insert(stopped);
                    step.stopped_at = Some(stopped);
                }
            }
            true
        })
    }

    /// Deletes a runner as from the web UI: its credentials become "unregistered runner".
    pub fn delete_runner(&self, runner_id: i64) -> bool {
        self.change(|s| s.runners.remove(&runner_id).is_some())
    }

    // ---- inspection ----------------------------------------------------------------------

    pub fn runners(&self) -> Vec<RunnerInfo> {
        self.shared.state().runner_info()
    }

    pub fn job(&self, job: JobId) -> Option<JobView> {
        self.shared.state().job_view(job)
    }

    pub fn jobs(&self) -> Vec<JobView> {
        self.shared
            .state()
            .jobs
            .values()
            .map(JobRecord::view)
            .collect()
    }

    /// The job's task, once a runner picked it.
    pub fn task(&self, job: JobId) -> Option<TaskView> {
        self.job(job).and_then(|j| j.task)
    }

    /// Every stored row of the job's log, in order.
    pub fn log_rows(&self, job: JobId) -> Vec<LogRecord> {
        let state = self.shared.state();
        state
            .jobs
            .get(&job.0)
            .and_then(|j| j.task.as_ref())
            .map(|t| t.log.clone())
            .unwrap_or_default()
    }

    /// The Git requests served so far (see `Options::git_root`), in order.
    pub fn git_requests(&self) -> Vec<crate::view::GitRequest> {
        self.shared.state().git_requests.clone()
    }

    /// Just the contents of the stored rows.
    pub fn log_lines(&self, job: JobId) -> Vec<String> {
        self.log_rows(job).into_iter().map(|r| r.content).collect()
    }

    pub fn tasks_version(&self) -> i64 {
        self.shared.state().tasks_version
    }

    /// How many FetchTask calls got past the version check and looked at the queue.
    pub fn queue_lookups(&self) -> u64 {
        self.shared.state().queue_lookups
    }

    /// Requests of `method` received so far (counted on arrival, so faulted and rejected
    /// ones too).
    pub fn request_count(&self, method: Method) -> u64 {
        self.shared
            .state()
            .request_counts
            .get(&method)
            .copied()
            .unwrap_or(0)
    }

    pub fn request_counts(&self) -> BTreeMap<Method, u64> {
        self.shared.state().request_counts.clone()
    }

    /// Every request with its arrival time, for rate checks.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.state().requests.clone()
    }

    /// What `GET /_fake/stats` serves.
    pub fn stats_json(&self) -> Value {
        crate::stats::stats_json(&self.shared.state())
    }

    // ---- waiting -------------------------------------------------------------------------

    /// Waits until the runner sent the task's final UpdateTask (one with a result), which
    /// reference runners send after the final log upload.
    pub async fn wait_for_task_done(
        &self,
        job: JobId,
        timeout: Duration,
    ) -> Result<TaskView, WaitTimeout> {
        let view = self
            .wait_for_job(job, timeout, |j| {
                j.task
                    .as_ref()
                    .is_some_and(|t| t.final_result_reported.is_some())
            })
            .await?;
        Ok(view.task.expect("the predicate saw a task"))
    }

    /// Waits until a runner picked the job.
    pub async fn wait_for_task_picked(
        &self,
        job: JobId,
        timeout: Duration,
    ) -> Result<TaskView, WaitTimeout> {
        let view = self
            .wait_for_job(job, timeout, |j| j.task.is_some())
            .await?;
        Ok(view.task.expect("the predicate saw a task"))
    }

    /// Waits until `done` holds for the job, re-checking after every change the forge sees.
    pub async fn wait_for_job(
        &self,
        job: JobId,
        timeout: Duration,
        mut done: impl FnMut(&JobView) -> bool,
    ) -> Result<JobView, WaitTimeout> {
        let mut last_seen = None;
        self.wait_until(timeout, || {
            let view = self.job(job);
            let ok = view.as_ref().is_some_and(&mut done);
            last_seen = view.clone();
            if ok {
                view
            } else {
                None
            }
        })
        .await
        .map_err(|waited| WaitTimeout {
            waited,
            last_seen: last_seen.clone(),
        })
    }

    /// Waits until `check` returns something, re-checking after every change the forge sees
    /// (requests, state changes). Errs with the time waited.
    pub async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> Result<T, Duration> {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut changes = self.shared.subscribe();
        loop {
            changes.borrow_and_update();
            if let Some(found) = check() {
                return Ok(found);
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                return check().ok_or(start.elapsed());
            }
        }
    }

    // ---- faults --------------------------------------------------------------------------

    /// Answers upcoming requests with a bare HTTP error (see [`Fault`]).
    pub fn fail_next(&self, fault: Fault) {
        self.shared.faults().add(fault);
    }

    /// Drops pending failures and delays.
    pub fn clear_faults(&self) {
        self.shared.faults().clear();
    }

    /// Holds every response (of `method`, or of all methods for `None`) this long after
    /// handling the request; `Duration::ZERO` removes the delay. With `UpdateLog` this is a
    /// slow-acking server; with `FetchTask` a claim the client may time out on.
    pub fn set_response_delay(&self, method: Option<Method>, delay: Duration) {
        self.shared.faults().set_delay(method, delay);
    }

    /// Acknowledges at most `limit` new rows per UpdateLog (`None`: all), as a server that
    /// stored only part of a batch. A `no_more` request only archives once every row it
    /// carried is stored.
    pub fn set_log_ack_limit(&self, limit: Option<usize>) {
        self.change(|s| s.log_ack_limit = limit);
    }

    /// Takes the server down: stops listening and closes every connection (in-flight
    /// requests get no answer; new ones are refused). The state is kept.
    pub async fn go_down(&self) {
        let listening = self.lock_listening().take();
        if let Some(listening) = listening {
            listening.stop().await;
        }
    }

    /// Brings the server back on the same port (and certificate), state intact.
    pub async fn come_up(&self) -> io::Result<()> {
        if self.is_up() {
            return Ok(());
        }
        let tls = self.tls.as_ref().map(ServerTls::acceptor);
        let (_, listening) = listen(self.shared.clone(), self.addr, tls).await?;
        *self.lock_listening() = Some(listening);
        Ok(())
    }

    pub fn is_up(&self) -> bool {
        self.lock_listening().is_some()
    }

    fn lock_listening(&self) -> std::sync::MutexGuard<'_, Option<Listening>> {
        self.listening.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the state and wakes the waiters.
    fn change<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.shared.state());
        self.shared.notify();
        out
    }
}

impl Drop for FakeForge {
    fn drop(&mut self) {
        if let Some(listening) = self.lock_listening().as_ref() {
            listening.cancel();
        }
    }
}
