//! The event journal: accepted events, exactly once per (device, boot, seq), committed
//! together with the sequence state that the application-level acks report and the
//! latest device health, in one transaction per batch (group commit).

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::Row;

use super::{Backend, Store, StoreError, Upsert};

/// A journal event as history reads it back: (journal id, device, household, event time
/// in ms, body as JSON).
pub type JournalRow = (i64, String, Option<String>, i64, String);

/// One accepted event.
#[derive(Debug, Clone)]
pub struct EventRow {
    /// Position in the journal, assigned by the gateway.
    pub journal_id: i64,
    /// Device.
    pub device_id: String,
    /// Boot epoch.
    pub boot: i64,
    /// Sequence number.
    pub seq: i64,
    /// Household at the time of the event.
    pub household_id: Option<String>,
    /// Event kind (`door`, `motion`, …).
    pub kind: &'static str,
    /// When it happened (ms, UTC), after clock normalisation.
    pub event_ms: i64,
    /// When the gateway received it.
    pub received_ms: i64,
    /// The event body as JSON (wire format of `ev`).
    pub body: String,
}

/// A stored event as a restarting adapter reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentEventRow {
    /// Event kind.
    pub kind: String,
    /// The event body as JSON.
    pub body: String,
    /// Sequence number.
    pub seq: i64,
    /// When the gateway received it.
    pub received_ms: i64,
}

/// Sequence state of a device in one boot epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqRow {
    /// Device.
    pub device_id: String,
    /// Boot epoch.
    pub boot: i64,
    /// Highest contiguous committed seq.
    pub contig: i64,
    /// Estimated `event_ms - ts` for devices with an uptime clock.
    pub clock_offset_ms: Option<i64>,
}

/// The latest health of a device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthRow {
    /// Device.
    pub device_id: String,
    /// Last time any message arrived.
    pub last_seen_ms: i64,
    /// Boot epoch.
    pub boot: i64,
    /// Last event seq the device reported issuing.
    pub last_seq: i64,
    /// Battery %.
    pub battery_pct: Option<i32>,
    /// Battery mV.
    pub battery_mv: Option<i32>,
    /// RSSI dBm.
    pub rssi_dbm: Option<i32>,
    /// Firmware version.
    pub fw: Option<String>,
    /// Uptime.
    pub uptime_s: Option<i64>,
    /// Outbox depth.
    pub outbox: Option<i32>,
    /// Events dropped by the device since boot.
    pub dropped: Option<i64>,
    /// Heartbeat interval.
    pub interval_s: Option<i32>,
    /// Temperature, tenths of °C.
    pub temp_dc: Option<i32>,
    /// 1 when the retained status says online.
    pub online: i32,
    /// When the status last changed.
    pub status_ms: Option<i64>,
}

/// An availability change (kept for symmetry with the wire; folded into [`HealthRow`]).
pub type StatusRow = HealthRow;

/// Everything one group commit writes.
#[derive(Debug, Default)]
pub struct CommitBatch {
    /// New events (duplicates already filtered in memory; the unique key catches the rest).
    pub events: Vec<EventRow>,
    /// Sequence state per (device, boot), one row each.
    pub seqs: Vec<SeqRow>,
}

impl CommitBatch {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.seqs.is_empty()
    }
}

/// The journal's rows; a duplicate keeps its first row (and journal id).
pub(super) const EVENTS: Upsert = Upsert {
    head: "INSERT INTO events (journal_id, device_id, boot, seq, household_id, kind, event_ms, \
           received_ms, body)",
    cols: 9,
    tail: "ON CONFLICT (device_id, boot, seq) DO NOTHING",
};

/// Sequence marks, one row per (device, boot).
pub(super) const SEQS: Upsert = Upsert {
    head: "INSERT INTO device_seq (device_id, boot, contig, clock_offset_ms)",
    cols: 4,
    tail: "ON CONFLICT (device_id, boot) DO UPDATE SET contig = excluded.contig, \
           clock_offset_ms = excluded.clock_offset_ms",
};

