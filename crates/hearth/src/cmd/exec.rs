//! `hearth exec`: run workflows locally, as `act` does, with GitHub's semantics.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

/// act's flags, plus `--label` in the forges' syntax and `--json`.
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// The event that triggers the run.
    #[arg(default_value = "push")]
    pub event: String,

    /// Workflow files or folders (a folder's *.yml and *.yaml, not recursing) [default: the
    /// repository's .forgejo/workflows, .gitea/workflows or .github/workflows].
    #[arg(short = 'W', long = "workflows", value_name = "PATH")]
    pub workflows: Vec<PathBuf>,

    /// The repository to run in; its files are copied into each job's workspace (see --bind).
    #[arg(
        short = 'C',
        long = "directory",
        value_name = "DIR",
        default_value = "."
    )]
    pub directory: PathBuf,

    /// The event's webhook payload (`github.event`), a JSON file.
    #[arg(short = 'e', long = "eventpath", value_name = "FILE")]
    pub event_path: Option<PathBuf>,

    /// Run only this job (and the jobs it needs); repeatable.
    #[arg(short = 'j', long = "job", value_name = "ID")]
    pub jobs_only: Vec<String>,

    /// List the jobs the event would run, and stop.
    #[arg(short = 'l', long)]
    pub list: bool,

    /// A secret, NAME=VALUE, or NAME to take the value from the environment; repeatable.
    #[arg(short = 's', long = "secret", value_name = "NAME[=VALUE]")]
    pub secrets: Vec<String>,

    /// Secrets in a dotenv file [default: .secrets when it exists].
    #[arg(long = "secret-file", value_name = "FILE")]
    pub secret_files: Vec<String>,

    /// A configuration variable (`vars`), NAME=VALUE; repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,

    /// Variables in a dotenv file [default: .vars when it exists].
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<String>,

    /// An environment variable for every job, under the workflow's `env:`; repeatable.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub envs: Vec<String>,

    /// Environment variables in a dotenv file [default: .env when it exists].
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<String>,

    /// A workflow_dispatch input (`inputs`), NAME=VALUE; repeatable.
    #[arg(long = "input", value_name = "NAME=VALUE")]
    pub inputs: Vec<String>,

    /// Inputs in a dotenv file [default: .input when it exists].
    #[arg(long = "input-file", value_name = "FILE")]
    pub input_files: Vec<String>,

    /// Run only matrix combinations with this value, KEY:VALUE; repeatable (values of one key
    /// are alternatives).
    #[arg(long = "matrix", value_name = "KEY:VALUE")]
    pub matrix: Vec<String>,

    /// act's platform mapping: LABEL=IMAGE, LABEL=kubernetes://IMAGE to run in a Kubernetes
    /// Pod (the config's kubernetes: section, else KUBECONFIG's cluster), or
    /// LABEL=-self-hosted to run on this machine; repeatable. Each adds a label or overrides the one of its name; the others stay.
    #[arg(short = 'P', long = "platform", value_name = "LABEL=IMAGE")]
    pub platforms: Vec<String>,

    /// A runner label in the forges' syntax, NAME:host, NAME:docker://IMAGE or
    /// NAME:kubernetes://IMAGE; repeatable.
    /// The labels given replace the defaults (self-hosted:host and linux:host); -P applies
    /// over them.
    #[arg(long = "label", value_name = "NAME:SCHEME[:ARGS]")]
    pub labels: Vec<String>,

    /// Use the repository itself as each job's workspace instead of a copy (act's --bind):
    /// what jobs write stays in it (in a container, owned by the container's user), and jobs
    /// running at once share it. It is never removed.
    #[arg(long)]
    pub bind: bool,

    /// Pull job and service images even when they are there (act's --pull, which is on by
    /// default in act; here an image already there is used unless --pull is given, as with
    /// act_runner's container.force_pull).
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub pull: bool,

    /// `docker create` options for every job container (act's --container-options), e.g.
    /// "-e NAME=VALUE --cpus 2 --memory 4g": the flags a workflow's `options:` may use, which
    /// come after these. Others are refused before anything runs.
    #[arg(
        long,
        value_name = "OPTIONS",
        default_value = "",
        hide_default_value = true,
        allow_hyphen_values = true
    )]
    pub container_options: String,

    /// `github.actor` [default: the payload's sender, else hearth].
    #[arg(short = 'a', long = "actor", value_name = "NAME")]
    pub actor: Option<String>,

    /// Show the jobs and steps that would run, without running anything.
    #[arg(short = 'n', long = "dryrun")]
    pub dry_run: bool,

    /// Print one JSON event per line instead of the log for people.
    #[arg(long)]
    pub json: bool,

    /// Run at most N jobs at once [default: the number of cores] (act's --concurrent-jobs).
    #[arg(long = "jobs", alias = "concurrent-jobs", value_name = "N")]
    pub parallel: Option<usize>,

    /// Run workflows whatever their branch, tag, path and type filters say (act's behaviour).
    #[arg(long)]
    pub ignore_filters: bool,

    /// Where `uses: owner/repo@ref` actions are fetched from (`{URL}/{owner}/{repo}`, with
    /// git); they are kept under $XDG_CACHE_HOME/hearth/actions.
    #[arg(long, value_name = "URL", default_value = "https://github.com")]
    pub default_actions_url: String,

    /// Run the action `owner/repo@ref` (as `uses:` names it, without its path) from a local
    /// folder instead of fetching it (act's --local-repository); repeatable.
    #[arg(
        long = "action-override",
        alias = "local-repository",
        value_name = "ACTION=DIR"
    )]
    pub action_overrides: Vec<String>,

    /// Fetch no action: take them from the cache alone (fill it with `hearth actions pull`);
    /// an action it lacks fails its step, named (act's --action-offline-mode).
    #[arg(long, alias = "action-offline-mode")]
    pub offline: bool,

    /// Where the cache jobs reach keeps its entries (act's --cache-server-path) [default:
    /// the config's cache.dir, $HOME/.cache/actcache]
    #[arg(long, value_name = "DIR")]
    pub cache_server_path: Option<PathBuf>,

    /// Where the cache server listens (act's --cache-server-addr) [default: the config's
    /// cache.host, or the loopback; container jobs reach a loopback server through their
    /// network's gateway]
    #[arg(long, value_name = "ADDRESS")]
    pub cache_server_addr: Option<String>,

    /// The cache server's port, 0 for any free one (act's --cache-server-port)
    #[arg(long, value_name = "PORT")]
    pub cache_server_port: Option<u16>,

    /// Run no cache server: jobs get no ACTIONS_CACHE_URL (act's --no-cache-server)
    #[arg(long)]
    pub no_cache_server: bool,

    /// Keep the run's artifacts (actions/upload-artifact@v4 and later) in DIR, under the run's
    /// id (act's --artifact-server-path) [default: a temporary folder removed after the run]
    #[arg(long, value_name = "DIR")]
    pub artifact_server_path: Option<PathBuf>,
}

