//! The stream as the streamer's health API reports it: stale segments, a failing pipeline,
//! the slate, frozen content, many faults. Only asked while the streamer's unit runs (a unit
//! that is down is the service check's news).

use std::time::{Duration, Instant};

use ds_config::watchdog::StreamChecks;
use ds_runtime::error_chain;
use ds_wire::health::{DetailedReport, State};

use super::Finding;
use crate::alert::Severity;

/// Every kind of finding this check raises.
pub const STREAM_KINDS: &[&str] =
    &["stream:unreachable", "stream:stale", "stream:failing", "stream:slate", "stream:frozen", "stream:errors"];

/// How long one health request may take.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

/// What one look at the stream found, and whether the streamer should be restarted.
#[derive(Debug, Default)]
pub struct StreamVerdict {
    pub findings: Vec<Finding>,
    /// The stream is critically stale (or the API gone for the critical time).
    pub restart: bool,
    /// Where the streamer writes its segments, for the disk check.
    pub output_dir: Option<String>,
}

#[derive(Debug)]
pub struct StreamCheck {
    client: reqwest::Client,
    url: String,
    unreachable_since: Option<Instant>,
    /// Since when the answers have named no segment at all.
    no_segment_since: Option<Instant>,
    /// The streamer unit's InvocationID at the last look: a new process starts afresh.
    invocation: String,
}

impl StreamCheck {
    pub fn new(streamer_url: &str) -> Self {
        let client = reqwest::Client::builder().timeout(HEALTH_TIMEOUT).build().unwrap_or_default();
        StreamCheck {
            client,
            url: format!("{}/api/health/detailed", streamer_url.trim_end_matches('/')),
            unreachable_since: None,
            no_segment_since: None,
            invocation: String::new(),
        }
    }

    /// Looks at the stream of the streamer unit's run `invocation` (its InvocationID): the
    /// times a previous run was unreachable or without segments do not count against a new one.
    pub async fn check(&mut self, limits: &StreamChecks, now: Instant, invocation: &str) -> StreamVerdict {
        if self.invocation != invocation {
            invocation.clone_into(&mut self.invocation);
            self.unreachable_since = None;
            self.no_segment_since = None;
        }
        match self.fetch().await {
            Ok(health) => {
                self.unreachable_since = None;
                let no_segment = health.health.newest_segment_age_seconds.is_none();
                let since = if no_segment { Some(*self.no_segment_since.get_or_insert(now)) } else { None };
                self.no_segment_since = since;
                judge(&health, limits, since.map(|t| now.duration_since(t)))
            }
            Err(e) => {
                let since = *self.unreachable_since.get_or_insert(now);
                let down_for = now.duration_since(since);
                let critical = down_for >= Duration::from_secs(limits.stale_critical_seconds.into());
                StreamVerdict {
                    findings: vec![Finding {
                        kind: "stream:unreachable".into(),
                        severity: if critical { Severity::Critical } else { Severity::Warning },
                        title: "streamer health API unreachable".into(),
                        details: format!("{} has not answered for {} s: {e}", self.url, down_for.as_secs()),
                    }],
                    restart: critical,
                    output_dir: None,
                }
            }
        }
    }

    async fn fetch(&self) -> Result<DetailedReport, String> {
        let response = self.client.get(&self.url).send().await.map_err(|e| error_chain(&e.without_url()))?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        response
            .json::<DetailedReport>()
            .await
            .map_err(|e| format!("not the health JSON: {}", error_chain(&e.without_url())))
    }
}

