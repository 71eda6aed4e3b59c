//! Alert delivery against real peers on loopback: aiosmtpd (Debian's python3-aiosmtpd) as the
//! SMTP server, with and without AUTH, and small HTTP receivers for the webhooks. Time is passed
//! to the outbox, so backoff and expiry are tested without sleeping.

use std::sync::Arc;
use std::time::Duration;

use desktop_streamer_watchdog::alert::{Alert, Severity};
use desktop_streamer_watchdog::channel::{Channel, channels_from_config};
use desktop_streamer_watchdog::clock::{At, Boot};
use desktop_streamer_watchdog::delivery::DeliveryError;
use desktop_streamer_watchdog::history::{DeliveryStatus, read_history};
use desktop_streamer_watchdog::outbox::{DeliveryReport, Outbox};
use ds_config::watchdog::{SmtpTls, WebhookFormat};
use ds_config::{Secret, WatchdogConfig};
use ds_tests::receiver::Receiver;
use ds_tests::smtp::{SmtpServer, free_port, maildir_messages};
use ds_tests::wait::wait_until_async;
use jiff::Timestamp;

const DAY: Duration = Duration::from_secs(86_400);
const WAIT: Duration = Duration::from_secs(10);

fn alert(id: &str, severity: Severity, title: &str, raised_at: Timestamp) -> Alert {
    Alert {
        id: id.to_owned(),
        kind: format!("test:{id}"),
        severity,
        title: title.to_owned(),
        details: format!("{title}: seen by the test {id}."),
        since: raised_at - Duration::from_secs(42),
        raised_at,
        action: Some("restarted the unit".to_owned()),
        host: "kiosk-7".to_owned(),
        dashboard_url: Some("http://kiosk-7:8080/".to_owned()),
    }
}

fn down(id: &str, raised_at: Timestamp) -> Alert {
    alert(id, Severity::Critical, "service down: desktop-streamer.service", raised_at)
}

fn email_config(port: u16) -> WatchdogConfig {
    let mut c = WatchdogConfig::default();
    let e = &mut c.email_alerts;
    e.enabled = true;
    e.smtp_server = "127.0.0.1".to_owned();
    e.smtp_port = port;
    e.tls = Some(SmtpTls::None);
    e.from_email = "watchdog@kiosk-7.example.com".to_owned();
    e.to_email = vec!["ops@example.com".to_owned(), "oncall@example.com".to_owned()];
    c
}

fn channels(config: &WatchdogConfig) -> Vec<Channel> {
    channels_from_config(config).unwrap_or_else(|e| panic!("{e}"))
}

fn email(port: u16) -> Vec<Channel> {
    channels(&email_config(port))
}

fn webhook(url: &str, format: WebhookFormat) -> Vec<Channel> {
    let mut c = WatchdogConfig::default();
    c.webhook_alerts.enabled = true;
    c.webhook_alerts.url = vec![url.to_owned()];
    c.webhook_alerts.format = format;
    channels(&c)
}

fn ids(channels: &[Channel]) -> Vec<String> {
    channels.iter().map(Channel::id).collect()
}

