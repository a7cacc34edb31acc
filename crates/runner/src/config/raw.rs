//! The settings as written in the file, before defaults.
//!
//! Every field holds Go's zero value when the key is absent or null (an empty string, 0, no
//! duration), because act_runner decides defaults by looking for zero values *after* the
//! deprecated environment variables had their say, and Hearth keeps that order.

use hearth_workflow::yaml::{Node, YamlValue};
use indexmap::IndexMap;

use super::reader::{join, Reader};
use super::size::parse_docker_size;
use super::{ConfigError, LogLevel};
use crate::labels::Label;

/// The top-level sections.
pub(super) const SECTIONS: &[&str] = &[
    "log",
    "runner",
    "cache",
    "container",
    "host",
    "metrics",
    "health_check",
    "kubernetes",
];
pub(super) const LOG_KEYS: &[&str] = &["level", "format"];
pub(super) const RUNNER_KEYS: &[&str] = &[
    "file",
    "capacity",
    "envs",
    "env_file",
    "timeout",
    "shutdown_timeout",
    "insecure",
    "fetch_timeout",
    "fetch_interval",
    "labels",
    "github_mirror",
    "fetch_interval_max",
    "report_interval",
    "log_spill_dir",
    "log_memory_limit",
    "ca_file",
    "request_timeout",
];
pub(super) const CACHE_KEYS: &[&str] = &[
    "enabled",
    "dir",
    "host",
    "port",
    "external_server",
    "secret",
    "size_limit",
    "s3",
];
/// Hearth's `cache.s3`: the bucket of an S3-compatible store the entries go to.
pub(super) const CACHE_S3_KEYS: &[&str] = &[
    "endpoint",
    "bucket",
    "region",
    "prefix",
    "access_key_id",
    "secret_access_key",
    "path_style",
];
pub(super) const CONTAINER_KEYS: &[&str] = &[
    "registries",
    "docker_config",
    "network",
    "network_mode",
    "privileged",
    "options",
    "workdir_parent",
    "valid_volumes",
    "docker_host",
    "bind_workdir",
    "force_pull",
    "force_rebuild",
    "require_docker",
    "docker_timeout",
    "cpus",
    "memory",
    "registry_mirrors",
];
pub(super) const HOST_KEYS: &[&str] = &["workdir_parent"];
/// gitea/runner's `metrics`: Prometheus metrics and health probes on an opt-in address.
pub(super) const METRICS_KEYS: &[&str] = &["enabled", "addr"];
/// gitea/runner's `health_check` (its disk threshold) and Hearth's resume threshold.
pub(super) const HEALTH_CHECK_KEYS: &[&str] =
    &["min_free_disk_space_mb", "resume_free_disk_space_mb"];

/// What the file says, Go-zero where it says nothing. Durations are signed nanoseconds.
#[derive(Debug, Default)]
pub(super) struct RawConfig {
    pub log_level: String,
    pub log_json: bool,
    pub runner: RawRunner,
    pub cache: RawCache,
    pub container: RawContainer,
    pub host_workdir_parent: String,
    pub metrics_enabled: bool,
    pub metrics_addr: String,
    /// `None` when the file does not say (0 is a value: no guard).
    pub min_free_disk_space_mb: Option<u64>,
    pub resume_free_disk_space_mb: Option<u64>,
    /// Hearth's `kubernetes:`.
    pub kubernetes: super::kubernetes::RawKubernetes,
}

#[derive(Debug, Default)]
pub(super) struct RawRunner {
    pub file: String,
    pub capacity: i64,
    pub envs: IndexMap<String, String>,
    pub env_file: String,
    pub timeout: i64,
    pub shutdown_timeout: i64,
    pub insecure: bool,
    pub fetch_timeout: i64,
    pub fetch_interval: i64,
    pub labels: Vec<Label>,
    pub github_mirror: String,
    pub fetch_interval_max: i64,
    pub report_interval: i64,
    pub log_spill_dir: String,
    pub log_memory_limit: u64,
    pub ca_file: String,
    pub request_timeout: i64,
}

