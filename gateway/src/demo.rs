//! The demo population: registers the simulated homes' households and devices, so that
//! the gateway accepts their traffic like that of installed homes.

use anxin_firmware::sim::Population;

use crate::store::{NewDevice, NewHousehold, Store, StoreError};

/// Registers every household and device of `population`.
pub async fn register_population(
    store: &Store,
    population: &Population,
    now_ms: i64,
) -> Result<(), StoreError> {
    let households: Vec<NewHousehold> = population
        .households
        .iter()
        .enumerate()
        .map(|(i, h)| NewHousehold {
            id: h.id.to_string(),
            name: h.resident.clone(),
            // Invented addresses on an invented street.
            address: format!("安心路 {} 号 {} 室", 1 + i / 6, 101 + (i % 6) * 100),
        })
        .collect();
    let devices: Vec<NewDevice> = population
        .devices()
        .map(|(h, d)| NewDevice {
            id: d.id.to_string(),
            household_id: Some(h.id.to_string()),
            kind: d.kind.as_str().to_string(),
            room: Some(d.room.slug().to_string()),
        })
        .collect();
    store.upsert_households(&households, now_ms).await?;
    store.upsert_devices(&devices, now_ms).await
}
