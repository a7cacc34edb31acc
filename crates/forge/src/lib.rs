//! Hearth's side of the protocol Gitea and Forgejo speak with their runners: the messages
//! (`proto`), a Connect client (`client`) and its errors (`error`).
//!
//! Only this crate knows protobuf and Connect; the rest of Hearth sees tasks, events and
//! typed errors.

pub mod client;
pub mod error;
pub mod proto;

pub use client::{Client, ClientOptions, Credentials, Declared};
pub use error::{ClientError, Code, RpcError};
pub mod reporter;
