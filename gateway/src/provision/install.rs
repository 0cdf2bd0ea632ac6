//! Installation tests: a technician puts a household in `install_test` mode, presses the
//! button, opens the door, walks past each sensor and presses the gas sensor's TEST
//! button; every device is checked off as its event arrives, no caseworker alert is
//! raised meanwhile (detection's `HouseholdMode::InstallTest`), and the test ends by
//! itself at its end time with a report of the devices that were not seen.
//!
//! What checks a device off (an event committed to the journal during the test):
//!
//! | kind | needs |
//! |---|---|
//! | `door` | a door event (open or close) |
//! | `motion` | a motion event |
//! | `help` | a press (or long press) |
//! | `gas` | **a gas alarm** (`alarm: true`): a local siren does not prove that the gateway saw it, and some Zigbee converters report `gas: false` on the TEST button (zigbee2mqtt/hassio-zigbee2mqtt issue 208) |
//! | `pendant` | a press or a detected fall |
//!
//! The journal is the authority for the report (so a restarted gateway, or the CLI in
//! another process, gives the same answer); the live check-off in a running gateway
//! comes from the observation tap and is broadcast as [`TestEvent`]s (for the
//! dashboard's live view).

use std::collections::HashMap;

use anxin_firmware::wire::{EventBody, FallAction, HelpAction};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::orders::WorkOrderReason;
use super::{ProvisionError, Provisioning};
use crate::ingest::zigbee2mqtt::BRIDGE_KIND;
use crate::store::{self, TestRow};

/// Longest installation test, minutes.
pub const MAX_MINUTES: u32 = 24 * 60;

/// One device in a test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestedDevice {
    /// Device.
    pub device_id: String,
    /// Kind.
    pub kind: String,
    /// Room.
    pub room: Option<String>,
    /// What the technician must do.
    pub needs: String,
    /// When it was checked off.
    pub tested_ms: Option<i64>,
    /// By which event (`door`, `motion`, `help press`, `gas alarm`…).
    pub by: Option<String>,
}

/// A test's state or final report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallTestView {
    /// Household.
    pub household_id: String,
    /// Started.
    pub started_ms: i64,
    /// Ends by itself at.
    pub until_ms: i64,
    /// Ended (None: running).
    pub ended_ms: Option<i64>,
    /// Technician.
    pub started_by: Option<String>,
    /// Every device of the household.
    pub devices: Vec<TestedDevice>,
}

impl InstallTestView {
    /// Devices not checked off.
    pub fn untested(&self) -> Vec<&TestedDevice> {
        self.devices
            .iter()
            .filter(|d| d.tested_ms.is_none())
            .collect()
    }

    /// Whether every device was checked off.
    pub fn complete(&self) -> bool {
        self.devices.iter().all(|d| d.tested_ms.is_some())
    }
}

/// A device checked off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckOff {
    /// Household.
    pub household_id: String,
    /// Device.
    pub device_id: String,
    /// When.
    pub at_ms: i64,
    /// By which event.
    pub by: String,
}

/// What a running gateway broadcasts about tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TestEvent {
    /// A test started.
    Started {
        /// Household.
        household_id: String,
        /// Ends at.
        until_ms: i64,
    },
    /// A device was checked off.
    CheckedOff(CheckOff),
    /// A test ended, with its report.
    Ended(InstallTestView),
}

/// What a device of `kind` must do, in words.
pub fn needs(kind: &str) -> &'static str {
    match kind {
        "door" => "open or close the door",
        "motion" => "walk past the sensor",
        "help" => "press the button",
        "gas" => "press TEST: a gas alarm must arrive",
        "pendant" => "press the button or simulate a fall",
        _ => "any event",
    }
}

