//! `hearth cache-server`: the cache alone, for several runners (act_runner's subcommand, with
//! its `-d/-s/-p` flags). Runners point `cache.external_server` at it and sign their jobs'
//! tokens with the same key (`cache.secret`), so each job still reaches only its own
//! repository's entries.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use hearth_cache::auth::Signer;
use hearth_cache::Store;

#[derive(Args, Debug)]
pub struct CacheServerArgs {
    /// Where the entries are kept [default: $HOME/.cache/actcache]
    #[arg(short = 'd', long, value_name = "DIR")]
    dir: Option<PathBuf>,

    /// The address to listen on
    #[arg(short = 's', long, value_name = "HOST", default_value = "127.0.0.1")]
    host: String,

    /// The port to listen on; 0 takes any free port
    #[arg(short = 'p', long, default_value_t = 0)]
    port: u16,

    /// A file holding the key the runners sign their jobs' tokens with (their
    /// `cache.secret`)
    #[arg(long, value_name = "FILE", env = "HEARTH_CACHE_SECRET_FILE")]
    secret_file: PathBuf,

    /// The most bytes the entries may hold; the least recently used go past it
    #[arg(long, value_name = "BYTES", default_value_t = 10 << 30)]
    size_limit: u64,
}

pub fn run(args: CacheServerArgs) -> Result<ExitCode> {
    let secret = std::fs::read_to_string(&args.secret_file)
        .with_context(|| format!("cannot read {}", args.secret_file.display()))?;
    let secret = secret.trim();
    if secret.len() < 16 {
        bail!(
            "{}: the key must be at least 16 characters (make one with `head -c 32 /dev/urandom | base64`)",
            args.secret_file.display()
        );
    }
    let dir = match args.dir {
        Some(dir) => dir,
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .context("HOME is not set: say where the entries go with --dir")?
            .join(".cache/actcache"),
    };
    let store = Store::open(&dir, args.size_limit)
        .with_context(|| format!("cannot open the cache folder {}", dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let address = format!("{}:{}", args.host, args.port);
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .with_context(|| format!("cannot listen at {address}"))?;
        let running =
            hearth_cache::server::serve(listener, Arc::new(store), Signer::new(secret.as_bytes()))
                .with_context(|| format!("cannot listen at {address}"))?;
        println!(
            "hearth: cache server listening on http://{}",
            running.address()
        );
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let mut stop = Some(stop);
        let signals = hearth_runner::system::on_interrupts(move |_| {
            if let Some(stop) = stop.take() {
                let _ = stop.send(());
            }
        });
        let _ = stopped.await;
        signals.abort();
        running.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}
