//! Loading whole config files: defaults, act_runner's files, errors and warnings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Config, ConfigError, LogLevel, Warning};
use crate::labels::Label;

fn env(name: &str) -> Option<String> {
    (name == "HOME").then(|| "/home/runner".to_owned())
}

fn load(text: &str) -> (Config, Vec<Warning>) {
    match Config::from_yaml(text, "config.yaml", &env) {
        Ok(loaded) => loaded,
        Err(error) => panic!("should load: {error}\n{text}"),
    }
}

fn load_clean(text: &str) -> Config {
    let (config, warnings) = load(text);
    assert!(warnings.is_empty(), "unexpected warnings: {warnings:?}");
    config
}

fn error(text: &str) -> String {
    match Config::from_yaml(text, "config.yaml", &env) {
        Ok(_) => panic!("should fail:\n{text}"),
        Err(error) => error.to_string(),
    }
}

fn defaults() -> Config {
    Config::load_with_env(None, &env).unwrap().0
}

fn messages(warnings: &[Warning]) -> Vec<String> {
    warnings.iter().map(Warning::to_string).collect()
}

#[test]
fn defaults_are_act_runners() {
    let config = defaults();
    assert_eq!(config.log.level, LogLevel::Info);
    let runner = &config.runner;
    assert_eq!(runner.file, PathBuf::from(".runner"));
    assert_eq!(runner.capacity, 1);
    assert!(runner.envs.is_empty());
    assert_eq!(runner.env_file, None);
    assert_eq!(runner.timeout, Duration::from_secs(3 * 3600));
    assert_eq!(runner.shutdown_timeout, Duration::ZERO);
    assert!(!runner.insecure);
    assert_eq!(runner.fetch_timeout, Duration::from_secs(5));
    assert_eq!(runner.fetch_interval, Duration::from_secs(2));
    assert!(runner.labels.is_empty());
    assert_eq!(runner.github_mirror, "");
    assert_eq!(runner.fetch_interval_max, Duration::from_secs(3));
    assert_eq!(runner.report_interval, Duration::from_secs(1));
    assert_eq!(runner.log_spill_dir, PathBuf::from(".hearth-spool"));
    assert_eq!(runner.log_memory_limit, 4 * 1024 * 1024);
    assert_eq!(runner.ca_file, None);
    assert_eq!(runner.request_timeout, Duration::from_secs(60));
    assert!(config.cache.enabled);
    assert_eq!(
        config.cache.dir,
        PathBuf::from("/home/runner/.cache/actcache")
    );
    assert_eq!(config.cache.host, "");
    assert_eq!(config.cache.port, 0);
    assert_eq!(config.cache.external_server, "");
    assert_eq!(config.cache.secret, "");
    assert_eq!(config.cache.size_limit, 10 << 30);
    let container = &config.container;
    assert_eq!(container.network, "");
    assert!(!container.privileged);
    assert_eq!(container.options, "");
    assert_eq!(container.workdir_parent, "workspace");
    assert!(container.valid_volumes.is_empty());
    assert_eq!(container.docker_host, "");
    assert_eq!(container.bind_workdir, None);
    assert!(!container.force_pull && !container.force_rebuild && !container.require_docker);
    assert_eq!(container.docker_timeout, Duration::ZERO);
    assert_eq!(
        config.host.workdir_parent,
        PathBuf::from("/home/runner/.cache/act")
    );
}

#[test]
fn empty_files_sections_and_nulls_give_defaults() {
    for text in [
        "",
        "# nothing but a comment\n",
        "---\n",
        "~\n",
        "log:\nrunner:\ncache:\ncontainer:\nhost:\n",
        "runner: {capacity: ~, timeout: null, labels: ~, envs: ~, file: }\n",
        "cache: {enabled: ~, port: ~}\ncontainer: {options: , workdir_parent: }\n",
    ] {
        assert_eq!(load_clean(text), defaults(), "{text:?}");
    }
}

/// A config as act_runner's `generate-config` writes it: its keys, structure and example
/// values (the comments are left out).
const ACT_RUNNER_CONFIG: &str = include_str!("../../tests/data/act_runner/config.yaml");

#[test]
fn act_runners_generated_config_loads_cleanly() {
    let config = load_clean(ACT_RUNNER_CONFIG);
    let runner = &config.runner;
    assert_eq!(runner.envs.len(), 2);
    assert_eq!(
        runner.envs.get("A_TEST_ENV_NAME_1").map(String::as_str),
        Some("a_test_env_value_1")
    );
    assert_eq!(runner.env_file, Some(PathBuf::from(".env")));
    assert_eq!(
        runner.labels.names().collect::<Vec<_>>(),
        ["ubuntu-latest", "ubuntu-22.04", "ubuntu-20.04"]
    );
    assert_eq!(
        runner.labels.get("ubuntu-22.04").and_then(Label::image),
        Some("docker.gitea.com/runner-images:ubuntu-22.04")
    );
    assert!(config.container.force_pull);
    assert_eq!(config.container.workdir_parent, "workspace");
    // Everything else is as by default.
    let mut expected = defaults();
    expected.runner.envs = runner.envs.clone();
    expected.runner.env_file = runner.env_file.clone();
    expected.runner.labels = runner.labels.clone();
    expected.container.force_pull = true;
    assert_eq!(config, expected);
}

