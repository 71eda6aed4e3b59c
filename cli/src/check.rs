//! `check`: a Nagios/Icinga plugin. One line, `DESKTOP-STREAMER STATE - text | perfdata`, and
//! the plugin exit codes, so existing monitoring can watch a kiosk without knowing its API.
//! The verdict is a pure function of what was observed, so its rules are tested without a kiosk.

use std::fmt;
use std::process::ExitCode;

use ds_wire::health::{HealthReport, State, Verdict as Health};
use ds_wire::status::{DashboardStatus, UnitStatus};
use serde::Serialize;
use serde_json::{Value, json};

/// The streamer's own unit: not active is critical, other units not active only a warning.
pub const STREAMER_UNIT: &str = "desktop-streamer.service";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warning => "WARNING",
            Level::Critical => "CRITICAL",
            Level::Unknown => "UNKNOWN",
        }
    }

    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}

/// Segment age thresholds in seconds.
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    pub warning: f64,
    pub critical: f64,
}

/// What could be learnt about the kiosk: from the dashboard's `/api/status`, or, with the
/// dashboard down, from the streamer's own `/api/health` (then no unit states).
#[derive(Debug)]
pub struct Observed<'a> {
    /// The streamer's health report; `None` with the reason when it could not be had.
    pub health: Result<&'a HealthReport, String>,
    /// The watched units' states; `None` when systemd could not be asked.
    pub services: Result<&'a [UnitStatus], String>,
}

impl<'a> Observed<'a> {
    /// From the dashboard's `/api/status` document.
    pub fn from_status(status: &'a DashboardStatus) -> Observed<'a> {
        let reason = |part: &str| {
            status.unreachable.iter().find(|u| u.part == part).map(|u| format!("{part} unreachable: {}", u.error))
        };
        let health = match &status.health {
            None => Err(reason("streamer").unwrap_or_else(|| "the streamer reported no health".into())),
            Some(h) => Ok(h),
        };
        let services = match reason("systemd") {
            None => Ok(status.services.as_slice()),
            Some(why) => Err(why),
        };
        Observed { health, services }
    }
}

/// One performance figure: `label=value[unit];warning;critical;`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Perf {
    pub label: &'static str,
    pub value: f64,
    /// Decimal places in the plugin line.
    #[serde(skip)]
    pub precision: usize,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub unit: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critical: Option<f64>,
}

impl Perf {
    fn new(label: &'static str, value: f64, precision: usize) -> Perf {
        Perf { label, value, precision, unit: "", warning: None, critical: None }
    }
}

impl fmt::Display for Perf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = |l: Option<f64>| l.map(|v| v.to_string()).unwrap_or_default();
        write!(
            f,
            "{}={:.*}{};{};{};",
            self.label,
            self.precision,
            self.value,
            self.unit,
            limit(self.warning),
            limit(self.critical)
        )
    }
}

/// A problem found, with the level it raises the verdict to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Problem {
    pub level: Level,
    pub text: String,
}

#[derive(Debug)]
pub struct Verdict {
    pub level: Level,
    /// The problems, worst first, and the summary after them.
    pub text: String,
    pub problems: Vec<Problem>,
    pub perfdata: Vec<Perf>,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DESKTOP-STREAMER {} - {}", self.level.as_str(), self.text)?;
        for (i, perf) in self.perfdata.iter().enumerate() {
            write!(f, "{}{perf}", if i == 0 { " | " } else { " " })?;
        }
        Ok(())
    }
}

impl Verdict {
    pub fn unknown(text: String) -> Verdict {
        let problems = vec![Problem { level: Level::Unknown, text: text.clone() }];
        Verdict { level: Level::Unknown, text, problems, perfdata: Vec::new() }
    }

    /// The verdict for scripts (`check --json`): what the plugin line says, in fields.
    pub fn to_json(&self) -> Value {
        json!({
            "state": self.level.as_str(),
            "exit_code": self.level as u8,
            "text": self.text,
            "problems": self.problems,
            "perfdata": self.perfdata,
        })
    }
}

