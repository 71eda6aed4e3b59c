//! The systemd client against a real `systemd --user` on its own D-Bus bus (see
//! `ds_tests::systemd`): states, failure notices, restarts, unknown units and start limits as
//! systemd itself reports them. Needs root and the Debian packages systemd, dbus, util-linux.

use std::time::{Duration, Instant};

use ds_systemd::{ActiveState, Systemd, SystemdError, UnitState, UnitWatch};
use ds_tests::systemd::UserSystemd;

/// How soon a failure must be reported (the "within about a second").
const NOTICE_LIMIT: Duration = Duration::from_secs(1);
/// Bound on every other wait.
const WAIT: Duration = Duration::from_secs(10);

/// A manager with `unit` written, loaded and, if `start`, running; and a client on its bus.
async fn setup(unit: &str, extra_unit: &str) -> (UserSystemd, Systemd) {
    let user = tokio::task::spawn_blocking(UserSystemd::start).await.unwrap().expect("start systemd --user");
    user.write_sleep_unit(unit, extra_unit).unwrap();
    user.daemon_reload().unwrap();
    user.start_unit(unit).unwrap();
    let systemd = Systemd::connect_address(&user.bus_address()).await.expect("connect to the user manager");
    (user, systemd)
}

/// The next state the watch reports, bounded by `limit`.
async fn next(watch: &mut UnitWatch, limit: Duration) -> UnitState {
    match tokio::time::timeout(limit, watch.recv()).await {
        Ok(Some(Ok(state))) => state,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no state change within {limit:?}"),
    }
}

