//! systemd's notify protocol: READY=1 once the first segment exists, WATCHDOG=1 only while
//! segments keep coming, STATUS= with what the streamer is doing, STOPPING=1 on shutdown.
//! Outside systemd (no NOTIFY_SOCKET) every call does nothing.

use sd_notify::NotifyState;

#[derive(Debug, Default)]
pub struct Notifier {
    ready_sent: bool,
    last_status: String,
}

impl Notifier {
    fn send(&self, states: &[NotifyState<'_>]) {
        if let Err(e) = sd_notify::notify(states) {
            tracing::debug!(error = %e, "systemd notify failed");
        }
    }

    /// Tells systemd the service is up (once).
    pub fn ready(&mut self) {
        if !self.ready_sent {
            self.ready_sent = true;
            self.send(&[NotifyState::Ready]);
        }
    }

    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// Sets the status line `systemctl status` shows, when it changed.
    pub fn status(&mut self, text: &str) {
        if self.last_status != text {
            self.last_status = text.to_owned();
            self.send(&[NotifyState::Status(text)]);
        }
    }

    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }
}
