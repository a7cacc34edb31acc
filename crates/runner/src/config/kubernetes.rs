//! Hearth's `kubernetes:` section (act_runner has none): the cluster `kubernetes://` labels'
//! jobs run in, and what every job Pod gets.
//!
//! Values the API would refuse at every job (a pull policy it does not know, a quantity it
//! cannot parse, a Secret name it cannot hold) are refused here instead, at `file:line:col`.
//! The toleration list and the Pod template are handed to the backend as JSON, the language
//! of the API; YAML that JSON cannot hold (a key that is a list, `.nan`) is refused where it
//! is written.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hearth_workflow::yaml::{Node, YamlValue};
use serde_json::{Map, Number, Value};

use super::reader::{join, Reader};
use super::ConfigError;

/// The keys of the section.
pub(super) const KUBERNETES_KEYS: &[&str] = &[
    "namespace",
    "kubeconfig",
    "context",
    "service_account",
    "image_pull_secrets",
    "pull_policy",
    "resources",
    "node_selector",
    "tolerations",
    "pod_template",
    "runner_secret",
];
/// The keys of `kubernetes.resources`.
pub(super) const RESOURCES_KEYS: &[&str] = &["requests", "limits"];
/// The fields of a toleration, as the Pod spec spells them.
const TOLERATION_KEYS: &[&str] = &["key", "operator", "value", "effect", "tolerationSeconds"];
/// The fields of a Pod the template may have.
const POD_KEYS: &[&str] = &["apiVersion", "kind", "metadata", "spec"];

/// The ServiceAccount job Pods run as when the file names none: one with no rights, which
/// the cluster's set-up creates (hearth-kubernetes's `DEFAULT_JOB_SERVICE_ACCOUNT`; the
/// binary's test holds the two equal).
pub const DEFAULT_SERVICE_ACCOUNT: &str = "hearth-job";

/// `kubernetes:`, with its defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubernetesConfig {
    /// `kubernetes.namespace`; `None`: the runner's own namespace in a cluster, else the
    /// kubeconfig context's, else `default`.
    pub namespace: Option<String>,
    /// `kubernetes.kubeconfig`; `None`: `KUBECONFIG`, `~/.kube/config`, then the in-cluster
    /// ServiceAccount.
    pub kubeconfig: Option<PathBuf>,
    /// `kubernetes.context`; `None`: the kubeconfig's current one.
    pub context: Option<String>,
    /// `kubernetes.service_account`, default [`DEFAULT_SERVICE_ACCOUNT`].
    pub service_account: String,
    /// `kubernetes.image_pull_secrets`: Secret names every job Pod pulls with.
    pub image_pull_secrets: Vec<String>,
    /// `kubernetes.pull_policy`, default `IfNotPresent`.
    pub pull_policy: PullPolicy,
    /// `kubernetes.resources.requests`: `cpu: 500m`, `memory: 1Gi`, ...
    pub requests: BTreeMap<String, String>,
    /// `kubernetes.resources.limits`.
    pub limits: BTreeMap<String, String>,
    /// `kubernetes.node_selector`.
    pub node_selector: BTreeMap<String, String>,
    /// `kubernetes.tolerations`, each a JSON object as the Pod spec spells it.
    pub tolerations: Vec<Value>,
    /// `kubernetes.pod_template`: a Pod as the API spells it; `None` when absent or empty.
    pub pod_template: Option<Value>,
    /// `kubernetes.runner_secret`: the Secret that keeps the registration instead of
    /// `runner.file`; `None` for the file.
    pub runner_secret: Option<String>,
}

/// `imagePullPolicy`, as the API spells it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PullPolicy {
    #[default]
    IfNotPresent,
    Always,
    Never,
}

impl PullPolicy {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Always => "Always",
            PullPolicy::Never => "Never",
        }
    }

    fn parse(text: &str) -> Option<PullPolicy> {
        [
            PullPolicy::IfNotPresent,
            PullPolicy::Always,
            PullPolicy::Never,
        ]
        .into_iter()
        .find(|policy| policy.as_str() == text)
    }
}

/// What the file says, Go-zero where it says nothing.
#[derive(Debug, Default)]
pub(super) struct RawKubernetes {
    namespace: String,
    kubeconfig: String,
    context: String,
    service_account: String,
    image_pull_secrets: Vec<String>,
    pull_policy: Option<PullPolicy>,
    requests: BTreeMap<String, String>,
    limits: BTreeMap<String, String>,
    node_selector: BTreeMap<String, String>,
    tolerations: Vec<Value>,
    pod_template: Option<Value>,
    runner_secret: String,
}

