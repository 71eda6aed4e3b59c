//! The stream as the streamer's health API reports it: stale segments, a failing pipeline,
//! the slate, frozen content, many faults. Only asked while the streamer's unit runs (a unit
//! that is down is the service check's news).

use std::time::{Duration, Instant};

use ds_config::watchdog::StreamChecks;
use ds_runtime::error_chain;
use serde_json::Value;

use super::Finding;
use crate::alert::Severity;

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
}

impl StreamCheck {
    pub fn new(streamer_url: &str) -> Self {
        let client = reqwest::Client::builder().timeout(HEALTH_TIMEOUT).build().unwrap_or_default();
        StreamCheck {
            client,
            url: format!("{}/api/health/detailed", streamer_url.trim_end_matches('/')),
            unreachable_since: None,
        }
    }

    pub async fn check(&mut self, limits: &StreamChecks, now: Instant) -> StreamVerdict {
        match self.fetch().await {
            Ok(health) => {
                self.unreachable_since = None;
                judge(&health, limits)
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

    async fn fetch(&self) -> Result<Value, String> {
        let response = self.client.get(&self.url).send().await.map_err(|e| error_chain(&e.without_url()))?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        response.json::<Value>().await.map_err(|e| format!("not the health JSON: {}", error_chain(&e.without_url())))
    }
}

/// Findings from one health answer.
pub fn judge(h: &Value, limits: &StreamChecks) -> StreamVerdict {
    let mut v =
        StreamVerdict { output_dir: h["config"]["output_dir"].as_str().map(str::to_owned), ..StreamVerdict::default() };
    let state = h["current_state"].as_str().unwrap_or("unknown");
    let age = h["newest_segment_age_seconds"].as_f64();
    let since_start = h["uptime_minutes"].as_f64().unwrap_or(0.0) * 60.0;
    // A stream that never produced a segment is as stale as its uptime.
    let staleness = age.or((state == "starting").then_some(since_start));
    if let Some(age) = staleness {
        let (warn, crit) = (f64::from(limits.stale_warning_seconds), f64::from(limits.stale_critical_seconds));
        if age >= warn {
            let critical = age >= crit;
            v.restart |= critical;
            v.findings.push(Finding {
                kind: "stream:stale".into(),
                severity: if critical { Severity::Critical } else { Severity::Warning },
                title: "stream stale".into(),
                details: format!("The newest segment is {age:.0} s old (state {state}); warning at {warn:.0} s, critical at {crit:.0} s."),
            });
        }
    }
    if state == "failing" {
        v.findings.push(Finding {
            kind: "stream:failing".into(),
            severity: Severity::Critical,
            title: "stream pipeline failing".into(),
            details: format!(
                "The streamer keeps failing to rebuild its pipeline. Last error: {}",
                h["last_error"].as_str().unwrap_or("none")
            ),
        });
    }
    if state == "slate" {
        v.findings.push(Finding {
            kind: "stream:slate".into(),
            severity: Severity::Warning,
            title: "display unavailable".into(),
            details: format!(
                "The stream shows the slate: {}",
                h["source_problem"].as_str().unwrap_or("the monitor cannot be captured")
            ),
        });
    }
    if h["frozen"] == true {
        v.findings.push(Finding {
            kind: "stream:frozen".into(),
            severity: Severity::Warning,
            title: "frozen content".into(),
            details: format!(
                "The captured picture has not changed for {:.0} s: the kiosk application may have hung.",
                h["picture_unchanged_seconds"].as_f64().unwrap_or(0.0)
            ),
        });
    }
    let errors = h["recent_errors"].as_u64().unwrap_or(0);
    if errors >= u64::from(limits.errors_warning) {
        v.findings.push(Finding {
            kind: "stream:errors".into(),
            severity: Severity::Warning,
            title: "many stream errors".into(),
            details: format!(
                "{errors} pipeline faults recently; the last: {}",
                h["last_error"].as_str().unwrap_or("none")
            ),
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stale_segments_warn_then_turn_critical_and_ask_for_a_restart() {
        let limits = StreamChecks::default();
        let fresh = judge(&json!({"current_state": "streaming", "newest_segment_age_seconds": 1.5}), &limits);
        assert!(fresh.findings.is_empty() && !fresh.restart);
        let late = judge(&json!({"current_state": "restarting", "newest_segment_age_seconds": 12.0}), &limits);
        assert_eq!((late.findings[0].severity, late.restart), (Severity::Warning, false));
        let dead = judge(&json!({"current_state": "restarting", "newest_segment_age_seconds": 31.0}), &limits);
        assert_eq!((dead.findings[0].severity, dead.restart), (Severity::Critical, true));
        let never = judge(&json!({"current_state": "starting", "uptime_minutes": 1.0}), &limits);
        assert_eq!(never.findings[0].kind, "stream:stale", "no segment after a minute is stale");
    }

    #[test]
    fn slate_frozen_failing_and_errors_are_each_reported() {
        let h = json!({"current_state": "slate", "newest_segment_age_seconds": 1.0, "source_problem": "Display unavailable: no X",
            "frozen": false, "recent_errors": 7, "last_error": "stall"});
        let kinds: Vec<_> = judge(&h, &StreamChecks::default()).findings.into_iter().map(|f| f.kind).collect();
        assert_eq!(kinds, ["stream:slate", "stream:errors"]);
        let h = json!({"current_state": "failing", "newest_segment_age_seconds": 1.0, "frozen": true, "picture_unchanged_seconds": 90.0});
        let kinds: Vec<_> = judge(&h, &StreamChecks::default()).findings.into_iter().map(|f| f.kind).collect();
        assert_eq!(kinds, ["stream:failing", "stream:frozen"]);
    }
}
