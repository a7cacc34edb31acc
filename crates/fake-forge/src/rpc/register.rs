//! Ping, Register and Declare (spec §3.1–§3.3).

use hearth_forge::proto::ping::{PingRequest, PingResponse};
use hearth_forge::proto::runner::{
    DeclareRequest, DeclareResponse, RegisterRequest, RegisterResponse, Runner,
};

use crate::error::{Code, RpcError};
use crate::state::{random_hex, random_uuid, RunnerRecord, State, TokenState};

pub(super) fn ping(req: PingRequest) -> PingResponse {
    PingResponse {
        data: format!("Hello, {}!", req.data),
    }
}

pub(super) fn register(
    state: &mut State,
    req: RegisterRequest,
) -> Result<RegisterResponse, RpcError> {
    // Gitea raises these with errors.New (bare `unknown`), Forgejo as invalid_argument.
    if req.name.is_empty() || req.token.is_empty() {
        return Err(RpcError::plain(
            Code::InvalidArgument,
            "missing runner token, name",
        ));
    }
    match state.registration_tokens.get(&req.token) {
        None => {
            return Err(RpcError::plain(
                Code::InvalidArgument,
                "runner registration token not found",
            ))
        }
        Some(TokenState::Invalidated) => {
            return Err(RpcError::plain(
                Code::InvalidArgument,
                "runner registration token has been invalidated, please use the latest one",
            ))
        }
        Some(TokenState::Active) => {}
    }
    // Before Gitea #30930 an empty `labels` fell back to the deprecated `agent_labels`.
    #[allow(deprecated)] // the deprecated field is exactly what old runners send
    let labels = if req.labels.is_empty() {
        req.agent_labels
    } else {
        req.labels
    };
    let record = RunnerRecord {
        id: state.new_runner_id(),
        uuid: random_uuid(),
        token: random_hex(20),
        name: truncate_bytes(&req.name, 255).to_string(),
        version: req.version,
        labels,
        ephemeral: req.ephemeral,
        capabilities: req.capabilities,
        declare_count: 0,
    };
    let runner = Runner {
        id: record.id,
        uuid: record.uuid.clone(),
        token: record.token.clone(),
        name: record.name.clone(),
        version: record.version.clone(),
        labels: record.labels.clone(),
        ephemeral: record.ephemeral,
        ..Runner::default()
    };
    state.runners.insert(record.id, record);
    Ok(RegisterResponse {
        runner: Some(runner),
    })
}

pub(super) fn declare(
    state: &mut State,
    runner_id: i64,
    req: DeclareRequest,
) -> Result<DeclareResponse, RpcError> {
    let record = state
        .runners
        .get_mut(&runner_id)
        .ok_or_else(crate::state::unregistered_runner)?;
    record.labels = req.labels;
    record.version = req.version;
    record.capabilities = req.capabilities;
    record.declare_count += 1;
    // The token is only ever returned by Register: the server keeps just its hash.
    Ok(DeclareResponse {
        runner: Some(Runner {
            id: record.id,
            uuid: record.uuid.clone(),
            name: record.name.clone(),
            version: record.version.clone(),
            labels: record.labels.clone(),
            ..Runner::default()
        }),
    })
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
