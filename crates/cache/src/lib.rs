//! The cache jobs reach (`actions/cache` and the toolkit's `@actions/cache`): entries scoped
//! per repository and ref, stored so that a crash never leaves half of one visible.
//!
//! `store` keeps the entries on disk or in an S3-compatible bucket and finds them as GitHub
//! does; `auth` signs each job's
//! grant (its repository, the refs it reads, the one it writes) into the token in its cache
//! URL (v1) or its runtime token (v2); `server` speaks protocol v1 and, through `v2`, protocol
//! v2.

pub mod auth;
pub mod server;
pub mod store;
pub mod v2;

pub use store::{EntryData, EntryInfo, S3Options, Scope, Store, StoreError};
