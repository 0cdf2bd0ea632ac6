//! The demo population: registers the simulated homes' households and devices, so that
//! the gateway accepts their traffic like that of installed homes, and gives them a
//! plainly fictional organisation (one district, one street, two committees, a head, a
//! street supervisor, a technician, an administrator, and caseworkers with 5–8
//! households each and a backup) whose users can log in to the dashboard at once.

use anxin_firmware::sim::Population;

use crate::store::{NewDevice, NewHousehold, Store, StoreError};
use crate::workflow::{Actor, WorkflowError, WorkflowHandle};

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

/// Why the demo roster could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The workflow refused the roster.
    #[error("demo roster: {0}")]
    Workflow(#[from] WorkflowError),
    /// The store failed.
    #[error("demo roster: {0}")]
    Store(#[from] StoreError),
    /// Passwords could not be hashed.
    #[error("demo roster: {0}")]
    Password(String),
}

/// A demo user, printed at start so that a newcomer can log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoUser {
    /// Login.
    pub id: String,
    /// Name (fictional).
    pub name: String,
    /// Role (snake_case).
    pub role: &'static str,
    /// What they look after, for the printout.
    pub looks_after: String,
}

/// Households per demo caseworker (包保: 5–10).
const PER_CASEWORKER: usize = 8;

/// Invented names, marked 演示 (demo) so that nobody mistakes them for real people.
const CASEWORKER_NAMES: &[&str] = &[
    "演示 张晓红",
    "演示 李建华",
    "演示 王丽萍",
    "演示 赵志强",
    "演示 孙美玲",
    "演示 周海燕",
    "演示 吴国庆",
    "演示 郑秀英",
];

/// Gives the demo homes a fictional organisation and sets every demo user's password to
/// `password` (argon2id). Returns the users, caseworkers first.
pub async fn register_roster(
    wf: &WorkflowHandle,
    store: &Store,
    population: &Population,
    password: &str,
) -> Result<Vec<DemoUser>, DemoError> {
    let ids: Vec<String> = population
        .households
        .iter()
        .map(|h| h.id.to_string())
        .collect();
    // Caseworkers with at most 8 households each; the first half in committee 1, the
    // rest in committee 2.
    let n_cw = ids.len().div_ceil(PER_CASEWORKER).max(2);
    let committee_of = |cw: usize| {
        if cw < n_cw.div_ceil(2) {
            "demo-c1"
        } else {
            "demo-c2"
        }
    };
    let mut users = vec![];
    let mut user_rows = String::from("user_id,name,role,committee_id,street_id,on_duty\n");
    for cw in 0..n_cw {
        let name = CASEWORKER_NAMES
            .get(cw)
            .map(|s| s.to_string())
            .unwrap_or_else(|| format!("演示 社工{}", cw + 1));
        let id = format!("demo-cw{}", cw + 1);
        user_rows.push_str(&format!(
            "{id},{name},caseworker,{},,no\n",
            committee_of(cw)
        ));
        users.push((id, name, "caseworker"));
    }
    for (id, name, role, committee, street) in [
        ("demo-head", "演示 王主任", "committee_head", "demo-c1", ""),
        (
            "demo-street",
            "演示 陈科长",
            "street_supervisor",
            "",
            "demo-s1",
        ),
        ("demo-tech", "演示 刘师傅", "technician", "", ""),
        ("demo-admin", "演示 管理员", "admin", "", ""),
    ] {
        let duty = if role == "street_supervisor" {
            "yes"
        } else {
            "no"
        };
        user_rows.push_str(&format!("{id},{name},{role},{committee},{street},{duty}\n"));
        users.push((id.to_string(), name.to_string(), role));
    }
    let committees = "committee_id,committee_name,street_id,street_name,district_id,district_name\n\
        demo-c1,幸福里居委会（演示）,demo-s1,安宁街道（演示）,demo-d1,示例区（演示）\n\
        demo-c2,和平里居委会（演示）,demo-s1,,,\n";
    let mut household_rows =
        String::from("household_id,name,address,committee_id,caseworker_id,backup_id,risk_tags\n");
    let mut looks_after: Vec<Vec<String>> = vec![vec![]; n_cw];
    for (i, h) in population.households.iter().enumerate() {
        // Spread evenly: 50 homes give 7 caseworkers with 7 or 8 households each.
        let cw = (i * n_cw / ids.len()).min(n_cw - 1);
        let committee = committee_of(cw);
        // The backup: another caseworker of the same committee, when there is one.
        let backup = (0..n_cw)
            .map(|k| (cw + 1 + k) % n_cw)
            .find(|&k| k != cw && committee_of(k) == committee)
            .map(|k| format!("demo-cw{}", k + 1))
            .unwrap_or_default();
        let tags = match i % 6 {
            0 => "高龄、独居",
            1 => "独居",
            2 => "慢病",
            3 => "高龄",
            4 => "纯老",
            _ => "",
        };
        let address = format!("安心路 {} 号 {} 室", 1 + i / 6, 101 + (i % 6) * 100);
        household_rows.push_str(&format!(
            "{},{},{address},{committee},demo-cw{},{backup},{tags}\n",
            h.id,
            h.resident,
            cw + 1
        ));
        looks_after[cw].push(h.id.to_string());
    }
    wf.import_org(
        &Actor::System,
        &[
            ("committees.csv".into(), committees.as_bytes().to_vec()),
            ("users.csv".into(), user_rows.into_bytes()),
            ("households.csv".into(), household_rows.into_bytes()),
        ],
        false,
    )
    .await?;
    let hash = crate::api::auth::hash_password(password)
        .await
        .map_err(|e| DemoError::Password(e.message))?;
    for (id, _, _) in &users {
        store.set_password_hash(id, &hash).await?;
    }
    Ok(users
        .into_iter()
        .enumerate()
        .map(|(i, (id, name, role))| {
            let looks_after = match role {
                "caseworker" => match (looks_after[i].first(), looks_after[i].last()) {
                    (Some(a), Some(b)) => format!("{a}…{b} ({})", looks_after[i].len()),
                    _ => "—".into(),
                },
                "committee_head" => "demo-c1".into(),
                "street_supervisor" => "demo-s1".into(),
                "technician" => "devices".into(),
                _ => "everything".into(),
            };
            DemoUser {
                id,
                name,
                role,
                looks_after,
            }
        })
        .collect())
}