#[test]
fn values_are_read() {
    let config = load_clean(
        "log: {level: DEBUG}\n\
         runner:\n  file: /data/state/.runner\n  capacity: 4\n  timeout: 1h30m\n  \
         shutdown_timeout: 2m\n  insecure: yes\n  fetch_timeout: 10s\n  fetch_interval: 500ms\n  \
         fetch_interval_max: 30s\n  report_interval: 3s\n  request_timeout: 2m\n  \
         log_memory_limit: 512KiB\n  ca_file: /etc/ssl/forge.pem\n  github_mirror: https://mirror.example\n  \
         labels: [linux, 'gpu:host', 'u:docker://node:20']\n\
         cache: {enabled: false, host: 10.0.0.5, port: 8088, external_server: 'http://cache/', \
         secret: shared-key, size_limit: 2GiB}\n\
         container:\n  network: host\n  privileged: true\n  options: --add-host=a:b\n  \
         workdir_parent: /srv/work\n  valid_volumes: [data, '/src/*.json']\n  docker_host: '-'\n  \
         bind_workdir: false\n  force_rebuild: true\n  require_docker: true\n  docker_timeout: 20s\n\
         host: {workdir_parent: /var/lib/hearth}\n",
    );
    assert_eq!(config.log.level, LogLevel::Debug);
    let runner = &config.runner;
    assert_eq!(runner.file, PathBuf::from("/data/state/.runner"));
    assert_eq!(runner.capacity, 4);
    assert_eq!(runner.timeout, Duration::from_secs(5400));
    assert_eq!(runner.shutdown_timeout, Duration::from_secs(120));
    assert!(runner.insecure);
    assert_eq!(runner.fetch_timeout, Duration::from_secs(10));
    assert_eq!(runner.fetch_interval, Duration::from_millis(500));
    assert_eq!(runner.fetch_interval_max, Duration::from_secs(30));
    assert_eq!(runner.report_interval, Duration::from_secs(3));
    assert_eq!(runner.request_timeout, Duration::from_secs(120));
    assert_eq!(runner.log_memory_limit, 512 * 1024);
    assert_eq!(
        runner.log_spill_dir,
        PathBuf::from("/data/state/.hearth-spool")
    );
    assert_eq!(runner.ca_file, Some(PathBuf::from("/etc/ssl/forge.pem")));
    assert_eq!(runner.github_mirror, "https://mirror.example");
    assert_eq!(runner.labels.get("linux"), Some(&Label::host("linux")));
    assert_eq!(runner.labels.get("u"), Some(&Label::docker("u", "node:20")));
    assert!(!config.cache.enabled);
    assert_eq!(
        config.cache.dir,
        PathBuf::new(),
        "no default dir when disabled"
    );
    assert_eq!(config.cache.host, "10.0.0.5");
    assert_eq!(config.cache.port, 8088);
    assert_eq!(config.cache.external_server, "http://cache/");
    assert_eq!(config.cache.secret, "shared-key");
    assert_eq!(config.cache.size_limit, 2 << 30);
    let container = &config.container;
    assert_eq!(container.network, "host");
    assert!(container.privileged && container.force_rebuild && container.require_docker);
    assert_eq!(container.options, "--add-host=a:b");
    assert_eq!(container.workdir_parent, "/srv/work");
    assert_eq!(container.valid_volumes, ["data", "/src/*.json"]);
    assert_eq!(container.docker_host, "-");
    assert_eq!(container.bind_workdir, Some(false));
    assert_eq!(container.docker_timeout, Duration::from_secs(20));
    assert_eq!(config.host.workdir_parent, PathBuf::from("/var/lib/hearth"));
}

#[test]
fn zero_and_negative_values_fall_back_as_in_act_runner() {
    let config = load_clean(
        "runner: {capacity: -2, timeout: 0s, fetch_timeout: -1s, fetch_interval: '0', \
         shutdown_timeout: -5s, report_interval: 0s, request_timeout: -1m, \
         fetch_interval_max: 0s, log_memory_limit: 0}\ncontainer: {docker_timeout: -1s}\n",
    );
    assert_eq!(config, defaults());
    assert_eq!(load_clean("runner: {capacity: 0}").runner.capacity, 1);
}

#[test]
fn backoff_ceiling_is_never_below_the_interval() {
    let config = load_clean("runner: {fetch_interval: 10s, fetch_interval_max: 3s}");
    assert_eq!(config.runner.fetch_interval_max, Duration::from_secs(10));
}

