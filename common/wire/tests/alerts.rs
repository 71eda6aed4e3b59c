//! The alert history file holds today's JSON byte for byte: the golden file was captured from
//! the watchdog's own history writer (its `HistoryFile`) before the types moved here.

use ds_wire::alerts::*;

const HISTORY: &str = include_str!("golden/alert-history.json");

fn history() -> AlertHistory {
    let t = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
    let alert = |id: &str, severity, action: Option<&str>, url: Option<&str>| Alert {
        id: id.into(),
        kind: format!("service_down:{id}"),
        severity,
        title: "service down: desktop-streamer.service".into(),
        details: "The unit is failed.".into(),
        since: t("2026-12-07T03:00:00Z"),
        raised_at: t("2026-12-07T03:00:05.25Z"),
        action: action.map(Into::into),
        host: "kiosk-7".into(),
        dashboard_url: url.map(Into::into),
    };
    let channel = |channel: &str, status| ChannelStatus { channel: channel.into(), status };
    AlertHistory {
        version: 1,
        entries: vec![
            HistoryEntry {
                alert: alert("a1", Severity::Critical, Some("restarted the unit"), Some("http://kiosk-7:8080/")),
                deliveries: vec![
                    channel("email", DeliveryStatus::Delivered { at: t("2026-12-07T03:00:06Z"), attempts: 1 }),
                    channel(
                        "webhook:1",
                        DeliveryStatus::Pending {
                            attempts: 2,
                            next_attempt: t("2026-12-07T03:01:00Z"),
                            last_error: Some("HTTP 503".into()),
                        },
                    ),
                    channel(
                        "webhook:2",
                        DeliveryStatus::Failed {
                            at: t("2026-12-07T03:00:07Z"),
                            attempts: 1,
                            reason: "HTTP 400".into(),
                        },
                    ),
                    channel(
                        "webhook:3",
                        DeliveryStatus::Expired {
                            at: t("2026-12-08T03:00:07Z"),
                            attempts: 9,
                            reason: "older than 24 h".into(),
                        },
                    ),
                ],
                not_sent: None,
                repeats: 0,
            },
            HistoryEntry {
                alert: alert("a2", Severity::Warning, None, None),
                deliveries: vec![],
                not_sent: Some("held back: quiet hours".into()),
                repeats: 3,
            },
            HistoryEntry {
                alert: alert("a3", Severity::Info, None, None),
                deliveries: vec![channel(
                    "email",
                    DeliveryStatus::Pending { attempts: 0, next_attempt: t("2026-12-07T03:00:05Z"), last_error: None },
                )],
                not_sent: None,
                repeats: 0,
            },
        ],
    }
}

#[test]
fn the_history_file_is_written_and_read_as_today() {
    assert_eq!(serde_json::to_string(&history()).unwrap(), HISTORY.trim_end());
    assert_eq!(serde_json::from_str::<AlertHistory>(HISTORY).unwrap(), history());
}

#[test]
fn the_dashboard_reply_is_the_entries_alone() {
    let reply = AlertsReply { entries: history().entries };
    let written = serde_json::to_string(&reply).unwrap();
    let entries = &HISTORY.trim_end()["{\"version\":1,".len()..];
    assert_eq!(written, format!("{{{entries}"));
    assert_eq!(serde_json::from_str::<AlertsReply>("{}").unwrap(), AlertsReply::default(), "no history yet");
}

#[test]
fn the_subject_names_severity_title_and_host() {
    let a = &history().entries[0].alert;
    assert_eq!(a.subject(), "[desktop-streamer] CRITICAL service down: desktop-streamer.service on kiosk-7");
}
