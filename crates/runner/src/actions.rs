//! Actions from other repositories (`uses: owner/repo@ref`), fetched with the real `git`.
//!
//! Each use fetches the reference again (one shallow fetch, as GitHub's runner downloads the
//! actions of every job), so a branch reference is never stale; what it points at is checked
//! out once per commit under `<cache>/<owner>/<repo>/<commit>` and reused from then on. The
//! base URL is GitHub's by default, or the forge's `DEFAULT_ACTIONS_URL` for its jobs.
//!
//! Fetches of one repository take turns; those of different repositories run side by side.
//! Every git command has a time limit and stops when the job is cancelled, killed with the
//! helpers it started, so a forge or mirror that never answers holds up no other job.
//!
//! Where an action comes from:
//! - `owner/repo[/path]@ref` from the base URL; `https://host/owner/repo[/path]@ref` (a Gitea
//!   and Forgejo extension) from that host, cached apart (`<cache>/https@host/owner/repo`);
//! - an override (`hearth exec --action-override owner/repo@ref=DIR`) from that folder as it is;
//! - a full commit id already checked out from the cache with no fetch at all;
//! - offline, from the cache alone: each fetch records what its ref pointed at
//!   (`refs/hearth/<ref>` in the cached repository), and an action the cache lacks is an error
//!   that names it.
//!
//! The task's token goes only to the forge: to URLs at or under its address.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use hearth_engine::job::remote::{ActionSource, FetchError};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// How long one git command may take: a shallow fetch of an action is seconds, so this only
/// ends a fetch from a server that stopped answering.
const GIT_TIME_LIMIT: Duration = Duration::from_secs(10 * 60);

/// Fetches actions from `{base_url}/{owner}/{repo}` (see the module's documentation).
pub struct GitActions {
    base_url: String,
    cache: PathBuf,
    /// Sent as HTTP basic credentials to the forge (its own actions may be private), and to
    /// no other host.
    token: Option<ForgeToken>,
    /// Folders that stand for `repository@ref` instead of a fetch.
    overrides: BTreeMap<String, PathBuf>,
    /// Only the cache: nothing is fetched.
    offline: bool,
    /// The `git` to run (`git` from `PATH`; a test puts a recorder in front of it).
    program: PathBuf,
    /// How long each git command may take before it is killed.
    time_limit: Duration,
    /// Variables that set git's certificate checks (`runner.ca_file`, `runner.insecure`).
    tls_env: Vec<(String, String)>,
}

/// A lock per repository folder, whichever job (and so whichever `GitActions`) asks: fetches
/// of one repository share its git folder (its shallow file, index and `FETCH_HEAD`), so they
/// take turns; other repositories do not wait for them.
static FETCHING: std::sync::Mutex<BTreeMap<PathBuf, Arc<Mutex<()>>>> =
    std::sync::Mutex::new(BTreeMap::new());

/// The lock of the repository in `folder`.
fn repository_lock(folder: &Path) -> Arc<Mutex<()>> {
    // Held only to look up; a panic elsewhere cannot leave the map half-changed.
    let mut locks = FETCHING.lock().unwrap_or_else(PoisonError::into_inner);
    // A lock only the map holds is neither held nor awaited: dropping it keeps the map as
    // small as the fetches in flight.
    locks.retain(|_, lock| Arc::strong_count(lock) > 1);
    Arc::clone(locks.entry(folder.to_owned()).or_default())
}

impl GitActions {
    pub fn new(base_url: &str, cache: PathBuf) -> GitActions {
        GitActions {
            base_url: base_url.trim_end_matches('/').to_owned(),
            cache,
            token: None,
            overrides: BTreeMap::new(),
            offline: false,
            program: PathBuf::from("git"),
            time_limit: GIT_TIME_LIMIT,
            tls_env: Vec::new(),
        }
    }

    /// Checks the certificates of HTTPS remotes against `ca_bundle` (the runner's system
    /// store with `runner.ca_file`) when given; with `insecure` (`runner.insecure`), not at
    /// all, as the runner's own requests to the forge.
    pub fn with_tls(mut self, ca_bundle: Option<PathBuf>, insecure: bool) -> GitActions {
        self.tls_env.clear();
        if let Some(bundle) = ca_bundle {
            let bundle = bundle.display().to_string();
            self.tls_env.push(("GIT_SSL_CAINFO".to_owned(), bundle));
        }
        if insecure {
            self.tls_env
                .push(("GIT_SSL_NO_VERIFY".to_owned(), "true".to_owned()));
        }
        self
    }

    #[cfg(test)]
    fn with_git(mut self, program: &Path) -> GitActions {
        self.program = program.to_owned();
        self
    }

    #[cfg(test)]
    fn with_time_limit(mut self, limit: Duration) -> GitActions {
        self.time_limit = limit;
        self
    }

    /// Authenticates with `token` (the task's) to the forge at `forge` (its address), and to
    /// nothing else: an action fetched from another host never sees it.
    pub fn with_forge_token(mut self, token: &str, forge: &str) -> GitActions {
        if !token.is_empty() && !forge.is_empty() {
            self.token = Some(ForgeToken {
                token: token.to_owned(),
                forge: forge.trim_end_matches('/').to_owned(),
            });
        }
        self
    }

