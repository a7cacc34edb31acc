//! Services: ports published from their containers, health checks from their options, and the
//! wait until every service is healthy (or running, without a health check) before the first
//! step — fast polling, bounded by a timeout, and the logs of a service that never became
//! healthy in the job's log. An engine that never runs a service's health check (podman
//! without systemd) has it run by Hearth instead, through exec (`OwnCheck`).

use std::collections::HashMap;
use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecResults};
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
/// How long past a health check's first due time the engine may take to record a result
/// before Hearth runs the check itself.
const ENGINE_GRACE: Duration = Duration::from_secs(2);
/// Docker's defaults for a health check's unset interval, timeout and retries.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
/// How much of a failing check's output is kept (Docker keeps 4 KiB too).
const CHECK_OUTPUT_LIMIT: usize = 4096;

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
    // Every service was started before the wait: their health checks are due from now on.
    let started = Instant::now();
    let until = started + HEALTH_TIMEOUT;
    for service in services {
        let mut own: Option<OwnCheck> = None;
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
            let checked = state
                .health
                .as_ref()
                .and_then(|h| h.log.as_ref())
                .is_some_and(|log| !log.is_empty());
            let health = state.health.and_then(|h| h.status);
            let running = state.running == Some(true);
            let mut ready = match health {
                Some(HealthStatusEnum::HEALTHY) => true,
                None | Some(HealthStatusEnum::NONE) | Some(HealthStatusEnum::EMPTY) => running,
                _ => false,
            };
            // Podman runs health checks from systemd timers; without systemd (a CI container)
            // none ever runs and the service stays `starting` for good. A check the engine has
            // not run by the time it was due is run here, at its interval, with its retries.
            let mut own_failed = false;
            let unchecked = running && health == Some(HealthStatusEnum::STARTING) && !checked;
            if unchecked && own.is_none() {
                let config = inspected
                    .config
                    .as_ref()
                    .and_then(|c| c.healthcheck.as_ref());
                own = config.and_then(|config| OwnCheck::new(config, started));
            }
            if let Some(check) = own
                .as_mut()
                .filter(|c| unchecked && Instant::now() >= c.next)
            {
                let ran = tokio::select! {
                    ran = check.run(docker, &service.container) => ran,
                    () = cancel.cancelled() => {
                        return Err(BackendError::Cancelled(format!("waiting for the service `{}`", service.id)))
                    }
                };
                match ran {
                    Ok(passed) => ready = passed,
                    Err(e) => {
                        return Err(BackendError::Unsupported(format!(
                            "cannot run the health check of the service `{}`: {e}",
                            service.id
                        )))
                    }
                }
                own_failed = check.failures >= check.retries;
            }
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
                || own_failed
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
                if let Some(output) = own.as_ref().map(|c| &c.output).filter(|o| !o.is_empty()) {
                    log.line(SetupLevel::Warning, "Its health check said:");
                    log.line(
                        SetupLevel::Warning,
                        String::from_utf8_lossy(output).trim_end(),
                    );
                }
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

/// A service's health check run by Hearth, through exec, for an engine that does not run it.
struct OwnCheck {
    /// The check as a command (`CMD-SHELL` through `/bin/sh -c`, as the engines run it).
    argv: Vec<String>,
    interval: Duration,
    timeout: Duration,
    /// Failures before then do not count (`--health-start-period`).
    counts_from: Instant,
    retries: i64,
    /// Failures in a row.
    failures: i64,
    /// When the check runs next.
    next: Instant,
    /// What the last run printed (bounded).
    output: Vec<u8>,
}

impl OwnCheck {
    /// The check `config` describes, for a service started at `started`; first run when the
    /// engine should have recorded its first result. `None` for no check (`NONE`, empty).
    fn new(config: &HealthConfig, started: Instant) -> Option<OwnCheck> {
        let argv = match config.test.as_deref()? {
            [kind, command] if kind == "CMD-SHELL" => {
                vec!["/bin/sh".to_owned(), "-c".to_owned(), command.clone()]
            }
            [kind, argv @ ..] if kind == "CMD" && !argv.is_empty() => argv.to_vec(),
            _ => return None,
        };
        let duration = |nanos: Option<i64>, default: Duration| {
            nanos
                .and_then(|n| u64::try_from(n).ok())
                .filter(|&n| n > 0)
                .map_or(default, Duration::from_nanos)
        };
        let interval = duration(config.interval, DEFAULT_INTERVAL);
        let start_period = duration(config.start_period, Duration::ZERO);
        Some(OwnCheck {
            argv,
            interval,
            timeout: duration(config.timeout, DEFAULT_CHECK_TIMEOUT),
            counts_from: started + start_period,
            retries: config.retries.filter(|&r| r > 0).unwrap_or(DEFAULT_RETRIES),
            failures: 0,
            next: started + interval + ENGINE_GRACE,
            output: Vec::new(),
        })
    }

    /// Runs the check once in `container`: whether it passed (exit 0 within its timeout).
    async fn run(
        &mut self,
        docker: &Docker,
        container: &str,
    ) -> Result<bool, bollard::errors::Error> {
        let ran_at = Instant::now();
        self.next = ran_at + self.interval;
        self.output.clear();
        let options = CreateExecOptions {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(self.argv.clone()),
            ..Default::default()
        };
        let created = docker.create_exec(container, options).await?;
        let code = match docker.start_exec(&created.id, None).await? {
            StartExecResults::Attached { mut output, .. } => {
                let kept = &mut self.output;
                let drained = tokio::time::timeout(self.timeout, async {
                    while let Some(chunk) = output.next().await {
                        let chunk = chunk?.into_bytes();
                        let room = CHECK_OUTPUT_LIMIT.saturating_sub(kept.len());
                        kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    }
                    Ok::<(), bollard::errors::Error>(())
                })
                .await;
                match drained {
                    // Past its timeout the check failed (the engines count it so too); what
                    // it left running ends with the service.
                    Err(_) => None,
                    Ok(result) => {
                        result?;
                        exit_code(docker, &created.id).await?
                    }
                }
            }
            StartExecResults::Detached => None,
        };
        if code == Some(0) {
            return Ok(true);
        }
        if ran_at >= self.counts_from {
            self.failures += 1;
        }
        Ok(false)
    }
}

/// An exec's exit code once it has ended (its output can end a moment before it is marked
/// done); `None` if it is still marked running after a second.
async fn exit_code(docker: &Docker, exec: &str) -> Result<Option<i64>, bollard::errors::Error> {
    for _ in 0..100 {
        let inspected = docker.inspect_exec(exec).await?;
        if inspected.running != Some(true) {
            return Ok(inspected.exit_code);
        }
        sleep(Duration::from_millis(10)).await;
    }
    Ok(None)
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