/// The section with its defaults.
pub(super) fn resolve(raw: RawKubernetes) -> KubernetesConfig {
    let some = |text: String| (!text.is_empty()).then_some(text);
    KubernetesConfig {
        namespace: some(raw.namespace),
        kubeconfig: some(raw.kubeconfig).map(PathBuf::from),
        context: some(raw.context),
        service_account: some(raw.service_account)
            .unwrap_or_else(|| DEFAULT_SERVICE_ACCOUNT.to_owned()),
        image_pull_secrets: raw.image_pull_secrets,
        pull_policy: raw.pull_policy.unwrap_or_default(),
        requests: raw.requests,
        limits: raw.limits,
        node_selector: raw.node_selector,
        tolerations: raw.tolerations,
        pod_template: raw.pod_template,
        runner_secret: some(raw.runner_secret),
    }
}

/// Reads `kubernetes:`.
pub(super) fn read_kubernetes(
    reader: &mut Reader<'_>,
    node: &Node,
    raw: &mut RawKubernetes,
) -> Result<(), ConfigError> {
    for (key, value) in reader.mapping(node, "kubernetes")? {
        let Some(name) = key.as_str().filter(|name| KUBERNETES_KEYS.contains(name)) else {
            reader.unknown_key(key, "kubernetes", KUBERNETES_KEYS);
            continue;
        };
        let path = join("kubernetes", name);
        let path = path.as_str();
        let text = |reader: &Reader<'_>| -> Result<String, ConfigError> {
            Ok(reader.string(value, path)?.unwrap_or_default())
        };
        match name {
            "namespace" => raw.namespace = name_of(reader, value, path, text(reader)?, false)?,
            "kubeconfig" => raw.kubeconfig = text(reader)?,
            "context" => raw.context = text(reader)?,
            "service_account" => {
                raw.service_account = name_of(reader, value, path, text(reader)?, true)?;
            }
            "image_pull_secrets" => {
                let mut names = Vec::new();
                for (index, (secret, item)) in reader
                    .string_list(value, path)?
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                {
                    let at = format!("{path}[{index}]");
                    names.push(name_of(reader, item, &at, secret, true)?);
                }
                raw.image_pull_secrets = names;
            }
            "pull_policy" => raw.pull_policy = read_pull_policy(reader, value, path)?,
            "resources" => read_resources(reader, value, raw)?,
            "node_selector" => {
                raw.node_selector = reader
                    .string_map(value, path)?
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
            }
            "tolerations" => raw.tolerations = read_tolerations(reader, value, path)?,
            "pod_template" => raw.pod_template = read_pod_template(reader, value, path)?,
            _ => raw.runner_secret = name_of(reader, value, path, text(reader)?, true)?,
        }
    }
    Ok(())
}

/// `pull_policy`: one of the API's three, spelled as it spells them; `None` for empty.
fn read_pull_policy(
    reader: &Reader<'_>,
    node: &Node,
    path: &str,
) -> Result<Option<PullPolicy>, ConfigError> {
    let text = reader.string(node, path)?.unwrap_or_default();
    if text.is_empty() {
        return Ok(None);
    }
    PullPolicy::parse(&text).map(Some).ok_or_else(|| {
        reader.error(
            node,
            format!("{path} must be IfNotPresent, Always or Never, found {text:?}"),
        )
    })
}

/// `resources: {requests: {cpu: 500m}, limits: {memory: 1Gi}}`.
fn read_resources(
    reader: &mut Reader<'_>,
    node: &Node,
    raw: &mut RawKubernetes,
) -> Result<(), ConfigError> {
    let section = "kubernetes.resources";
    for (key, value) in reader.mapping(node, section)? {
        let target = match key.as_str() {
            Some("requests") => &mut raw.requests,
            Some("limits") => &mut raw.limits,
            _ => {
                reader.unknown_key(key, section, RESOURCES_KEYS);
                continue;
            }
        };
        let path = join(section, key.as_str().unwrap_or_default());
        let entries = match &value.value {
            YamlValue::Null => continue,
            YamlValue::Mapping(entries) => entries,
            _ => {
                return Err(reader.error(
                    value,
                    format!(
                        "{path} must be a mapping of resource names to quantities (cpu: 500m), \
                         found {}",
                        value.kind_with_article()
                    ),
                ))
            }
        };
        for (name, quantity) in entries {
            let resource = reader
                .string(name, &format!("a key of {path}"))?
                .unwrap_or_default();
            let at = join(&path, &resource);
            let amount = reader.string(quantity, &at)?.unwrap_or_default();
            if !is_quantity(&amount) {
                return Err(reader.error(
                    quantity,
                    format!(
                        "{at} must be a Kubernetes quantity such as 500m, 2, 1.5 or 512Mi, \
                         found {amount:?}"
                    ),
                ));
            }
            target.insert(resource, amount);
        }
    }
    Ok(())
}

