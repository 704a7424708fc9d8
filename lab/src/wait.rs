//! Waiting on conditions, never on fixed sleeps: poll at short, growing
//! intervals (10 ms up to 200 ms) until the condition holds or the timeout
//! passes, and then fail with what was last observed.

use std::thread;
use std::time::{Duration, Instant};

/// A wait that ran out of time.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {:.1}s waiting for {desc}; last seen: {last}", .timeout.as_secs_f64())]
pub struct WaitTimeout {
    pub desc: String,
    pub timeout: Duration,
    pub last: String,
}

/// What a polled condition returns: `Some(v)` / `Ok(v)` when it holds;
/// `None` or `Err(e)` when not yet, `e` being what was seen (reported on
/// timeout).
pub trait Check<T> {
    fn check(self) -> Result<T, String>;
}

impl<T> Check<T> for Option<T> {
    fn check(self) -> Result<T, String> {
        self.ok_or_else(|| "condition not met".to_string())
    }
}

impl<T, E: std::fmt::Display> Check<T> for Result<T, E> {
    fn check(self) -> Result<T, String> {
        self.map_err(|e| format!("{e:#}"))
    }
}

/// Polls `check` until it returns `Some`/`Ok`, at most `timeout`, and returns
/// that value. `None`/`Err(seen)` means "not yet"; the last `seen` is in the
/// timeout error.
pub fn wait_until<T, C: Check<T>>(
    desc: &str,
    timeout: Duration,
    mut check: impl FnMut() -> C,
) -> Result<T, WaitTimeout> {
    let t0 = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        let last = match check().check() {
            Ok(v) => return Ok(v),
            Err(seen) => seen,
        };
        let left = timeout.saturating_sub(t0.elapsed());
        if left.is_zero() {
            return Err(WaitTimeout {
                desc: desc.to_string(),
                timeout,
                last,
            });
        }
        thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// Polls a boolean condition until it holds, at most `timeout`.
pub fn wait_for(
    desc: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    wait_until(desc, timeout, || cond().then_some(()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_out_with_last_observation() {
        let mut n = 0;
        let e = wait_until::<(), _>("n to reach 1000", Duration::from_millis(60), || {
            n += 1;
            Err(format!("n = {n}"))
        })
        .unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("timed out after 0.1s waiting for n to reach 1000; last seen: n = "),
            "{s}"
        );
    }

    #[test]
    fn returns_as_soon_as_true() {
        let t0 = Instant::now();
        let mut n = 0;
        wait_for("third poll", Duration::from_secs(5), || {
            n += 1;
            n == 3
        })
        .unwrap();
        assert!(t0.elapsed() < Duration::from_millis(500));
        let v = wait_until("an Option", Duration::from_secs(1), || Some(7)).unwrap();
        assert_eq!(v, 7);
        let e = wait_until("never", Duration::from_millis(20), || None::<u8>).unwrap_err();
        assert!(
            e.to_string().ends_with("last seen: condition not met"),
            "{e}"
        );
    }
}