/// Header lines joined with their continuation lines, so a folded Subject reads as one line.
fn unfold(message: &str) -> String {
    message.replace("\r\n", "\n").replace("\n ", " ").replace("\n\t", " ")
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

fn status_of(state_dir: &std::path::Path, alert_id: &str) -> DeliveryStatus {
    let history = read_history(state_dir).unwrap();
    let entry = history.iter().find(|e| e.alert.id == alert_id).unwrap_or_else(|| panic!("{alert_id} not in history"));
    assert_eq!(entry.deliveries.len(), 1, "{entry:?}");
    entry.deliveries[0].status.clone()
}

#[tokio::test]
async fn an_email_arrives_with_its_subject_and_body() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let smtp = SmtpServer::start(port, &dir.path().join("maildir"));
    let channels = email(port);
    assert_eq!(ids(&channels), ["email"]);
    let outbox = Outbox::open(&dir.path().join("state"), DAY).unwrap();
    let now = At::now();
    outbox.enqueue(&down("a1", now.wall), &ids(&channels)).unwrap();

    let report = outbox.deliver_due(&channels, now).await.unwrap();
    assert_eq!(report, DeliveryReport { delivered: 1, ..DeliveryReport::default() });

    let messages = smtp.wait_for(1, WAIT);
    assert_eq!(messages.len(), 1);
    let m = unfold(&messages[0]);
    assert!(
        m.contains("\nSubject: [desktop-streamer] CRITICAL service down: desktop-streamer.service on kiosk-7\n"),
        "{m}"
    );
    assert!(m.contains("X-RcptTo: ops@example.com, oncall@example.com"), "{m}");
    assert!(m.contains("Message-ID: <a1@desktop-streamer>"), "{m}");
    assert!(m.contains("service down: desktop-streamer.service: seen by the test a1."), "{m}");
    assert!(m.contains(&format!("Since: {}", now.wall - Duration::from_secs(42))), "{m}");
    assert!(m.contains("Action: restarted the unit"), "{m}");
    assert!(m.contains("Dashboard: http://kiosk-7:8080/"), "{m}");

    assert!(files_in(outbox.dir()).is_empty());
    assert_eq!(status_of(&dir.path().join("state"), "a1"), DeliveryStatus::Delivered { at: now.wall, attempts: 1 });
}

#[tokio::test]
async fn smtp_auth_right_credentials_deliver_and_wrong_ones_are_refused_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let smtp = SmtpServer::start_with_auth(port, &dir.path().join("maildir"), "ops", "correct horse");
    let now = At::now();

    // The right password, from the first line of a file.
    let password_file = dir.path().join("smtp-password");
    std::fs::write(&password_file, "correct horse\n").unwrap();
    let mut config = email_config(port);
    config.email_alerts.username = "ops".to_owned();
    config.email_alerts.password_file = Some(password_file);
    let good = channels(&config);
    good[0].deliver(&down("a1", now.wall)).await.unwrap();
    assert_eq!(smtp.wait_for(1, WAIT).len(), 1);

    // A wrong password: refused for good, and the password is not in the reason.
    let mut config = email_config(port);
    config.email_alerts.username = "ops".to_owned();
    config.email_alerts.password = Secret::new("wrong-battery-staple");
    let bad = channels(&config);
    let state = dir.path().join("state");
    let outbox = Outbox::open(&state, DAY).unwrap();
    outbox.enqueue(&down("a2", now.wall), &ids(&bad)).unwrap();
    let report = outbox.deliver_due(&bad, now).await.unwrap();
    assert_eq!(report, DeliveryReport { failed: 1, ..DeliveryReport::default() });
    let DeliveryStatus::Failed { reason, attempts: 1, .. } = status_of(&state, "a2") else {
        panic!("{:?}", status_of(&state, "a2"))
    };
    assert!(reason.contains("535") && reason.contains("check email_alerts.username and the password"), "{reason}");
    assert!(!reason.contains("wrong-battery-staple"), "{reason}");
    assert!(files_in(outbox.dir()).is_empty(), "a refused delivery is not kept");
    let later = outbox.deliver_due(&bad, now + Duration::from_secs(3600)).await.unwrap();
    assert_eq!(later, DeliveryReport::default(), "not retried");

    // No credentials at all: the server's 530 is permanent too.
    let err = email(port)[0].deliver(&down("a3", now.wall)).await.unwrap_err();
    assert!(matches!(&err, DeliveryError::Permanent(r) if r.contains("530")), "{err}");
    assert_eq!(smtp.messages().len(), 1, "only the authenticated message arrived");
}

#[tokio::test]
async fn an_smtp_server_that_is_not_there_is_a_temporary_failure() {
    let port = free_port();
    let err = email(port)[0].deliver(&down("a1", Timestamp::now())).await.unwrap_err();
    let DeliveryError::Temporary(reason) = &err else { panic!("{err}") };
    assert!(reason.starts_with(&format!("SMTP server smtp://127.0.0.1:{port} (plain): ")), "{reason}");
}