#[derive(Debug, Default)]
pub(super) struct RawCache {
    /// The one setting whose absence is not its zero value: absent means enabled.
    pub enabled: Option<bool>,
    pub dir: String,
    pub host: String,
    pub port: u16,
    pub external_server: String,
    pub secret: String,
    pub size_limit: Option<u64>,
    /// `None` when the file has no `cache.s3` (or an empty one).
    pub s3: Option<RawCacheS3>,
}

#[derive(Debug, Default)]
pub(super) struct RawCacheS3 {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub path_style: bool,
}

#[derive(Debug, Default)]
pub(super) struct RawContainer {
    pub network: String,
    pub privileged: bool,
    pub options: String,
    pub workdir_parent: String,
    pub valid_volumes: Vec<String>,
    pub docker_host: String,
    /// `bind_workdir`: `None` when the file does not say.
    pub bind_workdir: Option<bool>,
    pub force_pull: bool,
    pub force_rebuild: bool,
    pub require_docker: bool,
    pub docker_timeout: i64,
    pub registries: Vec<super::RegistryConfig>,
    pub docker_config: Vec<String>,
    /// Hearth's `cpus`, in billionths of a CPU; 0 for no limit.
    pub nano_cpus: i64,
    /// Hearth's `memory`, in bytes; 0 for no limit.
    pub memory: i64,
    /// Hearth's `registry_mirrors`: a mirror by registry host.
    pub registry_mirrors: std::collections::BTreeMap<String, String>,
}

/// `container.registries`: a list of `{host, username, password | password_env | password_file,
/// expose_to_jobs}`.
fn read_registries(
    reader: &mut Reader<'_>,
    node: &Node,
    path: &str,
) -> Result<Vec<super::RegistryConfig>, ConfigError> {
    let items = match &node.value {
        YamlValue::Null => return Ok(Vec::new()),
        YamlValue::Sequence(items) => items,
        _ => return Err(reader.error(node, format!("{path} must be a list of registries"))),
    };
    let mut registries = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let at = format!("{path}[{index}]");
        let (mut host, mut username) = (String::new(), String::new());
        let mut passwords = Vec::new();
        let mut expose_to_jobs = false;
        for (key, value) in reader.mapping(item, &at)? {
            let key_path = join(&at, key.as_str().unwrap_or_default());
            match key.as_str() {
                Some("host") => host = reader.string(value, &key_path)?.unwrap_or_default(),
                Some("username") => username = reader.string(value, &key_path)?.unwrap_or_default(),
                Some("password") => passwords.push(super::RegistryPassword::Literal(
                    reader.string(value, &key_path)?.unwrap_or_default().into(),
                )),
                Some("password_env") => passwords.push(super::RegistryPassword::Env(
                    reader.string(value, &key_path)?.unwrap_or_default(),
                )),
                Some("password_file") => passwords.push(super::RegistryPassword::File(
                    reader.string(value, &key_path)?.unwrap_or_default().into(),
                )),
                Some("expose_to_jobs") => {
                    expose_to_jobs = reader.boolean(value, &key_path)?.unwrap_or_default();
                }
                _ => reader.unknown_key(
                    key,
                    &at,
                    &[
                        "host",
                        "username",
                        "password",
                        "password_env",
                        "password_file",
                        "expose_to_jobs",
                    ],
                ),
            }
        }
        if host.is_empty() {
            return Err(reader.error(item, format!("{at} needs a `host`")));
        }
        let password = match passwords.len() {
            1 => passwords.remove(0),
            0 => {
                return Err(reader.error(
                    item,
                    format!("{at} needs one of `password`, `password_env` and `password_file`"),
                ))
            }
            _ => {
                return Err(reader.error(
                    item,
                    format!(
                        "{at} has more than one of `password`, `password_env` and `password_file`"
                    ),
                ))
            }
        };
        // A job is given credentials for one registry it names, not a pattern.
        if expose_to_jobs && host.contains('*') {
            return Err(reader.error(
                item,
                format!(
                    "{at}: `expose_to_jobs` needs an exact host, not the pattern `{host}`: a \
                     job's Docker config names each registry it may log in to"
                ),
            ));
        }
        registries.push(super::RegistryConfig {
            host,
            username,
            password,
            expose_to_jobs,
        });
    }
    Ok(registries)
}

