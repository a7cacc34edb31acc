//! `fake-forge`: the fake Gitea/Forgejo as a process, for shell benchmarks under `bench/`.
//! See the crate docs for the stats format.

use std::io::Write;
use std::path::PathBuf;

use clap::Parser;
use hearth_fake_forge::{FakeForge, Flavour, Options, TaskSpec};

#[derive(Parser)]
#[command(about = "A fake Gitea/Forgejo Actions server on 127.0.0.1")]
struct Args {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Listen on this address instead of 127.0.0.1: one that job containers or Pods reach
    /// (a bridge's address), since a runner refuses a forge on its loopback for them.
    #[arg(long)]
    host: Option<std::net::IpAddr>,
    /// A registration token to accept (repeatable).
    #[arg(long = "token", required = true)]
    tokens: Vec<String>,
    /// Which forge to imitate: gitea or forgejo.
    #[arg(long, default_value = "gitea")]
    flavour: Flavour,
    /// How many copies of --payload to queue.
    #[arg(long, default_value_t = 0, requires = "payload")]
    tasks: usize,
    /// A single-job workflow YAML file.
    #[arg(long)]
    payload: Option<PathBuf>,
    /// Where to write the stats JSON on exit.
    #[arg(long)]
    stats_file: Option<PathBuf>,
    /// X-Gitea-Actions-Capabilities to send from Declare (e.g. job-summary).
    #[arg(long)]
    capabilities: Option<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let options = Options {
        port: Some(args.port),
        host: args.host,
        flavour: args.flavour,
        registration_tokens: args.tokens,
        declare_capabilities: args.capabilities,
        ..Options::default()
    };
    let forge = FakeForge::start(options).await?;
    if let Some(path) = &args.payload {
        let payload = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        for _ in 0..args.tasks {
            forge.queue_task(TaskSpec::new(payload.clone()));
        }
    }
    println!("listening on {}", forge.url());
    std::io::stdout().flush()?;

    wait_for_signal().await?;
    if let Some(path) = &args.stats_file {
        let stats = serde_json::to_string_pretty(&forge.stats_json())?;
        std::fs::write(path, stats + "\n")
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    forge.go_down().await;
    Ok(())
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
