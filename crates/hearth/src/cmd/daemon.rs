//! `hearth daemon`: runs jobs from the forge the runner was registered with.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use hearth_engine::job::RunnerInfo;
use hearth_forge::{Client, ClientOptions, Credentials, Observer, PollerOptions, ReporterOptions};
use hearth_runner::daemon::observe::ForgeMetrics;
use std::sync::Arc;

use hearth_host::HostBackend;
use hearth_runner::route::Backends;
use tokio_util::sync::CancellationToken;

use crate::cmd::docker;
use crate::cmd::kubernetes::{self, RegistrationStore};
use crate::cmd::register::parse_labels;
use hearth_runner::config::{Config, LogLevel};
use hearth_runner::daemon::{self, DaemonOptions, TaskRuntime, TaskStop};
use hearth_runner::labels::Label;

#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// Take one job, run it, and exit (also GITEA_RUNNER_ONCE).
    #[arg(long, env = "GITEA_RUNNER_ONCE", value_parser = clap::builder::BoolishValueParser::new())]
    once: bool,
    /// Labels, comma-separated, over those of the config and the .runner file (also
    /// GITEA_RUNNER_LABELS).
    #[arg(long, env = "GITEA_RUNNER_LABELS")]
    labels: Option<String>,
}

pub fn run(args: DaemonArgs, config: Option<&Path>) -> Result<ExitCode> {
    let (config, warnings) = Config::load(config)?;
    init_logging(config.log.level, config.log.json);
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    // Made first: a registration kept in a Secret is read through the Kubernetes client,
    // which runs on it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // `runner.file`, or the Secret `kubernetes.runner_secret`.
    let store = runtime.block_on(RegistrationStore::open(&config))?;
    let mut registration = runtime.block_on(store.load())?;

    // Labels: the flag, then the config, then the registration; the registration follows.
    let labels = match args.labels.as_deref().filter(|l| !l.trim().is_empty()) {
        Some(specs) => parse_labels(specs)?,
        None if !config.runner.labels.is_empty() => config.runner.labels.clone(),
        None => registration
            .parsed_labels()
            .with_context(|| format!("{}: a label is not valid", store.origin().display()))?,
    };
    let specs: Vec<String> = labels.iter().map(Label::spec).collect();
    if specs != registration.labels {
        registration.labels = specs;
        runtime
            .block_on(store.save(&registration))
            .context("cannot record the new labels in the registration")?;
    }
    drop(store);

    let version = env!("CARGO_PKG_VERSION").to_owned();
    let address = registration.address.trim_end_matches('/').to_owned();
    let error_backoff_max = config
        .runner
        .fetch_interval_max
        .max(std::time::Duration::from_secs(10));
    // A poll round takes at most a fetch and a wait; twice that, and some, is being stuck.
    let stale_after = (config.runner.fetch_timeout + error_backoff_max) * 2 + STUCK_MARGIN;
    let metrics = config.metrics.enabled.then(|| {
        Arc::new(hearth_metrics::Metrics::new(
            Some(config.runner.log_spill_dir.join("journal")),
            stale_after,
        ))
    });
    let observer = metrics
        .clone()
        .map(|m| Observer::new(Arc::new(ForgeMetrics(m))))
        .unwrap_or_default();
    let client = Client::new(&ClientOptions {
        address: address.clone(),
        insecure: config.runner.insecure,
        ca_file: config.runner.ca_file.clone(),
        request_timeout: config.runner.request_timeout,
        version: version.clone(),
    })?
    .with_credentials(Credentials {
        uuid: registration.uuid.clone(),
        token: registration.token.clone(),
    })
    .with_observer(observer.clone());
    let options = DaemonOptions {
        poller: PollerOptions {
            capacity: config.runner.capacity,
            fetch_interval: config.runner.fetch_interval,
            fetch_interval_max: config.runner.fetch_interval_max,
            error_backoff_max,
            fetch_timeout: config.runner.fetch_timeout,
            once: args.once || registration.ephemeral,
        },
        shutdown_timeout: config.runner.shutdown_timeout,
        label_names: labels.names().map(str::to_owned).collect(),
        version: version.clone(),
        work_folder: config.host.workdir_parent.clone(),
        min_free_disk_space_mb: config.health_check.min_free_disk_space_mb,
        resume_free_disk_space_mb: config.health_check.resume_free_disk_space_mb,
    };
    let reporter = ReporterOptions {
        report_interval: config.runner.report_interval,
        memory_limit: usize::try_from(config.runner.log_memory_limit).unwrap_or(usize::MAX),
        spill_dir: config.runner.log_spill_dir.clone(),
        observer,
        // Running tasks' journals, finalized at the next start after a crash.
        journal: Some(config.runner.log_spill_dir.join(hearth_forge::JOURNAL_DIR)),
        ..ReporterOptions::default()
    };
    let runner_name = registration.name.clone();

    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let shutdown = CancellationToken::new();
        let stop = TaskStop::default();
        let signals = daemon::watch_signals(shutdown.clone(), stop.clone());
        // Served from before the declaration, so that /readyz says the runner is not ready.
        let _serving = match &metrics {
            Some(metrics) => {
                Some(hearth_metrics::serve(&config.metrics.addr, metrics.clone()).await?)
            }
            None => None,
        };
        let forge_capabilities = daemon::declare(&client, &options, &shutdown).await?;
        tracing::info!(
            "runner {runner_name} polling {address} with capacity {}",
            options.poller.capacity
        );
        let wants_docker = labels.any_docker();
        let wants_kubernetes = labels.any_kubernetes();
        let externals = config.host.workdir_parent.join("_externals");
        // `runner.ca_file` reaches jobs too: host jobs through these variables, containers
        // through the Docker backend, git through `GitActions`.
        let trust = match &config.runner.ca_file {
            Some(ca_file) => {
                let system = hearth_runner::trust::system_store();
                Some(hearth_runner::trust::bundle(
                    ca_file,
                    system.as_deref(),
                    &externals,
                )?)
            }
            None => None,
        };
        let host_env = hearth_host::runner_env()
            .into_iter()
            .filter(|(name, _)| !is_runner_secret(name))
            .chain(
                trust
                    .iter()
                    .flat_map(hearth_runner::trust::CaBundle::host_env),
            )
            .collect();
        let host: Arc<dyn hearth_backend::Backend> =
            Arc::new(HostBackend::new(config.host.workdir_parent.clone()).with_base_env(host_env));
        let mut backends = Backends::new(labels);
        let mut docker_backend = None;
        if wants_docker || config.container.require_docker {
            // Options every job container would refuse are the runner's mistake: said once,
            // at start, not in every job's log.
            hearth_docker::options::parse(&config.container.options, config.container.privileged)
                .map_err(|e| anyhow::anyhow!("container.options: {e}"))?;
            // A Docker-in-Docker sidecar may start after the runner: waited for, with a message.
            let patience = match config.container.docker_timeout {
                Duration::ZERO => DOCKER_PATIENCE,
                configured => configured,
            };
            let root = config.host.workdir_parent.join("docker");
            let externals = externals.clone();
            let warn = |m: &str| tracing::warn!("{m}");
            let made = docker::backend(
                &config.container,
                trust.as_ref(),
                root,
                externals,
                patience,
                warn,
            );
            match made.await {
                Ok((docker, socket_in_jobs)) => {
                    docker_backend = Some(docker.clone());
                    backends = backends
                        .with_docker_socket_in_jobs(socket_in_jobs)
                        .with_docker(Arc::new(docker));
                }
                Err(e) if config.container.require_docker => return Err(e.into()),
                Err(e) => tracing::warn!("jobs with a docker label will fail: {e}"),
            }
        }
        if wants_kubernetes {
            // As with Docker: a cluster the runner cannot use fails its labels' jobs, each
            // with a message saying so, and the runner's other labels still run.
            match kubernetes::backend(&config.kubernetes, externals.clone()).await {
                Ok(backend) => {
                    tracing::info!(
                        "jobs with a kubernetes label run as Pods in the namespace {}",
                        backend.namespace()
                    );
                    backends = backends.with_kubernetes(Arc::new(backend));
                }
                Err(e) => tracing::warn!("jobs with a kubernetes label will fail: {e:#}"),
            }
        }
        let docker_root = config.host.workdir_parent.join("docker");
        let folders = (docker_root, externals);
        let host = docker::host_with_docker(
            host,
            docker_backend,
            &config.container,
            trust.as_ref(),
            folders,
        );
        let backends = backends.with_host(host);
        let cache = match hearth_runner::cache::JobCache::start(&config.cache).await {
            Ok(cache) => cache,
            Err(e) => {
                tracing::warn!("jobs get no cache: {e}");
                None
            }
        };
        let task_runtime = TaskRuntime {
            client: client.clone(),
            runner_uuid: registration.uuid.clone(),
            address,
            runner: RunnerInfo::this_machine(runner_name),
            backends,
            actions_cache: config.host.workdir_parent.join("_actions"),
            github_mirror: config.runner.github_mirror.clone(),
            reporter,
            envs: config.runner.envs.clone().into_iter().collect(),
            timeout: config.runner.timeout,
            version,
            forge_capabilities,
            registries: config.container.registries.clone(),
            cache,
            metrics,
            proxy: hearth_runner::proxy::JobProxy::from_process(),
            ca_bundle: trust.map(|bundle| bundle.path),
            insecure: config.runner.insecure,
        };
        let code = daemon::run(client, task_runtime, options, shutdown, stop).await;
        signals.abort();
        Ok(code?)
    })
}

