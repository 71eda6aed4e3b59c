//! The dashboard's status document holds today's JSON byte for byte. The golden documents
//! follow the dashboard's writer as it was before the types (one `json!` object: service,
//! stream, health, system, gpu, services, unreachable, sampled_at), with the streamer's parts
//! embedded exactly as the streamer's golden `/api/status` has them, and `clock` added since.

use ds_wire::health::{ServiceDetails, ServiceReport, StreamerStatus};
use ds_wire::status::*;
use ds_wire::system::{ClockSync, SystemSample, VramUse};

const UP: &str = include_str!("golden/dashboard-status.json");
const DOWN: &str = include_str!("golden/dashboard-status-unreachable.json");
const STREAMER: &str = include_str!("golden/streamer-status.json");

fn up() -> DashboardStatus {
    let streamer: StreamerStatus = serde_json::from_str(STREAMER).unwrap();
    DashboardStatus {
        service: Some(ServiceReport {
            active: true,
            details: ServiceDetails { active_state: "active".into(), sub_state: "running".into() },
            managed_by_systemd: None,
        }),
        stream: Some(streamer.stream),
        health: Some(streamer.health),
        system: Some(SystemSample {
            cpu_percent: 12.5,
            memory_percent: 40.25,
            process_memory_mb: 30.0,
            disk_usage_percent: Some(61.0),
        }),
        gpu: vec![VramUse { card: "card0".into(), used_bytes: 1 << 30, total_bytes: 4 << 30 }],
        clock: Some(ClockSync { synchronized: Some(true), ntp_enabled: Some(true), error: None }),
        services: vec![UnitStatus {
            name: "desktop-streamer.service".into(),
            load_state: "loaded".into(),
            active_state: "active".into(),
            sub_state: "running".into(),
            result: "success".into(),
            n_restarts: 2,
            exec_main_code: 0,
            exec_main_status: 0,
            main_pid: 4242,
            invocation_id: "0a1b2c".into(),
            start_limit_hit: false,
            job_pending: false,
            start_limit: StartLimit { burst: 5, interval_s: 10 },
        }],
        unreachable: Vec::new(),
        sampled_at: "2026-12-07T03:00:01Z".parse().unwrap(),
    }
}

fn down() -> DashboardStatus {
    DashboardStatus {
        service: None,
        stream: None,
        health: None,
        system: None,
        gpu: Vec::new(),
        clock: Some(ClockSync::unknown("cannot connect to the system bus")),
        services: Vec::new(),
        unreachable: vec![
            Unreachable {
                part: "streamer".into(),
                error: "http://127.0.0.1:8888/api/status: connection refused".into(),
            },
            Unreachable { part: "systemd".into(), error: "no D-Bus".into() },
        ],
        sampled_at: "2026-12-07T03:00:02Z".parse().unwrap(),
    }
}

#[test]
fn the_status_document_is_written_and_read_as_today() {
    assert_eq!(serde_json::to_string(&up()).unwrap(), UP.trim_end());
    assert_eq!(serde_json::from_str::<DashboardStatus>(UP).unwrap(), up());
}

#[test]
fn parts_that_could_not_be_had_are_null_and_named() {
    assert_eq!(serde_json::to_string(&down()).unwrap(), DOWN.trim_end());
    assert_eq!(serde_json::from_str::<DashboardStatus>(DOWN).unwrap(), down());
}

#[test]
fn a_unit_action_reply_reads_with_or_without_a_state() {
    let done: ActionReply = serde_json::from_str(
        r#"{"unit":"desktop-streamer.service","action":"restart","state":{"name":"desktop-streamer.service","active_state":"active","sub_state":"running"}}"#,
    )
    .unwrap();
    assert_eq!(done.state.map(|s| s.sub_state), Some("running".to_owned()));
    let accepted: ActionReply = serde_json::from_str(r#"{"message":"cleanup started"}"#).unwrap();
    assert_eq!((accepted.unit, accepted.message.as_deref()), (None, Some("cleanup started")));
}

/// A document from a dashboard older than `clock` reads with the clock unknown.
#[test]
fn a_document_without_the_clock_reads_as_unknown() {
    let mut old: serde_json::Value = serde_json::from_str(UP).unwrap();
    old.as_object_mut().unwrap().remove("clock");
    let read: DashboardStatus = serde_json::from_value(old).unwrap();
    assert_eq!(read, DashboardStatus { clock: None, ..up() });
}
