//! What the client, the reporter and the poller tell an observer (the daemon's metrics and
//! health), without knowing what it does with it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::error::RpcError;

/// Told about requests and log rows. Every method does nothing by default.
pub trait ForgeObserver: Send + Sync {
    /// A request of `method` (`FetchTask`, `UpdateLog`, ...) took `elapsed`; `error` when it
    /// failed.
    fn request(&self, method: &str, elapsed: Duration, error: Option<&RpcError>) {
        let _ = (method, elapsed, error);
    }

    /// `rows` log rows were written and wait for the forge.
    fn rows_added(&self, rows: u64) {
        let _ = rows;
    }

    /// The forge acknowledged `rows` more rows.
    fn rows_acked(&self, rows: u64) {
        let _ = rows;
    }

    /// `rows` rows that waited will never be sent (their reporter was dropped unfinished).
    fn rows_dropped(&self, rows: u64) {
        let _ = rows;
    }
}

/// An optional observer (cloned with what it observes).
#[derive(Clone, Default)]
pub struct Observer(Option<Arc<dyn ForgeObserver>>);

impl Observer {
    pub fn new(observer: Arc<dyn ForgeObserver>) -> Observer {
        Observer(Some(observer))
    }

    pub(crate) fn get(&self) -> Option<&dyn ForgeObserver> {
        self.0.as_deref()
    }
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Observer(..)"
        } else {
            "Observer(none)"
        })
    }
}

/// The poll loop's hooks: a gate before each fetch, and its heartbeat.
pub trait PollHooks {
    /// Resolves when a fetch may go (a slot is held). The disk guard waits here while the
    /// disk is nearly full.
    fn before_fetch(&self) -> Pin<Box<dyn Future<Output = ()> + '_>> {
        Box::pin(async {})
    }

    /// A round ended (answered, empty, or failed).
    fn round(&self) {}

    /// The loop waits (`true`) for a free slot or the gate, or goes on (`false`).
    fn waiting(&self, waiting: bool) {
        let _ = waiting;
    }
}

/// No hooks.
pub struct NoHooks;

impl PollHooks for NoHooks {}