#[test]
fn string_settings_keep_scalars_as_written() {
    let config = load_clean(
        "runner:\n  envs:\n    VERSION: 1.10\n    HEX: 0x1F\n    FLAG: true\n    EMPTY:\n    \
         QUOTED: '007'\n    TAGGED: !!int 12\n  github_mirror: 42\n",
    );
    let envs = &config.runner.envs;
    let get = |name: &str| envs.get(name).map(String::as_str);
    assert_eq!(get("VERSION"), Some("1.10"));
    assert_eq!(get("HEX"), Some("0x1F"));
    assert_eq!(get("FLAG"), Some("true"));
    assert_eq!(get("EMPTY"), Some(""));
    assert_eq!(get("QUOTED"), Some("007"));
    assert_eq!(get("TAGGED"), Some("12"));
    assert_eq!(config.runner.github_mirror, "42");
}

#[test]
fn wrong_types_are_errors_at_the_value() {
    assert_eq!(
        error("runner:\n  file: .runner\n  capacity: \"2\"\n"),
        "config.yaml:3:13: runner.capacity must be an integer, found a string"
    );
    assert_eq!(
        error("runner: 5\n"),
        "config.yaml:1:9: runner must be a mapping, found an integer"
    );
    assert_eq!(
        error("- a\n"),
        "config.yaml:1:1: the config file must be a mapping, found a sequence"
    );
    assert_eq!(
        error("runner:\n  insecure: maybe\n"),
        "config.yaml:2:13: runner.insecure must be a boolean (true or false), found a string"
    );
    assert_eq!(
        error("container:\n  bind_workdir: yes please\n"),
        "config.yaml:2:17: container.bind_workdir must be a boolean (true or false), found a string"
    );
    assert_eq!(
        error("runner:\n  envs: [A]\n"),
        "config.yaml:2:9: runner.envs must be a mapping of names to strings, found a sequence"
    );
    assert_eq!(
        error("runner:\n  envs:\n    A: {b: c}\n"),
        "config.yaml:3:8: runner.envs.A must be a string, found a mapping"
    );
    assert_eq!(
        error("runner:\n  labels: linux\n"),
        "config.yaml:2:11: runner.labels must be a list of strings, found a string"
    );
    assert_eq!(
        error("container:\n  valid_volumes: [a, [b]]\n"),
        "config.yaml:2:22: container.valid_volumes[1] must be a string, found a sequence"
    );
    assert_eq!(
        error("runner:\n  timeout: 1.5\n"),
        "config.yaml:2:12: runner.timeout must be a duration such as 30s, 1m30s or 3h, \
         found a number"
    );
    assert_eq!(
        error("cache:\n  port: 70000\n"),
        "config.yaml:2:9: cache.port must be a port number from 0 to 65535, found 70000"
    );
    assert_eq!(
        error("runner:\n  log_memory_limit: lots\n"),
        "config.yaml:2:21: runner.log_memory_limit must be a size in bytes, e.g. 4194304 or \
         4MiB, found \"lots\""
    );
    assert_eq!(
        error("log:\n  level: verbose\n"),
        "config.yaml:2:10: log.level must be trace, debug, info, warn, error or fatal, \
         found \"verbose\""
    );
    assert_eq!(
        error("log:\n  format: yaml\n"),
        "config.yaml:2:11: log.format must be text or json, found \"yaml\""
    );
}

#[test]
fn the_log_is_text_unless_json_is_asked_for() {
    assert!(!defaults().log.json);
    assert!(!load_clean("log:\n  format: text\n").log.json);
    assert!(load_clean("log:\n  format: json\n").log.json);
}

#[test]
fn container_limits_are_read_as_docker_reads_them() {
    let limits = |text: &str| {
        let container = load_clean(text).container;
        (container.cpus, container.memory)
    };
    assert_eq!(
        limits("container: {cpus: 1.5, memory: 512m}"),
        (Some(1_500_000_000), Some(512 << 20))
    );
    assert_eq!(
        limits("container: {cpus: 2, memory: 2GiB}"),
        (Some(2_000_000_000), Some(2 << 30))
    );
    assert_eq!(
        limits("container: {cpus: '0.5', memory: 1048576}"),
        (Some(500_000_000), Some(1 << 20))
    );
    // 0 and null are no limit, as the example writes them.
    assert_eq!(limits("container: {cpus: 0, memory: 0}"), (None, None));
    assert_eq!(limits("container: {cpus: ~, memory: ~}"), (None, None));
}

