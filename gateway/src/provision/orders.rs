//! Device health and technician work orders.
//!
//! Health is what ingest folds into `device_health` (last seen, battery, RSSI, firmware,
//! availability) plus what provisioning keeps: hourly battery samples (the trend and a
//! projected empty date) and every help press with its outcome (false presses: cancelled
//! within the device's window, or **unattended**: the household was out, away or in
//! hospital: a help button that "presses itself", such as the Zigbee SOS buttons of
//! Koenkk/zigbee2mqtt issue 31821).
//!
//! The sweep (every `sweep_interval_s` in a running gateway) opens at most one work
//! order per device and reason:
//! - `offline`: no message for two heartbeat intervals (or the Zigbee check-in
//!   interval) plus detection's grace, its last will, or never heard from since its
//!   registration `never_seen_after_s` ago; closed by itself when the device is back;
//! - `low_battery`: at or below detection's `low_battery_pct`, or empty within
//!   `battery_warning_days` by the trend; closed by itself at `battery_ok_pct` (a new
//!   battery);
//! - `suspicious`: `suspicious_false_presses` false presses within
//!   `suspicious_window_days`; closed by a technician;
//! - `bridge_offline` (opened at once from the bridge's availability): one order for a
//!   dead Zigbee2MQTT bridge, none for each of its devices;
//! - `untested` (from installation tests).
//!
//! Devices of a household under installation test are left alone.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use tracing::{info, warn};

use super::{ProvisionError, Provisioning};
use crate::ingest::zigbee2mqtt::BRIDGE_KIND;
use crate::store::{DeviceRow, PressRow, WorkOrderRow};
use crate::store::{HealthRow, Store, StoreError};

const DAY_MS: i64 = 86_400_000;
/// Who closes work orders that resolve themselves.
pub const SYSTEM: &str = "anxin";
/// Battery samples are taken at most this often per device.
pub const SAMPLE_EVERY_MS: i64 = 3_600_000;

/// Why a work order was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkOrderReason {
    /// The device stopped sending.
    Offline,
    /// The battery is (nearly) empty.
    LowBattery,
    /// A help button that presses itself.
    Suspicious,
    /// A Zigbee2MQTT bridge is gone: its devices cannot be seen.
    BridgeOffline,
    /// An installation test ended without this device.
    Untested,
}

impl WorkOrderReason {
    /// Every reason.
    pub const ALL: [WorkOrderReason; 5] = [
        WorkOrderReason::Offline,
        WorkOrderReason::LowBattery,
        WorkOrderReason::Suspicious,
        WorkOrderReason::BridgeOffline,
        WorkOrderReason::Untested,
    ];

    /// Stable name (storage, API).
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkOrderReason::Offline => "offline",
            WorkOrderReason::LowBattery => "low_battery",
            WorkOrderReason::Suspicious => "suspicious",
            WorkOrderReason::BridgeOffline => "bridge_offline",
            WorkOrderReason::Untested => "untested",
        }
    }

    /// Parses [`WorkOrderReason::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The health shown in device lists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthSummary {
    /// Last message of any kind.
    pub last_seen_ms: Option<i64>,
    /// Whether it is sending (by its heartbeat interval and last will).
    pub online: bool,
    /// Battery, %.
    pub battery_pct: Option<i32>,
    /// Signal, dBm (Anxin devices; Zigbee devices report no RSSI).
    pub rssi_dbm: Option<i32>,
    /// Firmware version (`zigbee` for Zigbee2MQTT devices).
    pub fw: Option<String>,
    /// Heartbeat (or Zigbee check-in) interval, s.
    pub interval_s: Option<i32>,
}

impl HealthSummary {
    pub(crate) fn of(
        p: &Provisioning,
        r: &DeviceRow,
        h: Option<&HealthRow>,
        now: i64,
    ) -> HealthSummary {
        HealthSummary {
            last_seen_ms: h.map(|h| h.last_seen_ms),
            online: h.is_some_and(|h| offline_reason(p, r, h, now).is_none()),
            battery_pct: h.and_then(|h| h.battery_pct),
            rssi_dbm: h.and_then(|h| h.rssi_dbm),
            fw: h.and_then(|h| h.fw.clone()),
            interval_s: h.and_then(|h| h.interval_s),
        }
    }
}

