//! `hearth`: a runner for Forgejo Actions and Gitea Actions.

use hearth::cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A runner for Forgejo Actions and Gitea Actions.
#[derive(Parser, Debug)]
#[command(name = "hearth", version, about, long_about = None)]
struct Cli {
    /// The runner's config file (see `hearth generate-config`); without one, the defaults.
    #[arg(
        short = 'c',
        long,
        global = true,
        value_name = "FILE",
        env = "CONFIG_FILE"
    )]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Evaluate a GitHub Actions expression, as a workflow would.
    Expr(cmd::expr::ExprArgs),
    /// Check workflow files and print every problem as file:line:col: error: message.
    Validate(cmd::validate::ValidateArgs),
    /// Show the jobs an event would run, in order, with their matrices and labels.
    Plan(cmd::plan::PlanArgs),
    /// Run the workflows an event triggers on this machine, as act does.
    Exec(Box<cmd::exec::ExecArgs>),
    /// Register this runner with a Gitea or Forgejo instance.
    Register(cmd::register::RegisterArgs),
    /// Run jobs from the forge the runner is registered with.
    Daemon(cmd::daemon::DaemonArgs),
    /// Check the config, the forge, the token, Docker, the images, the job network, the clock
    /// and the disks, and say what to fix.
    Doctor(cmd::doctor::DoctorArgs),
    /// Print a commented config file with the default settings.
    GenerateConfig(cmd::generate_config::GenerateConfigArgs),
    /// Manage the action cache (`pull`: fetch the actions workflows use, for offline runs).
    Actions(cmd::actions::ActionsArgs),
    /// Serve the cache alone, for several runners (`cache.external_server`, `cache.secret`).
    CacheServer(cmd::cache_server::CacheServerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Expr(args) => cmd::expr::run(args),
        Command::Validate(args) => cmd::validate::run(args),
        Command::Plan(args) => cmd::plan::run(args),
        Command::Exec(args) => cmd::exec::run(*args, cli.config.as_deref()),
        Command::Register(args) => cmd::register::run(args, cli.config.as_deref()),
        Command::Daemon(args) => cmd::daemon::run(args, cli.config.as_deref()),
        Command::Doctor(args) => cmd::doctor::run(args, cli.config.as_deref()),
        Command::GenerateConfig(args) => cmd::generate_config::run(args),
        Command::Actions(args) => cmd::actions::run(args, cli.config.as_deref()),
        Command::CacheServer(args) => cmd::cache_server::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("hearth: {error:#}");
            ExitCode::from(2)
        }
    }
}
