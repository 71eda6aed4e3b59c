//! Monitor discovery and change events against a real Xorg server with two RandR monitors
//! (`ds_tests::xorg`), one server per test so the tests run in parallel.

use std::time::{Duration, Instant};

use desktop_streamer::monitor::{
    Monitor, MonitorState, MonitorWatcher, RECONNECT_INTERVAL, Selection, list_monitors, select,
};
use ds_tests::wait::wait_until_async;
use ds_tests::xorg::DummyDisplay;
use tokio::sync::watch;

/// Bound on each wait for a RandR change to reach the receiver.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on noticing a restarted server: one reconnect interval plus Xorg's own start.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn start_display() -> DummyDisplay {
    DummyDisplay::start().unwrap_or_else(|e| panic!("cannot start a dummy X server: {e}"))
}

fn watch(display: &DummyDisplay, screen: u32, name: Option<&str>) -> (MonitorWatcher, watch::Receiver<MonitorState>) {
    MonitorWatcher::spawn(&display.display(), Selection { screen, name: name.map(Into::into) }).unwrap()
}

/// Waits until the state satisfies `pred` and returns it; panics with the last state on timeout.
async fn wait_for(
    rx: &mut watch::Receiver<MonitorState>,
    timeout: Duration,
    what: &str,
    pred: impl FnMut(&MonitorState) -> bool,
) -> MonitorState {
    let result = tokio::time::timeout(timeout, rx.wait_for(pred)).await.map(|r| r.map(|state| state.clone()));
    match result {
        Ok(Ok(state)) => state,
        Ok(Err(_)) => panic!("the watcher stopped while waiting for {what}"),
        Err(_) => panic!("no {what} within {timeout:?}; last state: {:?}", *rx.borrow()),
    }
}

async fn available(rx: &mut watch::Receiver<MonitorState>, timeout: Duration) -> Monitor {
    let state = wait_for(rx, timeout, "available monitor", |s| matches!(s, MonitorState::Available(_))).await;
    state.monitor().cloned().expect("available")
}

fn second() -> Monitor {
    Monitor {
        name: "DUMMY1".into(),
        x: 1920,
        y: 0,
        width: 1280,
        height: 720,
        primary: false,
        outputs: vec!["DUMMY1".into()],
    }
}

#[test]
fn lists_both_monitors_in_randr_order_with_their_geometry() {
    let display = start_display();
    let monitors = list_monitors(&display.display()).unwrap();
    let first = Monitor {
        name: "DUMMY0".into(),
        x: 0,
        y: 0,
        width: 1920,
        height: 1080,
        primary: true,
        outputs: vec!["DUMMY0".into()],
    };
    assert_eq!(monitors, [first.clone(), second()]);

    assert_eq!(select(&monitors, 0, None), Some(&first));
    assert_eq!(select(&monitors, 1, None), Some(&second()));
    assert_eq!(select(&monitors, 2, None), None);
    assert_eq!(select(&monitors, 1, Some("DUMMY0")), Some(&first), "a name wins over the index");
    assert_eq!(select(&monitors, 0, Some("HDMI-1")), None);
}

#[test]
fn listing_a_display_without_server_names_the_display() {
    let mut display = start_display();
    display.kill_server().unwrap();
    let err = list_monitors(&display.display()).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with(&format!("cannot connect to X display {}: ", display.display())), "{text}");
}

#[tokio::test]
async fn watcher_reports_the_selected_monitor_by_index_and_by_name() {
    let display = start_display();
    let (_w0, mut by_index0) = watch(&display, 0, None);
    let (_w1, mut by_index1) = watch(&display, 1, None);
    let (_w2, mut by_name) = watch(&display, 1, Some("DUMMY0"));
    let (_w3, mut out_of_range) = watch(&display, 5, None);

    assert_eq!(available(&mut by_index0, CHANGE_TIMEOUT).await.name, "DUMMY0");
    assert_eq!(available(&mut by_index1, CHANGE_TIMEOUT).await, second());
    assert_eq!(available(&mut by_name, CHANGE_TIMEOUT).await.name, "DUMMY0");
    let state =
        wait_for(&mut out_of_range, CHANGE_TIMEOUT, "missing", |s| matches!(s, MonitorState::Missing { .. })).await;
    let MonitorState::Missing { reason } = state else { unreachable!() };
    assert!(reason.starts_with(&format!("screen 5 is selected but X display {} has 2 monitor(s)", display.display())));
}

