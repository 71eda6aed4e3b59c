//! Time spent in each state, from heartbeats taken at irregular moments.
//!
//! Counting samples lies: a prober that retries a failing camera slowly (StreamPulse's
//! backoff) makes a camera that was down for an hour look 91 % up. Here each heartbeat's
//! state holds from its own time until the next heartbeat of the camera, but at most
//! [`HOLD_INTERVALS`] heartbeat intervals and never past "now"; time not covered by any
//! heartbeat is *unknown* and left out of the percentages.

use ds_cameras::State;
use serde::Serialize;

pub const HOUR_MS: i64 = 3_600_000;

/// How many heartbeat intervals one heartbeat's state is assumed to hold at most. Two
/// tolerates a late probe (jitter, a slow timeout) without hiding a prober that stopped.
pub const HOLD_INTERVALS: i64 = 2;

/// Milliseconds spent in each state over some span, plus the part of the span no heartbeat
/// covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StateTime {
    pub up_ms: i64,
    pub pending_ms: i64,
    pub down_ms: i64,
    pub degraded_ms: i64,
    /// No heartbeat covers this time (the prober was not running, or the camera did not
    /// exist yet). Not part of any percentage.
    pub unknown_ms: i64,
}

impl StateTime {
    pub fn add(&mut self, state: State, ms: i64) {
        *self.slot(state) += ms;
    }

    fn slot(&mut self, state: State) -> &mut i64 {
        match state {
            State::Up => &mut self.up_ms,
            State::Pending => &mut self.pending_ms,
            State::Down => &mut self.down_ms,
            State::Degraded => &mut self.degraded_ms,
        }
    }

    pub fn get(&self, state: State) -> i64 {
        match state {
            State::Up => self.up_ms,
            State::Pending => self.pending_ms,
            State::Down => self.down_ms,
            State::Degraded => self.degraded_ms,
        }
    }

    pub fn merge(&mut self, other: &StateTime) {
        self.up_ms += other.up_ms;
        self.pending_ms += other.pending_ms;
        self.down_ms += other.down_ms;
        self.degraded_ms += other.degraded_ms;
        self.unknown_ms += other.unknown_ms;
    }

    /// Time covered by heartbeats: the denominator of the percentages.
    pub fn known_ms(&self) -> i64 {
        self.up_ms + self.pending_ms + self.down_ms + self.degraded_ms
    }

    /// Share of the known time in which the camera was UP (video arrived and was fine), in
    /// percent; `None` when no time is known.
    pub fn up_percent(&self) -> Option<f64> {
        self.percent(self.up_ms)
    }

    /// Share of the known time in which video arrived at all (UP or DEGRADED), in percent;
    /// `None` when no time is known. This is the "uptime" of a camera: a frozen picture is
    /// a problem, but the camera is reachable and streaming.
    pub fn video_percent(&self) -> Option<f64> {
        self.percent(self.up_ms + self.degraded_ms)
    }

    fn percent(&self, part: i64) -> Option<f64> {
        let known = self.known_ms();
        (known > 0).then(|| part as f64 * 100.0 / known as f64)
    }

    /// The worst state with any time in it (DOWN, then PENDING, DEGRADED, UP).
    pub fn worst(&self) -> Option<State> {
        WORST_FIRST.into_iter().find(|s| self.get(*s) > 0)
    }
}

/// States from the worst to the best, for a heartbeat bar's colour.
pub const WORST_FIRST: [State; 4] = [State::Down, State::Pending, State::Degraded, State::Up];

/// One heartbeat as the timeline needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub at: i64,
    pub state: State,
}

