//! Excel in and out: rosters imported from CSV and XLSX and exported again unchanged,
//! files with bad rows rejected whole with every bad row reported, the ledgers written
//! as spreadsheets a committee can open, and the `anxin org import` / `anxin report`
//! commands.

use crate::workflow_common;

use std::process::Command;

use anxin_gateway::signal::{AlertKind, Severity};
use anxin_gateway::workflow::export::ExportRequest;
use anxin_gateway::workflow::table::{read_csv, read_xlsx};
use anxin_gateway::workflow::{
    Actor, ContactMethod, ContactOutcome, ExportFormat, ExportKind, GroupBy, HouseholdId,
    NeedCategory, NewContact, Outcome, OutcomeCategory, Scope, WorkflowError,
};
use jiff::civil::Date;
use workflow_common::{Harness, org_files, test_config};

fn day(s: &str) -> Date {
    s.parse().unwrap()
}

fn request(kind: ExportKind, format: ExportFormat) -> ExportRequest {
    ExportRequest {
        kind,
        format,
        scope: Scope::All,
        from: day("2026-11-25"),
        to: day("2026-11-25"),
        group: GroupBy::Committee,
    }
}

async fn snapshot(h: &Harness) -> (Vec<String>, Vec<String>) {
    let mut hs = vec![];
    for x in h.wf.households(&Scope::All).await.unwrap() {
        hs.push(format!("{:?}", h.wf.household(&x.id).await.unwrap()));
    }
    let us =
        h.wf.users()
            .await
            .unwrap()
            .iter()
            .map(|u| format!("{u:?}"))
            .collect();
    (hs, us)
}

#[tokio::test]
async fn a_roster_imported_from_csv_exports_and_imports_again_unchanged() {
    let a = Harness::new(test_config()).await;
    let sys = Actor::System;
    let files = vec![
        (
            "committees.csv".to_string(),
            a.wf.export(&sys, &request(ExportKind::Committees, ExportFormat::Csv))
                .await
                .unwrap(),
        ),
        (
            "users.csv".to_string(),
            a.wf.export(&sys, &request(ExportKind::Users, ExportFormat::Csv))
                .await
                .unwrap(),
        ),
        (
            "households.csv".to_string(),
            a.wf.export(&sys, &request(ExportKind::Roster, ExportFormat::Csv))
                .await
                .unwrap(),
        ),
    ];
    let b = Harness::empty(test_config()).await;
    let report = b.wf.import_org(&sys, &files, false).await.unwrap();
    assert_eq!(
        (report.committees, report.users, report.households),
        (2, 7, 4)
    );
    assert_eq!(report.emergency_contacts, 1);
    assert_eq!(snapshot(&a).await, snapshot(&b).await);
    // And importing the same files again changes nothing.
    b.wf.import_org(&sys, &files, false).await.unwrap();
    assert_eq!(snapshot(&a).await, snapshot(&b).await);
}

#[tokio::test]
async fn a_roster_exported_to_xlsx_imports_again_unchanged() {
    let a = Harness::new(test_config()).await;
    let bytes =
        a.wf.export(
            &Actor::System,
            &request(ExportKind::Roster, ExportFormat::Xlsx),
        )
        .await
        .unwrap();
    let sheets: Vec<String> = read_xlsx(&bytes)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(sheets, vec!["committees", "users", "households"]);
    let b = Harness::empty(test_config()).await;
    b.wf.import_org(&Actor::System, &[("roster.xlsx".into(), bytes)], false)
        .await
        .unwrap();
    assert_eq!(snapshot(&a).await, snapshot(&b).await);
}