#[test]
fn bad_container_limits_are_errors_at_the_value() {
    assert_eq!(
        error("container:\n  cpus: lots\n"),
        "config.yaml:2:9: container.cpus must be a number of CPUs such as 2 or 1.5 \
         (0 for no limit), found \"lots\""
    );
    assert_eq!(
        error("container:\n  cpus: -1\n"),
        "config.yaml:2:9: container.cpus must be a number of CPUs such as 2 or 1.5 \
         (0 for no limit), found -1"
    );
    assert_eq!(
        error("container:\n  cpus: [1]\n"),
        "config.yaml:2:9: container.cpus must be a number of CPUs such as 2 or 1.5 \
         (0 for no limit), found a sequence"
    );
    assert_eq!(
        error("container:\n  memory: 2 gigs\n"),
        "config.yaml:2:11: container.memory must be a size such as 512m or 2g \
         (0 for no limit), found \"2 gigs\""
    );
    assert_eq!(
        error("container:\n  memory: -5\n"),
        "config.yaml:2:11: container.memory must be a size such as 512m or 2g \
         (0 for no limit), found -5"
    );
    assert!(error("container:\n  cpus: .nan\n").starts_with("config.yaml:2:9: container.cpus"));
}

#[test]
fn bad_durations_say_why() {
    assert_eq!(
        error("runner:\n  timeout: 3 hours\n"),
        "config.yaml:2:12: runner.timeout: \"3 hours\" is not a duration: unknown unit \
         \" hours\" (expected ns, us, ms, s, m or h, with no space before it); \
         write e.g. 30s, 1m30s or 3h"
    );
    assert!(error("runner:\n  fetch_interval: 1d\n").contains("unknown unit \"d\""));
}

#[test]
fn bare_numbers_are_refused_but_zero() {
    let (config, warnings) = load("runner:\n  timeout: 0\n");
    assert_eq!(config.runner.timeout, Duration::from_secs(3 * 3600));
    assert!(warnings.is_empty());
    assert_eq!(
        error("runner:\n  fetch_interval: 2000000000\n"),
        "config.yaml:2:19: runner.fetch_interval: a duration needs a unit (a bare 2000000000 \
         would be nanoseconds); write e.g. 2000000000s"
    );
}

#[test]
fn bad_labels_are_errors_at_the_label() {
    let message = error("runner:\n  labels:\n    - linux\n    - 'pool:lxc://debian'\n");
    assert!(
        message.starts_with(
            "config.yaml:4:7: runner.labels: label \"pool:lxc://debian\" has the unknown scheme"
        ),
        "{message}"
    );
}

#[test]
fn unknown_keys_are_warnings_with_suggestions() {
    let (config, warnings) = load(
        "runner:\n  capacity: 2\n  fetch_intervall: 3s\n  report_retry: {max_retries: 3}\n\
         cahce:\n  enabled: false\ncontainer:\n  Privileged: true\n",
    );
    assert_eq!(config.runner.capacity, 2);
    assert_eq!(config.runner.fetch_interval, Duration::from_secs(2));
    assert!(config.cache.enabled);
    assert!(!config.container.privileged);
    assert_eq!(
        messages(&warnings),
        [
            "config.yaml:3:3: unknown key runner.fetch_intervall is ignored; \
             did you mean runner.fetch_interval?",
            "config.yaml:4:3: unknown key runner.report_retry is ignored",
            "config.yaml:5:1: unknown key cahce is ignored; did you mean cache?",
            "config.yaml:8:3: unknown key container.Privileged is ignored; \
             did you mean container.privileged?",
        ]
    );
}

#[test]
fn network_mode_is_the_old_name_of_network() {
    let (config, warnings) = load("container:\n  network_mode: host\n");
    assert_eq!(config.container.network, "host");
    assert_eq!(
        messages(&warnings),
        [
            "config.yaml:2:3: container.network_mode is an old name of container.network; \
          use container.network"
        ]
    );
    let (config, _) = load("container:\n  network_mode: bridge\n");
    assert_eq!(
        config.container.network, "",
        "bridge meant a network per job"
    );
    let (config, warnings) = load("container:\n  network_mode: host\n  network: mine\n");
    assert_eq!(config.container.network, "mine");
    assert!(warnings[0]
        .message
        .contains("ignored because container.network is set"));
    assert_eq!(
        load_clean("container: {network_mode: ''}")
            .container
            .network,
        ""
    );
}

#[test]
fn yaml_errors_carry_the_position() {
    let message = error("runner:\n  capacity: 1\n  capacity: 2\n");
    assert!(
        message.starts_with("config.yaml:3:3: duplicate key"),
        "{message}"
    );
    let message = error("runner: [\n");
    assert!(message.starts_with("config.yaml:"), "{message}");
}

