//! Per-device sequence tracking: which events are new and which are duplicates (QoS 1
//! redelivery, device replay), the highest contiguous committed sequence number that the
//! application-level ack reports, the gaps a device closed with `oldest` (events its full
//! outbox dropped), and how each device's clock maps to the gateway's (see
//! [`SequenceTracker::clock_offset`]).
//!
//! The store's unique key (device, boot, seq) remains the last word on duplicates; this is
//! the fast path, and it is what makes the ack contiguous.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::store::SeqRow;

#[derive(Debug, Default, Clone)]
struct BootSeq {
    boot: u32,
    /// Every seq <= contig is committed or was dropped by the device.
    contig: u32,
    /// Committed seqs above `contig`.
    above: BTreeSet<u32>,
    /// Seqs accepted into the batch being committed.
    pending: BTreeSet<u32>,
    /// Uptime clock → gateway time: the smallest `received_ms - ts` (persisted).
    clock_offset_ms: Option<i64>,
    /// Wall clock → gateway time: the same estimate for a device whose real-time clock
    /// disagrees with the gateway's (in memory; learned again from two heartbeats).
    unix_offset_ms: Option<i64>,
    /// A larger offset seen once from a live message, waiting for a second to agree.
    up_candidate: Option<i64>,
    unix_candidate: Option<i64>,
    dirty: bool,
}

/// Offsets closer than this are one offset (network delay, a heartbeat's jitter); a
/// device clock within this of the gateway's is taken as it is.
pub const CLOCK_TOLERANCE_MS: i64 = 60_000;

/// Which clock a message's `ts` counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsClock {
    /// Milliseconds since the device booted.
    Uptime,
    /// The device's own real-time clock (Unix ms).
    Unix,
}

/// Updates an offset estimate with one sample (`received_ms - ts`). A smaller sample
/// is a less delayed message and wins at once. A larger one is believed only from live
/// messages (heartbeats, status), and only when two in a row agree: then the clock
/// really moved (a step of the device's clock, or of the gateway's while it was not
/// running), while a message delayed in a broker's queue shows a delay of its own.
fn update_offset(
    offset: &mut Option<i64>,
    candidate: &mut Option<i64>,
    sample: i64,
    live: bool,
    first_from_events: bool,
) -> bool {
    let Some(cur) = *offset else {
        if !live && !first_from_events {
            return false;
        }
        *offset = Some(sample);
        return true;
    };
    if sample < cur {
        *offset = Some(sample);
        *candidate = None;
        return true;
    }
    if !live {
        return false;
    }
    if sample <= cur + CLOCK_TOLERANCE_MS {
        *candidate = None;
        return false;
    }
    match *candidate {
        Some(c) if (sample - c).abs() <= CLOCK_TOLERANCE_MS => {
            *offset = Some(sample.min(c));
            *candidate = None;
            true
        }
        _ => {
            *candidate = Some(sample);
            false
        }
    }
}

impl BootSeq {
    fn known(&self, seq: u32) -> bool {
        seq <= self.contig || self.above.contains(&seq) || self.pending.contains(&seq)
    }

    /// The contiguous mark once `pending` is committed. Walks only over seqs that are
    /// held (at most the sizes of the two sets), never over the numbers in between, and
    /// stops at `u32::MAX` instead of overflowing.
    fn contig_after_commit(&self) -> u32 {
        let mut c = self.contig;
        while let Some(next) = c.checked_add(1)
            && (self.above.contains(&next) || self.pending.contains(&next))
        {
            c = next;
        }
        c
    }

    /// How many seqs in `contig + 1 ..= floor` were never committed nor accepted: the
    /// length of the range minus the held seqs inside it, so that the cost does not
    /// depend on how far `floor` jumps.
    fn never_seen_up_to(&self, floor: u32) -> u32 {
        if floor <= self.contig {
            return 0;
        }
        let range = self.contig + 1..=floor;
        let held = self.above.range(range.clone()).count() + self.pending.range(range).count();
        (floor - self.contig).saturating_sub(u32::try_from(held).unwrap_or(u32::MAX))
    }
}

