//! The alert lifecycle and escalation, driven by signals on a manual clock: who hears
//! what and when, what the device is told, what is refused, and what survives a
//! restart.

use crate::workflow_common;

use anxin_firmware::wire::{AlertCause, CommandKind};
use anxin_gateway::detect::HouseholdMode;
use anxin_gateway::signal::{AlertKind, Severity, SignalAction};
use anxin_gateway::workflow::{
    Actor, AlertState, HouseholdId, Outcome, OutcomeCategory, SignalOutcome, WorkflowError,
};
use workflow_common::{Harness, signal, test_config};

fn outcome(note: &str) -> Option<Outcome> {
    Some(Outcome {
        category: OutcomeCategory::ElderOk,
        note: note.into(),
        follow_up_due_ms: None,
    })
}

#[tokio::test]
async fn a_help_press_opens_an_alert_notifies_the_caseworker_and_tells_the_device_it_was_received()
{
    let h = Harness::new(test_config()).await;
    let id = h
        .raise("h1", "h1-help", AlertKind::Help, Severity::Critical)
        .await;
    h.deliver().await;

    let a = h.wf.alert(&id).await.unwrap();
    assert_eq!(a.state, AlertState::Notified);
    assert_eq!(a.household_id.as_deref(), Some("h1"));
    let to_cw1 = h.to("cw1");
    assert_eq!(to_cw1.len(), 1, "{to_cw1:?}");
    assert_eq!(to_cw1[0].purpose, "raised");
    assert!(to_cw1[0].critical);
    assert!(to_cw1[0].title.contains("一键求助") && to_cw1[0].title.contains("周阿婆"));
    assert_eq!(
        to_cw1[0].payload["household"]["emergency_contacts"][0]["phone"],
        "13800000001"
    );
    assert!(h.to("cw2").is_empty(), "the backup waits for the deadline");

    let cmds = h.devices.sent();
    assert_eq!(cmds.len(), 1);
    assert_eq!(cmds[0].0, "h1-help");
    assert_eq!(cmds[0].1.cmd, CommandKind::AlertReceived);
    assert_eq!(cmds[0].1.cause, Some(AlertCause::Help));
}

