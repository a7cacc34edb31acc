//! `hearth register`: registers this runner with a forge and writes the `.runner` file (or,
//! with `kubernetes.runner_secret`, keeps the same text in that Secret instead).
//!
//! The flags and variables are act_runner's (and forgejo-runner's `FORGEJO_*` spellings), so
//! the scripts and container entrypoints written for them work unchanged, including the
//! "Runner registered successfully." line they wait for.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use hearth_forge::{Client, ClientOptions, Secret};

use crate::cmd::kubernetes::RegistrationStore;
use hearth_runner::config::Config;
use hearth_runner::labels::Labels;
use hearth_runner::register::{register, RegisterInput};

/// act_runner's labels when none are given.
const DEFAULT_LABELS: &[&str] = &[
    "ubuntu-latest:docker://docker.gitea.com/runner-images:ubuntu-latest",
    "ubuntu-24.04:docker://docker.gitea.com/runner-images:ubuntu-24.04",
    "ubuntu-22.04:docker://docker.gitea.com/runner-images:ubuntu-22.04",
];

#[derive(Args, Debug)]
pub struct RegisterArgs {
    /// Ask nothing: every value comes from flags, variables or defaults.
    #[arg(long)]
    no_interactive: bool,
    /// The forge's URL (also GITEA_INSTANCE_URL or FORGEJO_INSTANCE_URL).
    #[arg(long, value_name = "URL", env = "GITEA_INSTANCE_URL")]
    instance: Option<String>,
    /// The registration token (also GITEA_RUNNER_REGISTRATION_TOKEN or
    /// FORGEJO_RUNNER_REGISTRATION_TOKEN).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "GITEA_RUNNER_REGISTRATION_TOKEN",
        hide_env_values = true
    )]
    token: Option<Secret>,
    /// A file holding the registration token (also GITEA_RUNNER_REGISTRATION_TOKEN_FILE).
    #[arg(
        long,
        value_name = "FILE",
        env = "GITEA_RUNNER_REGISTRATION_TOKEN_FILE"
    )]
    token_file: Option<PathBuf>,
    /// The runner's name (default: the host name; also GITEA_RUNNER_NAME).
    #[arg(long, env = "GITEA_RUNNER_NAME")]
    name: Option<String>,
    /// Labels, comma-separated, as NAME[:host|:docker://IMAGE|:kubernetes://IMAGE] (also
    /// GITEA_RUNNER_LABELS); ignored when the config file sets runner.labels.
    #[arg(long, env = "GITEA_RUNNER_LABELS")]
    labels: Option<String>,
    /// Take one job, then let the forge remove the runner (also GITEA_RUNNER_EPHEMERAL).
    #[arg(long, env = "GITEA_RUNNER_EPHEMERAL", value_parser = clap::builder::BoolishValueParser::new())]
    ephemeral: bool,
}

