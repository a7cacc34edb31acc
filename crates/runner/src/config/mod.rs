//! The runner's `config.yaml`: act_runner's keys and defaults, plus a few of Hearth's own.
//!
//! Loading is in three steps, as in act_runner: the file is read into Go-zero values
//! ([`raw`]), the deprecated `GITEA_*` variables apply when there is no file
//! ([`legacy_env`]), then `runner.env_file` is merged and every value still zero gets its
//! default ([`Config::resolve`]). Relative paths stay relative to the directory Hearth runs
//! in, as act_runner's do.
//!
//! Problems come back in two kinds: a value that cannot be used is a [`ConfigError`] at
//! `file:line:col`; something Hearth can work with but the user should know about (an
//! unknown key, a deprecated name) is a [`Warning`].

mod duration;
pub mod example;
mod kubernetes;
mod legacy_env;
mod raw;
mod reader;
mod size;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hearth_workflow::yaml::{self, Pos, YamlError};
use indexmap::IndexMap;
use thiserror::Error;

use crate::exec::inputs::{parse_dotenv, InputError};
use crate::labels::Labels;
use raw::RawConfig;
use reader::Reader;

pub use kubernetes::{KubernetesConfig, PullPolicy, DEFAULT_SERVICE_ACCOUNT};

/// Looks up an environment variable; the process environment in real runs, a table in tests.
pub type Environment<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The whole configuration, with every default applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub log: LogConfig,
    pub runner: RunnerConfig,
    pub cache: CacheConfig,
    pub container: ContainerConfig,
    pub host: HostConfig,
    pub metrics: MetricsConfig,
    pub health_check: HealthCheckConfig,
    /// Hearth's `kubernetes:`: the cluster of `kubernetes://` labels.
    pub kubernetes: KubernetesConfig,
}

/// `log:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `log.level`, default `info`.
    pub level: LogLevel,
    /// Hearth: `log.format: json`, one JSON object per line (for log collectors), instead of
    /// text.
    pub json: bool,
}

/// How much the runner logs, most to least.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    /// Also what logrus's `panic` level (which act_runner accepts) maps to.
    Fatal,
}

impl LogLevel {
    /// The level names act_runner accepts (through logrus), in any case.
    pub(super) fn parse(text: &str) -> Option<LogLevel> {
        match text.to_ascii_lowercase().as_str() {
            "trace" => Some(LogLevel::Trace),
            "debug" => Some(LogLevel::Debug),
            "info" => Some(LogLevel::Info),
            "warn" | "warning" => Some(LogLevel::Warn),
            "error" => Some(LogLevel::Error),
            "fatal" | "panic" => Some(LogLevel::Fatal),
            _ => None,
        }
    }
}

/// `runner:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunnerConfig {
    /// `runner.file`: the registration file, default `.runner`.
    pub file: PathBuf,
    /// `runner.capacity`: jobs at once, at least 1.
    pub capacity: usize,
    /// `runner.envs`, with the variables of `env_file` merged over them.
    pub envs: IndexMap<String, String>,
    /// `runner.env_file`, `None` when empty.
    pub env_file: Option<PathBuf>,
    /// `runner.timeout`, default 3h.
    pub timeout: Duration,
    /// `runner.shutdown_timeout`, default 0s.
    pub shutdown_timeout: Duration,
    /// `runner.insecure`: skip TLS certificate checks.
    pub insecure: bool,
    /// `runner.fetch_timeout`, default 5s.
    pub fetch_timeout: Duration,
    /// `runner.fetch_interval`, default 2s.
    pub fetch_interval: Duration,
    /// `runner.labels`; empty means "those of the registration file".
    pub labels: Labels,
    /// `runner.github_mirror`, empty for none.
    pub github_mirror: String,
    /// Hearth: `runner.fetch_interval_max`, the idle backoff ceiling, default 3s, never
    /// below `fetch_interval`.
    pub fetch_interval_max: Duration,
    /// Hearth: `runner.report_interval`, default 1s.
    pub report_interval: Duration,
    /// Hearth: `runner.log_spill_dir`, default `.hearth-spool` beside the registration file.
    pub log_spill_dir: PathBuf,
    /// Hearth: `runner.log_memory_limit` in bytes, default 4 MiB.
    pub log_memory_limit: u64,
    /// Hearth: `runner.ca_file`, extra CA certificates for the forge; `None` when empty.
    pub ca_file: Option<PathBuf>,
    /// Hearth: `runner.request_timeout`, default 60s.
    pub request_timeout: Duration,
}