#[tokio::test]
async fn slack_gets_attachments_coloured_by_severity() {
    let receiver = Receiver::start(&[200]);
    let channels = webhook(&receiver.url("/services/T000/B000/slack-secret"), WebhookFormat::Slack);
    let id = &ids(&channels)[0];
    assert!(id.starts_with(&format!("webhook:{}/services/…#", receiver.url(""))), "{id}");
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path(), DAY).unwrap();
    let now = At::now();
    outbox.enqueue(&down("a1", now.wall), &ids(&channels)).unwrap();
    outbox.enqueue(&alert("a2", Severity::Warning, "stream stale", now.wall), &ids(&channels)).unwrap();
    outbox.enqueue(&alert("a3", Severity::Info, "service back up", now.wall), &ids(&channels)).unwrap();
    let report = outbox.deliver_due(&channels, now).await.unwrap();
    assert_eq!(report.delivered, 3);

    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    let r = &requests[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/services/T000/B000/slack-secret"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["text"], "[desktop-streamer] CRITICAL service down: desktop-streamer.service on kiosk-7");
    let a = &body["attachments"][0];
    assert_eq!(a["color"], "danger");
    assert_eq!(a["title"], "service down: desktop-streamer.service");
    assert_eq!(a["title_link"], "http://kiosk-7:8080/");
    assert_eq!(a["text"], "service down: desktop-streamer.service: seen by the test a1.");
    assert_eq!(a["ts"], now.wall.as_second());
    let fields: Vec<(String, String)> = a["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["title"].as_str().unwrap().to_owned(), f["value"].as_str().unwrap().to_owned()))
        .collect();
    assert!(fields.contains(&("Host".to_owned(), "kiosk-7".to_owned())), "{fields:?}");
    assert!(fields.contains(&("Action".to_owned(), "restarted the unit".to_owned())), "{fields:?}");
    let colours: Vec<_> = requests.iter().map(|r| r.json()["attachments"][0]["color"].clone()).collect();
    assert_eq!(colours, ["danger", "warning", "good"], "in enqueue order, coloured by severity");
}

#[tokio::test]
async fn discord_gets_an_embed_with_an_integer_colour() {
    let receiver = Receiver::start(&[204]);
    let channels = webhook(&receiver.url("/api/webhooks/123/discord-token"), WebhookFormat::Discord);
    let now = Timestamp::now();
    channels[0].deliver(&down("a1", now)).await.unwrap();
    channels[0].deliver(&alert("a2", Severity::Warning, "stream stale", now)).await.unwrap();

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, "/api/webhooks/123/discord-token");
    let body = requests[0].json();
    let e = &body["embeds"][0];
    assert_eq!(e["title"], "[desktop-streamer] CRITICAL service down: desktop-streamer.service on kiosk-7");
    assert_eq!(e["description"], "service down: desktop-streamer.service: seen by the test a1.");
    assert_eq!(e["color"], 0xE7_4C_3C);
    assert!(e["color"].is_u64(), "Discord wants an integer colour");
    assert_eq!(e["timestamp"], now.to_string());
    assert_eq!(e["url"], "http://kiosk-7:8080/");
    assert_eq!(requests[1].json()["embeds"][0]["color"], 0xF1_C4_0F);
}

#[tokio::test]
async fn generic_json_gets_the_alert_itself() {
    let receiver = Receiver::start(&[202]);
    let channels = webhook(&receiver.url("/alerts?token=json-secret"), WebhookFormat::Auto);
    let a = down("a1", Timestamp::now());
    channels[0].deliver(&a).await.unwrap();

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/alerts?token=json-secret");
    let body = requests[0].json();
    assert_eq!(body["id"], "a1");
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["host"], "kiosk-7");
    assert_eq!(body["raised_at"], a.raised_at.to_string());
    assert_eq!(body["subject"], a.subject());
    assert_eq!(body["text"], a.text());
    let back: Alert = serde_json::from_value(body).unwrap();
    assert_eq!(back, a, "the alert's own fields round-trip");
}

