//! The deployment files under `deploy/` hold together: every Kubernetes manifest parses and is
//! listed in the kustomization, the StatefulSet's references (Service, ConfigMap, Secrets,
//! volumes, ports, probes) name things that exist, the config files load as Hearth loads
//! them, and the grace each deployment gives a stopping runner covers its
//! `runner.shutdown_timeout`. (Running them on a cluster is issue 18's.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hearth_runner::config::Config;
use serde_json::Value;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(path: &Path) -> Value {
    hearth_workflow::yaml::load(&read(path), &path.display().to_string())
        .unwrap_or_else(|e| panic!("{e}"))
        .to_json()
}

/// `value` at a `/`-separated path of keys and indices, or a failure naming the path.
fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
    value
        .pointer(&format!("/{path}"))
        .unwrap_or_else(|| panic!("no {path} in {value:#}"))
}

fn text<'a>(value: &'a Value, path: &str) -> &'a str {
    at(value, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not a string: {}", at(value, path)))
}

fn items<'a>(value: &'a Value, path: &str) -> &'a [Value] {
    value
        .pointer(&format!("/{path}"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Hearth's config as the daemon would load it from `text`.
fn load_config(text: &str) -> Config {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, text).expect("config written");
    let (config, warnings) = Config::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
    // Every key is known (the metrics ones too, now that the endpoint is built): a warning is
    // a mistake in the file.
    let unexpected: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    config
}

/// A systemd time span such as `3h5min` or `90s`.
fn systemd_span(span: &str) -> Duration {
    let mut total = 0u64;
    let mut number = String::new();
    let mut unit = String::new();
    let mut flush = |number: &mut String, unit: &mut String| {
        if number.is_empty() {
            return;
        }
        let n: u64 = number.parse().expect("a number");
        total += n * match unit.as_str() {
            "h" => 3600,
            "min" | "m" => 60,
            "s" | "" => 1,
            other => panic!("unit {other} in {span}"),
        };
        number.clear();
        unit.clear();
    };
    for c in span.chars() {
        if c.is_ascii_digit() {
            if !unit.is_empty() {
                flush(&mut number, &mut unit);
            }
            number.push(c);
        } else if !c.is_whitespace() {
            unit.push(c);
        }
    }
    flush(&mut number, &mut unit);
    Duration::from_secs(total)
}

/// A Compose duration such as `3h5m` (Go's syntax, as Hearth's config reads it too).
fn compose_span(span: &str) -> Duration {
    systemd_span(span)
}

/// The grace a deployment gives must cover the runner's drain, with room for the last reports.
fn assert_grace_covers(what: &str, grace: Duration, shutdown_timeout: Duration) {
    assert!(
        shutdown_timeout > Duration::ZERO,
        "{what}: runner.shutdown_timeout is 0, so jobs are cancelled at once on stop"
    );
    assert!(
        grace >= shutdown_timeout + Duration::from_secs(60),
        "{what}: a grace of {grace:?} does not cover runner.shutdown_timeout {shutdown_timeout:?} \
         and a minute for the last reports"
    );
}

#[test]
fn the_kubernetes_manifests_are_all_listed_and_name_what_exists() {
    let dir = deploy().join("kubernetes");
    let kustomization = yaml(&dir.join("kustomization.yaml"));
    assert_eq!(text(&kustomization, "kind"), "Kustomization");
    let listed: BTreeSet<String> = items(&kustomization, "resources")
        .iter()
        .map(|r| r.as_str().expect("a file name").to_owned())
        .collect();
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("deploy/kubernetes")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present, "kustomization.yaml's resources");

    let mut kinds = BTreeSet::new();
    let (mut config_map, mut service, mut stateful_set) = (None, None, None);
    for file in &present {
        let manifest = yaml(&dir.join(file));
        text(&manifest, "apiVersion");
        text(&manifest, "metadata/name");
        let kind = text(&manifest, "kind").to_owned();
        match kind.as_str() {
            "ConfigMap" => config_map = Some(manifest),
            "Service" => service = Some(manifest),
            "StatefulSet" => stateful_set = Some(manifest),
            other => panic!("{file}: unexpected kind {other}"),
        }
        assert!(kinds.insert(kind.clone()), "two {kind}s");
    }
    let (config_map, service, set) = (
        config_map.expect("a ConfigMap"),
        service.expect("a Service"),
        stateful_set.expect("a StatefulSet"),
    );

    // The set, its pods, and its governing Service agree on names and labels.
    assert_eq!(
        text(&set, "spec/serviceName"),
        text(&service, "metadata/name")
    );
    let pod_labels = at(&set, "spec/template/metadata/labels");
    for (key, value) in at(&set, "spec/selector/matchLabels")
        .as_object()
        .expect("matchLabels")
        .iter()
        .chain(at(&service, "spec/selector").as_object().expect("selector"))
    {
        assert_eq!(pod_labels.get(key), Some(value), "selector {key}");
    }
    assert_eq!(text(&service, "spec/clusterIP"), "None", "headless Service");

    // The config the runner loads.
    let config_text = text(&config_map, "data/config.yaml");
    let config = load_config(config_text);
    let config_json = yaml_text(config_text);
    let metrics_addr = text(&config_json, "metrics/addr");
    assert_eq!(at(&config_json, "metrics/enabled"), &Value::Bool(true));
    let metrics_port: u64 = metrics_addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("metrics.addr {metrics_addr}"));

    let pod = at(&set, "spec/template/spec");
    let containers: Vec<&Value> = items(pod, "containers")
        .iter()
        .chain(items(pod, "initContainers"))
        .collect();
    let runner = containers
        .iter()
        .find(|c| text(c, "name") == "runner")
        .expect("a runner container");
    let sidecar = items(pod, "initContainers")
        .iter()
        .find(|c| text(c, "name") == "docker")
        .expect("a docker sidecar");
    assert_eq!(
        text(sidecar, "restartPolicy"),
        "Always",
        "a native sidecar: it outlives the runner's drain"
    );

    // Volumes: each mounted one exists, each one is mounted.
    let mut volumes: BTreeSet<&str> = items(pod, "volumes")
        .iter()
        .map(|v| text(v, "name"))
        .collect();
    volumes.extend(
        items(&set, "spec/volumeClaimTemplates")
            .iter()
            .map(|v| text(v, "metadata/name")),
    );
    let mut mounted = BTreeSet::new();
    for container in &containers {
        for mount in items(container, "volumeMounts") {
            let name = text(mount, "name");
            assert!(volumes.contains(name), "volume {name} is not defined");
            mounted.insert(name);
        }
    }
    assert_eq!(mounted, volumes, "every volume is mounted");
    let mount_of = |container: &Value, volume: &str| -> String {
        items(container, "volumeMounts")
            .iter()
            .find(|m| text(m, "name") == volume)
            .map(|m| text(m, "mountPath").to_owned())
            .unwrap_or_else(|| panic!("{} does not mount {volume}", text(container, "name")))
    };
    let volume = |name: &str| -> &Value {
        items(pod, "volumes")
            .iter()
            .find(|v| text(v, "name") == name)
            .unwrap_or_else(|| panic!("no volume {name}"))
    };

    // The ConfigMap is the file CONFIG_FILE names; the state file is on the claim.
    let env = |name: &str| -> String {
        items(runner, "env")
            .iter()
            .find(|e| text(e, "name") == name)
            .map(|e| {
                e.get("value")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            })
            .unwrap_or_else(|| panic!("no {name} in the runner's env"))
    };
    let config_volume = items(runner, "volumeMounts")
        .iter()
        .find(|m| text(m, "mountPath") == env("CONFIG_FILE"))
        .map(|m| text(m, "name"))
        .expect("CONFIG_FILE is mounted");
    assert_eq!(
        text(volume(config_volume), "configMap/name"),
        text(&config_map, "metadata/name")
    );
    assert_eq!(PathBuf::from(env("RUNNER_STATE_FILE")), config.runner.file);
    let claim = text(&set, "spec/volumeClaimTemplates/0/metadata/name");
    assert!(config.runner.file.starts_with(mount_of(runner, claim)));

    // Secrets: the registration token and the dockerconfigjson, both documented for creation.
    let readme = read(&dir.join("README.md"));
    let mut secrets = BTreeSet::new();
    for e in items(runner, "env") {
        if let Some(name) = e.pointer("/valueFrom/secretKeyRef/name") {
            secrets.insert(name.as_str().expect("a name").to_owned());
        }
    }
    assert_eq!(
        text(
            &env_entry(runner, "GITEA_RUNNER_REGISTRATION_TOKEN"),
            "valueFrom/secretKeyRef/name"
        ),
        "hearth-registration"
    );
    let credentials = items(pod, "volumes")
        .iter()
        .find(|v| v.pointer("/secret").is_some())
        .expect("a Secret volume");
    let secret_name = text(credentials, "secret/secretName");
    secrets.insert(secret_name.to_owned());
    for secret in &secrets {
        assert!(
            readme.contains(&format!("kubectl create secret generic {secret} "))
                || readme.contains(&format!("kubectl create secret docker-registry {secret} ")),
            "README.md does not say how to create the Secret {secret}"
        );
    }
    let key = text(credentials, "secret/items/0/key");
    assert_eq!(
        key, ".dockerconfigjson",
        "a kubernetes.io/dockerconfigjson key"
    );
    let credentials_file = Path::new(&mount_of(runner, text(credentials, "name")))
        .join(text(credentials, "secret/items/0/path"));
    assert_eq!(config.container.docker_config, vec![credentials_file]);

    // Docker: the client certificates the sidecar makes reach the runner.
    let cert_path = env("DOCKER_CERT_PATH");
    let certs_volume = items(runner, "volumeMounts")
        .iter()
        .find(|m| text(m, "mountPath") == cert_path)
        .map(|m| text(m, "name"))
        .expect("DOCKER_CERT_PATH is mounted");
    assert_eq!(mount_of(sidecar, certs_volume), cert_path);
    assert_eq!(env("DOCKER_TLS_VERIFY"), "1");
    assert_eq!(config.container.docker_host, "tcp://localhost:2376");
    assert_eq!(
        at(sidecar, "startupProbe/tcpSocket/port").as_u64(),
        Some(2376)
    );

    // Ports: probes and the Service go to the metrics port, which is metrics.addr's.
    let port = items(runner, "ports")
        .iter()
        .find(|p| text(p, "name") == "metrics")
        .expect("a metrics port");
    assert_eq!(at(port, "containerPort").as_u64(), Some(metrics_port));
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(text(runner, &format!("{probe}/httpGet/path")), path);
        assert_eq!(text(runner, &format!("{probe}/httpGet/port")), "metrics");
    }
    assert_eq!(text(&service, "spec/ports/0/targetPort"), "metrics");
    let annotations = at(&set, "spec/template/metadata/annotations");
    assert_eq!(text(annotations, "prometheus.io~1scrape"), "true");
    assert_eq!(
        text(annotations, "prometheus.io~1port"),
        metrics_port.to_string()
    );

    let grace = at(pod, "terminationGracePeriodSeconds")
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    assert_grace_covers(
        "the StatefulSet",
        Duration::from_secs(grace),
        config.runner.shutdown_timeout,
    );
}

