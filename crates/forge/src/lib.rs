//! Hearth's side of the protocol Gitea and Forgejo speak with their runners.
pub mod proto;