/// Calls `f(start, end, state)` for the part of each sample's hold that lies in
/// `[from, to)`. Samples are sorted by time and include the last one before `from` (its
/// hold may reach into the range). A sample holds until the next one, at most `cap_ms`,
/// and never past `now`.
pub fn holds(samples: &[Sample], cap_ms: i64, from: i64, to: i64, now: i64, mut f: impl FnMut(i64, i64, State)) {
    for (i, s) in samples.iter().enumerate() {
        let mut end = (s.at + cap_ms).min(now);
        if let Some(next) = samples.get(i + 1) {
            end = end.min(next.at);
        }
        let (start, end) = (s.at.max(from), end.min(to));
        if start < end {
            f(start, end, s.state);
        }
    }
}

/// Time in each state over `[from, to)`, with the uncovered rest counted as unknown.
pub fn state_time(samples: &[Sample], cap_ms: i64, from: i64, to: i64, now: i64) -> StateTime {
    let mut t = StateTime::default();
    holds(samples, cap_ms, from, to, now, |s, e, state| t.add(state, e - s));
    t.unknown_ms = (to - from).max(0) - t.known_ms();
    t
}

/// Splits `[start, end)` at the borders of buckets of `len` ms counted from `origin`, calling
/// `f(bucket_index, piece_start, piece_end)`.
pub fn split(start: i64, end: i64, origin: i64, len: i64, mut f: impl FnMut(i64, i64, i64)) {
    let mut s = start;
    while s < end {
        let idx = (s - origin).div_euclid(len);
        let e = end.min(origin + (idx + 1) * len);
        f(idx, s, e);
        s = e;
    }
}

/// The start of the UTC hour holding `ms`.
pub fn floor_hour(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;
    fn sample(at_s: i64, state: State) -> Sample {
        Sample { at: at_s * S, state }
    }

    #[test]
    fn irregular_samples_count_time_not_samples() {
        // Ten UP probes in one minute, then one DOWN probe that holds for an hour (the
        // camera's interval allows it), then the probe that found it back up.
        let mut samples: Vec<_> = (0..10).map(|i| sample(i * 6, State::Up)).collect();
        samples.push(sample(60, State::Down));
        samples.push(sample(3660, State::Up));
        let t = state_time(&samples, 7200 * S, 0, 3660 * S, 3660 * S);
        assert_eq!(t.up_ms, 60 * S);
        assert_eq!(t.down_ms, 3600 * S);
        assert_eq!(t.unknown_ms, 0);
        let pct = t.video_percent().unwrap();
        assert!((pct - 1.639).abs() < 0.01, "{pct}");
    }

    #[test]
    fn a_gap_longer_than_the_cap_is_unknown() {
        let samples = [sample(0, State::Up), sample(15, State::Up), sample(615, State::Down)];
        // 15 s interval, cap 30 s: the second UP holds 30 s, then 570 s unknown, then DOWN
        // until now (15 s later).
        let t = state_time(&samples, 30 * S, 0, 630 * S, 630 * S);
        assert_eq!(t, StateTime { up_ms: 45 * S, down_ms: 15 * S, unknown_ms: 570 * S, ..StateTime::default() });
        assert!((t.up_percent().unwrap() - 75.0).abs() < 1e-9);
    }

    #[test]
    fn a_sample_before_the_range_reaches_into_it_and_now_bounds_the_last() {
        let samples = [sample(-20, State::Down), sample(10, State::Up)];
        let t = state_time(&samples, 30 * S, 0, 100 * S, 25 * S);
        assert_eq!(t.down_ms, 10 * S);
        assert_eq!(t.up_ms, 15 * S);
        assert_eq!(t.unknown_ms, 75 * S);
        assert_eq!(t.worst(), Some(State::Down));
        assert_eq!(StateTime::default().video_percent(), None);
    }

    #[test]
    fn split_cuts_at_bucket_borders() {
        let mut pieces = Vec::new();
        split(-5, 25, 0, 10, |i, s, e| pieces.push((i, s, e)));
        assert_eq!(pieces, [(-1, -5, 0), (0, 0, 10), (1, 10, 20), (2, 20, 25)]);
        assert_eq!(floor_hour(HOUR_MS + 5), HOUR_MS);
        assert_eq!(floor_hour(-1), -HOUR_MS);
    }
}
