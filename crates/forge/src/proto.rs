//! The wire messages, generated from `proto/` at build time.
//!
//! Enums stay `i32` in the messages (prost's choice), which is what the protocol needs: the
//! forge can send values this runner does not know.

/// `runner.v1`: registration, tasks, state and log reports.
pub mod runner {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/runner.v1.rs"));
}

/// `ping.v1`: the unauthenticated echo service.
pub mod ping {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/ping.v1.rs"));
}
