//! The Pod of one job, as data: the job container, a container per service, the job's folders
//! as volumes, and the least privilege every job Pod gets. Pure, so every field is tested.

use hearth_backend::ContainerSpec;
use serde_json::{json, Map, Value};

use crate::options::{self, ContainerOptions};
use crate::KubernetesSettings;

/// Where the job's folders are mounted, as in a Docker job (`/__w`, `/__t`).
pub const WORK_DIR: &str = "/__w";
pub const TOOL_CACHE: &str = "/__t";
/// Where the runner's externals go (the node it lends, copied in when an action needs it).
pub const EXTERNALS: &str = "/__e";
/// The container the steps run in.
pub const JOB_CONTAINER: &str = "job";

/// The job container's main process: it only waits, and ends at once when the Pod is deleted
/// (a PID 1 without a handler would ignore SIGTERM and hold the Pod for its grace period).
pub(crate) const SLEEPER: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

/// What differs from one job Pod to the next.
pub struct PodPlan<'a> {
    pub name: &'a str,
    /// Labels (already valid label values) every object of the job carries.
    pub labels: &'a [(String, String)],
    /// The job container (its image resolved from the label when the job has none).
    pub job: &'a ContainerSpec,
    /// `jobs.<id>.services`, by id.
    pub services: &'a [(String, ContainerSpec)],
    /// The Secret holding the workflow's registry credentials, when it has any.
    pub credentials_secret: Option<&'a str>,
    /// Whether the cluster runs Pods in a user namespace of their own (`hostUsers: false`).
    pub host_users_false: bool,
}

/// A service's container: its name in the Pod (a DNS label, never `job`) and its ports.
pub fn service_container_name(id: &str) -> String {
    format!("svc-{}", dns_label(id, 50))
}

/// The Pod for `plan`, starting from the runner's `pod_template`.
pub fn pod(plan: &PodPlan<'_>, settings: &KubernetesSettings) -> Result<Value, String> {
    let mut pod = match &settings.pod_template {
        Some(Value::Object(template)) => Value::Object(template.clone()),
        Some(Value::Null) | None => json!({}),
        Some(_) => return Err("kubernetes.pod_template must be a mapping (a Pod)".to_owned()),
    };
    let object = pod
        .as_object_mut()
        .ok_or("unreachable: the Pod is an object")?;
    object.insert("apiVersion".into(), json!("v1"));
    object.insert("kind".into(), json!("Pod"));

    let metadata = child(object, "metadata");
    metadata.insert("name".into(), json!(plan.name));
    metadata.remove("generateName");
    metadata.remove("namespace");
    let labels = child(metadata, "labels");
    for (key, value) in plan.labels {
        labels.insert(key.clone(), json!(value));
    }

    let spec = child(object, "spec");
    let template_job = take_template_job(spec);
    let mut containers = vec![job_container(plan.job, template_job, settings)?];
    for (id, service) in plan.services {
        containers.push(service_container(id, service, settings)?);
    }
    spec.insert("containers".into(), Value::Array(containers));
    spec.insert("restartPolicy".into(), json!("Never"));
    spec.insert(
        "serviceAccountName".into(),
        json!(job_service_account(settings)),
    );
    spec.insert("automountServiceAccountToken".into(), json!(false));
    spec.insert("enableServiceLinks".into(), json!(false));
    // Deleted at once when the job ends; the sleeper ends on SIGTERM anyway.
    spec.insert("terminationGracePeriodSeconds".into(), json!(1));
    if plan.host_users_false {
        spec.insert("hostUsers".into(), json!(false));
    } else {
        spec.remove("hostUsers");
    }
    let security = child(spec, "securityContext");
    security
        .entry("seccompProfile")
        .or_insert_with(|| json!({"type": "RuntimeDefault"}));
    for forbidden in ["hostNetwork", "hostPID", "hostIPC"] {
        spec.remove(forbidden);
    }

    let volumes = array(spec, "volumes");
    volumes.retain(|v| v.get("hostPath").is_none_or(Value::is_null));
    volumes.push(json!({"name": "hearth-work", "emptyDir": {}}));
    volumes.push(json!({"name": "hearth-toolcache", "emptyDir": {}}));
    volumes.push(json!({"name": "hearth-externals", "emptyDir": {}}));

    let pull_secrets = array(spec, "imagePullSecrets");
    for name in settings
        .image_pull_secrets
        .iter()
        .map(String::as_str)
        .chain(plan.credentials_secret)
    {
        pull_secrets.push(json!({ "name": name }));
    }

    let hostnames: Vec<String> = plan
        .services
        .iter()
        .map(|(id, _)| id.to_ascii_lowercase())
        .filter(|id| is_hostname(id))
        .collect();
    if !hostnames.is_empty() {
        array(spec, "hostAliases").push(json!({"ip": "127.0.0.1", "hostnames": hostnames}));
    }
    if !settings.node_selector.is_empty() {
        let selector = child(spec, "nodeSelector");
        for (key, value) in &settings.node_selector {
            selector.insert(key.clone(), json!(value));
        }
    }
    if !settings.tolerations.is_empty() {
        array(spec, "tolerations").extend(settings.tolerations.iter().cloned());
    }
    Ok(pod)
}