fn yaml_text(source: &str) -> Value {
    hearth_workflow::yaml::load(source, "config.yaml")
        .unwrap_or_else(|e| panic!("{e}"))
        .to_json()
}

fn env_entry(container: &Value, name: &str) -> Value {
    items(container, "env")
        .iter()
        .find(|e| text(e, "name") == name)
        .cloned()
        .unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn the_compose_file_mounts_what_its_config_names_and_waits_for_the_drain() {
    let dir = deploy().join("compose");
    let compose = yaml(&dir.join("docker-compose.yml"));
    let config = load_config(&read(&dir.join("config.yaml")));
    let runner = at(&compose, "services/runner");
    let env = at(runner, "environment");
    assert_eq!(
        PathBuf::from(text(env, "RUNNER_STATE_FILE")),
        config.runner.file
    );
    // SOURCE:TARGET[:MODE], where SOURCE may be `${VARIABLE:-default}`.
    let targets: Vec<String> = items(runner, "volumes")
        .iter()
        .map(|v| {
            let mut parts: Vec<&str> = v.as_str().expect("a short volume").split(':').collect();
            if matches!(parts.last(), Some(&"ro" | &"rw")) {
                parts.pop();
            }
            parts.last().copied().unwrap_or_default().to_owned()
        })
        .collect();
    let target = |path: &Path| targets.iter().any(|target| path.starts_with(target));
    assert!(target(&config.runner.file), "runner.file is on a volume");
    for file in &config.container.docker_config {
        assert!(target(file), "{} is mounted", file.display());
    }
    assert!(target(Path::new(text(env, "CONFIG_FILE"))));
    assert!(target(Path::new(text(env, "DOCKER_CERT_PATH"))));
    assert_eq!(text(env, "DOCKER_HOST"), "tcp://docker:2376");
    assert_eq!(
        text(runner, "depends_on/docker/condition"),
        "service_healthy",
        "the runner starts once the daemon answers"
    );
    assert_grace_covers(
        "docker-compose.yml",
        compose_span(text(runner, "stop_grace_period")),
        config.runner.shutdown_timeout,
    );
}

#[test]
fn the_systemd_unit_drains_jobs_for_the_example_shutdown_timeout() {
    let unit = read(&deploy().join("systemd/hearth.service"));
    let setting = |key: &str| -> &str {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in hearth.service"))
    };
    assert_eq!(setting("KillMode"), "mixed");
    assert_eq!(setting("Restart"), "on-failure");
    assert_eq!(setting("StateDirectory"), "hearth");
    assert_eq!(setting("WorkingDirectory"), "/var/lib/hearth");
    assert_eq!(setting("SupplementaryGroups"), "docker");
    // The unit goes with the same shutdown_timeout as the other deployments' configs.
    let config = load_config(&read(&deploy().join("compose/config.yaml")));
    assert_grace_covers(
        "hearth.service",
        systemd_span(setting("TimeoutStopSec")),
        config.runner.shutdown_timeout,
    );
    assert_eq!(systemd_span("3h5min"), Duration::from_secs(3 * 3600 + 300));
    assert_eq!(compose_span("3h5m"), Duration::from_secs(3 * 3600 + 300));
}