/// Exit 0 when every job succeeded, 1 otherwise (2 for bad usage, from `main`).
pub fn run(args: ExecArgs, config: Option<&Path>) -> Result<ExitCode> {
    super::exec_run::run(args, config)
}

#[cfg(test)]
mod tests {
    use super::ExecArgs;
    use clap::Parser;

    #[derive(Parser)]
    struct Exec {
        #[command(flatten)]
        args: ExecArgs,
    }

    fn parse(argv: &[&str]) -> ExecArgs {
        let full: Vec<&str> = std::iter::once("exec")
            .chain(argv.iter().copied())
            .collect();
        match Exec::try_parse_from(&full) {
            Ok(exec) => exec.args,
            Err(error) => panic!("{argv:?} should parse: {error}"),
        }
    }

    #[test]
    fn acts_actor_spellings() {
        for argv in [
            &["-a", "mona"][..],
            &["--actor", "mona"],
            &["--actor=mona"],
            &["-amona"],
        ] {
            assert_eq!(parse(argv).actor.as_deref(), Some("mona"), "{argv:?}");
        }
    }

    #[test]
    fn acts_platform_spellings_keep_every_value_in_order() {
        let args = parse(&[
            "-P",
            "ubuntu-latest=node:20",
            "--platform",
            "linux=-self-hosted",
            "-P=gpu=-self-hosted",
            "--platform=arm=img:1",
        ]);
        assert_eq!(
            args.platforms,
            [
                "ubuntu-latest=node:20",
                "linux=-self-hosted",
                "gpu=-self-hosted",
                "arm=img:1"
            ]
        );
    }

    #[test]
    fn acts_names_for_jobs_and_local_repository() {
        assert_eq!(parse(&["--concurrent-jobs", "2"]).parallel, Some(2));
        assert_eq!(parse(&["--jobs", "3"]).parallel, Some(3));
        assert_eq!(
            parse(&["--local-repository", "acme/tool@v2=../tool"]).action_overrides,
            ["acme/tool@v2=../tool"]
        );
    }
}