/// `cache:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// `cache.enabled`, default true.
    pub enabled: bool,
    /// `cache.dir`, default `$HOME/.cache/actcache` when enabled (left empty otherwise,
    /// as act_runner leaves it).
    pub dir: PathBuf,
    /// `cache.host`, empty to detect.
    pub host: String,
    /// `cache.port`, 0 for any free port.
    pub port: u16,
    /// `cache.external_server`, empty to run Hearth's own.
    pub external_server: String,
    /// `cache.secret` (forgejo-runner's key): the key job tokens are signed with, shared with
    /// an external `hearth cache-server` (or other runners); empty: a random one.
    pub secret: String,
    /// `cache.size_limit` (gitea-runner's key): the most bytes the runner's own cache keeps
    /// before the least recently used entries go; default 10 GiB.
    pub size_limit: u64,
    /// Hearth's `cache.s3`: the runner's own cache keeps its entries in this bucket (shared
    /// with other runners and cache servers), `dir` holding only uploads in progress; `None`:
    /// in `dir`.
    pub s3: Option<CacheS3Config>,
}

/// `cache.s3`: a bucket of an S3-compatible store.
#[derive(Clone, Debug)]
pub struct CacheS3Config {
    /// The store's URL; empty for AWS's own (by region).
    pub endpoint: String,
    pub bucket: String,
    /// Empty: `us-east-1`.
    pub region: String,
    /// The folder of the bucket the entries go under.
    pub prefix: String,
    /// `access_key_id`, else `AWS_ACCESS_KEY_ID`; empty (with the secret) for the machine's
    /// instance role.
    pub access_key_id: String,
    /// `secret_access_key`, else `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: hearth_backend::SecretString,
    /// Buckets in the URL's path rather than its host name (most self-hosted stores).
    pub path_style: bool,
}

impl PartialEq for CacheS3Config {
    fn eq(&self, other: &Self) -> bool {
        use hearth_backend::ExposeSecret as _;
        self.endpoint == other.endpoint
            && self.bucket == other.bucket
            && self.region == other.region
            && self.prefix == other.prefix
            && self.access_key_id == other.access_key_id
            && self.secret_access_key.expose_secret() == other.secret_access_key.expose_secret()
            && self.path_style == other.path_style
    }
}

impl Eq for CacheS3Config {}

/// `container:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerConfig {
    /// `container.network` (or the deprecated `network_mode`), empty for one per job.
    pub network: String,
    pub privileged: bool,
    pub options: String,
    /// `container.workdir_parent`, default `workspace`.
    pub workdir_parent: String,
    pub valid_volumes: Vec<String>,
    /// `container.docker_host`: empty to detect, `-` to detect without mounting it into jobs.
    pub docker_host: String,
    /// `container.bind_workdir`: `Some(true)` binds each job's folder from this machine into
    /// its container, `Some(false)` copies it into a volume in the daemon (which then needs to
    /// share no folder with the runner); `None`, the default, binds for a daemon on a local
    /// socket and copies for one reached over the network (`tcp://`, `http://`).
    pub bind_workdir: Option<bool>,
    pub force_pull: bool,
    pub force_rebuild: bool,
    pub require_docker: bool,
    pub docker_timeout: Duration,
    /// `container.registries`: credentials per registry host (Hearth's).
    pub registries: Vec<RegistryConfig>,
    /// `container.docker_config`: Docker config files to take credentials from, such as a
    /// mounted Kubernetes `.dockerconfigjson` (Hearth's).
    pub docker_config: Vec<PathBuf>,
    /// `container.cpus`: the CPU limit of job and service containers whose `options:` set no
    /// `--cpus`, in billionths of a CPU; `None` for no limit (Hearth's).
    pub cpus: Option<i64>,
    /// `container.memory`: their memory limit unless `options:` sets `--memory`, in bytes;
    /// `None` for no limit (Hearth's).
    pub memory: Option<i64>,
    /// `container.registry_mirrors`: a mirror (`host[:port][/prefix]`) by registry host,
    /// pulled from first (Hearth's).
    pub registry_mirrors: std::collections::BTreeMap<String, String>,
}