/// The verdict on one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classified {
    /// Not seen before: store it.
    New,
    /// Already committed or already in this batch.
    Duplicate,
}

/// Sequence state of every device, per boot epoch.
///
/// Every epoch that has a row in the store is kept: a device with a flash-backed outbox
/// may replay an epoch many boots old, and that replay must be classified against that
/// epoch's own marks. Forgetting an epoch would either classify its events against
/// another epoch (real events taken for duplicates, then acknowledged) or start it again
/// from zero and write that lower mark over the stored one. An epoch without holes costs
/// a few dozen bytes, the same as the row `restore` reads for it.
#[derive(Debug, Default)]
pub struct SequenceTracker {
    devices: HashMap<String, BTreeMap<u32, BootSeq>>,
    /// Devices with a dirty boot since the last commit: a batch touches only these, so
    /// its cost does not grow with the number of devices.
    dirty: HashSet<String>,
}

impl SequenceTracker {
    /// Restores from the store: contiguous marks and committed seqs above them.
    pub fn restore(rows: Vec<SeqRow>, above: Vec<(String, i64, i64)>) -> Self {
        let mut t = SequenceTracker::default();
        for r in rows {
            let b = t.boot_mut(&r.device_id, r.boot as u32);
            b.contig = r.contig as u32;
            b.clock_offset_ms = r.clock_offset_ms;
        }
        for (d, boot, seq) in above {
            t.boot_mut(&d, boot as u32).above.insert(seq as u32);
        }
        for boots in t.devices.values_mut() {
            for b in boots.values_mut() {
                b.contig = b.contig_after_commit();
                let c = b.contig;
                b.above.retain(|s| *s > c);
            }
        }
        t
    }

    fn boot_mut(&mut self, device: &str, boot: u32) -> &mut BootSeq {
        let boots = self.devices.entry(device.to_string()).or_default();
        boots.entry(boot).or_insert_with(|| BootSeq {
            boot,
            ..BootSeq::default()
        })
    }

    /// Classifies event (`boot`, `seq`) carrying `oldest`. Returns the verdict and the
    /// number of sequence numbers the device declared gone without the gateway ever
    /// committing them (dropped from a full outbox).
    pub fn classify(
        &mut self,
        device: &str,
        boot: u32,
        seq: u32,
        oldest: u32,
    ) -> (Classified, u32) {
        let b = self.boot_mut(device, boot);
        let mut dropped = 0;
        let floor = oldest.saturating_sub(1);
        if floor > b.contig {
            dropped = b.never_seen_up_to(floor);
            b.contig = floor;
            b.above.retain(|s| *s > floor);
            b.dirty = true;
        }
        let verdict = if b.known(seq) {
            Classified::Duplicate
        } else {
            b.pending.insert(seq);
            b.dirty = true;
            Classified::New
        };
        if b.dirty {
            self.mark(device);
        }
        (verdict, dropped)
    }

    /// Takes one message's clock evidence and returns what to add to its `ts` to place
    /// it on the gateway's clock. `live`: a heartbeat or status message, sent when
    /// written (events may be replays from the device's outbox).
    ///
    /// An uptime clock is placed by the least delayed message of its boot epoch. A
    /// real-time clock is trusted while it agrees with the gateway's within
    /// [`CLOCK_TOLERANCE_MS`]; when it does not (a device with a wrong clock, or a host
    /// clock stepped under devices that were not), it is placed like an uptime clock, so
    /// that silences are measured on one clock.
    pub fn clock_offset(
        &mut self,
        device: &str,
        boot: u32,
        clock: TsClock,
        received_ms: i64,
        ts: u64,
        live: bool,
    ) -> i64 {
        let sample = received_ms.saturating_sub(i64::try_from(ts).unwrap_or(i64::MAX));
        let b = self.boot_mut(device, boot);
        match clock {
            TsClock::Uptime => {
                let changed = update_offset(
                    &mut b.clock_offset_ms,
                    &mut b.up_candidate,
                    sample,
                    live,
                    true,
                );
                let offset = b.clock_offset_ms.unwrap_or(sample);
                if changed {
                    b.dirty = true;
                    self.mark(device);
                }
                offset
            }
            TsClock::Unix => {
                // Only a live message says how the clock relates to the gateway's: an
                // event may be a replay of any age.
                update_offset(
                    &mut b.unix_offset_ms,
                    &mut b.unix_candidate,
                    sample,
                    live,
                    false,
                );
                b.unix_offset_ms
                    .filter(|o| o.abs() > CLOCK_TOLERANCE_MS)
                    .unwrap_or(0)
            }
        }
    }