    /// Takes `repository@reference` (as a `uses:` names it, without its path) from `folder`
    /// as it is, instead of fetching it (act's `--local-repository`).
    pub fn with_override(mut self, action: &str, folder: PathBuf) -> GitActions {
        self.overrides.insert(action.to_owned(), folder);
        self
    }

    /// Fetches nothing: actions come from the cache alone.
    pub fn offline(mut self, offline: bool) -> GitActions {
        self.offline = offline;
        self
    }

    /// Where `repository` (`owner/repo`, or a repository's URL) is fetched from, and its
    /// folder in the cache.
    fn location(&self, repository: &str) -> Result<(String, PathBuf), GitActionsError> {
        let Some((scheme, rest)) = repository.split_once("://") else {
            let folder = self.repository_folder(repository)?;
            return Ok((format!("{}/{repository}", self.base_url), folder));
        };
        let bad = || GitActionsError::BadRepository(repository.to_owned());
        let (authority, name) = rest.split_once('/').ok_or_else(bad)?;
        let plain_authority = !authority.is_empty()
            && authority
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'));
        if !matches!(scheme, "http" | "https") || !plain_authority {
            return Err(bad());
        }
        // `@` is in no owner's name: these never meet the `owner/repo` folders.
        let host = format!("{scheme}@{}", authority.replace(':', "_"));
        let folder = self.repository_folder(name)?;
        let relative = folder.strip_prefix(&self.cache).map_err(|_| bad())?;
        Ok((repository.to_owned(), self.cache.join(host).join(relative)))
    }

    /// The git environment that authenticates a fetch from `url`: the token's, when `url` is
    /// the forge's.
    fn authorization(&self, url: &str) -> Vec<(String, String)> {
        match &self.token {
            Some(token) if is_at_or_under(url, &token.forge) => {
                authorization_config(&token.token, std::env::var("GIT_CONFIG_COUNT").ok())
            }
            _ => Vec::new(),
        }
    }

    /// The folder of `owner/repo` in the cache: exactly two plain names, so that no
    /// `..`, absolute path or extra level can put it (and the `.git` made in it) elsewhere.
    fn repository_folder(&self, repository: &str) -> Result<PathBuf, GitActionsError> {
        let mut names = 0;
        for component in Path::new(repository).components() {
            match component {
                Component::Normal(_) => names += 1,
                _ => names = usize::MAX,
            }
            if names > 2 {
                break;
            }
        }
        if names != 2 {
            return Err(GitActionsError::BadRepository(repository.to_owned()));
        }
        Ok(self.cache.join(repository))
    }

