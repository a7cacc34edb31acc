//! Runner labels and picking where a job runs.
//!
//! Shared by `hearth exec` (`--label`, `-P`), the config file (`runner.labels`) and the
//! registration file (`.runner`), so every place reads labels the same way.
//!
//! A runner label has act_runner's syntax (`internal/pkg/labels/labels.go`):
//! `name[:scheme[:arg]]`. The name is what the forge matches against a job's `runs-on`; the
//! scheme and its argument stay on the runner and say how a job with that label runs:
//!
//! * `name` or `name:host`: directly on this machine;
//! * `name:docker://image` (or `name:docker:image`): in a container of `image`;
//! * `name:kubernetes://image` (or `name:kubernetes:image`): in a Pod of the cluster the
//!   config's `kubernetes:` section names, its job container made from `image` (Hearth's
//!   own scheme; act_runner has none for Kubernetes).
//!
//! `hearth exec` also takes act's `-P name=image` form, where the image `-self-hosted` means
//! the host and `kubernetes://image` a Pod; as in act, `-P` adds to the labels there are (the
//! defaults, or `--label`'s) rather than replacing them.
//!
//! Which label a job gets follows Gitea and act_runner: the job is eligible only when *every*
//! `runs-on` value is a label name (Gitea `CanMatchLabels`, exact string match), and then it
//! runs as the label of its *first* `runs-on` value (act_runner `PickPlatform`).

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// The scheme of a label that runs jobs on the host.
const SCHEME_HOST: &str = "host";
/// The scheme of a label that runs jobs in a container.
const SCHEME_DOCKER: &str = "docker";
/// The scheme of a label that runs jobs in a Kubernetes Pod.
const SCHEME_KUBERNETES: &str = "kubernetes";
/// What starts a `-P` image that names a Pod rather than a Docker container.
const KUBERNETES_PLATFORM_PREFIX: &str = "kubernetes://";
/// act's `-P` value that means "run on the host" instead of an image.
const SELF_HOSTED_IMAGE: &str = "-self-hosted";

/// Where the jobs of a label run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Platform {
    /// Directly on this machine, as the user running Hearth.
    Host,
    /// In a container made from `image`.
    Docker { image: String },
    /// In a Pod of the configured Kubernetes cluster, its job container made from `image`.
    Kubernetes { image: String },
}

/// One runner label: the name the forge matches and where its jobs run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    name: String,
    platform: Platform,
}

/// Why a label (from `--label` or `-P`) cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum LabelError {
    #[error("empty label: expected NAME[:host], NAME:docker://IMAGE or NAME:kubernetes://IMAGE")]
    Empty,
    #[error(
        "label {spec:?} has an empty name: expected NAME[:host], NAME:docker://IMAGE or \
         NAME:kubernetes://IMAGE"
    )]
    EmptyName { spec: String },
    #[error(
        "label {spec:?} has the unknown scheme {scheme:?}: expected \"host\", \"docker\" or \
         \"kubernetes\", as in NAME:host, NAME:docker://IMAGE or NAME:kubernetes://IMAGE"
    )]
    UnknownScheme { spec: String, scheme: String },
    #[error(
        "label {spec:?} uses the {scheme} scheme without an image: write {name}:{scheme}://IMAGE"
    )]
    MissingImage {
        spec: String,
        name: String,
        scheme: &'static str,
    },
    #[error("label {spec:?}: the host scheme takes no argument, write {name}:host")]
    HostArgument { spec: String, name: String },
    #[error(
        "-P {spec:?}: expected NAME=IMAGE, NAME=kubernetes://IMAGE to run in a Kubernetes Pod, \
         or NAME=-self-hosted to run on the host"
    )]
    PlatformSyntax { spec: String },
    #[error("-P {spec:?} has an empty label name: expected NAME=IMAGE")]
    PlatformEmptyName { spec: String },
    #[error(
        "-P {spec:?} has an empty image: expected NAME=IMAGE, NAME=kubernetes://IMAGE, or \
         NAME=-self-hosted"
    )]
    PlatformEmptyImage { spec: String },
}

impl Label {
    /// A label that runs its jobs on the host.
    pub fn host(name: impl Into<String>) -> Self {
        Label {
            name: name.into(),
            platform: Platform::Host,
        }
    }

