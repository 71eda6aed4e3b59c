//! The watchdog's loop: every `check_interval` it looks at the units, the stream and the
//! machine; a unit that changes state is looked at at once (systemd signals it over D-Bus).
//! What it finds becomes alerts (through the policy into the outbox, which delivers them)
//! and, where allowed and not held back, restarts.
//!
//! Its own trouble (no D-Bus, an unusable alert channel) is alerted through whatever channel
//! still works.
//!
//! At every check it also compares the wall clock with the monotonic clock: a step of more than
//! [`STEP_THRESHOLD`](crate::clock::STEP_THRESHOLD) (5 s) is an info alert, "the system clock
//! stepped +366 d", once per step. A step while the watchdog was not running is judged at start
//! against the record the last run left ([`crate::last_seen`]), kept up to date at start, after
//! each step, every [`SAVE_EVERY`] and at shutdown.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ds_config::WatchdogConfig;
use ds_runtime::Shutdown;

use crate::alert::{Alert, Severity};
use crate::channel::{Channel, channels_from_config};
use crate::checks::cameras::{CameraCheck, CameraLook};
use crate::checks::resources::ResourceCheck;
use crate::checks::services::ServiceCheck;
use crate::checks::stream::{STREAM_KINDS, StreamCheck};
use crate::clock::{At, Boot, STEP_THRESHOLD, StepWatch, human_duration, human_step, human_wall};
use crate::conditions::{Change, Conditions, Finding};
use crate::last_seen::{self, LAST_SEEN_FILE, LastSeen, SAVE_EVERY, Verdict};
use crate::outbox::Outbox;
use crate::policy::{Decision, Policy, read_saved, write_saved};
use crate::recovery::{Permit, RestartLimiter, StartBudget};
use crate::systemd::{Job, Systemd, UnitState, UnitWatch};

/// Wait between attempts to reach systemd's D-Bus API.
const DBUS_RETRY: Duration = Duration::from_secs(10);
/// In the state directory: the alerts the rate limit holds back, so a restart loses none.
pub const HELD_BACK_FILE: &str = "held-back.json";
/// The streamer's unit, restarted when the stream is critically stale.
pub const STREAMER_UNIT: &str = "desktop-streamer.service";
/// How every clock alert ends.
const CLOCK_NOT_AFFECTING: &str = "Alerts keep the time they were raised at as the clock said then; ages, retries and \
     grace periods run on the monotonic clock and are not affected.";

pub struct Daemon {
    config: WatchdogConfig,
    host: String,
    policy: Policy,
    conditions: Conditions,
    limiter: RestartLimiter,
    services: ServiceCheck,
    stream: StreamCheck,
    resources: ResourceCheck,
    cameras: CameraCheck,
    steps: StepWatch,
    outbox: Arc<Outbox>,
    channel_ids: Vec<String>,
    systemd: Option<Systemd>,
    units: HashMap<String, UnitState>,
    output_dir: Option<PathBuf>,
    next_id: u64,
    /// The held-back file exists (as far as this run knows).
    held_back_saved: bool,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon").field("host", &self.host).field("channels", &self.channel_ids).finish_non_exhaustive()
    }
}

/// The machine's name, for alerts.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".into())
}

/// Longest wait for systemd to finish a restart job before its outcome is no longer logged.
const JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// Logs how a restart job ended; a failure shows in the unit's state too, which the watch
/// reports, so this only adds systemd's reason to the log.
async fn log_job_outcome(job: Job) {
    let unit = job.unit().to_owned();
    match tokio::time::timeout(JOB_TIMEOUT, job.wait()).await {
        Ok(Ok(state)) => tracing::info!(unit, state = %state.active_state, "restart job done"),
        Ok(Err(e)) => tracing::warn!(unit, error = %e, "restart job failed"),
        Err(_) => tracing::warn!(unit, timeout_s = JOB_TIMEOUT.as_secs(), "restart job still not finished"),
    }
}