    async fn fetch_checked_out(
        &self,
        repository: &str,
        reference: &str,
        cancel: &CancellationToken,
    ) -> Result<PathBuf, GitActionsError> {
        if let Some(folder) = self.overrides.get(&format!("{repository}@{reference}")) {
            return match tokio::fs::metadata(folder).await {
                Ok(meta) if meta.is_dir() => Ok(folder.clone()),
                _ => Err(GitActionsError::Override {
                    action: format!("{repository}@{reference}"),
                    folder: folder.display().to_string(),
                }),
            };
        }
        let (url, folder) = self.location(repository)?;
        // The engine checks refs already; this keeps `git fetch` safe whoever the caller is.
        if reference.is_empty() || reference.starts_with('-') {
            return Err(GitActionsError::BadRef {
                repository: repository.to_owned(),
                reference: reference.to_owned(),
            });
        }
        // A full commit id names one tree forever: checked out once, it needs no fetch.
        if is_commit_id(reference) && folder.join(reference).is_dir() {
            return Ok(folder.join(reference));
        }
        let lock = repository_lock(&folder);
        let _one_at_a_time = tokio::select! {
            guard = lock.lock() => guard,
            () = cancel.cancelled() => return Err(GitActionsError::Cancelled),
        };
        // Other runners on this machine may share the cache: their fetches wait as well.
        let _one_process_at_a_time = lock_across_processes(&folder, cancel).await?;
        let git_dir = folder.join(".git");
        let recorded = format!("refs/hearth/{reference}");
        let commit = if self.offline {
            let not_cached = || GitActionsError::NotCached {
                action: format!("{repository}@{reference}"),
                cache: self.cache.display().to_string(),
            };
            if !git_dir.exists() {
                return Err(not_cached());
            }
            let target = format!("{recorded}^{{commit}}");
            self.git(
                &["rev-parse", "--verify", "-q", &target],
                &git_dir,
                None,
                &[],
                cancel,
            )
            .await
            .map_err(|_| not_cached())?
        } else {
            if !git_dir.exists() {
                tokio::fs::create_dir_all(&folder)
                    .await
                    .map_err(folder_error("create", &folder))?;
                self.git(&["init", "-q", "--bare"], &git_dir, None, &[], cancel)
                    .await?;
            }
            let auth = self.authorization(&url);
            // Fetched straight into `refs/hearth/<ref>`: what the ref is now, recorded for a
            // later run offline, in the same command. A name git refuses as a local ref is
            // fetched plainly and only not remembered.
            let refspec = format!("+{reference}:{recorded}");
            let recorded_fetch = self
                .git(&fetch_args(&url, &refspec), &git_dir, None, &auth, cancel)
                .await;
            let head = match recorded_fetch {
                Ok(_) => format!("{recorded}^{{commit}}"),
                Err(GitActionsError::Git { .. }) => {
                    self.git(&fetch_args(&url, reference), &git_dir, None, &auth, cancel)
                        .await?;
                    "FETCH_HEAD".to_owned()
                }
                Err(e) => return Err(e),
            };
            let commit = self
                .git(&["rev-parse", &head], &git_dir, None, &[], cancel)
                .await?;
            commit
        };
        let commit = commit.trim();
        let checked_out = folder.join(commit);
        if checked_out.exists() {
            return Ok(checked_out);
        }
        // Check out beside it, then rename: a half-written folder is never taken for a whole one.
        let partial = folder.join(format!(".{commit}.partial"));
        // What an interrupted checkout left may be a whole tree: removed off the async thread.
        let stale = partial.clone();
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(stale)).await;
        tokio::fs::create_dir_all(&partial)
            .await
            .map_err(folder_error("create", &partial))?;
        self.git(
            &["checkout", "-q", "-f", commit, "--", "."],
            &git_dir,
            Some(&partial),
            &[],
            cancel,
        )
        .await?;
        tokio::fs::rename(&partial, &checked_out)
            .await
            .map_err(folder_error("move the action into", &checked_out))?;
        Ok(checked_out)
    }

    /// Runs `git` with `args` on `git_dir` (and `work_tree`) and `env` added to its
    /// environment; its standard output, or its error output as the error. Past the time
    /// limit or on `cancel`, git and the helpers it started are killed.
    async fn git(
        &self,
        args: &[&str],
        git_dir: &Path,
        work_tree: Option<&Path>,
        env: &[(String, String)],
        cancel: &CancellationToken,
    ) -> Result<String, GitActionsError> {
        let mut command = Command::new(&self.program);
        command.arg("--git-dir").arg(git_dir);
        if let Some(tree) = work_tree {
            command.arg("--work-tree").arg(tree);
        }
        command
            .args(args)
            .envs(self.tls_env.iter().chain(env).map(|(k, v)| (k, v)))
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own: `git-remote-http` waits on the network, not on git, and
            // must go with it.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(GitActionsError::Spawn)?;
        // Declared after `child`, so dropped (and killing) before it is.
        let mut group = ProcessGroup(child.id().and_then(|id| i32::try_from(id).ok()));
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let ended = tokio::select! {
            ended = async {
                let (out, err) = tokio::join!(read_all(&mut stdout), read_all(&mut stderr));
                // Reaped last: until then the group's id cannot be another's.
                (out, err, child.wait().await)
            } => Ok(ended),
            () = tokio::time::sleep(self.time_limit) => Err(GitActionsError::TimedOut {
                command: args.first().copied().unwrap_or_default().to_owned(),
                limit: self.time_limit,
            }),
            () = cancel.cancelled() => Err(GitActionsError::Cancelled),
        };
        let (stdout, stderr, status) = match ended {
            Ok(ended) => {
                group.0 = None;
                ended
            }
            Err(error) => {
                group.kill();
                let _ = child.wait().await;
                return Err(error);
            }
        };
        let status = status.map_err(GitActionsError::Spawn)?;
        if !status.success() {
            return Err(GitActionsError::Git {
                command: args.join(" "),
                stderr: String::from_utf8_lossy(&stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&stdout).into_owned())
    }
}

/// An exclusive lock on the cached repository `folder` that other processes respect too: an
/// `flock` on the file `<folder>.lock` beside it, held until the file is dropped. Waited for
/// in short steps, so that a cancelled job stops waiting.
async fn lock_across_processes(
    folder: &Path,
    cancel: &CancellationToken,
) -> Result<std::fs::File, GitActionsError> {
    use std::os::fd::AsRawFd;
    let mut path = folder.as_os_str().to_owned();
    path.push(".lock");
    let path = PathBuf::from(path);
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(folder_error("create", parent))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(folder_error("open", &path))?;
    loop {
        // SAFETY: flock(2) on a descriptor this function owns for as long as the call.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(file);
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
            () = cancel.cancelled() => return Err(GitActionsError::Cancelled),
        }
    }
}

/// The task's token and the forge it is for.
struct ForgeToken {
    token: String,
    /// The forge's address, without a trailing `/`.
    forge: String,
}

/// Whether `url` is `address` or a path under it. A bare prefix is not enough:
/// `https://git.example.com` is also the start of `https://git.example.com.evil.example`.
pub fn is_at_or_under(url: &str, address: &str) -> bool {
    let url = url.trim_end_matches('/');
    let address = address.trim_end_matches('/');
    !address.is_empty()
        && (url == address
            || url
                .strip_prefix(address)
                .is_some_and(|rest| rest.starts_with('/')))
}