#[tokio::test]
async fn a_500_is_retried_after_the_backoff_and_then_delivered() {
    let receiver = Receiver::start(&[500, 200]);
    let channels = webhook(&receiver.url("/hook"), WebhookFormat::Json);
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path(), DAY).unwrap();
    let t0 = At::now();
    outbox.enqueue(&down("a1", t0.wall), &ids(&channels)).unwrap();

    assert_eq!(outbox.deliver_due(&channels, t0).await.unwrap().retrying, 1);
    let DeliveryStatus::Pending { attempts: 1, next_attempt, last_error: Some(e) } = status_of(dir.path(), "a1") else {
        panic!("{:?}", status_of(dir.path(), "a1"))
    };
    assert_eq!(next_attempt, t0.wall + Duration::from_secs(5));
    assert!(e.contains("answered 500 Internal Server Error"), "{e}");

    // Not before its time ...
    let early = outbox.deliver_due(&channels, t0 + Duration::from_secs(4)).await.unwrap();
    assert_eq!(early, DeliveryReport::default());
    assert_eq!(receiver.requests().len(), 1);
    // ... then delivered.
    let t1 = t0 + Duration::from_secs(5);
    assert_eq!(outbox.deliver_due(&channels, t1).await.unwrap().delivered, 1);
    assert_eq!(receiver.requests().len(), 2);
    assert_eq!(status_of(dir.path(), "a1"), DeliveryStatus::Delivered { at: t1.wall, attempts: 2 });
    assert!(files_in(outbox.dir()).is_empty());

    // The same alert enqueued again (say, by a caller that retried) is not sent twice.
    outbox.enqueue(&down("a1", t0.wall), &ids(&channels)).unwrap();
    assert!(outbox.pending().is_empty());
    assert_eq!(outbox.deliver_due(&channels, t1).await.unwrap(), DeliveryReport::default());
    assert_eq!(receiver.requests().len(), 2);
}

#[tokio::test]
async fn a_400_is_refused_for_good_and_not_retried() {
    let receiver = Receiver::start(&[400]);
    let channels = webhook(&receiver.url("/services/T000/B000/slack-secret"), WebhookFormat::Slack);
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path(), DAY).unwrap();
    let t0 = At::now();
    outbox.enqueue(&down("a1", t0.wall), &ids(&channels)).unwrap();

    assert_eq!(outbox.deliver_due(&channels, t0).await.unwrap().failed, 1);
    let later = outbox.deliver_due(&channels, t0 + Duration::from_secs(3600)).await.unwrap();
    assert_eq!(later, DeliveryReport::default());
    assert_eq!(receiver.requests().len(), 1, "not retried");
    let DeliveryStatus::Failed { reason, .. } = status_of(dir.path(), "a1") else { panic!() };
    assert_eq!(reason, format!("webhook {}/services/… answered 400 Bad Request: {{\"status\":400}}", receiver.url("")));
    let history = std::fs::read_to_string(dir.path().join("alert-history.json")).unwrap();
    assert!(!history.contains("slack-secret"), "the webhook token is never written down");
    assert!(files_in(outbox.dir()).is_empty());
}

