//! `hearth`: a runner for Forgejo Actions and Gitea Actions.

mod cmd;
mod daemon;
mod exec;
mod git;
mod local_event;
mod workflow_files;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A runner for Forgejo Actions and Gitea Actions.
#[derive(Parser, Debug)]
#[command(name = "hearth", version, about, long_about = None)]
struct Cli {
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Expr(args) => cmd::expr::run(args),
        Command::Validate(args) => cmd::validate::run(args),
        Command::Plan(args) => cmd::plan::run(args),
        Command::Exec(args) => cmd::exec::run(*args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("hearth: {error:#}");
            ExitCode::from(2)
        }
    }
}