/// A full commit id: 40 (SHA-1) or 64 (SHA-256) hexadecimal digits.
fn is_commit_id(reference: &str) -> bool {
    matches!(reference.len(), 40 | 64) && reference.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Why an action could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum GitActionsError {
    #[error(
        "the action {action} is not in the action cache {cache}, and actions are not fetched \
         (offline): fill the cache with `hearth actions pull` where its repository can be \
         reached"
    )]
    NotCached { action: String, cache: String },
    #[error("the override of {action} is not a folder: {folder}")]
    Override { action: String, folder: String },
    #[error("refusing the action repository '{0}': expected 'owner/repo'")]
    BadRepository(String),
    #[error("refusing the ref '{reference}' of {repository}")]
    BadRef {
        repository: String,
        reference: String,
    },
    /// The job was cancelled.
    #[error("cancelled")]
    Cancelled,
    #[error("git {command} did not finish within {limit:?}; stopped")]
    TimedOut {
        command: String,
        limit: std::time::Duration,
    },
    #[error("cannot run git: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("git {command} failed: {stderr}")]
    Git { command: String, stderr: String },
    #[error("cannot {action} {path}: {source}")]
    Folder {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn folder_error(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> GitActionsError {
    let path = path.display().to_string();
    move |source| GitActionsError::Folder {
        action,
        path,
        source,
    }
}

impl ActionSource for GitActions {
    fn fetch<'a>(
        &'a self,
        repository: &'a str,
        reference: &'a str,
        cancel: &'a CancellationToken,
    ) -> Pin<Box<dyn Future<Output = Result<PathBuf, FetchError>> + Send + 'a>> {
        Box::pin(async move {
            self.fetch_checked_out(repository, reference, cancel)
                .await
                .map_err(FetchError::from)
        })
    }
}

/// The process group of a running git command. Dropped armed (a fetch abandoned half-way, its
/// job gone), it kills git and every helper git started.
struct ProcessGroup(Option<i32>);

impl ProcessGroup {
    fn kill(&mut self) {
        if let Some(group) = self.0.take() {
            // SAFETY: kill(2) with plain integers. The group's leader is a child not reaped
            // yet, so the id is still this group's and no one else's.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// All of a pipe (nothing if there is none); what could not be read is left out.
async fn read_all(pipe: &mut Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Some(pipe) = pipe {
        let _ = pipe.read_to_end(&mut bytes).await;
    }
    bytes
}

/// The arguments of the shallow `git fetch` of `reference` from `url`: after `--`, neither
/// can be read as an option (a ref `--upload-pack=...` would run a command).
fn fetch_args<'a>(url: &'a str, reference: &'a str) -> Vec<&'a str> {
    vec![
        "fetch",
        "-q",
        "--depth",
        "1",
        "--no-tags",
        "--",
        url,
        reference,
    ]
}

/// The token as git configuration in the environment of one command (`GIT_CONFIG_COUNT`,
/// `GIT_CONFIG_KEY_<n>`, `GIT_CONFIG_VALUE_<n>`, git 2.31 and later), after the entries
/// `inherited` (this process's `GIT_CONFIG_COUNT`) says are there already. Not `-c` in the
/// arguments: any local user can read a process's command line in `/proc/<pid>/cmdline`,
/// while its environment is readable only by its owner. The helpers git starts for HTTP
/// inherit the environment, so they send the header.
fn authorization_config(token: &str, inherited: Option<String>) -> Vec<(String, String)> {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
    let index = inherited.and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
    vec![
        (
            format!("GIT_CONFIG_KEY_{index}"),
            "http.extraHeader".to_owned(),
        ),
        (
            format!("GIT_CONFIG_VALUE_{index}"),
            format!("Authorization: Basic {basic}"),
        ),
        ("GIT_CONFIG_COUNT".to_owned(), (index + 1).to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::Command as StdCommand;
    use std::sync::{Arc, Mutex as StdMutex};
    use std::time::Instant;

    use super::*;

    fn run_git(dir: &Path, args: &[&str]) {
        let status = StdCommand::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@localhost"])
            .args(["-c", "init.defaultBranch=main"])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?} failed");
    }

    /// A repository `base/name` with an `action.yml`, tagged `v1`.
    fn make_repo(base: &Path, name: &str) {
        let dir = base.join(name);
        std::fs::create_dir_all(&dir).expect("repo folder");
        run_git(&dir, &["init", "-q"]);
        std::fs::write(dir.join("action.yml"), format!("name: {name}\n")).expect("file");
        run_git(&dir, &["add", "-A"]);
        run_git(&dir, &["commit", "-q", "-m", "action"]);
        run_git(&dir, &["tag", "v1"]);
    }

    fn file_url(dir: &Path) -> String {
        format!("file://{}", dir.display())
    }

    /// A smart-HTTP git server on 127.0.0.1: `git http-backend` run as CGI for the
    /// repositories under `root`, answering 401 to any request without `Authorization:
    /// {expected}`. Records the `Authorization` header of every request.
    struct GitHttp {
        url: String,
        seen: Arc<StdMutex<Vec<Option<String>>>>,
    }

    fn serve_git_http(root: PathBuf, expected: Option<String>) -> GitHttp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (root, expected, record) = (root.clone(), expected.clone(), record.clone());
                std::thread::spawn(move || answer(stream, &root, &expected, &record));
            }
        });
        GitHttp { url, seen }
    }