/// Reads the whole tree. A null root (an empty file) gives all zero values.
pub(super) fn read_config(reader: &mut Reader<'_>, root: &Node) -> Result<RawConfig, ConfigError> {
    let mut raw = RawConfig::default();
    for (key, value) in reader.mapping(root, "the config file")? {
        match key.as_str() {
            Some("log") => read_log(reader, value, &mut raw)?,
            Some("runner") => read_runner(reader, value, &mut raw.runner)?,
            Some("cache") => read_cache(reader, value, &mut raw.cache)?,
            Some("container") => read_container(reader, value, &mut raw.container)?,
            Some("host") => read_host(reader, value, &mut raw)?,
            Some("metrics") => read_metrics(reader, value, &mut raw)?,
            Some("health_check") => read_health_check(reader, value, &mut raw)?,
            Some("kubernetes") => {
                super::kubernetes::read_kubernetes(reader, value, &mut raw.kubernetes)?;
            }
            _ => reader.unknown_key(key, "", SECTIONS),
        }
    }
    Ok(raw)
}

fn read_log(reader: &mut Reader<'_>, node: &Node, raw: &mut RawConfig) -> Result<(), ConfigError> {
    for (key, value) in reader.mapping(node, "log")? {
        match key.as_str() {
            Some("level") => raw.log_level = read_log_level(reader, value)?,
            Some("format") => raw.log_json = read_log_format(reader, value)?,
            _ => reader.unknown_key(key, "log", LOG_KEYS),
        }
    }
    Ok(())
}

fn read_log_level(reader: &Reader<'_>, node: &Node) -> Result<String, ConfigError> {
    let level = reader.string(node, "log.level")?.unwrap_or_default();
    if level.is_empty() || LogLevel::parse(&level).is_some() {
        return Ok(level);
    }
    Err(reader.error(
        node,
        format!("log.level must be trace, debug, info, warn, error or fatal, found {level:?}"),
    ))
}

/// `log.format` (Hearth): `text` or `json`; whether it is `json`.
fn read_log_format(reader: &Reader<'_>, node: &Node) -> Result<bool, ConfigError> {
    match reader
        .string(node, "log.format")?
        .unwrap_or_default()
        .as_str()
    {
        "" | "text" => Ok(false),
        "json" => Ok(true),
        other => Err(reader.error(
            node,
            format!("log.format must be text or json, found {other:?}"),
        )),
    }
}

fn read_runner(
    reader: &mut Reader<'_>,
    node: &Node,
    runner: &mut RawRunner,
) -> Result<(), ConfigError> {
    for (key, value) in reader.mapping(node, "runner")? {
        let Some(name) = key.as_str().filter(|name| RUNNER_KEYS.contains(name)) else {
            reader.unknown_key(key, "runner", RUNNER_KEYS);
            continue;
        };
        let path = join("runner", name);
        let path = path.as_str();
        match name {
            "file" => runner.file = reader.string(value, path)?.unwrap_or_default(),
            "capacity" => runner.capacity = reader.integer(value, path)?.unwrap_or_default(),
            "envs" => runner.envs = reader.string_map(value, path)?.unwrap_or_default(),
            "env_file" => runner.env_file = reader.string(value, path)?.unwrap_or_default(),
            "timeout" => runner.timeout = reader.duration(value, path)?.unwrap_or_default(),
            "shutdown_timeout" => {
                runner.shutdown_timeout = reader.duration(value, path)?.unwrap_or_default();
            }
            "insecure" => runner.insecure = reader.boolean(value, path)?.unwrap_or_default(),
            "fetch_timeout" => {
                runner.fetch_timeout = reader.duration(value, path)?.unwrap_or_default();
            }
            "fetch_interval" => {
                runner.fetch_interval = reader.duration(value, path)?.unwrap_or_default();
            }
            "labels" => runner.labels = read_labels(reader, value, path)?,
            "github_mirror" => {
                runner.github_mirror = reader.string(value, path)?.unwrap_or_default();
            }
            "fetch_interval_max" => {
                runner.fetch_interval_max = reader.duration(value, path)?.unwrap_or_default();
            }
            "report_interval" => {
                runner.report_interval = reader.duration(value, path)?.unwrap_or_default();
            }
            "log_spill_dir" => {
                runner.log_spill_dir = reader.string(value, path)?.unwrap_or_default();
            }
            "log_memory_limit" => {
                runner.log_memory_limit = reader.size(value, path)?.unwrap_or_default();
            }
            "ca_file" => runner.ca_file = reader.string(value, path)?.unwrap_or_default(),
            "request_timeout" => {
                runner.request_timeout = reader.duration(value, path)?.unwrap_or_default();
            }
            _ => reader.unknown_key(key, "runner", RUNNER_KEYS),
        }
    }
    Ok(())
}

