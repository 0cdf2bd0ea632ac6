//! The in-memory view of registered devices that ingest checks every message against.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::store::{DeviceRow, Store, StoreError};

/// A registered device, with shared strings for cheap observations.
#[derive(Debug, Clone)]
pub struct RegisteredDevice {
    /// Household, if bound.
    pub household_id: Option<Arc<str>>,
    /// Kind.
    pub kind: Arc<str>,
    /// Room.
    pub room: Option<Arc<str>>,
}

/// Device id → registration. Cheap to clone; reload after registrations.
#[derive(Debug, Clone, Default)]
pub struct Registry(Arc<RwLock<HashMap<String, RegisteredDevice>>>);

impl Registry {
    /// Loads every device from the store.
    pub async fn load(store: &Store) -> Result<Registry, StoreError> {
        Ok(Registry::from_rows(&store.device_rows(None).await?))
    }

    /// The view of `rows` (the device table read once at start).
    pub fn from_rows(rows: &[DeviceRow]) -> Registry {
        let r = Registry::default();
        r.replace(rows);
        r
    }

    /// Replaces the view with the store's current devices.
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        self.replace(&store.device_rows(None).await?);
        Ok(())
    }

    /// Replaces the view with `rows`.
    pub fn replace(&self, rows: &[DeviceRow]) {
        let map = rows
            .iter()
            .map(|d| (d.device_id.clone(), Self::entry(d)))
            .collect();
        if let Ok(mut w) = self.0.write() {
            *w = map;
        }
    }

    fn entry(d: &DeviceRow) -> RegisteredDevice {
        RegisteredDevice {
            household_id: d.household_id.as_deref().map(Arc::from),
            kind: Arc::from(d.kind.as_str()),
            room: d.room.as_deref().map(Arc::from),
        }
    }

    /// The registration of `device_id`, if any.
    pub fn get(&self, device_id: &str) -> Option<RegisteredDevice> {
        self.0.read().ok()?.get(device_id).cloned()
    }

    /// Every registered device, by id.
    pub fn entries(&self) -> Vec<(String, RegisteredDevice)> {
        self.0
            .read()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Number of registered devices.
    pub fn len(&self) -> usize {
        self.0.read().map(|m| m.len()).unwrap_or(0)
    }

    /// No devices registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
