//! Provisioning inside a running gateway: the store's state applied to the broker, the
//! registry, detection and the Zigbee mapping; installation tests armed with a timer;
//! observations watched for check-offs, help presses and bridge availability; the
//! periodic work-order sweep.
//!
//! How a change made elsewhere (the CLI, another process) reaches the gateway: every
//! change bumps `provision_version` in its own transaction; the gateway reads it every
//! `poll_interval_ms` (one indexed single-row read) and, when it moved, re-applies the
//! whole state ([`Provisioning::sync`], idempotent). A revocation made by the CLI thus
//! closes the device's connection within one poll interval; one made through this
//! service (the API) at once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anxin_firmware::wire::{Command, CommandKind, DeviceId, EventBody, HelpAction};
use prometheus_client::metrics::counter::Counter;
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, Notify, broadcast};
use tracing::{info, warn};

use super::install::{CheckOff, TestEvent, checks_off};
use super::orders::{SYSTEM, WorkOrderReason};
use super::{Inner, ProvisionError, Provisioning};
use crate::app::Services;
use crate::broker::{DeviceCredentials, SecretHash};
use crate::detect::{DetectHandle, HouseholdMode};
use crate::ingest::zigbee2mqtt::BRIDGE_KIND;
use crate::ingest::{Downlink, Observation, ObservationKind, Registry, ZigbeeMap};
use crate::store::{DeviceRow, TestRow};

/// What the running gateway gives provisioning.
pub struct LiveDeps {
    /// The embedded broker's credentials (None with an external broker).
    pub credentials: Option<Arc<DeviceCredentials>>,
    /// Detection (installation-test mode, new devices, household views).
    pub detect: DetectHandle,
    /// The Zigbee2MQTT mapping shared with ingest.
    pub zigbee: ZigbeeMap,
    /// A copy of every new observation (subscribed before ingest starts).
    pub observations: broadcast::Receiver<Observation>,
    /// The device table as the gateway read it at start.
    pub devices: Arc<Vec<DeviceRow>>,
    /// `provision_version` read just before that table (-1: unknown, sync at once).
    pub version: i64,
}

pub(crate) struct Live {
    credentials: Option<Arc<DeviceCredentials>>,
    registry: Registry,
    detect: DetectHandle,
    downlink: Downlink,
    pub(crate) zigbee: ZigbeeMap,
    events: broadcast::Sender<TestEvent>,
    applied: Mutex<Applied>,
    tests: Mutex<HashMap<String, Running>>,
    services: Services,
    sync_failed: Counter,
    missed: Counter,
}

#[derive(Default)]
struct Applied {
    /// Device → the hash active in the broker (None: revoked there).
    creds: HashMap<String, Option<String>>,
    /// Device → (household, kind, room) detection knows.
    devices: HashMap<String, (String, String, Option<String>)>,
    /// What the mosquitto files were last written from.
    mosquitto: Option<Vec<(String, String, Option<String>)>>,
}

struct Running {
    started_ms: i64,
    kinds: HashMap<String, String>,
    tested: HashSet<String>,
    stop: Arc<Notify>,
}

/// Loads the stored credentials of `rows` (the device table read at start) into the
/// embedded broker, before it listens; returns how many logins were loaded.
pub fn load_credentials(creds: &DeviceCredentials, rows: &[DeviceRow]) -> usize {
    let mut applied = HashMap::new();
    apply_credentials(creds, rows, &mut applied);
    applied.values().filter(|v| v.is_some()).count()
}

