//! What the binary asks of the machine: its host name and the interrupt signals.

use tokio::task::JoinHandle;

/// The machine's host name, `hearth` if it has none: the default runner name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "hearth".to_owned())
}

/// Calls `on_signal(n)` for the n-th SIGINT or SIGTERM (from 1), until the task is aborted.
/// Each command decides what a first, second and third signal mean.
pub fn on_interrupts(mut on_signal: impl FnMut(u32) + Send + 'static) -> JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        let mut received = 0;
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            received += 1;
            on_signal(received);
        }
    })
}