/// Runs the watchdog until shutdown. Each finding on `config_trouble` (a configuration that a
/// reload refused, or one that could not be used at start) is alerted through the running
/// configuration's channels.
pub async fn run(
    config: WatchdogConfig,
    shutdown: Shutdown,
    mut config_trouble: tokio::sync::mpsc::UnboundedReceiver<Finding>,
) -> anyhow::Result<()> {
    let (channels, channel_trouble) = match channels_from_config(&config) {
        Ok(c) => (c, None),
        Err(e) => {
            let text = e.to_string();
            (e.usable, Some(text))
        }
    };
    let outbox = Arc::new(Outbox::open(&config.state_dir, config.alert_max_age())?);
    let mut daemon = Daemon::new(config, Arc::clone(&outbox), channels.iter().map(Channel::id).collect());
    tracing::info!(units = ?daemon.config.units, channels = ?daemon.channel_ids, "desktop-streamer-watchdog started");
    daemon.look_back_at_the_clock(At::now(), Boot::read().as_ref());
    let delivery = {
        let (outbox, shutdown) = (Arc::clone(&outbox), shutdown.clone());
        tokio::spawn(async move { outbox.run(&channels, &shutdown).await })
    };
    let own_findings = channel_trouble
        .map(|t| Finding {
            kind: "watchdog:channels".into(),
            severity: Severity::Warning,
            title: "an alert channel is unusable".into(),
            details: t,
        })
        .into_iter()
        .collect();
    daemon.apply("watchdog:channels", own_findings, &HashMap::new());

    let mut watch: Option<UnitWatch> = None;
    let mut next_dbus_try = Instant::now();
    let mut tick = tokio::time::interval(daemon.config.check_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut remember = tokio::time::interval_at(tokio::time::Instant::now() + SAVE_EVERY, SAVE_EVERY);
    remember.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if watch.is_none() && Instant::now() >= next_dbus_try {
            watch = daemon.connect().await;
            next_dbus_try = Instant::now() + DBUS_RETRY;
        }
        tokio::select! {
            _ = tick.tick() => daemon.check_all().await,
            _ = remember.tick() => daemon.look_and_remember(),
            changed = async { watch.as_mut()?.recv().await }, if watch.is_some() => match changed {
                Some(Ok(unit)) => daemon.on_unit(unit).await,
                Some(Err(e)) => tracing::warn!(error = %e, "unit watch"),
                None => {
                    tracing::warn!("lost the D-Bus connection to systemd; reconnecting");
                    watch = None;
                    daemon.systemd = None;
                }
            },
            Some(finding) = config_trouble.recv() => {
                // Raised now; a later good reload starts a fresh daemon.
                daemon.apply("watchdog:config", vec![finding], &HashMap::new());
            }
            () = shutdown.wait() => break,
        }
    }
    daemon.look_and_remember();
    daemon.save_policy(tokio::time::Instant::now());
    let _ = tokio::time::timeout(Duration::from_secs(2), delivery).await;
    Ok(())
}

impl Daemon {
    /// A daemon that raises its alerts into `outbox` for the channels `channel_ids`, and takes
    /// back what the rate limit held back when the last run stopped.
    pub fn new(config: WatchdogConfig, outbox: Arc<Outbox>, channel_ids: Vec<String>) -> Daemon {
        let mut policy = Policy::new(config.alert_cooldown(), config.max_alerts);
        let saved = read_saved(&config.state_dir.join(HELD_BACK_FILE));
        let held_back_saved = saved.is_some();
        if let Some(saved) = saved {
            tracing::info!(held = saved.held.len() + saved.due.len(), "alerts held back by the last run taken back");
            policy.restore(saved, tokio::time::Instant::now());
        }
        Daemon {
            host: host_name(),
            policy,
            conditions: Conditions::default(),
            limiter: RestartLimiter::new(
                config.restart_limit.max_restarts,
                Duration::from_secs(config.restart_limit.window_seconds.into()),
            ),
            services: ServiceCheck::default(),
            stream: StreamCheck::new(&config.streamer_url),
            resources: ResourceCheck::default(),
            cameras: CameraCheck::new(&config.web_url, config.web_token_file.as_deref())
                .with_ca_file(config.web_ca_file.as_deref()),
            steps: StepWatch::default(),
            channel_ids,
            outbox,
            systemd: None,
            units: HashMap::new(),
            output_dir: None,
            next_id: 0,
            held_back_saved,
            config,
        }
    }