/// States reported until one satisfies `done`, bounded by `limit` in total.
async fn until(watch: &mut UnitWatch, limit: Duration, done: impl Fn(&UnitState) -> bool) -> UnitState {
    let deadline = Instant::now() + limit;
    loop {
        let state = next(watch, deadline.saturating_duration_since(Instant::now())).await;
        if done(&state) {
            return state;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_state_of_a_running_unit() {
    let (user, systemd) = setup("reader.service", "").await;
    let state = systemd.unit("reader.service").await.unwrap();
    assert_eq!(state.name, "reader.service");
    assert_eq!(state.load_state, "loaded");
    assert_eq!(state.active_state, ActiveState::Active);
    assert_eq!(state.sub_state, "running");
    assert_eq!(state.result, "success");
    assert_eq!(state.n_restarts, 0);
    assert!(state.main_pid > 0);
    assert_eq!(state.main_pid, user.main_pid("reader.service").unwrap());
    assert!(!state.start_limit_hit);
    // systemd's defaults (DefaultStartLimitBurst=5, DefaultStartLimitIntervalSec=10s).
    assert_eq!((state.start_limit.burst, state.start_limit.interval), (5, Duration::from_secs(10)));
    assert!(systemd.version().starts_with(|c: char| c.is_ascii_digit()), "version {:?}", systemd.version());

    let json = serde_json::to_value(&state).unwrap();
    assert_eq!(json["active_state"], "active");
    assert_eq!(json["sub_state"], "running");
    assert_eq!(json["main_pid"], state.main_pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_unit_is_noticed_at_once_and_a_restart_brings_it_back() {
    let (user, systemd) = setup("victim.service", "").await;
    let mut watch = systemd.watch(&["victim.service".to_owned()]).await.unwrap();
    let initial = next(&mut watch, WAIT).await;
    assert_eq!(initial.active_state, ActiveState::Active);
    let old_pid = initial.main_pid;

    // The harness reads MainPID first and sends SIGKILL last: time it from its return.
    assert_eq!(user.kill_main_process("victim.service").unwrap(), old_pid);
    let killed_at = Instant::now();
    let failed = until(&mut watch, NOTICE_LIMIT, |s| s.is_down()).await;
    let delay = killed_at.elapsed();
    println!("failure of victim.service reported {:.1} ms after SIGKILL", delay.as_secs_f64() * 1000.0);
    assert_eq!(failed.active_state, ActiveState::Failed);
    assert_eq!(failed.sub_state, "failed");
    assert_eq!(failed.result, "signal");
    assert_eq!((failed.exec_main_code, failed.exec_main_status), (2, 9));
    assert_eq!(failed.exit_description().as_deref(), Some("killed by signal 9"));
    assert_eq!(failed.main_pid, 0);
    assert!(!failed.start_limit_hit);

    let job = systemd.restart("victim.service").await.unwrap();
    let restarted = tokio::time::timeout(WAIT, job.wait()).await.expect("restart job finished").unwrap();
    assert_eq!(restarted.active_state, ActiveState::Active);
    assert!(restarted.main_pid > 0 && restarted.main_pid != old_pid, "main pid {}", restarted.main_pid);
    assert_eq!(restarted.main_pid, user.main_pid("victim.service").unwrap());
    assert_ne!(restarted.invocation_id, initial.invocation_id);
    // systemd counts only its own automatic restarts in NRestarts, not one asked for over D-Bus.
    assert_eq!(restarted.n_restarts, 0);
    assert_eq!(user.show("victim.service", "NRestarts").unwrap(), "0");

    let back = until(&mut watch, WAIT, |s| s.is_active()).await;
    assert_eq!(back.main_pid, restarted.main_pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_that_does_not_exist_is_named_in_the_error() {
    let (_user, systemd) = setup("present.service", "").await;
    let err = systemd.unit("absent.service").await.unwrap_err();
    assert!(matches!(&err, SystemdError::NoSuchUnit { unit, .. } if unit == "absent.service"), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("absent.service") && text.contains("no unit"), "{text}");

    let err = systemd.restart("absent.service").await.unwrap_err();
    assert!(matches!(err, SystemdError::NoSuchUnit { .. }), "{err:?}");
    let err = systemd.watch(&["present.service".to_owned(), "absent.service".to_owned()]).await.unwrap_err();
    assert!(err.to_string().contains("absent.service"), "{err}");
}

/// The watchdog's own loop: kill, restart, kill, restart. systemd refuses the start past
/// `StartLimitBurst`, yet the unit's `Result` stays `signal` from the last kill; the refused
/// job must still come back as a start limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_past_the_start_limit_are_reported_as_such() {
    let (user, systemd) = setup("limited.service", "StartLimitBurst=2\nStartLimitIntervalSec=60").await;
    // The start in setup was the first of two allowed.
    user.kill_main_process("limited.service").unwrap();
    let job = systemd.restart("limited.service").await.unwrap();
    tokio::time::timeout(WAIT, job.wait()).await.unwrap().expect("second start is allowed");

    user.kill_main_process("limited.service").unwrap();
    let job = systemd.restart("limited.service").await.unwrap();
    let err = tokio::time::timeout(WAIT, job.wait()).await.unwrap().unwrap_err();
    match &err {
        SystemdError::StartLimitHit { unit, burst, interval_s, .. } => {
            assert_eq!((unit.as_str(), *burst, *interval_s), ("limited.service", 2, 60));
        }
        other => panic!("expected a start limit, got {other:?}"),
    }
    assert!(err.to_string().contains("start limit"), "{err}");
    let state = systemd.unit("limited.service").await.unwrap();
    assert_eq!(state.active_state, ActiveState::Failed);
    assert_eq!(state.result, "signal", "systemd keeps the earlier result");
    assert_eq!((state.start_limit.burst, state.start_limit.interval), (2, Duration::from_secs(60)));
    assert_eq!(serde_json::to_value(&state).unwrap()["start_limit"], serde_json::json!({"burst": 2, "interval_s": 60}));
}

/// A unit that systemd itself restarts until the start limit stops it: the watch reports
/// `start-limit-hit`, and a restart is refused as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_in_its_start_limit_is_reported_by_the_watch() {
    let user = tokio::task::spawn_blocking(UserSystemd::start).await.unwrap().unwrap();
    user.write_unit(
        "flapping.service",
        "[Unit]\nStartLimitBurst=3\nStartLimitIntervalSec=60\n\n\
         [Service]\nExecStart=/bin/true\nRestart=always\nRestartSec=100ms\n",
    )
    .unwrap();
    user.daemon_reload().unwrap();
    let systemd = Systemd::connect_address(&user.bus_address()).await.unwrap();
    let mut watch = systemd.watch(&["flapping.service".to_owned()]).await.unwrap();
    assert_eq!(next(&mut watch, WAIT).await.active_state, ActiveState::Inactive);
    systemd.start("flapping.service").await.unwrap();

    // Result (Service) and ActiveState (Unit) change in separate signals, one per interface:
    // wait for the state in which both have arrived.
    let limited = until(&mut watch, WAIT, |s| s.start_limit_hit && s.active_state == ActiveState::Failed).await;
    assert_eq!(limited.result, "start-limit-hit");
    assert_eq!(limited.n_restarts, 3);
    assert_eq!(serde_json::to_value(&limited).unwrap()["start_limit_hit"], true);

    let err = tokio::time::timeout(WAIT, systemd.restart("flapping.service").await.unwrap().wait())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, SystemdError::StartLimitHit { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_ends_with_an_error_when_systemd_goes_away() {
    let (mut user, systemd) = setup("orphan.service", "").await;
    let mut watch = systemd.watch(&["orphan.service".to_owned()]).await.unwrap();
    next(&mut watch, WAIT).await;
    let user = tokio::task::spawn_blocking(move || {
        user.stop();
        user
    })
    .await
    .unwrap();
    let end = tokio::time::timeout(WAIT, async {
        loop {
            match watch.recv().await {
                Some(Ok(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the watch noticed within 10 s");
    match end {
        Some(Err(e @ SystemdError::Lost { .. })) => assert!(e.to_string().contains("lost systemd"), "{e}"),
        other => panic!("expected Lost, got {other:?}"),
    }
    drop(user);
}

#[tokio::test]
async fn an_unreachable_bus_says_which_and_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix:path={}", dir.path().join("no-bus").display());
    let err = Systemd::connect_address(&address).await.unwrap_err();
    assert!(matches!(err, SystemdError::Connect { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&address) && text.contains("is dbus running"), "{text}");
}

#[tokio::test]
async fn stop_then_start_over_dbus() {
    let sd = UserSystemd::start().unwrap();
    sd.write_sleep_unit("stoppable.service", "").unwrap();
    sd.daemon_reload().unwrap();
    sd.start_unit("stoppable.service").unwrap();
    let systemd = Systemd::connect_address(&sd.bus_address()).await.unwrap();
    let stopped =
        tokio::time::timeout(Duration::from_secs(10), systemd.stop("stoppable.service").await.unwrap().wait())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(stopped.active_state, ActiveState::Inactive);
    assert_eq!(sd.main_pid("stoppable.service").unwrap(), 0);
    let started =
        tokio::time::timeout(Duration::from_secs(10), systemd.start("stoppable.service").await.unwrap().wait())
            .await
            .unwrap()
            .unwrap();
    assert!(started.is_active() && started.main_pid > 0);
}
