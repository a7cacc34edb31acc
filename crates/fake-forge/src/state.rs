//! The forge's database: runners, registration tokens, jobs and their tasks, and the
//! settings tests can change while it runs. Everything lives behind one mutex, held only for
//! synchronous work, so every RPC is atomic like a DB transaction.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use prost_types::Timestamp;
use rand::RngExt;
use serde_json::Value;

use crate::error::{Code, RpcError};
use crate::method::Method;
use crate::options::{Flavour, LogRules, Options};
use crate::status::Status;
use crate::task_spec::NeedSpec;
use crate::view::{
    HttpVersion, JobId, JobView, LogRecord, RequestRecord, RunnerInfo, StepView, TaskView,
};

pub(crate) struct RunnerRecord {
    pub id: i64,
    pub uuid: String,
    pub token: String,
    pub name: String,
    pub version: String,
    pub labels: Vec<String>,
    pub ephemeral: bool,
    pub capabilities: Vec<String>,
    pub declare_count: u32,
}

pub(crate) struct JobRecord {
    pub id: i64,
    pub run_id: i64,
    pub payload: Vec<u8>,
    pub job_key: String,
    /// The context before the task token is known.
    pub context: Value,
    pub secrets: BTreeMap<String, String>,
    pub vars: BTreeMap<String, String>,
    pub needs: BTreeMap<String, NeedSpec>,
    pub runs_on: Vec<String>,
    pub step_count: usize,
    pub status: Status,
    pub task: Option<TaskRecord>,
}

pub(crate) struct TaskRecord {
    pub id: i64,
    pub runner_id: i64,
    pub token: String,
    pub runtime_token: String,
    pub status: Status,
    pub picked_at: Timestamp,
    pub stopped_at: Option<Timestamp>,
    pub steps: Vec<StepView>,
    pub log: Vec<LogRecord>,
    pub log_archived: bool,
    pub outputs: Vec<(String, String)>,
    pub final_result_reported: Option<i32>,
    pub update_task_count: u32,
    pub update_log_count: u32,
}

/// Registration tokens: a token stays usable until it is invalidated (Gitea ≥ 1.21).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenState {
    Active,
    Invalidated,
}

pub(crate) struct State {
    pub flavour: Flavour,
    pub log_rules: LogRules,
    pub declare_capabilities: Option<String>,
    pub declare_unimplemented: bool,
    /// Bare repositories served over Git's HTTP protocols (see `Options::git_root`).
    pub git_root: Option<std::path::PathBuf>,
    /// Every Git request, in order.
    pub git_requests: Vec<crate::view::GitRequest>,
    /// Fault: append at most this many new rows per UpdateLog (a server acking part).
    pub log_ack_limit: Option<usize>,
    /// `ROOT_URL` without the trailing slash.
    pub server_url: String,
    pub registration_tokens: HashMap<String, TokenState>,
    pub runners: BTreeMap<i64, RunnerRecord>,
    /// Keyed by job id, which is also the queue order (oldest first).
    pub jobs: BTreeMap<i64, JobRecord>,
    pub task_to_job: HashMap<i64, i64>,
    /// The scope-wide `tasks_version` (spec §3.4.1): 1 from the start, bumped on every queue.
    pub tasks_version: i64,
    /// How many FetchTask calls looked at the job queue (the version check let them through).
    pub queue_lookups: u64,
    pub requests: Vec<RequestRecord>,
    pub request_counts: BTreeMap<Method, u64>,
    next_runner_id: i64,
    next_job_id: i64,
    next_task_id: i64,
}

impl State {
    pub fn new(options: &Options, server_url: String) -> Self {
        State {
            flavour: options.flavour,
            log_rules: options.log_rules,
            declare_capabilities: options.declare_capabilities.clone(),
            declare_unimplemented: options.declare_unimplemented,
            git_root: options.git_root.clone(),
            git_requests: Vec::new(),
            log_ack_limit: None,
            server_url,
            registration_tokens: options
                .registration_tokens
                .iter()
                .map(|t| (t.clone(), TokenState::Active))
                .collect(),
            runners: BTreeMap::new(),
            jobs: BTreeMap::new(),
            task_to_job: HashMap::new(),
            tasks_version: 1,
            queue_lookups: 0,
            requests: Vec::new(),
            request_counts: BTreeMap::new(),
            next_runner_id: 1,
            next_job_id: 1,
            // Distinct from job ids so a runner or test that confuses the two fails.
            next_task_id: 1001,
        }
    }

