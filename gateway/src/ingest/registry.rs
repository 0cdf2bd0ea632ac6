//! The in-memory view of registered devices that ingest checks every message against.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::store::{DeviceInfo, Store, StoreError};

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
        let r = Registry::default();
        r.reload(store).await?;
        Ok(r)
    }

    /// Replaces the view with the store's current devices.
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let map = store
            .devices()
            .await?
            .into_iter()
            .map(|d| (d.id.clone(), Self::entry(d)))
            .collect();
        if let Ok(mut w) = self.0.write() {
            *w = map;
        }
        Ok(())
    }

    fn entry(d: DeviceInfo) -> RegisteredDevice {
        RegisteredDevice {
            household_id: d.household_id.map(Arc::from),
            kind: Arc::from(d.kind),
            room: d.room.map(Arc::from),
        }
    }

    /// The registration of `device_id`, if any.
    pub fn get(&self, device_id: &str) -> Option<RegisteredDevice> {
        self.0.read().ok()?.get(device_id).cloned()
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