pub fn run(args: RegisterArgs, config: Option<&Path>) -> Result<ExitCode> {
    let (config, warnings) = Config::load(config)?;
    for warning in &warnings {
        eprintln!("hearth: warning: {warning}");
    }
    let interactive = !args.no_interactive;
    let instance = value(args.instance, &["FORGEJO_INSTANCE_URL"])
        .map(Ok)
        .unwrap_or_else(|| {
            ask(
                interactive,
                "the forge's URL (e.g. https://git.example.com/)",
                None,
            )
        })?;
    let token: Secret = match (
        args.token
            .filter(|token| !token.is_empty())
            .or_else(|| value(None, &["FORGEJO_RUNNER_REGISTRATION_TOKEN"]).map(Secret::from)),
        args.token_file.or_else(|| {
            value(None, &["FORGEJO_RUNNER_REGISTRATION_TOKEN_FILE"]).map(PathBuf::from)
        }),
    ) {
        (Some(token), _) => token,
        (None, Some(file)) => std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read the token file {}", file.display()))?
            .trim()
            .into(),
        (None, None) => ask(interactive, "the runner registration token", None)?.into(),
    };
    let default_name = hearth_runner::system::host_name();
    let name = match value(args.name, &["FORGEJO_RUNNER_NAME"]) {
        Some(name) => name,
        None if interactive => ask(true, "the runner's name", Some(&default_name))?,
        None => default_name,
    };
    let labels = if !config.runner.labels.is_empty() {
        if args.labels.is_some() {
            eprintln!("hearth: the config file sets runner.labels, so --labels is ignored");
        }
        config.runner.labels.clone()
    } else {
        let specs = match value(args.labels, &["FORGEJO_RUNNER_LABELS"]) {
            Some(specs) => specs,
            None if interactive => ask(
                true,
                "the runner's labels, comma-separated",
                Some(&DEFAULT_LABELS.join(",")),
            )?,
            None => DEFAULT_LABELS.join(","),
        };
        parse_labels(&specs)?
    };
    if instance.trim().is_empty() || token.expose().trim().is_empty() {
        bail!("registering needs the forge's URL (--instance) and a registration token (--token)");
    }
    let ephemeral = args.ephemeral || env_flag("FORGEJO_RUNNER_EPHEMERAL");

    let client = Client::new(&ClientOptions {
        address: instance.clone(),
        insecure: config.runner.insecure,
        ca_file: config.runner.ca_file.clone(),
        request_timeout: config.runner.request_timeout,
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let input = RegisterInput {
        instance: &instance,
        token: &token,
        name: &name,
        labels: &labels,
        ephemeral,
        version: env!("CARGO_PKG_VERSION"),
    };
    // Reached before registering: a registration that could not be kept would be a runner
    // the forge lists and nothing can run as.
    let store = runtime.block_on(RegistrationStore::open(&config))?;
    runtime.block_on(store.check())?;
    let registered = runtime.block_on(register(&client, &input, |e| {
        eprintln!("hearth: cannot reach the forge yet ({e}); trying again");
    }))?;
    for warning in &registered.warnings {
        eprintln!("hearth: warning: {warning}");
    }
    runtime.block_on(store.save(&registered.registration))?;
    if let RegistrationStore::Secret { .. } = store {
        eprintln!(
            "hearth: the registration is kept in {} (kubernetes.runner_secret)",
            store.origin().display()
        );
    }
    println!("Runner registered successfully.");
    Ok(ExitCode::SUCCESS)
}

/// A comma-separated list of labels.
pub fn parse_labels(specs: &str) -> Result<Labels> {
    let specs: Vec<String> = specs
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(Labels::parse(&specs)?)
}

/// The flag's value, else the first of `variables` set to something.
fn value(flag: Option<String>, variables: &[&str]) -> Option<String> {
    flag.filter(|v| !v.is_empty()).or_else(|| {
        variables
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    })
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "TRUE" | "True"))
}

/// Asks on the terminal, or fails naming the missing value when asking is not allowed.
fn ask(interactive: bool, what: &str, default: Option<&str>) -> Result<String> {
    if !interactive {
        bail!("missing {what}: pass it as a flag or variable (see hearth register --help)");
    }
    let mut stderr = std::io::stderr();
    match default {
        Some(default) => write!(stderr, "Enter {what} [{default}]: ")?,
        None => write!(stderr, "Enter {what}: ")?,
    }
    stderr.flush()?;
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        bail!("missing {what}: standard input ended");
    }
    let line = line.trim();
    match (line.is_empty(), default) {
        (true, Some(default)) => Ok(default.to_owned()),
        (true, None) => bail!("missing {what}"),
        (false, _) => Ok(line.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn debug_never_shows_the_registration_token() {
        #[derive(Parser, Debug)]
        struct Cli {
            #[command(flatten)]
            args: RegisterArgs,
        }
        let cli =
            Cli::try_parse_from(["hearth", "--token", "registration-token-31"]).expect("arguments");
        let shown = format!("{cli:?}");
        assert!(!shown.contains("registration-token-31"), "{shown}");
    }
}
