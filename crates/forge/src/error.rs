//! Errors of a call to the forge, classified as the forges actually send them.
//!
//! Forgejo answers with real Connect codes. Gitea builds most of its errors with gRPC's status
//! package, which connect-go does not understand, so they arrive as `unknown` (HTTP 500) with
//! the gRPC code only inside the message: `rpc error: code = Unauthenticated desc = unregistered
//! runner`. [`RpcError::code`] reads through that wrapping, so callers decide on one code.

use std::fmt;

/// A Connect error code (the names are Connect's wire strings in snake case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    Canceled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

impl Code {
    /// The code a Connect error body names (`"unauthenticated"`).
    pub fn from_connect(name: &str) -> Option<Code> {
        Some(match name {
            "canceled" => Code::Canceled,
            "unknown" => Code::Unknown,
            "invalid_argument" => Code::InvalidArgument,
            "deadline_exceeded" => Code::DeadlineExceeded,
            "not_found" => Code::NotFound,
            "already_exists" => Code::AlreadyExists,
            "permission_denied" => Code::PermissionDenied,
            "resource_exhausted" => Code::ResourceExhausted,
            "failed_precondition" => Code::FailedPrecondition,
            "aborted" => Code::Aborted,
            "out_of_range" => Code::OutOfRange,
            "unimplemented" => Code::Unimplemented,
            "internal" => Code::Internal,
            "unavailable" => Code::Unavailable,
            "data_loss" => Code::DataLoss,
            "unauthenticated" => Code::Unauthenticated,
            _ => return None,
        })
    }

    /// The code a gRPC status names in Go's spelling (`Unauthenticated`, `AlreadyExists`).
    fn from_grpc(name: &str) -> Option<Code> {
        Some(match name {
            "Canceled" => Code::Canceled,
            "Unknown" => Code::Unknown,
            "InvalidArgument" => Code::InvalidArgument,
            "DeadlineExceeded" => Code::DeadlineExceeded,
            "NotFound" => Code::NotFound,
            "AlreadyExists" => Code::AlreadyExists,
            "PermissionDenied" => Code::PermissionDenied,
            "ResourceExhausted" => Code::ResourceExhausted,
            "FailedPrecondition" => Code::FailedPrecondition,
            "Aborted" => Code::Aborted,
            "OutOfRange" => Code::OutOfRange,
            "Unimplemented" => Code::Unimplemented,
            "Internal" => Code::Internal,
            "Unavailable" => Code::Unavailable,
            "DataLoss" => Code::DataLoss,
            "Unauthenticated" => Code::Unauthenticated,
            _ => return None,
        })
    }

