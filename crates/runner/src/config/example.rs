//! The commented config that `hearth generate-config` prints. Every value in it is the
//! default, so the file can be used as it is; a test holds it to that.

/// The example configuration.
pub const EXAMPLE_CONFIG: &str = r#"# Configuration of the Hearth runner.
#
# Write this file with `hearth generate-config > config.yaml` and use it with
# `hearth --config config.yaml ...`. Every value below is the default, so the
# file works unchanged: keep only what you change. The keys are those of
# act_runner, so a config written for act_runner or Gitea's runner works too;
# settings marked "Hearth:" are Hearth's own.
#
# Durations are written as in Go: 500ms, 5s, 1m30s, 3h.
# Relative paths are taken from the directory Hearth is started in.

log:
  # How much to log: trace, debug, info, warn, error or fatal.
  level: info
  # Hearth: how the runner's own log is written: text (coloured only on a
  # terminal, NO_COLOR honoured) or json (one object per line, for collectors).
  format: text

runner:
  # The registration file that `register` writes: the runner's id, name,
  # token and the forge's address.
  file: .runner
  # How many jobs may run at the same time.
  capacity: 1
  # Environment variables for every job, for example:
  #   envs:
  #     HTTP_PROXY: http://proxy.internal:3128
  envs: {}
  # A dotenv file (NAME=value lines) whose variables are added to envs and
  # win over them, for example .env. Skipped when empty or missing.
  env_file: ""
  # The longest a job may run. The forge has a limit of its own (3h on
  # Gitea by default) and the shorter one ends the job.
  timeout: 3h
  # When the runner is stopped, how long running jobs may still go on before
  # they are cancelled. 0s cancels them at once.
  shutdown_timeout: 0s
  # Accept any TLS certificate from the forge. For tests only.
  insecure: false
  # How long one request for a job may take.
  fetch_timeout: 5s
  # How often to ask the forge for a job.
  fetch_interval: 2s
  # Hearth: while no job comes, the pause between requests grows from
  # fetch_interval up to this.
  fetch_interval_max: 3s
  # Hearth: how often a running job's steps and log are sent to the forge.
  report_interval: 1s
  # Hearth: how long any other request to the forge may take.
  request_timeout: 60s
  # Hearth: log lines the forge has not taken yet are kept in memory up to
  # this size (in bytes, or with a unit: KiB, MiB, GiB, kB, MB, GB) ...
  log_memory_limit: 4MiB
  # Hearth: ... and past it written to this directory until the forge takes
  # them. Empty means .hearth-spool beside the registration file.
  log_spill_dir: ""
  # Hearth: a PEM file of CA certificates to trust for the forge's TLS, on
  # top of the system's, for a forge behind a private CA. Empty for none.
  ca_file: ""
  # A mirror to fetch actions from instead of https://github.com, used when
  # the forge points `uses:` at GitHub (DEFAULT_ACTIONS_URL = github) and
  # GitHub is out of reach. Empty means GitHub itself.
  github_mirror: ""
  # The labels jobs can ask for in runs-on, and where their jobs run:
  #   NAME or NAME:host         on this machine
  #   NAME:docker://IMAGE       in a container of IMAGE
  #   NAME:kubernetes://IMAGE   Hearth: in a Pod of the cluster below, its
  #                             job container made from IMAGE
  # They are sent to the forge at each start and replace the labels given
  # at registration; empty keeps those. For example:
  #   labels:
  #     - self-hosted:host
  #     - ubuntu-latest:docker://node:20-bookworm
  labels: []

cache:
  # Run a cache server for actions/cache and tell jobs its address.
  enabled: true
  # Where the cache keeps its data. Empty means $HOME/.cache/actcache.
  dir: ""
  # The address the cache server listens on and jobs reach it at. Empty
  # means this machine's loopback: jobs in containers reach it through
  # their network's gateway, and nothing else can.
  host: ""
  # The cache server's port; 0 takes any free port.
  port: 0
  # The URL of a cache server to use instead of running one (usually
  # ending with a /). Empty runs Hearth's own.
  external_server: ""
  # The key each job's cache token is signed with: the one given to
  # `hearth cache-server --secret-file` when external_server names it.
  # Empty means a random key of this runner's own.
  secret: ""
  # The most the runner's own cache keeps (bytes, or with a unit: 10GiB);
  # past it the least recently used entries go.
  size_limit: 10GiB
  # Keep the entries in a bucket of an S3-compatible store instead of dir
  # (which then holds only uploads in progress), shared by every runner and
  # `hearth cache-server` that names it; size_limit is then the bucket's.
  # The keys default to AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Left
  # empty, the entries stay in dir. For example:
  s3:
  #   endpoint: http://minio.internal:9000
  #   bucket: actions-cache
  #   region: us-east-1
  #   prefix: hearth
  #   path_style: true
  #   access_key_id: ""
  #   secret_access_key: ""