/// Whether `body` from a device of `kind` checks it off; the words for it.
pub fn checks_off(kind: &str, body: &EventBody) -> Option<String> {
    let press = matches!(
        body,
        EventBody::Help {
            act: HelpAction::Press | HelpAction::Long
        }
    );
    let ok = match kind {
        "door" => matches!(body, EventBody::Door { .. }),
        "motion" => matches!(body, EventBody::Motion),
        "help" => press,
        "gas" => matches!(body, EventBody::Gas { alarm: true, .. }),
        "pendant" => {
            press
                || matches!(
                    body,
                    EventBody::Fall {
                        act: FallAction::Detected,
                        ..
                    }
                )
        }
        _ => true,
    };
    ok.then(|| match body {
        EventBody::Door { open: true } => "door opened".into(),
        EventBody::Door { open: false } => "door closed".into(),
        EventBody::Gas { .. } => "gas alarm".into(),
        EventBody::Help { .. } => "help press".into(),
        EventBody::Fall { .. } => "fall detected".into(),
        other => other.kind().to_string(),
    })
}

impl Provisioning {
    /// Starts an installation test of `household` for `minutes` (default
    /// `install_test_minutes`). In a running gateway: detection raises no caseworker
    /// alert for the household until it ends, and the household's Anxin devices are told
    /// to confirm each input locally.
    pub async fn start_test(
        &self,
        household: &str,
        minutes: Option<u32>,
        by: &str,
    ) -> Result<InstallTestView, ProvisionError> {
        let minutes = minutes.unwrap_or(self.inner.config.install_test_minutes);
        if minutes == 0 || minutes > MAX_MINUTES {
            return Err(ProvisionError::Invalid {
                field: "minutes",
                reason: format!("1-{MAX_MINUTES}"),
            });
        }
        let store = &self.inner.store;
        let now = self.inner.clock.now_ms();
        let until = now + i64::from(minutes) * 60_000;
        let mut tx = store.begin().await?;
        if !store::household_exists(&mut tx, household).await? {
            return Err(ProvisionError::UnknownHousehold(household.into()));
        }
        if store::install_test_running(&mut tx, household).await? {
            return Err(ProvisionError::TestRunning(household.into()));
        }
        store::insert_install_test(&mut tx, household, now, until, by).await?;
        store::bump_provision_version(&mut tx).await?;
        tx.commit().await?;
        info!(
            household_id = household,
            until_ms = until,
            by,
            "installation test started"
        );
        self.after_test_change().await?;
        self.test_status(household).await
    }

    /// The running (or latest) test of a household, computed from the journal.
    pub async fn test_status(&self, household: &str) -> Result<InstallTestView, ProvisionError> {
        let row = self
            .inner
            .store
            .latest_install_test(household)
            .await?
            .ok_or_else(|| ProvisionError::NoTest(household.into()))?;
        if let (Some(_), Some(report)) = (row.ended_ms, &row.report)
            && let Ok(view) = serde_json::from_str::<InstallTestView>(report)
        {
            return Ok(view);
        }
        self.compute(&row).await
    }

    /// Every running test (all households), oldest first, computed from the journal.
    /// Read-only.
    pub async fn running_tests(&self) -> Result<Vec<InstallTestView>, ProvisionError> {
        let mut out = vec![];
        for row in self.inner.store.running_install_tests().await? {
            out.push(self.compute(&row).await?);
        }
        Ok(out)
    }

    /// Ends the running test of `household` now (or at its end time, if passed) and
    /// returns the report. Untested devices get a work order.
    pub async fn stop_test(
        &self,
        household: &str,
        by: &str,
    ) -> Result<InstallTestView, ProvisionError> {
        let row = self
            .inner
            .store
            .latest_install_test(household)
            .await?
            .filter(|t| t.ended_ms.is_none())
            .ok_or_else(|| ProvisionError::NoTest(household.into()))?;
        let view = self.finish(&row, by).await?;
        self.after_test_change().await?;
        Ok(view)
    }