/// A device's health in detail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceHealth {
    /// Device.
    pub device_id: String,
    /// The summary.
    pub summary: HealthSummary,
    /// Battery samples of the last 30 days: (ms, %).
    pub battery_samples: Vec<(i64, i32)>,
    /// Battery change per day over the last 14 days, % (negative: draining).
    pub battery_pct_per_day: Option<f64>,
    /// Days until empty at that rate.
    pub battery_days_left: Option<f64>,
    /// Help presses of the last 30 days, newest first, with their outcome.
    pub presses: Vec<PressRow>,
    /// False presses (cancelled or unattended) within the suspicious window.
    pub false_presses: usize,
    /// Every work order of the device, newest first.
    pub work_orders: Vec<WorkOrderRow>,
}

/// A device's battery trend and false presses, as lists show them (the list's part of
/// [`DeviceHealth`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HealthTrend {
    /// Battery change per day over the last 14 days, % (negative: draining).
    pub battery_pct_per_day: Option<f64>,
    /// Days until empty at that rate.
    pub battery_days_left: Option<f64>,
    /// False presses (cancelled or unattended) within the suspicious window.
    pub false_presses: usize,
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Work orders opened.
    pub opened: Vec<(String, &'static str)>,
    /// Work orders closed by themselves.
    pub closed: Vec<(String, &'static str)>,
    /// Battery samples taken.
    pub samples: usize,
}

/// Latest health of every device, by id.
pub async fn health_rows(store: &Store) -> Result<HashMap<String, HealthRow>, StoreError> {
    Ok(store
        .device_health()
        .await?
        .into_iter()
        .map(|h| (h.device_id.clone(), h))
        .collect())
}

/// Why the device counts as offline now, if it does.
fn offline_reason(p: &Provisioning, r: &DeviceRow, h: &HealthRow, now: i64) -> Option<String> {
    let i = &p.inner;
    let interval_s =
        h.interval_s
            .map(i64::from)
            .filter(|s| *s > 0)
            .unwrap_or(if r.zigbee_name.is_some() {
                i64::from(i.config.zigbee_liveness_s)
            } else {
                i64::from(i.default_heartbeat_s)
            });
    let silent = now - h.last_seen_ms;
    if silent > 2 * interval_s * 1000 + i.offline_grace_ms {
        return Some(format!(
            "no message for {} (heartbeat every {interval_s} s)",
            fmt_duration(silent)
        ));
    }
    if h.online == 0
        && let Some(t) = h.status_ms
        && t >= h.last_seen_ms
        && now - t > i.offline_grace_ms
    {
        return Some(format!(
            "gone (last will or bridge offline) for {}",
            fmt_duration(now - t)
        ));
    }
    None
}

/// Least-squares slope of (ms, %) in % per day.
pub fn slope_per_day(samples: &[(i64, i32)]) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let first = samples[0].0;
    let span = samples[samples.len() - 1].0 - first;
    if span < DAY_MS / 2 {
        return None;
    }
    let n = samples.len() as f64;
    let xs: Vec<f64> = samples
        .iter()
        .map(|(t, _)| (t - first) as f64 / DAY_MS as f64)
        .collect();
    let ys: Vec<f64> = samples.iter().map(|(_, b)| f64::from(*b)).collect();
    let mx = xs.iter().sum::<f64>() / n;
    let my = ys.iter().sum::<f64>() / n;
    let num: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    (den > 0.0).then(|| num / den)
}

fn fmt_duration(ms: i64) -> String {
    let m = ms / 60_000;
    if m >= 60 * 24 {
        format!("{} d {} h", m / 1440, m % 1440 / 60)
    } else if m >= 60 {
        format!("{} h {} min", m / 60, m % 60)
    } else {
        format!("{m} min")
    }
}