#[test]
fn env_file_is_merged_over_envs_when_it_exists() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("runner.env");
    std::fs::write(&env_file, "B=from-file\nC=\"quoted value\"\n").unwrap();
    let text = format!(
        "runner:\n  envs: {{A: a, B: b}}\n  env_file: {}\n",
        env_file.display()
    );
    let config = load_clean(&text);
    let envs: Vec<(&str, &str)> = config
        .runner
        .envs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        envs,
        [("A", "a"), ("B", "from-file"), ("C", "quoted value")]
    );

    let missing = dir.path().join("absent.env");
    let text = format!(
        "runner:\n  envs: {{A: a}}\n  env_file: {}\n",
        missing.display()
    );
    assert_eq!(load_clean(&text).runner.envs.len(), 1);
    let text = format!("runner:\n  env_file: {}\n", dir.path().display());
    assert!(
        load_clean(&text).runner.envs.is_empty(),
        "a folder is skipped"
    );

    std::fs::write(&env_file, "GOOD=1\nthis is not dotenv\n").unwrap();
    let text = format!("runner:\n  env_file: {}\n", env_file.display());
    let message = error(&text);
    assert!(message.starts_with("runner.env_file: "), "{message}");
    assert!(message.contains("runner.env:2:"), "{message}");
}

#[test]
fn load_reads_the_file_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, "\u{feff}runner:\n  capacity: 3\n  bogus: 1\n").unwrap();
    let (config, warnings) = Config::load_with_env(Some(&path), &env).unwrap();
    assert_eq!(config.runner.capacity, 3);
    assert_eq!(
        warnings[0].to_string(),
        format!(
            "{}:3:3: unknown key runner.bogus is ignored",
            path.display()
        )
    );

    std::fs::write(&path, "runner:\n  capacity: x\n").unwrap();
    let message = Config::load_with_env(Some(&path), &env)
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        format!(
            "{}:2:13: runner.capacity must be an integer, found a string",
            path.display()
        )
    );

    let missing = dir.path().join("nope.yaml");
    let error = Config::load_with_env(Some(&missing), &env).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }), "{error}");
    assert!(error.to_string().contains("nope.yaml"), "{error}");

    std::fs::write(&path, b"runner: \xff\n").unwrap();
    let error = Config::load_with_env(Some(&path), &env).unwrap_err();
    assert!(matches!(error, ConfigError::NotText { .. }), "{error}");
}

#[test]
fn legacy_variables_count_only_without_a_file() {
    let legacy = |name: &str| match name {
        "GITEA_RUNNER_CAPACITY" => Some("3".to_owned()),
        "GITEA_RUNNER_FILE" => Some("/data/.runner".to_owned()),
        other => env(other),
    };
    let (config, warnings) = Config::load_with_env(None, &legacy).unwrap();
    assert_eq!(config.runner.capacity, 3);
    assert_eq!(config.runner.file, Path::new("/data/.runner"));
    assert_eq!(
        config.runner.log_spill_dir,
        Path::new("/data/.hearth-spool")
    );
    assert_eq!(warnings.len(), 2);

    let (config, warnings) = Config::from_yaml("runner: {capacity: 2}", "c.yaml", &legacy).unwrap();
    assert_eq!(config.runner.capacity, 2);
    assert_eq!(config.runner.file, Path::new(".runner"));
    assert!(warnings
        .iter()
        .all(|w| w.message.contains("ignored because a config file is given")));
}

#[test]
fn home_missing_gives_relative_folders_as_go_does() {
    let (config, _) = Config::load_with_env(None, &|_| None).unwrap();
    assert_eq!(config.cache.dir, PathBuf::from(".cache/actcache"));
    assert_eq!(config.host.workdir_parent, PathBuf::from(".cache/act"));
}

#[test]
fn registries_and_docker_config_files_are_read() {
    use super::{RegistryConfig, RegistryPassword};
    let config = load_clean(
        "container:\n  registries:\n    - host: registry.example.com\n      username: ci\n      password_file: /run/secrets/reg\n      expose_to_jobs: true\n    - {host: '*.internal', username: bot, password_env: REG_TOKEN}\n  docker_config: /var/run/secrets/registry/.dockerconfigjson\n",
    );
    assert_eq!(
        config.container.registries,
        [
            RegistryConfig {
                host: "registry.example.com".into(),
                username: "ci".into(),
                password: RegistryPassword::File("/run/secrets/reg".into()),
                expose_to_jobs: true,
            },
            RegistryConfig {
                host: "*.internal".into(),
                username: "bot".into(),
                password: RegistryPassword::Env("REG_TOKEN".into()),
                expose_to_jobs: false,
            },
        ]
    );
    assert_eq!(
        config.container.docker_config,
        [PathBuf::from("/var/run/secrets/registry/.dockerconfigjson")]
    );
    let mirrored = load_clean(
        "container:\n  registry_mirrors:\n    docker.io: mirror.local:5000/hub\n    ghcr.io: mirror.local:5000/ghcr\n",
    );
    assert_eq!(
        mirrored.container.registry_mirrors,
        [
            ("docker.io".to_owned(), "mirror.local:5000/hub".to_owned()),
            ("ghcr.io".to_owned(), "mirror.local:5000/ghcr".to_owned()),
        ]
        .into()
    );
    // A literal password never shows in Debug.
    let literal = load_clean(
        "container:\n  registries:\n    - {host: r.example.com, username: u, password: hunter2-literal}\n",
    );
    assert!(!format!("{literal:?}").contains("hunter2-literal"));
}

