//! Hearth's side of the protocol Gitea and Forgejo speak with their runners: the messages
//! (`proto`), a Connect client (`client`) and its errors (`error`), tasks as plain Rust
//! (`task`), tokens and secrets that never print themselves (`secret`), fetching them (`poller`) and reporting them (`reporter`).
//!
//! Only this crate knows protobuf and Connect; the rest of Hearth sees tasks, events and
//! typed errors.

pub mod client;
pub mod error;
pub mod observe;
pub mod poller;
pub mod proto;
pub mod reporter;
pub mod secret;
pub mod task;
mod tls_error;

pub use client::{Client, ClientOptions, Credentials, Declared};
pub use error::{ClientError, Code, RpcError};
pub use observe::{ForgeObserver, NoHooks, Observer, PollHooks};
pub use poller::{poll, poll_with, PollError, PollerOptions};
pub use reporter::journal::JOURNAL_DIR;
pub use reporter::recover::{finalize_journals, Finalized};
pub use reporter::{ReportError, ReporterOptions, TaskReporter};
pub use secret::Secret;
pub use task::{NeedInfo, TaskInfo};