/// Whether `text` is a quantity as the API reads it: a number without a sign (or with `+`),
/// then a binary (`Ki` .. `Ei`) or decimal (`m`, `k`, `M` .. `E`) suffix or an exponent.
fn is_quantity(text: &str) -> bool {
    let text = text.strip_prefix('+').unwrap_or(text);
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    let digits = number.chars().filter(char::is_ascii_digit).count();
    if digits == 0 || number.matches('.').count() > 1 {
        return false;
    }
    match suffix {
        "" | "m" | "k" | "M" | "G" | "T" | "P" | "E" => true,
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => true,
        _ => suffix
            .strip_prefix(['e', 'E'])
            .map(|exponent| exponent.strip_prefix(['+', '-']).unwrap_or(exponent))
            .is_some_and(|exponent| {
                !exponent.is_empty() && exponent.chars().all(|c| c.is_ascii_digit())
            }),
    }
}

/// A name the API keeps: a DNS label (namespaces) or subdomain (Secrets, ServiceAccounts);
/// empty stays empty (the default).
fn name_of(
    reader: &Reader<'_>,
    node: &Node,
    path: &str,
    name: String,
    subdomain: bool,
) -> Result<String, ConfigError> {
    let (fits, what, longest) = if subdomain {
        (is_dns_subdomain(&name), "a DNS subdomain", 253)
    } else {
        (is_dns_label(&name), "a DNS label", 63)
    };
    if name.is_empty() || fits {
        return Ok(name);
    }
    Err(reader.error(
        node,
        format!(
            "{path} must be a Kubernetes name, {what}: lower-case letters, digits and `-`{}, \
             starting and ending with a letter or digit, at most {longest} characters; found \
             {name:?}",
            if subdomain { " (and `.`)" } else { "" }
        ),
    ))
}

