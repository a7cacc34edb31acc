//! What tests read back: copies of the forge's records, taken under its lock.

use std::collections::BTreeMap;
use std::time::Instant;

use prost_types::Timestamp;

use crate::method::Method;
use crate::status::Status;

/// A job's id, as [`crate::FakeForge::queue_task`] returns it. Job ids and task ids are
/// separate sequences (as in Gitea), so mixing them up shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub i64);

/// A registered runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerInfo {
    pub id: i64,
    pub uuid: String,
    /// The runner secret (`x-runner-token`).
    pub token: String,
    pub name: String,
    pub version: String,
    /// Label names, as last registered or declared.
    pub labels: Vec<String>,
    pub ephemeral: bool,
    /// Capabilities from Register, replaced by Declare's.
    pub capabilities: Vec<String>,
    /// How many Declare calls it made.
    pub declare_count: u32,
}

/// A queued job and, once a runner picked it, its task.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    pub id: JobId,
    /// The context's `run_id` (one run per job in the fake).
    pub run_id: i64,
    /// The payload job's YAML key (the context's `job`).
    pub job_key: String,
    pub status: Status,
    pub task: Option<TaskView>,
}

/// A task: what the runner reported and what the forge made of it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    pub id: i64,
    pub runner_id: i64,
    /// The task token (`GITHUB_TOKEN`, context `token`).
    pub token: String,
    /// The context's `gitea_runtime_token` (empty if the context had no such key).
    pub runtime_token: String,
    pub status: Status,
    /// When the runner picked it.
    pub picked_at: Timestamp,
    /// `stopped_at` of the final report (the epoch if the runner sent none, as Gitea stores it).
    pub stopped_at: Option<Timestamp>,
    pub steps: Vec<StepView>,
    /// Rows the forge holds (its `log_length`, the last ack).
    pub log_length: usize,
    pub log_archived: bool,
    /// Stored outputs, first value wins, in arrival order.
    pub outputs: Vec<(String, String)>,
    /// The result of the first UpdateTask that carried one (even if the forge had already
    /// ended the task and ignored it).
    pub final_result_reported: Option<i32>,
    pub update_task_count: u32,
    pub update_log_count: u32,
}

impl TaskView {
    /// `outputs` as a map.
    pub fn output_map(&self) -> BTreeMap<String, String> {
        self.outputs.iter().cloned().collect()
    }
}

/// One `action_task_step` row.
#[derive(Debug, Clone, PartialEq)]
pub struct StepView {
    pub index: usize,
    /// `Waiting` until reported; `Running` once started; the reported result after.
    pub status: Status,
    pub log_index: i64,
    pub log_length: i64,
    pub started_at: Option<Timestamp>,
    pub stopped_at: Option<Timestamp>,
}

/// One stored log row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub time: Option<Timestamp>,
    pub content: String,
}

/// One request as the forge received it (before faults or auth).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: Method,
    pub at: Instant,
    /// What the request came over: HTTP/1.1 on `http://`; on `https://` what ALPN settled.
    pub http_version: HttpVersion,
}

/// One Git request over HTTP (a clone, a fetch of an action), as the forge received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRequest {
    /// The request's path, e.g. `/acme/greet/info/refs`.
    pub path: String,
    /// Its `Authorization` header, if it had one.
    pub authorization: Option<String>,
}

/// An HTTP version the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpVersion {
    Http10,
    Http11,
    Http2,
}
