//! One task from the forge, run by the engine and reported back.
//!
//! The forge sends a single-job workflow (`workflow::payload`), the `github` context it built,
//! secrets, vars and the results of the job's needs. This module turns them into a
//! [`JobRequest`], with the job environment the reference runners give (the protocol spec's
//! §5), runs it on the backend its label names, and reports everything through a
//! [`TaskReporter`]. Whatever goes wrong, the task gets a final state: a payload that does not
//! parse, a label this runner cannot serve and a crashed job all end as a failure with the
//! reason in the log.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use hearth_backend::Reach;
use hearth_engine::job::{run_job, JobControl, JobRequest, RunnerInfo};
use hearth_engine::mask::Masker;
use hearth_events::Conclusion;
use hearth_expr::{Object, Value};
use hearth_forge::proto::runner::Result as TaskResult;
use hearth_forge::{Client, ReporterOptions, TaskInfo, TaskReporter};
use hearth_workflow::graph::{needs_status, JobResult};
use hearth_workflow::payload::SingleJob;
use hearth_workflow::plan::{decide_job, expand_job, JobContext, JobPlan};
use secrecy::{ExposeSecret as _, SecretString};
use tokio_util::sync::CancellationToken;

use crate::actions::GitActions;
use crate::route::{Backends, Route};

/// The owner label naming the runner a job is run by (its registration's uuid, unique where
/// names need not be: two runners of one name, on two forges, may share a Docker daemon):
/// what [`Backend::reap`](hearth_backend::Backend::reap) finds a runner's leftovers by.
pub const RUNNER_LABEL: &str = "hearth.runner";
/// The owner label naming the forge's task a job is.
pub const TASK_LABEL: &str = "hearth.task";

/// What every task of a daemon shares.
pub struct TaskRuntime {
    pub client: Client,
    /// The registration's uuid (`.runner`): whose jobs' resources are whose.
    pub runner_uuid: String,
    /// The forge's address as registered (`https://git.example.com`), without a trailing `/`.
    pub address: String,
    pub runner: RunnerInfo,
    /// Where jobs run, by the scheme of the label they pick.
    pub backends: Backends,
    pub reporter: ReporterOptions,
    /// `runner.envs` (and `env_file`) of the config: like `env:` at the workflow's top.
    pub envs: Vec<(String, String)>,
    /// Where fetched actions are kept.
    pub actions_cache: std::path::PathBuf,
    /// `runner.github_mirror`: fetch GitHub's actions from here instead.
    pub github_mirror: String,
    /// `runner.timeout`: the longest a task may run.
    pub timeout: Duration,
    pub version: String,
    /// What the forge said it supports (`X-Gitea-Actions-Capabilities`).
    pub forge_capabilities: Vec<String>,
    /// `container.registries`: those marked `expose_to_jobs` go to jobs that reach Docker.
    pub registries: Vec<crate::config::RegistryConfig>,
    /// The cache jobs are given (`cache.*`), when there is one.
    pub cache: Option<Arc<crate::cache::JobCache>>,
    /// The runner's proxy, passed on to its jobs (see `proxy`).
    pub proxy: Option<crate::proxy::JobProxy>,
    /// `runner.ca_file` over the system store, for git (jobs get it from their backend).
    pub ca_bundle: Option<std::path::PathBuf>,
    /// `runner.insecure`: git fetches actions without checking certificates too.
    pub insecure: bool,
}

/// How the daemon can stop a task: `cancel` as a first Ctrl-C does (`always()` steps still
/// run), `force` as the second.
#[derive(Clone, Default)]
pub struct TaskStop {
    pub cancel: CancellationToken,
    pub force: CancellationToken,
}

