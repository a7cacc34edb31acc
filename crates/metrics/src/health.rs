//! What `/healthz` and `/readyz` answer.
//!
//! Live (`/healthz`): the daemon's loops make progress. The poll loop beats at the end of every
//! round (an answer, an empty answer or an error all count: a forge that is down is not the
//! runner's fault); while it waits for a free slot or for the disk guard it is not stuck
//! either. A loop that has not beaten for `stale_after` is stuck, and a restart is the fix.
//! Before the loop first runs (declaring to the forge, reaping leftovers) and after it ended
//! on purpose (draining) the daemon is live.
//!
//! Ready (`/readyz`): declared to the forge and taking jobs; not before, not while draining
//! after the first SIGTERM, not while the disk guard pauses fetching.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The answer of a probe: `Ok(what)` or `Err(why not)`, said in the body.
pub type Probe = Result<&'static str, String>;

#[derive(Debug)]
pub struct Health {
    origin: Instant,
    /// Milliseconds after `origin` of the poll loop's last beat; 0 before its first.
    last_beat: AtomicU64,
    polling: AtomicBool,
    /// Waiting for a slot or for the disk guard, which is not being stuck.
    waiting: AtomicBool,
    declared: AtomicBool,
    draining: AtomicBool,
    disk_paused: AtomicBool,
    stale_after: Duration,
}

impl Health {
    pub fn new(stale_after: Duration) -> Health {
        Health {
            origin: Instant::now(),
            last_beat: AtomicU64::new(0),
            polling: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            declared: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            disk_paused: AtomicBool::new(false),
            stale_after,
        }
    }

    /// The poll loop completed a round (now).
    pub fn beat(&self) {
        self.beat_at(Instant::now());
    }

    fn beat_at(&self, now: Instant) {
        let millis = now.saturating_duration_since(self.origin).as_millis();
        self.last_beat.store(
            u64::try_from(millis).unwrap_or(u64::MAX).max(1),
            Ordering::Relaxed,
        );
        self.polling.store(true, Ordering::Relaxed);
    }

    /// The poll loop waits for a slot or for the disk (`true`), or goes on (`false`).
    pub fn waiting(&self, waiting: bool) {
        if !waiting {
            // The wait ended now: the time it took is no sign of being stuck.
            self.beat();
        }
        self.waiting.store(waiting, Ordering::Relaxed);
    }

    /// The forge took the runner's declaration (or is too old for one).
    pub fn declared(&self) {
        self.declared.store(true, Ordering::Relaxed);
    }

    /// The first SIGTERM: no more jobs, running ones drain.
    pub fn draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// The disk guard paused (`true`) or resumed fetching.
    pub fn disk_paused(&self, paused: bool) {
        self.disk_paused.store(paused, Ordering::Relaxed);
    }

    /// `/healthz`.
    pub fn live(&self) -> Probe {
        self.live_at(Instant::now())
    }

    fn live_at(&self, now: Instant) -> Probe {
        if !self.polling.load(Ordering::Relaxed) || self.is_draining() {
            return Ok("ok");
        }
        if self.waiting.load(Ordering::Relaxed) {
            return Ok("ok: waiting for a free slot or disk space");
        }
        let last = self.origin + Duration::from_millis(self.last_beat.load(Ordering::Relaxed));
        let quiet = now.saturating_duration_since(last);
        if quiet > self.stale_after {
            return Err(format!(
                "the poll loop has not completed a round for {} s (limit {} s)",
                quiet.as_secs(),
                self.stale_after.as_secs()
            ));
        }
        Ok("ok")
    }

    /// `/readyz`.
    pub fn ready(&self) -> Probe {
        if self.is_draining() {
            return Err("shutting down: running jobs drain, no new ones are taken".into());
        }
        if !self.declared.load(Ordering::Relaxed) {
            return Err("not declared to the forge yet".into());
        }
        if self.disk_paused.load(Ordering::Relaxed) {
            return Err("paused: too little free disk space (see the log)".into());
        }
        Ok("ready")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poll_loop_that_stops_beating_is_not_live() {
        let health = Health::new(Duration::from_secs(10));
        let start = Instant::now();
        assert!(
            health.live_at(start + Duration::from_secs(60)).is_ok(),
            "not polling yet"
        );
        health.beat_at(start);
        assert!(health.live_at(start + Duration::from_secs(5)).is_ok());
        let stuck = health.live_at(start + Duration::from_secs(11));
        assert!(stuck.is_err_and(|why| why.contains("has not completed a round")));
        health.waiting(true);
        assert!(
            health.live_at(start + Duration::from_secs(60)).is_ok(),
            "waiting"
        );
        health.waiting(false);
        assert!(health.live_at(Instant::now()).is_ok());
        health.draining();
        assert!(health
            .live_at(Instant::now() + Duration::from_secs(600))
            .is_ok());
    }

    #[test]
    fn ready_once_declared_and_neither_draining_nor_paused() {
        let health = Health::new(Duration::from_secs(10));
        assert!(health
            .ready()
            .is_err_and(|why| why.contains("not declared")));
        health.declared();
        assert!(health.ready().is_ok());
        health.disk_paused(true);
        assert!(health.ready().is_err_and(|why| why.contains("disk")));
        health.disk_paused(false);
        assert!(health.ready().is_ok());
        health.draining();
        assert!(health
            .ready()
            .is_err_and(|why| why.contains("shutting down")));
    }
}