#[tokio::test]
async fn repeated_presses_update_the_one_open_alert_and_are_counted() {
    let h = Harness::new(test_config()).await;
    let first = h
        .raise("h1", "h1-help", AlertKind::Help, Severity::Critical)
        .await;
    h.advance(5);
    let again =
        h.wf.apply_signal(&signal(
            "h1",
            "h1-help",
            AlertKind::Help,
            Severity::Critical,
            SignalAction::Raise,
            0,
        ))
        .await
        .unwrap();
    assert_eq!(again, SignalOutcome::Repeated(first.clone()));
    let a = h.wf.alert(&first).await.unwrap();
    assert_eq!(a.repeats, 1);
    let open =
        h.wf.alerts(&anxin_gateway::workflow::AlertFilter {
            open_only: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(open.len(), 1);
    h.deliver().await;
    assert_eq!(
        h.to("cw1").len(),
        1,
        "a repeat is not a new call to the caseworker"
    );
    let received: Vec<_> = h
        .devices
        .sent()
        .into_iter()
        .filter(|(_, c)| c.cmd == CommandKind::AlertReceived)
        .collect();
    assert_eq!(received.len(), 2, "each press is answered on the device");
    assert_ne!(received[0].1.id, received[1].1.id);
}

#[tokio::test]
async fn without_acknowledgement_escalation_reaches_the_backup_then_the_committee_head_then_street_duty_at_their_deadlines()
 {
    let h = Harness::new(test_config()).await;
    let id = h
        .raise("h1", "h1-help", AlertKind::Help, Severity::Critical)
        .await;
    h.tick().await;
    h.advance(119);
    h.tick().await;
    assert!(h.to("cw2").is_empty(), "not before 120 s");
    h.advance(1);
    h.tick().await;
    assert_eq!(h.purposes_to("cw2"), vec!["escalated"]);
    assert!(h.to("head1").is_empty());
    h.advance(179);
    h.tick().await;
    assert!(h.to("head1").is_empty(), "not before 300 s");
    h.advance(1);
    h.tick().await;
    assert_eq!(h.purposes_to("head1"), vec!["escalated"]);
    h.advance(300);
    h.tick().await;
    assert_eq!(h.purposes_to("sup1"), vec!["escalated"]);
    let a = h.wf.alert(&id).await.unwrap();
    assert_eq!(a.escalation_step, 4);
    assert_eq!(a.next_escalation_ms, None);
    // The other committee's caseworker never hears of it.
    assert!(h.to("cw3").is_empty());
    let trail: Vec<String> =
        h.wf.audit_trail("alert", id.as_str())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .filter(|a| a.starts_with("alert."))
            .collect();
    assert_eq!(
        trail,
        vec![
            "alert.raise",
            "alert.notify",
            "alert.escalate",
            "alert.escalate",
            "alert.escalate"
        ]
    );
}

#[tokio::test]
async fn acknowledging_stops_escalation_tells_the_device_someone_is_coming_and_tells_the_others() {
    let h = Harness::new(test_config()).await;
    let id = h
        .raise("h1", "h1-help", AlertKind::Help, Severity::Critical)
        .await;
    h.advance(130);
    h.tick().await;
    assert_eq!(h.purposes_to("cw2"), vec!["escalated"]);
    h.advance(10);
    let a = h.wf.acknowledge(&id, &Actor::user("cw1")).await.unwrap();
    assert_eq!(a.state, AlertState::Acknowledged);
    assert_eq!(a.acknowledged_by.as_deref(), Some("user:cw1"));
    assert_eq!(a.time_to_ack_ms(), Some(140_000));
    h.deliver().await;
    let cmds: Vec<_> = h.devices.sent().into_iter().map(|(_, c)| c.cmd).collect();
    assert_eq!(
        cmds,
        vec![CommandKind::AlertReceived, CommandKind::AlertAcknowledged]
    );
    assert_eq!(h.purposes_to("cw2"), vec!["escalated", "acknowledged"]);
    h.advance(600);
    h.tick().await;
    assert!(h.to("head1").is_empty(), "escalation stopped");
    // The same person again is a no-op; someone else is told who has it.
    assert!(h.wf.acknowledge(&id, &Actor::user("cw1")).await.is_ok());
    match h.wf.acknowledge(&id, &Actor::user("cw2")).await {
        Err(WorkflowError::AlreadyAcknowledged { by }) => assert_eq!(by, "user:cw1"),
        other => panic!("{other:?}"),
    }
    // A device cannot acknowledge.
    assert!(matches!(
        h.wf.acknowledge(&id, &Actor::Device("h1-help".into()))
            .await,
        Err(WorkflowError::NotAllowed(_))
    ));
}

#[tokio::test]
async fn resolving_without_an_outcome_is_refused_and_with_one_closes_the_alert_for_good() {
    let h = Harness::new(test_config()).await;
    let id = h
        .raise("h1", "h1-help", AlertKind::Help, Severity::Critical)
        .await;
    let cw1 = Actor::user("cw1");
    h.wf.acknowledge(&id, &cw1).await.unwrap();
    h.wf.on_the_way(&id, &cw1).await.unwrap();
    let a = h.wf.arrived(&id, &cw1).await.unwrap();
    assert_eq!(a.state, AlertState::Arrived);
    assert!(matches!(
        h.wf.resolve(&id, &cw1, None).await,
        Err(WorkflowError::OutcomeRequired)
    ));
    assert!(matches!(
        h.wf.resolve(&id, &cw1, outcome("   ")).await,
        Err(WorkflowError::OutcomeRequired)
    ));
    assert!(h.wf.alert(&id).await.unwrap().state.is_open());
    let due = h.clock_now() + 86_400_000;
    let closed =
        h.wf.resolve(
            &id,
            &cw1,
            Some(Outcome {
                category: OutcomeCategory::HelpedOnSite,
                note: "摔倒后扶起，无外伤".into(),
                follow_up_due_ms: Some(due),
            }),
        )
        .await
        .unwrap();
    assert_eq!(closed.state, AlertState::Resolved);
    assert_eq!(closed.outcome.as_deref(), Some("helped_on_site"));
    assert_eq!(closed.follow_up_due_ms, Some(due));
    assert!(matches!(
        h.wf.resolve(&id, &cw1, outcome("again")).await,
        Err(WorkflowError::InvalidTransition { .. })
    ));
    // A new press opens a new alert.
    h.advance(60);
    let next = h
        .raise("h1", "h1-help", AlertKind::Help, Severity::Critical)
        .await;
    assert_ne!(next, id);
    // The follow-up is listed until done.
    assert_eq!(h.wf.follow_ups_due(due).await.unwrap().len(), 1);
    h.wf.complete_follow_up(&id, &cw1, "回访：情况良好")
        .await
        .unwrap();
    assert!(h.wf.follow_ups_due(due).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_restart_in_the_middle_of_an_escalation_fires_the_next_step_at_its_time_and_only_once() {
    let h = Harness::new(test_config()).await;
    let id = h
        .raise("h1", "h1-help", AlertKind::Help, Severity::Critical)
        .await;
    h.deliver().await;
    h.advance(60);
    h.tick().await;
    let h = h.restart().await;
    assert_eq!(
        h.wf.open_deadlines().await.unwrap().len(),
        1,
        "the deadline was persisted"
    );
    h.advance(59);
    h.tick().await;
    assert!(h.to("cw2").is_empty(), "not early after a restart");
    h.advance(1);
    h.tick().await;
    assert_eq!(h.purposes_to("cw2"), vec!["escalated"]);
    assert!(
        h.to("cw1").is_empty(),
        "the caseworker is not called a second time"
    );
    // Down again across the next deadline: it fires once, at start.
    let h = h.restart().await;
    h.advance(500);
    h.tick().await;
    h.tick().await;
    assert_eq!(h.purposes_to("head1"), vec!["escalated"]);
    assert_eq!(h.purposes_to("sup1"), vec!["escalated"]);
    assert!(h.to("cw2").is_empty());
    let keys: Vec<String> =
        h.wf.outbox()
            .rows(Some(id.as_str()))
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.channel == anxin_gateway::notify::Channel::Webhook)
            .map(|r| r.stored.key)
            .collect();
    let unique: std::collections::HashSet<&String> = keys.iter().collect();
    assert_eq!(
        keys.len(),
        unique.len(),
        "one notification per (alert, recipient, step)"
    );
    assert_eq!(keys.len(), 4);
}

#[tokio::test]
async fn a_device_cancel_closes_the_alert_as_cancelled_and_tells_whoever_was_called() {
    let h = Harness::new(test_config()).await;
    let id = h
        .raise("h1", "h1-help", AlertKind::Help, Severity::Critical)
        .await;
    h.deliver().await;
    h.advance(3);
    let out =
        h.wf.apply_signal(&signal(
            "h1",
            "h1-help",
            AlertKind::Help,
            Severity::Critical,
            SignalAction::Cancel,
            0,
        ))
        .await
        .unwrap();
    assert_eq!(out, SignalOutcome::Cancelled(id.clone()));
    let a = h.wf.alert(&id).await.unwrap();
    assert_eq!(a.state, AlertState::Cancelled);
    assert_eq!(a.closed_by.as_deref(), Some("device:h1-help"));
    h.advance(600);
    h.tick().await;
    assert_eq!(h.purposes_to("cw1"), vec!["raised", "cancelled"]);
    assert!(h.to("cw2").is_empty(), "no escalation after a cancel");
    // A second cancel finds nothing open.
    let out =
        h.wf.apply_signal(&signal(
            "h1",
            "h1-help",
            AlertKind::Help,
            Severity::Critical,
            SignalAction::Cancel,
            0,
        ))
        .await
        .unwrap();
    assert_eq!(out, SignalOutcome::Ignored("no_open_alert"));
}

#[tokio::test]
async fn device_alerts_go_to_technicians_and_are_never_presented_to_the_caseworker() {
    let h = Harness::new(test_config()).await;
    let id = h
        .raise("h1", "h1-door", AlertKind::DeviceOffline, Severity::Warning)
        .await;
    h.deliver().await;
    assert!(h.to("cw1").is_empty());
    let t = h.to("tech1");
    assert_eq!(t.len(), 1);
    assert!(t[0].title.contains("安心·设备"), "{}", t[0].title);
    assert!(
        h.devices.sent().is_empty(),
        "no elder feedback for a device problem"
    );
    // A second device of the same home is its own alert.
    let other = h
        .raise(
            "h1",
            "h1-motion",
            AlertKind::DeviceOffline,
            Severity::Warning,
        )
        .await;
    assert_ne!(other, id);
    let out =
        h.wf.apply_signal(&signal(
            "h1",
            "h1-door",
            AlertKind::DeviceOffline,
            Severity::Warning,
            SignalAction::Clear,
            0,
        ))
        .await
        .unwrap();
    assert_eq!(out, SignalOutcome::Cleared(id.clone()));
    assert_eq!(h.wf.alert(&id).await.unwrap().state, AlertState::Cleared);
    assert!(h.wf.alert(&other).await.unwrap().state.is_open());
}

#[tokio::test]
async fn gateway_blindness_goes_to_the_administrators() {
    let h = Harness::new(test_config()).await;
    let s = anxin_gateway::signal::Signal {
        household_id: None,
        device_id: None,
        kind: AlertKind::GatewayBlind,
        severity: Severity::Critical,
        action: SignalAction::Raise,
        at_ms: 0,
        observed_ms: None,
        episode_ms: 0,
        reason: "broker connection lost".into(),
    };
    h.wf.apply_signal(&s).await.unwrap();
    h.deliver().await;
    assert_eq!(h.purposes_to("admin1"), vec!["raised"]);
    assert!(h.to("cw1").is_empty() && h.to("tech1").is_empty());
}

#[tokio::test]
async fn a_gas_alarm_that_clears_stays_open_until_a_person_closes_it() {
    let h = Harness::new(test_config()).await;
    let id = h
        .raise("h1", "h1-gas", AlertKind::Gas, Severity::Critical)
        .await;
    let out =
        h.wf.apply_signal(&signal(
            "h1",
            "h1-gas",
            AlertKind::Gas,
            Severity::Critical,
            SignalAction::Clear,
            0,
        ))
        .await
        .unwrap();
    assert_eq!(out, SignalOutcome::ConditionCleared(id.clone()));
    let a = h.wf.alert(&id).await.unwrap();
    assert!(a.state.is_open());
    assert!(a.condition_cleared_ms.is_some());
    h.advance(120);
    h.tick().await;
    assert_eq!(
        h.purposes_to("cw2"),
        vec!["escalated"],
        "someone must still check the gas"
    );
}

#[tokio::test]
async fn inactivity_that_ends_by_itself_before_anyone_acknowledges_is_cleared_quietly() {
    let h = Harness::new(test_config()).await;
    let id = h
        .raise("h2", "h2-motion", AlertKind::Inactivity, Severity::Warning)
        .await;
    h.deliver().await;
    assert_eq!(h.purposes_to("cw1"), vec!["raised"]);
    let out =
        h.wf.apply_signal(&signal(
            "h2",
            "h2-motion",
            AlertKind::Inactivity,
            Severity::Warning,
            SignalAction::Clear,
            0,
        ))
        .await
        .unwrap();
    assert_eq!(out, SignalOutcome::Cleared(id.clone()));
    h.deliver().await;
    assert_eq!(h.purposes_to("cw1"), vec!["raised", "cleared"]);
    // Once acknowledged, a person closes it even if the elder moves again.
    h.advance(600);
    let id2 = h
        .raise("h2", "h2-motion", AlertKind::Inactivity, Severity::Warning)
        .await;
    h.wf.acknowledge(&id2, &Actor::user("cw1")).await.unwrap();
    let out =
        h.wf.apply_signal(&signal(
            "h2",
            "h2-motion",
            AlertKind::Inactivity,
            Severity::Warning,
            SignalAction::Clear,
            0,
        ))
        .await
        .unwrap();
    assert_eq!(out, SignalOutcome::ConditionCleared(id2));
}

#[tokio::test]
async fn reminders_go_to_everyone_called_until_someone_acknowledges() {
    let mut c = test_config();
    c.escalation.critical.repeat_s = 60;
    let h = Harness::new(c).await;
    let id = h
        .raise("h1", "h1-help", AlertKind::Help, Severity::Critical)
        .await;
    h.deliver().await;
    for _ in 0..3 {
        h.advance(60);
        h.tick().await;
    }
    // 60 s and 120 s: reminders to cw1; at 120 s the backup is called, at 180 s both are reminded.
    assert_eq!(
        h.purposes_to("cw1"),
        vec!["raised", "repeat", "repeat", "repeat"]
    );
    assert_eq!(h.purposes_to("cw2"), vec!["escalated", "repeat"]);
    h.wf.acknowledge(&id, &Actor::user("cw2")).await.unwrap();
    h.advance(60);
    h.tick().await;
    assert_eq!(
        h.purposes_to("cw1").last().map(String::as_str),
        Some("acknowledged")
    );
    assert_eq!(
        h.to("cw2").len(),
        2,
        "no reminder after the acknowledgement"
    );
}

#[tokio::test]
async fn no_confirmed_arrival_within_the_deadline_realarms_the_acknowledger_and_the_next_step() {
    let h = Harness::new(test_config()).await;
    let id = h
        .raise("h1", "h1-fall", AlertKind::Fall, Severity::Critical)
        .await;
    h.wf.acknowledge(&id, &Actor::user("cw1")).await.unwrap();
    h.deliver().await;
    h.advance(1799);
    h.tick().await;
    assert!(
        !h.purposes_to("cw1")
            .contains(&"arrival_overdue".to_string())
    );
    h.advance(1);
    h.tick().await;
    assert_eq!(
        h.purposes_to("cw1").last().map(String::as_str),
        Some("arrival_overdue")
    );
    assert_eq!(
        h.purposes_to("cw2"),
        vec!["arrival_overdue"],
        "the next step hears of it"
    );
    h.wf.arrived(&id, &Actor::user("cw1")).await.unwrap();
    h.advance(1800);
    h.tick().await;
    assert_eq!(
        h.purposes_to("cw2"),
        vec!["arrival_overdue"],
        "no re-alarm after arrival"
    );
    assert_eq!(h.wf.alert(&id).await.unwrap().arrival_realarms, 1);
}

#[tokio::test]
async fn a_household_without_its_caseworker_goes_straight_to_the_next_step() {
    let h = Harness::new(test_config()).await;
    // h4 has a caseworker but no backup, and committee c2 has no head: after cw3 the
    // next people are the street's duty supervisor.
    h.raise("h4", "h4-help", AlertKind::Help, Severity::Critical)
        .await;
    h.deliver().await;
    assert_eq!(h.purposes_to("cw3"), vec!["raised"]);
    h.advance(120);
    h.tick().await;
    assert_eq!(
        h.purposes_to("sup1"),
        vec!["escalated"],
        "empty steps are skipped at once"
    );
    // Nobody assigned at all: the first step is skipped immediately.
    h.wf.assign(
        &Actor::user("admin1"),
        &HouseholdId::new("h2"),
        None,
        Some(&"cw2".into()),
    )
    .await
    .unwrap();
    h.raise("h2", "h2-help", AlertKind::Help, Severity::Critical)
        .await;
    h.deliver().await;
    assert_eq!(h.purposes_to("cw2"), vec!["escalated"]);
}

#[tokio::test]
async fn an_alert_nobody_can_receive_reaches_the_administrators() {
    let mut c = test_config();
    c.escalation.critical.steps.truncate(2);
    let h = Harness::new(c).await;
    h.wf.assign(&Actor::System, &HouseholdId::new("h4"), None, None)
        .await
        .unwrap();
    h.raise("h4", "h4-help", AlertKind::Help, Severity::Critical)
        .await;
    h.deliver().await;
    assert_eq!(h.purposes_to("admin1"), vec!["unroutable"]);
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_backoff_under_the_same_idempotency_key() {
    let h = Harness::new(test_config()).await;
    h.people.fail_next(2);
    let id = h
        .raise("h1", "h1-help", AlertKind::Help, Severity::Critical)
        .await;
    h.deliver().await;
    assert!(h.to("cw1").is_empty());
    let row =
        h.wf.outbox()
            .rows(Some(id.as_str()))
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.stored.recipient_id.as_deref() == Some("cw1"))
            .unwrap();
    assert_eq!(row.stored.attempts, 1);
    assert_eq!(row.stored.last_error.as_deref(), Some("connect"));
    assert!(row.stored.next_attempt_ms > h.clock_now(), "backs off");
    h.advance(1);
    h.deliver().await;
    h.advance(2);
    h.deliver().await;
    let sent = h.to("cw1");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].key, row.stored.key);
    assert_eq!(sent[0].attempt, 3);
    assert_eq!(h.wf.alert(&id).await.unwrap().state, AlertState::Notified);
}

#[tokio::test]
async fn non_critical_notifications_wait_for_the_end_of_quiet_hours_but_critical_ones_do_not() {
    let h = Harness::new(test_config()).await;
    h.clock
        .set(workflow_common::local_ms("2026-11-25", 23 * 60));
    h.raise("h2", "h2-motion", AlertKind::Inactivity, Severity::Warning)
        .await;
    h.raise("h1", "h1-help", AlertKind::Help, Severity::Critical)
        .await;
    h.deliver().await;
    assert_eq!(h.to("cw1").len(), 1);
    assert_eq!(h.to("cw1")[0].payload["alert"]["kind"], "help");
    h.clock.set(workflow_common::local_ms("2026-11-26", 7 * 60));
    h.deliver().await;
    assert_eq!(h.to("cw1").len(), 2, "the warning arrives at 07:00");
}

#[tokio::test]
async fn a_warning_that_becomes_critical_is_escalated_on_the_critical_policy() {
    let h = Harness::new(test_config()).await;
    let id = h
        .raise("h3", "h3-motion", AlertKind::Inactivity, Severity::Warning)
        .await;
    h.deliver().await;
    h.advance(100);
    let up =
        h.wf.apply_signal(&signal(
            "h3",
            "h3-motion",
            AlertKind::Inactivity,
            Severity::Critical,
            SignalAction::Raise,
            0,
        ))
        .await
        .unwrap();
    assert_eq!(up, SignalOutcome::Upgraded(id.clone()));
    let a = h.wf.alert(&id).await.unwrap();
    assert_eq!(a.policy, "critical");
    assert_eq!(a.severity, Severity::Critical);
    h.deliver().await;
    assert_eq!(h.purposes_to("cw1"), vec!["raised", "raised"]);
    assert!(h.to("cw1")[1].critical);
    h.advance(120);
    h.tick().await;
    assert_eq!(
        h.purposes_to("cw2"),
        vec!["escalated"],
        "120 s after the upgrade"
    );
}

#[tokio::test]
async fn two_people_acknowledging_at_once_one_wins_and_the_other_is_told_who() {
    let h = Harness::new(test_config()).await;
    let id = h
        .raise("h1", "h1-help", AlertKind::Help, Severity::Critical)
        .await;
    let (cw1, cw2) = (Actor::user("cw1"), Actor::user("cw2"));
    let (a, b) = tokio::join!(h.wf.acknowledge(&id, &cw1), h.wf.acknowledge(&id, &cw2));
    let oks = [a.is_ok(), b.is_ok()].iter().filter(|x| **x).count();
    assert_eq!(oks, 1, "{a:?} {b:?}");
    assert!(
        matches!(a, Err(WorkflowError::AlreadyAcknowledged { .. }))
            || matches!(b, Err(WorkflowError::AlreadyAcknowledged { .. }))
    );
    let acks =
        h.wf.audit_trail("alert", id.as_str())
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "alert.acknowledge")
            .count();
    assert_eq!(acks, 1);
}

