//! Injected faults: failed requests and slow responses. (Taking the whole server down is
//! [`crate::FakeForge::go_down`]; partial acks are [`crate::FakeForge::set_log_ack_limit`].)

use std::collections::HashMap;
use std::time::Duration;

use crate::method::Method;

/// Answer requests with a bare HTTP error (no Connect body, like a proxy or a crashed
/// backend): 500 reads as `unknown`, 502/503/504 as `unavailable` on the client side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub http_status: u16,
    /// How many requests get it.
    pub count: u32,
    /// Only requests of this method (others pass and do not use up the count).
    pub method: Option<Method>,
    pub timing: FaultTiming,
}

/// Whether the forge did the work before failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTiming {
    /// The request is dropped unhandled.
    BeforeHandling,
    /// The request is handled (rows appended, task picked ...) and the answer lost: the
    /// runner must retry idempotently.
    AfterHandling,
}

impl Fault {
    /// One request answered with `http_status`, unhandled.
    pub fn http(http_status: u16) -> Self {
        Fault {
            http_status,
            count: 1,
            method: None,
            timing: FaultTiming::BeforeHandling,
        }
    }

    pub fn times(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    pub fn only(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    pub fn after_handling(mut self) -> Self {
        self.timing = FaultTiming::AfterHandling;
        self
    }
}

#[derive(Default)]
pub(crate) struct Faults {
    pending: Vec<Fault>,
    delay_all: Duration,
    delay_by_method: HashMap<Method, Duration>,
}

impl Faults {
    pub fn add(&mut self, fault: Fault) {
        if fault.count > 0 {
            self.pending.push(fault);
        }
    }

    pub fn clear(&mut self) {
        *self = Faults::default();
    }

    /// The fault a request of `method` gets, if any (the oldest matching one), used up by one.
    pub fn take(&mut self, method: Method) -> Option<Fault> {
        let index = self
            .pending
            .iter()
            .position(|f| f.method.is_none_or(|m| m == method))?;
        let fault = self.pending[index];
        self.pending[index].count -= 1;
        if self.pending[index].count == 0 {
            self.pending.remove(index);
        }
        Some(fault)
    }

    pub fn set_delay(&mut self, method: Option<Method>, delay: Duration) {
        match method {
            Some(method) => {
                self.delay_by_method.insert(method, delay);
            }
            None => self.delay_all = delay,
        }
    }

    /// How long to hold a response of `method`: its own delay if set, else the general one.
    pub fn delay(&self, method: Method) -> Duration {
        self.delay_by_method
            .get(&method)
            .copied()
            .unwrap_or(self.delay_all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_faults_skip_other_methods_and_count_down() {
        let mut faults = Faults::default();
        faults.add(Fault::http(503).times(2).only(Method::UpdateLog));
        assert_eq!(faults.take(Method::FetchTask), None);
        assert_eq!(
            faults.take(Method::UpdateLog).map(|f| f.http_status),
            Some(503)
        );
        assert!(faults.take(Method::UpdateLog).is_some());
        assert_eq!(faults.take(Method::UpdateLog), None);
    }
}