/// RFC 1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
fn is_dns_label(name: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    name.len() <= 63
        && edge(name.chars().next())
        && edge(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// RFC 1123 subdomain: labels joined by `.`, at most 253 characters.
fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// `tolerations`: a list of `{key, operator, value, effect, tolerationSeconds}`.
fn read_tolerations(
    reader: &mut Reader<'_>,
    node: &Node,
    path: &str,
) -> Result<Vec<Value>, ConfigError> {
    let items = match &node.value {
        YamlValue::Null => return Ok(Vec::new()),
        YamlValue::Sequence(items) => items,
        _ => {
            return Err(reader.error(
                node,
                format!(
                    "{path} must be a list of tolerations, found {}",
                    node.kind_with_article()
                ),
            ))
        }
    };
    let mut tolerations = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let at = format!("{path}[{index}]");
        let mut toleration = Map::new();
        for (key, value) in reader.mapping(item, &at)? {
            let Some(name) = key.as_str().filter(|name| TOLERATION_KEYS.contains(name)) else {
                reader.unknown_key(key, &at, TOLERATION_KEYS);
                continue;
            };
            let field = join(&at, name);
            if value.is_null() {
                continue;
            }
            let json = match name {
                "tolerationSeconds" => Value::from(reader.integer(value, &field)?),
                _ => Value::from(reader.string(value, &field)?.unwrap_or_default()),
            };
            let allowed: &[&str] = match name {
                "operator" => &["Exists", "Equal", ""],
                "effect" => &["NoSchedule", "PreferNoSchedule", "NoExecute", ""],
                _ => &[],
            };
            if let (false, Some(text)) = (allowed.is_empty(), json.as_str()) {
                if !allowed.contains(&text) {
                    let expected = allowed[..allowed.len() - 1].join(", ");
                    return Err(reader.error(
                        value,
                        format!("{field} must be one of {expected}, found {text:?}"),
                    ));
                }
            }
            toleration.insert(name.to_owned(), json);
        }
        tolerations.push(Value::Object(toleration));
    }
    Ok(tolerations)
}

/// `pod_template`: a Pod as the API spells it (its `metadata` and `spec`), kept as JSON;
/// `None` when null or empty.
fn read_pod_template(
    reader: &mut Reader<'_>,
    node: &Node,
    path: &str,
) -> Result<Option<Value>, ConfigError> {
    let entries = reader.mapping(node, path)?;
    if entries.is_empty() {
        return Ok(None);
    }
    let mut pod = Map::new();
    for (key, value) in entries {
        let Some(name) = key.as_str().filter(|name| POD_KEYS.contains(name)) else {
            let name = reader.string(key, path).ok().flatten().unwrap_or_default();
            reader.warn(
                key,
                format!(
                    "unknown key {} is ignored: the template is a Pod (apiVersion, kind, \
                     metadata, spec); a Pod spec's fields go under {path}.spec",
                    join(path, &name)
                ),
            );
            continue;
        };
        let at = join(path, name);
        match name {
            "kind" => {
                let kind = reader.string(value, &at)?.unwrap_or_default();
                if !kind.is_empty() && kind != "Pod" {
                    return Err(reader.error(
                        value,
                        format!("{at} must be Pod (the template is a Pod), found {kind:?}"),
                    ));
                }
            }
            "metadata" | "spec"
                if !matches!(value.value, YamlValue::Mapping(_) | YamlValue::Null) =>
            {
                return Err(reader.error(
                    value,
                    format!(
                        "{at} must be a mapping, found {}",
                        value.kind_with_article()
                    ),
                ));
            }
            _ => {}
        }
        pod.insert(name.to_owned(), to_json(reader, value, &at)?);
    }
    Ok(Some(Value::Object(pod)))
}

/// The node as JSON, refusing at its position what JSON cannot hold: a key that is not a
/// scalar, a float that is not a number (`.inf`, `.nan`).
fn to_json(reader: &Reader<'_>, node: &Node, path: &str) -> Result<Value, ConfigError> {
    Ok(match &node.value {
        YamlValue::Null => Value::Null,
        YamlValue::Bool(value) => Value::Bool(*value),
        YamlValue::Int(value) => Value::from(*value),
        YamlValue::Float(value) => Value::Number(Number::from_f64(*value).ok_or_else(|| {
            reader.error(
                node,
                format!("{path}: {value} cannot be written in JSON; quote it to make it a string"),
            )
        })?),
        YamlValue::String(text) => Value::String(text.clone()),
        YamlValue::Sequence(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(index, item)| to_json(reader, item, &format!("{path}[{index}]")))
                .collect::<Result<_, _>>()?,
        ),
        YamlValue::Mapping(entries) => {
            let mut object = Map::with_capacity(entries.len());
            for (key, value) in entries {
                // A scalar key is its text as written (`1` is "1"); a null or collection key
                // has no JSON spelling.
                let name = reader
                    .string(key, &format!("a key of {path}"))?
                    .ok_or_else(|| {
                        reader.error(key, format!("a key of {path} must be a string, found null"))
                    })?;
                let at = join(path, &name);
                object.insert(name, to_json(reader, value, &at)?);
            }
            Value::Object(object)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_read_as_the_api_reads_them() {
        for good in [
            "500m", "2", "1.5", "0.5", ".5", "5.", "512Mi", "1Gi", "+1", "1e3", "1E-2", "100k",
            "2T",
        ] {
            assert!(is_quantity(good), "{good:?}");
        }
        for bad in [
            "", "m", "-1", "1.2.3", "1 Gi", "1gb", "1GB", "1KiB", "1e", "1e+", "Gi", "1ki", "half",
        ] {
            assert!(!is_quantity(bad), "{bad:?}");
        }
    }

    #[test]
    fn names_are_dns_labels_or_subdomains() {
        assert!(is_dns_label("ci-jobs"));
        assert!(is_dns_label("a"));
        assert!(!is_dns_label("CI"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("a-"));
        assert!(!is_dns_label("a.b"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_subdomain("hearth.runner-1"));
        assert!(!is_dns_subdomain("hearth..runner"));
        assert!(!is_dns_subdomain("hearth_runner"));
    }
}
