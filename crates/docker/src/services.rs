//! Services: ports published from their containers, health checks from their options, and the
//! wait until every service is healthy (or running, without a health check) before the first
//! step — fast polling, bounded by a timeout, and the logs of a service that never became
//! healthy in the job's log.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{HealthConfig, HealthStatusEnum, PortBinding, PortMap};
use bollard::query_parameters::LogsOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;
use hearth_backend::{BackendError, CancellationToken, ContainerInfo, SetupLevel, SetupLog};
use tokio::time::{sleep, Instant};

use crate::job::Service;
use crate::options::ContainerOptions;

/// How often a starting service is looked at: an inspect costs the daemon ~1 ms, and a job
/// waits for its services on every start.
const POLL: Duration = Duration::from_millis(25);
/// How long services may take to become healthy.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(300);
/// How much of an unhealthy service's log the job's log gets.
const LOG_TAIL: &str = "50";

/// `ports:` entries (`8080`, `8080:80`, `8080:80/udp`) as exposed ports and bindings to the host
/// (a bare container port gets a free host port).
pub(crate) fn ports(
    entries: &[String],
) -> Result<(Option<Vec<String>>, Option<PortMap>), BackendError> {
    if entries.is_empty() {
        return Ok((None, None));
    }
    let mut exposed = Vec::with_capacity(entries.len());
    let mut bindings: PortMap = HashMap::new();
    for entry in entries {
        let (ports, protocol) = entry.split_once('/').unwrap_or((entry, "tcp"));
        let (host, container) = match ports.rsplit_once(':') {
            Some((host, container)) => (host.to_owned(), container),
            None => (String::new(), ports),
        };
        if container.parse::<u16>().is_err() || !(host.is_empty() || host.parse::<u16>().is_ok()) {
            return Err(BackendError::Unsupported(format!(
                "the port `{entry}` is not HOST:CONTAINER or CONTAINER (with /tcp or /udp)"
            )));
        }
        let key = format!("{container}/{protocol}");
        exposed.push(key.clone());
        bindings.insert(
            key,
            Some(vec![PortBinding {
                host_ip: None,
                host_port: Some(host),
            }]),
        );
    }
    Ok((Some(exposed), Some(bindings)))
}

/// The health check `options:` asks for (through the image's shell, as `--health-cmd` does).
pub(crate) fn health(options: &ContainerOptions) -> Option<HealthConfig> {
    let nanos = |d: Option<Duration>| d.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    options.health_cmd.as_ref().map(|cmd| HealthConfig {
        test: Some(vec!["CMD-SHELL".to_owned(), cmd.clone()]),
        interval: nanos(options.health_interval),
        timeout: nanos(options.health_timeout),
        start_period: nanos(options.health_start_period),
        retries: options.health_retries,
        ..Default::default()
    })
}

/// Waits until every service is healthy (or running, when it has no health check), filling in
/// its entry (id, network, ports as published). They started together, so waiting for each in
/// turn takes as long as the slowest.
pub(crate) async fn wait_healthy(
    docker: &Docker,
    services: &mut [Service],
    network: &str,
    log: &mut dyn SetupLog,
    cancel: &CancellationToken,
) -> Result<(), BackendError> {
    let until = Instant::now() + HEALTH_TIMEOUT;
    for service in services {
        loop {
            let inspected = docker
                .inspect_container(&service.container, None)
                .await
                .map_err(|e| {
                    BackendError::Unsupported(format!(
                        "cannot inspect the service `{}`: {e}",
                        service.id
                    ))
                })?;
            let state = inspected.state.unwrap_or_default();
            let health = state.health.and_then(|h| h.status);
            let running = state.running == Some(true);
            let ready = match health {
                Some(HealthStatusEnum::HEALTHY) => true,
                None | Some(HealthStatusEnum::NONE) | Some(HealthStatusEnum::EMPTY) => running,
                _ => false,
            };
            if ready {
                let ports = inspected
                    .network_settings
                    .and_then(|n| n.ports)
                    .unwrap_or_default();
                service.info = ContainerInfo {
                    id: service.container.clone(),
                    network: network.to_owned(),
                    ports: published(&ports),
                };
                log.line(
                    SetupLevel::Info,
                    &format!("Service `{}` is ready", service.id),
                );
                break;
            }
            let failed = health == Some(HealthStatusEnum::UNHEALTHY)
                || (!running && state.status.is_some_and(|s| s.to_string() == "exited"));
            if failed || Instant::now() >= until {
                let why = if failed {
                    "did not become healthy"
                } else {
                    "was not healthy in time"
                };
                log.line(
                    SetupLevel::Warning,
                    &format!("The service `{}` {why}; its log:", service.id),
                );
                service_log(docker, &service.container, log).await;
                return Err(BackendError::Unsupported(format!(
                    "the service `{}` {why}",
                    service.id
                )));
            }
            tokio::select! {
                () = sleep(POLL) => {}
                () = cancel.cancelled() => {
                    return Err(BackendError::Cancelled(format!("waiting for the service `{}`", service.id)))
                }
            }
        }
    }
    Ok(())
}

/// Container port to host port, as `job.services.<id>.ports` shows them (`{"5432": "49153"}`).
fn published(ports: &PortMap) -> Vec<(String, String)> {
    let mut published: Vec<(String, String)> = ports
        .iter()
        .filter_map(|(key, bindings)| {
            let port = key.split('/').next().unwrap_or(key).to_owned();
            let host = bindings.as_ref()?.first()?.host_port.clone()?;
            Some((port, host))
        })
        .collect();
    published.sort();
    published
}

/// The last lines of a service's log, into the job's log.
async fn service_log(docker: &Docker, container: &str, log: &mut dyn SetupLog) {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(LOG_TAIL)
        .build();
    let mut lines = docker.logs(container, Some(options));
    while let Some(Ok(line)) = lines.next().await {
        let text = line.to_string();
        log.line(SetupLevel::Warning, text.trim_end());
    }
}