/// Labels are checked here, where an error can point at the bad one.
fn read_labels(reader: &Reader<'_>, node: &Node, path: &str) -> Result<Vec<Label>, ConfigError> {
    let mut labels = Vec::new();
    for (spec, item) in reader.string_list(node, path)?.unwrap_or_default() {
        let label =
            Label::parse(&spec).map_err(|error| reader.error(item, format!("{path}: {error}")))?;
        labels.push(label);
    }
    Ok(labels)
}

fn read_cache(
    reader: &mut Reader<'_>,
    node: &Node,
    cache: &mut RawCache,
) -> Result<(), ConfigError> {
    for (key, value) in reader.mapping(node, "cache")? {
        match key.as_str() {
            Some("enabled") => cache.enabled = reader.boolean(value, "cache.enabled")?,
            Some("dir") => cache.dir = reader.string(value, "cache.dir")?.unwrap_or_default(),
            Some("host") => cache.host = reader.string(value, "cache.host")?.unwrap_or_default(),
            Some("port") => cache.port = read_port(reader, value)?,
            Some("external_server") => {
                cache.external_server = reader
                    .string(value, "cache.external_server")?
                    .unwrap_or_default();
            }
            Some("secret") => {
                cache.secret = reader.string(value, "cache.secret")?.unwrap_or_default();
            }
            Some("size_limit") => cache.size_limit = reader.size(value, "cache.size_limit")?,
            Some("s3") => cache.s3 = read_cache_s3(reader, value)?,
            _ => reader.unknown_key(key, "cache", CACHE_KEYS),
        }
    }
    Ok(())
}

/// `cache.s3`: `None` when null or empty; a bucket is required otherwise.
fn read_cache_s3(reader: &mut Reader<'_>, node: &Node) -> Result<Option<RawCacheS3>, ConfigError> {
    let entries = reader.mapping(node, "cache.s3")?;
    if entries.is_empty() {
        return Ok(None);
    }
    let mut s3 = RawCacheS3::default();
    for (key, value) in entries {
        let path = join("cache.s3", key.as_str().unwrap_or_default());
        let text = |reader: &Reader<'_>| -> Result<String, ConfigError> {
            Ok(reader.string(value, &path)?.unwrap_or_default())
        };
        match key.as_str() {
            Some("endpoint") => s3.endpoint = text(reader)?,
            Some("bucket") => s3.bucket = text(reader)?,
            Some("region") => s3.region = text(reader)?,
            Some("prefix") => s3.prefix = text(reader)?,
            Some("access_key_id") => s3.access_key_id = text(reader)?,
            Some("secret_access_key") => s3.secret_access_key = text(reader)?,
            Some("path_style") => {
                s3.path_style = reader.boolean(value, &path)?.unwrap_or_default();
            }
            _ => reader.unknown_key(key, "cache.s3", CACHE_S3_KEYS),
        }
    }
    if s3.bucket.is_empty() {
        return Err(reader.error(node, "cache.s3 needs a `bucket`".to_owned()));
    }
    Ok(Some(s3))
}

fn read_port(reader: &Reader<'_>, node: &Node) -> Result<u16, ConfigError> {
    let Some(port) = reader.integer(node, "cache.port")? else {
        return Ok(0);
    };
    u16::try_from(port).map_err(|_| {
        reader.error(
            node,
            format!("cache.port must be a port number from 0 to 65535, found {port}"),
        )
    })
}