    /// The gateway's clock was stepped by `by` ms: every offset moves with it (the
    /// devices' clocks did not).
    pub fn shift_clock_offsets(&mut self, by: i64) {
        for (device, boots) in &mut self.devices {
            let mut changed = false;
            for b in boots.values_mut() {
                b.up_candidate = None;
                b.unix_candidate = None;
                if let Some(o) = &mut b.clock_offset_ms {
                    *o = o.saturating_add(by);
                    b.dirty = true;
                    changed = true;
                }
                if let Some(o) = &mut b.unix_offset_ms {
                    *o = o.saturating_add(by);
                }
            }
            if changed && !self.dirty.contains(device) {
                self.dirty.insert(device.clone());
            }
        }
    }

    fn mark(&mut self, device: &str) {
        if !self.dirty.contains(device) {
            self.dirty.insert(device.to_string());
        }
    }

    /// Rows to write with the batch: the state as it will be once the batch commits.
    pub fn dirty_rows(&self) -> Vec<SeqRow> {
        let mut out = Vec::with_capacity(self.dirty.len());
        for d in &self.dirty {
            let Some(boots) = self.devices.get(d) else {
                continue;
            };
            for b in boots.values().filter(|b| b.dirty) {
                out.push(SeqRow {
                    device_id: d.clone(),
                    boot: i64::from(b.boot),
                    contig: i64::from(b.contig_after_commit()),
                    clock_offset_ms: b.clock_offset_ms,
                });
            }
        }
        out
    }

    /// The batch committed: pending seqs become committed and the marks advance.
    pub fn committed(&mut self) {
        for d in std::mem::take(&mut self.dirty) {
            let Some(boots) = self.devices.get_mut(&d) else {
                continue;
            };
            for b in boots.values_mut().filter(|b| b.dirty) {
                let pending = std::mem::take(&mut b.pending);
                b.above.extend(pending);
                b.contig = b.contig_after_commit();
                let c = b.contig;
                b.above.retain(|s| *s > c);
                b.dirty = false;
            }
        }
    }