    /// Connects to systemd and subscribes to the watched units; on failure raises the
    /// watchdog's own alert and returns `None` (retried later).
    async fn connect(&mut self) -> Option<UnitWatch> {
        let result = async {
            let systemd = Systemd::connect(match self.config.bus {
                ds_config::watchdog::Bus::System => crate::systemd::Bus::System,
                ds_config::watchdog::Bus::Session => crate::systemd::Bus::Session,
            })
            .await?;
            let watch = systemd.watch(&self.config.units).await?;
            Ok::<_, crate::systemd::SystemdError>((systemd, watch))
        }
        .await;
        match result {
            Ok((systemd, watch)) => {
                tracing::info!(bus = systemd.bus(), "watching units over D-Bus");
                self.systemd = Some(systemd);
                self.apply("watchdog:dbus", Vec::new(), &HashMap::new());
                Some(watch)
            }
            Err(e) => {
                let finding = Finding {
                    kind: "watchdog:dbus".into(),
                    severity: Severity::Critical,
                    title: "watchdog cannot reach systemd".into(),
                    details: format!(
                        "{e}. Units are not watched or restarted until it can; retrying every {} s.",
                        DBUS_RETRY.as_secs()
                    ),
                };
                self.apply("watchdog:dbus", vec![finding], &HashMap::new());
                None
            }
        }
    }

    /// A unit changed: judge it at once.
    async fn on_unit(&mut self, unit: UnitState) {
        tracing::debug!(unit = %unit.name, state = %unit.active_state, sub = %unit.sub_state, "unit changed");
        self.units.insert(unit.name.clone(), unit.clone());
        self.judge_unit(&unit).await;
    }

    async fn check_all(&mut self) {
        self.look_at_the_clock(At::now(), Boot::read().as_ref());
        // Units: read afresh (a missed signal must not hide a failure for long).
        if let Some(systemd) = &self.systemd {
            for name in self.config.units.clone() {
                match systemd.unit(&name).await {
                    Ok(u) => {
                        self.units.insert(name.clone(), u);
                    }
                    Err(e) => tracing::warn!(unit = %name, error = %e, "cannot read unit"),
                }
            }
        }
        for unit in self.units.values().cloned().collect::<Vec<_>>() {
            self.judge_unit(&unit).await;
        }

        let now = Instant::now();
        // The stream is the watchdog's business when it watches the streamer's unit; while
        // that unit is down, the service check speaks for it, and while it starts or stops
        // the stream is not judged at all.
        let watched = self.config.units.iter().any(|u| u == STREAMER_UNIT);
        let streamer = self.units.get(STREAMER_UNIT).filter(|_| watched).cloned();
        match streamer {
            Some(unit) if unit.is_active() => {
                let verdict = self.stream.check(&self.config.stream, now, &unit.invocation_id).await;
                if verdict.output_dir.is_some() {
                    self.output_dir = verdict.output_dir.map(PathBuf::from);
                }
                let mut actions = HashMap::new();
                if verdict.restart && self.config.auto_recovery.stream_restart {
                    let action = self.restart(STREAMER_UNIT).await;
                    for f in &verdict.findings {
                        actions.insert(f.kind.clone(), action.clone());
                    }
                }
                self.apply("stream:", verdict.findings, &actions);
            }
            Some(unit) if !unit.is_down() => {}
            _ => {
                let why = format!("{STREAMER_UNIT} is not running; the service check reports it");
                let notes = STREAM_KINDS.iter().map(|k| ((*k).to_owned(), why.clone())).collect();
                self.apply("stream:", Vec::new(), &notes);
            }
        }

        if self.config.auto_recovery.resource_monitoring {
            // Until the streamer has said where it writes, its default place (or the nearest
            // folder of it that exists) stands for it: a full disk stops it from starting at all.
            let default_dir = Path::new(ds_config::streamer::DEFAULT_OUTPUT_DIR);
            let output_dir = self.output_dir.as_deref().or_else(|| default_dir.ancestors().find(|d| d.is_dir()));
            let reading = self.resources.read(output_dir);
            let findings = self.resources.judge(&reading, &self.config.resources, now);
            self.apply("resource:", findings, &HashMap::new());
        }
        let grace = Duration::from_secs(self.config.camera_grace_seconds.into());
        match self.cameras.check(grace).await {
            CameraLook::Seen(cameras) => {
                self.apply("camera_check:", Vec::new(), &HashMap::new());
                self.apply("camera:", cameras.findings, &cameras.endings);
            }
            CameraLook::Refused(finding) => self.apply("camera_check:", vec![finding], &HashMap::new()),
            CameraLook::Unavailable => {}
        }
        self.send_summary();
    }