#[test]
fn a_registry_entry_needs_a_host_and_exactly_one_password() {
    let missing = error("container:\n  registries:\n    - {username: u, password: p}\n");
    assert!(
        missing.contains("config.yaml:3:") && missing.contains("needs a `host`"),
        "{missing}"
    );
    let none = error("container:\n  registries:\n    - {host: h, username: u}\n");
    assert!(none.contains("needs one of `password`"), "{none}");
    let two = error("container:\n  registries:\n    - {host: h, password: p, password_env: P}\n");
    assert!(two.contains("more than one of"), "{two}");
    let pattern = error(
        "container:\n  registries:\n    - {host: '*.example.com', username: u, password: p, expose_to_jobs: true}\n",
    );
    assert!(
        pattern.contains("config.yaml:3:") && pattern.contains("needs an exact host"),
        "{pattern}"
    );
}

/// Hearth's `cache.s3`: the bucket's keys as written, the credentials from the file or else
/// from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, the secret never shown; a bucket is
/// required, unknown keys are warned about.
#[test]
fn cache_s3_names_a_bucket_and_takes_keys_from_the_environment() {
    use hearth_backend::ExposeSecret as _;
    assert!(defaults().cache.s3.is_none());
    assert!(load_clean("cache:\n  s3:\n").cache.s3.is_none());

    let written = load_clean(
        "cache:\n  s3:\n    endpoint: http://minio:9000\n    bucket: ci-cache\n    \
         region: eu-west-1\n    prefix: hearth/\n    path_style: true\n    \
         access_key_id: AKIAFILE\n    secret_access_key: file-secret\n",
    );
    let s3 = written.cache.s3.expect("cache.s3");
    assert_eq!(
        (
            s3.endpoint.as_str(),
            s3.bucket.as_str(),
            s3.region.as_str(),
            s3.prefix.as_str(),
            s3.path_style
        ),
        (
            "http://minio:9000",
            "ci-cache",
            "eu-west-1",
            "hearth/",
            true
        )
    );
    assert_eq!(s3.access_key_id, "AKIAFILE");
    assert_eq!(s3.secret_access_key.expose_secret(), "file-secret");
    assert!(!format!("{s3:?}").contains("file-secret"), "{s3:?}");

    let aws_env = |name: &str| match name {
        "HOME" => Some("/home/runner".to_owned()),
        "AWS_ACCESS_KEY_ID" => Some("AKIAENV".to_owned()),
        "AWS_SECRET_ACCESS_KEY" => Some("env-secret".to_owned()),
        _ => None,
    };
    let (from_env, _) = Config::from_yaml(
        "cache:\n  s3: {bucket: ci-cache}\n",
        "config.yaml",
        &aws_env,
    )
    .unwrap();
    let s3 = from_env.cache.s3.expect("cache.s3");
    assert_eq!(s3.access_key_id, "AKIAENV");
    assert_eq!(s3.secret_access_key.expose_secret(), "env-secret");
    assert!(!s3.path_style);

    assert_eq!(
        error("cache:\n  s3:\n    endpoint: http://minio:9000\n"),
        "config.yaml:3:5: cache.s3 needs a `bucket`"
    );
    let (_, warnings) = load("cache:\n  s3: {bucket: b, bukket: c}\n");
    assert_eq!(
        messages(&warnings),
        ["config.yaml:2:19: unknown key cache.s3.bukket is ignored; did you mean cache.s3.bucket?"]
    );
}

#[test]
fn metrics_are_off_on_the_loopback_by_default_and_read_as_gitea_runner_names_them() {
    let config = defaults();
    assert!(!config.metrics.enabled);
    assert_eq!(config.metrics.addr, "127.0.0.1:9101");
    let config = load_clean("metrics:\n  enabled: true\n  addr: 0.0.0.0:9200\n");
    assert!(config.metrics.enabled);
    assert_eq!(config.metrics.addr, "0.0.0.0:9200");
    assert_eq!(
        error("metrics:\n  addr: localhost\n"),
        "config.yaml:2:9: metrics.addr must be an IP address and port such as 127.0.0.1:9101 \
         or 0.0.0.0:9101, found \"localhost\""
    );
    let (_, warnings) = load("metrics:\n  enable: true\n");
    assert_eq!(
        messages(&warnings),
        ["config.yaml:2:3: unknown key metrics.enable is ignored; did you mean metrics.enabled?"]
    );
}