/// The ServiceAccount job Pods run as.
pub fn job_service_account(settings: &KubernetesSettings) -> &str {
    if settings.service_account.is_empty() {
        crate::DEFAULT_JOB_SERVICE_ACCOUNT
    } else {
        &settings.service_account
    }
}

fn job_container(
    spec: &ContainerSpec,
    template: Option<Value>,
    settings: &KubernetesSettings,
) -> Result<Value, String> {
    let options = options::parse(&spec.options)?;
    let mut container = template.unwrap_or_else(|| json!({}));
    let mounts = json!([
        {"name": "hearth-work", "mountPath": WORK_DIR},
        {"name": "hearth-toolcache", "mountPath": TOOL_CACHE},
        {"name": "hearth-externals", "mountPath": EXTERNALS},
    ]);
    let fields = json!({
        "name": JOB_CONTAINER,
        "image": spec.image,
        "command": ["/bin/sh", "-c", SLEEPER],
        "args": [],
        "volumeMounts": mounts,
    });
    merge(&mut container, fields);
    common(&mut container, spec, &options, settings);
    if let Some(workdir) = &options.workdir {
        container["workingDir"] = json!(workdir);
    }
    Ok(container)
}

fn service_container(
    id: &str,
    spec: &ContainerSpec,
    settings: &KubernetesSettings,
) -> Result<Value, String> {
    let options = options::parse(&spec.options).map_err(|e| format!("service {id}: {e}"))?;
    let mut container = json!({
        "name": service_container_name(id),
        "image": spec.image,
    });
    if let Some(entrypoint) = spec.entrypoint.as_deref().filter(|e| !e.trim().is_empty()) {
        let words = shell_words::split(entrypoint)
            .map_err(|e| format!("service {id}: cannot read its entrypoint: {e}"))?;
        container["command"] = json!(words);
    }
    if let Some(command) = spec.command.as_deref().filter(|c| !c.trim().is_empty()) {
        let words = shell_words::split(command)
            .map_err(|e| format!("service {id}: cannot read its command: {e}"))?;
        container["args"] = json!(words);
    }
    let mut ports = Vec::new();
    for entry in &spec.ports {
        let (port, protocol) = container_port(entry)
            .ok_or_else(|| format!("service {id}: cannot read the port {entry:?}"))?;
        ports.push(json!({"containerPort": port, "protocol": protocol}));
    }
    if !ports.is_empty() {
        container["ports"] = Value::Array(ports);
    }
    if !spec.volumes.is_empty() {
        return Err(format!(
            "service {id}: volumes cannot be mounted into a job Pod's containers (a Pod mounts \
             no folder of the node); remove `volumes:`"
        ));
    }
    common(&mut container, spec, &options, settings);
    if let Some(workdir) = &options.workdir {
        container["workingDir"] = json!(workdir);
    }
    if let Some(health) = &options.health {
        let seconds = |d: Option<std::time::Duration>, default: u64| {
            d.map(|d| d.as_secs().max(1)).unwrap_or(default)
        };
        container["readinessProbe"] = json!({
            "exec": {"command": ["/bin/sh", "-c", health.command]},
            "periodSeconds": seconds(health.interval, 1),
            "timeoutSeconds": seconds(health.timeout, 30),
            "initialDelaySeconds": health.start_period.map(|d| d.as_secs()).unwrap_or(0),
            "failureThreshold": health.retries.unwrap_or(3).max(1),
        });
    }
    Ok(container)
}

/// What the job container and the services share: image pull policy, environment, resources
/// and the security every container of a job Pod gets.
fn common(
    container: &mut Value,
    spec: &ContainerSpec,
    options: &ContainerOptions,
    settings: &KubernetesSettings,
) {
    container["imagePullPolicy"] = json!(settings.pull_policy.as_deref().unwrap_or("IfNotPresent"));
    let env = array_of(container, "env");
    for (name, value) in spec.env.iter().chain(&options.env) {
        env.retain(|e| e.get("name").and_then(Value::as_str) != Some(name));
        env.push(json!({"name": name, "value": value}));
    }
    let mut requests: Map<String, Value> = settings
        .requests
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let mut limits: Map<String, Value> = settings
        .limits
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    // A limit the workflow sets is its request too: the job asked for that much.
    for (key, value) in [("cpu", &options.cpu), ("memory", &options.memory)] {
        if let Some(value) = value {
            limits.insert(key.into(), json!(value));
            requests.insert(key.into(), json!(value));
        }
    }
    if !requests.is_empty() || !limits.is_empty() {
        merge(
            &mut container["resources"],
            json!({"requests": requests, "limits": limits}),
        );
    }
    let mut security = json!({"privileged": false, "allowPrivilegeEscalation": false});
    if let Some((uid, gid)) = options.user {
        security["runAsUser"] = json!(uid);
        if let Some(gid) = gid {
            security["runAsGroup"] = json!(gid);
        }
    }
    merge(&mut container["securityContext"], security);
}

