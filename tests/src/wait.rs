//! Bounded waits for an event, the one way tests synchronise with the system they drive.
//!
//! A test waits for what it needs (a log line, a socket answering, a file, a status field),
//! polled every [`POLL`], never for a fixed time: a fixed sleep is either too short on a slow
//! machine (a flake) or longer than needed everywhere (wall time). On timeout the panic names
//! what was awaited, the limit, how long was waited and the condition's last answer.
//!
//! A check returns `bool`, `Option<T>` or `Result<T, E>` ([`Check`]); with `Result` the error
//! is the last reason given in the panic message.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is looked at: short next to any event a test waits for.
pub const POLL: Duration = Duration::from_millis(20);

/// What a condition answers: done with a value, or not yet with the reason.
pub trait Check {
    type Output;
    fn check(self) -> Result<Self::Output, String>;
}

impl Check for bool {
    type Output = ();
    fn check(self) -> Result<(), String> {
        if self { Ok(()) } else { Err("the condition was still false".to_owned()) }
    }
}

impl<T> Check for Option<T> {
    type Output = T;
    fn check(self) -> Result<T, String> {
        self.ok_or_else(|| "the condition was still None".to_owned())
    }
}

impl<T, E: fmt::Display> Check for Result<T, E> {
    type Output = T;
    fn check(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// A wait that ran out of time.
#[derive(Debug)]
pub struct TimedOut {
    pub what: String,
    pub limit: Duration,
    pub waited: Duration,
    /// The condition's answer at the last look.
    pub last: String,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out waiting for {} (limit {:?}, waited {:?}); last look: {}",
            self.what, self.limit, self.waited, self.last
        )
    }
}

impl std::error::Error for TimedOut {}

/// Looks at `check` every `every` until it holds, at most `limit` (it is always looked at
/// once more at the limit); the value it gave, or why it timed out.
pub fn try_wait_until_every<C: Check>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut check: impl FnMut() -> C,
) -> Result<C::Output, TimedOut> {
    let start = Instant::now();
    loop {
        let looked_at = start.elapsed();
        match check().check() {
            Ok(value) => return Ok(value),
            Err(last) if looked_at >= limit => {
                return Err(TimedOut { what: what.to_owned(), limit, waited: start.elapsed(), last });
            }
            Err(_) => std::thread::sleep(every.min(limit.saturating_sub(start.elapsed()))),
        }
    }
}

/// [`try_wait_until_every`] polling every [`POLL`].
pub fn try_wait_until<C: Check>(what: &str, limit: Duration, check: impl FnMut() -> C) -> Result<C::Output, TimedOut> {
    try_wait_until_every(what, limit, POLL, check)
}

/// Waits until `check` holds, at most `limit`, looking every [`POLL`]; its value. Panics
/// naming `what`, the limit and the last answer otherwise.
#[track_caller]
pub fn wait_until<C: Check>(what: &str, limit: Duration, check: impl FnMut() -> C) -> C::Output {
    try_wait_until(what, limit, check).unwrap_or_else(|e| panic!("{e}"))
}

/// [`wait_until`] looking every `every`, for a check that costs something (decoding a frame,
/// running a program).
#[track_caller]
pub fn wait_until_every<C: Check>(what: &str, limit: Duration, every: Duration, check: impl FnMut() -> C) -> C::Output {
    try_wait_until_every(what, limit, every, check).unwrap_or_else(|e| panic!("{e}"))
}

/// [`try_wait_until`] for async tests: awaits `check()` every [`POLL`] on tokio's clock.
pub async fn try_wait_until_async<C: Check, F: Future<Output = C>>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> F,
) -> Result<C::Output, TimedOut> {
    let start = tokio::time::Instant::now();
    loop {
        let looked_at = start.elapsed();
        match check().await.check() {
            Ok(value) => return Ok(value),
            Err(last) if looked_at >= limit => {
                return Err(TimedOut { what: what.to_owned(), limit, waited: start.elapsed(), last });
            }
            Err(_) => tokio::time::sleep(POLL.min(limit.saturating_sub(start.elapsed()))).await,
        }
    }
}

/// [`wait_until`] for async tests: awaits `check()` every [`POLL`] on tokio's clock.
pub async fn wait_until_async<C: Check, F: Future<Output = C>>(
    what: &str,
    limit: Duration,
    check: impl FnMut() -> F,
) -> C::Output {
    try_wait_until_async(what, limit, check).await.unwrap_or_else(|e| panic!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_value_once_the_condition_holds() {
        let mut n = 0;
        let got = wait_until("n to reach 3", Duration::from_secs(5), || {
            n += 1;
            (n >= 3).then_some(n)
        });
        assert_eq!(got, 3);
    }

    #[test]
    fn names_what_it_waited_for_how_long_and_the_last_reason() {
        let e = try_wait_until("the moon", Duration::from_millis(60), || Err::<(), _>("still night")).unwrap_err();
        assert!(e.waited >= Duration::from_millis(60), "{e}");
        assert!(e.waited < Duration::from_secs(2), "bounded: {e}");
        let text = e.to_string();
        assert!(text.starts_with("timed out waiting for the moon (limit 60ms, waited "), "{text}");
        assert!(text.ends_with("last look: still night"), "{text}");
    }

    #[test]
    fn a_zero_limit_looks_once() {
        let mut looks = 0;
        assert!(
            try_wait_until("nothing", Duration::ZERO, || {
                looks += 1;
                false
            })
            .is_err()
        );
        assert_eq!(looks, 1);
    }

    #[tokio::test]
    async fn the_async_wait_returns_the_value_and_is_bounded() {
        let mut n = 0;
        let got = wait_until_async("n to reach 3", Duration::from_secs(5), || {
            n += 1;
            let now = n;
            async move { (now >= 3).then_some(now) }
        })
        .await;
        assert_eq!(got, 3);
        let never = tokio::spawn(wait_until_async("never", Duration::from_millis(50), || async { false }));
        let panic = never.await.unwrap_err().into_panic();
        let text = panic.downcast_ref::<String>().unwrap();
        assert!(text.starts_with("timed out waiting for never (limit 50ms"), "{text}");
    }
}