/// Runs `task` to its end and reports it; returns its result.
pub async fn run_task(runtime: Arc<TaskRuntime>, task: TaskInfo, stop: TaskStop) -> TaskResult {
    let file = match task.context_str("workflow") {
        "" => "workflow payload".to_owned(),
        name => name.to_owned(),
    };
    // Every row the daemon writes itself is masked as the engine masks its own: messages
    // quote evaluated values (labels, matrix values, `if:` results) that may hold a secret.
    let masker = task_masker(&task);
    // No reporter exists before the payload is read (it needs the number of steps), so a
    // panic there is caught here and reported like a payload that is not valid.
    let parsed = std::panic::catch_unwind(|| SingleJob::parse(&task.payload, &file));
    let single = match parsed {
        Ok(Ok(single)) => single,
        Ok(Err(diagnostics)) => {
            let reporter = start_reporter(&runtime, &task, 0);
            log(
                &reporter,
                &masker,
                &format!(
                    "##[error]The job's workflow, as the forge sent it, is not valid:\n{diagnostics}"
                ),
            );
            return finish(reporter, TaskResult::Failure, Vec::new()).await;
        }
        Err(panic) => {
            let reporter = start_reporter(&runtime, &task, 0);
            log(
                &reporter,
                &masker,
                &format!(
                    "##[error]The runner crashed while reading the job's workflow: {}",
                    panic_message(panic.as_ref())
                ),
            );
            return finish(reporter, TaskResult::Failure, Vec::new()).await;
        }
    };
    if single.job().uses.is_some() {
        return run_caller(&runtime, &task, &single, &file, masker, stop).await;
    }
    let reporter = start_reporter(&runtime, &task, single.job().steps.len());
    run_reported(reporter, &masker, async |reporter: &TaskReporter| {
        for warning in single.warnings() {
            log(reporter, &masker, &format!("##[warning]{warning}"));
        }
        let prepared = match prepare(&runtime, &task, &single, &file, &masker) {
            Ok(prepared) => prepared,
            Err(Prepared::Skip(reason)) => {
                log(reporter, &masker, &reason);
                return (TaskResult::Skipped, Vec::new());
            }
            Err(Prepared::Fail(message)) => {
                log(reporter, &masker, &format!("##[error]{message}"));
                return (TaskResult::Failure, Vec::new());
            }
        };

        let control = JobControl {
            cancel: stop.cancel.child_token(),
            force: stop.force.child_token(),
        };
        // The forge ending the task, and the runner's own time limit, cancel it as Ctrl-C
        // would. Aborted when dropped, so that a job that panics does not leave it waiting.
        let _watcher = watch_task(&runtime, &task, reporter, &control);
        let request = JobRequest {
            file: &file,
            workflow: single.workflow(),
            job: single.job(),
            planned: &prepared.planned,
            github: prepared.github,
            vars: prepared.vars,
            secrets: prepared.secrets,
            masker: prepared.masker,
            inputs: prepared.inputs,
            needs: prepared.needs,
            runner: runtime.runner.clone(),
            runner_env: prepared.runner_env,
            extra_env: runtime.envs.clone(),
            repository: None,
            bind_repository: false,
            label_image: prepared.route.image.clone(),
            // The forge, as the runner reaches it: the job must reach it too (checkout,
            // artifacts, the cache), from a container as well.
            reach: std::iter::once(forge_reach(&runtime.address))
                .chain(prepared.reach)
                .collect(),
            owner: vec![
                (RUNNER_LABEL.to_owned(), runtime.runner_uuid.clone()),
                (TASK_LABEL.to_owned(), task.id.to_string()),
            ],
            actions: Some(Arc::new(action_source(&runtime, &task))),
            env_folders: prepared.env_folders,
            forge_registry: forge_registry(&runtime.address, &task),
        };
        let outcome = run_job(
            prepared.route.backend.as_ref(),
            &request,
            reporter,
            &control,
        )
        .await;
        let cache = runtime.cache.as_ref().zip(prepared.cache_token.as_deref());
        if let Some(line) = cache.and_then(|(cache, token)| cache.activity(token)) {
            log(reporter, &masker, &line);
        }
        let result = match outcome.result {
            Conclusion::Success => TaskResult::Success,
            Conclusion::Failure => TaskResult::Failure,
            Conclusion::Cancelled => TaskResult::Cancelled,
            Conclusion::Skipped => TaskResult::Skipped,
        };
        (result, outcome.outputs)
    })
    .await
}