    async fn judge_unit(&mut self, unit: &UnitState) {
        let window = Duration::from_secs(self.config.restart_limit.window_seconds.into());
        let verdict = self.services.judge(unit, self.config.stream.frequent_restarts, window, Instant::now());
        let mut actions = HashMap::new();
        if verdict.restart && self.config.auto_recovery.service_restart {
            let action = self.restart(&unit.name).await;
            for f in &verdict.findings {
                actions.insert(f.kind.clone(), action.clone());
            }
        }
        self.apply_unit(&unit.name, verdict.findings, &actions);
    }

    /// Asks systemd for a restart (a start, for a unit that is down) unless the limiter holds
    /// back; says what was done. How the job ends is logged when systemd says so.
    async fn restart(&mut self, unit: &str) -> String {
        let now = Instant::now();
        let state = self.units.get(unit);
        let budget = state.map_or_else(StartBudget::default, |u| {
            let (starts, oldest_start) = self.services.starts_within(unit, u.start_limit.interval, now);
            StartBudget { hit: u.start_limit_hit, limit: u.start_limit, starts, oldest_start }
        });
        let down = state.is_some_and(UnitState::is_down);
        match self.limiter.request(unit, budget, now) {
            Permit::HeldBack { reason, retry_after } => {
                tracing::warn!(unit, %reason, retry_after_s = retry_after.as_secs(), "holding back a restart");
                format!("held back a restart: {reason}; next try in {} s at the earliest", retry_after.as_secs())
            }
            Permit::Granted => match &self.systemd {
                None => "could not restart it: no connection to systemd".to_owned(),
                Some(systemd) => match if down { systemd.start(unit).await } else { systemd.restart(unit).await } {
                    Ok(job) => {
                        self.services.note_requested_start(unit, now);
                        let method = if down { "StartUnit" } else { "RestartUnit" };
                        tracing::info!(unit, method, "restart requested over D-Bus");
                        tokio::spawn(log_job_outcome(job));
                        format!("restarted the unit ({method} over D-Bus)")
                    }
                    Err(e) => {
                        tracing::warn!(unit, error = %e, "restart refused");
                        format!("tried to restart it, but systemd refused: {e}")
                    }
                },
            },
        }
    }

    /// Alerts a step of the wall clock since the previous look, and then saves the moment for the
    /// next start (in `boot`), so it is not told again; says whether it saved.
    fn look_at_the_clock(&mut self, now: At, boot: Option<&Boot>) -> bool {
        let Some(step) = self.steps.look(now) else { return false };
        let human = human_step(step);
        tracing::warn!(step_s = step.as_secs(), "the system clock stepped {human}");
        let details = format!(
            "The wall clock moved {human} against the monotonic clock since the previous look (more than {} s is a step). \
             {CLOCK_NOT_AFFECTING}",
            STEP_THRESHOLD.as_secs()
        );
        let title = format!("the system clock stepped {human}");
        let alert = self.alert("clock_step".into(), Severity::Info, title, details, now.wall, None);
        self.offer(alert);
        // After the alert is in the outbox: a crash in between repeats it rather than losing it.
        self.remember(now, boot);
        true
    }