    /// A label that runs its jobs in a container of `image`.
    pub fn docker(name: impl Into<String>, image: impl Into<String>) -> Self {
        Label {
            name: name.into(),
            platform: Platform::Docker {
                image: image.into(),
            },
        }
    }

    /// A label that runs its jobs in Kubernetes Pods, the job container made from `image`.
    pub fn kubernetes(name: impl Into<String>, image: impl Into<String>) -> Self {
        Label {
            name: name.into(),
            platform: Platform::Kubernetes {
                image: image.into(),
            },
        }
    }

    /// Parses act_runner's `name[:scheme[:arg]]`.
    ///
    /// Like act_runner, the text is cut at the first two colons only, so an image keeps its
    /// tag (`ubuntu:docker://node:20` is image `node:20`), the scheme defaults to `host` (as
    /// in Gitea's runner), and a leading `//` of the docker argument is dropped; the
    /// `kubernetes` scheme reads its argument the same way. Stricter than act_runner, which
    /// would silently run an empty image or ignore the argument: an empty name, a docker or
    /// kubernetes label without an image and a host label with an argument are errors.
    pub fn parse(spec: &str) -> Result<Self, LabelError> {
        if spec.is_empty() {
            return Err(LabelError::Empty);
        }
        let mut parts = spec.splitn(3, ':');
        let name = parts.next().unwrap_or_default();
        let scheme = parts.next().unwrap_or(SCHEME_HOST);
        let arg = parts.next();
        check_name(name, spec)?;
        match scheme {
            SCHEME_HOST => host_label(name, arg, spec),
            SCHEME_DOCKER => {
                image_arg(name, arg, spec, SCHEME_DOCKER).map(|image| Label::docker(name, image))
            }
            SCHEME_KUBERNETES => image_arg(name, arg, spec, SCHEME_KUBERNETES)
                .map(|image| Label::kubernetes(name, image)),
            other => Err(LabelError::UnknownScheme {
                spec: spec.to_owned(),
                scheme: other.to_owned(),
            }),
        }
    }

    /// Parses act's `-P name=image`, where the image `-self-hosted` means the host, and
    /// (Hearth's) `kubernetes://image` a Kubernetes Pod.
    ///
    /// The text is cut at the first `=`. act lower-cases the name because it matches
    /// `runs-on` case-insensitively; Hearth keeps it as written, since the forges match label
    /// names exactly and `hearth exec` should pick what the forge would.
    pub fn parse_platform(spec: &str) -> Result<Self, LabelError> {
        let Some((name, image)) = spec.split_once('=') else {
            return Err(LabelError::PlatformSyntax {
                spec: spec.to_owned(),
            });
        };
        if name.trim().is_empty() {
            return Err(LabelError::PlatformEmptyName {
                spec: spec.to_owned(),
            });
        }
        match image {
            SELF_HOSTED_IMAGE => Ok(Label::host(name)),
            "" => Err(LabelError::PlatformEmptyImage {
                spec: spec.to_owned(),
            }),
            image => match image.strip_prefix(KUBERNETES_PLATFORM_PREFIX) {
                Some(image) if image.trim().is_empty() => Err(LabelError::PlatformEmptyImage {
                    spec: spec.to_owned(),
                }),
                Some(image) => Ok(Label::kubernetes(name, image)),
                None => Ok(Label::docker(name, image)),
            },
        }
    }

    /// The name the forge matches against `runs-on`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the label's jobs run.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// The label as the `.runner` file keeps it: `name:host`, `name:docker://image` or
    /// `name:kubernetes://image`.
    pub fn spec(&self) -> String {
        self.to_string()
    }

    /// The job container's image (of a Docker container or a Kubernetes Pod), or `None` for
    /// a host label.
    pub fn image(&self) -> Option<&str> {
        match &self.platform {
            Platform::Host => None,
            Platform::Docker { image } | Platform::Kubernetes { image } => Some(image),
        }
    }

    /// The Docker image of a `docker://` label; `None` for the others.
    pub fn docker_image(&self) -> Option<&str> {
        match &self.platform {
            Platform::Docker { image } => Some(image),
            Platform::Host | Platform::Kubernetes { .. } => None,
        }
    }
}