    /// What connect-go makes of an HTTP status when the body is not a Connect error (a
    /// proxy's page, or a 404 for a path an old server does not route).
    pub fn from_http_status(status: u16) -> Code {
        match status {
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502 | 503 | 504 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Code::Canceled => "canceled",
            Code::Unknown => "unknown",
            Code::InvalidArgument => "invalid_argument",
            Code::DeadlineExceeded => "deadline_exceeded",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::PermissionDenied => "permission_denied",
            Code::ResourceExhausted => "resource_exhausted",
            Code::FailedPrecondition => "failed_precondition",
            Code::Aborted => "aborted",
            Code::OutOfRange => "out_of_range",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal",
            Code::Unavailable => "unavailable",
            Code::DataLoss => "data_loss",
            Code::Unauthenticated => "unauthenticated",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed call: what the forge said, or why it could not be asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{procedure}: {}: {message}", self.wire_code)]
pub struct RpcError {
    /// The procedure called (`runner.v1.RunnerService/FetchTask`).
    pub procedure: &'static str,
    /// The code as it came over the wire (or from the transport).
    pub wire_code: Code,
    /// The message, as the forge wrote it.
    pub message: String,
    /// The HTTP status, when there was a response.
    pub http_status: Option<u16>,
}

impl RpcError {
    /// The code that means something: for Gitea's `unknown` errors wrapping a gRPC status,
    /// the code inside the message.
    pub fn code(&self) -> Code {
        if self.wire_code == Code::Unknown {
            if let Some(code) = grpc_code_in_message(&self.message) {
                return code;
            }
        }
        self.wire_code
    }

    /// The forge no longer knows this runner (deleted, or its token is wrong): only a new
    /// registration helps.
    pub fn is_unregistered(&self) -> bool {
        self.code() == Code::Unauthenticated || self.message.contains("unregistered runner")
    }

    /// The forge does not have the procedure (too old).
    pub fn is_unimplemented(&self) -> bool {
        self.code() == Code::Unimplemented
    }

    /// The log was archived already (a repeated final upload).
    pub fn is_already_exists(&self) -> bool {
        self.code() == Code::AlreadyExists
    }

    /// Asking again later may succeed: the network, a restarting forge, a proxy, a timeout or
    /// an internal error. Credentials, arguments and missing procedures do not get better.
    pub fn is_transient(&self) -> bool {
        match self.code() {
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Canceled
            | Code::Aborted
            | Code::ResourceExhausted
            | Code::Internal
            | Code::Unknown
            | Code::DataLoss => !self.is_unregistered(),
            _ => false,
        }
    }
}

/// The code in `rpc error: code = Unauthenticated desc = ...`, as Gitea's messages carry it.
fn grpc_code_in_message(message: &str) -> Option<Code> {
    let rest = message.split("code = ").nth(1)?;
    let name = rest.split(|c: char| !c.is_ascii_alphanumeric()).next()?;
    Code::from_grpc(name)
}

/// The client could not be built (a bad address or CA bundle).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the forge address {address:?} is not an http:// or https:// URL")]
    Address { address: String },
    #[error("cannot read the CA bundle {path}: {source}")]
    CaFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the CA bundle {path} holds no usable PEM certificate: {message}")]
    CaCertificate {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("cannot set up the HTTP client: {0}")]
    Http(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: Code, message: &str) -> RpcError {
        RpcError {
            procedure: "runner.v1.RunnerService/FetchTask",
            wire_code: code,
            message: message.into(),
            http_status: Some(500),
        }
    }

    #[test]
    fn gitea_wraps_grpc_codes_in_unknown() {
        let e = error(
            Code::Unknown,
            "rpc error: code = Unauthenticated desc = unregistered runner",
        );
        assert_eq!(e.code(), Code::Unauthenticated);
        assert!(e.is_unregistered());
        assert!(!e.is_transient());

        let e = error(
            Code::Unknown,
            "rpc error: code = AlreadyExists desc = log file has been archived",
        );
        assert!(e.is_already_exists());

        let e = error(
            Code::Unknown,
            "rpc error: code = Internal desc = update task: database is locked",
        );
        assert_eq!(e.code(), Code::Internal);
        assert!(e.is_transient());
    }

    #[test]
    fn forgejo_sends_real_codes() {
        let e = error(Code::Unauthenticated, "unregistered runner");
        assert!(e.is_unregistered());
        let e = error(Code::InvalidArgument, "runner registration token not found");
        assert!(!e.is_transient());
        assert!(!e.is_unregistered());
    }

    #[test]
    fn plain_unknown_messages_stay_unknown() {
        let e = error(Code::Unknown, "runner registration token not found");
        assert_eq!(e.code(), Code::Unknown);
        let e = error(Code::Unknown, "rpc error: code = Bogus desc = x");
        assert_eq!(e.code(), Code::Unknown);
    }

    #[test]
    fn http_statuses_map_as_connect_go_maps_them() {
        assert_eq!(Code::from_http_status(404), Code::Unimplemented);
        assert_eq!(Code::from_http_status(502), Code::Unavailable);
        assert_eq!(Code::from_http_status(401), Code::Unauthenticated);
        assert_eq!(Code::from_http_status(418), Code::Unknown);
        for name in ["unknown", "already_exists", "unauthenticated", "data_loss"] {
            assert_eq!(Code::from_connect(name).map(Code::as_str), Some(name));
        }
        assert_eq!(Code::from_connect("nope"), None);
    }
}