/// One `container.registries` entry.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// The registry's host; `*` matches any run of characters.
    pub host: String,
    pub username: String,
    pub password: RegistryPassword,
    /// `expose_to_jobs`: jobs that can reach a Docker daemon (host jobs, container jobs given
    /// the socket) get these credentials in a `DOCKER_CONFIG` of their own.
    pub expose_to_jobs: bool,
}

/// Where a registry's password comes from.
#[derive(Clone, Debug)]
pub enum RegistryPassword {
    Literal(hearth_backend::SecretString),
    Env(String),
    File(PathBuf),
}

impl PartialEq for RegistryConfig {
    fn eq(&self, other: &Self) -> bool {
        use hearth_backend::ExposeSecret as _;
        let password = |p: &RegistryPassword| match p {
            RegistryPassword::Literal(s) => ("literal", s.expose_secret().to_owned()),
            RegistryPassword::Env(name) => ("env", name.clone()),
            RegistryPassword::File(path) => ("file", path.display().to_string()),
        };
        self.host == other.host
            && self.username == other.username
            && password(&self.password) == password(&other.password)
            && self.expose_to_jobs == other.expose_to_jobs
    }
}

impl Eq for RegistryConfig {}

/// `host:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostConfig {
    /// `host.workdir_parent`, default `$HOME/.cache/act`.
    pub workdir_parent: PathBuf,
}

/// `metrics:` (gitea/runner's keys): Prometheus metrics, `/healthz` and `/readyz`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `metrics.enabled`, default false.
    pub enabled: bool,
    /// `metrics.addr`, default `127.0.0.1:9101`.
    pub addr: String,
}

/// `health_check:`: the disk guard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// `health_check.min_free_disk_space_mb` (gitea/runner's key), Hearth's default 1024:
    /// below this much free space on the work or Docker disk no job is fetched. 0 turns the
    /// guard off.
    pub min_free_disk_space_mb: u64,
    /// Hearth: `health_check.resume_free_disk_space_mb`, default the minimum + 512: fetching
    /// resumes once this much is free again (never below the minimum).
    pub resume_free_disk_space_mb: u64,
}

/// Where in a file a warning points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub pos: Pos,
}

/// Something in the configuration that works but deserves attention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// Where it is, for problems in the file; `None` for environment variables.
    pub location: Option<Location>,
    pub message: String,
}

impl Warning {
    fn general(message: String) -> Self {
        Warning {
            location: None,
            message,
        }
    }
}

/// `file:line:col: message`, or the message alone.
impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(Location { file, pos }) => {
                write!(f, "{file}:{}:{}: {}", pos.line, pos.col, self.message)
            }
            None => f.write_str(&self.message),
        }
    }
}

/// Why the configuration cannot be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read the config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: the config file is not UTF-8 text", path.display())]
    NotText { path: PathBuf },
    /// Not YAML, or YAML the loader refuses (duplicate keys, several documents).
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// A setting with a value of the wrong type or out of range.
    #[error("{file}:{}:{}: {message}", pos.line, pos.col)]
    Invalid {
        file: String,
        pos: Pos,
        message: String,
    },
    /// `runner.env_file` exists but cannot be read as a dotenv file.
    #[error("runner.env_file: {0}")]
    EnvFile(#[source] InputError),
}

/// Defaults, as act_runner's (and, for Hearth's own settings, Hearth's).
const DEFAULT_RUNNER_FILE: &str = ".runner";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3 * 60 * 60);
const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_FETCH_INTERVAL: Duration = Duration::from_secs(2);
const DEFAULT_FETCH_INTERVAL_MAX: Duration = Duration::from_secs(3);
const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_secs(1);
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_LOG_MEMORY_LIMIT: u64 = 4 << 20;
/// The spill folder's name, beside the registration file.
const SPOOL_DIR_NAME: &str = ".hearth-spool";
const DEFAULT_CONTAINER_WORKDIR_PARENT: &str = "workspace";
const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9101";
const DEFAULT_MIN_FREE_DISK_SPACE_MB: u64 = 1024;
/// The resume threshold's default distance above the minimum.
const DEFAULT_RESUME_MARGIN_MB: u64 = 512;

