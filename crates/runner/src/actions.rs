//! Actions from other repositories (`uses: owner/repo@ref`), fetched with the real `git`.
//!
//! Each use fetches the reference again (one shallow fetch, as GitHub's runner downloads the
//! actions of every job), so a branch reference is never stale; what it points at is checked
//! out once per commit under `<cache>/<owner>/<repo>/<commit>` and reused from then on. The
//! base URL is GitHub's by default, or the forge's `DEFAULT_ACTIONS_URL` for its jobs.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;

use hearth_engine::job::remote::ActionSource;
use tokio::process::Command;
use tokio::sync::Mutex;

/// Fetches actions from `{base_url}/{owner}/{repo}`.
pub struct GitActions {
    base_url: String,
    cache: PathBuf,
    /// Sent as HTTP basic credentials to `base_url` (a forge's own actions may be private).
    token: Option<String>,
}

/// One fetch at a time in this process: fetches share each repository's git folder and its
/// `FETCH_HEAD`, whichever job (and so whichever `GitActions`) asks.
static FETCHING: Mutex<()> = Mutex::const_new(());

impl GitActions {
    pub fn new(base_url: &str, cache: PathBuf) -> GitActions {
        GitActions {
            base_url: base_url.trim_end_matches('/').to_owned(),
            cache,
            token: None,
        }
    }

    /// Authenticates to the base URL with `token` (the task's token, for the forge itself).
    pub fn with_token(mut self, token: &str) -> GitActions {
        if !token.is_empty() {
            self.token = Some(token.to_owned());
        }
        self
    }

    async fn fetch_checked_out(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<PathBuf, String> {
        let _one_at_a_time = FETCHING.lock().await;
        let folder = self.cache.join(repository);
        let git_dir = folder.join(".git");
        if !git_dir.exists() {
            std::fs::create_dir_all(&folder)
                .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
            git(&["init", "-q", "--bare"], Some(&git_dir), None).await?;
        }
        let url = format!("{}/{repository}", self.base_url);
        let mut fetch = Vec::new();
        let header;
        if let Some(token) = &self.token {
            use base64::Engine as _;
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
            header = format!("http.extraHeader=Authorization: Basic {basic}");
            fetch.extend(["-c", header.as_str()]);
        }
        fetch.extend([
            "fetch",
            "-q",
            "--depth",
            "1",
            "--no-tags",
            url.as_str(),
            reference,
        ]);
        git(&fetch, Some(&git_dir), None).await?;
        let commit = git(&["rev-parse", "FETCH_HEAD"], Some(&git_dir), None).await?;
        let commit = commit.trim();
        let checked_out = folder.join(commit);
        if checked_out.exists() {
            return Ok(checked_out);
        }
        // Check out beside it, then rename: a half-written folder is never taken for a whole one.
        let partial = folder.join(format!(".{commit}.partial"));
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial)
            .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
        git(
            &["checkout", "-q", "-f", commit, "--", "."],
            Some(&git_dir),
            Some(&partial),
        )
        .await?;
        std::fs::rename(&partial, &checked_out)
            .map_err(|e| format!("cannot move the action into {}: {e}", checked_out.display()))?;
        Ok(checked_out)
    }
}

impl ActionSource for GitActions {
    fn fetch<'a>(
        &'a self,
        repository: &'a str,
        reference: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<PathBuf, String>> + Send + 'a>> {
        Box::pin(self.fetch_checked_out(repository, reference))
    }
}

/// Runs `git` with `args` on `git_dir` (and `work_tree`); its standard output, or its error
/// output as the error.
async fn git(
    args: &[&str],
    git_dir: Option<&Path>,
    work_tree: Option<&Path>,
) -> Result<String, String> {
    let mut command = Command::new("git");
    if let Some(dir) = git_dir {
        command.arg("--git-dir").arg(dir);
    }
    if let Some(tree) = work_tree {
        command.arg("--work-tree").arg(tree);
    }
    let output = command
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let args: Vec<&str> = args
            .iter()
            .copied()
            .filter(|a| !a.starts_with("http.extraHeader"))
            .collect();
        return Err(format!("git {} failed: {}", args.join(" "), stderr.trim()));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