#[tokio::test]
async fn alerts_raised_while_smtp_is_down_arrive_once_each_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let maildir = dir.path().join("maildir");
    let port = free_port();
    let channels = email(port);
    let t0 = At::now();
    {
        let outbox = Outbox::open(&state, DAY).unwrap();
        for (i, title) in ["service down: a.service", "service down: b.service", "stream stale"].iter().enumerate() {
            let raised = t0.wall + Duration::from_secs(i as u64);
            outbox.enqueue(&alert(&format!("a{i}"), Severity::Critical, title, raised), &ids(&channels)).unwrap();
        }
        let report = outbox.deliver_due(&channels, t0 + Duration::from_secs(3)).await.unwrap();
        assert_eq!(report, DeliveryReport { retrying: 1, ..DeliveryReport::default() }, "SMTP is down");
        assert_eq!(files_in(outbox.dir()).len(), 3);
    } // The watchdog stops ...

    // ... and starts again, with what it left on disk.
    let outbox = Outbox::open(&state, DAY).unwrap();
    let pending = outbox.pending();
    assert_eq!(pending.len(), 3);
    assert_eq!(pending[0].1.attempts, 1, "the failed attempt was recorded");
    assert!(pending[0].1.last_error.as_deref().is_some_and(|e| e.contains("127.0.0.1")), "{pending:?}");

    let smtp = SmtpServer::start(port, &maildir);
    let now = t0 + Duration::from_secs(60);
    let report = outbox.deliver_due(&channels, now).await.unwrap();
    assert_eq!(report, DeliveryReport { delivered: 3, ..DeliveryReport::default() });
    // Nothing is delivered twice, by this run or the next.
    assert_eq!(outbox.deliver_due(&channels, now + DAY / 2).await.unwrap(), DeliveryReport::default());
    drop(outbox);
    let outbox = Outbox::open(&state, DAY).unwrap();
    assert_eq!(outbox.deliver_due(&channels, now + DAY / 2).await.unwrap(), DeliveryReport::default());

    let messages = smtp.wait_for(3, WAIT);
    smtp.stop();
    let messages: Vec<String> = messages.iter().map(|m| unfold(m)).collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert_eq!(maildir_messages(&maildir).len(), 3);
    for (i, title) in ["service down: a.service", "service down: b.service", "stream stale"].iter().enumerate() {
        let subject = format!("\nSubject: [desktop-streamer] CRITICAL {title} on kiosk-7\n");
        assert_eq!(messages.iter().filter(|m| m.contains(&subject)).count(), 1, "{subject} once");
        assert!(messages[i].contains(&subject), "in the order raised: {i} {subject}");
    }
    assert!(files_in(outbox.dir()).is_empty(), "{:?}", files_in(outbox.dir()));
    for i in 0..3 {
        let DeliveryStatus::Delivered { attempts, .. } = status_of(&state, &format!("a{i}")) else { panic!() };
        assert_eq!(attempts, if i == 0 { 2 } else { 1 });
    }
}