impl Config {
    /// Loads `path`, or the defaults (and deprecated `GITEA_*` variables) when `None`.
    pub fn load(path: Option<&Path>) -> Result<(Config, Vec<Warning>), ConfigError> {
        Self::load_with_env(path, &|name| std::env::var(name).ok())
    }

    /// [`load`](Self::load) with the environment given.
    pub fn load_with_env(
        path: Option<&Path>,
        env: Environment<'_>,
    ) -> Result<(Config, Vec<Warning>), ConfigError> {
        let Some(path) = path else {
            return Self::resolve(RawConfig::default(), false, Vec::new(), env);
        };
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| ConfigError::NotText {
            path: path.to_owned(),
        })?;
        Self::from_yaml(&text, &path.display().to_string(), env)
    }

    /// Loads the config text `source`, which `file` names in messages.
    pub fn from_yaml(
        source: &str,
        file: &str,
        env: Environment<'_>,
    ) -> Result<(Config, Vec<Warning>), ConfigError> {
        let source = source.strip_prefix('\u{feff}').unwrap_or(source);
        let root = yaml::load(source, file)?;
        let mut reader = Reader::new(source, file);
        let raw = raw::read_config(&mut reader, &root)?;
        Self::resolve(raw, true, reader.into_warnings(), env)
    }

    /// Applies the deprecated variables, merges `env_file` and fills in the defaults.
    fn resolve(
        mut raw: RawConfig,
        file_used: bool,
        mut warnings: Vec<Warning>,
        env: Environment<'_>,
    ) -> Result<(Config, Vec<Warning>), ConfigError> {
        legacy_env::apply(&mut raw, file_used, env, &mut warnings);
        let home = PathBuf::from(env("HOME").unwrap_or_default());
        let runner = resolve_runner(raw.runner)?;
        let level = match raw.log_level.as_str() {
            "" => LogLevel::Info,
            // A bad level in the file was refused while reading; GITEA_* set only good ones.
            text => LogLevel::parse(text).unwrap_or(LogLevel::Info),
        };
        let enabled = raw.cache.enabled.unwrap_or(true);
        let cache = CacheConfig {
            enabled,
            dir: match raw.cache.dir.as_str() {
                "" if enabled => home.join(".cache").join("actcache"),
                dir => PathBuf::from(dir),
            },
            host: raw.cache.host,
            port: raw.cache.port,
            external_server: raw.cache.external_server,
            secret: raw.cache.secret,
            size_limit: raw.cache.size_limit.unwrap_or(10 << 30),
            s3: raw.cache.s3.map(|s3| {
                let or_env = |value: String, name: &str| match value.as_str() {
                    "" => env(name).unwrap_or_default(),
                    _ => value,
                };
                CacheS3Config {
                    endpoint: s3.endpoint,
                    bucket: s3.bucket,
                    region: s3.region,
                    prefix: s3.prefix,
                    access_key_id: or_env(s3.access_key_id, "AWS_ACCESS_KEY_ID"),
                    secret_access_key: or_env(s3.secret_access_key, "AWS_SECRET_ACCESS_KEY").into(),
                    path_style: s3.path_style,
                }
            }),
        };
        let container = ContainerConfig {
            network: raw.container.network,
            privileged: raw.container.privileged,
            options: raw.container.options,
            workdir_parent: non_empty_or(
                raw.container.workdir_parent,
                DEFAULT_CONTAINER_WORKDIR_PARENT,
            ),
            valid_volumes: raw.container.valid_volumes,
            docker_host: raw.container.docker_host,
            bind_workdir: raw.container.bind_workdir,
            force_pull: raw.container.force_pull,
            force_rebuild: raw.container.force_rebuild,
            require_docker: raw.container.require_docker,
            docker_timeout: non_negative(raw.container.docker_timeout),
            registries: raw.container.registries,
            docker_config: raw
                .container
                .docker_config
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            cpus: (raw.container.nano_cpus > 0).then_some(raw.container.nano_cpus),
            memory: (raw.container.memory > 0).then_some(raw.container.memory),
            registry_mirrors: raw.container.registry_mirrors,
        };
        let host = HostConfig {
            workdir_parent: match raw.host_workdir_parent.as_str() {
                "" => home.join(".cache").join("act"),
                dir => PathBuf::from(dir),
            },
        };
        let config = Config {
            log: LogConfig {
                level,
                json: raw.log_json,
            },
            runner,
            cache,
            container,
            host,
            metrics: MetricsConfig {
                enabled: raw.metrics_enabled,
                addr: non_empty_or(raw.metrics_addr, DEFAULT_METRICS_ADDR),
            },
            health_check: health_check(raw.min_free_disk_space_mb, raw.resume_free_disk_space_mb),
            kubernetes: kubernetes::resolve(raw.kubernetes),
        };
        Ok((config, warnings))
    }
}

