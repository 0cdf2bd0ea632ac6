//! The store-and-forward outbox, spoken as sentences.

use anxin_firmware::outbox::{Delivery, Outbox, Pushed, RetryPolicy};
use anxin_firmware::wire::{Ack, Clock, Event, EventBody, HelpAction};

const MOTION: EventBody = EventBody::Motion;
const DOOR: EventBody = EventBody::Door { open: true };
const HELP: EventBody = EventBody::Help {
    act: HelpAction::Press,
};
const GAS: EventBody = EventBody::Gas {
    alarm: true,
    ppm: 6_000,
};

fn ev(boot: u32, seq: u32, body: EventBody) -> Event {
    Event::new(boot, seq, seq, 1_000 * u64::from(seq), Clock::Up, body)
}

/// Sends everything due at `now`, returning `(boot, seq, oldest, delivery)`.
fn send<const N: usize>(o: &mut Outbox<N>, now: u64) -> Vec<(u32, u32, u32, Delivery)> {
    let mut out = Vec::new();
    let sent = o
        .send_due(now, usize::MAX, |e, d| {
            out.push((e.boot, e.seq, e.oldest, d));
            Ok::<(), ()>(())
        })
        .expect("the test's send never fails");
    assert_eq!(sent, out.len());
    out
}

fn seqs(sent: &[(u32, u32, u32, Delivery)]) -> Vec<u32> {
    sent.iter().map(|s| s.1).collect()
}

fn held<const N: usize>(o: &Outbox<N>) -> Vec<(u32, u32)> {
    o.iter().map(|e| (e.boot, e.seq)).collect()
}

#[test]
fn new_events_are_sent_at_once_in_seq_order() {
    let mut o: Outbox<8> = Outbox::default();
    for seq in 1..=3 {
        assert_eq!(o.push(ev(1, seq, MOTION)), Pushed::Stored);
    }
    let sent = send(&mut o, 0);
    assert_eq!(seqs(&sent), vec![1, 2, 3]);
    assert!(sent.iter().all(|s| s.3 == Delivery::First && s.2 == 1));
    assert!(
        send(&mut o, 1).is_empty(),
        "nothing is due right after sending"
    );
}

#[test]
fn unacked_event_is_resent_after_the_retry_interval_with_backoff() {
    let mut o: Outbox<8> = Outbox::new(RetryPolicy {
        first_ms: 10_000,
        max_ms: 30_000,
    });
    o.push(ev(1, 1, HELP));
    assert_eq!(seqs(&send(&mut o, 0)), vec![1]);
    assert!(send(&mut o, 9_999).is_empty());
    let again = send(&mut o, 10_000);
    assert_eq!(again, vec![(1, 1, 1, Delivery::Repeat)]);
    assert!(
        send(&mut o, 29_999).is_empty(),
        "second delay doubles to 20 s"
    );
    assert_eq!(seqs(&send(&mut o, 30_000)), vec![1]);
    assert!(
        send(&mut o, 59_999).is_empty(),
        "third delay is capped at 30 s"
    );
    assert_eq!(seqs(&send(&mut o, 60_000)), vec![1]);
}

#[test]
fn acked_events_are_never_sent_again() {
    let mut o: Outbox<8> = Outbox::default();
    for seq in 1..=3 {
        o.push(ev(1, seq, DOOR));
    }
    send(&mut o, 0);
    assert_eq!(o.ack(&Ack::new(1, 2)), 2);
    assert_eq!(held(&o), vec![(1, 3)]);
    assert_eq!(seqs(&send(&mut o, 60_000)), vec![3]);
    assert_eq!(o.ack(&Ack::new(1, 3)), 1);
    assert!(o.is_empty());
    o.replay_all();
    assert!(send(&mut o, 120_000).is_empty());
}