impl Provisioning {
    /// A device's health in detail.
    pub async fn health(&self, id: &str) -> Result<DeviceHealth, ProvisionError> {
        let store = &self.inner.store;
        let r = store
            .device_row(id)
            .await?
            .ok_or_else(|| ProvisionError::UnknownDevice(id.into()))?;
        let now = self.inner.clock.now_ms();
        let rows = health_rows(store).await?;
        let summary = HealthSummary::of(self, &r, rows.get(id), now);
        let battery_samples = store.battery_samples(id, now - 30 * DAY_MS).await?;
        let recent: Vec<(i64, i32)> = battery_samples
            .iter()
            .copied()
            .filter(|(t, _)| *t >= now - 14 * DAY_MS)
            .collect();
        let slope = slope_per_day(&recent);
        let days_left = match (slope, summary.battery_pct) {
            (Some(s), Some(b)) if s < -0.01 => Some(f64::from(b) / -s),
            _ => None,
        };
        let presses = store.presses(id, now - 30 * DAY_MS).await?;
        let window = now - i64::from(self.inner.config.suspicious_window_days) * DAY_MS;
        let false_presses = presses
            .iter()
            .filter(|p| {
                p.pressed_ms >= window && matches!(p.outcome.as_str(), "cancelled" | "unattended")
            })
            .count();
        Ok(DeviceHealth {
            device_id: id.into(),
            summary,
            battery_samples,
            battery_pct_per_day: slope,
            battery_days_left: days_left,
            presses,
            false_presses,
            work_orders: store.work_orders(false, Some(id), None).await?,
        })
    }

    /// [`HealthTrend`] of the devices of `household` (or all) that have battery samples
    /// or false presses, by id: what [`Provisioning::health`] computes for one device,
    /// for a whole list with one query per kind of data. Read-only.
    pub async fn health_trends(
        &self,
        household: Option<&str>,
    ) -> Result<HashMap<String, HealthTrend>, ProvisionError> {
        let store = &self.inner.store;
        let now = self.inner.clock.now_ms();
        let health = health_rows(store).await?;
        let mut by_device: HashMap<String, Vec<(i64, i32)>> = HashMap::new();
        for (d, at, pct) in store
            .battery_samples_of_all(household, now - 14 * DAY_MS)
            .await?
        {
            by_device.entry(d).or_default().push((at, pct));
        }
        let mut out: HashMap<String, HealthTrend> = HashMap::new();
        for (d, samples) in by_device {
            let slope = slope_per_day(&samples);
            let battery = health.get(&d).and_then(|h| h.battery_pct);
            let days_left = match (slope, battery) {
                (Some(s), Some(b)) if s < -0.01 => Some(f64::from(b) / -s),
                _ => None,
            };
            out.insert(
                d,
                HealthTrend {
                    battery_pct_per_day: slope,
                    battery_days_left: days_left,
                    false_presses: 0,
                },
            );
        }
        let window = now - i64::from(self.inner.config.suspicious_window_days) * DAY_MS;
        for (d, n) in store.false_press_counts(window).await? {
            out.entry(d).or_default().false_presses = usize::try_from(n).unwrap_or(0);
        }
        Ok(out)
    }

    /// One work order.
    pub async fn work_order(&self, id: i64) -> Result<WorkOrderRow, ProvisionError> {
        self.inner
            .store
            .work_order(id)
            .await?
            .ok_or(ProvisionError::UnknownWorkOrder(id))
    }

    /// Work orders (open ones only, or all), newest first.
    pub async fn work_orders(
        &self,
        open_only: bool,
        household: Option<&str>,
    ) -> Result<Vec<WorkOrderRow>, ProvisionError> {
        Ok(self
            .inner
            .store
            .work_orders(open_only, None, household)
            .await?)
    }