fn read_container(
    reader: &mut Reader<'_>,
    node: &Node,
    container: &mut RawContainer,
) -> Result<(), ConfigError> {
    let mut network_mode: Option<(String, &Node)> = None;
    for (key, value) in reader.mapping(node, "container")? {
        let Some(name) = key.as_str().filter(|name| CONTAINER_KEYS.contains(name)) else {
            reader.unknown_key(key, "container", CONTAINER_KEYS);
            continue;
        };
        let path = join("container", name);
        let path = path.as_str();
        match name {
            "network" => container.network = reader.string(value, path)?.unwrap_or_default(),
            "network_mode" => {
                let mode = reader.string(value, path)?.unwrap_or_default();
                network_mode = Some((mode, key));
            }
            "privileged" => container.privileged = reader.boolean(value, path)?.unwrap_or_default(),
            "options" => container.options = reader.string(value, path)?.unwrap_or_default(),
            "workdir_parent" => {
                container.workdir_parent = reader.string(value, path)?.unwrap_or_default();
            }
            "valid_volumes" => {
                container.valid_volumes = reader
                    .string_list(value, path)?
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(volume, _)| volume)
                    .collect();
            }
            "docker_host" => {
                container.docker_host = reader.string(value, path)?.unwrap_or_default()
            }
            "force_pull" => container.force_pull = reader.boolean(value, path)?.unwrap_or_default(),
            "bind_workdir" => container.bind_workdir = reader.boolean(value, path)?,
            "registries" => container.registries = read_registries(reader, value, path)?,
            "docker_config" => {
                container.docker_config = match &value.value {
                    YamlValue::Sequence(_) => reader
                        .string_list(value, path)?
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(file, _)| file)
                        .collect(),
                    _ => reader.string(value, path)?.into_iter().collect(),
                };
            }
            "force_rebuild" => {
                container.force_rebuild = reader.boolean(value, path)?.unwrap_or_default();
            }
            "require_docker" => {
                container.require_docker = reader.boolean(value, path)?.unwrap_or_default();
            }
            "docker_timeout" => {
                container.docker_timeout = reader.duration(value, path)?.unwrap_or_default();
            }
            "cpus" => container.nano_cpus = read_cpus(reader, value, path)?,
            "memory" => container.memory = read_memory(reader, value, path)?,
            "registry_mirrors" => {
                container.registry_mirrors = reader
                    .string_map(value, path)?
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
            }
            _ => reader.unknown_key(key, "container", CONTAINER_KEYS),
        }
    }
    if let Some((mode, key)) = network_mode.filter(|(mode, _)| !mode.is_empty()) {
        apply_network_mode(reader, container, mode, key);
    }
    Ok(())
}

/// `container.cpus`: a number of CPUs as Docker's `--cpus` takes it (`1.5`, `"2"`), in
/// billionths of a CPU; 0 or null for no limit.
fn read_cpus(reader: &Reader<'_>, node: &Node, path: &str) -> Result<i64, ConfigError> {
    let expected = "a number of CPUs such as 2 or 1.5 (0 for no limit)";
    let cpus = match &node.value {
        YamlValue::Null => return Ok(0),
        YamlValue::Int(n) => *n as f64,
        YamlValue::Float(n) => *n,
        YamlValue::String(text) => text.trim().parse::<f64>().map_err(|_| {
            reader.error(node, format!("{path} must be {expected}, found {text:?}"))
        })?,
        _ => {
            return Err(reader.error(
                node,
                format!(
                    "{path} must be {expected}, found {}",
                    node.kind_with_article()
                ),
            ))
        }
    };
    let nanos = (cpus * 1e9).round();
    if !nanos.is_finite() || nanos < 0.0 || nanos >= i64::MAX as f64 {
        return Err(reader.error(node, format!("{path} must be {expected}, found {cpus}")));
    }
    Ok(nanos as i64)
}

