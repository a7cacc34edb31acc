//! The RPC layer: decodes a request body, authenticates the runner and hands the message to
//! the method's handler, all under the state lock (one RPC = one transaction).

mod fetch_task;
mod register;
mod update_log;
mod update_task;

use prost::Message;

use crate::error::{Code, RpcError};
use crate::method::Method;
use crate::state::State;

/// What an RPC answers.
pub(crate) enum Reply {
    /// HTTP 200 with the encoded response (empty for an all-default message) and extra headers.
    Message {
        body: Vec<u8>,
        headers: Vec<(&'static str, String)>,
    },
    Error(RpcError),
    /// The server does not route the path: a bare HTTP 404, as from a server too old to know
    /// the method.
    NotRouted,
}

/// The runner credentials of a request (spec §1.4).
pub(crate) struct Credentials<'a> {
    pub uuid: &'a str,
    pub token: &'a str,
}

pub(crate) fn dispatch(
    state: &mut State,
    method: Method,
    credentials: Credentials<'_>,
    body: &[u8],
) -> Reply {
    if method == Method::Declare && state.declare_unimplemented {
        return Reply::NotRouted;
    }
    let result = match method {
        Method::Ping => decode(body).map(|req| (register::ping(req).encode_to_vec(), Vec::new())),
        Method::Register => decode(body)
            .and_then(|req| register::register(state, req))
            .map(|resp| (resp.encode_to_vec(), Vec::new())),
        _ => state
            .authenticate(credentials.uuid, credentials.token)
            .and_then(|runner_id| authenticated(state, method, runner_id, body)),
    };
    match result {
        Ok((body, headers)) => Reply::Message { body, headers },
        Err(err) => Reply::Error(err),
    }
}

type Encoded = (Vec<u8>, Vec<(&'static str, String)>);

fn authenticated(
    state: &mut State,
    method: Method,
    runner_id: i64,
    body: &[u8],
) -> Result<Encoded, RpcError> {
    match method {
        Method::Declare => {
            let resp = register::declare(state, runner_id, decode(body)?)?;
            let headers = state
                .declare_capabilities
                .clone()
                .map(|caps| vec![("x-gitea-actions-capabilities", caps)])
                .unwrap_or_default();
            Ok((resp.encode_to_vec(), headers))
        }
        Method::FetchTask => {
            let resp = fetch_task::fetch_task(state, runner_id, decode(body)?)?;
            Ok((resp.encode_to_vec(), Vec::new()))
        }
        Method::UpdateTask => {
            let resp = update_task::update_task(state, runner_id, decode(body)?)?;
            Ok((resp.encode_to_vec(), Vec::new()))
        }
        Method::UpdateLog => {
            let resp = update_log::update_log(state, runner_id, decode(body)?)?;
            Ok((resp.encode_to_vec(), Vec::new()))
        }
        Method::Ping | Method::Register => Err(RpcError::connect(
            Code::Internal,
            "unauthenticated method routed as authenticated",
        )),
    }
}

/// connect-go answers an undecodable body with `invalid_argument` on both forges.
fn decode<M: Message + Default>(body: &[u8]) -> Result<M, RpcError> {
    M::decode(body)
        .map_err(|e| RpcError::connect(Code::InvalidArgument, format!("unmarshal message: {e}")))
}