    /// Opens a work order by hand (a technician's own finding); returns its number, or
    /// the number of the one already open for (device, reason).
    pub async fn open_work_order(
        &self,
        device_id: &str,
        reason: WorkOrderReason,
        detail: &str,
    ) -> Result<i64, ProvisionError> {
        let r = self
            .inner
            .store
            .device_row(device_id)
            .await?
            .ok_or_else(|| ProvisionError::UnknownDevice(device_id.into()))?;
        let now = self.inner.clock.now_ms();
        if let Some(id) = self
            .inner
            .store
            .open_work_order(
                device_id,
                r.household_id.as_deref(),
                reason.as_str(),
                detail,
                now,
            )
            .await?
        {
            info!(
                device_id,
                household_id = r.household_id.as_deref().unwrap_or(""),
                reason = reason.as_str(),
                work_order = id,
                "work order opened"
            );
            return Ok(id);
        }
        let open = self
            .inner
            .store
            .work_orders(true, Some(device_id), None)
            .await?;
        open.iter()
            .find(|o| o.reason == reason.as_str())
            .map(|o| o.id)
            .ok_or(ProvisionError::UnknownWorkOrder(0))
    }

    /// Closes work order `id` with what was done.
    pub async fn close_work_order(
        &self,
        id: i64,
        by: &str,
        resolution: &str,
    ) -> Result<WorkOrderRow, ProvisionError> {
        let now = self.inner.clock.now_ms();
        let (order, closed_now) = self
            .inner
            .store
            .close_work_order(id, by, resolution, now)
            .await?
            .ok_or(ProvisionError::UnknownWorkOrder(id))?;
        if closed_now {
            info!(device_id = %order.device_id, household_id = order.household_id.as_deref().unwrap_or(""), work_order = id, by, "work order closed");
        }
        Ok(order)
    }

    /// Reviews every device: takes due battery samples, opens and closes work orders.
    pub async fn sweep(&self) -> Result<SweepReport, ProvisionError> {
        let store = &self.inner.store;
        let now = self.inner.clock.now_ms();
        let cfg = &self.inner.config;
        let devices = store.device_rows(None).await?;
        let health = health_rows(store).await?;
        let testing: HashSet<String> = store
            .running_install_tests()
            .await?
            .into_iter()
            .map(|t| t.household_id)
            .collect();
        let false_presses: HashMap<String, i64> = store
            .false_press_counts(now - i64::from(cfg.suspicious_window_days) * DAY_MS)
            .await?
            .into_iter()
            .collect();
        let last_sample: HashMap<String, i64> =
            store.last_sample_times().await?.into_iter().collect();
        let bridges_down: HashSet<String> = devices
            .iter()
            .filter(|d| d.kind == BRIDGE_KIND)
            .filter(|d| {
                health
                    .get(&d.device_id)
                    .is_some_and(|h| h.online == 0 && h.status_ms.is_some())
            })
            .map(|d| d.device_id.clone())
            .collect();
        let zigbee = self.inner.live.as_ref().map(|l| l.zigbee.clone());
        let mut report = SweepReport::default();

        for d in &devices {
            let h = health.get(&d.device_id);
            // Battery samples, hourly.
            if let Some(h) = h
                && (h.battery_pct.is_some() || h.rssi_dbm.is_some())
                && last_sample
                    .get(&d.device_id)
                    .is_none_or(|t| now - t >= SAMPLE_EVERY_MS)
            {
                store
                    .add_device_sample(&d.device_id, now, h.battery_pct, h.rssi_dbm)
                    .await?;
                report.samples += 1;
            }
            if d.kind == BRIDGE_KIND
                || d.household_id
                    .as_ref()
                    .is_some_and(|hh| testing.contains(hh))
                || d.registered_ms.is_none() && h.is_none()
            {
                continue;
            }
            let hh = d.household_id.as_deref();
            // Offline.
            let behind_dead_bridge = zigbee
                .as_ref()
                .and_then(|z| z.bridge_of(&d.device_id))
                .is_some_and(|b| bridges_down.contains(b.as_str()));
            let offline = match h {
                Some(h) => offline_reason(self, d, h, now),
                None => d
                    .registered_ms
                    .filter(|t| now - t > (cfg.never_seen_after_s as i64) * 1000)
                    .map(|t| {
                        format!(
                            "never heard from since its registration {} ago",
                            fmt_duration(now - t)
                        )
                    }),
            };
            match offline {
                Some(why) if !behind_dead_bridge => {
                    self.open_auto(&mut report, d, hh, WorkOrderReason::Offline, &why, now)
                        .await?;
                }
                None => {
                    self.close_auto(&mut report, d, WorkOrderReason::Offline, "back online", now)
                        .await?;
                }
                Some(_) => {}
            }
            // Battery.
            if let Some(b) = h.and_then(|h| h.battery_pct) {
                let low = b <= i32::from(self.inner.low_battery_pct);
                let soon = if low {
                    None
                } else {
                    let samples = store
                        .battery_samples(&d.device_id, now - 14 * DAY_MS)
                        .await?;
                    slope_per_day(&samples)
                        .filter(|s| *s < -0.01)
                        .map(|s| f64::from(b) / -s)
                        .filter(|days| *days < f64::from(cfg.battery_warning_days))
                };
                if low || soon.is_some() {
                    let why = match soon {
                        Some(days) => format!("battery at {b} %, empty in about {days:.0} days"),
                        None => format!("battery at {b} %"),
                    };
                    self.open_auto(&mut report, d, hh, WorkOrderReason::LowBattery, &why, now)
                        .await?;
                } else if b >= i32::from(self.inner.battery_ok_pct) {
                    self.close_auto(
                        &mut report,
                        d,
                        WorkOrderReason::LowBattery,
                        "battery replaced",
                        now,
                    )
                    .await?;
                }
            }
            // Suspicious help button.
            let n = false_presses.get(&d.device_id).copied().unwrap_or(0);
            if n >= i64::from(cfg.suspicious_false_presses.max(1)) {
                let why = format!(
                    "{n} false presses (cancelled at once or nobody home) in {} days",
                    cfg.suspicious_window_days
                );
                self.open_auto(&mut report, d, hh, WorkOrderReason::Suspicious, &why, now)
                    .await?;
            }
        }
        Ok(report)
    }

