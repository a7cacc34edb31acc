//! `uses: owner/repo[/path]@ref`: actions kept in other repositories.
//!
//! Where such an action comes from is the runner's business (GitHub, a forge's
//! `DEFAULT_ACTIONS_URL`, a mirror, a cache), so the engine asks an [`ActionSource`] for the
//! repository as a folder and then runs it as it runs a local action.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

/// Fetches action repositories.
pub trait ActionSource: Send + Sync {
    /// The repository `owner/repo` at `reference` (a tag, branch or commit), as a folder on this
    /// machine that the job's processes can read; or why it cannot be had.
    fn fetch<'a>(
        &'a self,
        repository: &'a str,
        reference: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<PathBuf, String>> + Send + 'a>>;
}

/// A `uses:` value naming an action in another repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteAction<'a> {
    /// `owner/repo`.
    pub repository: &'a str,
    /// The folder inside it (`""` for the root).
    pub path: &'a str,
    pub reference: &'a str,
}

impl<'a> RemoteAction<'a> {
    /// `owner/repo@ref` or `owner/repo/some/path@ref`; `None` for anything else (local and
    /// Docker actions, or a malformed value).
    pub fn parse(uses: &'a str) -> Option<RemoteAction<'a>> {
        if uses.starts_with("./") || uses.starts_with("docker://") {
            return None;
        }
        let (name, reference) = uses.rsplit_once('@')?;
        let mut parts = name.splitn(3, '/');
        let owner = parts.next().filter(|o| !o.is_empty())?;
        let repo = parts.next().filter(|r| !r.is_empty())?;
        let path = parts.next().unwrap_or("").trim_end_matches('/');
        if reference.is_empty() || path.split('/').any(|p| p == "..") {
            return None;
        }
        let repository = &name[..owner.len() + 1 + repo.len()];
        Some(RemoteAction {
            repository,
            path,
            reference,
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
        for other in [
            "./local",
            "docker://alpine:3",
            "actions/checkout",
            "checkout@v4",
            "a/b@",
            "a/b/../../etc@v1",
        ] {
            assert_eq!(RemoteAction::parse(other), None, "{other}");
        }
    }
}