    /// At start: alerts what the wall clock did while the watchdog was not running, judged
    /// against what the last run saw, then watches (and saves) on from `now` in `boot`.
    fn look_back_at_the_clock(&mut self, now: At, boot: Option<&Boot>) {
        let saw = last_seen::read(&self.config.state_dir.join(LAST_SEEN_FILE));
        if let Some(verdict) = saw.and_then(|saw| last_seen::judge(&saw, now.wall, boot)) {
            let alert = self.alert_from_the_time_away(verdict, now.wall);
            self.offer(alert);
        }
        self.steps.look(now);
        self.remember(now, boot);
    }

    fn alert_from_the_time_away(&mut self, verdict: Verdict, now: jiff::Timestamp) -> Alert {
        let (kind, title, details) = match verdict {
            Verdict::Stepped { step, last_seen, away } => {
                let human = human_step(step);
                tracing::warn!(
                    step_s = step.as_secs(),
                    "the system clock stepped {human} while the watchdog was not running"
                );
                let details = format!(
                    "The watchdog last looked at the clock at {} as the clock said then, {} ago by the time since boot; \
                     the wall clock has moved {human} more than that since (more than {} s is a step). {CLOCK_NOT_AFFECTING}",
                    human_wall(last_seen),
                    human_duration(away),
                    STEP_THRESHOLD.as_secs()
                );
                ("clock_step", format!("the system clock stepped {human} while the watchdog was not running"), details)
            }
            Verdict::Behind { behind, last_seen, now } => {
                let behind = human_duration(behind);
                tracing::warn!(%last_seen, "the system clock is {behind} behind the last time the watchdog ran");
                let details = format!(
                    "The wall clock reads {}, {behind} before {}, when the watchdog last looked at it (before the \
                     machine restarted). The board has no real-time clock or has not synchronised its clock yet: times shown \
                     are wrong until it does. {CLOCK_NOT_AFFECTING}",
                    human_wall(now),
                    human_wall(last_seen)
                );
                ("clock_behind", "the system clock is behind the last time the watchdog ran".to_owned(), details)
            }
        };
        self.alert(kind.into(), Severity::Info, title, details, now, None)
    }

    /// Looks at the clock, then saves the moment: the record never holds a moment past a step
    /// that was not judged.
    fn look_and_remember(&mut self) {
        let (now, boot) = (At::now(), Boot::read());
        if !self.look_at_the_clock(now, boot.as_ref()) {
            self.remember(now, boot.as_ref());
        }
    }

    /// Saves `now` in `boot` as the last moment this watchdog saw the clocks.
    fn remember(&self, now: At, boot: Option<&Boot>) {
        last_seen::write(&self.config.state_dir.join(LAST_SEEN_FILE), &LastSeen::new(now.wall, boot));
    }

    /// Each kind of a unit's trouble is its own scope, so one resolving leaves the others.
    fn apply_unit(&mut self, unit: &str, findings: Vec<Finding>, actions: &HashMap<String, String>) {
        for prefix in ["service_down:", "service_missing:", "service_start_limit:", "service_restarting:"] {
            let scope = format!("{prefix}{unit}");
            let mine: Vec<Finding> = findings.iter().filter(|f| f.kind == scope).cloned().collect();
            self.apply(&scope, mine, actions);
        }
    }

    /// Turns the findings of one scope into alerts. `notes` says, per kind, what the watchdog
    /// did about a problem it raises, or why one ends other than by recovery.
    fn apply(&mut self, scope: &str, findings: Vec<Finding>, notes: &HashMap<String, String>) {
        let now = At::now();
        for change in self.conditions.update(scope, findings, now) {
            let alert = match change {
                Change::Raised { finding, since } | Change::Escalated { finding, since } => {
                    let action = notes.get(&finding.kind).cloned();
                    self.alert(finding.kind, finding.severity, finding.title, finding.details, since, action)
                }
                Change::Resolved { kind, title, since, lasted } => {
                    let lasted = lasted.as_secs_f64();
                    let (heading, details) = match notes.get(&kind) {
                        Some(why) => (
                            format!("no longer watched: {title}"),
                            format!("{title}: ended after {lasted:.0} s: {why}."),
                        ),
                        None => (format!("resolved: {title}"), format!("{title}: over after {lasted:.0} s.")),
                    };
                    self.alert(format!("{kind}:resolved"), Severity::Info, heading, details, since, None)
                }
            };
            self.offer(alert);
        }
    }