#[tokio::test]
async fn putting_a_household_away_goes_to_detection_and_is_audited() {
    let h = Harness::new(test_config()).await;
    let until = h.clock_now() + 7 * 86_400_000;
    h.wf.set_household_mode(
        &Actor::user("cw1"),
        &HouseholdId::new("h1"),
        HouseholdMode::Hospital,
        Some(until),
    )
    .await
    .unwrap();
    let modes = h.modes.0.lock().unwrap().clone();
    assert_eq!(
        modes,
        vec![("h1".to_string(), HouseholdMode::Hospital, Some(until))]
    );
    let trail = h.wf.household_trail("h1").await.unwrap();
    assert!(
        trail
            .iter()
            .any(|e| e.action == "household.mode" && e.actor == "user:cw1")
    );
    assert!(matches!(
        h.wf.set_household_mode(
            &Actor::user("cw1"),
            &HouseholdId::new("nope"),
            HouseholdMode::Away,
            None
        )
        .await,
        Err(WorkflowError::UnknownHousehold(_))
    ));
}

#[tokio::test]
async fn a_raise_sent_again_for_the_same_episode_changes_nothing_even_after_the_alert_closed() {
    let h = Harness::new(test_config()).await;
    let episode = h.clock_now() - 3_600_000;
    let s = signal(
        "h2",
        "h2-motion",
        AlertKind::Inactivity,
        Severity::Warning,
        SignalAction::Raise,
        episode,
    );
    let id = match h.wf.apply_signal(&s).await.unwrap() {
        SignalOutcome::Opened(id) => id,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        h.wf.apply_signal(&s).await.unwrap(),
        SignalOutcome::Ignored("same_episode")
    );
    assert_eq!(h.wf.alert(&id).await.unwrap().repeats, 0);
    h.wf.resolve(&id, &Actor::user("cw1"), outcome("电话联系，老人在午睡"))
        .await
        .unwrap();
    // Detection restarts and re-derives the same silence: no new alert.
    assert_eq!(
        h.wf.apply_signal(&s).await.unwrap(),
        SignalOutcome::Ignored("same_episode")
    );
    // The same episode turning critical is news.
    let mut worse = s.clone();
    worse.severity = Severity::Critical;
    assert!(matches!(
        h.wf.apply_signal(&worse).await.unwrap(),
        SignalOutcome::Opened(_)
    ));
}

#[test]
fn the_example_configuration_documents_the_default_workflow() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../anxin.example.toml");
    let c = anxin_gateway::config::Config::load(Some(&path)).expect("anxin.example.toml loads");
    let d = anxin_gateway::workflow::WorkflowConfig::default();
    let e = &c.workflow.escalation;
    for name in ["critical", "warning", "info", "technician", "system"] {
        assert_eq!(e.policy(name), d.escalation.policy(name), "policy {name}");
    }
    assert_eq!(c.workflow.morning_time, d.morning_time);
    assert_eq!(
        c.workflow.notify.role_channels.caseworker,
        d.notify.role_channels.caseworker
    );
    c.workflow.validate().unwrap();
}