#[test]
fn unacked_events_are_replayed_in_order_after_reconnect() {
    let mut o: Outbox<8> = Outbox::default();
    for seq in 1..=4 {
        o.push(ev(1, seq, MOTION));
    }
    send(&mut o, 0);
    o.ack(&Ack::new(1, 1));
    // The link drops and comes back: whatever was in flight may be gone.
    o.replay_all();
    let replay = send(&mut o, 1_000);
    assert_eq!(seqs(&replay), vec![2, 3, 4]);
    assert!(replay.iter().all(|s| s.3 == Delivery::Repeat && s.2 == 2));
    // Backoff restarts from the first delay after a replay.
    assert_eq!(seqs(&send(&mut o, 11_000)), vec![2, 3, 4]);
}

#[test]
fn failed_send_stops_the_round_so_nothing_overtakes() {
    let mut o: Outbox<8> = Outbox::default();
    for seq in 1..=3 {
        o.push(ev(1, seq, MOTION));
    }
    let mut tried = Vec::new();
    let result = o.send_due(0, usize::MAX, |e, _| {
        tried.push(e.seq);
        if e.seq == 2 { Err("busy") } else { Ok(()) }
    });
    assert_eq!(result, Err("busy"));
    assert_eq!(tried, vec![1, 2]);
    assert_eq!(seqs(&send(&mut o, 1)), vec![2, 3], "2 is still due, then 3");
}

#[test]
fn send_budget_limits_one_round() {
    let mut o: Outbox<8> = Outbox::default();
    for seq in 1..=5 {
        o.push(ev(1, seq, MOTION));
    }
    let mut n = 0;
    assert_eq!(o.send_due(0, 2, |_, _| Ok::<(), ()>(())), Ok(2));
    n += 2;
    assert_eq!(o.send_due(0, 10, |_, _| Ok::<(), ()>(())), Ok(3));
    n += 3;
    assert_eq!(n, 5);
}

#[test]
fn full_outbox_drops_motion_before_help() {
    let mut o: Outbox<3> = Outbox::default();
    o.push(ev(1, 1, HELP));
    o.push(ev(1, 2, MOTION));
    o.push(ev(1, 3, GAS));
    let pushed = o.push(ev(1, 4, HELP));
    assert_eq!(pushed, Pushed::Evicted(ev(1, 2, MOTION)));
    assert_eq!(held(&o), vec![(1, 1), (1, 3), (1, 4)]);
    assert_eq!(o.dropped(), 1);
}

#[test]
fn full_outbox_drops_motion_before_door_and_door_before_gas() {
    let mut o: Outbox<3> = Outbox::default();
    o.push(ev(1, 1, DOOR));
    o.push(ev(1, 2, GAS));
    o.push(ev(1, 3, MOTION));
    assert_eq!(o.push(ev(1, 4, DOOR)).dropped(), Some(&ev(1, 3, MOTION)));
    assert_eq!(o.push(ev(1, 5, HELP)).dropped(), Some(&ev(1, 1, DOOR)));
    assert_eq!(held(&o), vec![(1, 2), (1, 4), (1, 5)]);
}

#[test]
fn full_outbox_drops_the_oldest_among_equals() {
    let mut o: Outbox<3> = Outbox::default();
    for seq in 1..=3 {
        o.push(ev(1, seq, MOTION));
    }
    assert_eq!(o.push(ev(1, 4, MOTION)), Pushed::Evicted(ev(1, 1, MOTION)));
    assert_eq!(held(&o), vec![(1, 2), (1, 3), (1, 4)]);
}

#[test]
fn new_motion_is_refused_when_the_outbox_holds_only_critical_events() {
    let mut o: Outbox<2> = Outbox::default();
    o.push(ev(1, 1, HELP));
    o.push(ev(1, 2, GAS));
    assert_eq!(o.push(ev(1, 3, MOTION)), Pushed::Refused(ev(1, 3, MOTION)));
    assert_eq!(held(&o), vec![(1, 1), (1, 2)]);
    assert_eq!(o.dropped(), 1);
}

#[test]
fn outbox_full_of_help_drops_the_oldest_help_for_a_new_one() {
    let mut o: Outbox<2> = Outbox::default();
    o.push(ev(1, 1, HELP));
    o.push(ev(1, 2, HELP));
    assert_eq!(o.push(ev(1, 3, GAS)), Pushed::Evicted(ev(1, 1, HELP)));
}