/// The disk guard's thresholds: the resume one never below the minimum.
fn health_check(min: Option<u64>, resume: Option<u64>) -> HealthCheckConfig {
    let min = min.unwrap_or(DEFAULT_MIN_FREE_DISK_SPACE_MB);
    let resume = match resume {
        Some(resume) => resume.max(min),
        None if min == 0 => 0,
        None => min.saturating_add(DEFAULT_RESUME_MARGIN_MB),
    };
    HealthCheckConfig {
        min_free_disk_space_mb: min,
        resume_free_disk_space_mb: resume,
    }
}

fn resolve_runner(raw: raw::RawRunner) -> Result<RunnerConfig, ConfigError> {
    let file = PathBuf::from(non_empty_or(raw.file, DEFAULT_RUNNER_FILE));
    let env_file = (!raw.env_file.is_empty()).then(|| PathBuf::from(&raw.env_file));
    let mut envs = raw.envs;
    if let Some(path) = &env_file {
        envs.extend(read_env_file(path)?);
    }
    let fetch_interval = positive_or(raw.fetch_interval, DEFAULT_FETCH_INTERVAL);
    let log_spill_dir = match raw.log_spill_dir.as_str() {
        "" => file.parent().unwrap_or(Path::new("")).join(SPOOL_DIR_NAME),
        dir => PathBuf::from(dir),
    };
    Ok(RunnerConfig {
        capacity: usize::try_from(raw.capacity)
            .ok()
            .filter(|&capacity| capacity > 0)
            .unwrap_or(1),
        envs,
        env_file,
        timeout: positive_or(raw.timeout, DEFAULT_TIMEOUT),
        shutdown_timeout: non_negative(raw.shutdown_timeout),
        insecure: raw.insecure,
        fetch_timeout: positive_or(raw.fetch_timeout, DEFAULT_FETCH_TIMEOUT),
        fetch_interval,
        labels: raw.labels.into_iter().collect(),
        github_mirror: raw.github_mirror,
        fetch_interval_max: positive_or(raw.fetch_interval_max, DEFAULT_FETCH_INTERVAL_MAX)
            .max(fetch_interval),
        report_interval: positive_or(raw.report_interval, DEFAULT_REPORT_INTERVAL),
        log_spill_dir,
        log_memory_limit: match raw.log_memory_limit {
            0 => DEFAULT_LOG_MEMORY_LIMIT,
            bytes => bytes,
        },
        ca_file: (!raw.ca_file.is_empty()).then(|| PathBuf::from(raw.ca_file)),
        request_timeout: positive_or(raw.request_timeout, DEFAULT_REQUEST_TIMEOUT),
        file,
    })
}

/// The variables of the dotenv file at `path`; none when it does not exist or is a folder,
/// as act_runner skips such files silently.
fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let bytes = std::fs::read(path).map_err(|source| {
        ConfigError::EnvFile(InputError::Read {
            path: path.to_owned(),
            source,
        })
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        ConfigError::EnvFile(InputError::NotText {
            path: path.to_owned(),
        })
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    parse_dotenv(text, path).map_err(ConfigError::EnvFile)
}

fn non_empty_or(value: String, default: &str) -> String {
    if value.is_empty() {
        default.to_owned()
    } else {
        value
    }
}

/// Go's "zero or negative means the default" for durations.
fn positive_or(nanos: i64, default: Duration) -> Duration {
    match u64::try_from(nanos) {
        Ok(nanos) if nanos > 0 => Duration::from_nanos(nanos),
        _ => default,
    }
}

/// A duration where negative can only mean "none".
fn non_negative(nanos: i64) -> Duration {
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
}