/// A task whose job calls a reusable workflow (an older forge's): its jobs run here (see
/// `caller`), reported as the task's log.
async fn run_caller(
    runtime: &Arc<TaskRuntime>,
    task: &TaskInfo,
    single: &SingleJob,
    file: &str,
    masker: Masker,
    stop: TaskStop,
) -> TaskResult {
    let reporter = start_reporter(runtime, task, single.job().steps.len());
    run_reported(reporter, &masker, async |reporter: &TaskReporter| {
        for warning in single.warnings() {
            log(reporter, &masker, &format!("##[warning]{warning}"));
        }
        let control = JobControl {
            cancel: stop.cancel.child_token(),
            force: stop.force.child_token(),
        };
        let _watcher = watch_task(runtime, task, reporter, &control);
        let inputs = match (task.context_str("event_name"), task.context.get("event")) {
            ("workflow_dispatch", Some(event)) => {
                crate::local_event::inputs_context(single.workflow(), event, &[])
            }
            _ => Object::new(),
        };
        let github = github_context(task, &runtime.address);
        let mut masker = masker.clone();
        let mut runner_env = job_env(runtime, task);
        let (reach, _) = job_cache(runtime, &github, &mut masker, &mut runner_env);
        let caller = super::caller::CallerTask {
            file,
            single,
            github,
            vars: string_object(&task.vars),
            inputs,
            secrets: task
                .secrets
                .iter()
                .map(|(name, value)| (name.clone(), SecretString::from(value.expose())))
                .collect(),
            masker,
            runner_env,
            reach,
            forge_registry: forge_registry(&runtime.address, task),
            actions: Arc::new(action_source(runtime, task)),
        };
        super::caller::run(runtime, task, caller, reporter, &control).await
    })
    .await
}

/// Cancels `control` when the forge ends the task or the runner's time limit is up; stops
/// watching when dropped.
fn watch_task(
    runtime: &TaskRuntime,
    task: &TaskInfo,
    reporter: &TaskReporter,
    control: &JobControl,
) -> AbortOnDrop {
    let ended = reporter.ended_by_forge();
    let cancel = control.cancel.clone();
    let timeout = runtime.timeout;
    let id = task.id;
    AbortOnDrop(tokio::spawn(async move {
        tokio::select! {
            _ = ended.cancelled() => {}
            _ = tokio::time::sleep(timeout) => {
                tracing::warn!("task {id}: the runner's time limit ({timeout:?}) is up");
            }
        }
        cancel.cancel();
    }))
}

/// Runs `job` with the task's `reporter`, then delivers the task's final state: the result
/// and outputs the job returns, or a failure when it panics.
///
/// This is the task's panic boundary. A panic would otherwise unwind through the reporter
/// and drop it (the daemon's `JoinSet` only logs the crash), so the forge would never learn
/// that the job ended and would show it running until it reaps it. Here the panic is caught,
/// its message (masked: it may quote anything) ends the log, and `finish` delivers every row
/// written before it and the failure. The job runs as a local task on the daemon's one
/// thread, so the boundary catches the unwind of its future rather than of a spawned task.
pub(crate) async fn run_reported<J>(reporter: TaskReporter, masker: &Masker, job: J) -> TaskResult
where
    J: AsyncFnOnce(&TaskReporter) -> (TaskResult, Vec<(String, String)>),
{
    // Unwind safety: after a panic nothing of the job is used again but the reporter, whose
    // state is a lock that recovers from poisoning and rows that are whole or absent.
    let ran = AssertUnwindSafe(job(&reporter)).catch_unwind().await;
    let (result, outputs) = match ran {
        Ok(ended) => ended,
        Err(panic) => {
            let message = masker.mask_text(panic_message(panic.as_ref()));
            tracing::error!("the job crashed: {message}");
            reporter.log(&format!(
                "##[error]The runner crashed while running the job: {message}"
            ));
            (TaskResult::Failure, Vec::new())
        }
    };
    finish(reporter, result, outputs).await
}