/// `container.memory`: a size as Docker's `--memory` takes it (`512m`, `2g`, or bytes), in
/// bytes; 0 or null for no limit.
fn read_memory(reader: &Reader<'_>, node: &Node, path: &str) -> Result<i64, ConfigError> {
    let expected = "a size such as 512m or 2g (0 for no limit)";
    match &node.value {
        YamlValue::Null => Ok(0),
        YamlValue::Int(bytes) if *bytes >= 0 => Ok(*bytes),
        YamlValue::String(text) => parse_docker_size(text).ok_or_else(|| {
            reader.error(node, format!("{path} must be {expected}, found {text:?}"))
        }),
        YamlValue::Int(bytes) => {
            Err(reader.error(node, format!("{path} must be {expected}, found {bytes}")))
        }
        _ => Err(reader.error(
            node,
            format!(
                "{path} must be {expected}, found {}",
                node.kind_with_article()
            ),
        )),
    }
}

/// `network_mode` is the old name of `network`. It only counts when `network` is empty, and
/// its `bridge` meant "a network per job", which is what an empty `network` means now
/// (Docker's own network called `bridge` is another thing).
fn apply_network_mode(
    reader: &mut Reader<'_>,
    container: &mut RawContainer,
    mode: String,
    key: &Node,
) {
    if !container.network.is_empty() {
        reader.warn(
            key,
            "container.network_mode is an old name of container.network and is ignored \
             because container.network is set; remove it"
                .to_owned(),
        );
        return;
    }
    reader.warn(
        key,
        "container.network_mode is an old name of container.network; use container.network"
            .to_owned(),
    );
    if mode != "bridge" {
        container.network = mode;
    }
}

fn read_host(reader: &mut Reader<'_>, node: &Node, raw: &mut RawConfig) -> Result<(), ConfigError> {
    for (key, value) in reader.mapping(node, "host")? {
        match key.as_str() {
            Some("workdir_parent") => {
                raw.host_workdir_parent = reader
                    .string(value, "host.workdir_parent")?
                    .unwrap_or_default();
            }
            _ => reader.unknown_key(key, "host", HOST_KEYS),
        }
    }
    Ok(())
}

fn read_metrics(
    reader: &mut Reader<'_>,
    node: &Node,
    raw: &mut RawConfig,
) -> Result<(), ConfigError> {
    for (key, value) in reader.mapping(node, "metrics")? {
        match key.as_str() {
            Some("enabled") => {
                raw.metrics_enabled = reader
                    .boolean(value, "metrics.enabled")?
                    .unwrap_or_default();
            }
            Some("addr") => {
                let addr = reader.string(value, "metrics.addr")?.unwrap_or_default();
                if !addr.is_empty() && addr.parse::<std::net::SocketAddr>().is_err() {
                    return Err(reader.error(
                        value,
                        format!(
                            "metrics.addr must be an IP address and port such as \
                             127.0.0.1:9101 or 0.0.0.0:9101, found {addr:?}"
                        ),
                    ));
                }
                raw.metrics_addr = addr;
            }
            _ => reader.unknown_key(key, "metrics", METRICS_KEYS),
        }
    }
    Ok(())
}

fn read_health_check(
    reader: &mut Reader<'_>,
    node: &Node,
    raw: &mut RawConfig,
) -> Result<(), ConfigError> {
    for (key, value) in reader.mapping(node, "health_check")? {
        let Some(name) = key.as_str().filter(|name| HEALTH_CHECK_KEYS.contains(name)) else {
            reader.unknown_key(key, "health_check", HEALTH_CHECK_KEYS);
            continue;
        };
        let path = join("health_check", name);
        let Some(megabytes) = reader.integer(value, &path)? else {
            continue;
        };
        let Ok(megabytes) = u64::try_from(megabytes) else {
            return Err(reader.error(
                value,
                format!("{path} must be a number of megabytes, 0 or more, found {megabytes}"),
            ));
        };
        match name {
            "min_free_disk_space_mb" => raw.min_free_disk_space_mb = Some(megabytes),
            _ => raw.resume_free_disk_space_mb = Some(megabytes),
        }
    }
    Ok(())
}
