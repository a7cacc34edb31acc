//! The RPC methods the fake serves, named by their Connect procedure paths (spec §1.2).

use std::fmt;

/// One RPC of `ping.v1.PingService` or `runner.v1.RunnerService`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Ping,
    Register,
    Declare,
    FetchTask,
    UpdateTask,
    UpdateLog,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Method::Ping,
        Method::Register,
        Method::Declare,
        Method::FetchTask,
        Method::UpdateTask,
        Method::UpdateLog,
    ];

    /// The procedure path below `{base}/api/actions/`.
    pub fn procedure(self) -> &'static str {
        match self {
            Method::Ping => "ping.v1.PingService/Ping",
            Method::Register => "runner.v1.RunnerService/Register",
            Method::Declare => "runner.v1.RunnerService/Declare",
            Method::FetchTask => "runner.v1.RunnerService/FetchTask",
            Method::UpdateTask => "runner.v1.RunnerService/UpdateTask",
            Method::UpdateLog => "runner.v1.RunnerService/UpdateLog",
        }
    }

    /// The method a procedure path names; `None` for anything the fake does not route
    /// (which includes Forgejo 15's FetchSingleTask: the fake plays an older server).
    pub fn from_procedure(procedure: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.procedure() == procedure)
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Ping => "Ping",
            Method::Register => "Register",
            Method::Declare => "Declare",
            Method::FetchTask => "FetchTask",
            Method::UpdateTask => "UpdateTask",
            Method::UpdateLog => "UpdateLog",
        }
    }

    /// Register and Ping are the only calls without runner credentials (spec §1.4).
    pub fn needs_auth(self) -> bool {
        !matches!(self, Method::Ping | Method::Register)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