#[tokio::test]
async fn an_xlsx_roster_with_chinese_headers_as_committees_keep_it_imports() {
    use rust_xlsxwriter::Workbook;
    let mut wb = Workbook::new();
    let sheets: [(&str, Vec<Vec<&str>>); 3] = [
        (
            "居委会",
            vec![
                vec!["居委会编号", "居委会名称", "街镇编号", "街镇"],
                vec!["c9", "示例居委会", "s9", "示例街道"],
            ],
        ),
        (
            "工作人员",
            vec![
                vec!["工号", "姓名", "角色", "居委会编号", "手机"],
                vec!["w1", "示例社工", "包保人", "c9", "13900009999"],
            ],
        ),
        (
            "住户",
            vec![
                vec![
                    "户号",
                    "姓名",
                    "地址",
                    "居委会编号",
                    "包保人",
                    "风险标签",
                    "紧急联系人",
                ],
                vec![
                    "x1",
                    "示例老人",
                    "示例路 9 号",
                    "c9",
                    "w1",
                    "独居、慢病",
                    "示例家属|女儿|13800009999",
                ],
            ],
        ),
    ];
    for (name, rows) in &sheets {
        let ws = wb.add_worksheet();
        ws.set_name(*name).unwrap();
        for (r, row) in rows.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                ws.write_string(r as u32, c as u16, *v).unwrap();
            }
        }
    }
    // A phone number typed as a number, as Excel users do.
    let bytes = wb.save_to_buffer().unwrap();
    let h = Harness::empty(test_config()).await;
    let r =
        h.wf.import_org(&Actor::System, &[("名单.xlsx".into(), bytes)], false)
            .await
            .unwrap();
    assert_eq!(
        (r.committees, r.users, r.households, r.assignments),
        (1, 1, 1, 1)
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let x1 = h.wf.household(&HouseholdId::new("x1")).await.unwrap();
    assert_eq!(x1.caseworker_id.as_ref().map(|u| u.as_str()), Some("w1"));
    assert_eq!(x1.street_id.as_deref(), Some("s9"));
    assert_eq!(x1.risk_tags.len(), 2);
    assert_eq!(x1.emergency_contacts[0].relation, "女儿");
}

#[tokio::test]
async fn a_file_with_bad_rows_imports_nothing_and_reports_every_bad_row_with_its_number() {
    let h = Harness::new(test_config()).await;
    let before = snapshot(&h).await;
    let users = "user_id,name,role,committee_id,email\n\
        n1,新社工,caseworker,c1,n1@example.org\n\
        n2,坏角色,chef,c1,\n\
        n3,无居委会,caseworker,,\n\
        n4,坏邮箱,technician,,not-an-address\n";
    let households = "户号,姓名,地址,居委会编号,包保人,备岗,风险标签,电话\n\
        h10,新住户,示例路 10 号,c1,n1,cw2,高龄,\n\
        h11,,示例路 11 号,c1,cw1,cw2,,\n\
        h12,某老人,示例路 12 号,c1,nobody,cw2,,\n\
        h13,某老人,示例路 13 号,c1,cw1,cw1,,\n\
        h14,某老人,示例路 14 号,c1,cw1,cw2,会飞,\n\
        h10,重复,示例路 10 号,c1,cw1,cw2,,\n\
        h15,某老人,示例路 15 号,c9,cw1,cw2,,\n\
        h16,某老人,示例路 16 号,c1,tech1,cw2,,\n\
        h17,某老人,示例路 17 号,c1,cw1,cw2,,call me\n";
    let err =
        h.wf.import_org(
            &Actor::System,
            &[
                ("users.csv".into(), users.into()),
                ("households.csv".into(), households.into()),
            ],
            false,
        )
        .await
        .unwrap_err();
    let WorkflowError::ImportRejected(report) = err else {
        panic!("{err:?}")
    };
    let got: Vec<(String, usize, Option<String>)> = report
        .errors
        .iter()
        .map(|e| (e.sheet.clone(), e.row, e.column.clone()))
        .collect();
    let want: Vec<(String, usize, Option<String>)> = [
        ("households.csv", 3, "name"),
        ("households.csv", 4, "caseworker_id"),
        ("households.csv", 5, "backup_id"),
        ("households.csv", 6, "risk_tags"),
        ("households.csv", 7, "household_id"),
        ("households.csv", 8, "committee_id"),
        ("households.csv", 9, "caseworker_id"),
        ("households.csv", 10, "phone"),
        ("users.csv", 3, "role"),
        ("users.csv", 4, "committee_id"),
        ("users.csv", 5, "email"),
    ]
    .iter()
    .map(|(s, r, c)| (s.to_string(), *r, Some(c.to_string())))
    .collect();
    assert_eq!(got, want, "{:#?}", report.errors);
    assert!(
        report.errors[4]
            .reason
            .contains("first at households.csv row 2")
    );
    assert_eq!(snapshot(&h).await, before, "nothing was imported");
    assert!(matches!(
        h.wf.household(&HouseholdId::new("h10")).await,
        Err(WorkflowError::UnknownHousehold(_))
    ));
}

#[tokio::test]
async fn bad_rows_in_an_xlsx_sheet_are_reported_with_the_row_numbers_excel_shows() {
    use rust_xlsxwriter::Workbook;
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("households").unwrap();
    let rows = [
        ["household_id", "name", "committee_id"],
        ["y1", "好的", "c1"],
        ["", "", ""],
        ["y2", "", "c1"],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            ws.write_string(r as u32, c as u16, *v).unwrap();
        }
    }
    let h = Harness::new(test_config()).await;
    let err =
        h.wf.import_org(
            &Actor::System,
            &[("r.xlsx".into(), wb.save_to_buffer().unwrap())],
            true,
        )
        .await
        .unwrap_err();
    let WorkflowError::ImportRejected(report) = err else {
        panic!()
    };
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].sheet, "r.xlsx:households");
    assert_eq!(report.errors[0].row, 4);
}