container:
  # The Docker network for job containers: host, bridge or the name of a
  # network. Empty creates a network for each job. (Older files call this
  # network_mode; that name still works.)
  network: ""
  # Start job containers privileged, as Docker-in-Docker needs.
  privileged: false
  # Further `docker create` options for job containers, for example
  # --add-host=forge.internal:host-gateway
  options: ""
  # The directory in job containers that holds the workspaces, as
  # /<workdir_parent>/<owner>/<repo>; a leading / may be left out.
  workdir_parent: workspace
  # Volumes and bind mounts jobs may mount, as glob patterns; empty allows
  # none. For example `- data` and `- /srv/shared/*.json`, or `- '**'` for
  # any.
  valid_volumes: []
  # The Docker daemon to use. Empty (or -) finds one; automount finds one
  # and mounts its socket into job containers (only then: a job with the
  # socket controls the machine); anything else is used as it is.
  docker_host: ""
  # Whether each job's folder (workspace, temp folder, actions) is a folder
  # of this machine bind-mounted into the job container (true), or a volume
  # in the Docker daemon that the runner fills and reads through the Docker
  # API (false), for a daemon that does not share this machine's folders.
  # Left empty: bound for a daemon on a local socket, copied for one reached
  # over the network (tcp://, http://).
  bind_workdir:
  # Pull images before use even when they are already there.
  force_pull: false
  # Build the images of Docker actions again even when they exist.
  force_rebuild: false
  # Refuse to start without a reachable Docker daemon, even when no label
  # needs one.
  require_docker: false
  # How long to wait at start for the Docker daemon to answer.
  docker_timeout: 0s
  # Hearth's: registry credentials for job, service and action images, by
  # registry host (`*` matches any run of characters), the password from
  # `password`, `password_env` (a variable) or `password_file` (read at each
  # pull, so a rotated secret applies to the next job). For example
  # `- {host: registry.example.com, username: ci, password_file: /run/secrets/reg}`.
  # With `expose_to_jobs: true` (an exact host only), jobs that reach Docker
  # (host jobs, container jobs with automount) get these credentials in a
  # DOCKER_CONFIG of their own, masked and removed with the job: `docker push`
  # needs no login step.
  registries: []
  # Hearth's: Docker config files to take registry credentials from, read at
  # each pull: a config.json, or a Kubernetes dockerconfigjson Secret mounted as
  # a file, e.g. /var/run/secrets/registry/.dockerconfigjson.
  docker_config: []
  # Hearth's: a mirror by registry host, pulled from first (for any registry,
  # not only Docker Hub); the image keeps its own name, and when the mirror
  # cannot serve it, it comes from its registry. For example
  # `docker.io: mirror.example.com:5000/hub`.
  registry_mirrors: {}
  # Hearth's: the CPU limit of each job and service container, as Docker's
  # --cpus takes it (e.g. 1.5), unless its `options:` sets --cpus. 0 for no
  # limit.
  cpus: 0
  # Hearth's: the memory limit of each job and service container, as
  # Docker's --memory takes it (e.g. 512m or 2g), unless its `options:` sets
  # --memory. 0 for no limit.
  memory: 0

host:
  # Where jobs that run on this machine keep their workspaces and actions.
  # Empty means $HOME/.cache/act.
  workdir_parent: ""

metrics:
  # Serve Prometheus metrics on /metrics, and /healthz (the runner's loops
  # make progress) and /readyz (taking jobs: not before it has declared
  # itself to the forge, nor while it shuts down or the disk guard pauses).
  enabled: false
  # The address to serve them on. 0.0.0.0:9101 for every interface (for
  # probes from outside a container).
  addr: 127.0.0.1:9101

health_check:
  # The disk guard: when the work folder's disk (host.workdir_parent) or
  # Docker's data root on this machine has less free space than this (MB),
  # the runner takes no job, removes what is its own to remove (leftover job
  # folders, its stopped containers and volumes, unused images it built for
  # Docker actions) and says so in the log and the metrics. 0 turns it off.
  min_free_disk_space_mb: 1024
  # Hearth: jobs are taken again once this much (MB) is free.
  resume_free_disk_space_mb: 1536