#[tokio::test]
async fn second_monitor_off_is_missing_and_on_again_is_available() {
    let display = start_display();
    let (_watcher, mut rx) = watch(&display, 1, None);
    let (_other, mut first) = watch(&display, 0, None);
    assert_eq!(available(&mut rx, CHANGE_TIMEOUT).await, second());
    assert_eq!(available(&mut first, CHANGE_TIMEOUT).await.name, "DUMMY0");
    first.mark_unchanged();
    // Everything the first monitor's watcher sends from now on, until it reports the first
    // monitor resized (the last change below).
    let mut first_rx = first.clone();
    let first_sent = tokio::spawn(async move {
        let mut sent = Vec::new();
        while first_rx.changed().await.is_ok() {
            let state = first_rx.borrow_and_update().clone();
            let resized = state.monitor().is_some_and(|m| m.width == 1280);
            sent.push(state);
            if resized {
                break;
            }
        }
        sent
    });

    let off = Instant::now();
    display.second_monitor_off().unwrap();
    let state = wait_for(&mut rx, CHANGE_TIMEOUT, "missing", |s| matches!(s, MonitorState::Missing { .. })).await;
    println!("missing after {:?}: {state:?}", off.elapsed());

    display.second_monitor_on().unwrap();
    assert_eq!(available(&mut rx, CHANGE_TIMEOUT).await, second());

    // Resizing is a change too.
    display.xrandr(&["--addmode", "DUMMY1", "1920x1080"]).unwrap();
    display.xrandr(&["--output", "DUMMY1", "--mode", "1920x1080"]).unwrap();
    let resized =
        wait_for(&mut rx, CHANGE_TIMEOUT, "resized monitor", |s| s.monitor().is_some_and(|m| m.width == 1920)).await;
    assert_eq!(resized.monitor().map(|m| (m.x, m.width, m.height)), Some((1920, 1920, 1080)));

    // None of this touched the first monitor: its watcher saw the same events and stayed
    // quiet. That it was looking shows when the first monitor itself changes afterwards: that
    // change is the first thing it sends.
    display.xrandr(&["--addmode", "DUMMY0", "1280x720"]).unwrap();
    display.xrandr(&["--output", "DUMMY0", "--mode", "1280x720"]).unwrap();
    let sent = tokio::time::timeout(CHANGE_TIMEOUT, first_sent)
        .await
        .unwrap_or_else(|_| {
            panic!("the first monitor's resize not sent within {CHANGE_TIMEOUT:?}: {:?}", *first.borrow())
        })
        .unwrap();
    assert_eq!(sent.len(), 1, "first monitor watcher sent more than its own resize: {sent:?}");
    assert_eq!(sent[0].monitor().map(|m| (m.name.as_str(), m.width)), Some(("DUMMY0", 1280)), "{sent:?}");
}

#[tokio::test]
async fn server_gone_is_x_unavailable_and_back_is_available() {
    let mut display = start_display();
    let (watcher, mut rx) = watch(&display, 1, None);
    assert_eq!(available(&mut rx, CHANGE_TIMEOUT).await, second());

    display.kill_server().unwrap();
    let state =
        wait_for(&mut rx, CHANGE_TIMEOUT, "X unavailable", |s| matches!(s, MonitorState::XUnavailable { .. })).await;
    let MonitorState::XUnavailable { reason } = state else { unreachable!() };
    assert!(reason.contains(&format!("X display {}", display.display())), "{reason}");

    // Retries keep the state without waking the receiver, but refresh the reason.
    let retried = format!("cannot connect to X display {}", display.display());
    wait_until_async("the reason refreshed by a retry", RECONNECT_INTERVAL + CHANGE_TIMEOUT, || {
        let reason = format!("{:?}", *rx.borrow());
        let refreshed = reason.contains(&retried);
        async move { if refreshed { Ok(()) } else { Err(reason) } }
    })
    .await;
    assert!(!rx.has_changed().unwrap(), "a retry woke the receiver: {:?}", *rx.borrow());

    display.restart_server().unwrap();
    assert_eq!(available(&mut rx, RECONNECT_TIMEOUT).await, second());

    // Stopping is prompt even in the middle of a reconnect wait.
    display.kill_server().unwrap();
    wait_for(&mut rx, CHANGE_TIMEOUT, "X unavailable", |s| matches!(s, MonitorState::XUnavailable { .. })).await;
    let stop = Instant::now();
    drop(watcher);
    assert!(stop.elapsed() < Duration::from_millis(500), "stopping took {:?}", stop.elapsed());
    let closed = tokio::time::timeout(Duration::from_secs(1), rx.changed()).await;
    assert!(matches!(closed, Ok(Err(_))), "the watcher thread is still running");
}

#[tokio::test]
async fn watcher_started_without_server_reports_it_and_connects_when_it_comes() {
    let mut display = start_display();
    display.kill_server().unwrap();
    let (_watcher, mut rx) = watch(&display, 1, None);
    wait_for(&mut rx, CHANGE_TIMEOUT, "X unavailable", |s| matches!(s, MonitorState::XUnavailable { .. })).await;
    display.restart_server().unwrap();
    assert_eq!(available(&mut rx, RECONNECT_TIMEOUT).await, second());
}
