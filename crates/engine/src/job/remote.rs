//! `uses: owner/repo[/path]@ref` (or `https://host/owner/repo[/path]@ref`): actions kept in
//! other repositories.
//!
//! Where such an action comes from is the runner's business (GitHub, a forge's
//! `DEFAULT_ACTIONS_URL`, a mirror, a cache), so the engine asks an [`ActionSource`] for the
//! repository as a folder and then runs it as it runs a local action.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use hearth_backend::CancellationToken;
use hearth_workflow::model::RemoteActionRef;

/// Why an action source could not give a repository (its own error, kept as the source of
/// the engine's).
pub type FetchError = Box<dyn std::error::Error + Send + Sync>;

/// Fetches action repositories.
pub trait ActionSource: Send + Sync {
    /// The repository `owner/repo` (or a repository's URL, `https://host/owner/repo`) at
    /// `reference` (a tag, branch or commit), as a folder on this
    /// machine that the job's processes can read; or why it cannot be had. Once `cancel` is
    /// cancelled (the job is), the fetch ends at once with an error and leaves nothing running.
    fn fetch<'a>(
        &'a self,
        repository: &'a str,
        reference: &'a str,
        cancel: &'a CancellationToken,
    ) -> Pin<Box<dyn Future<Output = Result<PathBuf, FetchError>> + Send + 'a>>;
}

/// A `uses:` value naming an action in another repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteAction<'a> {
    /// `owner/repo`, or the repository's URL (`https://host/owner/repo`).
    pub repository: &'a str,
    /// The folder inside it, relative (`""` for the root).
    pub path: &'a str,
    pub reference: &'a str,
}

impl<'a> RemoteAction<'a> {
    /// `owner/repo@ref` or `owner/repo/some/path@ref`, each also after `https://host/`; `None`
    /// for anything else (local and
    /// Docker actions, or a malformed value). The workflow's validation reports malformed values;
    /// they are refused here again because the parts become a folder and `git` arguments.
    pub fn parse(uses: &'a str) -> Option<RemoteAction<'a>> {
        if uses.starts_with("./") || uses.starts_with("docker://") {
            return None;
        }
        let checked = RemoteActionRef::parse(uses).ok()?;
        let origin = match checked.origin {
            "" => 0,
            origin => origin.len() + 1,
        };
        let repository = &uses[..origin + checked.owner.len() + 1 + checked.repo.len()];
        Some(RemoteAction {
            repository,
            path: checked.path,
            reference: checked.reference,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_values_are_split() {
        assert_eq!(
            RemoteAction::parse("actions/checkout@v4"),
            Some(RemoteAction {
                repository: "actions/checkout",
                path: "",
                reference: "v4"
            })
        );
        assert_eq!(
            RemoteAction::parse("acme/tools/lint/rust@main"),
            Some(RemoteAction {
                repository: "acme/tools",
                path: "lint/rust",
                reference: "main"
            })
        );
        assert_eq!(
            RemoteAction::parse("https://git.example.com/acme/tools/lint@v1"),
            Some(RemoteAction {
                repository: "https://git.example.com/acme/tools",
                path: "lint",
                reference: "v1"
            })
        );
        for other in [
            "ftp://git.example.com/acme/tools@v1",
            "./local",
            "docker://alpine:3",
            "actions/checkout",
            "checkout@v4",
            "a/b@",
            "a/b/../../etc@v1",
            // Folders outside the action cache, and refs `git fetch` would take for options.
            "../..@v1",
            "acme/..@v1",
            "a/b@--upload-pack=touch x",
            "a/b@-v1",
            "a/b@main:refs/heads/x",
        ] {
            assert_eq!(RemoteAction::parse(other), None, "{other}");
        }
        // An absolute path would replace the fetched folder when joined to it.
        assert_eq!(
            RemoteAction::parse("acme/tools//lint@v1").map(|r| r.path),
            Some("lint")
        );
    }
}