/// What a panic said (`panic!` gives a `&str` or a `String`).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

/// A row of the daemon's own, masked.
fn log(reporter: &TaskReporter, masker: &Masker, text: &str) {
    reporter.log(&masker.mask_text(text));
}

/// A spawned task that ends when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Actions come from the forge's default actions URL (Forgejo's key first, then Gitea's), with
/// `runner.github_mirror` standing in for GitHub; the task's token opens the forge's own.
fn action_source(runtime: &TaskRuntime, task: &TaskInfo) -> GitActions {
    let base = ["forgejo_default_actions_url", "gitea_default_actions_url"]
        .iter()
        .map(|key| task.context_str(key))
        .find(|url| !url.is_empty())
        .unwrap_or("https://github.com");
    let base = match runtime.github_mirror.as_str() {
        mirror if !mirror.is_empty() && base.trim_end_matches('/') == "https://github.com" => {
            mirror
        }
        _ => base,
    };
    GitActions::new(base, runtime.actions_cache.clone())
        .with_forge_token(task.context_str("token"), &runtime.address)
        .with_tls(runtime.ca_bundle.clone(), runtime.insecure)
}

fn start_reporter(runtime: &TaskRuntime, task: &TaskInfo, steps: usize) -> TaskReporter {
    TaskReporter::start(
        runtime.client.clone(),
        task.id,
        steps,
        runtime.reporter.clone(),
    )
}

async fn finish(
    reporter: TaskReporter,
    result: TaskResult,
    outputs: Vec<(String, String)>,
) -> TaskResult {
    if let Err(e) = reporter.finish(result, outputs).await {
        tracing::error!("{e}");
    }
    result
}

/// Everything the engine needs besides the job itself.
struct PreparedTask {
    planned: hearth_workflow::plan::PlannedJob,
    github: Object,
    vars: Object,
    inputs: Object,
    needs: Object,
    secrets: Vec<(String, SecretString)>,
    masker: Masker,
    /// What the runner adds to every job's environment.
    runner_env: Vec<(String, String)>,
    route: Route,
    /// The job's own `DOCKER_CONFIG`, when it reaches Docker and registries are exposed.
    env_folders: Vec<hearth_engine::job::EnvFolder>,
    /// The runner's side the job must reach besides the forge (the cache server).
    reach: Vec<Reach>,
    /// The job's token to the runner's cache, for the line saying what it did there.
    cache_token: Option<String>,
}

enum Prepared {
    /// The job's `if:` is false.
    Skip(String),
    Fail(String),
}

