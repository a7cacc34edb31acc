//! `hearth doctor`: checks what the runner needs and says what to fix (the checks are
//! `hearth_runner::doctor`'s; Docker is reached here, through `hearth-docker`, and the cluster
//! through `hearth-kubernetes`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use hearth_backend::{Backend, BoxFuture};
use hearth_docker::doctor::ImageAvailability;
use hearth_docker::DockerBackend;
use hearth_runner::config::{ContainerConfig, KubernetesConfig};
use hearth_runner::doctor::{
    self, DockerFacts, DockerProbe, DoctorOptions, ImageState, KubernetesFacts,
};

use crate::cmd::register::parse_labels;
use crate::cmd::{docker, kubernetes};

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Print one JSON document (an array of {name, status, detail, advice}) instead of text.
    #[arg(long)]
    json: bool,
    /// Labels, comma-separated, over those of the config and the .runner file, as the daemon
    /// takes them (also GITEA_RUNNER_LABELS).
    #[arg(long, env = "GITEA_RUNNER_LABELS")]
    labels: Option<String>,
}

/// Exit codes: 0 when no check failed (warnings allowed), 1 when one did.
pub fn run(args: DoctorArgs, config: Option<&Path>) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let labels = match args.labels.as_deref().filter(|l| !l.trim().is_empty()) {
        Some(specs) => Some(parse_labels(specs)?),
        None => None,
    };
    let options = DoctorOptions {
        config: config.map(Path::to_path_buf),
        labels,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        connect_docker: Box::new(connect),
        connect_kubernetes: Box::new(ask_cluster),
        min_free: None,
    };
    let report = runtime.block_on(doctor::run(options));
    if args.json {
        println!("{}", report.to_json());
    } else {
        // As the console's: only on a terminal, `NO_COLOR` honoured.
        let color = hearth_runner::exec::console::color_for_stdout();
        print!("{}", doctor::render_text(&report, color));
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The cluster of the `kubernetes:` keys, asked as the daemon would reach it.
fn ask_cluster(config: KubernetesConfig) -> BoxFuture<'static, Result<KubernetesFacts, String>> {
    Box::pin(async move {
        let looked = || kubernetes::describe(&config);
        let settings = kubernetes::settings(&config);
        let failed =
            |e: hearth_kubernetes::KubernetesError| format!("{e} (looked at {})", looked());
        let (client_config, _) = hearth_kubernetes::client_config(&settings)
            .await
            .map_err(failed)?;
        let address = client_config.cluster_url.to_string();
        let backend = hearth_kubernetes::KubernetesBackend::connect(settings)
            .await
            .map_err(failed)?;
        let checked = backend.check(address).await.map_err(failed)?;
        Ok(KubernetesFacts {
            version: checked.version,
            address: checked.address,
            namespace: checked.namespace,
            missing: checked.missing,
        })
    })
}

/// The Docker backend as the daemon sets it up, without waiting for a daemon that does not
/// answer.
fn connect(
    container: ContainerConfig,
    root: PathBuf,
) -> BoxFuture<'static, Result<Box<dyn DockerProbe>, String>> {
    Box::pin(async move {
        let externals = root.with_file_name("_externals");
        let settings = hearth_docker::connect::DockerSettings::from_env(&container.docker_host);
        let quiet = |m: &str| tracing::debug!("{m}");
        // No CA bundle: the throw-away job runs no step that would use it.
        let made = docker::backend(&container, None, root, externals, Duration::ZERO, quiet);
        let (backend, _) = made.await.map_err(|e| e.to_string())?;
        let probe: Box<dyn DockerProbe> = Box::new(Probe {
            backend,
            address: settings.describe(),
            local: settings.socket().is_some(),
        });
        Ok(probe)
    })
}

struct Probe {
    backend: DockerBackend,
    address: String,
    local: bool,
}

impl DockerProbe for Probe {
    fn address(&self) -> String {
        self.address.clone()
    }

    fn facts(&self) -> BoxFuture<'_, Result<DockerFacts, String>> {
        Box::pin(async move {
            let facts = self
                .backend
                .engine_facts()
                .await
                .map_err(|e| format!("Docker at {} does not answer: {e}", self.address))?;
            Ok(DockerFacts {
                version: facts.version,
                api_version: facts.api_version,
                data_root: facts.data_root,
            })
        })
    }

    fn image(&self, image: &str) -> BoxFuture<'_, ImageState> {
        let image = image.to_owned();
        Box::pin(async move {
            match self.backend.image_availability(&image).await {
                ImageAvailability::Local => ImageState::Local,
                ImageAvailability::Pullable {
                    from,
                    credentials_from,
                } => ImageState::Pullable {
                    from,
                    credentials_from,
                },
                ImageAvailability::Unavailable {
                    registry,
                    answer,
                    tried,
                } => ImageState::Unavailable {
                    registry,
                    answer,
                    tried,
                },
            }
        })
    }

    fn is_local(&self) -> bool {
        self.local
    }

    fn backend(&self) -> Arc<dyn Backend> {
        Arc::new(self.backend.clone())
    }
}
