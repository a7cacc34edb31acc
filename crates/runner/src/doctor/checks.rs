//! The checks in order, each skipped when what it needs failed.

use std::path::Path;
use std::time::Duration;

use hearth_backend::{ContainerSpec, ErrorKind, JobSpec, Reach, SetupLevel, SetupLog};
use tokio_util::sync::CancellationToken;

use super::{disk, forge, Check, DockerProbe, DoctorOptions, ImageState, Report};
use crate::cache::{CacheError, JobCache};
use crate::config::Config;
use crate::daemon::task::forge_reach;
use crate::daemon::{RUNNER_LABEL, TASK_LABEL};
use crate::labels::Labels;
use crate::runner_file::Registration;

/// The longest the throw-away job may take to start (a pull of its image included).
const JOB_START_TIMEOUT: Duration = Duration::from_secs(300);

pub async fn run(options: DoctorOptions) -> Report {
    let mut report = Report::default();
    let DoctorOptions {
        config: config_path,
        labels: given_labels,
        version,
        connect_docker,
        connect_kubernetes,
        min_free,
    } = options;

    // 1. The config and the registration.
    let config = match Config::load(config_path.as_deref()) {
        Ok((config, warnings)) => {
            let read = match &config_path {
                Some(path) => format!("{} read", path.display()),
                None => "no config file given (-c): the defaults".to_owned(),
            };
            report.push(if warnings.is_empty() {
                Check::pass("config", read)
            } else {
                let lines: Vec<String> = warnings.iter().map(ToString::to_string).collect();
                Check::warn(
                    "config",
                    format!("{read}, with warnings:\n{}", lines.join("\n")),
                    "change or remove the keys the warnings name",
                )
            });
            config
        }
        Err(e) => {
            report.push(Check::fail(
                "config",
                e.to_string(),
                "fix the config file where the error says (hearth generate-config prints a \
                 valid one with every key)",
            ));
            for name in [
                "runner-file",
                "forge",
                "token",
                "clock",
                "docker",
                "disk:work",
            ] {
                report.push(Check::skip(name, "needs a config that can be read"));
            }
            return report;
        }
    };
    let file = config.runner.file.clone();
    let registered = registration(&file);
    let (labels, registration) = match registered {
        Ok(registration) => {
            // As the daemon picks them: the command line, the config, the registration.
            let labels = match (&given_labels, config.runner.labels.is_empty()) {
                (Some(given), _) => Ok(given.clone()),
                (None, false) => Ok(config.runner.labels.clone()),
                (None, true) => registration.parsed_labels().map_err(|e| e.to_string()),
            };
            match labels {
                Ok(labels) => {
                    report.push(Check::pass(
                        "runner-file",
                        format!(
                            "{}: runner {} ({}) at {}, labels {}",
                            file.display(),
                            registration.name,
                            registration.uuid,
                            registration.address,
                            labels
                                .iter()
                                .map(|l| l.spec())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                    (Some(labels), Some(registration))
                }
                Err(e) => {
                    report.push(Check::fail(
                        "runner-file",
                        format!("{}: a label is not valid: {e}", file.display()),
                        "set runner.labels in the config (NAME:host or NAME:docker://IMAGE)",
                    ));
                    (None, Some(registration))
                }
            }
        }
        Err(check) => {
            report.push(check);
            // The config's labels still say whether Docker is needed.
            let labels = given_labels.or_else(|| {
                (!config.runner.labels.is_empty()).then(|| config.runner.labels.clone())
            });
            (labels, None)
        }
    };

    // 2. The forge, the token, the clock.
    let mut forge_answers = false;
    match &registration {
        Some(registration) => {
            let (check, reached) =
                forge::reach(registration, &file, &config.runner, &version).await;
            report.push(check);
            forge_answers = reached.is_some();
            match (&reached, &labels) {
                (Some(forge), Some(labels)) => {
                    let names: Vec<String> = labels.names().map(str::to_owned).collect();
                    report.push(forge::token(forge, registration, &file, &names, &version).await);
                }
                (Some(_), None) => report.push(Check::skip("token", "needs valid labels")),
                (None, _) => report.push(Check::skip("token", "needs the forge")),
            }
            report.push(match reached.as_ref().map(|r| r.clocks) {
                Some(Some(clocks)) => forge::clock(clocks),
                Some(None) => Check::skip("clock", "the forge's answer has no Date header"),
                None => Check::skip("clock", "needs the forge"),
            });
        }
        None => {
            for name in ["forge", "token", "clock"] {
                report.push(Check::skip(name, "needs the .runner file"));
            }
        }
    }

    // 3. Docker, the images, the job network.
    let needs_docker = labels.as_ref().is_some_and(Labels::any_docker);
    let mut docker: Option<Box<dyn DockerProbe>> = None;
    let mut data_root = None;
    if !needs_docker && !config.container.require_docker {
        let why = match &labels {
            Some(_) => "no label runs jobs in Docker",
            None => "needs the labels (.runner or runner.labels)",
        };
        report.push(Check::skip("docker", why));
    } else {
        let root = config.host.workdir_parent.join("docker");
        match connect_docker(config.container.clone(), root).await {
            Ok(probe) => match probe.facts().await {
                Ok(facts) => {
                    report.push(Check::pass(
                        "docker",
                        format!(
                            "Docker {} (API {}) at {}",
                            facts.version,
                            facts.api_version,
                            probe.address()
                        ),
                    ));
                    data_root = facts.data_root;
                    docker = Some(probe);
                }
                Err(e) => report.push(docker_failed(&e)),
            },
            Err(e) => report.push(docker_failed(&e)),
        }
    }
    let mut usable_images = Vec::new();
    if let Some(labels) = labels.as_ref().filter(|_| needs_docker) {
        for label in labels.iter() {
            let Some(image) = label.docker_image() else {
                continue;
            };
            let name = format!("image:{}", label.name());
            let Some(probe) = &docker else {
                report.push(Check::skip(name, "needs Docker"));
                continue;
            };
            let state = probe.image(image).await;
            match &state {
                ImageState::Local => {
                    report.push(Check::pass(name, format!("{image} is here")));
                }
                ImageState::Pullable {
                    from,
                    credentials_from,
                } => {
                    let with = credentials_from
                        .as_deref()
                        .map(|from| format!(" with credentials from {from}"))
                        .unwrap_or_else(|| " without credentials".to_owned());
                    report.push(Check::pass(
                        name,
                        format!("{image} is not here; {from} has it{with}"),
                    ));
                }
                ImageState::Unavailable {
                    registry,
                    answer,
                    tried,
                } => {
                    let tried = if tried.is_empty() {
                        "no credentials found for it".to_owned()
                    } else {
                        format!("credentials tried: {}", tried.join(", "))
                    };
                    report.push(Check::fail(
                        name,
                        format!(
                            "{image} {} cannot be pulled from {registry}: {answer}; {tried}",
                            if config.container.force_pull {
                                "(pulled at every job: container.force_pull)"
                            } else {
                                "is not here and"
                            }
                        ),
                        format!(
                            "pull or load the image on the Docker host (docker pull {image}), \
                             add credentials for {registry} (container.registries or \
                             container.docker_config), or change the label's image"
                        ),
                    ));
                }
            }
            if !matches!(state, ImageState::Unavailable { .. }) {
                usable_images.push((state == ImageState::Local, image.to_owned()));
            }
        }
    }
    if needs_docker {
        report.push(match (&docker, &registration) {
            (None, _) => Check::skip("job-network", "needs Docker"),
            (Some(_), None) => Check::skip("job-network", "needs the .runner file"),
            // What a job cannot reach from here, it cannot reach from its network either.
            (Some(_), Some(_)) if !forge_answers => Check::skip("job-network", "needs the forge"),
            (Some(probe), Some(registration)) => {
                // An image that is here first: no pull for a check.
                usable_images.sort_by_key(|(local, _)| !local);
                match usable_images.first() {
                    None => Check::skip("job-network", "needs a label image that is usable"),
                    Some((_, image)) => {
                        job_network(probe.as_ref(), &config, registration, image).await
                    }
                }
            }
        });
    }

    // 4. The cluster, for Kubernetes labels.
    if labels.as_ref().is_some_and(Labels::any_kubernetes) {
        report.push(match connect_kubernetes(config.kubernetes.clone()).await {
            Ok(facts) => kubernetes(&facts),
            Err(e) => Check::fail(
                "kubernetes",
                e,
                "set kubernetes.kubeconfig (or KUBECONFIG) to a kubeconfig that reaches the \
                 cluster, or run the runner in the cluster with its ServiceAccount",
            ),
        });
    }

    // 5. Disks: below what makes the daemon stop fetching.
    let min_free = min_free.unwrap_or(match config.health_check.min_free_disk_space_mb {
        0 => disk::DEFAULT_MIN_FREE,
        mb => mb.saturating_mul(1 << 20),
    });
    report.push(disk::check(
        "disk:work",
        &config.host.workdir_parent,
        "the work folder (host.workdir_parent)",
        min_free,
        "free space on that filesystem, or set host.workdir_parent to a folder on a larger disk",
    ));
    if needs_docker {
        report.push(match (&docker, data_root) {
            (None, _) => Check::skip("disk:docker", "needs Docker"),
            (Some(_), None) => Check::skip("disk:docker", "Docker did not say its data root"),
            (Some(probe), Some(root)) if !probe.is_local() || !Path::new(&root).exists() => {
                Check::skip(
                    "disk:docker",
                    format!(
                        "Docker's data root {root} is on the daemon's machine ({}), not here",
                        probe.address()
                    ),
                )
            }
            (Some(_), Some(root)) => disk::check(
                "disk:docker",
                Path::new(&root),
                "Docker's data root",
                min_free,
                "remove unused images and volumes (docker system prune), or move Docker's \
                 data-root to a larger disk",
            ),
        });
    }
    report
}

/// The registration file, or the failed check saying what to do.
fn registration(file: &Path) -> Result<Registration, Check> {
    let advice = |what: &str| {
        format!(
            "{what}: hearth register --instance URL --token TOKEN (or set runner.file to where \
             the file is)"
        )
    };
    let loaded = Registration::load(file)
        .map_err(|e| Check::fail("runner-file", e.to_string(), advice("register the runner")))?;
    for (key, empty) in [
        ("uuid", loaded.uuid.trim().is_empty()),
        ("token", loaded.token.expose().trim().is_empty()),
        ("address", loaded.address.trim().is_empty()),
    ] {
        if empty {
            return Err(Check::fail(
                "runner-file",
                format!("{}: no {key}", file.display()),
                advice("delete it and register again"),
            ));
        }
    }
    Ok(loaded)
}

fn kubernetes(facts: &super::KubernetesFacts) -> Check {
    let reached = format!(
        "Kubernetes {} at {}, namespace {}",
        facts.version, facts.address, facts.namespace
    );
    if facts.missing.is_empty() {
        return Check::pass(
            "kubernetes",
            format!("{reached}: the runner has every right it needs"),
        );
    }
    Check::fail(
        "kubernetes",
        format!(
            "{reached}: the runner may not {} there",
            facts.missing.join(", ")
        ),
        format!(
            "bind the runner's user or ServiceAccount to a Role with those rights in namespace \
             {} (deploy/kubernetes-pods/role.yaml has them all)",
            facts.namespace
        ),
    )
}

fn docker_failed(error: &str) -> Check {
    Check::fail(
        "docker",
        error.to_owned(),
        "start Docker, or set container.docker_host (or DOCKER_HOST) to the daemon's address \
         (unix:///var/run/docker.sock, tcp://HOST:2376); the runner's user needs access to it",
    )
}

/// The set-up log of the throw-away job: its warnings (a cache it cannot reach).
#[derive(Default)]
struct Warnings(Vec<String>);

impl SetupLog for Warnings {
    fn line(&mut self, level: SetupLevel, text: &str) {
        if level == SetupLevel::Warning {
            self.0.push(text.to_owned());
        }
    }
}

/// The check `job-network`: a throw-away job in `image`, started through the Docker backend as
/// the daemon starts one (its network, the forge and the cache made reachable and checked
/// from there), then finished, which removes everything it made.
async fn job_network(
    probe: &dyn DockerProbe,
    config: &Config,
    registration: &Registration,
    image: &str,
) -> Check {
    const NAME: &str = "job-network";
    let address = registration.address.trim_end_matches('/').to_owned();
    let mut reach = vec![forge_reach(&address)];
    let mut noted = Vec::new();
    // The cache as the daemon starts it; kept running while the job checks it.
    let cache = match JobCache::start(&config.cache).await {
        Ok(Some(cache)) => {
            reach.push(cache.reach());
            Some(cache)
        }
        Ok(None) => {
            noted.push("the cache is off (cache.enabled)".to_owned());
            None
        }
        // A fixed `cache.port` a running daemon's cache holds: that cache is the one to check.
        Err(CacheError::Listen { address, source })
            if source.kind() == std::io::ErrorKind::AddrInUse =>
        {
            noted.push(format!(
                "the cache's address {address} is taken (a running daemon's cache?): checked \
                 there"
            ));
            let address = address.replace("0.0.0.0", "127.0.0.1");
            reach.push(Reach::optional(
                format!("http://{address}"),
                "the cache",
                "set cache.host to an address of this machine that the job network reaches",
            ));
            None
        }
        Err(e) => {
            noted.push(format!("the cache does not start: {e}"));
            None
        }
    };
    let wanted: Vec<Reach> = reach.clone();
    let spec = JobSpec {
        name: "doctor".into(),
        container: Some(ContainerSpec {
            image: image.to_owned(),
            ..Default::default()
        }),
        owner: vec![
            // The runner's own: a daemon's reap removes what a doctor killed midway left.
            (RUNNER_LABEL.to_owned(), registration.uuid.clone()),
            (
                TASK_LABEL.to_owned(),
                format!("doctor-{}", std::process::id()),
            ),
        ],
        reach,
        ..Default::default()
    };
    let backend = probe.backend();
    let mut warnings = Warnings::default();
    let cancel = CancellationToken::new();
    let started = tokio::time::timeout(
        JOB_START_TIMEOUT,
        backend.start(spec, &mut warnings, &cancel),
    )
    .await;
    let check = match started {
        Err(_) => {
            // Dropping the start's future leaves what it made to the backend's background
            // cleanup.
            cancel.cancel();
            Check::fail(
                NAME,
                format!("a job container in {image} did not start within {JOB_START_TIMEOUT:?}"),
                "look at the Docker daemon's log; `hearth daemon` would fail such jobs the same \
                 way",
            )
        }
        Ok(Err(e)) if e.kind() == ErrorKind::Unreachable => Check::fail(
            NAME,
            e.to_string(),
            "set container.network to a network the forge is on, or register the runner with \
             an address of the forge that containers can reach (not 127.0.0.1 or a name only \
             this machine's /etc/hosts knows)",
        ),
        Ok(Err(e)) => Check::fail(
            NAME,
            format!("a job container in {image} does not start: {e}"),
            "`hearth daemon` would fail such jobs the same way: fix what the error names",
        ),
        Ok(Ok(job)) => {
            // What was reached, and at which address the job is given it (a loopback forge
            // through the job network's gateway).
            let reached: Vec<String> = wanted
                .iter()
                .filter(|r| !r.optional || warnings.0.is_empty())
                .map(|r| {
                    let seen = job.address(&r.url);
                    if seen == r.url {
                        format!("{} at {}", r.what, r.url)
                    } else {
                        format!("{} at {} (as {seen})", r.what, r.url)
                    }
                })
                .collect();
            let finished = job.finish().await;
            let mut detail = format!(
                "a job container in {image} on a job network reaches {}",
                reached.join(" and ")
            );
            if let Err(e) = finished {
                detail.push_str(&format!("; removing the job's containers failed: {e}"));
            }
            for note in &noted {
                detail.push_str(&format!("; {note}"));
            }
            if warnings.0.is_empty() {
                Check::pass(NAME, detail)
            } else {
                // The cache is what a job most often misses; any other warning (a proxy
                // jobs cannot reach) names its own fix.
                let advice = if warnings.0.iter().any(|w| w.contains("the cache")) {
                    "set cache.host to an address of this machine that containers can reach, \
                     or cache.external_server to a cache they can reach"
                } else {
                    "change what the warning names"
                };
                Check::warn(
                    NAME,
                    format!("{detail}, but: {}", warnings.0.join("; ")),
                    advice,
                )
            }
        }
    };
    drop(cache);
    check
}