fn prepare(
    runtime: &TaskRuntime,
    task: &TaskInfo,
    single: &SingleJob,
    file: &str,
    masker: &Masker,
) -> Result<PreparedTask, Prepared> {
    let github = github_context(task, &runtime.address);
    let vars = string_object(&task.vars);
    // A dispatched run's inputs, typed as the workflow declares them (the payload keeps `on`).
    let inputs = match (task.context_str("event_name"), task.context.get("event")) {
        ("workflow_dispatch", Some(event)) => {
            crate::local_event::inputs_context(single.workflow(), event, &[])
        }
        _ => Object::new(),
    };
    let mut needs = Object::with_capacity(task.needs.len());
    let mut results = Vec::with_capacity(task.needs.len());
    for (id, need) in &task.needs {
        let mut entry = Object::with_capacity(2);
        entry.insert("result", Value::string(need.result.as_str()));
        entry.insert("outputs", Value::object(string_object(&need.outputs)));
        needs.insert(id.as_str(), Value::object(entry));
        results.push(match need.result.as_str() {
            "success" => JobResult::Success,
            "skipped" => JobResult::Skipped,
            "cancelled" => JobResult::Cancelled,
            _ => JobResult::Failure,
        });
    }

    let mut contexts = Object::with_capacity(4);
    contexts.insert("github", Value::object(github.clone()));
    contexts.insert("vars", Value::object(vars.clone()));
    contexts.insert("inputs", Value::object(inputs.clone()));
    contexts.insert("needs", Value::object(needs.clone()));
    let job = single.job();
    match decide_job(file, job, &contexts, needs_status(results, false)) {
        Ok(None) => {}
        Ok(Some(reason)) => return Err(Prepared::Skip(reason)),
        Err(e) => return Err(Prepared::Fail(e.to_string())),
    }
    let need_ids = single.needs().to_vec();
    let context = JobContext {
        contexts: &contexts,
        needs: &need_ids,
        needs_outputs_known: true,
    };
    let planned = match expand_job(file, job, &context) {
        Ok(JobPlan::Run(mut instances)) if instances.len() == 1 => instances.remove(0),
        Ok(JobPlan::Run(instances)) => {
            return Err(Prepared::Fail(format!(
                "the forge sent a job with {} matrix combinations; a task runs exactly one",
                instances.len()
            )))
        }
        Ok(JobPlan::Skipped { reason }) => return Err(Prepared::Skip(reason)),
        Ok(JobPlan::Deferred { reason, .. }) => return Err(Prepared::Fail(reason)),
        Err(e) => return Err(Prepared::Fail(e.to_string())),
    };
    let route = runtime
        .backends
        .route(&planned.runs_on)
        .map_err(|e| Prepared::Fail(e.to_string()))?;

    let secrets: Vec<(String, SecretString)> = task
        .secrets
        .iter()
        .map(|(name, value)| (name.clone(), SecretString::from(value.expose())))
        .collect();
    let mut masker = masker.clone();
    let mut runner_env = job_env(runtime, task);
    let (reach, cache_token) = job_cache(runtime, &github, &mut masker, &mut runner_env);
    let mut env_folders = Vec::new();
    if route.reaches_docker {
        let made = crate::job_docker_config::for_job(&runtime.registries)
            .map_err(|e| Prepared::Fail(e.to_string()))?;
        if let Some(config) = made {
            for secret in &config.secrets {
                masker.add(secret.expose_secret());
            }
            env_folders.push(config.folder);
        }
    }
    Ok(PreparedTask {
        planned,
        github,
        vars,
        inputs,
        needs,
        secrets,
        masker,
        runner_env,
        route,
        env_folders,
        reach,
        cache_token,
    })
}

/// The forge's own container registry, at the forge's host, with the task's actor and token:
/// images there that no other source has credentials for are pulled with them. `None` when
/// the task has no token.
fn forge_registry(address: &str, task: &TaskInfo) -> Option<hearth_backend::ForgeRegistry> {
    let token = task.context_str("token");
    if token.is_empty() {
        return None;
    }
    Some(hearth_backend::ForgeRegistry {
        host: image_host(address).to_owned(),
        credentials: hearth_backend::Credentials {
            username: task.context_str("actor").to_owned(),
            password: SecretString::from(token.to_owned()),
        },
    })
}

/// The forge's host as an image reference names it: the URL's authority without a default
/// port (`https://git.example.com:443/` → `git.example.com`, `http://127.0.0.1:3000`
/// → `127.0.0.1:3000`).
fn image_host(address: &str) -> &str {
    let (scheme, rest) = address.split_once("://").unwrap_or(("", address));
    let authority = rest.split('/').next().unwrap_or_default();
    let default_port = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => return authority,
    };
    authority.strip_suffix(default_port).unwrap_or(authority)
}