    /// The contiguous committed mark of (`device`, `boot`), for the ack.
    pub fn ack_upto(&self, device: &str, boot: u32) -> Option<u32> {
        self.devices.get(device)?.get(&boot).map(|b| b.contig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(t: &mut SequenceTracker) {
        t.committed();
    }

    #[test]
    fn in_order_events_advance_the_ack() {
        let mut t = SequenceTracker::default();
        for s in 1..=5 {
            assert_eq!(t.classify("d", 1, s, 1).0, Classified::New);
        }
        commit(&mut t);
        assert_eq!(t.ack_upto("d", 1), Some(5));
    }

    #[test]
    fn redelivered_event_is_a_duplicate_before_and_after_commit() {
        let mut t = SequenceTracker::default();
        assert_eq!(t.classify("d", 1, 1, 1).0, Classified::New);
        assert_eq!(t.classify("d", 1, 1, 1).0, Classified::Duplicate);
        commit(&mut t);
        assert_eq!(t.classify("d", 1, 1, 1).0, Classified::Duplicate);
    }

    #[test]
    fn a_hole_holds_the_ack_until_it_is_filled() {
        let mut t = SequenceTracker::default();
        t.classify("d", 1, 1, 1);
        t.classify("d", 1, 3, 1);
        commit(&mut t);
        assert_eq!(t.ack_upto("d", 1), Some(1));
        t.classify("d", 1, 2, 1);
        assert_eq!(
            t.dirty_rows()[0].contig,
            3,
            "the row written with the batch already says 3"
        );
        commit(&mut t);
        assert_eq!(t.ack_upto("d", 1), Some(3));
    }

    #[test]
    fn oldest_closes_a_gap_the_device_dropped_and_counts_it() {
        let mut t = SequenceTracker::default();
        t.classify("d", 1, 1, 1);
        commit(&mut t);
        // 2 and 3 were dropped by a full outbox; 4 arrives saying it holds nothing older.
        let (v, dropped) = t.classify("d", 1, 4, 4);
        assert_eq!((v, dropped), (Classified::New, 2));
        commit(&mut t);
        assert_eq!(t.ack_upto("d", 1), Some(4));
    }

    #[test]
    fn boots_are_tracked_apart() {
        let mut t = SequenceTracker::default();
        t.classify("d", 1, 1, 1);
        t.classify("d", 2, 1, 1);
        commit(&mut t);
        assert_eq!(t.ack_upto("d", 1), Some(1));
        assert_eq!(t.ack_upto("d", 2), Some(1));
        assert_eq!(t.classify("d", 2, 1, 1).0, Classified::Duplicate);
    }

    #[test]
    fn an_epoch_several_boots_old_keeps_its_own_marks() {
        let mut t = SequenceTracker::default();
        // Boot 1 left events 1..=5 in a flash-backed outbox; boots 2..=5 followed.
        for boot in 2..=5 {
            for s in 1..=10 {
                assert_eq!(t.classify("d", boot, s, 1).0, Classified::New);
            }
            commit(&mut t);
        }
        for s in 1..=5 {
            assert_eq!(
                t.classify("d", 1, s, 1).0,
                Classified::New,
                "seq {s} of boot 1 is not a duplicate of a later boot"
            );
        }
        commit(&mut t);
        assert_eq!(t.ack_upto("d", 1), Some(5));
        for boot in 2..=5 {
            assert_eq!(t.ack_upto("d", boot), Some(10), "boot {boot} untouched");
        }
        assert_eq!(t.classify("d", 1, 3, 1).0, Classified::Duplicate);
    }

    #[test]
    fn restore_keeps_every_stored_epoch() {
        let rows = (1..=6)
            .map(|boot| SeqRow {
                device_id: "d".into(),
                boot,
                contig: boot,
                clock_offset_ms: None,
            })
            .collect();
        let t = SequenceTracker::restore(rows, vec![]);
        for boot in 1..=6u32 {
            assert_eq!(t.ack_upto("d", boot), Some(boot));
        }
    }

    #[test]
    fn a_jump_to_the_last_seq_is_counted_without_walking_the_gap() {
        // Run on a thread with a deadline: walking four billion numbers would take
        // seconds in release and minutes in a debug build.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut t = SequenceTracker::default();
            t.classify("d", 1, 1, 1);
            t.classify("d", 1, 3, 1);
            commit(&mut t);
            let verdict = t.classify("d", 1, u32::MAX, u32::MAX);
            commit(&mut t);
            let _ = tx.send((verdict, t.ack_upto("d", 1)));
        });
        let (verdict, upto) = rx
            .recv_timeout(std::time::Duration::from_secs(2))
            .expect("classification of a huge jump returns at once");
        // 2 and 4..u32::MAX-1 were never seen; 3 was committed.
        assert_eq!(verdict, (Classified::New, u32::MAX - 3));
        assert_eq!(
            upto,
            Some(u32::MAX),
            "the mark reaches the end without overflow"
        );
    }

    #[test]
    fn an_event_at_the_last_seq_commits_without_overflow() {
        let mut t = SequenceTracker::default();
        assert_eq!(t.classify("d", 1, u32::MAX, 1).0, Classified::New);
        commit(&mut t);
        assert_eq!(t.ack_upto("d", 1), Some(0), "a hole below holds the mark");
        assert_eq!(t.classify("d", 1, u32::MAX, 1).0, Classified::Duplicate);
    }

    #[test]
    fn restore_rebuilds_marks_and_holes() {
        let rows = vec![SeqRow {
            device_id: "d".into(),
            boot: 1,
            contig: 2,
            clock_offset_ms: Some(7),
        }];
        let mut t = SequenceTracker::restore(rows, vec![("d".into(), 1, 4)]);
        assert_eq!(t.ack_upto("d", 1), Some(2));
        assert_eq!(t.classify("d", 1, 4, 1).0, Classified::Duplicate);
        t.classify("d", 1, 3, 1);
        commit(&mut t);
        assert_eq!(t.ack_upto("d", 1), Some(4));
    }

