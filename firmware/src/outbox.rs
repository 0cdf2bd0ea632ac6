//! Store-and-forward queue of events, kept until the gateway acknowledges them.
//!
//! [`Outbox`] holds up to `N` [`Event`]s in `(boot, seq)` order. An event leaves the
//! outbox only when an [`Ack`] of its boot epoch covers its `seq` (the gateway committed
//! it durably) or when a full outbox drops it; a broker's PUBACK, a reconnect or a
//! gateway restart change nothing.
//!
//! ## Sending
//! [`Outbox::send_due`] hands every event that is due to a send function, in
//! `(boot, seq)` order, stamping `oldest` (the lowest `seq` of the event's boot still
//! held) at send time. A new event is due at once. An event sent but not acknowledged
//! is due again after the retry interval, doubling on each attempt up to a ceiling
//! ([`RetryPolicy`], default 10 s then 20 s, 40 s, capped at 60 s of device time).
//! After a reconnect, [`Outbox::replay_all`] makes every held event due at once, with
//! the backoff reset. A failed send stops the round, so events never overtake an
//! earlier one that could not go.
//!
//! ## Drop policy (outbox full)
//! The least important event goes first: the lowest [`crate::wire::Priority`] (motion,
//! then door and tamper, then help, fall and gas), and among events of that priority
//! the oldest (lowest boot, then lowest seq). The new event competes too: a motion
//! event arriving at an outbox full of help events is itself the one dropped. So a
//! help, fall or gas event is never dropped while a motion, door or tamper event could
//! go instead. Every drop is counted ([`Outbox::dropped`], reported in heartbeats).
//! Because `oldest` is the lowest seq still held, the gateway learns from the next
//! event it receives that the dropped ones will never come, and does not wait for them.
//!
//! ## Several boot epochs
//! Events carry their own boot epoch and the outbox keeps them apart: an ack clears
//! only events of the boot it names, so an ack for an earlier boot still clears the
//! events of that boot (a flash-backed outbox restored at start-up with
//! [`Outbox::push`] carries them across a reboot). The RAM outbox of today starts empty
//! at every boot.

use heapless::Vec;

use crate::wire::{Ack, BootEpoch, Event, Seq};

/// When an unacknowledged event is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first send, in ms (default 10 000).
    pub first_ms: u32,
    /// Ceiling of the doubling delay, in ms (default 60 000).
    pub max_ms: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_ms: 10_000,
            max_ms: 60_000,
        }
    }
}

impl RetryPolicy {
    /// Delay before the next attempt after `attempts` sends (≥ 1).
    pub fn delay_ms(&self, attempts: u16) -> u64 {
        let shift = u32::from(attempts.saturating_sub(1)).min(20);
        (u64::from(self.first_ms) << shift).min(u64::from(self.max_ms.max(self.first_ms)))
    }
}

/// Whether [`Outbox::send_due`] hands an event over for the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// First send of this event.
    First,
    /// A resend (retry after the retry delay, or replay after a reconnect).
    Repeat,
}

/// What [`Outbox::push`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// The event is stored; nothing was dropped.
    Stored,
    /// The event is stored; the outbox was full and dropped this less important (or
    /// older) event to make room.
    Evicted(Event),
    /// The outbox was full of more important events: the new event itself was dropped.
    Refused(Event),
    /// An event with the same boot and seq is already held; nothing changed.
    Duplicate,
}