    async fn open_auto(
        &self,
        report: &mut SweepReport,
        d: &DeviceRow,
        household: Option<&str>,
        reason: WorkOrderReason,
        detail: &str,
        now: i64,
    ) -> Result<(), ProvisionError> {
        if let Some(id) = self
            .inner
            .store
            .open_work_order(&d.device_id, household, reason.as_str(), detail, now)
            .await?
        {
            warn!(device_id = %d.device_id, household_id = household.unwrap_or(""), reason = reason.as_str(), work_order = id, detail, "work order opened");
            report.opened.push((d.device_id.clone(), reason.as_str()));
        }
        Ok(())
    }

    async fn close_auto(
        &self,
        report: &mut SweepReport,
        d: &DeviceRow,
        reason: WorkOrderReason,
        resolution: &str,
        now: i64,
    ) -> Result<(), ProvisionError> {
        if self
            .inner
            .store
            .close_open_work_order(&d.device_id, reason.as_str(), SYSTEM, resolution, now)
            .await?
        {
            info!(device_id = %d.device_id, household_id = d.household_id.as_deref().unwrap_or(""), reason = reason.as_str(), resolution, "work order closed by itself");
            report.closed.push((d.device_id.clone(), reason.as_str()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_battery_losing_two_percent_a_day_has_a_slope_of_minus_two() {
        let s: Vec<(i64, i32)> = (0..10).map(|d| (d * DAY_MS, 90 - 2 * d as i32)).collect();
        let slope = slope_per_day(&s).unwrap();
        assert!((slope + 2.0).abs() < 1e-9, "{slope}");
        assert_eq!(slope_per_day(&s[..1]), None);
        assert_eq!(slope_per_day(&[(0, 50), (1000, 49)]), None);
    }

    #[test]
    fn every_reason_has_a_stable_name() {
        for r in WorkOrderReason::ALL {
            assert_eq!(WorkOrderReason::parse(r.as_str()), Some(r));
        }
    }
}