/// The rules: critical when the stream is not live or its unit is not active, warning when it
/// is live but something an operator should look at is off.
pub fn evaluate(seen: &Observed<'_>, limits: Thresholds) -> Verdict {
    let mut problems: Vec<Problem> = Vec::new();
    let mut problem = |level, text| problems.push(Problem { level, text });
    match &seen.services {
        Ok(units) => {
            for u in *units {
                let (name, state) = (&u.name, &u.active_state);
                if state != "active" {
                    let level = if name == STREAMER_UNIT { Level::Critical } else { Level::Warning };
                    problem(level, format!("{name} is {state}"));
                }
            }
        }
        Err(reason) => problem(Level::Warning, reason.clone()),
    }
    let mut perf = Vec::new();
    let mut summary = String::from("no stream");
    match &seen.health {
        Err(reason) => problem(Level::Critical, reason.clone()),
        Ok(h) => {
            let verdict = h.health.as_str();
            let state = h.current_state.as_str();
            let fps = h.fps;
            let age = crate::status::age(h.newest_segment_age_seconds);
            summary = format!("{state}, {verdict}");
            if let Some(fps) = fps {
                summary.push_str(&format!(", {fps:.1} fps"));
                perf.push(Perf::new("fps", fps, 1));
            }
            if let Some(kbps) = h.bitrate_kbps {
                perf.push(Perf::new("bitrate_kbps", kbps, 0));
            }
            if let Some(age) = age {
                summary.push_str(&format!(", newest segment {age:.1} s old"));
                perf.push(Perf {
                    unit: "s",
                    warning: Some(limits.warning),
                    critical: Some(limits.critical),
                    ..Perf::new("segment_age", age, 1)
                });
            }
            perf.push(Perf::new("restarts", h.restart_count as f64, 0));
            if h.health == Health::Unhealthy || !h.stream_active {
                problem(Level::Critical, format!("stream not live ({state})"));
            } else if h.health == Health::Degraded {
                problem(Level::Warning, "stream degraded".into());
            }
            match age {
                Some(a) if a > limits.critical => {
                    problem(Level::Critical, format!("newest segment {a:.1} s old (> {} s)", limits.critical));
                }
                Some(a) if a > limits.warning => {
                    problem(Level::Warning, format!("newest segment {a:.1} s old (> {} s)", limits.warning));
                }
                Some(_) => {}
                None => problem(Level::Critical, "no segment yet".into()),
            }
            if h.current_state == State::Slate {
                let why = h.source_problem.as_deref().unwrap_or("monitor unavailable");
                problem(Level::Warning, format!("showing the slate: {why}"));
            }
            if h.frozen {
                problem(Level::Warning, "picture frozen".into());
            }
            if let Some(d) = &h.disk_pressure {
                problem(Level::Warning, format!("disk pressure: {d}"));
            }
        }
    }
    problems.sort_by_key(|p| std::cmp::Reverse(p.level));
    let level = problems.first().map_or(Level::Ok, |p| p.level);
    let text = if problems.is_empty() {
        summary
    } else {
        let list: Vec<&str> = problems.iter().map(|p| p.text.as_str()).collect();
        format!("{} ({summary})", list.join("; "))
    };
    Verdict { level, text, problems, perfdata: perf }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const LIMITS: Thresholds = Thresholds { warning: 10.0, critical: 30.0 };

    fn healthy() -> HealthReport {
        serde_json::from_value(json!({"health": "healthy", "monitoring_active": true, "current_state": "streaming",
            "state_for_seconds": 60.0, "stream_active": true, "total_errors": 0, "recent_errors": 0,
            "restart_count": 0, "uptime_minutes": 1.0, "fps": 15.0, "bitrate_kbps": 2000.0,
            "newest_segment_age_seconds": 1.24, "frozen": false, "recent_restarts": []}))
        .unwrap()
    }

    fn units(streamer: &str, other: &str) -> Vec<UnitStatus> {
        let unit = |name: &str, active: &str| UnitStatus {
            name: name.into(),
            active_state: active.into(),
            ..UnitStatus::default()
        };
        vec![unit(STREAMER_UNIT, streamer), unit("desktop-streamer-web.service", other)]
    }

    fn verdict(health: &HealthReport, units: &[UnitStatus]) -> Verdict {
        evaluate(&Observed { health: Ok(health), services: Ok(units) }, LIMITS)
    }

    #[test]
    fn streaming_and_all_units_active_is_ok_with_perfdata() {
        let v = verdict(&healthy(), &units("active", "active"));
        assert_eq!(
            v.to_string(),
            "DESKTOP-STREAMER OK - streaming, healthy, 15.0 fps, newest segment 1.2 s old \
             | fps=15.0;;; bitrate_kbps=2000;;; segment_age=1.2s;10;30; restarts=0;;;"
        );
    }

    #[test]
    fn the_json_verdict_has_the_plugin_lines_parts_as_fields() {
        let mut h = healthy();
        h.frozen = true;
        let v = verdict(&h, &units("active", "active"));
        assert_eq!(
            v.to_json(),
            json!({"state": "WARNING", "exit_code": 1,
                "text": "picture frozen (streaming, healthy, 15.0 fps, newest segment 1.2 s old)",
                "problems": [{"level": "WARNING", "text": "picture frozen"}],
                "perfdata": [{"label": "fps", "value": 15.0}, {"label": "bitrate_kbps", "value": 2000.0},
                    {"label": "segment_age", "value": 1.24, "unit": "s", "warning": 10.0, "critical": 30.0},
                    {"label": "restarts", "value": 0.0}]})
        );
    }

    #[test]
    fn each_warning_condition() {
        let all = units("active", "active");
        let mut h = healthy();
        h.frozen = true;
        assert_eq!(verdict(&h, &all).level, Level::Warning);
        let mut h = healthy();
        h.current_state = State::Slate;
        assert!(verdict(&h, &all).text.contains("slate"));
        let mut h = healthy();
        h.newest_segment_age_seconds = Some(12.0);
        assert_eq!(verdict(&h, &all).level, Level::Warning);
        let v = verdict(&healthy(), &units("active", "failed"));
        assert_eq!((v.level, v.text.starts_with("desktop-streamer-web.service is failed")), (Level::Warning, true));
    }

    #[test]
    fn each_critical_condition() {
        let v = verdict(&healthy(), &units("inactive", "failed"));
        assert_eq!(v.level, Level::Critical);
        assert!(v.text.starts_with("desktop-streamer.service is inactive"), "worst first: {}", v.text);
        let mut h = healthy();
        h.newest_segment_age_seconds = Some(31.0);
        assert_eq!(verdict(&h, &units("active", "active")).level, Level::Critical);
        // A negative age (a streamer whose clock stepped back) is 0 s, not "-5.0 s old".
        let mut h = healthy();
        h.newest_segment_age_seconds = Some(-5.0);
        let v = verdict(&h, &units("active", "active"));
        assert!(
            v.to_string().contains("newest segment 0.0 s old") && v.to_string().contains("segment_age=0.0s"),
            "{v}"
        );
        let mut h = healthy();
        h.health = Health::Unhealthy;
        assert_eq!(verdict(&h, &units("active", "active")).level, Level::Critical);
        let status: DashboardStatus = serde_json::from_value(json!({"service": null, "stream": null, "health": null,
            "system": null, "services": units("active", "active"),
            "unreachable": [{"part": "streamer", "error": "connection refused"}], "sampled_at": "2026-12-07T03:00:00Z"}))
        .unwrap();
        let v = evaluate(&Observed::from_status(&status), LIMITS);
        assert_eq!(v.level, Level::Critical);
        assert!(v.text.contains("streamer unreachable: connection refused"), "{}", v.text);
    }
}
