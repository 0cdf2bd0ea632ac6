//! Device health, written behind. Heartbeats and status messages carry no sequence and
//! each one replaces the last, so ingest does not write them with every group commit:
//! it folds the latest row per device here, readers of [`Store::device_health`] see the
//! folded rows at once, and the committer flushes them to `device_health` every few
//! seconds in one transaction. A crash loses at most that much health (the next
//! heartbeat restores it); no event, sequence mark or acknowledgement depends on it.
//!
//! [`Store::device_health`]: super::Store::device_health

use std::collections::HashMap;
use std::sync::Mutex;

use super::HealthRow;

/// The rows folded since the last flush, one per device.
#[derive(Debug, Default)]
pub(crate) struct HealthBehind {
    pending: Mutex<HashMap<String, HealthRow>>,
}

impl HealthBehind {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, HealthRow>> {
        // A panic while holding this lock cannot leave a row half-written: take it.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `row` as its device's latest health.
    pub(crate) fn fold(&self, row: HealthRow) {
        self.pending().insert(row.device_id.clone(), row);
    }

    /// Takes every folded row for a flush.
    pub(crate) fn take(&self) -> Vec<HealthRow> {
        let mut rows: Vec<HealthRow> = self.pending().drain().map(|(_, r)| r).collect();
        rows.sort_by(|a, b| a.device_id.cmp(&b.device_id));
        rows
    }

    /// Puts back rows whose flush failed, unless a newer row was folded meanwhile.
    pub(crate) fn put_back(&self, rows: Vec<HealthRow>) {
        let mut pending = self.pending();
        for r in rows {
            pending.entry(r.device_id.clone()).or_insert(r);
        }
    }

    /// Lays the folded rows over `stored` (sorted by device id), adding devices the
    /// table does not have yet.
    pub(crate) fn overlay(&self, stored: &mut Vec<HealthRow>) {
        let pending = self.pending();
        if pending.is_empty() {
            return;
        }
        for r in stored.iter_mut() {
            if let Some(p) = pending.get(&r.device_id) {
                *r = p.clone();
            }
        }
        let known: std::collections::HashSet<&str> =
            stored.iter().map(|r| r.device_id.as_str()).collect();
        let mut new: Vec<HealthRow> = pending
            .values()
            .filter(|p| !known.contains(p.device_id.as_str()))
            .cloned()
            .collect();
        drop(known);
        stored.append(&mut new);
        stored.sort_by(|a, b| a.device_id.cmp(&b.device_id));
    }

    /// How many rows wait for a flush.
    pub(crate) fn len(&self) -> usize {
        self.pending().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, battery: i32) -> HealthRow {
        HealthRow {
            device_id: id.into(),
            battery_pct: Some(battery),
            ..HealthRow::default()
        }
    }

    #[test]
    fn readers_see_the_latest_fold_over_the_table() {
        let h = HealthBehind::default();
        h.fold(row("b", 50));
        h.fold(row("b", 40));
        h.fold(row("c", 90));
        let mut stored = vec![row("a", 10), row("b", 80)];
        h.overlay(&mut stored);
        let got: Vec<(&str, Option<i32>)> = stored
            .iter()
            .map(|r| (r.device_id.as_str(), r.battery_pct))
            .collect();
        assert_eq!(got, [("a", Some(10)), ("b", Some(40)), ("c", Some(90))]);
    }

    #[test]
    fn a_failed_flush_keeps_its_rows_but_never_over_a_newer_one() {
        let h = HealthBehind::default();
        h.fold(row("a", 50));
        h.fold(row("b", 60));
        let taken = h.take();
        assert_eq!(h.len(), 0);
        h.fold(row("a", 45));
        h.put_back(taken);
        let mut rows = h.take();
        rows.sort_by(|x, y| x.device_id.cmp(&y.device_id));
        assert_eq!(
            rows.iter().map(|r| r.battery_pct).collect::<Vec<_>>(),
            [Some(45), Some(60)]
        );
    }
}
