//! RPC errors and how each forge flavour puts them on the wire (spec §1.5).
//!
//! Gitea builds its runner-service errors with gRPC's `status.Error` or plain `errors.New`;
//! connect-go does not understand either, so every one of them reaches the runner as
//! `unknown`/500 (the gRPC ones with the text `rpc error: code = X desc = msg`). Forgejo returns
//! real Connect errors. Errors raised by connect-go itself (bad body) are Connect errors in both.

use crate::options::Flavour;

/// A Connect error code (the subset the fake produces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unknown,
    InvalidArgument,
    NotFound,
    AlreadyExists,
    Unimplemented,
    Internal,
    Unauthenticated,
}

impl Code {
    /// The code string of a Connect error body.
    pub fn connect_name(self) -> &'static str {
        match self {
            Code::Unknown => "unknown",
            Code::InvalidArgument => "invalid_argument",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal",
            Code::Unauthenticated => "unauthenticated",
        }
    }

    /// The code's name in gRPC's `codes.Code.String()`, as it appears in Gitea's messages.
    fn grpc_name(self) -> &'static str {
        match self {
            Code::Unknown => "Unknown",
            Code::InvalidArgument => "InvalidArgument",
            Code::NotFound => "NotFound",
            Code::AlreadyExists => "AlreadyExists",
            Code::Unimplemented => "Unimplemented",
            Code::Internal => "Internal",
            Code::Unauthenticated => "Unauthenticated",
        }
    }

    /// The HTTP status connect-go sends with the code (spec §1.5 table).
    pub fn http_status(self) -> u16 {
        match self {
            Code::Unknown | Code::Internal => 500,
            Code::InvalidArgument => 400,
            Code::NotFound => 404,
            Code::AlreadyExists => 409,
            Code::Unimplemented => 501,
            Code::Unauthenticated => 401,
        }
    }
}

/// How the server code built the error, which decides what Gitea sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// `status.Error(code, msg)` in Gitea, `connect.NewError(code, msg)` in Forgejo.
    GrpcStatus,
    /// `errors.New(msg)` in Gitea; Forgejo used the code given here.
    Plain,
    /// Raised by connect-go itself: identical in both flavours.
    Connect,
}

/// An error an RPC answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    code: Code,
    message: String,
    origin: Origin,
}

impl RpcError {
    /// An error Gitea raises as a gRPC status (so it arrives wrapped in `unknown`).
    pub fn status(code: Code, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            origin: Origin::GrpcStatus,
        }
    }

    /// An error Gitea raises with `errors.New` (arrives as `unknown` with the bare message);
    /// `forgejo_code` is what Forgejo answers instead.
    pub fn plain(forgejo_code: Code, message: impl Into<String>) -> Self {
        RpcError {
            code: forgejo_code,
            message: message.into(),
            origin: Origin::Plain,
        }
    }

    /// An error of the Connect layer itself (undecodable body ...), the same on both forges.
    pub fn connect(code: Code, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            origin: Origin::Connect,
        }
    }

    /// The code and message that go on the wire for this flavour.
    pub fn wire(&self, flavour: Flavour) -> (Code, String) {
        match (flavour, self.origin) {
            (Flavour::Gitea, Origin::GrpcStatus) => (
                Code::Unknown,
                format!(
                    "rpc error: code = {} desc = {}",
                    self.code.grpc_name(),
                    self.message
                ),
            ),
            (Flavour::Gitea, Origin::Plain) => (Code::Unknown, self.message.clone()),
            _ => (self.code, self.message.clone()),
        }
    }

    /// The Connect error body: `{"code": ..., "message": ...}`.
    pub fn body(&self, flavour: Flavour) -> (u16, Vec<u8>) {
        let (code, message) = self.wire(flavour);
        let body = serde_json::json!({ "code": code.connect_name(), "message": message });
        (code.http_status(), body.to_string().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitea_wraps_grpc_status_errors_as_unknown() {
        let err = RpcError::status(Code::Unauthenticated, "unregistered runner");
        assert_eq!(
            err.wire(Flavour::Gitea),
            (
                Code::Unknown,
                "rpc error: code = Unauthenticated desc = unregistered runner".to_string()
            )
        );
        assert_eq!(
            err.wire(Flavour::Forgejo),
            (Code::Unauthenticated, "unregistered runner".to_string())
        );
        let (status, body) = err.body(Flavour::Forgejo);
        assert_eq!(status, 401);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["code"], "unauthenticated");
    }

    #[test]
    fn gitea_sends_plain_errors_unwrapped() {
        let err = RpcError::plain(Code::InvalidArgument, "runner registration token not found");
        assert_eq!(
            err.wire(Flavour::Gitea),
            (
                Code::Unknown,
                "runner registration token not found".to_string()
            )
        );
        assert_eq!(err.wire(Flavour::Forgejo).0, Code::InvalidArgument);
    }
}
