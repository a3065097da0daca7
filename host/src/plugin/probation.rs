//! Probation of a freshly swapped-in generation: the automatic-rollback verdict.
//!
//! Contract: a generation installed by a swap is on probation for its first
//! `window_deliveries` plugin calls or `window` of wall-clock time, whichever ends first. After
//! every call it makes inside that window, once it has made at least `min_deliveries`, its
//! failure rate (trap, deadline, memory limit: a `CallError`) is compared with `failure_rate`;
//! above it, one `Alarm` is raised (at most one per generation) and the swap logic rolls back if
//! that generation still serves. A plugin verdict of `retry` or `reject` is not a failure: the
//! plugin answered. After the window nothing is judged; the generation is an ordinary one.
//!
//! The generation start-up loads is never on probation (there is nothing to roll back to).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::config::RollbackPolicy;

/// A generation on probation failed too often.
#[derive(Debug, Clone)]
pub struct Alarm {
    pub generation: u64,
    pub reason: String,
}

pub struct Probation {
    policy: RollbackPolicy,
    started: Instant,
    tripped: AtomicBool,
    alarms: UnboundedSender<Alarm>,
}

impl Probation {
    pub fn new(policy: RollbackPolicy, alarms: UnboundedSender<Alarm>) -> Probation {
        Probation {
            policy,
            started: Instant::now(),
            tripped: AtomicBool::new(false),
            alarms,
        }
    }

    /// Called after each plugin call of `generation`, with its counts including that call.
    pub fn observe(&self, generation: u64, deliveries: u64, failures: u64) {
        if self.tripped.load(Ordering::Relaxed) {
            return;
        }
        let Some(reason) = verdict(&self.policy, deliveries, failures, self.started.elapsed())
        else {
            return;
        };
        if !self.tripped.swap(true, Ordering::Relaxed) {
            // The receiver lives as long as the swap logic; if it is gone, so is the process.
            let _ = self.alarms.send(Alarm { generation, reason });
        }
    }

    /// Whether the window is still open at `deliveries`.
    pub fn active(&self, deliveries: u64) -> bool {
        !self.tripped.load(Ordering::Relaxed)
            && in_window(&self.policy, deliveries, self.started.elapsed())
    }

    pub fn policy(&self) -> &RollbackPolicy {
        &self.policy
    }

    /// When the time window closes, as seconds from now (0 once it has).
    pub fn seconds_left(&self) -> u64 {
        self.policy
            .window
            .saturating_sub(self.started.elapsed())
            .as_secs()
    }
}

fn in_window(policy: &RollbackPolicy, deliveries: u64, elapsed: Duration) -> bool {
    deliveries <= policy.window_deliveries && elapsed <= policy.window
}

/// The rollback reason, if `failures` of `deliveries` made within the window are too many.
pub fn verdict(
    policy: &RollbackPolicy,
    deliveries: u64,
    failures: u64,
    elapsed: Duration,
) -> Option<String> {
    if !in_window(policy, deliveries, elapsed) {
        return None;
    }
    // A window shorter than the minimum sample still gets judged, at its last delivery.
    if deliveries < policy.min_deliveries.min(policy.window_deliveries).max(1) {
        return None;
    }
    let rate = failures as f64 / deliveries as f64;
    (rate > policy.failure_rate).then(|| {
        format!(
            "{failures} of its first {deliveries} plugin calls failed (trap, deadline or memory limit): \
             {:.0}% is above the rollback threshold of {:.0}%",
            rate * 100.0,
            policy.failure_rate * 100.0
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RollbackPolicy {
        RollbackPolicy {
            window_deliveries: 50,
            window: Duration::from_secs(60),
            failure_rate: 0.5,
            min_deliveries: 5,
        }
    }

    #[test]
    fn no_verdict_before_the_minimum_sample() {
        assert_eq!(verdict(&policy(), 4, 4, Duration::ZERO), None);
        assert!(verdict(&policy(), 5, 5, Duration::ZERO).is_some());
    }

    #[test]
    fn the_threshold_must_be_passed_not_reached() {
        assert_eq!(verdict(&policy(), 10, 5, Duration::ZERO), None);
        let reason = verdict(&policy(), 10, 6, Duration::ZERO).unwrap();
        assert!(reason.contains("6 of its first 10"), "{reason}");
        assert!(reason.contains("60%") && reason.contains("50%"), "{reason}");
    }

    #[test]
    fn nothing_is_judged_after_the_window() {
        assert_eq!(verdict(&policy(), 51, 51, Duration::ZERO), None);
        assert_eq!(verdict(&policy(), 10, 10, Duration::from_secs(61)), None);
    }

    #[test]
    fn a_window_shorter_than_the_sample_is_judged_at_its_end() {
        let short = RollbackPolicy {
            window_deliveries: 3,
            ..policy()
        };
        assert_eq!(verdict(&short, 2, 2, Duration::ZERO), None);
        assert!(verdict(&short, 3, 2, Duration::ZERO).is_some());
    }

    #[test]
    fn one_alarm_per_generation() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let probation = Probation::new(policy(), tx);
        for n in 1..=10 {
            probation.observe(7, n, n);
        }
        let alarm = rx.try_recv().unwrap();
        assert_eq!(alarm.generation, 7);
        assert!(rx.try_recv().is_err(), "a second alarm");
        assert!(!probation.active(10));
    }
}
