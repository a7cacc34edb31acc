//! `hearth cache-server`: the cache alone, for several runners (act_runner's subcommand, with
//! its `-d/-s/-p` flags). Runners point `cache.external_server` at it and sign their jobs'
//! tokens with the same key (`cache.secret`), so each job still reaches only its own
//! repository's entries. With `--s3-bucket` the entries go to a bucket of an S3-compatible
//! store instead, which several such servers (on several machines) share.

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

    #[command(flatten)]
    s3: S3Args,
}

/// Where the entries go when they go to S3 (`--dir` then holds only uploads in progress).
#[derive(Args, Debug)]
struct S3Args {
    /// Keep the entries in this bucket of an S3-compatible store, shared with other cache
    /// servers and runners, instead of in --dir (which then holds uploads in progress); the
    /// secret key comes from AWS_SECRET_ACCESS_KEY
    #[arg(long, value_name = "BUCKET")]
    s3_bucket: Option<String>,

    /// The store's URL (http://minio.internal:9000); AWS's own when not given
    #[arg(long, value_name = "URL", requires = "s3_bucket")]
    s3_endpoint: Option<String>,

    /// The bucket's region [default: us-east-1]
    #[arg(long, value_name = "REGION", requires = "s3_bucket")]
    s3_region: Option<String>,

    /// The folder of the bucket the entries go under
    #[arg(long, value_name = "PREFIX", requires = "s3_bucket")]
    s3_prefix: Option<String>,

    /// Name the bucket in the URL's path, not its host name (what most self-hosted stores
    /// want)
    #[arg(long, requires = "s3_bucket")]
    s3_path_style: bool,

    /// The access key id
    #[arg(
        long,
        value_name = "ID",
        env = "AWS_ACCESS_KEY_ID",
        hide_env_values = true
    )]
    s3_access_key_id: Option<String>,

    /// The secret access key, from the environment only: never on a command line
    #[arg(skip = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default())]
    s3_secret_access_key: String,
}

impl S3Args {
    /// The bucket's options, when one is given.
    fn options(&self) -> Option<hearth_cache::S3Options> {
        let bucket = self.s3_bucket.clone()?;
        Some(hearth_cache::S3Options {
            endpoint: self.s3_endpoint.clone().unwrap_or_default(),
            bucket,
            region: self.s3_region.clone().unwrap_or_default(),
            prefix: self.s3_prefix.clone().unwrap_or_default(),
            access_key_id: self.s3_access_key_id.clone().unwrap_or_default(),
            secret_access_key: self.s3_secret_access_key.clone(),
            path_style: self.s3_path_style,
            ..hearth_cache::S3Options::default()
        })
    }
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = match args.s3.options() {
            None => Store::open(&dir, args.size_limit)
                .with_context(|| format!("cannot open the cache folder {}", dir.display()))?,
            Some(options) => {
                let staging = dir.join("s3-uploads");
                Store::open_s3(&options, &staging, args.size_limit)
                    .await
                    .with_context(|| {
                        format!(
                            "cannot open the cache in s3://{}/{} (uploads staged in {})",
                            options.bucket,
                            options.prefix,
                            staging.display()
                        )
                    })?
            }
        };
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