#[test]
fn oldest_skips_dropped_events() {
    let mut o: Outbox<3> = Outbox::default();
    o.push(ev(1, 1, MOTION));
    o.push(ev(1, 2, HELP));
    o.push(ev(1, 3, MOTION));
    o.push(ev(1, 4, HELP)); // drops motion 1
    assert_eq!(o.oldest(1), Some(2));
    let sent = send(&mut o, 0);
    assert_eq!(
        sent.iter().map(|s| (s.1, s.2)).collect::<Vec<_>>(),
        vec![(2, 2), (3, 2), (4, 2)]
    );
    o.ack(&Ack::new(1, 2));
    o.push(ev(1, 5, HELP)); // room after the ack: nothing dropped
    o.push(ev(1, 6, HELP)); // drops motion 3
    assert_eq!(o.oldest(1), Some(4));
    o.replay_all();
    let sent = send(&mut o, 1_000);
    assert!(sent.iter().all(|s| s.2 == 4), "{sent:?}");
    assert_eq!(o.dropped(), 2);
}

#[test]
fn ack_of_previous_boot_clears_old_events() {
    // A flash-backed outbox restored events of boot 4 before boot 5 started.
    let mut o: Outbox<8> = Outbox::default();
    o.push(ev(4, 7, HELP));
    o.push(ev(4, 8, DOOR));
    o.push(ev(5, 1, MOTION));
    let sent = send(&mut o, 0);
    assert_eq!(
        sent.iter().map(|s| (s.0, s.1, s.2)).collect::<Vec<_>>(),
        vec![(4, 7, 7), (4, 8, 7), (5, 1, 1)],
        "oldest is stamped per boot"
    );
    assert_eq!(o.ack(&Ack::new(4, 8)), 2);
    assert_eq!(held(&o), vec![(5, 1)]);
}

#[test]
fn ack_of_another_boot_does_not_clear_current_events() {
    let mut o: Outbox<8> = Outbox::default();
    o.push(ev(5, 1, HELP));
    o.push(ev(5, 2, HELP));
    assert_eq!(o.ack(&Ack::new(4, 100)), 0);
    assert_eq!(o.ack(&Ack::new(6, 100)), 0);
    assert_eq!(o.len(), 2);
}

#[test]
fn events_restored_out_of_order_are_kept_in_boot_and_seq_order() {
    let mut o: Outbox<8> = Outbox::default();
    o.push(ev(5, 2, MOTION));
    o.push(ev(4, 9, HELP));
    o.push(ev(5, 1, DOOR));
    assert_eq!(held(&o), vec![(4, 9), (5, 1), (5, 2)]);
    assert_eq!(o.push(ev(5, 1, DOOR)), Pushed::Duplicate);
    assert_eq!(o.len(), 3);
}

#[test]
fn a_restored_old_event_loses_to_newer_equals_when_full() {
    let mut o: Outbox<2> = Outbox::default();
    o.push(ev(5, 1, MOTION));
    o.push(ev(5, 2, MOTION));
    // Older than everything held and not more important: it is the one dropped.
    assert_eq!(o.push(ev(4, 3, MOTION)), Pushed::Refused(ev(4, 3, MOTION)));
    // More important: a held motion goes instead.
    assert_eq!(o.push(ev(4, 4, HELP)), Pushed::Evicted(ev(5, 1, MOTION)));
    assert_eq!(held(&o), vec![(4, 4), (5, 2)]);
}

#[test]
fn zero_capacity_outbox_refuses_and_counts() {
    let mut o: Outbox<0> = Outbox::default();
    assert!(matches!(o.push(ev(1, 1, HELP)), Pushed::Refused(_)));
    assert_eq!(o.dropped(), 1);
}

#[test]
fn next_due_tells_when_to_wake() {
    let mut o: Outbox<4> = Outbox::default();
    assert_eq!(o.next_due_ms(), None);
    o.push(ev(1, 1, HELP));
    assert_eq!(o.next_due_ms(), Some(0));
    send(&mut o, 5_000);
    assert_eq!(o.next_due_ms(), Some(15_000));
    assert!(!o.has_due(14_999));
    assert!(o.has_due(15_000));
}