/// Applies `rows` to `creds`, given what `applied` says is there.
fn apply_credentials(
    creds: &DeviceCredentials,
    rows: &[DeviceRow],
    applied: &mut HashMap<String, Option<String>>,
) {
    let mut seen = HashSet::new();
    for r in rows {
        let Some(hex) = &r.secret_hash else { continue };
        let (Ok(id), Some(hash)) = (DeviceId::new(&r.device_id), SecretHash::from_hex(hex)) else {
            warn!(device_id = %r.device_id, "stored credentials are unreadable; device refused");
            continue;
        };
        seen.insert(r.device_id.clone());
        let want = r.revoked_ms.is_none().then(|| hex.clone());
        let had = applied.get(&r.device_id).cloned();
        if had.as_ref() == Some(&want) {
            continue;
        }
        let bridge = r.kind == BRIDGE_KIND;
        let replaced = matches!(had, Some(Some(_)));
        match (bridge, want.is_some()) {
            (true, true) => {
                if replaced {
                    creds.remove_bridge(id.as_str());
                }
                creds.set_bridge_hash(id.as_str(), hash);
            }
            (true, false) => {
                creds.remove_bridge(id.as_str());
            }
            (false, true) => {
                if replaced {
                    // A rotation: the session made with the old secret is closed.
                    creds.revoke(&id);
                }
                creds.set_device(id.clone(), hash);
            }
            (false, false) => {
                creds.revoke(&id);
            }
        }
        if had.is_some() {
            if want.is_some() {
                info!(device_id = %id, "broker credentials replaced; old secret refused");
            } else {
                info!(device_id = %id, "broker credentials revoked; device disconnected");
            }
        }
        applied.insert(r.device_id.clone(), want);
    }
    // Devices whose provisioning row vanished lose their login.
    let gone: Vec<String> = applied
        .iter()
        .filter(|(d, v)| v.is_some() && !seen.contains(*d))
        .map(|(d, _)| d.clone())
        .collect();
    for d in gone {
        if let Ok(id) = DeviceId::new(&d) {
            creds.revoke(&id);
            creds.remove_bridge(&d);
        }
        applied.insert(d, None);
    }
}

/// A command id from an idempotency key (never 0), so that a repeated command is
/// recognised by the device.
fn command_id(key: &str) -> u32 {
    let h = Sha256::digest(key.as_bytes());
    u32::from_be_bytes([h[0], h[1], h[2], h[3]]).max(1)
}