/// The container port of a `ports:` entry (`8080`, `8080:80`, `127.0.0.1:8080:80/udp`).
fn container_port(entry: &str) -> Option<(u16, &'static str)> {
    let (ports, protocol) = match entry.rsplit_once('/') {
        Some((ports, proto)) if proto.eq_ignore_ascii_case("udp") => (ports, "UDP"),
        Some((ports, proto)) if proto.eq_ignore_ascii_case("tcp") => (ports, "TCP"),
        Some(_) => return None,
        None => (entry, "TCP"),
    };
    let port = ports.rsplit(':').next()?.trim().parse().ok()?;
    (port != 0).then_some((port, protocol))
}

/// The ports of a service as `job.services.<id>.ports` shows them: in a Pod a service listens
/// on its own port at 127.0.0.1, so each container port maps to itself.
pub fn service_ports(spec: &ContainerSpec) -> Vec<(String, String)> {
    spec.ports
        .iter()
        .filter_map(|entry| container_port(entry))
        .map(|(port, _)| (port.to_string(), port.to_string()))
        .collect()
}

/// Takes the template's container named `job` out of its containers (the others go: a job
/// Pod's containers are the job's and its services').
fn take_template_job(spec: &mut Map<String, Value>) -> Option<Value> {
    let containers = spec.remove("containers")?;
    let Value::Array(containers) = containers else {
        return None;
    };
    containers
        .into_iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(JOB_CONTAINER))
}

/// Whether `name` may be a host alias (an RFC 1123 subdomain, as the API checks): a service id
/// with `_` is not, and is added to the job container's hosts file instead.
pub fn is_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// Service ids the API refuses as host aliases: the set-up exec adds them to the job
/// container's hosts file.
pub fn extra_hosts(services: &[(String, ContainerSpec)]) -> Vec<String> {
    services
        .iter()
        .map(|(id, _)| id.clone())
        .filter(|id| !is_hostname(&id.to_ascii_lowercase()))
        .collect()
}

/// A valid label value or DNS label from `text`: lowercase letters, digits and `-`, at most
/// `max` long, starting and ending with a letter or digit.
pub fn dns_label(text: &str, max: usize) -> String {
    let mut label: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    label.truncate(max);
    let trimmed = label.trim_matches('-');
    if trimmed.is_empty() {
        "x".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// A label value (`[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63) for `text`.
pub fn label_value(text: &str) -> String {
    let mut value: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    value.truncate(63);
    value
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

fn child<'a>(object: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = object.entry(key).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    match entry {
        Value::Object(map) => map,
        _ => unreachable!("made an object just above"),
    }
}

fn array<'a>(object: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let entry = object.entry(key).or_insert_with(|| json!([]));
    if !entry.is_array() {
        *entry = json!([]);
    }
    match entry {
        Value::Array(items) => items,
        _ => unreachable!("made an array just above"),
    }
}

fn array_of<'a>(value: &'a mut Value, key: &str) -> &'a mut Vec<Value> {
    if !value.is_object() {
        *value = json!({});
    }
    match value {
        Value::Object(map) => array(map, key),
        _ => unreachable!("made an object just above"),
    }
}