    pub fn new_runner_id(&mut self) -> i64 {
        let id = self.next_runner_id;
        self.next_runner_id += 1;
        id
    }

    pub fn new_job_id(&mut self) -> i64 {
        let id = self.next_job_id;
        self.next_job_id += 1;
        id
    }

    pub fn new_task_id(&mut self) -> i64 {
        let id = self.next_task_id;
        self.next_task_id += 1;
        id
    }

    /// The interceptor (spec §1.4): the runner whose uuid and token match, or
    /// "unregistered runner".
    pub fn authenticate(&self, uuid: &str, token: &str) -> Result<i64, RpcError> {
        self.runners
            .values()
            .find(|r| r.uuid == uuid && r.token == token && !uuid.is_empty())
            .map(|r| r.id)
            .ok_or_else(unregistered_runner)
    }

    /// Counts a request as it arrives, before faults and authentication.
    pub fn record_request(&mut self, method: Method, http_version: HttpVersion) {
        self.requests.push(RequestRecord {
            method,
            at: std::time::Instant::now(),
            http_version,
        });
        *self.request_counts.entry(method).or_default() += 1;
    }

    pub fn job_of_task_mut(&mut self, task_id: i64) -> Option<&mut JobRecord> {
        let job_id = *self.task_to_job.get(&task_id)?;
        self.jobs.get_mut(&job_id)
    }

    pub fn runner_info(&self) -> Vec<RunnerInfo> {
        self.runners.values().map(RunnerRecord::info).collect()
    }

    pub fn job_view(&self, job: JobId) -> Option<JobView> {
        self.jobs.get(&job.0).map(JobRecord::view)
    }
}

/// Both flavours raise it as a status error (Gitea: wrapped in `unknown`).
pub(crate) fn unregistered_runner() -> RpcError {
    RpcError::status(Code::Unauthenticated, "unregistered runner")
}

impl RunnerRecord {
    pub fn info(&self) -> RunnerInfo {
        RunnerInfo {
            id: self.id,
            uuid: self.uuid.clone(),
            token: self.token.clone(),
            name: self.name.clone(),
            version: self.version.clone(),
            labels: self.labels.clone(),
            ephemeral: self.ephemeral,
            capabilities: self.capabilities.clone(),
            declare_count: self.declare_count,
        }
    }

    /// Gitea's `CanMatchLabels`: every `runs-on` label is one of the runner's label names.
    pub fn can_run(&self, runs_on: &[String]) -> bool {
        runs_on.iter().all(|label| self.labels.contains(label))
    }
}

impl JobRecord {
    pub fn view(&self) -> JobView {
        JobView {
            id: JobId(self.id),
            run_id: self.run_id,
            job_key: self.job_key.clone(),
            status: self.status,
            task: self.task.as_ref().map(TaskRecord::view),
        }
    }
}

impl TaskRecord {
    pub fn view(&self) -> TaskView {
        TaskView {
            id: self.id,
            runner_id: self.runner_id,
            token: self.token.clone(),
            runtime_token: self.runtime_token.clone(),
            status: self.status,
            picked_at: self.picked_at,
            stopped_at: self.stopped_at,
            steps: self.steps.clone(),
            log_length: self.log.len(),
            log_archived: self.log_archived,
            outputs: self.outputs.clone(),
            final_result_reported: self.final_result_reported,
            update_task_count: self.update_task_count,
            update_log_count: self.update_log_count,
        }
    }
}

/// `n` random bytes as lowercase hex (runner and task tokens are 40 hex chars, spec §1.4).
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// A random (version 4) UUID in its usual text form.
pub(crate) fn random_uuid() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

pub(crate) fn now() -> Timestamp {
    Timestamp::from(SystemTime::now())
}