/// The latest health, one row per device.
pub(super) const HEALTH: Upsert = Upsert {
    head: "INSERT INTO device_health (device_id, last_seen_ms, boot, last_seq, battery_pct, \
           battery_mv, rssi_dbm, fw, uptime_s, outbox, dropped, interval_s, temp_dc, online, status_ms)",
    cols: 15,
    tail: "ON CONFLICT (device_id) DO UPDATE SET last_seen_ms = excluded.last_seen_ms, \
           boot = excluded.boot, last_seq = excluded.last_seq, battery_pct = excluded.battery_pct, \
           battery_mv = excluded.battery_mv, rssi_dbm = excluded.rssi_dbm, fw = excluded.fw, \
           uptime_s = excluded.uptime_s, outbox = excluded.outbox, dropped = excluded.dropped, \
           interval_s = excluded.interval_s, temp_dc = excluded.temp_dc, online = excluded.online, \
           status_ms = excluded.status_ms",
};

/// Row counts of the multi-row statements. A batch is cut greedily into pieces of these
/// sizes, so that each table has a handful of distinct statements that every connection
/// prepares once and keeps in its statement cache (a statement per batch size would be
/// prepared again and again, and SQLite's parser is not free).
const PIECES: [usize; 9] = [256, 128, 64, 32, 16, 8, 4, 2, 1];

/// `rows` cut into pieces of the sizes in [`PIECES`], largest first.
pub(crate) fn pieces<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let n = PIECES
            .iter()
            .copied()
            .find(|p| *p <= rows.len())
            .unwrap_or(1);
        let (head, tail) = rows.split_at(n);
        rows = tail;
        Some(head)
    })
}

impl Store {
    /// Writes `batch` in one transaction. Returns the journal ids of the events that
    /// were new; the others were already stored (a duplicate the memory missed).
    pub async fn commit(&self, batch: Arc<CommitBatch>) -> Result<HashSet<i64>, StoreError> {
        let r = match &self.writer {
            Some(w) => w.commit(batch).await,
            None => self.commit_once(&batch).await,
        };
        self.set_writable(r.is_ok());
        r
    }