#[test]
fn the_disk_guard_resumes_above_its_minimum() {
    // (file, minimum, resume)
    let cases = [
        ("", 1024, 1536),
        (
            "health_check:\n  min_free_disk_space_mb: 2048\n",
            2048,
            2560,
        ),
        ("health_check:\n  min_free_disk_space_mb: 0\n", 0, 0),
        (
            "health_check:\n  min_free_disk_space_mb: 100\n  resume_free_disk_space_mb: 150\n",
            100,
            150,
        ),
        // A resume threshold below the minimum would resume into a pause at once.
        (
            "health_check:\n  min_free_disk_space_mb: 100\n  resume_free_disk_space_mb: 50\n",
            100,
            100,
        ),
    ];
    for (text, min, resume) in cases {
        let config = if text.is_empty() {
            defaults()
        } else {
            load_clean(text)
        };
        assert_eq!(config.health_check.min_free_disk_space_mb, min, "{text}");
        assert_eq!(
            config.health_check.resume_free_disk_space_mb, resume,
            "{text}"
        );
    }
    assert_eq!(
        error("health_check:\n  min_free_disk_space_mb: -5\n"),
        "config.yaml:2:27: health_check.min_free_disk_space_mb must be a number of megabytes, \
         0 or more, found -5"
    );
}

#[test]
fn kubernetes_defaults_name_nothing_but_the_job_service_account() {
    let kubernetes = defaults().kubernetes;
    assert_eq!(
        kubernetes,
        super::KubernetesConfig {
            service_account: "hearth-job".to_owned(),
            pull_policy: super::PullPolicy::IfNotPresent,
            ..Default::default()
        }
    );
    assert_eq!(kubernetes.pull_policy.as_str(), "IfNotPresent");
    // Empty values and an empty template are the defaults too.
    let empty = load_clean(
        "kubernetes:\n  namespace: ''\n  service_account: ''\n  pull_policy: ''\n  \
         pod_template: {}\n  resources: {requests: , limits: {}}\n  runner_secret:\n",
    );
    assert_eq!(empty.kubernetes, kubernetes);
}

#[test]
fn kubernetes_values_are_read() {
    let config = load_clean(
        r#"
kubernetes:
  namespace: ci-jobs
  kubeconfig: /etc/hearth/kubeconfig
  context: ci
  service_account: runner-jobs
  image_pull_secrets: [registry-a, registry.b]
  pull_policy: Always
  resources:
    requests: {cpu: 500m, memory: 1Gi}
    limits:
      cpu: 2
      memory: 1.5Gi
      nvidia.com/gpu: 1
  node_selector:
    kubernetes.io/arch: amd64
    ci: "true"
  tolerations:
    - {key: ci, operator: Equal, value: true, effect: NoSchedule}
    - operator: Exists
      tolerationSeconds: 30
  pod_template:
    metadata:
      labels: {team: ci}
      annotations: {note: "1.10"}
    spec:
      priorityClassName: ci-low
      containers:
        - name: job
          env: [{name: A, value: "1"}]
      terminationGracePeriodSeconds: 5
  runner_secret: hearth-runner
"#,
    );
    let k = &config.kubernetes;
    assert_eq!(k.namespace.as_deref(), Some("ci-jobs"));
    assert_eq!(
        k.kubeconfig.as_deref(),
        Some(Path::new("/etc/hearth/kubeconfig"))
    );
    assert_eq!(k.context.as_deref(), Some("ci"));
    assert_eq!(k.service_account, "runner-jobs");
    assert_eq!(k.image_pull_secrets, ["registry-a", "registry.b"]);
    assert_eq!(k.pull_policy, super::PullPolicy::Always);
    let map = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(k.requests, map(&[("cpu", "500m"), ("memory", "1Gi")]));
    assert_eq!(
        k.limits,
        map(&[("cpu", "2"), ("memory", "1.5Gi"), ("nvidia.com/gpu", "1")])
    );
    assert_eq!(
        k.node_selector,
        map(&[("kubernetes.io/arch", "amd64"), ("ci", "true")])
    );
    // A toleration's fields get the API's types: `value: true` is the string "true".
    assert_eq!(
        k.tolerations,
        [
            serde_json::json!({"key": "ci", "operator": "Equal", "value": "true", "effect": "NoSchedule"}),
            serde_json::json!({"operator": "Exists", "tolerationSeconds": 30}),
        ]
    );
    assert_eq!(
        k.pod_template,
        Some(serde_json::json!({
            "metadata": {"labels": {"team": "ci"}, "annotations": {"note": "1.10"}},
            "spec": {
                "priorityClassName": "ci-low",
                "containers": [{"name": "job", "env": [{"name": "A", "value": "1"}]}],
                "terminationGracePeriodSeconds": 5
            }
        }))
    );
    assert_eq!(k.runner_secret.as_deref(), Some("hearth-runner"));
}