    #[test]
    fn uptime_clock_offset_takes_the_smallest_delay() {
        let mut t = SequenceTracker::default();
        let up = TsClock::Uptime;
        assert_eq!(t.clock_offset("d", 1, up, 10_500, 500, false), 10_000);
        assert_eq!(
            t.clock_offset("d", 1, up, 12_000, 1_000, false),
            10_000,
            "a replayed message arrives late"
        );
        assert_eq!(t.clock_offset("d", 1, up, 11_900, 2_000, false), 9_900);
    }

    #[test]
    fn a_larger_offset_needs_two_live_messages_that_agree() {
        let mut t = SequenceTracker::default();
        let up = TsClock::Uptime;
        let hour = 3_600_000;
        assert_eq!(t.clock_offset("d", 1, up, 10_000, 0, true), 10_000);
        // The gateway restarted after its clock was set an hour forward: events alone
        // (maybe replays) never move the offset up, one heartbeat does not either…
        assert_eq!(
            t.clock_offset("d", 1, up, hour + 20_000, 10_000, false),
            10_000
        );
        assert_eq!(
            t.clock_offset("d", 1, up, hour + 30_000, 20_000, true),
            10_000
        );
        // …two heartbeats in a row that agree do.
        assert_eq!(
            t.clock_offset("d", 1, up, hour + 330_000, 320_000, true),
            hour + 10_000
        );
        // Heartbeats queued in a broker and delivered together disagree by their interval.
        let mut q = SequenceTracker::default();
        q.clock_offset("d", 1, up, 10_000, 0, true);
        let late = 2 * hour;
        assert_eq!(q.clock_offset("d", 1, up, late, 300_000, true), 10_000);
        assert_eq!(q.clock_offset("d", 1, up, late + 5, 600_000, true), 10_000);
    }

    #[test]
    fn a_real_time_clock_is_trusted_while_it_agrees_with_the_gateway() {
        let mut t = SequenceTracker::default();
        let unix = TsClock::Unix;
        let now = 1_800_000_000_000i64;
        assert_eq!(t.clock_offset("d", 1, unix, now + 40, now as u64, true), 0);
        // The gateway's clock is stepped an hour forward and the device's is not: after
        // the step the offsets move with it, and the device's events land on the
        // gateway's new clock at once.
        let hour = 3_600_000;
        t.shift_clock_offsets(hour);
        let ts = (now + 10_000) as u64;
        assert_eq!(
            t.clock_offset("d", 1, unix, now + hour + 10_050, ts, false),
            hour + 40
        );
        // A device whose own clock is an hour behind is placed too, from two heartbeats.
        let mut w = SequenceTracker::default();
        w.clock_offset("w", 1, unix, now, (now - hour) as u64, true);
        assert_eq!(
            w.clock_offset(
                "w",
                1,
                unix,
                now + 300_000,
                (now - hour + 300_000) as u64,
                true
            ),
            hour
        );
    }

    #[test]
    fn old_events_from_a_real_time_clock_keep_their_time() {
        let mut t = SequenceTracker::default();
        let now = 1_800_000_000_000i64;
        let three_days = 3 * 86_400_000;
        let ts = (now - three_days) as u64;
        assert_eq!(t.clock_offset("d", 1, TsClock::Unix, now, ts, false), 0);
        assert_eq!(
            t.clock_offset("d", 1, TsClock::Unix, now + 5, ts + 1, false),
            0
        );
    }

    #[test]
    fn a_step_of_the_gateway_clock_moves_uptime_offsets_and_marks_them_for_the_store() {
        let mut t = SequenceTracker::default();
        t.clock_offset("d", 1, TsClock::Uptime, 10_000, 0, true);
        commit(&mut t);
        assert!(t.dirty_rows().is_empty());
        t.shift_clock_offsets(-3_600_000);
        let rows = t.dirty_rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].clock_offset_ms, Some(10_000 - 3_600_000));
    }
}
