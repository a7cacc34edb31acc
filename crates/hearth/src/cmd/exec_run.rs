//! `hearth exec`: finds the workflows an event triggers, plans their jobs, and runs them on
//! this machine, reporting to the console (or as JSON lines).

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use hearth_backend::Backend;
use hearth_engine::job::JobControl;
use hearth_events::EventSink;
use hearth_host::HostBackend;
use hearth_runner::actions::GitActions;
use hearth_runner::config::{CacheConfig, Config, ContainerConfig, KubernetesConfig};
use hearth_runner::exec::inputs::ValueFlags;
use hearth_runner::exec::local::{self, ExplainSkips, LocalOptions};
use hearth_runner::exec::results::RunResults;
use hearth_runner::exec::schedule::PlannedWorkflow;
use hearth_runner::exec::{console, json};
use hearth_runner::labels::Labels;
use hearth_runner::route::Backends;
use hearth_workflow::plan::{self, JobPlan};

use crate::cmd::docker;
use crate::cmd::exec::ExecArgs;
use crate::cmd::kubernetes;

/// Runs `hearth exec`.
pub fn run(args: ExecArgs, config_file: Option<&Path>) -> Result<ExitCode> {
    let ExecConfig {
        container,
        cache,
        trust,
        insecure,
        kubernetes: kubernetes_config,
    } = exec_config(&args, config_file)?;
    let (options, labels) = local_options(&args)?;
    let loaded = local::load(&options)?;
    if args.list {
        list(&loaded.workflows);
        return Ok(exit_code(loaded.invalid));
    }
    if loaded.workflows.is_empty() {
        eprintln!("hearth: no workflow runs on `{}`", args.event);
        return Ok(exit_code(loaded.invalid));
    }

    let sink = make_sink(args.json);
    let root = std::env::temp_dir().join(format!("hearth-exec-{}", std::process::id()));
    // One run's jobs share the repository: a finished job's folder is refreshed for the next
    // rather than removed and copied anew (see hearth_host's `spares`).
    let mut host = HostBackend::new(root.clone()).with_folder_reuse();
    if let Some(bundle) = &trust {
        let env = hearth_host::runner_env()
            .into_iter()
            .chain(bundle.host_env());
        host = host.with_base_env(env.collect());
    }
    let host: Arc<dyn Backend> = Arc::new(host);
    let wants_docker = labels.any_docker();
    let wants_kubernetes = labels.any_kubernetes();
    let mut backends = Backends::new(labels);
    let ca_bundle = trust.as_ref().map(|bundle| bundle.path.clone());
    let actions = Arc::new(action_source(&args)?.with_tls(ca_bundle, insecure));

    // One thread: every job's future is polled from `block_on` on this thread anyway (they are
    // joined, not spawned), so worker threads would only wait for the processes' pipes and
    // exits and hand each event over, two thread switches per event, several per step. The
    // processes run in parallel all the same; blocking file work goes to tokio's blocking pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(async {
        let mut docker_backend = None;
        if wants_docker {
            let patience = container.docker_timeout;
            let warn = |m: &str| eprintln!("hearth: {m}");
            let externals = local::externals_dir();
            let made = docker::backend(
                &container,
                trust.as_ref(),
                root.join("docker"),
                externals,
                patience,
                warn,
            );
            match made.await {
                Ok((docker, socket_in_jobs)) => {
                    docker_backend = Some(docker.clone());
                    backends = backends
                        .clone()
                        .with_docker_socket_in_jobs(socket_in_jobs)
                        .with_docker(Arc::new(docker));
                }
                Err(e) => eprintln!("hearth: jobs with a docker label will not run: {e}"),
            }
        }
        // A cluster that cannot be used is said once here; its labels' jobs then fail, each
        // saying so, and the other labels' jobs run (as without Docker).
        if wants_kubernetes {
            match kubernetes::backend(&kubernetes_config, local::externals_dir()).await {
                Ok(backend) => backends = backends.clone().with_kubernetes(Arc::new(backend)),
                Err(e) => eprintln!("hearth: jobs with a kubernetes label will not run: {e:#}"),
            }
        }
        let folders = (root.join("docker"), local::externals_dir());
        let host =
            docker::host_with_docker(host, docker_backend, &container, trust.as_ref(), folders);
        backends = backends.clone().with_host(host);
        let artifacts = args
            .artifact_server_path
            .clone()
            .unwrap_or_else(|| root.join("artifacts"));
        let results = match RunResults::start(&cache, &artifacts).await {
            Ok(results) => {
                if let Some(e) = results.cache_error() {
                    eprintln!("hearth: jobs get no cache: {e}");
                }
                Some(results)
            }
            Err(e) => {
                eprintln!("hearth: jobs get no cache and no artifacts: {e}");
                None
            }
        };
        let control = JobControl::default();
        let signals = watch_signals(control.clone());
        let outcome = local::run(
            &options,
            loaded,
            backends,
            actions,
            results.as_ref(),
            sink.as_ref(),
            &control,
        )
        .await;
        signals.abort();
        if let Some(results) = results {
            results.stop().await;
        }
        outcome
    });
    // In one removal, the folders still set aside for reuse with the rest: their folders are
    // then all removed side by side (dropping the backend afterwards finds them gone).
    let _ = hearth_host::remove_folder(&root);
    sink.flush();
    if let Some(line) = &outcome.cache_activity {
        eprintln!("hearth: {line}");
    }
    if let Some(error) = sink.finish() {
        // A closed pipe (`hearth exec | head`) is the reader's choice, not a problem.
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("hearth: writing the log failed: {error}");
        }
    }
    Ok(exit_code(outcome.failed()))
}