/// Where the Docker backend takes registry credentials from: the config's entries and files,
/// then the runner user's own Docker config.
/// How long the daemon waits at start for a Docker daemon that does not answer yet, when
/// `container.docker_timeout` does not say.
const DOCKER_PATIENCE: Duration = Duration::from_secs(60);

/// What `/healthz` allows a poll loop beyond its longest round before calling it stuck.
const STUCK_MARGIN: Duration = Duration::from_secs(30);

/// Variables of the runner's own set-up that jobs must not see.
fn is_runner_secret(name: &str) -> bool {
    name.ends_with("_RUNNER_REGISTRATION_TOKEN")
        || name.ends_with("_RUNNER_REGISTRATION_TOKEN_FILE")
}

/// Logs to stderr at the config's level, as text coloured only on a terminal (`NO_COLOR`
/// honoured) or as JSON (`log.format: json`); `HEARTH_LOG` (`info`, `hearth_forge=debug,warn`)
/// overrides the level. A plain target filter, not `EnvFilter`: its regular expressions would cost
/// the daemon memory for nothing.
fn init_logging(level: LogLevel, json: bool) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let level = match level {
        LogLevel::Trace => LevelFilter::TRACE,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Error | LogLevel::Fatal => LevelFilter::ERROR,
    };
    let filter = std::env::var("HEARTH_LOG")
        .ok()
        .and_then(|text| text.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(level));
    let text = (!json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(hearth_runner::exec::console::color_for_stderr())
    });
    let json = json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
    });
    let _ = tracing_subscriber::registry()
        .with(text)
        .with(json)
        .with(filter)
        .try_init();
}