    fn alert(
        &mut self,
        kind: String,
        severity: Severity,
        title: String,
        details: String,
        since: jiff::Timestamp,
        action: Option<String>,
    ) -> Alert {
        let raised_at = jiff::Timestamp::now();
        self.next_id += 1;
        Alert {
            id: format!("{}-{}", raised_at.as_millisecond(), self.next_id),
            kind,
            severity,
            title,
            details,
            since,
            raised_at,
            action,
            host: self.host.clone(),
            dashboard_url: Some(self.config.dashboard().to_owned()),
        }
    }

    fn offer(&mut self, alert: Alert) {
        let now = tokio::time::Instant::now();
        match self.policy.offer(&alert, now) {
            Decision::Send => self.enqueue(&alert),
            Decision::Cooldown { last_sent_ago } => {
                tracing::info!(kind = %alert.kind, last_sent_s = last_sent_ago.as_secs(), "alert within its cooldown; not sent again");
                self.outbox.count_repeat(&alert.kind);
            }
            Decision::RateLimited => {
                tracing::warn!(kind = %alert.kind, severity = alert.severity.as_str(), title = %alert.title, "alert held back by max_alerts; it goes into the summary");
                let why = format!(
                    "held back: {} alerts were sent within {} s (max_alerts); it is counted in the summary sent when that period ends",
                    self.config.max_alerts, self.config.alert_cooldown
                );
                self.outbox.record_not_sent(&alert, &why);
                self.save_policy(now);
            }
        }
    }

    /// Sends the summary of what the rate limit held back once its period is over, and saves
    /// what it still holds back (each check, so that a crash loses little of its period).
    pub fn send_summary(&mut self) {
        let now = tokio::time::Instant::now();
        let template =
            self.alert("summary".into(), Severity::Info, String::new(), String::new(), jiff::Timestamp::now(), None);
        if let Some(summary) = self.policy.summary(now, &template) {
            self.enqueue(&summary);
        }
        self.save_policy(now);
    }

    /// Saves what the rate limit holds back; removes the file once nothing is.
    fn save_policy(&mut self, now: tokio::time::Instant) {
        let saved = self.policy.save(now);
        if saved.is_some() || self.held_back_saved {
            write_saved(&self.config.state_dir.join(HELD_BACK_FILE), saved.as_ref());
            self.held_back_saved = saved.is_some();
        }
    }