/// Rejects names that cannot be matched by any `runs-on` value in practice.
fn check_name(name: &str, spec: &str) -> Result<(), LabelError> {
    if name.trim().is_empty() {
        return Err(LabelError::EmptyName {
            spec: spec.to_owned(),
        });
    }
    Ok(())
}

/// `name:host`; an argument would be ignored by act_runner, and Forgejo's runner refuses it.
fn host_label(name: &str, arg: Option<&str>, spec: &str) -> Result<Label, LabelError> {
    match arg {
        None => Ok(Label::host(name)),
        Some(_) => Err(LabelError::HostArgument {
            spec: spec.to_owned(),
            name: name.to_owned(),
        }),
    }
}

/// The image of `name:docker:arg` (or `name:kubernetes:arg`): `arg` without a leading `//`
/// (act_runner `PickPlatform`).
fn image_arg<'s>(
    name: &str,
    arg: Option<&'s str>,
    spec: &str,
    scheme: &'static str,
) -> Result<&'s str, LabelError> {
    let arg = arg.unwrap_or_default();
    let image = arg.strip_prefix("//").unwrap_or(arg);
    if image.trim().is_empty() {
        return Err(LabelError::MissingImage {
            spec: spec.to_owned(),
            name: name.to_owned(),
            scheme,
        });
    }
    Ok(image)
}

impl FromStr for Label {
    type Err = LabelError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        Label::parse(spec)
    }
}

/// The canonical act_runner form, as a `.runner` file stores it: `name:host`,
/// `name:docker://image` or `name:kubernetes://image`. It parses back to the same label.
impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.platform {
            Platform::Host => write!(f, "{}:{SCHEME_HOST}", self.name),
            Platform::Docker { image } => write!(f, "{}:{SCHEME_DOCKER}://{image}", self.name),
            Platform::Kubernetes { image } => {
                write!(f, "{}:{SCHEME_KUBERNETES}://{image}", self.name)
            }
        }
    }
}

/// The labels `hearth exec` starts from when no `--label` is given (`-P` adds to them): only
/// the host, under the names a self-hosted job asks for. `ubuntu-latest` is deliberately absent: running a job meant for
/// a clean hosted VM on the user's own machine must be asked for explicitly.
pub fn default_labels() -> Labels {
    Labels::from_iter([Label::host("self-hosted"), Label::host("linux")])
}

/// A runner's labels, at most one per name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels {
    labels: Vec<Label>,
}

impl Labels {
    /// No labels.
    pub fn new() -> Self {
        Labels::default()
    }

    /// Parses `--label` values (act_runner syntax), later ones overriding earlier ones.
    pub fn parse(specs: &[String]) -> Result<Self, LabelError> {
        specs.iter().map(|spec| Label::parse(spec)).collect()
    }

    /// The labels of `hearth exec`: the `--label` values, or [`default_labels`] when there are
    /// none, then the `-P` values over them.
    ///
    /// `--label` gives the runner's whole set, as a runner's configuration does. `-P` works as
    /// act's: each one adds a label or overrides the one of its name, and the others stay (so
    /// `-P ubuntu-latest=node:20` keeps `self-hosted` and `linux` on the host).
    pub fn from_flags(labels: &[String], platforms: &[String]) -> Result<Self, LabelError> {
        let mut set = if labels.is_empty() {
            default_labels()
        } else {
            Labels::parse(labels)?
        };
        for spec in platforms {
            set.insert(Label::parse_platform(spec)?);
        }
        Ok(set)
    }

    /// Adds `label`, replacing (in place) an earlier label of the same name: the last word
    /// wins, as when act_runner builds its platform map.
    pub fn insert(&mut self, label: Label) {
        match self.labels.iter_mut().find(|old| old.name == label.name) {
            Some(old) => *old = label,
            None => self.labels.push(label),
        }
    }

    /// The label called `name`.
    pub fn get(&self, name: &str) -> Option<&Label> {
        self.labels.iter().find(|label| label.name == name)
    }

