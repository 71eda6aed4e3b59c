//! Jobs: starts, stops and restarts that systemd queues, and waiting for how each ended.

use futures_util::StreamExt as _;
use zbus::proxy::CacheProperties;
use zbus::zvariant::OwnedObjectPath;

use crate::client::Systemd;
use crate::control;
use crate::error::SystemdError;
use crate::proxies::{JobRemovedStream, hex};
use crate::unit::{Action, UnitState};

/// Job mode for starts and restarts: replace any queued job of the unit, as `systemctl` does.
const JOB_MODE: &str = "replace";

impl Systemd {
    /// Asks systemd to restart `unit` (mode "replace"). The returned [`Job`] tells how it ended.
    pub async fn restart(&self, unit: &str) -> Result<Job, SystemdError> {
        self.enqueue(unit, Action::Restart).await
    }

    /// Asks systemd to start `unit` (mode "replace"); a no-op job if it is already active.
    pub async fn start(&self, unit: &str) -> Result<Job, SystemdError> {
        self.enqueue(unit, Action::Start).await
    }

    /// Asks systemd to stop `unit` (mode `replace`).
    pub async fn stop(&self, unit: &str) -> Result<Job, SystemdError> {
        self.enqueue(unit, Action::Stop).await
    }

    async fn enqueue(&self, unit: &str, action: Action) -> Result<Job, SystemdError> {
        let proxies = self.proxies(unit, action, CacheProperties::No).await?;
        let before = hex(&proxies.unit.invocation_id().await.map_err(|e| self.error(unit, action, e))?);
        // Listen before asking, so a job that ends at once is not missed.
        let removed = self.manager.receive_job_removed().await.map_err(|e| self.error(unit, action, e))?;
        let asked = match action {
            Action::Start => self.manager.start_unit(unit, JOB_MODE).await,
            Action::Stop => self.manager.stop_unit(unit, JOB_MODE).await,
            _ => self.manager.restart_unit(unit, JOB_MODE).await,
        };
        let job = match asked.map_err(|e| self.error(unit, action, e)) {
            Ok(job) => job,
            // polkit said no: where it cannot be told our units alone, root's fixed-list helper.
            Err(refused @ SystemdError::AccessDenied { .. }) => match self.by_helper(unit, action, refused).await? {
                control::Answer::Job(job) => job,
                control::Answer::Sent => {
                    return Err(SystemdError::Lost {
                        bus: self.bus.clone(),
                        reason: format!("the control helper answered a {action} of {unit} without a job"),
                    });
                }
            },
            Err(e) => return Err(e),
        };
        tracing::debug!(unit, job = %job.as_str(), %action, "systemd job queued");
        Ok(Job { systemd: self.clone(), unit: unit.to_owned(), action, path: job, invocation_before: before, removed })
    }
}

/// A start or restart systemd has queued.
#[derive(Debug)]
pub struct Job {
    systemd: Systemd,
    unit: String,
    action: Action,
    path: OwnedObjectPath,
    /// The unit's InvocationID (hex) before the job was queued.
    invocation_before: String,
    removed: JobRemovedStream,
}

impl Job {
    pub fn unit(&self) -> &str {
        &self.unit
    }

    /// Waits until systemd finished the job and returns the unit's state then. A job that did
    /// not complete is [`SystemdError::JobFailed`], or [`SystemdError::StartLimitHit`] when
    /// systemd refused to start the unit at all. Not bounded in time: a `Type=notify` unit may
    /// take up to its `TimeoutStartSec`; wrap it in `tokio::time::timeout`.
    pub async fn wait(mut self) -> Result<UnitState, SystemdError> {
        let (systemd, unit, action) = (self.systemd.clone(), self.unit.clone(), self.action);
        let result = loop {
            let Some(signal) = self.removed.next().await else {
                return Err(SystemdError::Lost {
                    bus: systemd.bus.clone(),
                    reason: format!("the connection closed while waiting for the {action} job of {unit}"),
                });
            };
            let args = signal.args().map_err(|e| systemd.error(&unit, action, e))?;
            if args.job.as_str() == self.path.as_str() {
                break args.result.to_owned();
            }
        };
        let proxies = systemd.proxies(&unit, action, CacheProperties::No).await?;
        let state = proxies.state().await.map_err(|e| systemd.error(&unit, action, e))?;
        match result.as_str() {
            "done" => Ok(state),
            "failed" if action != Action::Stop => {
                // A start that ran has a new invocation; a refused one has not.
                let refused = state.invocation_id == self.invocation_before && state.is_down();
                if state.start_limit_hit || refused {
                    let burst = proxies.unit.start_limit_burst().await.unwrap_or_default();
                    let interval = proxies.unit.start_limit_interval_usec().await.unwrap_or_default();
                    Err(SystemdError::StartLimitHit { unit, bus: systemd.bus, burst, interval_s: interval / 1_000_000 })
                } else {
                    Err(SystemdError::JobFailed { unit, bus: systemd.bus, action, result })
                }
            }
            _ => Err(SystemdError::JobFailed { unit, bus: systemd.bus, action, result }),
        }
    }
}
