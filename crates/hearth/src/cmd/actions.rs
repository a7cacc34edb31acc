//! `hearth actions pull`: fills the action cache ahead of time, so that a runner can run the
//! workflows offline (`hearth exec --offline`, an air-gapped site, an image built with them).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use hearth_runner::action_pull;
use hearth_runner::actions::GitActions;
use hearth_runner::config::Config;
use hearth_runner::exec::local;
use hearth_runner::workflow_files;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct ActionsArgs {
    #[command(subcommand)]
    command: ActionsCommand,
}

#[derive(Subcommand, Debug)]
enum ActionsCommand {
    /// Fetch every action the workflows use (and the actions those use) into the cache.
    Pull(PullArgs),
}

#[derive(Args, Debug)]
struct PullArgs {
    /// Workflow files, or folders of them [default: the repository's .forgejo/workflows,
    /// .gitea/workflows or .github/workflows].
    workflows: Vec<PathBuf>,

    /// The repository whose workflow folder to read.
    #[arg(
        short = 'C',
        long = "directory",
        value_name = "DIR",
        default_value = "."
    )]
    directory: PathBuf,

    /// Where `uses: owner/repo@ref` actions are fetched from (`{URL}/{owner}/{repo}`): the
    /// forge's default actions URL for a daemon's jobs [default: runner.github_mirror when the
    /// config sets one, else https://github.com].
    #[arg(long, value_name = "URL")]
    default_actions_url: Option<String>,
}

/// Exit 0 when every action is in the cache, 1 when one could not be fetched.
pub fn run(args: ActionsArgs, config: Option<&Path>) -> Result<ExitCode> {
    let ActionsCommand::Pull(args) = args.command;
    // With a config file, the daemon's cache (`host.workdir_parent/_actions`); else the one
    // `hearth exec` reads.
    let (cache, mirror) = match config {
        Some(_) => {
            let (config, _) = Config::load(config)?;
            let mirror = config.runner.github_mirror.clone();
            (config.host.workdir_parent.join("_actions"), mirror)
        }
        None => (local::actions_cache(), String::new()),
    };
    let base = args
        .default_actions_url
        .clone()
        .or_else(|| (!mirror.is_empty()).then_some(mirror))
        .unwrap_or_else(|| "https://github.com".to_owned());
    let files = workflow_files::find(&args.workflows, &args.directory)?;
    let source = GitActions::new(&base, cache.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let cancel = CancellationToken::new();
    match runtime.block_on(action_pull::pull(&files, &source, &cancel)) {
        Ok(pulled) => {
            for (action, folder) in &pulled.actions {
                println!("{action}  {}", folder.display());
            }
            println!("{} action(s) in {}", pulled.actions.len(), cache.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("hearth: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
