//! The forge's status of a job, a task or a step (Gitea's `models/actions/status.go`).

use hearth_forge::proto::runner::Result as ProtoResult;

/// A job's, task's or step's status as the forge stores it. The first five share their numbers
/// with the wire's `Result`; the others are server-only states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// 0, also what an unknown `Result` number becomes.
    Unknown,
    Success,
    Failure,
    Cancelled,
    Skipped,
    /// Queued, not yet picked by a runner.
    Waiting,
    /// Picked by a runner (tasks), or started (steps).
    Running,
}

impl Status {
    /// The status a `Result` received from the runner is stored as.
    pub fn from_result(result: i32) -> Status {
        match ProtoResult::try_from(result) {
            Ok(ProtoResult::Success) => Status::Success,
            Ok(ProtoResult::Failure) => Status::Failure,
            Ok(ProtoResult::Cancelled) => Status::Cancelled,
            Ok(ProtoResult::Skipped) => Status::Skipped,
            _ => Status::Unknown,
        }
    }

    /// Gitea's `Status.AsResult`: what UpdateTask's response carries. Anything not finished is
    /// UNSPECIFIED, which tells the runner to go on.
    pub fn as_result(self) -> ProtoResult {
        match self {
            Status::Success => ProtoResult::Success,
            Status::Failure => ProtoResult::Failure,
            Status::Cancelled => ProtoResult::Cancelled,
            Status::Skipped => ProtoResult::Skipped,
            Status::Unknown | Status::Waiting | Status::Running => ProtoResult::Unspecified,
        }
    }

    /// Gitea's `IsDone`: a finished task is no longer written by UpdateTask.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            Status::Success | Status::Failure | Status::Cancelled | Status::Skipped
        )
    }

    /// The lowercase name Gitea uses (`success`, `waiting`, ...), for the stats JSON.
    pub fn name(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Success => "success",
            Status::Failure => "failure",
            Status::Cancelled => "cancelled",
            Status::Skipped => "skipped",
            Status::Waiting => "waiting",
            Status::Running => "running",
        }
    }
}