    fn enqueue(&self, alert: &Alert) {
        tracing::warn!(kind = %alert.kind, severity = alert.severity.as_str(), title = %alert.title, action = ?alert.action, "alert");
        // With no channel the outbox only keeps it in the history, for the dashboard.
        if let Err(e) = self.outbox.enqueue(alert, &self.channel_ids) {
            tracing::error!(error = %e, alert = %alert.id, "cannot store the alert");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::HistoryEntry;

    fn finding(kind: &str) -> Finding {
        Finding {
            kind: format!("test:{kind}"),
            severity: Severity::Critical,
            title: format!("{kind} is broken"),
            details: String::new(),
        }
    }

    fn daemon(state_dir: &Path) -> Daemon {
        let config = WatchdogConfig {
            state_dir: state_dir.to_owned(),
            alert_cooldown: 300,
            max_alerts: 2,
            ..WatchdogConfig::default()
        };
        let outbox = Arc::new(Outbox::open(state_dir, config.alert_max_age()).unwrap());
        // No channel: the outbox keeps every alert in its history, which is what is checked.
        Daemon::new(config, outbox, Vec::new())
    }

    fn titles(history: &[HistoryEntry]) -> Vec<(String, Option<&str>, u32)> {
        history.iter().map(|e| (e.alert.title.clone(), e.not_sent.as_deref().map(|_| "held back"), e.repeats)).collect()
    }

    /// A step of the wall clock is one info alert per step, in human units; drift is not.
    #[tokio::test(start_paused = true)]
    async fn a_step_of_the_wall_clock_is_alerted_once() {
        const DAY: Duration = Duration::from_secs(86_400);
        let dir = tempfile::tempdir().unwrap();
        let mut d = daemon(dir.path());
        let t0 = At::now();
        d.look_at_the_clock(t0, None);
        let t1 = t0 + Duration::from_secs(60);
        d.look_at_the_clock(At { wall: t1.wall + Duration::from_secs(2), ..t1 }, None);
        assert!(d.outbox.history().is_empty(), "no step yet");
        let t2 = t1 + Duration::from_secs(60);
        d.look_at_the_clock(At { wall: t2.wall + DAY * 366, ..t2 }, None);
        d.look_at_the_clock(
            At { wall: t2.wall + DAY * 366 + Duration::from_secs(60), ..t2 + Duration::from_secs(60) },
            None,
        );
        // Past the cooldown (300 s), the clock is stepped back.
        tokio::time::advance(Duration::from_secs(520)).await;
        let t3 = At { mono: tokio::time::Instant::now(), wall: t2.wall + Duration::from_secs(400) };
        assert_eq!(t3.mono, t2.mono + Duration::from_secs(400));
        d.look_at_the_clock(At { wall: t3.wall + DAY * 365, ..t3 }, None);
        let history = d.outbox.history();
        let titles: Vec<&str> = history.iter().map(|e| e.alert.title.as_str()).collect();
        assert_eq!(titles, ["the system clock stepped +366 d", "the system clock stepped −1 d"]);
        assert!(history.iter().all(|e| e.alert.severity == Severity::Info));
        assert!(history[0].alert.details.contains("more than 5 s is a step"), "{}", history[0].alert.details);
    }

    /// What the wall clock did while the watchdog was not running is alerted once, at the next
    /// start: a step seen live is not told again after a restart; a step while it was stopped
    /// is, even when a SIGKILL left an older record; after a reboot only a clock behind the
    /// last run is news. A broken record is no reason to refuse to start.
    #[tokio::test(start_paused = true)]
    async fn steps_while_the_watchdog_was_not_running_are_alerted_once_at_the_next_start() {
        const DAY: Duration = Duration::from_secs(86_400);
        const S: Duration = Duration::from_secs(1);
        let boot = |id: &str, secs: u32| Boot { id: id.into(), since_boot: S * secs };
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join(LAST_SEEN_FILE);
        let titles = |d: &Daemon| -> Vec<String> { d.outbox.history().iter().map(|e| e.alert.title.clone()).collect() };

        std::fs::write(&record, "{\"version\": 1, \"boot_id\": \"b1\", \"since_bo").unwrap();
        let mut d = daemon(dir.path());
        let t0 = At::now();
        d.look_back_at_the_clock(t0, Some(&boot("b1", 1000)));
        assert!(titles(&d).is_empty(), "a broken record is no news");
        assert_eq!(last_seen::read(&record), Some(LastSeen::new(t0.wall, Some(&boot("b1", 1000)))), "replaced");

        // Seen live, then a restart 30 s later under the same clock: told once.
        let t1 = t0 + S * 60;
        d.look_at_the_clock(At { wall: t1.wall + DAY * 366, ..t1 }, Some(&boot("b1", 1060)));
        drop(d);
        let t2 = At { wall: t1.wall + DAY * 366, ..t1 } + S * 30;
        let mut d = daemon(dir.path());
        d.look_back_at_the_clock(t2, Some(&boot("b1", 1090)));
        assert_eq!(titles(&d), ["the system clock stepped +366 d"]);

        // Killed (nothing saved after the start), set back a day while down, started 10 min on.
        drop(d);
        let t3 = t2 + S * 600;
        let mut d = daemon(dir.path());
        d.look_back_at_the_clock(At { wall: t3.wall - DAY, ..t3 }, Some(&boot("b1", 1690)));
        let history = d.outbox.history();
        let told = &history.last().unwrap().alert;
        assert_eq!(told.title, "the system clock stepped −1 d while the watchdog was not running");
        assert_eq!((told.kind.as_str(), told.severity), ("clock_step", Severity::Info));
        assert!(told.details.contains("10 min ago by the time since boot"), "{}", told.details);
        let last_run = t3.wall - DAY;

        // Rebooted: a clock ahead of the last run tells nothing (the machine was off for how
        // long?); one behind it does, naming both times.
        drop(d);
        let mut d = daemon(dir.path());
        d.look_back_at_the_clock(At { wall: last_run + DAY * 30, ..t3 }, Some(&boot("b2", 20)));
        assert_eq!(d.outbox.history().len(), 2);
        drop(d);
        let early: jiff::Timestamp = "2024-06-01T00:00:00Z".parse().unwrap();
        let mut d = daemon(dir.path());
        d.look_back_at_the_clock(At { wall: early, ..t3 }, Some(&boot("b3", 20)));
        let history = d.outbox.history();
        assert_eq!(history.len(), 3);
        let told = &history[2].alert;
        assert_eq!(told.title, "the system clock is behind the last time the watchdog ran");
        assert_eq!((told.kind.as_str(), told.severity), ("clock_behind", Severity::Info));
        for when in [early, last_run + DAY * 30] {
            assert!(told.details.contains(&human_wall(when)), "{} in {}", human_wall(when), told.details);
        }
    }

    /// The daemon's wiring of the policy, with tokio's clock paused: the limit holds back, the
    /// summary comes when the period ends even across a restart, and a repeat within the
    /// cooldown is counted, not sent.
    #[tokio::test(start_paused = true)]
    async fn held_back_alerts_are_summed_up_when_the_period_ends_even_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = daemon(dir.path());
        d.apply("test:", vec![finding("a"), finding("b"), finding("c")], &HashMap::new());
        let history = d.outbox.history();
        assert_eq!(
            titles(&history),
            [
                ("a is broken".into(), None, 0),
                ("b is broken".into(), None, 0),
                ("c is broken".into(), Some("held back"), 0)
            ]
        );
        assert!(history[2].not_sent.as_deref().unwrap().contains("2 alerts were sent within 300 s"), "{history:#?}");

        // A restart 100 s into the period (the check before it saved what was held back).
        tokio::time::advance(Duration::from_secs(100)).await;
        d.send_summary();
        drop(d);
        let mut d = daemon(dir.path());
        d.send_summary();
        tokio::time::advance(Duration::from_secs(199)).await;
        d.send_summary();
        assert_eq!(d.outbox.history().len(), 3, "no summary before the period ends");
        tokio::time::advance(Duration::from_secs(1)).await;
        d.send_summary();
        let history = d.outbox.history();
        let summary = &history.last().unwrap().alert;
        assert_eq!(summary.title, "1 alerts held back by the rate limit");
        assert_eq!(summary.severity, Severity::Critical);
        assert!(summary.details.contains("1 × CRITICAL c is broken (test:c)"), "{}", summary.details);
        assert!(!dir.path().join(HELD_BACK_FILE).exists(), "nothing is held back any more");
        d.send_summary();
        assert_eq!(d.outbox.history().len(), 4, "the summary is sent once");

        // a is raised again (the new run's conditions start empty), resolved, and raised again
        // within its cooldown: the repeat is counted on its entry.
        d.apply("test:", vec![finding("a")], &HashMap::new());
        d.apply("test:", Vec::new(), &HashMap::new());
        d.apply("test:", vec![finding("a")], &HashMap::new());
        let history = d.outbox.history();
        assert_eq!(
            titles(&history[4..]),
            [("a is broken".into(), None, 1), ("resolved: a is broken".into(), None, 0)],
            "{history:#?}"
        );
    }
}
