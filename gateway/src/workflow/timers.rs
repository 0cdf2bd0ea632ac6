//! The one deadline queue: every open alert's next deadline and the daily jobs, in time
//! order, served by a single task (not a task per alert). The store is the truth: the
//! queue is rebuilt from it at start, and each firing re-reads the row and changes it
//! with a compare-and-set, so a stale entry is harmless and nothing fires twice.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{AlertId, WorkflowHandle};
use crate::clock::StepFollower;

/// The longest the queue sleeps before looking at the clock again (a manual or
/// accelerated clock may jump).
const MAX_NAP: Duration = Duration::from_secs(1);
/// How often the queue is rebuilt from the store (other writers, missed wake-ups).
const RESYNC_EVERY: Duration = Duration::from_secs(30);

/// What a deadline is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeadlineKey {
    /// An alert's next step, repeat or arrival check.
    Alert(String),
    /// The daily jobs (morning list, end-of-day list).
    Daily,
}

/// A command to the queue.
#[derive(Debug)]
pub enum TimerCmd {
    /// (Re)schedules `key` at the time given, or removes it.
    Schedule(DeadlineKey, Option<i64>),
}

/// Deadlines in time order; one entry per key.
#[derive(Debug, Default)]
pub struct DeadlineQueue {
    order: BTreeSet<(i64, DeadlineKey)>,
    by_key: HashMap<DeadlineKey, i64>,
}

impl DeadlineQueue {
    /// Sets `key`'s deadline (replacing any earlier one), or removes it with None.
    pub fn set(&mut self, key: DeadlineKey, at: Option<i64>) {
        if let Some(old) = self.by_key.remove(&key) {
            self.order.remove(&(old, key.clone()));
        }
        if let Some(t) = at {
            self.order.insert((t, key.clone()));
            self.by_key.insert(key, t);
        }
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<i64> {
        self.order.first().map(|(t, _)| *t)
    }

    /// Removes and returns every key due at `now`, earliest first.
    pub fn pop_due(&mut self, now: i64) -> Vec<DeadlineKey> {
        let mut out = vec![];
        while let Some((t, _)) = self.order.first() {
            if *t > now {
                break;
            }
            if let Some((_, k)) = self.order.pop_first() {
                self.by_key.remove(&k);
                out.push(k);
            }
        }
        out
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

impl WorkflowHandle {
    /// Tells the running queue about `key`'s deadline (no-op when not running).
    pub(crate) fn schedule(&self, key: DeadlineKey, at: Option<i64>) {
        if let Ok(t) = self.inner.timers.lock()
            && let Some(tx) = t.as_ref()
        {
            let _ = tx.send(TimerCmd::Schedule(key, at));
        }
    }

    async fn load_queue(&self, q: &mut DeadlineQueue) {
        match self.open_deadlines().await {
            Ok(list) => {
                for (id, t) in list {
                    q.set(DeadlineKey::Alert(id.0), Some(t));
                }
            }
            Err(e) => warn!(error = %e, "could not load alert deadlines"),
        }
        q.set(DeadlineKey::Daily, Some(self.next_daily_run(self.now_ms())));
    }
}

/// Serves the queue until cancelled.
pub(crate) async fn run(
    wf: WorkflowHandle,
    mut cmds: mpsc::UnboundedReceiver<TimerCmd>,
    cancel: CancellationToken,
) {
    let mut q = DeadlineQueue::default();
    wf.load_queue(&mut q).await;
    // Daily jobs missed while the gateway was down run now (each at most once a day).
    q.set(DeadlineKey::Daily, Some(wf.now_ms()));
    let mut last_sync = tokio::time::Instant::now();
    let mut steps = StepFollower::new(&*wf.inner.clock);
    loop {
        let (now, step) = steps.now(&*wf.inner.clock);
        if step != 0 {
            // The host clock was stepped: open alerts' deadlines move with it, so that
            // an escalation still comes its real time after the raise.
            match wf.shift_open_deadlines(step).await {
                Ok(n) => warn!(
                    step_ms = step,
                    alerts = n,
                    "host clock stepped: escalation deadlines moved with it"
                ),
                Err(e) => {
                    warn!(step_ms = step, error = %e, "escalation deadlines not moved after a clock step; retrying");
                    steps.not_applied(step);
                }
            }
            q = DeadlineQueue::default();
            wf.load_queue(&mut q).await;
            last_sync = tokio::time::Instant::now();
        }
        for key in q.pop_due(now) {
            match key {
                DeadlineKey::Alert(id) => {
                    let id = AlertId(id);
                    match wf.process_deadlines(&id).await {
                        Ok(next) => q.set(DeadlineKey::Alert(id.0), next),
                        Err(super::WorkflowError::UnknownAlert(_)) => {}
                        Err(e) => {
                            warn!(alert_id = %id, error = %e, "deadline not processed; retrying");
                            q.set(DeadlineKey::Alert(id.0), Some(wf.now_ms() + 1000));
                        }
                    }
                }
                DeadlineKey::Daily => {
                    if let Err(e) = wf.run_daily_jobs().await {
                        warn!(error = %e, "daily jobs failed; retrying");
                        q.set(DeadlineKey::Daily, Some(wf.now_ms() + 5000));
                    } else {
                        q.set(DeadlineKey::Daily, Some(wf.next_daily_run(wf.now_ms())));
                    }
                }
            }
        }
        if last_sync.elapsed() >= RESYNC_EVERY {
            wf.load_queue(&mut q).await;
            last_sync = tokio::time::Instant::now();
        }
        let nap = q
            .next()
            .map(|t| wf.inner.clock.real_delay_until(t))
            .unwrap_or(MAX_NAP)
            .min(MAX_NAP);
        tokio::select! {
            _ = cancel.cancelled() => break,
            cmd = cmds.recv() => match cmd {
                Some(TimerCmd::Schedule(k, at)) => q.set(k, at),
                None => break,
            },
            _ = tokio::time::sleep(nap) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> DeadlineKey {
        DeadlineKey::Alert(s.into())
    }

    #[test]
    fn deadlines_come_out_in_time_order_and_a_reschedule_replaces_the_old_one() {
        let mut q = DeadlineQueue::default();
        q.set(a("x"), Some(300));
        q.set(a("y"), Some(100));
        q.set(a("z"), Some(200));
        q.set(a("x"), Some(50));
        assert_eq!(q.len(), 3);
        assert_eq!(q.next(), Some(50));
        assert_eq!(q.pop_due(150), vec![a("x"), a("y")]);
        q.set(a("z"), None);
        assert!(q.is_empty());
    }
}