/// A masker holding the task's secrets and every token the forge put in its context: the
/// task's `token`, `gitea_runtime_token`, the OIDC request token (`actions_id_token_request_token`
/// and Forgejo's `forgejo_`-prefixed one) and any the forge adds later under a `*_token` key.
/// Jobs get them as variables (`ACTIONS_RUNTIME_TOKEN`, `ACTIONS_ID_TOKEN_REQUEST_TOKEN`) and
/// read them in the `github` context, so each must be hidden wherever it is printed.
fn task_masker(task: &TaskInfo) -> Masker {
    let mut masker = Masker::new();
    for value in task.secrets.values() {
        masker.add(value.expose());
    }
    for token in task.context_tokens() {
        masker.add(token);
    }
    masker.build();
    masker
}

/// The `github` context from the forge's, adapted as the reference runners adapt it: the
/// server URL is the address the runner was registered with (the forge's `ROOT_URL` may not be
/// reachable from here), the API is Gitea's, there is no GraphQL, and the token is the task's.
fn github_context(task: &TaskInfo, address: &str) -> Object {
    let json = serde_json::Value::Object(task.context.clone());
    let mut github = Value::from_json(&json)
        .as_object()
        .cloned()
        .unwrap_or_default();
    github.insert("server_url", Value::string(address));
    github.insert("api_url", Value::string(format!("{address}/api/v1")));
    github.insert("graphql_url", Value::string(""));
    let token = ["FORGEJO_TOKEN", "GITEA_TOKEN", "GITHUB_TOKEN"]
        .iter()
        .find_map(|name| task.secrets.get(*name).filter(|t| !t.is_empty()))
        .map_or_else(|| task.context_str("token"), |secret| secret.expose())
        .to_owned();
    github.insert("token", Value::string(token));
    for key in [
        "gitea_runtime_token",
        "gitea_default_actions_url",
        "forgejo_default_actions_url",
    ] {
        github.remove(key);
    }
    github
}

/// The forge, as the runner reaches it: a job must reach it too (checkout, artifacts), from a
/// container as well, or it cannot run.
pub fn forge_reach(address: &str) -> Reach {
    Reach::required(
        address,
        "the forge",
        "set container.network to a network the forge is on, or register the runner with an \
         address of the forge that containers can reach",
    )
}

/// The cache a job is given (`ACTIONS_CACHE_URL`, added to `env`, with a token of the job's
/// scopes, masked, unless an external server takes none). Returns the runner's side the job
/// must reach for it (optional: a job that cannot runs without its cache), and the job's token.
fn job_cache(
    runtime: &TaskRuntime,
    github: &Object,
    masker: &mut Masker,
    env: &mut Vec<(String, String)>,
) -> (Vec<Reach>, Option<String>) {
    let valid = runtime.timeout + Duration::from_secs(3600);
    let access = runtime
        .cache
        .as_ref()
        .and_then(|cache| cache.for_job(github, valid));
    let mut reach = Vec::new();
    let mut token = None;
    if let Some(access) = access {
        if let Some(secret) = &access.token {
            masker.add(secret);
        }
        env.push(("ACTIONS_CACHE_URL".to_owned(), access.url));
        reach.push(access.reach);
        token = access.token;
    }
    if let Some(proxy) = &runtime.proxy {
        let cache = reach.first().map(|r| r.url.clone()).unwrap_or_default();
        let (variables, proxies) = proxy.for_job(&[&runtime.address, &cache]);
        env.extend(variables);
        reach.extend(proxies);
        for secret in proxy.secrets() {
            masker.add(&secret);
        }
    }
    (reach, token)
}