#[test]
fn kubernetes_values_the_api_would_refuse_are_errors_at_the_value() {
    let cases = [
        (
            "kubernetes:\n  pull_policy: always\n",
            "config.yaml:2:16: kubernetes.pull_policy must be IfNotPresent, Always or Never, \
             found \"always\"",
        ),
        (
            "kubernetes:\n  pull_policy: [Always]\n",
            "config.yaml:2:16: kubernetes.pull_policy must be a string, found a sequence",
        ),
        (
            "kubernetes:\n  resources:\n    limits: {memory: 2GB}\n",
            "config.yaml:3:22: kubernetes.resources.limits.memory must be a Kubernetes quantity \
             such as 500m, 2, 1.5 or 512Mi, found \"2GB\"",
        ),
        (
            "kubernetes:\n  resources:\n    requests: [cpu]\n",
            "config.yaml:3:15: kubernetes.resources.requests must be a mapping of resource names \
             to quantities (cpu: 500m), found a sequence",
        ),
        (
            "kubernetes:\n  namespace: CI_Jobs\n",
            "config.yaml:2:14: kubernetes.namespace must be a Kubernetes name, a DNS label: \
             lower-case letters, digits and `-`, starting and ending with a letter or digit, at \
             most 63 characters; found \"CI_Jobs\"",
        ),
        (
            "kubernetes:\n  image_pull_secrets: [ok, Not-OK]\n",
            "config.yaml:2:28: kubernetes.image_pull_secrets[1] must be a Kubernetes name",
        ),
        (
            "kubernetes:\n  runner_secret: hearth/runner\n",
            "config.yaml:2:18: kubernetes.runner_secret must be a Kubernetes name",
        ),
        (
            "kubernetes:\n  node_selector: [a]\n",
            "config.yaml:2:18: kubernetes.node_selector must be a mapping of names to strings",
        ),
        (
            "kubernetes:\n  tolerations: {key: ci}\n",
            "config.yaml:2:16: kubernetes.tolerations must be a list of tolerations, found a \
             mapping",
        ),
        (
            "kubernetes:\n  tolerations:\n    - {operator: exists}\n",
            "config.yaml:3:18: kubernetes.tolerations[0].operator must be one of Exists, Equal, \
             found \"exists\"",
        ),
        (
            "kubernetes:\n  tolerations:\n    - {effect: NoSchedule, tolerationSeconds: 1m}\n",
            "config.yaml:3:47: kubernetes.tolerations[0].tolerationSeconds must be an integer",
        ),
        (
            "kubernetes:\n  pod_template: [a]\n",
            "config.yaml:2:17: kubernetes.pod_template must be a mapping, found a sequence",
        ),
        (
            "kubernetes:\n  pod_template:\n    kind: Deployment\n",
            "config.yaml:3:11: kubernetes.pod_template.kind must be Pod (the template is a Pod), \
             found \"Deployment\"",
        ),
        (
            "kubernetes:\n  pod_template:\n    spec: [a]\n",
            "config.yaml:3:11: kubernetes.pod_template.spec must be a mapping, found a sequence",
        ),
        (
            "kubernetes:\n  pod_template:\n    spec:\n      activeDeadlineSeconds: .nan\n",
            "config.yaml:4:30: kubernetes.pod_template.spec.activeDeadlineSeconds: NaN cannot be \
             written in JSON; quote it to make it a string",
        ),
        (
            "kubernetes:\n  pod_template:\n    metadata:\n      labels:\n        ? [a]\n        : b\n",
            "config.yaml:5:11: a key of kubernetes.pod_template.metadata.labels must be a string, \
             found a sequence",
        ),
        (
            "kubernetes: [namespace]\n",
            "config.yaml:1:13: kubernetes must be a mapping, found a sequence",
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .map(|(text, expected)| (text, expected, error(text)))
        .filter(|(_, expected, message)| !message.starts_with(*expected))
        .map(|(text, expected, message)| {
            format!("{text}\nexpected: {expected}\n   found: {message}")
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn kubernetes_unknown_keys_are_warnings_with_suggestions() {
    let (config, warnings) = load(
        "kubernetes:\n  namespce: ci\n  resources:\n    request: {cpu: 1}\n  tolerations:\n    \
         - {key: a, tolerationSecond: 3}\n  pod_template:\n    containers: []\n    metadata: {}\n",
    );
    assert_eq!(
        messages(&warnings),
        [
            "config.yaml:2:3: unknown key kubernetes.namespce is ignored; did you mean \
             kubernetes.namespace?",
            "config.yaml:4:5: unknown key kubernetes.resources.request is ignored; did you mean \
             kubernetes.resources.requests?",
            "config.yaml:6:16: unknown key kubernetes.tolerations[0].tolerationSecond is \
             ignored; did you mean kubernetes.tolerations[0].tolerationSeconds?",
            "config.yaml:8:5: unknown key kubernetes.pod_template.containers is ignored: the \
             template is a Pod (apiVersion, kind, metadata, spec); a Pod spec's fields go under \
             kubernetes.pod_template.spec",
        ]
    );
    assert_eq!(config.kubernetes.namespace, None);
    assert!(config.kubernetes.requests.is_empty());
    assert_eq!(
        config.kubernetes.tolerations,
        [serde_json::json!({"key": "a"})]
    );
    assert_eq!(
        config.kubernetes.pod_template,
        Some(serde_json::json!({"metadata": {}}))
    );
}