/// Merges `over` into `base`: objects key by key, anything else replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, over) => *base = over,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(image: &str) -> ContainerSpec {
        ContainerSpec {
            image: image.into(),
            ..Default::default()
        }
    }

    fn plan<'a>(
        job: &'a ContainerSpec,
        services: &'a [(String, ContainerSpec)],
        labels: &'a [(String, String)],
    ) -> PodPlan<'a> {
        PodPlan {
            name: "hearth-build-1a2b",
            labels,
            job,
            services,
            credentials_secret: None,
            host_users_false: false,
        }
    }

    #[test]
    fn a_job_pod_has_least_privilege_and_the_job_folders() {
        let labels = [("hearth.task".to_owned(), "7".to_owned())];
        let job = spec("debian:12");
        let pod = pod(&plan(&job, &[], &labels), &KubernetesSettings::default()).unwrap();
        let spec = &pod["spec"];
        assert_eq!(pod["metadata"]["labels"]["hearth.task"], "7");
        assert_eq!(spec["serviceAccountName"], "hearth-job");
        assert_eq!(spec["automountServiceAccountToken"], false);
        assert_eq!(spec["restartPolicy"], "Never");
        assert!(spec.get("hostUsers").is_none());
        let job = &spec["containers"][0];
        assert_eq!(job["name"], "job");
        assert_eq!(job["securityContext"]["privileged"], false);
        assert_eq!(job["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(job["imagePullPolicy"], "IfNotPresent");
        assert_eq!(job["volumeMounts"][0]["mountPath"], "/__w");
        assert_eq!(spec["volumes"][0]["emptyDir"], json!({}));
        // It must parse as a Pod of the API.
        serde_json::from_value::<k8s_openapi::api::core::v1::Pod>(pod).unwrap();
    }

    #[test]
    fn services_are_containers_reached_by_id_through_host_aliases() {
        let mut redis = spec("redis:7");
        redis.ports = vec!["6379:6379".into(), "53/udp".into()];
        redis.options = "--health-cmd 'redis-cli ping' --health-interval 2s".into();
        redis.command = Some("redis-server --save ''".into());
        let services = vec![("redis_db".to_owned(), redis.clone())];
        let job = spec("debian:12");
        let pod = pod(&plan(&job, &services, &[]), &KubernetesSettings::default()).unwrap();
        let service = &pod["spec"]["containers"][1];
        assert_eq!(service["name"], "svc-redis-db");
        assert_eq!(service["args"], json!(["redis-server", "--save", ""]));
        assert_eq!(
            service["ports"][1],
            json!({"containerPort": 53, "protocol": "UDP"})
        );
        assert_eq!(service["readinessProbe"]["periodSeconds"], 2);
        // `redis_db` is no host name the API takes: the hosts file gets it instead.
        assert!(pod["spec"].get("hostAliases").is_none());
        assert_eq!(extra_hosts(&services), vec!["redis_db".to_owned()]);
        let both = vec![
            ("Cache".to_owned(), spec("redis:7")),
            ("db.primary".to_owned(), spec("pg")),
        ];
        let job = spec("debian:12");
        let pod = super::pod(&plan(&job, &both, &[]), &KubernetesSettings::default()).unwrap();
        assert_eq!(
            pod["spec"]["hostAliases"],
            json!([{"ip": "127.0.0.1", "hostnames": ["cache", "db.primary"]}])
        );
        assert!(extra_hosts(&both).is_empty());
        assert_eq!(
            service_ports(&redis),
            vec![("6379".into(), "6379".into()), ("53".into(), "53".into())]
        );
    }

    #[test]
    fn the_template_is_the_base_and_cannot_undo_the_sandbox() {
        let settings = KubernetesSettings {
            pod_template: Some(json!({
                "metadata": {"labels": {"team": "ci"}, "annotations": {"a": "b"}},
                "spec": {
                    "priorityClassName": "ci",
                    "hostNetwork": true,
                    "automountServiceAccountToken": true,
                    "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
                    "containers": [{"name": "job", "resources": {"limits": {"cpu": "2"}},
                                    "securityContext": {"privileged": true}}]
                }
            })),
            image_pull_secrets: vec!["regcred".into()],
            node_selector: [("pool".to_owned(), "ci".to_owned())].into(),
            ..Default::default()
        };
        let job = spec("img");
        let mut plan = plan(&job, &[], &[]);
        plan.credentials_secret = Some("hearth-build-1a2b-registry");
        plan.host_users_false = true;
        let pod = pod(&plan, &settings).unwrap();
        let spec = &pod["spec"];
        assert_eq!(pod["metadata"]["labels"]["team"], "ci");
        assert_eq!(spec["priorityClassName"], "ci");
        assert!(spec.get("hostNetwork").is_none());
        assert_eq!(spec["automountServiceAccountToken"], false);
        assert_eq!(spec["hostUsers"], false);
        assert!(spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v.get("hostPath").is_none()));
        assert_eq!(spec["containers"][0]["resources"]["limits"]["cpu"], "2");
        assert_eq!(
            spec["containers"][0]["securityContext"]["privileged"],
            false
        );
        assert_eq!(
            spec["imagePullSecrets"],
            json!([{"name": "regcred"}, {"name": "hearth-build-1a2b-registry"}])
        );
        assert_eq!(spec["nodeSelector"]["pool"], "ci");
    }

    #[test]
    fn labels_and_names_are_made_valid() {
        assert_eq!(dns_label("Build & Test_1", 63), "build---test-1");
        assert_eq!(dns_label("---", 63), "x");
        assert_eq!(label_value("owner/repo@main"), "owner_repo_main");
        assert_eq!(label_value(&"a".repeat(70)).len(), 63);
        assert_eq!(service_container_name("Postgres"), "svc-postgres");
    }
}
