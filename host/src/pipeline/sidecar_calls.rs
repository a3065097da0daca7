//! Sidecar calls made by one delivery, with transient failures absorbed in place.
//!
//! A sidecar hiccup (a 5xx, a refused connection, a timeout) that clears within a few seconds
//! must never reach daprd as RETRY: without a resiliency policy daprd dead-letters a RETRY at
//! once. So each call is retried here with full-jitter exponential backoff (50 ms doubling, at
//! most 1 s apart) until the budget (`--sidecar-retry-budget-ms`) is spent; then the delivery
//! answers RETRY quickly, so a real outage is handed back to daprd instead of holding the
//! partition. Only `Unavailable` is retried: a conflict, a misconfiguration or a refusal would
//! fail the same way again.

use std::future::Future;
use std::hash::BuildHasher as _;
use std::time::{Duration, Instant};

use super::Pipeline;
use crate::sidecar::SidecarError;

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

impl Pipeline {
    /// Runs `call` until it succeeds, fails for good, or the retry budget is spent.
    pub(crate) async fn with_retries<T, F, Fut>(
        &self,
        what: &str,
        call: F,
    ) -> Result<T, SidecarError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SidecarError>>,
    {
        let deadline = Instant::now() + self.sidecar_retry_budget;
        let mut ceiling = FIRST_BACKOFF;
        loop {
            let error = match call().await {
                Ok(value) => return Ok(value),
                Err(e) if e.is_transient() => e,
                Err(e) => return Err(e),
            };
            let wait = full_jitter(ceiling);
            if Instant::now() + wait >= deadline || self.shutdown.is_cancelled() {
                return Err(error);
            }
            self.metrics.sidecar_retry();
            tracing::debug!("{what} failed ({error}); retrying in {wait:?}");
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.shutdown.cancelled() => return Err(error),
            }
            ceiling = (ceiling * 2).min(MAX_BACKOFF);
        }
    }
}

/// A wait drawn uniformly from `0..=ceiling`, so replicas that failed together do not retry
/// together. std's randomly keyed hasher is the randomness: nothing here needs more.
fn full_jitter(ceiling: Duration) -> Duration {
    let r = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    ceiling.mul_f64((r % 10_001) as f64 / 10_000.0)
}

#[cfg(test)]
mod tests {
    use super::full_jitter;
    use std::time::Duration;

    #[test]
    fn jitter_stays_under_the_ceiling_and_varies() {
        let ceiling = Duration::from_millis(800);
        let waits: Vec<Duration> = (0..200).map(|_| full_jitter(ceiling)).collect();
        assert!(waits.iter().all(|w| *w <= ceiling));
        assert!(waits.iter().any(|w| *w != waits[0]), "not one fixed wait");
    }
}