/// The variables the reference runners add for every job (§5.1 of the protocol spec), over the
/// environment the job's runtime starts from.
fn job_env(runtime: &TaskRuntime, task: &TaskInfo) -> Vec<(String, String)> {
    let address = &runtime.address;
    let runtime_token = match task.context_str("gitea_runtime_token") {
        "" => task.context_str("token"),
        token => token,
    };
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut set = |name: &str, value: &str| {
        env.insert(name.to_owned(), value.to_owned());
    };
    set(
        "ACTIONS_RUNTIME_URL",
        &format!("{address}/api/actions_pipeline/"),
    );
    set("ACTIONS_RESULTS_URL", address);
    set("ACTIONS_RUNTIME_TOKEN", runtime_token);
    set("GITEA_ACTIONS", "true");
    set("GITEA_ACTIONS_RUNNER_VERSION", &runtime.version);
    if task.context.contains_key("forgejo_server_version") {
        set("FORGEJO_ACTIONS", "true");
        set("FORGEJO_ACTIONS_RUNNER_VERSION", &runtime.version);
    }
    if !runtime.forge_capabilities.is_empty() {
        set(
            "GITEA_ACTIONS_CAPABILITIES",
            &runtime.forge_capabilities.join(","),
        );
    }
    let run_id = task.context_str("run_id");
    if !run_id.is_empty() {
        set("GITEA_RUN_ID", run_id);
    }
    for prefix in ["forgejo_", ""] {
        let url = task.context_str(&format!("{prefix}actions_id_token_request_url"));
        let token = task.context_str(&format!("{prefix}actions_id_token_request_token"));
        if !url.is_empty() && !token.is_empty() {
            set("ACTIONS_ID_TOKEN_REQUEST_URL", url);
            set("ACTIONS_ID_TOKEN_REQUEST_TOKEN", token);
            break;
        }
    }
    env.into_iter().collect()
}

fn string_object(map: &BTreeMap<String, String>) -> Object {
    let mut object = Object::with_capacity(map.len());
    for (key, value) in map {
        object.insert(key.as_str(), Value::string(value.as_str()));
    }
    object
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_forges_registry_host_is_its_urls_authority_without_a_default_port() {
        assert_eq!(
            super::image_host("https://git.example.com:443/"),
            "git.example.com"
        );
        assert_eq!(
            super::image_host("https://git.example.com/gitea"),
            "git.example.com"
        );
        assert_eq!(super::image_host("http://127.0.0.1:3000"), "127.0.0.1:3000");
        assert_eq!(super::image_host("http://forge:80"), "forge");
    }

    use super::*;

    use hearth_fake_forge::Status;

    #[tokio::test]
    async fn a_job_that_panics_still_reports_its_failure_and_every_row() {
        let hearth_fake_forge::runner::TaskInHand {
            forge,
            client,
            job,
            task_id,
        } = hearth_fake_forge::runner::task_in_hand(1).await;
        let spool = tempfile::tempdir().expect("dir");
        let options = ReporterOptions {
            report_interval: Duration::from_millis(100),
            spill_dir: spool.path().to_owned(),
            ..ReporterOptions::default()
        };
        let reporter = TaskReporter::start(client, task_id, 1, options);
        let mut masker = Masker::new();
        masker.add("panic-secret-8812");
        masker.build();

        let result = run_reported(reporter, &masker, async |reporter: &TaskReporter| {
            reporter.log("before the panic");
            tokio::task::yield_now().await;
            if task_id != 0 {
                panic!("boom with panic-secret-8812 in it");
            }
            (TaskResult::Success, Vec::new())
        })
        .await;

        assert_eq!(result, TaskResult::Failure);
        let task = forge.task(job).expect("task");
        assert_eq!(task.status, Status::Failure);
        assert!(task.log_archived, "the last rows were sent with no_more");
        let lines = forge.log_lines(job);
        assert!(lines.iter().any(|l| l == "before the panic"), "{lines:#?}");
        assert!(
            lines.iter().any(|l| l.contains("boom with *** in it")),
            "{lines:#?}"
        );
        assert!(
            lines.iter().all(|l| !l.contains("panic-secret-8812")),
            "{lines:#?}"
        );
    }
}