/// Findings from one health answer. `no_segment_for` is how long the answers have named no
/// segment at all (`None` while there is one).
pub fn judge(d: &DetailedReport, limits: &StreamChecks, no_segment_for: Option<Duration>) -> StreamVerdict {
    let mut v = StreamVerdict { output_dir: Some(d.config.output_dir.clone()), ..StreamVerdict::default() };
    let h = &d.health;
    let state = h.current_state.as_str();
    let (warn, crit) = (f64::from(limits.stale_warning_seconds), f64::from(limits.stale_critical_seconds));
    let staleness = match h.newest_segment_age_seconds {
        Some(age) => Some((age, format!("The newest segment is {age:.0} s old"))),
        None => {
            // No segment at all: a stream that never produced one is as stale as its uptime;
            // one whose segments went away, as long as the watchdog has seen none.
            let seen = no_segment_for.map_or(0.0, |d| d.as_secs_f64());
            let since_start = if h.current_state == State::Starting { h.uptime_minutes * 60.0 } else { 0.0 };
            let none_for = seen.max(since_start);
            Some((none_for, format!("There has been no segment for {none_for:.0} s")))
        }
    };
    if let Some((age, said)) = staleness.filter(|(age, _)| *age >= warn) {
        let critical = age >= crit;
        v.restart |= critical;
        let active = if h.stream_active { "" } else { ", not streaming" };
        v.findings.push(Finding {
            kind: "stream:stale".into(),
            severity: if critical { Severity::Critical } else { Severity::Warning },
            title: "stream stale".into(),
            details: format!("{said} (state {state}{active}); warning at {warn:.0} s, critical at {crit:.0} s."),
        });
    }
    if h.current_state == State::Failing {
        // The streamer gave up rebuilding its pipeline: a new process is the next thing to try,
        // once it has been failing for the critical time.
        v.restart |= h.state_for_seconds >= crit;
        v.findings.push(Finding {
            kind: "stream:failing".into(),
            severity: Severity::Critical,
            title: "stream pipeline failing".into(),
            details: format!(
                "The streamer keeps failing to rebuild its pipeline. Last error: {}",
                h.last_error.as_deref().unwrap_or("none")
            ),
        });
    }
    if h.current_state == State::Slate {
        v.findings.push(Finding {
            kind: "stream:slate".into(),
            severity: Severity::Warning,
            title: "display unavailable".into(),
            details: format!(
                "The stream shows the slate: {}",
                h.source_problem.as_deref().unwrap_or("the monitor cannot be captured")
            ),
        });
    }
    if h.frozen {
        v.findings.push(Finding {
            kind: "stream:frozen".into(),
            severity: Severity::Warning,
            title: "frozen content".into(),
            details: format!(
                "The captured picture has not changed for {:.0} s: the kiosk application may have hung.",
                h.picture_unchanged_seconds.unwrap_or(0.0)
            ),
        });
    }
    let errors = h.recent_errors;
    if u64::try_from(errors).unwrap_or(u64::MAX) >= u64::from(limits.errors_warning) {
        v.findings.push(Finding {
            kind: "stream:errors".into(),
            severity: Severity::Warning,
            title: "many stream errors".into(),
            details: format!(
                "{errors} pipeline faults recently; the last: {}",
                h.last_error.as_deref().unwrap_or("none")
            ),
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use ds_wire::health::{ConfigSummary, HealthReport, Verdict};

    /// A report from a streamer that has just started and knows nothing yet; each test sets
    /// what it is about.
    fn report(state: State, age: Option<f64>) -> DetailedReport {
        DetailedReport {
            health: HealthReport {
                health: Verdict::Healthy,
                monitoring_active: true,
                current_state: state,
                state_for_seconds: 0.0,
                stream_active: true,
                total_errors: 0,
                recent_errors: 0,
                restart_count: 0,
                last_error: None,
                uptime_minutes: 0.0,
                memory_usage_mb: None,
                system_memory_percent: None,
                fps: None,
                bitrate_kbps: None,
                newest_segment_age_seconds: age,
                encoder: None,
                monitor: None,
                source_problem: None,
                frozen: false,
                picture_unchanged_seconds: None,
                disk_pressure: None,
                recent_restarts: Vec::new(),
            },
            started_at: jiff::Timestamp::UNIX_EPOCH,
            worker_pid: None,
            encoder_choice: None,
            playlist: None,
            system: None,
            config: ConfigSummary {
                width: 1280,
                height: 720,
                fps: 15,
                bitrate_kbps: 2000,
                keyframe_interval: 30,
                segment_duration: 2,
                max_segments: 6,
                output_dir: "/var/lib/desktop-streamer/hls".into(),
            },
            webrtc: Default::default(),
        }
    }

    #[test]
    fn stale_segments_warn_then_turn_critical_and_ask_for_a_restart() {
        let limits = StreamChecks::default();
        let fresh = judge(&report(State::Streaming, Some(1.5)), &limits, None);
        assert!(fresh.findings.is_empty() && !fresh.restart);
        assert_eq!(fresh.output_dir.as_deref(), Some("/var/lib/desktop-streamer/hls"), "for the disk check");
        let late = judge(&report(State::Restarting, Some(12.0)), &limits, None);
        assert_eq!((late.findings[0].severity, late.restart), (Severity::Warning, false));
        let mut dead = report(State::Restarting, Some(31.0));
        dead.health.stream_active = false;
        let dead = judge(&dead, &limits, None);
        assert_eq!((dead.findings[0].severity, dead.restart), (Severity::Critical, true));
        assert!(dead.findings[0].details.contains("(state restarting, not streaming)"), "{}", dead.findings[0].details);
        let mut never = report(State::Starting, None);
        never.health.uptime_minutes = 1.0;
        let never = judge(&never, &limits, Some(Duration::ZERO));
        assert_eq!(never.findings[0].kind, "stream:stale", "no segment after a minute is stale");
    }

    #[test]
    fn segments_gone_while_streaming_count_from_when_the_watchdog_saw_none() {
        let limits = StreamChecks::default();
        let mut h = report(State::Streaming, None);
        h.health.uptime_minutes = 60.0;
        h.health.stream_active = false;
        let s = Duration::from_secs;
        assert!(judge(&h, &limits, Some(s(0))).findings.is_empty(), "not stale the moment they went");
        let warned = judge(&h, &limits, Some(s(10)));
        assert_eq!((warned.findings[0].severity, warned.restart), (Severity::Warning, false));
        assert!(warned.findings[0].details.starts_with("There has been no segment for 10 s"), "{:?}", warned.findings);
        let critical = judge(&h, &limits, Some(s(30)));
        assert_eq!((critical.findings[0].severity, critical.restart), (Severity::Critical, true));
    }

    /// A new run of the streamer's unit is not blamed for the old run's silence: its time
    /// unreachable starts again (port 1: nothing listens, the refusal is immediate).
    #[tokio::test]
    async fn a_new_invocation_starts_its_unreachable_time_afresh() {
        let limits = StreamChecks::default();
        let mut check = StreamCheck::new("http://127.0.0.1:1");
        let t0 = Instant::now();
        let first = check.check(&limits, t0, "run-a").await;
        assert_eq!((first.findings[0].severity, first.restart), (Severity::Warning, false));
        let later = check.check(&limits, t0 + Duration::from_secs(40), "run-a").await;
        assert_eq!((later.findings[0].severity, later.restart), (Severity::Critical, true), "40 s silent");
        let new_run = check.check(&limits, t0 + Duration::from_secs(41), "run-b").await;
        assert_eq!(
            (new_run.findings[0].severity, new_run.restart),
            (Severity::Warning, false),
            "{:?}",
            new_run.findings
        );
    }

    #[test]
    fn a_pipeline_failing_for_the_critical_time_asks_for_a_restart() {
        let limits = StreamChecks::default();
        let h = |for_s: f64| {
            let mut h = report(State::Failing, Some(1.0));
            h.health.state_for_seconds = for_s;
            h
        };
        assert!(!judge(&h(5.0), &limits, None).restart);
        let v = judge(&h(30.0), &limits, None);
        assert!(v.restart);
        assert_eq!(v.findings[0].kind, "stream:failing");
    }

    #[test]
    fn slate_frozen_failing_and_errors_are_each_reported() {
        let mut h = report(State::Slate, Some(1.0));
        h.health.source_problem = Some("Display unavailable: no X".into());
        h.health.recent_errors = 7;
        h.health.last_error = Some("stall".into());
        let kinds: Vec<_> = judge(&h, &StreamChecks::default(), None).findings.into_iter().map(|f| f.kind).collect();
        assert_eq!(kinds, ["stream:slate", "stream:errors"]);
        let mut h = report(State::Failing, Some(1.0));
        h.health.frozen = true;
        h.health.picture_unchanged_seconds = Some(90.0);
        let kinds: Vec<_> = judge(&h, &StreamChecks::default(), None).findings.into_iter().map(|f| f.kind).collect();
        assert_eq!(kinds, ["stream:failing", "stream:frozen"]);
    }
}