/// What `hearth exec`'s flags ask for: the run's options and the runner's labels.
pub fn local_options(args: &ExecArgs) -> Result<(LocalOptions, Labels)> {
    let directory = std::path::absolute(&args.directory)
        .with_context(|| format!("cannot resolve {}", args.directory.display()))?;
    let options = LocalOptions {
        event: args.event.clone(),
        workflows: args.workflows.clone(),
        directory,
        event_path: args.event_path.clone(),
        jobs_only: args.jobs_only.clone(),
        values: ValueFlags {
            secrets: args.secrets.clone(),
            secret_files: args.secret_files.clone(),
            vars: args.vars.clone(),
            var_files: args.var_files.clone(),
            envs: args.envs.clone(),
            env_files: args.env_files.clone(),
            inputs: args.inputs.clone(),
            input_files: args.input_files.clone(),
        },
        matrix: args.matrix.clone(),
        actor: args.actor.clone(),
        ignore_filters: args.ignore_filters,
        dry_run: args.dry_run,
        bind: args.bind,
        parallel: args.parallel,
        explain_skips: match (args.json, args.list) {
            (true, _) => ExplainSkips::Quiet,
            (false, true) => ExplainSkips::All,
            (false, false) => ExplainSkips::Named,
        },
        environment: None,
    };
    let labels = Labels::from_flags(&args.labels, &args.platforms)?;
    Ok((options, labels))
}

/// Where exec's actions come from: `--default-actions-url` with the cache, `--offline`, and
/// each `--action-override ACTION=DIR`.
fn action_source(args: &ExecArgs) -> Result<GitActions> {
    let mut source =
        GitActions::new(&args.default_actions_url, local::actions_cache()).offline(args.offline);
    for spec in &args.action_overrides {
        let (action, folder) = spec
            .split_once('=')
            .filter(|(action, folder)| action.contains('@') && !folder.is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!("--action-override {spec}: expected owner/repo@ref=DIR")
            })?;
        let folder = std::path::absolute(folder)
            .with_context(|| format!("--action-override {spec}: cannot resolve {folder}"))?;
        if !folder.is_dir() {
            anyhow::bail!(
                "--action-override {spec}: {} is not a folder",
                folder.display()
            );
        }
        source = source.with_override(action, folder);
    }
    Ok(source)
}