    /// The labels, in the order their names first appeared.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.labels.iter()
    }

    /// Whether a label runs jobs in Docker (the runner then needs a Docker backend).
    pub fn any_docker(&self) -> bool {
        self.labels
            .iter()
            .any(|label| matches!(label.platform(), Platform::Docker { .. }))
    }

    /// Whether a label runs jobs in Kubernetes (the runner then needs a Kubernetes backend).
    pub fn any_kubernetes(&self) -> bool {
        self.labels
            .iter()
            .any(|label| matches!(label.platform(), Platform::Kubernetes { .. }))
    }

    /// The label names, as a runner declares them to the forge.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.labels.iter().map(Label::name)
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Whether some label runs its jobs in Docker containers, so a container engine is
    /// needed (a Kubernetes label needs a cluster, not Docker).
    pub fn requires_docker(&self) -> bool {
        self.any_docker()
    }

    /// The label a job with `runs_on` runs as.
    ///
    /// Gitea's rule decides whether the job is eligible at all: every `runs-on` value must be
    /// a label name, compared exactly. act_runner then runs it as the label of the first
    /// `runs-on` value. A job without `runs-on` matches any runner; act_runner would fall back
    /// to its own default image, which Hearth does not have, so it gets the first label.
    pub fn pick(&self, runs_on: &[String]) -> Result<&Label, NoMatch> {
        let missing = self.missing(runs_on);
        if !missing.is_empty() {
            return Err(self.no_match(missing));
        }
        let picked = match runs_on.first() {
            Some(first) => self.get(first),
            None => self.labels.first(),
        };
        picked.ok_or_else(|| self.no_match(Vec::new()))
    }

    /// The `runs-on` values that name no label, each once, in `runs-on` order.
    fn missing(&self, runs_on: &[String]) -> Vec<String> {
        let mut missing: Vec<String> = Vec::new();
        for value in runs_on {
            if self.get(value).is_none() && !missing.contains(value) {
                missing.push(value.clone());
            }
        }
        missing
    }

    fn no_match(&self, missing: Vec<String>) -> NoMatch {
        NoMatch {
            missing,
            labels: self.names().map(str::to_owned).collect(),
        }
    }
}

impl FromIterator<Label> for Labels {
    /// Later labels override earlier ones of the same name.
    fn from_iter<I: IntoIterator<Item = Label>>(iter: I) -> Self {
        let mut set = Labels::new();
        set.extend(iter);
        set
    }
}

impl Extend<Label> for Labels {
    fn extend<I: IntoIterator<Item = Label>>(&mut self, iter: I) {
        for label in iter {
            self.insert(label);
        }
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// No label fits a job's `runs-on`. The message says how to make one fit.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub struct NoMatch {
    /// The `runs-on` values that name no label, in `runs-on` order. Empty only when the job
    /// has no `runs-on` and there are no labels at all.
    pub missing: Vec<String>,
    /// The names of the labels there are, in their order.
    pub labels: Vec<String>,
}

impl fmt::Display for NoMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.missing.is_empty() {
            return write!(
                f,
                "no runner label to run the job on (labels: none); add --label self-hosted:host"
            );
        }
        let quoted: Vec<String> = self
            .missing
            .iter()
            .map(|name| format!("{name:?}"))
            .collect();
        let label_flags: Vec<String> = self
            .missing
            .iter()
            .map(|name| format!("--label {name}:{SCHEME_HOST}"))
            .collect();
        let platform_flags: Vec<String> = self
            .missing
            .iter()
            .map(|name| format!("-P {name}={SELF_HOSTED_IMAGE}"))
            .collect();
        write!(
            f,
            "no runner label matches {} (labels: {}); add {} or {}",
            quoted.join(", "),
            self.label_list(),
            label_flags.join(" "),
            platform_flags.join(" ")
        )
    }
}