impl Pushed {
    /// The event dropped by this push, if any.
    pub fn dropped(&self) -> Option<&Event> {
        match self {
            Pushed::Evicted(e) | Pushed::Refused(e) => Some(e),
            Pushed::Stored | Pushed::Duplicate => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Slot {
    event: Event,
    /// Due at or after this time (0: never sent, due at once).
    next_try_ms: u64,
    /// Sends since the last replay (for the backoff).
    attempts: u16,
    /// Whether the event was ever handed to a send function.
    sent: bool,
}

/// A bounded store-and-forward queue of `N` events.
#[derive(Debug, Clone)]
pub struct Outbox<const N: usize> {
    slots: Vec<Slot, N>,
    retry: RetryPolicy,
    dropped: u32,
}

impl<const N: usize> Default for Outbox<N> {
    fn default() -> Self {
        Outbox::new(RetryPolicy::default())
    }
}

impl<const N: usize> Outbox<N> {
    /// An empty outbox.
    pub const fn new(retry: RetryPolicy) -> Self {
        Outbox {
            slots: Vec::new(),
            retry,
            dropped: 0,
        }
    }

    /// Stores `event` (of any boot epoch), dropping the least important event if the
    /// outbox is full (see the module's drop policy). The event is due at once.
    pub fn push(&mut self, event: Event) -> Pushed {
        let key = (event.boot, event.seq);
        let at = self
            .slots
            .iter()
            .rposition(|s| (s.event.boot, s.event.seq) <= key)
            .map_or(0, |i| i + 1);
        if at > 0
            && self
                .slots
                .get(at - 1)
                .is_some_and(|s| (s.event.boot, s.event.seq) == key)
        {
            return Pushed::Duplicate;
        }
        let slot = Slot {
            event,
            next_try_ms: 0,
            attempts: 0,
            sent: false,
        };
        if !self.slots.is_full() {
            return match self.slots.insert(at, slot) {
                Ok(()) => Pushed::Stored,
                Err(slot) => self.refuse(slot.event),
            };
        }
        // Full: the victim is the first (oldest) slot of the lowest priority.
        let victim = self
            .slots
            .iter()
            .enumerate()
            .min_by_key(|(i, s)| (s.event.ev.priority(), *i))
            .map(|(i, s)| (i, s.event.ev.priority()));
        match victim {
            Some((i, p))
                if p < slot.event.ev.priority() || (p == slot.event.ev.priority() && i < at) =>
            {
                let evicted = self.slots.remove(i);
                let at = if i < at { at - 1 } else { at };
                self.dropped = self.dropped.saturating_add(1);
                match self.slots.insert(at, slot) {
                    Ok(()) => Pushed::Evicted(evicted.event),
                    // Cannot happen (a slot was just freed); count it as a refusal too.
                    Err(slot) => self.refuse(slot.event),
                }
            }
            _ => self.refuse(slot.event),
        }
    }

    fn refuse(&mut self, event: Event) -> Pushed {
        self.dropped = self.dropped.saturating_add(1);
        Pushed::Refused(event)
    }

    /// Clears every event of `ack.boot` with `seq <= ack.upto`; returns how many.
    pub fn ack(&mut self, ack: &Ack) -> usize {
        self.ack_with(ack, |_| {})
    }

    /// Like [`Outbox::ack`], calling `cleared` with each event cleared.
    pub fn ack_with(&mut self, ack: &Ack, mut cleared: impl FnMut(&Event)) -> usize {
        let before = self.slots.len();
        self.slots.retain(|s| {
            let covered = s.event.boot == ack.boot && s.event.seq <= ack.upto;
            if covered {
                cleared(&s.event);
            }
            !covered
        });
        before - self.slots.len()
    }

    /// The lowest seq of `boot` still held (what `oldest` is stamped with).
    pub fn oldest(&self, boot: BootEpoch) -> Option<Seq> {
        self.slots
            .iter()
            .find(|s| s.event.boot == boot)
            .map(|s| s.event.seq)
    }

    /// Hands each due event (at most `budget`) to `send`, in `(boot, seq)` order, with
    /// `oldest` stamped and whether it is the event's first send. A sent event is due again after the retry delay. Stops at the
    /// first error and returns it (the event stays due). Returns how many were sent.
    pub fn send_due<E>(
        &mut self,
        now_ms: u64,
        budget: usize,
        mut send: impl FnMut(&Event, Delivery) -> Result<(), E>,
    ) -> Result<usize, E> {
        let mut sent = 0;
        let mut boot_oldest: Option<(BootEpoch, Seq)> = None;
        for slot in self.slots.iter_mut() {
            if sent >= budget {
                break;
            }
            let boot = slot.event.boot;
            let oldest = match boot_oldest {
                Some((b, o)) if b == boot => o,
                _ => {
                    boot_oldest = Some((boot, slot.event.seq));
                    slot.event.seq
                }
            };
            if slot.next_try_ms > now_ms {
                continue;
            }
            slot.event.oldest = oldest;
            let delivery = if slot.sent {
                Delivery::Repeat
            } else {
                Delivery::First
            };
            send(&slot.event, delivery)?;
            slot.sent = true;
            slot.attempts = slot.attempts.saturating_add(1);
            slot.next_try_ms = now_ms
                .saturating_add(self.retry.delay_ms(slot.attempts))
                .max(1);
            sent += 1;
        }
        Ok(sent)
    }

    /// Makes every held event due at once with its backoff reset (after a reconnect:
    /// whatever was in flight may be lost).
    pub fn replay_all(&mut self) {
        for slot in self.slots.iter_mut() {
            slot.next_try_ms = 0;
            slot.attempts = 0;
        }
    }

    /// Whether an event is due at `now_ms`.
    pub fn has_due(&self, now_ms: u64) -> bool {
        self.slots.iter().any(|s| s.next_try_ms <= now_ms)
    }

    /// When the next event falls due (0 = one is due now), if any is held.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.slots.iter().map(|s| s.next_try_ms).min()
    }

    /// The events held, in `(boot, seq)` order (for persisting them).
    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.slots.iter().map(|s| &s.event)
    }

    /// How many events are held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// How many events the outbox can hold.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Events dropped because the outbox was full, since it was created.
    pub const fn dropped(&self) -> u32 {
        self.dropped
    }

    /// The retry policy.
    pub const fn retry(&self) -> RetryPolicy {
        self.retry
    }
}
