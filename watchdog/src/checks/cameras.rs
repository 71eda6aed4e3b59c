//! Cameras, as the web monitor's prober sees them (`GET /api/cameras`): a camera that stays
//! DOWN past its grace period is a warning, and so is one that stays DEGRADED (its video
//! arrives but its picture is frozen or black, or it loses packets), named by its reason;
//! when it delivers good video again the condition resolves, which sends the "resolved" info
//! alert.
//!
//! A camera taken off the list while down is not "resolved": its condition ends with a note
//! that it is no longer watched.
//!
//! When the web monitor cannot be asked, nothing is concluded about the cameras: their
//! alerts neither fire nor resolve (the web service's own unit is the service check's news).
//! When it refuses to answer (its `public_read` is off and the watchdog has no token, or a
//! wrong one), that is a warning of its own, `camera_check:refused`, since no camera alert
//! can come while it lasts; the watchdog sends the token in `web_token_file`, read at each
//! look so a new one applies at once.
//!
//! The grace period runs on the monotonic clock, from when the watchdog first saw the camera
//! DOWN, so a step of the wall clock neither silences nor hastens the alert. A camera that is
//! already DOWN at that first look (the watchdog just started, or the camera went down between
//! two looks) is credited with how long its state has lasted, bounded by the grace period: the
//! dashboard's `state_age_seconds`, on its monotonic clock (from a dashboard too old to send
//! it, the time since `since` by the wall clock, and none for a `since` in the future). A
//! camera long down alerts at once after a watchdog restart.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ds_runtime::error_chain;
use ds_wire::cameras::{CameraEntry, CameraList, State};

use super::Finding;
use crate::alert::Severity;

/// How long one request to the web monitor may take.
pub const CAMERAS_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct CameraCheck {
    client: reqwest::Client,
    url: String,
    /// The file holding the dashboard API token to send (`web_token_file`).
    token_file: Option<std::path::PathBuf>,
    /// Why `web_ca_file` cannot be used, when it cannot: each check is refused with it.
    ca_problem: Option<String>,
    /// When each camera's grace period started (monotonic): when the watchdog first saw it
    /// down, less the time its `since` tells, bounded by the grace period.
    first_seen_down: HashMap<String, Instant>,
}

impl CameraCheck {
    pub fn new(web_url: &str, token_file: Option<&std::path::Path>) -> Self {
        let client = reqwest::Client::builder().timeout(CAMERAS_TIMEOUT).build().unwrap_or_default();
        CameraCheck {
            client,
            url: format!("{}/api/cameras", web_url.trim_end_matches('/')),
            token_file: token_file.map(std::path::Path::to_owned),
            ca_problem: None,
            first_seen_down: HashMap::new(),
        }
    }