    fn answer(
        stream: TcpStream,
        root: &Path,
        expected: &Option<String>,
        seen: &StdMutex<Vec<Option<String>>>,
    ) {
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut line = String::new();
        reader.read_line(&mut line).expect("request line");
        let mut words = line.split_whitespace();
        let method = words.next().unwrap_or_default().to_owned();
        let target = words.next().unwrap_or_default().to_owned();
        let mut headers = BTreeMap::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).expect("header");
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let authorization = headers.get("authorization").cloned();
        seen.lock().expect("lock").push(authorization.clone());
        let mut stream = stream;
        if expected.is_some() && authorization != *expected {
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        }
        let mut body = Vec::new();
        if headers
            .get("transfer-encoding")
            .is_some_and(|t| t == "chunked")
        {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size).expect("chunk size");
                let size = usize::from_str_radix(size.trim(), 16).expect("hex size");
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk).expect("chunk");
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(length) = headers.get("content-length") {
            body.resize(length.parse().expect("length"), 0);
            reader.read_exact(&mut body).expect("body");
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let header = |name: &str| headers.get(name).cloned().unwrap_or_default();
        let mut backend = StdCommand::new("git")
            .arg("http-backend")
            .env("GIT_PROJECT_ROOT", root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("REQUEST_METHOD", &method)
            .env("PATH_INFO", path)
            .env("QUERY_STRING", query)
            .env("CONTENT_TYPE", header("content-type"))
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
            .env("GIT_PROTOCOL", header("git-protocol"))
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("git http-backend runs");
        backend
            .stdin
            .take()
            .expect("stdin")
            .write_all(&body)
            .expect("body to the backend");
        let output = backend.wait_with_output().expect("backend output");
        let cgi = output.stdout;
        let split = cgi
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|at| (at, 4))
            .or_else(|| cgi.windows(2).position(|w| w == b"\n\n").map(|at| (at, 2)))
            .expect("CGI headers");
        let cgi_headers = String::from_utf8_lossy(&cgi[..split.0]).into_owned();
        let content = &cgi[split.0 + split.1..];
        let mut status = "200 OK".to_owned();
        let mut response = String::new();
        for header in cgi_headers.lines() {
            match header.strip_prefix("Status:") {
                Some(code) => status = code.trim().to_owned(),
                None => response.push_str(&format!("{header}\r\n")),
            }
        }
        let head = format!(
            "HTTP/1.1 {status}\r\n{response}Content-Length: {}\r\nConnection: close\r\n\r\n",
            content.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(content);
    }

    /// A `git` that writes its arguments, one a line, to `log`, then runs the real one.
    fn recording_git(dir: &Path, log: &Path) -> PathBuf {
        let script = dir.join("git");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\nexec git \"$@\"\n",
                log.display()
            ),
        )
        .expect("script");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .expect("executable");
        script
    }

    #[tokio::test]
    async fn a_repository_outside_the_cache_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let actions = dir.path().join("actions");
        make_repo(&actions, "acme/greet");
        let cache = dir.path().join("a/b/cache");
        let source = GitActions::new(&file_url(&actions), cache.clone());
        let absolute = dir.path().join("elsewhere");
        let absolute = absolute.to_str().expect("a UTF-8 path");
        for repository in ["../..", "acme/../..", absolute, "acme", "acme/greet/more"] {
            let fetched = source
                .fetch(repository, "v1", &CancellationToken::new())
                .await;
            assert!(fetched.is_err(), "{repository}: {fetched:?}");
        }
        // Nothing was created outside the cache (`a/b/cache/../..` is `a`).
        assert!(!dir.path().join("a/.git").exists());
        assert!(!dir.path().join("elsewhere").exists());
        // A well-formed one still works.
        let folder = source
            .fetch("acme/greet", "v1", &CancellationToken::new())
            .await
            .expect("fetched");
        assert!(folder.starts_with(&cache) && folder.join("action.yml").exists());
    }

    #[tokio::test]
    async fn a_ref_is_never_read_as_an_option() {
        let dir = tempfile::tempdir().expect("temp dir");
        let actions = dir.path().join("actions");
        make_repo(&actions, "acme/greet");
        let marker = dir.path().join("pwned");
        let source = GitActions::new(&file_url(&actions), dir.path().join("cache"));
        // Were it an option, `git fetch` would run it as its upload-pack command.
        let reference = format!("--upload-pack=touch {};git-upload-pack", marker.display());
        let fetched = source
            .fetch("acme/greet", &reference, &CancellationToken::new())
            .await;
        assert!(fetched.is_err(), "{fetched:?}");
        assert!(!marker.exists(), "the ref ran as an option");
    }

    #[test]
    fn fetch_ends_the_options_before_the_url_and_ref() {
        let args = fetch_args("https://forge.example/acme/greet", "main");
        let end = args.iter().position(|a| *a == "--").expect("a `--`");
        let url = args
            .iter()
            .position(|a| *a == "https://forge.example/acme/greet");
        assert!(url.is_some_and(|url| end < url), "{args:?}");
        assert_eq!(args.last(), Some(&"main"));
    }

    #[tokio::test]
    async fn the_token_authenticates_the_fetch_but_is_not_in_the_arguments_of_git() {
        let dir = tempfile::tempdir().expect("temp dir");
        let actions = dir.path().join("actions");
        make_repo(&actions, "acme/private");
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode("x-access-token:s3cret-t0ken");
        let server = serve_git_http(actions, Some(format!("Basic {basic}")));
        let log = dir.path().join("argv");
        let git = recording_git(dir.path(), &log);

        // The server does refuse a fetch without it.
        let anonymous = GitActions::new(&server.url, dir.path().join("cache-1")).with_git(&git);
        let refused = anonymous
            .fetch("acme/private", "v1", &CancellationToken::new())
            .await;
        assert!(refused.is_err(), "{refused:?}");

        let source = GitActions::new(&server.url, dir.path().join("cache-2"))
            .with_forge_token("s3cret-t0ken", &server.url)
            .with_git(&git);
        let folder = source
            .fetch("acme/private", "v1", &CancellationToken::new())
            .await
            .expect("fetched");
        assert!(folder.join("action.yml").exists());
        let seen = server.seen.lock().expect("lock").clone();
        assert!(
            seen.iter()
                .any(|a| a.as_deref() == Some(&format!("Basic {basic}"))),
            "{seen:?}"
        );
        let argv = std::fs::read_to_string(&log).expect("argv recorded");
        assert!(argv.contains("fetch"), "{argv}");
        for secret in [
            "s3cret-t0ken",
            basic.as_str(),
            "Authorization",
            "extraHeader",
        ] {
            assert!(
                !argv.contains(secret),
                "{secret} in the argv of git:\n{argv}"
            );
        }
    }

    #[test]
    fn the_token_goes_only_to_the_forge_itself() {
        let forge = "https://git.example.com";
        for url in [
            forge,
            "https://git.example.com/",
            "https://git.example.com/actions/checkout",
        ] {
            assert!(is_at_or_under(url, forge), "{url}");
        }
        for url in [
            "https://git.example.com.evil.example/a/b",
            "https://git.example.com:8443/a/b",
            "https://git.example.com@evil.example/a/b",
            "https://github.com/actions/checkout",
        ] {
            assert!(!is_at_or_under(url, forge), "{url}");
        }
    }

    /// `uses: https://host/owner/repo@ref` is fetched from that host, cached apart from the
    /// base URL's actions; the task's token goes to the forge's host only, whichever way the
    /// action is named.
    #[tokio::test]
    async fn full_url_actions_come_from_their_host_and_only_the_forge_sees_the_token() {
        let dir = tempfile::tempdir().expect("temp dir");
        let forge_repos = dir.path().join("forge");
        let other_repos = dir.path().join("other");
        make_repo(&forge_repos, "acme/private");
        make_repo(&other_repos, "acme/public");
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode("x-access-token:t0ken-9");
        let forge = serve_git_http(forge_repos, Some(format!("Basic {basic}")));
        let other = serve_git_http(other_repos, None);
        let cache = dir.path().join("cache");
        let source =
            GitActions::new(&other.url, cache.clone()).with_forge_token("t0ken-9", &forge.url);
        let cancel = CancellationToken::new();

        let on_forge = format!("{}/acme/private", forge.url);
        let folder = source
            .fetch(&on_forge, "v1", &cancel)
            .await
            .expect("from the forge");
        assert!(folder.join("action.yml").exists());
        let host = forge.url.trim_start_matches("http://").replace(':', "_");
        assert!(
            folder.starts_with(cache.join(format!("http@{host}/acme/private"))),
            "{folder:?}"
        );

        let elsewhere = format!("{}/acme/public", other.url);
        source
            .fetch(&elsewhere, "v1", &cancel)
            .await
            .expect("from the other host");
        source
            .fetch("acme/public", "v1", &cancel)
            .await
            .expect("from the base URL");
        let forge_saw = forge.seen.lock().expect("lock").clone();
        assert!(forge_saw
            .iter()
            .any(|a| a.as_deref() == Some(&format!("Basic {basic}"))));
        let other_saw = other.seen.lock().expect("lock").clone();
        assert!(!other_saw.is_empty());
        assert!(other_saw.iter().all(Option::is_none), "{other_saw:?}");

        for bad in [
            "ftp://host/a/b",
            "https://host",
            "https://us@er/a/b",
            "https://h/../b",
        ] {
            assert!(source.fetch(bad, "v1", &cancel).await.is_err(), "{bad}");
        }
    }

    /// Offline, actions come from the cache alone: what an earlier fetch brought (by the ref
    /// it was asked by), and for anything else an error that names the action.
    #[tokio::test]
    async fn offline_the_cache_answers_and_a_missing_action_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let actions = dir.path().join("actions");
        make_repo(&actions, "acme/greet");
        make_repo(&actions, "acme/other");
        let cache = dir.path().join("cache");
        let cancel = CancellationToken::new();
        let online = GitActions::new(&file_url(&actions), cache.clone());
        let fetched = online
            .fetch("acme/greet", "v1", &cancel)
            .await
            .expect("online");

        // The repositories are gone: nothing could be fetched now.
        std::fs::remove_dir_all(&actions).expect("remove");
        let offline = GitActions::new(&file_url(&actions), cache.clone()).offline(true);
        let again = offline
            .fetch("acme/greet", "v1", &cancel)
            .await
            .expect("from the cache");
        assert_eq!(again, fetched);
        // The checkout gone too: made again from the cached repository.
        std::fs::remove_dir_all(&fetched).expect("remove the checkout");
        let remade = offline
            .fetch("acme/greet", "v1", &cancel)
            .await
            .expect("checked out again");
        assert!(remade.join("action.yml").exists());

        for (repository, reference) in [("acme/greet", "main"), ("acme/other", "v1")] {
            let missing = offline.fetch(repository, reference, &cancel).await;
            let message = missing.expect_err("not cached").to_string();
            assert!(
                message.contains(&format!(
                    "the action {repository}@{reference} is not in the action cache"
                )) && message.contains("hearth actions pull"),
                "{message}"
            );
        }
    }

    /// A full commit id already checked out is taken from the cache with no git at all; an
    /// override is a folder taken as it is.
    #[tokio::test]
    async fn a_commit_checked_out_needs_no_fetch_and_an_override_no_cache() {
        let dir = tempfile::tempdir().expect("temp dir");
        let actions = dir.path().join("actions");
        make_repo(&actions, "acme/greet");
        let log = dir.path().join("argv");
        let git = recording_git(dir.path(), &log);
        let cancel = CancellationToken::new();
        let source = GitActions::new(&file_url(&actions), dir.path().join("cache")).with_git(&git);
        let by_tag = source
            .fetch("acme/greet", "v1", &cancel)
            .await
            .expect("by tag");
        let commit = by_tag
            .file_name()
            .expect("a commit folder")
            .to_string_lossy()
            .into_owned();
        std::fs::remove_file(&log).expect("reset the log");
        let by_commit = source
            .fetch("acme/greet", &commit, &cancel)
            .await
            .expect("by commit");
        assert_eq!(by_commit, by_tag);
        assert!(
            !log.exists(),
            "git ran: {:?}",
            std::fs::read_to_string(&log)
        );

        let local = dir.path().join("checkout");
        std::fs::create_dir_all(&local).expect("folder");
        let overridden = GitActions::new(&file_url(&actions), dir.path().join("cache-2"))
            .with_git(&git)
            .with_override("acme/greet@v1", local.clone());
        assert_eq!(
            overridden
                .fetch("acme/greet", "v1", &cancel)
                .await
                .expect("override"),
            local
        );
        assert!(!log.exists(), "git ran for an override");
        let gone = GitActions::new(&file_url(&actions), dir.path().join("cache-3"))
            .with_override("acme/greet@v1", dir.path().join("nowhere"));
        let message = gone
            .fetch("acme/greet", "v1", &cancel)
            .await
            .expect_err("no folder")
            .to_string();
        assert!(
            message.contains("the override of acme/greet@v1 is not a folder"),
            "{message}"
        );
    }

    /// Another process holding the repository's lock (another runner sharing the cache) holds
    /// up the fetch until it lets go; a cancelled job stops waiting.
    #[tokio::test]
    async fn fetches_wait_for_another_process_holding_the_repository() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().expect("temp dir");
        let actions = dir.path().join("actions");
        make_repo(&actions, "acme/greet");
        let cache = dir.path().join("cache");
        std::fs::create_dir_all(cache.join("acme")).expect("folder");
        // An open file description of its own, as another process would have.
        let held = std::fs::File::create(cache.join("acme/greet.lock")).expect("lock file");
        // SAFETY: flock(2) on a descriptor the test owns.
        assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);

        let source = Arc::new(GitActions::new(&file_url(&actions), cache.clone()));
        let cancel = CancellationToken::new();
        let waiting = {
            let (source, cancel) = (source.clone(), cancel.clone());
            tokio::spawn(async move { source.fetch("acme/greet", "v1", &cancel).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            !waiting.is_finished(),
            "fetched while another process held the lock"
        );
        drop(held);
        assert!(
            waiting.await.expect("joined"),
            "fetched once the lock was let go"
        );

        let held = std::fs::File::create(cache.join("acme/greet.lock")).expect("lock file");
        // SAFETY: as above.
        assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
        let cancel = CancellationToken::new();
        let stopped = {
            let (source, cancel) = (source.clone(), cancel.clone());
            tokio::spawn(async move { source.fetch("acme/greet", "v1", &cancel).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        cancel.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(2), stopped).await;
        let result = ended.expect("stopped at once").expect("joined");
        assert!(
            matches!(result, Err(ref e) if e.to_string().contains("cancelled")),
            "{result:?}"
        );
    }

    #[test]
    fn the_token_is_added_after_inherited_configuration() {
        let env = authorization_config("t", Some("2".to_owned()));
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["GIT_CONFIG_KEY_2", "GIT_CONFIG_VALUE_2", "GIT_CONFIG_COUNT"]
        );
        assert_eq!(env[2].1, "3");
        assert_eq!(authorization_config("t", None)[2].1, "1");
    }

    /// A TCP server on 127.0.0.1 that accepts connections and never answers; counts them.
    fn hung_server() -> (String, Arc<StdMutex<Vec<TcpStream>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let held = Arc::new(StdMutex::new(Vec::new()));
        let hold = held.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                hold.lock().expect("lock").push(stream);
            }
        });
        (url, held)
    }

    async fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
        let until = Instant::now() + limit;
        while !done() {
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Living processes (not zombies) whose command line mentions `needle`.
    fn processes_mentioning(needle: &str) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let path = entry.path();
            let Ok(cmdline) = std::fs::read(path.join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let zombie = std::fs::read_to_string(path.join("stat")).is_ok_and(|stat| {
                stat.rfind(')')
                    .and_then(|end| stat[end + 1..].split_whitespace().next())
                    .is_some_and(|state| matches!(state, "Z" | "X"))
            });
            if cmdline.contains(needle) && !zombie {
                found.push(cmdline);
            }
        }
        found
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_repositories_do_not_wait_for_a_hung_fetch_and_cancelling_ends_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let actions = dir.path().join("actions");
        make_repo(&actions, "acme/one");
        make_repo(&actions, "acme/two");
        let cache = dir.path().join("cache");
        let (hung_url, held) = hung_server();
        let hung = Arc::new(GitActions::new(&hung_url, cache.clone()));
        let cancel = CancellationToken::new();
        let hanging = tokio::spawn({
            let (hung, cancel) = (hung.clone(), cancel.clone());
            async move { hung.fetch("acme/hung", "v1", &cancel).await }
        });
        assert!(
            wait_for(Duration::from_secs(10), || !held
                .lock()
                .expect("lock")
                .is_empty())
            .await,
            "the hung fetch never connected"
        );

        let source = GitActions::new(&file_url(&actions), cache);
        let none = CancellationToken::new();
        let both = async {
            tokio::join!(
                source.fetch("acme/one", "v1", &none),
                source.fetch("acme/two", "v1", &none)
            )
        };
        let (one, two) = tokio::time::timeout(Duration::from_secs(20), both)
            .await
            .expect("the other fetches waited for the hung one");
        assert!(one.is_ok() && two.is_ok(), "{one:?} {two:?}");
        assert!(!hanging.is_finished());

        let port = hung_url.trim_start_matches("http://");
        assert!(!processes_mentioning(port).is_empty(), "no git is fetching");
        let cancelled_at = Instant::now();
        cancel.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(2), hanging)
            .await
            .expect("the cancelled fetch still waits")
            .expect("the task ends");
        assert_eq!(
            ended.map_err(|e| e.to_string()),
            Err("cancelled".to_owned())
        );
        assert!(cancelled_at.elapsed() < Duration::from_secs(2));
        let gone = wait_for(Duration::from_secs(1), || {
            processes_mentioning(port).is_empty()
        })
        .await;
        assert!(gone, "left behind: {:?}", processes_mentioning(port));
    }

    #[tokio::test]
    async fn a_hung_fetch_is_stopped_at_the_time_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (hung_url, _held) = hung_server();
        let source = GitActions::new(&hung_url, dir.path().join("cache"))
            .with_time_limit(Duration::from_millis(500));
        let started = Instant::now();
        let fetched = source
            .fetch("acme/hung", "v1", &CancellationToken::new())
            .await;
        assert_eq!(
            fetched.map_err(|e| e.to_string()),
            Err("git fetch did not finish within 500ms; stopped".to_owned())
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        let port = hung_url.trim_start_matches("http://");
        let gone = wait_for(Duration::from_secs(1), || {
            processes_mentioning(port).is_empty()
        })
        .await;
        assert!(gone, "left behind: {:?}", processes_mentioning(port));
    }

    #[tokio::test]
    async fn a_fetch_waiting_for_its_repository_stops_when_cancelled() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = dir.path().join("cache");
        let (hung_url, held) = hung_server();
        let source = Arc::new(GitActions::new(&hung_url, cache));
        let first_cancel = CancellationToken::new();
        let first = tokio::spawn({
            let (source, cancel) = (source.clone(), first_cancel.clone());
            async move { source.fetch("acme/hung", "v1", &cancel).await }
        });
        assert!(
            wait_for(Duration::from_secs(10), || !held
                .lock()
                .expect("lock")
                .is_empty())
            .await
        );
        // The same repository waits for the hung fetch, and stops waiting when cancelled.
        let second_cancel = CancellationToken::new();
        let second = tokio::spawn({
            let (source, cancel) = (source.clone(), second_cancel.clone());
            async move { source.fetch("acme/hung", "v1", &cancel).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!second.is_finished());
        second_cancel.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(2), second)
            .await
            .expect("still waiting")
            .expect("the task ends");
        assert_eq!(
            ended.map_err(|e| e.to_string()),
            Err("cancelled".to_owned())
        );
        first_cancel.cancel();
        let _ = first.await;
    }
}
