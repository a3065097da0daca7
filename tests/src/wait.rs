//! Bounded waiting: poll, and fail saying what never came.

use std::time::{Duration, Instant};

/// Calls `probe` every `every` until it returns `Ok`, and returns that. Once `timeout` has
/// passed, the test fails with the last `Err` (what is still missing) and, below it, `log()`
/// (what to read: a process's log, a journal).
pub async fn until<T>(
    timeout: Duration,
    every: Duration,
    log: impl Fn() -> String,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let missing = match probe().await {
            Ok(done) => return done,
            Err(missing) => missing,
        };
        assert!(
            Instant::now() < deadline,
            "{missing}: not within {timeout:?}\n{}",
            log()
        );
        tokio::time::sleep(every).await;
    }
}