impl NoMatch {
    /// The label names, sorted so that the message reads the same whatever the flag order.
    fn label_list(&self) -> String {
        if self.labels.is_empty() {
            return "none".to_owned();
        }
        let mut names: Vec<&str> = self.labels.iter().map(String::as_str).collect();
        names.sort_unstable();
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|value| (*value).to_owned()).collect()
    }

    fn parse(spec: &str) -> Label {
        match Label::parse(spec) {
            Ok(label) => label,
            Err(error) => panic!("{spec:?} should parse: {error}"),
        }
    }

    fn set(specs: &[&str]) -> Labels {
        match Labels::parse(&strings(specs)) {
            Ok(labels) => labels,
            Err(error) => panic!("{specs:?} should parse: {error}"),
        }
    }

    // --- Label::parse -------------------------------------------------------------------

    #[test]
    fn bare_name_is_host() {
        assert_eq!(parse("linux"), Label::host("linux"));
    }

    #[test]
    fn host_scheme() {
        assert_eq!(parse("linux:host"), Label::host("linux"));
    }

    #[test]
    fn docker_scheme_strips_slashes_and_keeps_tag() {
        let label = parse("ubuntu-latest:docker://node:20");
        assert_eq!(label.name(), "ubuntu-latest");
        assert_eq!(label.image(), Some("node:20"));
        assert_eq!(
            label.platform(),
            &Platform::Docker {
                image: "node:20".to_owned()
            }
        );
    }

    #[test]
    fn docker_scheme_without_slashes() {
        assert_eq!(parse("ubuntu:docker:node:20").image(), Some("node:20"));
    }

    #[test]
    fn docker_image_with_registry_port_and_digest_keeps_every_colon() {
        let label = parse("x:docker://registry.local:5000/img:1.2@sha256:abc");
        assert_eq!(
            label.image(),
            Some("registry.local:5000/img:1.2@sha256:abc")
        );
    }

    #[test]
    fn docker_only_one_leading_double_slash_is_removed() {
        assert_eq!(parse("x:docker:////img").image(), Some("//img"));
    }

    #[test]
    fn empty_label_is_an_error() {
        assert_eq!(Label::parse(""), Err(LabelError::Empty));
    }

    #[test]
    fn empty_name_is_an_error() {
        for spec in [":host", ":docker://node:20", " :host", ":"] {
            assert!(
                matches!(Label::parse(spec), Err(LabelError::EmptyName { .. })),
                "{spec:?}"
            );
        }
    }

    #[test]
    fn unknown_scheme_is_an_error_naming_label_and_scheme() {
        let error = Label::parse("pool:lxc://debian").unwrap_err();
        assert_eq!(
            error,
            LabelError::UnknownScheme {
                spec: "pool:lxc://debian".to_owned(),
                scheme: "lxc".to_owned()
            }
        );
        let message = error.to_string();
        assert!(message.contains("\"pool:lxc://debian\""), "{message}");
        assert!(message.contains("\"lxc\""), "{message}");
    }

    #[test]
    fn scheme_is_case_sensitive_like_act_runner() {
        assert!(matches!(
            Label::parse("x:Docker://node"),
            Err(LabelError::UnknownScheme { .. })
        ));
    }

    #[test]
    fn empty_scheme_is_unknown() {
        assert!(matches!(
            Label::parse("linux:"),
            Err(LabelError::UnknownScheme { scheme, .. }) if scheme.is_empty()
        ));
    }

    #[test]
    fn docker_without_image_is_an_error() {
        for spec in ["x:docker", "x:docker:", "x:docker://", "x:docker:// "] {
            let error = Label::parse(spec).unwrap_err();
            assert!(
                matches!(error, LabelError::MissingImage { .. }),
                "{spec:?}: {error}"
            );
            assert!(error.to_string().contains("x:docker://IMAGE"), "{error}");
        }
    }

    #[test]
    fn host_with_argument_is_an_error() {
        for spec in ["linux:host:", "linux:host:extra", "linux:host://x:y"] {
            assert!(
                matches!(Label::parse(spec), Err(LabelError::HostArgument { .. })),
                "{spec:?}"
            );
        }
    }

    #[test]
    fn from_str_parses() {
        let label: Label = "a:docker://b".parse().unwrap();
        assert_eq!(label, Label::docker("a", "b"));
    }

    #[test]
    fn display_round_trips() {
        for spec in [
            "linux",
            "linux:host",
            "u:docker://node:20",
            "u:docker:node:20",
        ] {
            let label = parse(spec);
            assert_eq!(parse(&label.to_string()), label, "{spec:?}");
        }
        assert_eq!(parse("linux").to_string(), "linux:host");
        assert_eq!(parse("u:docker:node:20").to_string(), "u:docker://node:20");
    }

    #[test]
    fn kubernetes_scheme_strips_slashes_and_keeps_tag() {
        let label = parse("ubuntu-latest:kubernetes://hearth-test/debian:1");
        assert_eq!(label.name(), "ubuntu-latest");
        assert_eq!(
            label.platform(),
            &Platform::Kubernetes {
                image: "hearth-test/debian:1".to_owned()
            }
        );
        assert_eq!(label.image(), Some("hearth-test/debian:1"));
        assert_eq!(label.docker_image(), None);
        assert_eq!(
            parse("k:kubernetes:registry.local:5000/img:1.2@sha256:abc").image(),
            Some("registry.local:5000/img:1.2@sha256:abc")
        );
        assert_eq!(parse("k:kubernetes:////img").image(), Some("//img"));
    }

    #[test]
    fn kubernetes_written_back_in_the_runner_file_form() {
        for spec in ["k:kubernetes:busybox:1", "k:kubernetes://busybox:1"] {
            let label = parse(spec);
            assert_eq!(label.spec(), "k:kubernetes://busybox:1", "{spec:?}");
            assert_eq!(label.to_string(), label.spec());
            assert_eq!(parse(&label.spec()), label);
        }
    }

    #[test]
    fn kubernetes_without_image_is_an_error_naming_its_scheme() {
        for spec in [
            "k:kubernetes",
            "k:kubernetes:",
            "k:kubernetes://",
            "k:kubernetes:// ",
        ] {
            let error = Label::parse(spec).unwrap_err();
            assert!(
                matches!(
                    error,
                    LabelError::MissingImage {
                        scheme: "kubernetes",
                        ..
                    }
                ),
                "{spec:?}: {error}"
            );
            assert!(
                error.to_string().contains("k:kubernetes://IMAGE"),
                "{error}"
            );
        }
    }

    #[test]
    fn scheme_errors_list_every_scheme() {
        for error in [
            Label::parse("pool:lxc://debian").unwrap_err(),
            Label::parse(":host").unwrap_err(),
            Label::parse("").unwrap_err(),
        ] {
            let message = error.to_string();
            for form in [":host", "NAME:docker://IMAGE", "NAME:kubernetes://IMAGE"] {
                assert!(message.contains(form), "{message}");
            }
        }
        assert!(matches!(
            Label::parse("k:Kubernetes://img"),
            Err(LabelError::UnknownScheme { .. })
        ));
    }

    #[test]
    fn kubernetes_labels_need_no_docker() {
        let labels = set(&["linux", "k:kubernetes://busybox:1"]);
        assert!(labels.any_kubernetes());
        assert!(!labels.any_docker());
        assert!(!labels.requires_docker());
        let both = set(&["d:docker://node:20", "k:kubernetes://busybox:1"]);
        assert!(both.any_kubernetes() && both.requires_docker());
        assert!(!default_labels().any_kubernetes());
    }

    // --- Label::parse_platform ----------------------------------------------------------

    #[test]
    fn platform_flag_gives_docker() {
        assert_eq!(
            Label::parse_platform("ubuntu-latest=node:20"),
            Ok(Label::docker("ubuntu-latest", "node:20"))
        );
    }

    #[test]
    fn platform_flag_kubernetes_gives_a_pod() {
        assert_eq!(
            Label::parse_platform("ubuntu-latest=kubernetes://hearth-test/debian:1"),
            Ok(Label::kubernetes("ubuntu-latest", "hearth-test/debian:1"))
        );
        // Only the `//` form: `kubernetes:tag` is a Docker image of that name and tag.
        assert_eq!(
            Label::parse_platform("u=kubernetes:1.30"),
            Ok(Label::docker("u", "kubernetes:1.30"))
        );
        for spec in ["u=kubernetes://", "u=kubernetes:// "] {
            assert!(
                matches!(
                    Label::parse_platform(spec),
                    Err(LabelError::PlatformEmptyImage { .. })
                ),
                "{spec:?}"
            );
        }
        let labels =
            Labels::from_flags(&[], &strings(&["ubuntu-latest=kubernetes://busybox:1"])).unwrap();
        assert_eq!(
            labels.names().collect::<Vec<_>>(),
            ["self-hosted", "linux", "ubuntu-latest"]
        );
        assert_eq!(
            labels.get("ubuntu-latest").map(Label::spec).as_deref(),
            Some("ubuntu-latest:kubernetes://busybox:1")
        );
    }

    #[test]
    fn platform_flag_self_hosted_gives_host() {
        assert_eq!(
            Label::parse_platform("self-hosted=-self-hosted"),
            Ok(Label::host("self-hosted"))
        );
    }

    #[test]
    fn platform_flag_keeps_name_case() {
        assert_eq!(
            Label::parse_platform("Ubuntu-Latest=img").map(|l| l.name().to_owned()),
            Ok("Ubuntu-Latest".to_owned())
        );
    }

    #[test]
    fn platform_flag_splits_at_first_equals() {
        assert_eq!(
            Label::parse_platform("a=b=c").map(|l| l.image().map(str::to_owned)),
            Ok(Some("b=c".to_owned()))
        );
    }

    #[test]
    fn platform_flag_errors() {
        assert!(matches!(
            Label::parse_platform("ubuntu-latest"),
            Err(LabelError::PlatformSyntax { .. })
        ));
        assert!(matches!(
            Label::parse_platform(""),
            Err(LabelError::PlatformSyntax { .. })
        ));
        assert!(matches!(
            Label::parse_platform("=node:20"),
            Err(LabelError::PlatformEmptyName { .. })
        ));
        assert!(matches!(
            Label::parse_platform("ubuntu-latest="),
            Err(LabelError::PlatformEmptyImage { .. })
        ));
        let message = Label::parse_platform("oops").unwrap_err().to_string();
        assert!(message.contains("-P \"oops\""), "{message}");
    }

    // --- Labels -------------------------------------------------------------------------

    #[test]
    fn later_label_overrides_earlier_in_place() {
        let labels = set(&["a:host", "b:host", "a:docker://img"]);
        assert_eq!(labels.len(), 2);
        assert_eq!(labels.names().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(labels.get("a"), Some(&Label::docker("a", "img")));
    }

    #[test]
    fn parse_reports_the_bad_label() {
        let error = Labels::parse(&strings(&["ok", "bad:nope"])).unwrap_err();
        assert!(error.to_string().contains("\"bad:nope\""), "{error}");
    }

    #[test]
    fn defaults_are_host_only_and_never_ubuntu() {
        let labels = default_labels();
        assert_eq!(labels.names().collect::<Vec<_>>(), ["self-hosted", "linux"]);
        assert!(labels
            .iter()
            .all(|label| label.platform() == &Platform::Host));
        assert!(labels.get("ubuntu-latest").is_none());
        assert!(!labels.requires_docker());
    }

    #[test]
    fn from_flags_without_flags_gives_defaults() {
        assert_eq!(Labels::from_flags(&[], &[]), Ok(default_labels()));
    }

    #[test]
    fn from_flags_replaces_defaults_and_platform_overrides_label() {
        let labels = Labels::from_flags(
            &strings(&["ubuntu-latest:host", "gpu"]),
            &strings(&["ubuntu-latest=node:20"]),
        )
        .unwrap();
        assert_eq!(labels.names().collect::<Vec<_>>(), ["ubuntu-latest", "gpu"]);
        assert_eq!(
            labels.get("ubuntu-latest").unwrap().image(),
            Some("node:20")
        );
        assert!(labels.get("self-hosted").is_none());
        assert!(labels.requires_docker());
    }

    #[test]
    fn platform_flags_add_to_the_defaults() {
        let labels = Labels::from_flags(&[], &strings(&["ubuntu-latest=node:20"])).unwrap();
        assert_eq!(
            labels.names().collect::<Vec<_>>(),
            ["self-hosted", "linux", "ubuntu-latest"]
        );
        assert_eq!(labels.get("linux"), Some(&Label::host("linux")));
        assert_eq!(
            labels.get("ubuntu-latest"),
            Some(&Label::docker("ubuntu-latest", "node:20"))
        );
    }

    #[test]
    fn platform_flags_override_a_default_in_place() {
        let labels = Labels::from_flags(
            &[],
            &strings(&["linux=node:20", "ubuntu-latest=-self-hosted"]),
        )
        .unwrap();
        assert_eq!(
            labels.names().collect::<Vec<_>>(),
            ["self-hosted", "linux", "ubuntu-latest"]
        );
        assert_eq!(
            labels.get("linux"),
            Some(&Label::docker("linux", "node:20"))
        );
        assert_eq!(labels.get("self-hosted"), Some(&Label::host("self-hosted")));
        assert_eq!(
            labels.get("ubuntu-latest"),
            Some(&Label::host("ubuntu-latest"))
        );
    }

    #[test]
    fn later_platform_flag_of_a_name_wins() {
        let labels =
            Labels::from_flags(&[], &strings(&["u=node:18", "u=-self-hosted", "u=node:20"]))
                .unwrap();
        assert_eq!(labels.get("u").and_then(Label::image), Some("node:20"));
        assert_eq!(labels.len(), 3);
    }

    #[test]
    fn from_flags_reports_bad_platform() {
        assert!(matches!(
            Labels::from_flags(&[], &strings(&["nope"])),
            Err(LabelError::PlatformSyntax { .. })
        ));
    }

    // --- pick ---------------------------------------------------------------------------

    #[test]
    fn pick_single() {
        let labels = set(&["linux", "ubuntu-latest:docker://node:20"]);
        let picked = labels.pick(&strings(&["ubuntu-latest"])).unwrap();
        assert_eq!(picked.image(), Some("node:20"));
    }

    #[test]
    fn pick_uses_first_runs_on_value() {
        let labels = set(&["a:docker://img-a", "b:docker://img-b"]);
        assert_eq!(
            labels.pick(&strings(&["b", "a"])).unwrap().image(),
            Some("img-b")
        );
        assert_eq!(
            labels.pick(&strings(&["a", "b"])).unwrap().image(),
            Some("img-a")
        );
    }

    #[test]
    fn pick_requires_every_runs_on_value() {
        let labels = set(&["self-hosted", "linux"]);
        let error = labels.pick(&strings(&["self-hosted", "gpu"])).unwrap_err();
        assert_eq!(error.missing, strings(&["gpu"]));
    }

    #[test]
    fn pick_is_exact_and_case_sensitive() {
        let labels = set(&["Linux"]);
        assert!(labels.pick(&strings(&["linux"])).is_err());
        assert!(labels.pick(&strings(&["Linux "])).is_err());
        assert!(labels.pick(&strings(&["Linux"])).is_ok());
    }

    #[test]
    fn pick_empty_runs_on_matches_first_label() {
        let labels = set(&["b", "a"]);
        assert_eq!(labels.pick(&[]).unwrap().name(), "b");
    }

    #[test]
    fn pick_empty_runs_on_without_labels_fails() {
        let error = Labels::new().pick(&[]).unwrap_err();
        assert!(error.missing.is_empty());
        assert!(
            error.to_string().contains("--label self-hosted:host"),
            "{error}"
        );
    }

    #[test]
    fn pick_duplicate_runs_on_values() {
        let labels = set(&["linux"]);
        assert!(labels.pick(&strings(&["linux", "linux"])).is_ok());
        let error = labels.pick(&strings(&["x", "x", "linux"])).unwrap_err();
        assert_eq!(error.missing, strings(&["x"]));
    }

    #[test]
    fn pick_after_override_uses_latest_definition() {
        let labels = set(&["u:docker://old", "u:host"]);
        assert_eq!(
            labels.pick(&strings(&["u"])).unwrap().platform(),
            &Platform::Host
        );
    }

    #[test]
    fn no_match_message() {
        let error = default_labels()
            .pick(&strings(&["ubuntu-latest"]))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "no runner label matches \"ubuntu-latest\" (labels: linux, self-hosted); \
             add --label ubuntu-latest:host or -P ubuntu-latest=-self-hosted"
        );
    }

    #[test]
    fn no_match_message_names_every_missing_label() {
        let error = set(&["linux"])
            .pick(&strings(&["ubuntu-latest", "linux", "gpu"]))
            .unwrap_err();
        assert_eq!(error.missing, strings(&["ubuntu-latest", "gpu"]));
        assert_eq!(
            error.to_string(),
            "no runner label matches \"ubuntu-latest\", \"gpu\" (labels: linux); \
             add --label ubuntu-latest:host --label gpu:host \
             or -P ubuntu-latest=-self-hosted -P gpu=-self-hosted"
        );
    }

    #[test]
    fn no_match_message_without_labels() {
        let error = Labels::new().pick(&strings(&["x"])).unwrap_err();
        assert!(error.to_string().contains("(labels: none)"), "{error}");
    }
}