    async fn commit_once(&self, batch: &CommitBatch) -> Result<HashSet<i64>, StoreError> {
        let mut tx = self.begin().await?;
        let mut inserted: HashSet<i64> = HashSet::with_capacity(batch.events.len());
        for piece in pieces(&batch.events) {
            let sql = EVENTS.sql(self.backend, piece.len());
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for e in piece {
                q = q
                    .bind(e.journal_id)
                    .bind(&e.device_id)
                    .bind(e.boot)
                    .bind(e.seq)
                    .bind(&e.household_id)
                    .bind(e.kind)
                    .bind(e.event_ms)
                    .bind(e.received_ms)
                    .bind(&e.body);
            }
            let added = q.execute(&mut *tx).await?.rows_affected() as usize;
            if added == piece.len() {
                inserted.extend(piece.iter().map(|e| e.journal_id));
                continue;
            }
            // Some were stored already: they kept their old journal ids, so the new
            // rows are those whose journal id is there now (rare; no RETURNING stream
            // in the common case).
            let (lo, hi) = piece.iter().fold((i64::MAX, i64::MIN), |(lo, hi), e| {
                (lo.min(e.journal_id), hi.max(e.journal_id))
            });
            let rows = sqlx::query(
                "SELECT journal_id FROM events WHERE journal_id >= $1 AND journal_id <= $2",
            )
            .bind(lo)
            .bind(hi)
            .fetch_all(&mut *tx)
            .await?;
            for r in rows {
                inserted.insert(r.try_get("journal_id")?);
            }
        }
        for piece in pieces(&batch.seqs) {
            let sql = SEQS.sql(self.backend, piece.len());
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for s in piece {
                q = q
                    .bind(&s.device_id)
                    .bind(s.boot)
                    .bind(s.contig)
                    .bind(s.clock_offset_ms);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// The next free journal position.
    pub async fn next_journal_id(&self) -> Result<i64, StoreError> {
        Ok(self.last_journal_id().await? + 1)
    }

    /// The highest journal position taken (0 while the journal is empty).
    pub async fn last_journal_id(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(journal_id), 0) AS m FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("m")?)
    }

    /// The next `limit` events above journal position `after`, in journal order, as
    /// (journal id, device, household, event time, body).
    pub async fn journal_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<JournalRow>, StoreError> {
        match self.backend {
            // One row holding them all as JSON: sqlx hands SQLite rows over one by one
            // between threads, which costs more than the rows themselves.
            Backend::Sqlite => {
                let (json,): (String,) = sqlx::query_as(
                    "SELECT json_group_array(json_array(journal_id, device_id, household_id, event_ms, body)) \
                     FROM (SELECT journal_id, device_id, household_id, event_ms, body FROM events \
                     WHERE journal_id > $1 ORDER BY journal_id LIMIT $2)",
                )
                .bind(after)
                .bind(limit as i64)
                .fetch_one(&self.pool)
                .await?;
                let mut rows: Vec<JournalRow> =
                    serde_json::from_str(&json).map_err(|_| StoreError::Corrupt("events"))?;
                rows.sort_by_key(|r| r.0);
                Ok(rows)
            }
            Backend::Postgres => {
                let rows = sqlx::query(
                    "SELECT journal_id, device_id, household_id, event_ms, body FROM events \
                     WHERE journal_id > $1 ORDER BY journal_id LIMIT $2",
                )
                .bind(after)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            r.try_get("journal_id")?,
                            r.try_get("device_id")?,
                            r.try_get("household_id")?,
                            r.try_get("event_ms")?,
                            r.try_get("body")?,
                        ))
                    })
                    .collect()
            }
        }
    }

    /// Every device's sequence state.
    pub async fn seq_state(&self) -> Result<Vec<SeqRow>, StoreError> {
        let rows = sqlx::query("SELECT device_id, boot, contig, clock_offset_ms FROM device_seq")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SeqRow {
                    device_id: r.try_get("device_id")?,
                    boot: r.try_get("boot")?,
                    contig: r.try_get("contig")?,
                    clock_offset_ms: r.try_get("clock_offset_ms")?,
                })
            })
            .collect()
    }

    /// Committed events above each device's contiguous mark (the holes' far side), so a
    /// restarted gateway knows them without waiting for a replay.
    pub async fn committed_above_contig(&self) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.device_id, e.boot, e.seq FROM events e JOIN device_seq d \
             ON e.device_id = d.device_id AND e.boot = d.boot WHERE e.seq > d.contig",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("device_id")?,
                    r.try_get("boot")?,
                    r.try_get("seq")?,
                ))
            })
            .collect()
    }

    /// Latest health of every device: the table, with the rows ingest folded since the
    /// last flush laid over it.
    pub async fn device_health(&self) -> Result<Vec<HealthRow>, StoreError> {
        let mut rows = self.stored_health().await?;
        self.health.overlay(&mut rows);
        Ok(rows)
    }

    /// Folds `row` as its device's latest health: seen by [`Store::device_health`] at
    /// once, written by the next [`Store::flush_health`].
    pub fn fold_health(&self, row: HealthRow) {
        self.health.fold(row);
    }

    /// How many folded health rows wait for a flush.
    pub fn health_pending(&self) -> usize {
        self.health.len()
    }

    /// Writes the folded health rows (one transaction); on failure they stay folded for
    /// the next flush. Returns how many rows were written.
    pub async fn flush_health(&self) -> Result<usize, StoreError> {
        let rows = self.health.take();
        if rows.is_empty() {
            return Ok(0);
        }
        let n = rows.len();
        let (rows, r) = match &self.writer {
            Some(w) => w.write_health(rows).await,
            None => {
                let r = self.write_health(&rows).await;
                (rows, r)
            }
        };
        match r {
            Ok(()) => Ok(n),
            Err(e) => {
                self.health.put_back(rows);
                Err(e)
            }
        }
    }

    async fn write_health(&self, rows: &[HealthRow]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for piece in pieces(rows) {
            let sql = HEALTH.sql(self.backend, piece.len());
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for h in piece {
                q = q
                    .bind(&h.device_id)
                    .bind(h.last_seen_ms)
                    .bind(h.boot)
                    .bind(h.last_seq)
                    .bind(h.battery_pct)
                    .bind(h.battery_mv)
                    .bind(h.rssi_dbm)
                    .bind(&h.fw)
                    .bind(h.uptime_s)
                    .bind(h.outbox)
                    .bind(h.dropped)
                    .bind(h.interval_s)
                    .bind(h.temp_dc)
                    .bind(h.online)
                    .bind(h.status_ms);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn stored_health(&self) -> Result<Vec<HealthRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT device_id, last_seen_ms, boot, last_seq, battery_pct, battery_mv, rssi_dbm, fw, uptime_s, \
             outbox, dropped, interval_s, temp_dc, online, status_ms FROM device_health ORDER BY device_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HealthRow {
                    device_id: r.try_get("device_id")?,
                    last_seen_ms: r.try_get("last_seen_ms")?,
                    boot: r.try_get("boot")?,
                    last_seq: r.try_get("last_seq")?,
                    battery_pct: r.try_get("battery_pct")?,
                    battery_mv: r.try_get("battery_mv")?,
                    rssi_dbm: r.try_get("rssi_dbm")?,
                    fw: r.try_get("fw")?,
                    uptime_s: r.try_get("uptime_s")?,
                    outbox: r.try_get("outbox")?,
                    dropped: r.try_get("dropped")?,
                    interval_s: r.try_get("interval_s")?,
                    temp_dc: r.try_get("temp_dc")?,
                    online: r.try_get("online")?,
                    status_ms: r.try_get("status_ms")?,
                })
            })
            .collect()
    }

    /// The last `limit` stored events of `device_id` in boot epoch `boot`, highest seq
    /// first.
    pub async fn latest_events_of(
        &self,
        device_id: &str,
        boot: i64,
        limit: i64,
    ) -> Result<Vec<RecentEventRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, body, seq, received_ms FROM events WHERE device_id = $1 AND boot = $2 \
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(device_id)
        .bind(boot)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RecentEventRow {
                    kind: r.try_get("kind")?,
                    body: r.try_get("body")?,
                    seq: r.try_get("seq")?,
                    received_ms: r.try_get("received_ms")?,
                })
            })
            .collect()
    }

    /// Number of stored events (tests and reports).
    pub async fn event_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Stored events of a device, in seq order, as (boot, seq, kind).
    pub async fn events_of(&self, device_id: &str) -> Result<Vec<(i64, i64, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT boot, seq, kind FROM events WHERE device_id = $1 ORDER BY boot, seq",
        )
        .bind(device_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("boot")?, r.try_get("seq")?, r.try_get("kind")?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_cut_into_a_few_cached_statement_sizes() {
        let rows: Vec<u32> = (0..600).collect();
        let sizes: Vec<usize> = pieces(&rows).map(<[u32]>::len).collect();
        assert_eq!(sizes, vec![256, 256, 64, 16, 8]);
        assert_eq!(pieces(&rows).flatten().count(), 600);
        assert_eq!(pieces::<u32>(&[]).count(), 0);
    }

    fn event(journal_id: i64, seq: i64) -> EventRow {
        EventRow {
            journal_id,
            device_id: "h1-door".into(),
            boot: 1,
            seq,
            household_id: Some("h1".into()),
            kind: "door",
            event_ms: 1_000 * seq,
            received_ms: 1_000 * seq,
            body: "{}".into(),
        }
    }

    #[tokio::test]
    async fn a_commit_reports_the_new_events_and_a_duplicate_keeps_its_first_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path()).await;
        let seq = |contig| SeqRow {
            device_id: "h1-door".into(),
            boot: 1,
            contig,
            clock_offset_ms: Some(-5),
        };
        let first = CommitBatch {
            events: vec![event(1, 1), event(2, 2)],
            seqs: vec![seq(2)],
        };
        let new = store.commit(Arc::new(first)).await.unwrap();
        assert_eq!(new, HashSet::from([1, 2]));
        // Seq 2 again under another journal id, and seq 3.
        let second = CommitBatch {
            events: vec![event(3, 2), event(4, 3)],
            seqs: vec![seq(3)],
        };
        let new = store.commit(Arc::new(second)).await.unwrap();
        assert_eq!(new, HashSet::from([4]), "the duplicate is not new");
        assert_eq!(store.event_count().await.unwrap(), 3);
        assert_eq!(store.seq_state().await.unwrap(), vec![seq(3)]);
        assert_eq!(store.next_journal_id().await.unwrap(), 5);
        store.close().await;
    }

    #[tokio::test]
    async fn folded_health_is_read_at_once_and_written_by_the_flush() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path()).await;
        let row = |battery| HealthRow {
            device_id: "h1-help".into(),
            last_seen_ms: 1_000,
            battery_pct: Some(battery),
            ..HealthRow::default()
        };
        store.fold_health(row(80));
        store.fold_health(row(75));
        assert_eq!(store.device_health().await.unwrap(), vec![row(75)]);
        assert!(
            store.stored_health().await.unwrap().is_empty(),
            "nothing written before the flush"
        );
        assert_eq!(store.flush_health().await.unwrap(), 1);
        assert_eq!(store.stored_health().await.unwrap(), vec![row(75)]);
        assert_eq!(store.health_pending(), 0);
        assert_eq!(store.flush_health().await.unwrap(), 0, "nothing left");
        store.close().await;
    }
}