    /// Writes the final report of `row` (once; a second call returns the first report).
    pub(crate) async fn finish(
        &self,
        row: &TestRow,
        by: &str,
    ) -> Result<InstallTestView, ProvisionError> {
        let now = self.inner.clock.now_ms();
        let mut view = self.compute(row).await?;
        let ended = now.min(row.until_ms);
        view.ended_ms = Some(ended);
        let report = serde_json::to_string(&view).unwrap_or_default();
        if self
            .inner
            .store
            .end_install_test(&row.household_id, row.started_ms, ended, &report)
            .await?
        {
            let untested: Vec<&str> = view
                .untested()
                .iter()
                .map(|d| d.device_id.as_str())
                .collect();
            if untested.is_empty() {
                info!(household_id = %row.household_id, by, "installation test ended: every device checked off");
            } else {
                warn!(household_id = %row.household_id, by, untested = ?untested, "installation test ended with untested devices");
            }
            for d in view.untested() {
                let detail = format!(
                    "not seen in the installation test of {} ({})",
                    row.household_id, d.needs
                );
                if let Some(id) = self
                    .inner
                    .store
                    .open_work_order(
                        &d.device_id,
                        Some(&row.household_id),
                        WorkOrderReason::Untested.as_str(),
                        &detail,
                        now,
                    )
                    .await?
                {
                    warn!(device_id = %d.device_id, household_id = %row.household_id, work_order = id, "work order opened: device untested");
                }
            }
            Ok(view)
        } else {
            // Someone else (the gateway's timer, the CLI) ended it first.
            self.test_status(&row.household_id).await
        }
    }

    /// The test's state from the journal.
    pub(crate) async fn compute(&self, row: &TestRow) -> Result<InstallTestView, ProvisionError> {
        let store = &self.inner.store;
        let devices = store.device_rows(Some(&row.household_id)).await?;
        let to = row.ended_ms.unwrap_or(row.until_ms);
        let events = store
            .household_events_between(&row.household_id, row.started_ms, to)
            .await?;
        let mut tested: HashMap<&str, (i64, String)> = HashMap::new();
        let kinds: HashMap<&str, &str> = devices
            .iter()
            .map(|d| (d.device_id.as_str(), d.kind.as_str()))
            .collect();
        for (device, body, at) in &events {
            let (Some(kind), Ok(body)) = (
                kinds.get(device.as_str()),
                serde_json::from_str::<EventBody>(body),
            ) else {
                continue;
            };
            if tested.contains_key(device.as_str()) {
                continue;
            }
            if let Some(by) = checks_off(kind, &body) {
                tested.insert(device.as_str(), (*at, by));
            }
        }
        Ok(InstallTestView {
            household_id: row.household_id.clone(),
            started_ms: row.started_ms,
            until_ms: row.until_ms,
            ended_ms: row.ended_ms,
            started_by: row.started_by.clone(),
            devices: devices
                .iter()
                .filter(|d| d.kind != BRIDGE_KIND)
                .map(|d| {
                    let t = tested.get(d.device_id.as_str());
                    TestedDevice {
                        device_id: d.device_id.clone(),
                        kind: d.kind.clone(),
                        room: d.room.clone(),
                        needs: needs(&d.kind).into(),
                        tested_ms: t.map(|t| t.0),
                        by: t.map(|t| t.1.clone()),
                    }
                })
                .collect(),
        })
    }

    async fn after_test_change(&self) -> Result<(), ProvisionError> {
        if self.inner.live.is_some() {
            self.sync().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gas_sensor_is_checked_off_only_by_an_alarm() {
        assert!(
            checks_off(
                "gas",
                &EventBody::Gas {
                    alarm: false,
                    ppm: 0
                }
            )
            .is_none()
        );
        assert_eq!(
            checks_off(
                "gas",
                &EventBody::Gas {
                    alarm: true,
                    ppm: 0
                }
            )
            .as_deref(),
            Some("gas alarm")
        );
    }

    #[test]
    fn a_help_button_needs_a_press_not_a_cancel() {
        let cancel = EventBody::Help {
            act: HelpAction::Cancel,
        };
        assert!(checks_off("help", &cancel).is_none());
        let press = EventBody::Help {
            act: HelpAction::Press,
        };
        assert!(checks_off("help", &press).is_some());
        assert!(checks_off("door", &EventBody::Door { open: false }).is_some());
        assert!(checks_off("motion", &EventBody::Door { open: true }).is_none());
    }
}