    /// Trusts the certificates in `ca_file` (PEM; `web_ca_file`) for an `https://` `web_url`
    /// besides the system's. A file that cannot be used makes every check a refusal naming it.
    #[must_use]
    pub fn with_ca_file(mut self, ca_file: Option<&std::path::Path>) -> Self {
        let Some(file) = ca_file else { return self };
        let roots = std::fs::read(file)
            .map_err(|e| e.to_string())
            .and_then(|pem| reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| error_chain(&e)))
            .and_then(|roots| if roots.is_empty() { Err("it holds no PEM certificate".to_owned()) } else { Ok(roots) });
        match roots.and_then(|roots| {
            reqwest::Client::builder()
                .timeout(CAMERAS_TIMEOUT)
                .tls_certs_merge(roots)
                .build()
                .map_err(|e| error_chain(&e))
        }) {
            Ok(client) => self.client = client,
            Err(e) => {
                self.ca_problem = Some(format!(
                    "web_ca_file {} cannot be used ({e}); it holds the CA certificate the watchdog trusts for the \
                     dashboard's https:// web_url",
                    file.display()
                ));
            }
        }
        self
    }

    /// What one look at the web monitor's camera list found.
    pub async fn check(&mut self, grace: Duration) -> CameraLook {
        match self.fetch().await {
            Ok(cameras) => CameraLook::Seen(self.judge(&cameras, grace, Instant::now(), jiff::Timestamp::now())),
            Err(Fetch::Refused(why)) => {
                tracing::warn!(url = %self.url, %why, "the dashboard refuses the camera check: no camera alerts");
                CameraLook::Refused(Finding {
                    kind: REFUSED_KIND.to_owned(),
                    severity: Severity::Warning,
                    title: "camera alerts are off: the dashboard refuses the watchdog".to_owned(),
                    details: why,
                })
            }
            Err(Fetch::Unavailable(e)) => {
                tracing::debug!(url = %self.url, error = %e, "camera states unavailable");
                CameraLook::Unavailable
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<CameraEntry>, Fetch> {
        if let Some(problem) = &self.ca_problem {
            return Err(Fetch::Refused(problem.clone()));
        }
        let mut request = self.client.get(&self.url);
        if let Some(file) = &self.token_file {
            match std::fs::read_to_string(file) {
                Ok(token) => request = request.bearer_auth(token.trim()),
                Err(e) => {
                    return Err(Fetch::Refused(format!(
                        "web_token_file {} cannot be read ({e}); it holds the token the watchdog sends to the \
                         dashboard",
                        file.display()
                    )));
                }
            }
        }
        let response = request.send().await.map_err(|e| Fetch::Unavailable(error_chain(&e.without_url())))?;
        let status = response.status();
        if matches!(status, reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN) {
            let how = if self.token_file.is_some() {
                "the token in web_token_file is not valid (revoked or mistyped): create a new one with \
                 `desktop-streamer-web new-token watchdog` and write it to that file"
            } else {
                "the dashboard's public_read is off, so the watchdog needs a token: create one with \
                 `desktop-streamer-web new-token watchdog`, write it to a file only the watchdog reads and name \
                 that file in web_token_file"
            };
            return Err(Fetch::Refused(format!("GET {} answered {status}: {how}", self.url)));
        }
        if !status.is_success() {
            if status == reqwest::StatusCode::BAD_REQUEST
                && response.text().await.is_ok_and(|t| t == ds_wire::PLAIN_HTTP_ON_HTTPS_PORT)
            {
                return Err(Fetch::Refused(format!(
                    "GET {} answered that the dashboard speaks HTTPS: set web_url to https://… and web_ca_file to \
                     the CA certificate of its tls_cert_file (or to that file when it is self-signed)",
                    self.url
                )));
            }
            return Err(Fetch::Unavailable(format!("HTTP {status}")));
        }
        let list: CameraList = response
            .json()
            .await
            .map_err(|e| Fetch::Unavailable(format!("not the camera list JSON: {}", error_chain(&e.without_url()))))?;
        Ok(list.cameras)
    }

    /// Findings for cameras down longer than `grace`, and why the conditions of cameras
    /// that were down and are no longer listed end.
    pub fn judge(
        &mut self,
        cameras: &[CameraEntry],
        grace: Duration,
        now: Instant,
        wall: jiff::Timestamp,
    ) -> CameraFindings {
        let down: Vec<&CameraEntry> =
            cameras.iter().filter(|c| matches!(c.live.state(), Some(State::Down | State::Degraded))).collect();
        let endings = self
            .first_seen_down
            .keys()
            .filter(|id| !cameras.iter().any(|c| &c.config.id == *id))
            .map(|id| (kind(id), "it was removed from the camera list".to_owned()))
            .collect();
        self.first_seen_down.retain(|id, _| down.iter().any(|c| &c.config.id == id));
        let mut findings = Vec::new();
        for cam in down {
            let Some(probed) = cam.live.probed() else { continue };
            let seen = *self.first_seen_down.entry(cam.config.id.clone()).or_insert_with(|| {
                // The dashboard's monotonic age of the state where it gives one; a wall-clock
                // age from `since` from a dashboard too old to.
                let age = probed.state_age_seconds.and_then(|s| Duration::try_from_secs_f64(s).ok());
                let before = age
                    .or_else(|| probed.since.and_then(|since| Duration::try_from(wall.duration_since(since)).ok()))
                    .unwrap_or_default()
                    .min(grace);
                now.checked_sub(before).unwrap_or(now)
            });
            let down_for = now.duration_since(seen);
            if down_for < grace {
                continue;
            }
            let why = match (&probed.reason, &probed.message) {
                (Some(r), Some(m)) => format!("{r}: {m}"),
                (Some(r), None) => r.to_string(),
                (None, Some(m)) => m.clone(),
                (None, None) => "no reason given".to_owned(),
            };
            let since = probed.since.map_or_else(|| format!("{} s", down_for.as_secs()), |s| s.to_string());
            let name = &cam.config.name;
            let (title, details) = match (probed.state, probed.reason) {
                (State::Degraded, Some(reason)) => (
                    format!("camera {name} {reason}"),
                    format!(
                        "Camera {name} has delivered video with something wrong since {since} ({why}); alerting \
                         after a grace period of {} s.",
                        grace.as_secs()
                    ),
                ),
                _ => (
                    format!("camera {name} down"),
                    format!(
                        "Camera {name} has delivered no video since {since} ({why}); alerting after a grace period of {} s.",
                        grace.as_secs()
                    ),
                ),
            };
            findings.push(Finding { kind: kind(&cam.config.id), severity: Severity::Warning, title, details });
        }
        CameraFindings { findings, endings }
    }
}

/// The kind of the warning that the dashboard refuses the camera check.
pub const REFUSED_KIND: &str = "camera_check:refused";

/// Why the camera list did not come.
#[derive(Debug)]
enum Fetch {
    /// The dashboard said no (401, 403) or the token cannot be read: a person must act.
    Refused(String),
    /// Not reachable, or another error: nothing is concluded.
    Unavailable(String),
}

/// One look at the web monitor's camera list.
#[derive(Debug)]
pub enum CameraLook {
    Seen(CameraFindings),
    /// The dashboard refuses the watchdog: the warning that says so and how to fix it.
    Refused(Finding),
    Unavailable,
}

/// What one look at the cameras found.
#[derive(Debug, Default)]
pub struct CameraFindings {
    pub findings: Vec<Finding>,
    /// Condition kind → why it ends other than by recovery.
    pub endings: HashMap<String, String>,
}

fn kind(id: &str) -> String {
    format!("camera:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    use ds_wire::cameras::{CameraConfig, CameraLive, Probed, Reason, UptimeSummary};

    fn cam(id: &str, state: State, since: Option<i64>) -> CameraEntry {
        CameraEntry {
            config: CameraConfig {
                id: id.into(),
                name: format!("Cam {id}"),
                url: "rtsp://192.0.2.1:554/stream".into(),
                heartbeat_seconds: 30,
                heartbeat_override: None,
                verify_tls: true,
                verify_tls_override: None,
                frozen_seconds: 60,
                frozen_override: None,
                black_seconds: 60,
                black_override: None,
                max_packets_lost: 2,
                max_packets_lost_override: None,
            },
            live: CameraLive::Probed(Probed {
                state,
                reason: Some(Reason::Refused),
                message: Some("connection refused by 192.0.2.1:554".into()),
                since: since.map(|s| jiff::Timestamp::from_second(s).unwrap()),
                state_age_seconds: None,
                consecutive_failures: 3,
                last_heartbeat_at: None,
                latency_ms: None,
                codec: None,
                width: None,
                height: None,
                last_frame_at: None,
                last_frame_age_seconds: None,
                packets_lost: None,
                pictures: None,
            }),
            thumbnail: None,
            uptime: UptimeSummary::default(),
            bar: Vec::new(),
        }
    }

    #[test]
    fn down_past_the_grace_period_is_a_warning() {
        let mut check = CameraCheck::new("http://127.0.0.1:8080", None);
        let grace = Duration::from_secs(120);
        let wall = jiff::Timestamp::from_second(10_000).unwrap();
        let now = Instant::now();
        let cams = [
            cam("a", State::Down, Some(10_000 - 60)),
            cam("b", State::Down, Some(10_000 - 300)),
            cam("c", State::Up, None),
        ];
        let f = check.judge(&cams, grace, now, wall).findings;
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].kind.as_str(), f[0].severity), ("camera:b", Severity::Warning));
        assert!(f[0].details.contains("refused: connection refused"), "{}", f[0].details);
    }

    #[test]
    fn a_degraded_picture_past_the_grace_period_is_a_warning_named_by_its_reason() {
        let mut check = CameraCheck::new("http://127.0.0.1:8080", None);
        let grace = Duration::from_secs(120);
        let wall = jiff::Timestamp::from_second(10_000).unwrap();
        let degraded = |id: &str, reason: Reason, message: &str| {
            let mut c = cam(id, State::Degraded, Some(10_000 - 300));
            if let CameraLive::Probed(p) = &mut c.live {
                p.reason = Some(reason);
                p.message = Some(message.into());
            }
            c
        };
        let cams = [
            degraded("lobby", Reason::Black, "the picture has been almost uniformly dark for 300 s"),
            degraded("gate", Reason::Frozen, "the picture has not changed for 300 s"),
        ];
        let f = check.judge(&cams, grace, Instant::now(), wall).findings;
        let titles: Vec<&str> = f.iter().map(|f| f.title.as_str()).collect();
        assert_eq!(titles, ["camera Cam lobby black", "camera Cam gate frozen"], "{f:?}");
        assert!(f[0].details.contains("black: the picture has been almost uniformly dark"), "{}", f[0].details);
        // Good video again: no finding, so the condition resolves.
        assert!(check.judge(&[cam("lobby", State::Up, None)], grace, Instant::now(), wall).findings.is_empty());
    }

    /// The dashboard's monotonic state age counts, not a `since` that a stepped wall clock
    /// (the watchdog's or the dashboard's) has made look older or newer.
    #[test]
    fn the_dashboards_state_age_is_credited_rather_than_its_since() {
        let grace = Duration::from_secs(120);
        let wall = jiff::Timestamp::from_second(10_000_000).unwrap();
        let aged = |id: &str, since: i64, age: f64| {
            let mut c = cam(id, State::Down, Some(since));
            if let CameraLive::Probed(p) = &mut c.live {
                p.state_age_seconds = Some(age);
            }
            c
        };
        let t0 = Instant::now();
        let mut check = CameraCheck::new("http://127.0.0.1:8080", None);
        // Down 30 s by the monotonic clock although its `since` says a day (a forward step):
        // the alert waits the rest of the grace period.
        let cams = [aged("a", 10_000_000 - 86_400, 30.0)];
        assert!(check.judge(&cams, grace, t0, wall).findings.is_empty());
        assert!(check.judge(&cams, grace, t0 + Duration::from_secs(89), wall).findings.is_empty());
        assert_eq!(check.judge(&cams, grace, t0 + Duration::from_secs(91), wall).findings.len(), 1);
        // Down an hour although its `since` is in the future (a backward step): at once.
        let mut check = CameraCheck::new("http://127.0.0.1:8080", None);
        let cams = [aged("b", 10_000_000 + 86_400, 3600.0)];
        assert_eq!(check.judge(&cams, grace, t0, wall).findings.len(), 1);
    }

    #[test]
    fn without_a_since_the_watchdog_times_the_grace_itself() {
        let mut check = CameraCheck::new("http://127.0.0.1:8080", None);
        let grace = Duration::from_secs(120);
        let wall = jiff::Timestamp::from_second(10_000).unwrap();
        let t0 = Instant::now();
        let cams = [cam("a", State::Down, None)];
        assert!(check.judge(&cams, grace, t0, wall).findings.is_empty());
        assert_eq!(check.judge(&cams, grace, t0 + Duration::from_secs(121), wall).findings.len(), 1);
        // Back up, then down again: the grace starts over.
        assert!(
            check.judge(&[cam("a", State::Up, None)], grace, t0 + Duration::from_secs(130), wall).findings.is_empty()
        );
        assert!(check.judge(&cams, grace, t0 + Duration::from_secs(140), wall).findings.is_empty());
    }

    /// After the first look the grace period runs on the monotonic clock: a step of the wall
    /// clock (the web monitor's `since` is wall time) neither silences the alert nor hastens it.
    #[test]
    fn steps_of_the_wall_clock_neither_silence_nor_hasten_the_alert() {
        const DAY: i64 = 86_400;
        let grace = Duration::from_secs(120);
        let t0 = Instant::now();
        let wall = 10_000_000;
        let at = |s: i64| jiff::Timestamp::from_second(s).unwrap();
        let cams = [cam("a", State::Down, Some(wall - 10))];

        // Stepped back a day: the alert still comes after the grace period.
        let mut check = CameraCheck::new("http://127.0.0.1:8080", None);
        assert!(check.judge(&cams, grace, t0, at(wall)).findings.is_empty());
        assert!(check.judge(&cams, grace, t0 + Duration::from_secs(100), at(wall + 90 - DAY)).findings.is_empty());
        let f = check.judge(&cams, grace, t0 + Duration::from_secs(111), at(wall + 101 - DAY)).findings;
        assert_eq!(f.len(), 1, "{f:?}");

        // Stepped forward a year: not at once, only after the grace period.
        let mut check = CameraCheck::new("http://127.0.0.1:8080", None);
        assert!(check.judge(&cams, grace, t0, at(wall)).findings.is_empty());
        let year = 366 * DAY;
        assert!(check.judge(&cams, grace, t0 + Duration::from_secs(1), at(wall + 1 + year)).findings.is_empty());
        assert!(check.judge(&cams, grace, t0 + Duration::from_secs(109), at(wall + 109 + year)).findings.is_empty());
        assert_eq!(check.judge(&cams, grace, t0 + Duration::from_secs(110), at(wall + 110 + year)).findings.len(), 1);

        // First seen with a `since` in the future (a step before the watchdog started): the
        // whole grace period.
        let mut check = CameraCheck::new("http://127.0.0.1:8080", None);
        let future = [cam("a", State::Down, Some(wall + DAY))];
        assert!(check.judge(&future, grace, t0, at(wall)).findings.is_empty());
        assert!(check.judge(&future, grace, t0 + Duration::from_secs(119), at(wall + 119)).findings.is_empty());
        assert_eq!(check.judge(&future, grace, t0 + Duration::from_secs(120), at(wall + 120)).findings.len(), 1);
    }

    #[test]
    fn a_down_camera_taken_off_the_list_ends_as_removed() {
        let mut check = CameraCheck::new("http://127.0.0.1:8080", None);
        let (grace, wall, now) =
            (Duration::from_secs(1), jiff::Timestamp::from_second(10_000).unwrap(), Instant::now());
        let both = [cam("a", State::Down, Some(9_000)), cam("b", State::Up, Some(9_000))];
        assert_eq!(check.judge(&both, grace, now, wall).findings.len(), 1);
        let only_b = check.judge(&both[1..], grace, now, wall);
        assert!(only_b.findings.is_empty());
        assert_eq!(only_b.endings.get("camera:a").map(String::as_str), Some("it was removed from the camera list"));
        assert!(!only_b.endings.contains_key("camera:b"), "an UP camera has no condition to end");
        assert!(check.judge(&both[1..], grace, now, wall).endings.is_empty(), "said once");
    }
}