#[tokio::test]
async fn the_ledger_alerts_needs_and_kpis_export_to_spreadsheets() {
    let h = Harness::new(test_config()).await;
    let cw1 = Actor::user("cw1");
    h.wf.record_contact(
        &cw1,
        &NewContact {
            household_id: HouseholdId::new("h1"),
            method: ContactMethod::Wechat,
            outcome: ContactOutcome::NeedsHelp,
            note: "说腿疼".into(),
            needs: vec![(NeedCategory::EscortToHospital, "陪同看骨科".into())],
            at_ms: None,
        },
    )
    .await
    .unwrap();
    let id = h
        .raise("h1", "h1-help", AlertKind::Help, Severity::Critical)
        .await;
    h.advance(45);
    h.wf.acknowledge(&id, &cw1).await.unwrap();
    h.wf.resolve(
        &id,
        &cw1,
        Some(Outcome {
            category: OutcomeCategory::FalseAlarm,
            note: "误按".into(),
            follow_up_due_ms: None,
        }),
    )
    .await
    .unwrap();

    let xlsx =
        h.wf.export(&cw1, &request(ExportKind::Contacts, ExportFormat::Xlsx))
            .await
            .unwrap();
    let sheets = read_xlsx(&xlsx).unwrap();
    let rows = &sheets[0].1;
    assert_eq!(rows[0][0], "日期");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][2], "h1");
    assert_eq!(rows[1][3], "周阿婆");
    assert_eq!(rows[1][6], "wechat");
    assert_eq!(rows[1][9], "escort_to_hospital: 陪同看骨科");

    let alerts = read_csv(
        &h.wf
            .export(&cw1, &request(ExportKind::Alerts, ExportFormat::Csv))
            .await
            .unwrap(),
    )
    .unwrap();
    let col = |name: &str| alerts[0].iter().position(|c| c == name).unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[1][col("处理结果")], "false_alarm");
    assert_eq!(alerts[1][col("确认用时(秒)")], "45");
    assert_eq!(alerts[1][col("类型")], "一键求助");

    let needs = read_csv(
        &h.wf
            .export(&cw1, &request(ExportKind::Needs, ExportFormat::Csv))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(needs.len(), 2);
    let kpis = read_csv(
        &h.wf
            .export(&cw1, &request(ExportKind::Kpis, ExportFormat::Csv))
            .await
            .unwrap(),
    )
    .unwrap();
    let total = kpis.last().unwrap();
    assert_eq!(total[0], "all");
    assert_eq!(
        total[4], "1",
        "one critical alert, acknowledged within 60 s"
    );
    let trail =
        h.wf.audit_trail("org", "2026-11-25..2026-11-25")
            .await
            .unwrap();
    assert_eq!(
        trail
            .iter()
            .filter(|e| e.action.starts_with("export."))
            .count(),
        4
    );
}

fn anxin(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_anxin"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("anxin runs")
}

#[test]
fn anxin_org_import_refuses_a_bad_file_whole_and_imports_a_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.display().to_string();
    let files: Vec<String> = org_files()
        .into_iter()
        .map(|(name, bytes)| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p.display().to_string()
        })
        .collect();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "household_id,name,committee_id\nz1,好的,c1\nz2,,c1\n").unwrap();

    let out = anxin(&[
        "org",
        "import",
        "--data-dir",
        &data_s,
        &bad.display().to_string(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.csv row 2 [committee_id]: unknown committee c1"),
        "{err}"
    );
    assert!(err.contains("bad.csv row 3 [name]: required"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");

    let mut args = vec!["org", "import", "--data-dir", &data_s];
    args.extend(files.iter().map(String::as_str));
    let out = anxin(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Imported: 2 committees"));

    let out = anxin(&[
        "report",
        "roster",
        "--data-dir",
        &data_s,
        "--scope",
        "committee:c2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.starts_with("household_id,name"), "{csv}");
    assert!(csv.contains("h4,钱老师"), "{csv}");
    assert!(!csv.contains("h1,"), "{csv}");

    let xlsx = dir.path().join("kpis.xlsx");
    let out = anxin(&[
        "report",
        "kpis",
        "--data-dir",
        &data_s,
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-30",
        "-o",
        &xlsx.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sheets = read_xlsx(&std::fs::read(&xlsx).unwrap()).unwrap();
    assert_eq!(sheets[0].0, "kpis");
    assert_eq!(sheets[0].1.last().unwrap()[0], "all");
}
