//! 一日三问 and the figures: the morning list's order with households in every state,
//! contacts, visit tasks, needs, coverage, KPIs and the daily jobs.

use crate::workflow_common;

use anxin_gateway::signal::{AlertKind, Severity, SignalAction};
use anxin_gateway::workflow::{
    Actor, ContactMethod, ContactOutcome, GroupBy, HouseholdId, NeedCategory, NeedFilter,
    NeedStatus, NewContact, Scope, UserId,
};
use jiff::civil::Date;
use workflow_common::{Harness, local_ms, signal, test_config};

fn day(s: &str) -> Date {
    s.parse().unwrap()
}

fn contact(h: &str, outcome: ContactOutcome, at_ms: Option<i64>) -> NewContact {
    NewContact {
        household_id: HouseholdId::new(h),
        method: ContactMethod::Phone,
        outcome,
        note: String::new(),
        needs: vec![],
        at_ms,
    }
}

/// Caseworker cw9 of committee c1 with households m1–m8 (fictional).
async fn morning_roster(h: &Harness) {
    let users = "user_id,name,role,committee_id\ncw9,孙社工,caseworker,c1\n";
    let households = "household_id,name,address,committee_id,caseworker_id,backup_id,risk_tags\n\
        mA,甲,一号,c1,cw9,cw2,\n\
        mB,乙,二号,c1,cw9,cw2,\n\
        mC,丙,三号,c1,cw9,cw2,\n\
        mD,丁,四号,c1,cw9,cw2,\n\
        mE,戊,五号,c1,cw9,cw2,\n\
        mF,己,六号,c1,cw9,cw2,透析\n\
        mG,庚,七号,c1,cw9,cw2,\n\
        mH,辛,八号,c1,cw9,cw2,透析、高龄\n";
    h.wf.import_org(
        &Actor::System,
        &[
            ("u.csv".into(), users.as_bytes().to_vec()),
            ("h.csv".into(), households.as_bytes().to_vec()),
        ],
        false,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn the_morning_list_puts_households_in_order_of_need_with_what_the_sensors_saw() {
    let h = Harness::new(test_config()).await;
    morning_roster(&h).await;
    let today = "2026-11-25";
    let yesterday = "2026-11-24";
    let cw9 = Actor::user("cw9");
    // Yesterday: everyone but mE was contacted; mC did not answer and showed no sign of
    // life, so a visit task is open.
    for m in ["mA", "mB", "mD", "mF", "mG", "mH"] {
        h.event(m, "motion", local_ms(yesterday, 8 * 60)).await;
        h.wf.record_contact(
            &cw9,
            &contact(m, ContactOutcome::Well, Some(local_ms(yesterday, 9 * 60))),
        )
        .await
        .unwrap();
    }
    let r =
        h.wf.record_contact(
            &cw9,
            &contact(
                "mC",
                ContactOutcome::NoAnswer,
                Some(local_ms(yesterday, 9 * 60)),
            ),
        )
        .await
        .unwrap();
    assert!(r.visit_task.is_some());
    // Today: activity everywhere but mD (and mC); mE's usual by ten is two events.
    for m in ["mA", "mB", "mF", "mG", "mH"] {
        h.event(m, "door", local_ms(today, 7 * 60)).await;
    }
    for (d, minutes) in [
        ("2026-11-23", [420, 480]),
        ("2026-11-24", [400, 500]),
        ("2026-11-22", [430, 470]),
    ] {
        for m in minutes {
            h.event("mE", "motion", local_ms(d, m)).await;
        }
    }
    for m in [390, 480, 540] {
        h.event("mE", "motion", local_ms(today, m)).await;
    }
    h.event("mE", "gas", local_ms(today, 550)).await;
    // Open alerts: mA critical, mB warning; mH already contacted today.
    h.raise("mA", "mA-help", AlertKind::Help, Severity::Critical)
        .await;
    h.raise("mB", "mB-motion", AlertKind::Inactivity, Severity::Warning)
        .await;
    h.wf.record_contact(&cw9, &contact("mH", ContactOutcome::Well, None))
        .await
        .unwrap();

    let list =
        h.wf.morning_list(&UserId::new("cw9"), day(today))
            .await
            .unwrap();
    let order: Vec<&str> = list.iter().map(|i| i.household.id.as_str()).collect();
    assert_eq!(order, vec!["mA", "mB", "mC", "mD", "mE", "mF", "mG", "mH"]);
    assert_eq!(list[0].rank, 1);
    assert_eq!(list[0].reasons, vec!["open_alert"]);
    assert_eq!(list[2].reasons, vec!["visit_task", "no_sign_of_life_today"]);
    assert_eq!(list[3].reasons, vec!["no_sign_of_life_today"]);
    assert_eq!(list[4].reasons, vec!["no_contact_yesterday"]);
    let e = &list[4].activity;
    assert_eq!(e.first_today_ms, Some(local_ms(today, 390)));
    assert_eq!(
        e.last_ms,
        Some(local_ms(today, 540)),
        "a gas reading is not a sign of life"
    );
    assert_eq!(e.count_today, 3);
    assert_eq!(e.usual_by_now, Some(2.0));
    assert_eq!(e.usual_days, 3);
    assert!(list[7].contacted_today);
    assert_eq!(list[5].risk_score, 3);
}

#[tokio::test]
async fn no_answer_and_no_sign_of_life_today_make_a_visit_task_that_a_visit_closes() {
    let h = Harness::new(test_config()).await;
    // cw2 calls h1 (cw1's household): the task goes to the household's caseworker.
    let r =
        h.wf.record_contact(
            &Actor::user("cw2"),
            &contact("h1", ContactOutcome::NoAnswer, None),
        )
        .await
        .unwrap();
    let task = r.visit_task.expect("a visit task");
    assert_eq!(task.assignee_id, Some(UserId::new("cw1")));
    h.deliver().await;
    assert_eq!(h.purposes_to("cw1"), vec!["visit_task"]);
    // A second unanswered call does not make a second task.
    let again =
        h.wf.record_contact(
            &Actor::user("cw1"),
            &contact("h1", ContactOutcome::NoAnswer, None),
        )
        .await
        .unwrap();
    assert!(again.visit_task.is_none());
    assert_eq!(
        h.wf.open_visit_tasks(Some(&UserId::new("cw1")))
            .await
            .unwrap()
            .len(),
        1
    );
    // The visit closes it.
    let visit =
        h.wf.record_contact(
            &Actor::user("cw1"),
            &NewContact {
                method: ContactMethod::Visit,
                note: "上门，老人耳背没听到电话".into(),
                ..contact("h1", ContactOutcome::Well, None)
            },
        )
        .await
        .unwrap();
    assert_eq!(visit.closed_tasks, vec![task.id.clone()]);
    assert!(h.wf.open_visit_tasks(None).await.unwrap().is_empty());
    assert_eq!(h.wf.visit_task(&task.id).await.unwrap().state, "done");
}

#[tokio::test]
async fn no_answer_from_a_household_that_is_up_and_about_makes_no_visit_task() {
    let h = Harness::new(test_config()).await;
    h.event("h2", "door", h.clock_now() - 3_600_000).await;
    let r =
        h.wf.record_contact(
            &Actor::user("cw1"),
            &contact("h2", ContactOutcome::NoAnswer, None),
        )
        .await
        .unwrap();
    assert!(r.visit_task.is_none());
}

#[tokio::test]
async fn needs_raised_in_a_contact_are_tracked_to_fulfilment() {
    let h = Harness::new(test_config()).await;
    let cw1 = Actor::user("cw1");
    let r =
        h.wf.record_contact(
            &cw1,
            &NewContact {
                needs: vec![
                    (NeedCategory::Medicine, "降压药快吃完了".into()),
                    (NeedCategory::EscortToHospital, "周四复诊需要陪同".into()),
                ],
                ..contact("h3", ContactOutcome::NeedsHelp, None)
            },
        )
        .await
        .unwrap();
    assert_eq!(r.needs.len(), 2);
    assert!(r.needs.iter().all(|n| n.status == NeedStatus::Open));
    assert_eq!(
        r.needs[0].source_contact_id.as_deref(),
        Some(r.contact.id.as_str())
    );
    let med = &r.needs[0];
    let due = h.clock_now() + 2 * 86_400_000;
    let n =
        h.wf.assign_need(&cw1, &med.id, &UserId::new("cw2"), Some(due))
            .await
            .unwrap();
    assert_eq!(n.status, NeedStatus::Assigned);
    assert_eq!(n.due_ms, Some(due));
    assert!(
        h.wf.fulfil_need(&Actor::user("cw2"), &med.id, " ")
            .await
            .is_err(),
        "a note is required"
    );
    h.advance(3600);
    let done =
        h.wf.fulfil_need(&Actor::user("cw2"), &med.id, "已代配药送上门")
            .await
            .unwrap();
    assert_eq!(done.status, NeedStatus::Fulfilled);
    assert_eq!(done.fulfilled_by.as_deref(), Some("user:cw2"));
    let open =
        h.wf.needs(&NeedFilter {
            statuses: vec![NeedStatus::Open, NeedStatus::Assigned],
            scope: Some(Scope::Committee("c1".into())),
            ..NeedFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].category, NeedCategory::EscortToHospital);
    let trail: Vec<String> =
        h.wf.audit_trail("need", med.id.as_str())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
    assert_eq!(trail, vec!["need.create", "need.assign", "need.fulfil"]);
}

#[tokio::test]
async fn coverage_counts_households_contacted_per_caseworker_and_day_and_lists_the_rest() {
    let h = Harness::new(test_config()).await;
    let cw1 = Actor::user("cw1");
    h.wf.record_contact(
        &cw1,
        &contact(
            "h1",
            ContactOutcome::Well,
            Some(local_ms("2026-11-24", 600)),
        ),
    )
    .await
    .unwrap();
    h.wf.record_contact(&cw1, &contact("h1", ContactOutcome::Well, None))
        .await
        .unwrap();
    h.wf.record_contact(&cw1, &contact("h2", ContactOutcome::Well, None))
        .await
        .unwrap();
    h.wf.record_contact(
        &Actor::user("cw3"),
        &contact("h4", ContactOutcome::NotHome, None),
    )
    .await
    .unwrap();
    let rows =
        h.wf.coverage(
            GroupBy::Caseworker,
            &Scope::All,
            day("2026-11-24"),
            day("2026-11-25"),
        )
        .await
        .unwrap();
    let get = |d: &str, g: &str| {
        rows.iter()
            .find(|r| r.day == d && r.group == g)
            .unwrap()
            .clone()
    };
    assert_eq!(get("2026-11-24", "cw1").contacted, 1);
    assert_eq!(get("2026-11-25", "cw1").contacted, 2);
    assert_eq!(get("2026-11-25", "cw1").households, 3);
    assert_eq!(get("2026-11-25", "cw3").coverage, Some(1.0));
    let missing =
        h.wf.uncontacted(&Scope::Committee("c1".into()), day("2026-11-25"))
            .await
            .unwrap();
    assert_eq!(
        missing.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
        vec!["h3"]
    );
}

#[tokio::test]
async fn kpis_give_the_share_of_critical_alerts_acknowledged_within_60_and_180_seconds() {
    let h = Harness::new(test_config()).await;
    let cw1 = Actor::user("cw1");
    // Acknowledged after 30 s, 90 s and 200 s; one never; one cancelled by the device
    // (not counted); one in committee c2 acknowledged after 10 s.
    for (hh, secs) in [("h1", 30), ("h2", 90), ("h3", 200)] {
        let id = h
            .raise(
                hh,
                &format!("{hh}-help"),
                AlertKind::Help,
                Severity::Critical,
            )
            .await;
        h.advance(secs);
        h.wf.acknowledge(&id, &cw1).await.unwrap();
        h.wf.arrived(&id, &cw1).await.unwrap();
        h.advance(1000);
    }
    h.raise("h1", "h1-fall", AlertKind::Fall, Severity::Critical)
        .await;
    h.raise("h2", "h2-gas", AlertKind::Gas, Severity::Critical)
        .await;
    h.wf.apply_signal(&signal(
        "h2",
        "h2-gas",
        AlertKind::Gas,
        Severity::Critical,
        SignalAction::Cancel,
        0,
    ))
    .await
    .unwrap();
    let c2 = h
        .raise("h4", "h4-help", AlertKind::Help, Severity::Critical)
        .await;
    h.advance(10);
    h.wf.acknowledge(&c2, &Actor::user("cw3")).await.unwrap();

    let rows =
        h.wf.kpis(
            GroupBy::Committee,
            &Scope::All,
            day("2026-11-25"),
            day("2026-11-25"),
        )
        .await
        .unwrap();
    let c1 = rows.iter().find(|r| r.group == "c1").unwrap();
    assert_eq!(c1.critical, 4);
    assert_eq!(c1.critical_ack_60s, 1);
    assert_eq!(c1.critical_ack_180s, 2);
    assert_eq!(c1.share_ack_60s, Some(0.25));
    assert_eq!(c1.share_ack_180s, Some(0.5));
    assert_eq!(c1.unacknowledged, 1);
    assert_eq!(c1.ack_median_s, Some(90.0));
    assert_eq!(c1.arrival_median_s, Some(90.0));
    let all = rows.last().unwrap();
    assert_eq!(all.group, "all");
    assert_eq!(all.critical, 5);
    assert_eq!(all.critical_ack_60s, 2);
    assert_eq!(all.households, 4);
}

#[tokio::test]
async fn the_morning_and_evening_lists_go_out_once_a_day_even_across_restarts() {
    let h = Harness::new(test_config()).await;
    h.clock.set(local_ms("2026-11-25", 7 * 60 + 29));
    assert!(
        h.wf.run_daily_jobs().await.unwrap().is_empty(),
        "not before 07:30"
    );
    assert_eq!(
        h.wf.next_daily_run(h.clock_now()),
        local_ms("2026-11-25", 450)
    );
    h.clock.set(local_ms("2026-11-25", 7 * 60 + 31));
    assert_eq!(h.wf.run_daily_jobs().await.unwrap(), vec!["morning"]);
    assert!(h.wf.run_daily_jobs().await.unwrap().is_empty());
    h.deliver().await;
    let m = h.to("cw1");
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].purpose, "morning_list");
    assert_eq!(m[0].payload["items"].as_array().unwrap().len(), 3);
    let h = h.restart().await;
    assert!(
        h.wf.run_daily_jobs().await.unwrap().is_empty(),
        "not again after a restart"
    );
    h.wf.record_contact(
        &Actor::user("cw1"),
        &contact("h1", ContactOutcome::Well, None),
    )
    .await
    .unwrap();
    h.clock.set(local_ms("2026-11-25", 18 * 60 + 5));
    assert_eq!(h.wf.run_daily_jobs().await.unwrap(), vec!["evening"]);
    h.deliver().await;
    let e = h.to("cw1");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].purpose, "evening_list");
    assert_eq!(e[0].payload["households"], serde_json::json!(["h2", "h3"]));
    let head = h.to("head1");
    assert_eq!(head[0].payload["contacted"], 1);
    assert_eq!(head[0].payload["households"], 3);
}