/// Starts provisioning in the running gateway: applies the store's state, re-arms
/// running installation tests, and runs the poller, the sweep and the observation
/// watcher until shutdown.
pub async fn start(services: &Services, deps: LiveDeps) -> Result<Provisioning, ProvisionError> {
    let store = services.store.clone();
    let rows = deps.devices.clone();
    let mut applied = Applied::default();
    if let Some(creds) = &deps.credentials {
        // Already loaded by `load_credentials` before the broker started: record it.
        apply_credentials(creds, &rows, &mut applied.creds);
    }
    // Detection loaded every device from the store at its start.
    for r in rows.iter() {
        if let Some(h) = &r.household_id {
            applied.devices.insert(
                r.device_id.clone(),
                (h.clone(), r.kind.clone(), r.room.clone()),
            );
        }
    }
    let (events, _) = broadcast::channel(1024);
    let sync_failed = Counter::default();
    let missed = Counter::default();
    services.metrics.register(
        "anxin_provision_sync_failed",
        "Failed applications of provisioning changes to the running gateway",
        sync_failed.clone(),
    );
    services.metrics.register(
        "anxin_provision_observations_missed",
        "Observations provisioning missed because it fell behind",
        missed.clone(),
    );
    let live = Live {
        credentials: deps.credentials,
        registry: services.registry.clone(),
        detect: deps.detect,
        downlink: services.downlink.clone(),
        zigbee: deps.zigbee,
        events,
        applied: Mutex::new(applied),
        tests: Mutex::new(HashMap::new()),
        services: services.clone(),
        sync_failed,
        missed,
    };
    let p = Provisioning {
        inner: Arc::new(Inner::new(
            store,
            services.clock.clone(),
            &services.config,
            Some(live),
        )),
    };
    // The table read at start, not read again: the version read before it tells the
    // poller whether anything changed since.
    p.apply(&deps.devices).await?;

    let cancel = services.cancel.clone();
    let poller = p.clone();
    let version_at_load = deps.version;
    let every = Duration::from_millis(p.inner.config.poll_interval_ms.max(100));
    services.tasks.spawn(async move {
        let mut last = version_at_load;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            match poller.inner.store.provision_version().await {
                Ok(v) if v != last => match poller.sync().await {
                    Ok(()) => last = v,
                    Err(e) => {
                        if let Some(l) = &poller.inner.live {
                            l.sync_failed.inc();
                        }
                        warn!(error = %e, "provisioning changes not applied; retrying");
                    }
                },
                Ok(_) => {}
                Err(e) => warn!(error = %e, "provisioning version not readable"),
            }
        }
    });

    let cancel = services.cancel.clone();
    let sweeper = p.clone();
    let every = Duration::from_secs(p.inner.config.sweep_interval_s.max(1));
    services.tasks.spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = sweeper.sweep().await {
                warn!(error = %e, "device health sweep failed");
            }
        }
    });

    let cancel = services.cancel.clone();
    let watcher = p.clone();
    let mut rx = deps.observations;
    services.tasks.spawn(async move {
        loop {
            let o = tokio::select! {
                _ = cancel.cancelled() => break,
                o = rx.recv() => o,
            };
            match o {
                Ok(o) => {
                    if let Err(e) = watcher.observe(&o).await {
                        warn!(error = %e, device_id = %o.device_id, "provisioning could not record an observation");
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    if let Some(l) = &watcher.inner.live {
                        l.missed.inc_by(n);
                    }
                    warn!(missed = n, "provisioning fell behind the observations; test reports still come from the journal");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    Ok(p)
}

impl Provisioning {
    /// Installation-test events (start, check-off, end) of a running gateway; None in
    /// the CLI.
    pub fn watch_tests(&self) -> Option<broadcast::Receiver<TestEvent>> {
        self.inner.live.as_ref().map(|l| l.events.subscribe())
    }

    /// Applies the store's state to the running gateway (no-op in the CLI): broker
    /// credentials (revocations and rotations close live connections), the registry,
    /// the Zigbee mapping, new devices to detection, installation tests, and an external
    /// mosquitto's files.
    pub async fn sync(&self) -> Result<(), ProvisionError> {
        if self.inner.live.is_none() {
            return Ok(());
        }
        let rows = self.inner.store.device_rows(None).await?;
        self.apply(&rows).await
    }

    /// [`Provisioning::sync`] with the device table already read (`rows`).
    async fn apply(&self, rows: &[DeviceRow]) -> Result<(), ProvisionError> {
        let Some(live) = &self.inner.live else {
            return Ok(());
        };
        let store = &self.inner.store;
        let mut applied = live.applied.lock().await;
        if let Some(creds) = &live.credentials {
            apply_credentials(creds, rows, &mut applied.creds);
        }
        live.registry.replace(rows);
        live.zigbee.reload(store).await?;
        for r in rows {
            let Some(h) = &r.household_id else { continue };
            let key = (h.clone(), r.kind.clone(), r.room.clone());
            if applied.devices.get(&r.device_id) != Some(&key) {
                live.detect
                    .device_registered(h, &r.device_id, &r.kind, r.room.as_deref())
                    .await
                    .map_err(|e| ProvisionError::Detect(e.to_string()))?;
                applied.devices.insert(r.device_id.clone(), key);
            }
        }
        if let Some(m) = &self.inner.config.mosquitto {
            let digest: Vec<(String, String, Option<String>)> = rows
                .iter()
                .filter(|r| r.revoked_ms.is_none())
                .filter_map(|r| {
                    r.mosquitto_hash
                        .clone()
                        .map(|h| (r.device_id.clone(), h, r.zigbee_name.clone()))
                })
                .collect();
            if applied.mosquitto.as_ref() != Some(&digest) {
                let n = self
                    .write_mosquitto_files(&m.password_file, &m.acl_file)
                    .await?;
                super::mosquitto::reload(&m.reload_command).await?;
                info!(
                    logins = n,
                    "mosquitto password and ACL files written and reloaded"
                );
                applied.mosquitto = Some(digest);
            }
        }
        drop(applied);
        self.sync_tests(live, rows).await
    }

    async fn sync_tests(&self, live: &Live, rows: &[DeviceRow]) -> Result<(), ProvisionError> {
        let running = self.inner.store.running_install_tests().await?;
        let now = self.inner.clock.now_ms();
        let mut tests = live.tests.lock().await;
        // Ended elsewhere (the CLI): back to normal at once.
        let ended: Vec<String> = tests
            .iter()
            .filter(|(h, r)| {
                !running
                    .iter()
                    .any(|t| &t.household_id == *h && t.started_ms == r.started_ms)
            })
            .map(|(h, _)| h.clone())
            .collect();
        for h in ended {
            if let Some(r) = tests.remove(&h) {
                r.stop.notify_one();
                self.disarm(live, &h, r.started_ms, rows).await;
            }
        }
        for t in running {
            if tests.contains_key(&t.household_id) {
                continue;
            }
            if t.until_ms <= now {
                let view = self.finish(&t, SYSTEM).await?;
                let _ = live.events.send(TestEvent::Ended(view));
                continue;
            }
            let running = self.arm(live, &t, rows).await?;
            tests.insert(t.household_id.clone(), running);
        }
        Ok(())
    }

    fn native_devices<'a>(rows: &'a [DeviceRow], household: &str) -> Vec<&'a DeviceRow> {
        rows.iter()
            .filter(|r| r.household_id.as_deref() == Some(household))
            .filter(|r| r.zigbee_name.is_none() && r.kind != BRIDGE_KIND)
            .collect()
    }

    async fn arm(
        &self,
        live: &Live,
        t: &TestRow,
        rows: &[DeviceRow],
    ) -> Result<Running, ProvisionError> {
        let h = &t.household_id;
        live.detect
            .set_mode_by(
                h,
                HouseholdMode::InstallTest,
                Some(t.until_ms),
                t.started_by.as_deref(),
            )
            .await
            .map_err(|e| ProvisionError::Detect(e.to_string()))?;
        let now = self.inner.clock.now_ms();
        let duration_s = u32::try_from(((t.until_ms - now) / 1000).max(1)).unwrap_or(u32::MAX);
        for d in Self::native_devices(rows, h) {
            self.command(live, &d.device_id, t.started_ms, true, Some(duration_s));
        }
        let stop = Arc::new(Notify::new());
        let running = Running {
            started_ms: t.started_ms,
            kinds: rows
                .iter()
                .filter(|r| r.household_id.as_deref() == Some(h) && r.kind != BRIDGE_KIND)
                .map(|r| (r.device_id.clone(), r.kind.clone()))
                .collect(),
            tested: HashSet::new(),
            stop: stop.clone(),
        };
        info!(household_id = %h, until_ms = t.until_ms, devices = running.kinds.len(), "installation test armed: no caseworker alerts for this household until it ends");
        let _ = live.events.send(TestEvent::Started {
            household_id: h.clone(),
            until_ms: t.until_ms,
        });
        let p = self.clone();
        let row = t.clone();
        let cancel = live.services.cancel.clone();
        let clock = self.inner.clock.clone();
        live.services.tasks.spawn(async move {
            loop {
                let delay = clock.real_delay_until(row.until_ms);
                if delay.is_zero() {
                    break;
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = stop.notified() => return,
                    _ = tokio::time::sleep(delay.min(Duration::from_secs(60))) => {}
                }
            }
            let Some(live) = &p.inner.live else { return };
            live.tests.lock().await.remove(&row.household_id);
            match p.finish(&row, SYSTEM).await {
                Ok(view) => {
                    let _ = live.events.send(TestEvent::Ended(view));
                }
                Err(e) => warn!(error = %e, household_id = %row.household_id, "installation test report not written"),
            }
        });
        Ok(running)
    }

    /// A test ended early: detection back to normal, devices told.
    async fn disarm(&self, live: &Live, household: &str, started_ms: i64, rows: &[DeviceRow]) {
        if let Err(e) = live
            .detect
            .set_mode(household, HouseholdMode::Normal, None)
            .await
        {
            warn!(error = %e, household_id = household, "household mode not reset after the test");
        }
        for d in Self::native_devices(rows, household) {
            self.command(live, &d.device_id, started_ms, false, None);
        }
        if let Ok(Some(row)) = self.inner.store.install_test(household, started_ms).await
            && let Ok(view) = self.test_status(&row.household_id).await
        {
            let _ = live.events.send(TestEvent::Ended(view));
        }
        info!(
            household_id = household,
            "installation test ended early; household watched as usual"
        );
    }

    fn command(
        &self,
        live: &Live,
        device: &str,
        started_ms: i64,
        on: bool,
        duration_s: Option<u32>,
    ) {
        let Ok(id) = DeviceId::new(device) else {
            return;
        };
        let mut cmd = Command::new(
            command_id(&format!("install_test/{device}/{started_ms}/{on}")),
            CommandKind::InstallTest,
        );
        cmd.on = Some(on);
        cmd.duration_s = duration_s;
        if !live.downlink.command(&id, &cmd) {
            warn!(device_id = device, "installation-test command not queued");
        }
    }

    /// One observation: installation-test check-off, help presses, bridge availability.
    async fn observe(&self, o: &Observation) -> Result<(), ProvisionError> {
        let Some(live) = &self.inner.live else {
            return Ok(());
        };
        let store = &self.inner.store;
        match &o.what {
            ObservationKind::Event { body, .. } => {
                let Some(h) = o.household_id.as_deref() else {
                    return Ok(());
                };
                let mut under_test = false;
                {
                    let mut tests = live.tests.lock().await;
                    if let Some(t) = tests.get_mut(h) {
                        under_test = true;
                        if let Some(kind) = t.kinds.get(&*o.device_id)
                            && !t.tested.contains(&*o.device_id)
                            && let Some(by) = checks_off(kind, body)
                        {
                            t.tested.insert(o.device_id.to_string());
                            info!(household_id = h, device_id = %o.device_id, by = %by, left = t.kinds.len() - t.tested.len(), "installation test: device checked off");
                            let _ = live.events.send(TestEvent::CheckedOff(CheckOff {
                                household_id: h.into(),
                                device_id: o.device_id.to_string(),
                                at_ms: o.received_ms,
                                by,
                            }));
                        }
                    }
                }
                match body {
                    EventBody::Help {
                        act: HelpAction::Press,
                    } => {
                        let outcome = if under_test {
                            "test"
                        } else if self.nobody_home(live, h).await {
                            "unattended"
                        } else {
                            "pressed"
                        };
                        if outcome == "unattended" {
                            warn!(household_id = h, device_id = %o.device_id, "help press with nobody home: counted as a false press");
                        }
                        store
                            .add_press(&o.device_id, Some(h), o.at_ms, outcome)
                            .await?;
                    }
                    EventBody::Help {
                        act: HelpAction::Cancel,
                    } => {
                        store
                            .cancel_press(&o.device_id, o.at_ms - 120_000, o.at_ms)
                            .await?;
                    }
                    _ => {}
                }
            }
            ObservationKind::Availability { online } if &*o.device_kind == BRIDGE_KIND => {
                let now = self.inner.clock.now_ms();
                let reason = WorkOrderReason::BridgeOffline.as_str();
                if *online {
                    if store
                        .close_open_work_order(
                            &o.device_id,
                            reason,
                            SYSTEM,
                            "bridge back online",
                            now,
                        )
                        .await?
                    {
                        info!(device_id = %o.device_id, "Zigbee2MQTT bridge back online; work order closed");
                    }
                } else {
                    let Ok(bridge) = DeviceId::new(&o.device_id) else {
                        return Ok(());
                    };
                    let n = live.zigbee.devices_of(&bridge).len();
                    let detail =
                        format!("Zigbee2MQTT bridge offline: its {n} devices cannot be seen");
                    if let Some(id) = store
                        .open_work_order(&o.device_id, None, reason, &detail, now)
                        .await?
                    {
                        warn!(device_id = %o.device_id, devices = n, work_order = id, "Zigbee2MQTT bridge offline: one work order for the bridge");
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether detection thinks the household is out, away or in hospital.
    async fn nobody_home(&self, live: &Live, household: &str) -> bool {
        match live.detect.views_of(&[household]).await {
            Ok(views) => views.iter().any(|v| {
                v.household_id == household
                    && (v.out_since_ms.is_some()
                        || matches!(v.mode, HouseholdMode::Away | HouseholdMode::Hospital))
            }),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_ids_are_stable_and_never_zero() {
        assert_eq!(command_id("a"), command_id("a"));
        assert_ne!(
            command_id("install_test/x/1/true"),
            command_id("install_test/x/1/false")
        );
        assert_ne!(command_id(""), 0);
    }
}