#[tokio::test]
async fn an_alert_older_than_the_maximum_age_is_dropped_with_its_reason() {
    let receiver = Receiver::start(&[503]);
    let channels = webhook(&receiver.url("/hook"), WebhookFormat::Json);
    let dir = tempfile::tempdir().unwrap();
    let max_age = Duration::from_secs(3600);
    let t0 = At::now();
    {
        let outbox = Outbox::open(dir.path(), max_age).unwrap();
        outbox.enqueue(&down("a1", t0.wall), &ids(&channels)).unwrap();
        assert_eq!(outbox.deliver_due(&channels, t0).await.unwrap().retrying, 1);
    }
    let outbox = Outbox::open(dir.path(), max_age).unwrap();
    // A retry that waited when the watchdog stopped is due at once after the restart.
    assert_eq!(outbox.next_wakeup(&ids(&channels), t0), Some(t0.mono));
    let late = t0 + max_age + Duration::from_secs(1);
    let report = outbox.deliver_due(&channels, late).await.unwrap();
    assert_eq!(report, DeliveryReport { expired: 1, ..DeliveryReport::default() });
    assert_eq!(receiver.requests().len(), 1, "an expired alert is not tried again");
    let DeliveryStatus::Expired { at, attempts: 1, reason } = status_of(dir.path(), "a1") else { panic!() };
    assert_eq!(at, late.wall);
    assert!(
        reason.starts_with("not delivered within 1 h of being raised after 1 attempt(s); last error: "),
        "{reason}"
    );
    assert!(reason.contains("answered 503 Service Unavailable"), "{reason}");
    assert!(files_in(outbox.dir()).is_empty());
    assert_eq!(outbox.next_wakeup(&ids(&channels), late), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_task_sends_at_once_and_stops_on_shutdown() {
    let receiver = Receiver::start(&[200]);
    let channels = webhook(&receiver.url("/hook"), WebhookFormat::Json);
    let ids = ids(&channels);
    let dir = tempfile::tempdir().unwrap();
    let outbox = Arc::new(Outbox::open(dir.path(), DAY).unwrap());
    let shutdown = ds_runtime::Shutdown::new();
    let task = tokio::spawn({
        let (outbox, shutdown) = (Arc::clone(&outbox), shutdown.clone());
        async move { outbox.run(&channels, &shutdown).await }
    });
    outbox.enqueue(&down("a1", Timestamp::now()), &ids).unwrap();
    let requests = tokio::task::spawn_blocking(move || receiver.wait_for(1, WAIT)).await.unwrap();
    assert_eq!(requests.len(), 1);
    // The answer is recorded right after the receiver saw the request.
    wait_until_async("the delivery recorded", Duration::from_secs(5), || {
        let done = outbox.pending().is_empty();
        async move { done }
    })
    .await;
    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("stops on shutdown").unwrap();
    assert!(matches!(status_of(dir.path(), "a1"), DeliveryStatus::Delivered { attempts: 1, .. }));
    assert!(files_in(outbox.dir()).is_empty());
}

/// The moment `at` with the wall clock stepped by `step` (signed seconds).
fn stepped(at: At, step: i64) -> At {
    At { wall: at.wall + jiff::SignedDuration::from_secs(step), ..at }
}

const YEAR_S: i64 = 366 * 86_400;

/// JSON bodies of the requests the receiver answered, from the `from`-th on.
fn bodies(receiver: &Receiver, from: usize) -> Vec<serde_json::Value> {
    receiver.requests()[from..].iter().map(|r| r.json()).collect()
}

#[tokio::test]
async fn a_forward_step_expires_nothing_and_the_held_alerts_go_out_in_order_saying_the_clock_stepped() {
    let receiver = Receiver::start(&[503, 200]);
    let channels = webhook(&receiver.url("/hook"), WebhookFormat::Json);
    let dir = tempfile::tempdir().unwrap();
    // One hour: a year's step would be far past it on the wall clock.
    let outbox = Outbox::open(dir.path(), Duration::from_secs(3600)).unwrap();
    let t0 = At::now();
    outbox.enqueue(&down("a1", t0.wall), &ids(&channels)).unwrap();
    outbox.enqueue(&down("a2", t0.wall), &ids(&channels)).unwrap();
    assert_eq!(outbox.deliver_due(&channels, t0).await.unwrap().retrying, 1, "the receiver is down");

    let t1 = stepped(t0 + Duration::from_secs(5), YEAR_S);
    let report = outbox.deliver_due(&channels, t1).await.unwrap();
    assert_eq!(report, DeliveryReport { delivered: 2, ..DeliveryReport::default() });
    let sent = bodies(&receiver, 1);
    assert_eq!(sent.iter().map(|a| a["id"].as_str().unwrap()).collect::<Vec<_>>(), ["a1", "a2"], "in order");
    for a in &sent {
        assert_eq!(a["raised_at"], t0.wall.to_string(), "raised at as the clock said then: {a}");
        let note = format!("Raised at {} as the clock said then (the system clock has since stepped +366 d).", t0.wall);
        assert!(a["details"].as_str().unwrap().ends_with(&note), "{a}");
    }
}

#[tokio::test]
async fn a_backward_step_does_not_delay_a_retry_nor_the_alerts_behind_it() {
    let receiver = Receiver::start(&[503, 200]);
    let channels = webhook(&receiver.url("/hook"), WebhookFormat::Json);
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path(), DAY).unwrap();
    let t0 = At::now();
    outbox.enqueue(&down("a1", t0.wall), &ids(&channels)).unwrap();
    outbox.enqueue(&down("a2", t0.wall), &ids(&channels)).unwrap();
    assert_eq!(outbox.deliver_due(&channels, t0).await.unwrap().retrying, 1);

    // A day back, then the first back-off (5 s) passes on the monotonic clock.
    let back = stepped(t0 + Duration::from_secs(1), -86_400);
    assert_eq!(outbox.deliver_due(&channels, back).await.unwrap(), DeliveryReport::default(), "not before 5 s");
    assert_eq!(outbox.next_wakeup(&ids(&channels), back), Some(t0.mono + Duration::from_secs(5)));
    let t1 = stepped(t0 + Duration::from_secs(5), -86_400);
    assert_eq!(outbox.deliver_due(&channels, t1).await.unwrap().delivered, 2);
    let sent = bodies(&receiver, 1);
    assert_eq!(sent.iter().map(|a| a["id"].as_str().unwrap()).collect::<Vec<_>>(), ["a1", "a2"]);
    assert!(sent[0]["details"].as_str().unwrap().contains("(the system clock has since stepped −1 d)."), "{sent:?}");
}

#[tokio::test]
async fn across_a_restart_the_age_counts_the_time_since_boot_and_not_the_wall_clock_nor_the_time_off() {
    let receiver = Receiver::start(&[503]);
    let channels = webhook(&receiver.url("/hook"), WebhookFormat::Json);
    let dir = tempfile::tempdir().unwrap();
    let max_age = Duration::from_secs(3600);
    let boot = |id: &str, s: u64| Boot { id: id.to_owned(), since_boot: Duration::from_secs(s) };
    let t0 = At::now();
    {
        let outbox = Outbox::open_at(dir.path(), max_age, t0, Some(&boot("b1", 1000))).unwrap();
        outbox.enqueue(&down("a1", t0.wall), &ids(&channels)).unwrap();
        assert_eq!(outbox.deliver_due(&channels, t0 + Duration::from_secs(1)).await.unwrap().retrying, 1);
    }
    let reopen = |at: At, b: Boot| Outbox::open_at(dir.path(), max_age, at, Some(&b)).unwrap();

    // Restarted in the same boot, 10 min later, under a clock stepped a year forward or a day
    // back: still waiting, and it says the clock stepped.
    for step in [YEAR_S, -86_400] {
        let at = stepped(At::now() + Duration::from_secs(600), step);
        let outbox = reopen(at, boot("b1", 1600));
        let report = outbox.deliver_due(&channels, at).await.unwrap();
        assert_eq!(report, DeliveryReport { retrying: 1, ..DeliveryReport::default() }, "step {step}");
        let last = receiver.requests().last().unwrap().json();
        let human = if step > 0 { "+366 d" } else { "−1 d" };
        assert!(last["details"].as_str().unwrap().contains(&format!("has since stepped {human})")), "{last}");
        // The next restart in this loop starts from what this one saved: undo its 10 minutes.
        drop(outbox);
        let back = reopen(At::now(), boot("b1", 1000));
        back.deliver_due(&channels, At::now()).await.unwrap();
    }
    // After a reboot the time the machine was off is not counted, whatever the wall clock says.
    let outbox = reopen(stepped(At::now(), YEAR_S), boot("b2", 30));
    assert_eq!(outbox.pending().len(), 1);
    assert_eq!(outbox.deliver_due(&channels, stepped(At::now(), YEAR_S)).await.unwrap().expired, 0);
    drop(outbox);
    // In the same boot, the time since the save counts: an hour later it expires.
    let outbox = reopen(stepped(At::now(), -86_400), boot("b2", 30 + 3601));
    assert_eq!(outbox.deliver_due(&channels, stepped(At::now(), -86_400)).await.unwrap().expired, 1);
}

#[tokio::test]
async fn a_file_of_an_older_version_gets_its_age_from_the_wall_clock_once() {
    let dir = tempfile::tempdir().unwrap();
    let max_age = Duration::from_secs(3600);
    let now = At::now();
    for (id, raised) in [("old", now.wall - Duration::from_secs(7200)), ("future", now.wall + DAY)] {
        let outbox = Outbox::open(dir.path(), max_age).unwrap();
        outbox.enqueue(&down(id, raised), &["webhook:x".to_owned()]).unwrap();
    }
    for entry in std::fs::read_dir(dir.path().join("outbox")).unwrap() {
        let path = entry.unwrap().path();
        let mut file: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert!(file.as_object_mut().unwrap().remove("age").is_some(), "{file}");
        std::fs::write(&path, file.to_string()).unwrap();
    }
    let outbox = Outbox::open(dir.path(), max_age).unwrap();
    let report = outbox.deliver_due(&[], At::now()).await.unwrap();
    assert_eq!(report.expired, 1, "raised 2 h ago by the wall clock");
    let left: Vec<String> = outbox.pending().into_iter().map(|(id, _)| id).collect();
    assert_eq!(left, ["future"], "a raised_at in the future is age 0, not negative");
}