/// The config's `container.*`, `cache.*` and `kubernetes.*` keys (the defaults without
/// `-c FILE`: the cluster of `KUBECONFIG` or `~/.kube/config`), with the flags over them:
/// `--pull` and `--container-options` (after the config's options, so they win), and the
/// `--cache-server-*` flags.
fn exec_config(args: &ExecArgs, file: Option<&Path>) -> Result<ExecConfig> {
    let (config, warnings) = match file {
        Some(_) => Config::load(file)?,
        // No config file: the defaults, not the deprecated GITEA_* variables the daemon reads.
        None => Config::load_with_env(None, &|_| None)?,
    };
    for warning in warnings {
        eprintln!("hearth: {warning}");
    }
    let mut cache = config.cache;
    cache.enabled &= !args.no_cache_server;
    if let Some(dir) = &args.cache_server_path {
        cache.dir = dir.clone();
    }
    if let Some(address) = &args.cache_server_addr {
        cache.host = address.clone();
    }
    if let Some(port) = args.cache_server_port {
        cache.port = port;
    }
    let mut container = config.container;
    container.force_pull |= args.pull;
    let flag = args.container_options.trim();
    // Named as the user wrote them: the file's key, the flag, or both.
    let source = match (file, container.options.trim().is_empty(), flag.is_empty()) {
        (Some(file), false, true) => format!("{}: container.options", file.display()),
        (Some(_), false, false) => "container.options and --container-options".to_owned(),
        _ => "--container-options".to_owned(),
    };
    if !flag.is_empty() {
        container.options = format!("{} {flag}", container.options).trim().to_owned();
    }
    // Refused here, before any job starts, rather than by every container job.
    hearth_docker::options::parse(&container.options, container.privileged)
        .map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
    // `runner.ca_file` reaches a local run's jobs as the daemon's.
    let trust = match &config.runner.ca_file {
        Some(ca_file) => {
            let system = hearth_runner::trust::system_store();
            let folder = local::externals_dir();
            Some(hearth_runner::trust::bundle(
                ca_file,
                system.as_deref(),
                &folder,
            )?)
        }
        None => None,
    };
    Ok(ExecConfig {
        container,
        cache,
        trust,
        insecure: config.runner.insecure,
        kubernetes: config.kubernetes,
    })
}

/// What of the config file a local run uses.
struct ExecConfig {
    container: ContainerConfig,
    cache: CacheConfig,
    trust: Option<hearth_runner::trust::CaBundle>,
    insecure: bool,
    kubernetes: KubernetesConfig,
}

fn exit_code(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The sink for people or for machines, with what it must do when all jobs ended.
trait FinalSink: EventSink {
    /// Everything ran: print the summary; returns the first write that failed, if any.
    fn finish(&self) -> Option<std::io::Error>;
}

fn make_sink(json: bool) -> Box<dyn FinalSink> {
    if json {
        Box::new(json::JsonLines::new(std::io::stdout()))
    } else {
        let color = console::color_for_stdout();
        Box::new(console::Console::new(std::io::stdout(), color))
    }
}

impl<W: std::io::Write + Send> FinalSink for json::JsonLines<W> {
    fn finish(&self) -> Option<std::io::Error> {
        self.take_error()
    }
}

impl<W: std::io::Write + Send> FinalSink for console::Console<W> {
    fn finish(&self) -> Option<std::io::Error> {
        self.write_summary();
        self.take_error()
    }
}

/// `-l`: the jobs in stage order, as act lists them.
fn list(workflows: &[PlannedWorkflow]) {
    let mut rows = vec![[
        "Stage".to_owned(),
        "Job ID".to_owned(),
        "Job name".to_owned(),
        "Workflow name".to_owned(),
        "Workflow file".to_owned(),
    ]];
    for planned in workflows {
        let entries = match plan::plan(&planned.workflow, &planned.label, &planned.run) {
            Ok(entries) => entries,
            Err(diagnostics) => {
                eprintln!("{diagnostics}");
                continue;
            }
        };
        let mut stage: HashMap<&str, usize> = HashMap::new();
        let name = planned
            .workflow
            .name
            .as_ref()
            .map_or(String::new(), |n| n.value.clone());
        for entry in &entries {
            let depth = entry
                .needs
                .iter()
                .map(|n| stage.get(n.as_str()).map_or(0, |d| d + 1))
                .max()
                .unwrap_or(0);
            stage.insert(&entry.job_id, depth);
            let names: Vec<String> = match &entry.plan {
                JobPlan::Run(instances) => instances.iter().map(|i| i.name.clone()).collect(),
                JobPlan::Deferred { job, .. } => vec![job.name.clone()],
                JobPlan::Skipped { .. } => vec![format!("{} (skipped)", entry.job_id)],
            };
            for job_name in names {
                rows.push([
                    depth.to_string(),
                    entry.job_id.clone(),
                    job_name,
                    name.clone(),
                    planned.label.clone(),
                ]);
            }
        }
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}

/// First SIGINT or SIGTERM cancels the run (running steps are stopped, `always()` steps still
/// run); a second one stops those too.
fn watch_signals(control: JobControl) -> tokio::task::JoinHandle<()> {
    hearth_runner::system::on_interrupts(move |received| {
        if received == 1 {
            eprintln!("hearth: cancelling (again to stop `always()` steps too)");
            control.cancel.cancel();
        } else {
            control.force.cancel();
        }
    })
}