# Hearth: the Kubernetes cluster that NAME:kubernetes://IMAGE labels run their
# jobs in, each job a Pod of its own (its services containers of the same Pod).
# Unused without such a label (or runner_secret).
kubernetes:
  # The namespace job Pods run in. Empty means the runner's own namespace when
  # it runs in the cluster, else the kubeconfig context's, else default.
  namespace: ""
  # A kubeconfig file. Empty means KUBECONFIG, then ~/.kube/config, then the
  # ServiceAccount of the Pod the runner runs in.
  kubeconfig: ""
  # The kubeconfig context to use. Empty means its current one.
  context: ""
  # The ServiceAccount job Pods run as: by default one without any rights, so
  # that jobs cannot use the cluster's API.
  service_account: hearth-job
  # Secrets (of type kubernetes.io/dockerconfigjson, in the namespace) every
  # job Pod pulls its images with.
  image_pull_secrets: []
  # imagePullPolicy of every container: IfNotPresent, Always or Never.
  pull_policy: IfNotPresent
  # Resource requests and limits of each job container, as the API writes
  # them, for example requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 2Gi}.
  resources:
    requests: {}
    limits: {}
  # nodeSelector of every job Pod, for example kubernetes.io/arch: amd64.
  node_selector: {}
  # tolerations of every job Pod, as the Pod spec writes them, for example
  # `- {key: ci, operator: Equal, value: "true", effect: NoSchedule}`.
  tolerations: []
  # A Pod, as the API writes it, that job Pods start from: its labels,
  # annotations and spec fields (affinity, priorityClassName, runtimeClassName,
  # ...) are kept, and a container of it named `job` is the base of the job
  # container; Hearth sets its own fields over it. Empty for none. For example:
  pod_template:
  #   metadata:
  #     labels: {team: ci}
  #   spec:
  #     priorityClassName: ci-low
  # The name of a Secret (in the runner's namespace) that keeps the
  # registration instead of runner.file: `register` writes it there, and
  # `daemon` reads it there (a runner Pod that is replaced keeps its identity).
  # Empty keeps it in runner.file.
  runner_secret: ""
"#;

#[cfg(test)]
mod tests {
    use super::super::kubernetes::{KUBERNETES_KEYS, RESOURCES_KEYS};
    use super::super::raw::{
        CACHE_KEYS, CONTAINER_KEYS, HEALTH_CHECK_KEYS, HOST_KEYS, LOG_KEYS, METRICS_KEYS,
        RUNNER_KEYS, SECTIONS,
    };
    use super::super::Config;
    use super::EXAMPLE_CONFIG;
    use hearth_workflow::yaml;

    fn env(name: &str) -> Option<String> {
        (name == "HOME").then(|| "/home/runner".to_owned())
    }

    #[test]
    fn example_holds_the_defaults_and_loads_cleanly() {
        let (defaults, default_warnings) = Config::load_with_env(None, &env).unwrap();
        assert!(default_warnings.is_empty(), "{default_warnings:?}");
        let (loaded, warnings) = Config::from_yaml(EXAMPLE_CONFIG, "config.yaml", &env).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(loaded, defaults);
    }

    /// Every key Hearth reads is shown in the example, except the deprecated name.
    #[test]
    fn example_shows_every_key() {
        let root = yaml::load(EXAMPLE_CONFIG, "config.yaml").unwrap();
        let sections = [
            ("log", LOG_KEYS),
            ("runner", RUNNER_KEYS),
            ("cache", CACHE_KEYS),
            ("container", CONTAINER_KEYS),
            ("host", HOST_KEYS),
            ("metrics", METRICS_KEYS),
            ("health_check", HEALTH_CHECK_KEYS),
            ("kubernetes", KUBERNETES_KEYS),
        ];
        assert_eq!(sections.map(|(name, _)| name), SECTIONS);
        for (section, keys) in sections {
            let node = root.get(section).unwrap();
            for key in keys.iter().filter(|key| **key != "network_mode") {
                assert!(node.get(key).is_some(), "{section}.{key} is missing");
            }
        }
        let resources = root.get("kubernetes").and_then(|k| k.get("resources"));
        for key in RESOURCES_KEYS {
            assert!(
                resources.and_then(|r| r.get(key)).is_some(),
                "kubernetes.resources.{key} is missing"
            );
        }
    }
}
