//! Registering a runner with a forge: ping until it answers (a forge still starting), then
//! `Register` with the label names (and the deprecated `agent_labels`, which Gitea 1.19 and
//! 1.20 read), and the `.runner` registration that results.

use std::time::Duration;

use hearth_forge::proto::runner::RegisterRequest;
use hearth_forge::{Client, RpcError, Secret};

use crate::labels::{Label, Labels};
use crate::runner_file::Registration;

/// How many times the forge is pinged, a second apart, before registering gives up.
pub const PING_ATTEMPTS: u32 = 10;

/// What to register.
pub struct RegisterInput<'a> {
    /// The forge's address as the user gave it.
    pub instance: &'a str,
    pub token: &'a Secret,
    pub name: &'a str,
    pub labels: &'a Labels,
    pub ephemeral: bool,
    pub version: &'a str,
}

/// A registration, and what the user should know about it.
pub struct Registered {
    pub registration: Registration,
    pub warnings: Vec<String>,
}

/// Why registering failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("cannot reach the forge at {instance}: {source}")]
    Unreachable {
        instance: String,
        #[source]
        source: RpcError,
    },
    #[error("the forge refused the registration: {0}")]
    Refused(#[source] RpcError),
    #[error("the forge accepted the registration but sent no runner back")]
    NoRunner,
}

/// Registers; `on_retry` hears why each ping but the last failed (the forge may be starting).
pub async fn register(
    client: &Client,
    input: &RegisterInput<'_>,
    mut on_retry: impl FnMut(&RpcError),
) -> Result<Registered, RegisterError> {
    let mut attempt = 1;
    while let Err(e) = client.ping("hearth").await {
        if attempt >= PING_ATTEMPTS {
            return Err(RegisterError::Unreachable {
                instance: input.instance.to_owned(),
                source: e,
            });
        }
        on_retry(&e);
        attempt += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let names: Vec<String> = input.labels.names().map(str::to_owned).collect();
    // `agent_labels` is deprecated in the protocol, but Gitea 1.19 and 1.20 read only it.
    #[allow(deprecated)]
    let request = RegisterRequest {
        name: input.name.to_owned(),
        token: input.token.expose().to_owned(),
        agent_labels: names.clone(),
        version: input.version.to_owned(),
        labels: names,
        ephemeral: input.ephemeral,
        capabilities: vec!["cancelling".to_owned()],
        ..RegisterRequest::default()
    };
    let response = client
        .register(&request)
        .await
        .map_err(RegisterError::Refused)?;
    let Some(runner) = response.runner else {
        return Err(RegisterError::NoRunner);
    };
    let mut warnings = Vec::new();
    if input.ephemeral && !runner.ephemeral {
        warnings.push(
            "this forge is too old for ephemeral runners; the runner will still take a single \
             job and exit, but the forge keeps it listed"
                .to_owned(),
        );
    }
    Ok(Registered {
        registration: Registration {
            id: runner.id,
            uuid: runner.uuid,
            name: if runner.name.is_empty() {
                input.name.to_owned()
            } else {
                runner.name
            },
            token: runner.token.into(),
            address: input.instance.to_owned(),
            labels: input.labels.iter().map(Label::spec).collect(),
            ephemeral: input.ephemeral,
        },
        warnings,
    })
}
