//! Shared pieces of the workflow tests: a workflow over a temporary SQLite store on a
//! manual clock, with recording notifiers, a small fictional organisation, and helpers
//! to build signals and events.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anxin_gateway::clock::ManualClock;
use anxin_gateway::notify::{Channel, DeviceNotifier, MockDevices, MockNotifier, Notifiers};
use anxin_gateway::signal::{AlertKind, Severity, Signal, SignalAction};
use anxin_gateway::store::Store;
use anxin_gateway::telemetry::Metrics;
use anxin_gateway::workflow::{
    Actor, AlertId, RecordedModes, SignalOutcome, WorkflowConfig, WorkflowDeps, WorkflowHandle,
};
use jiff::civil::Date;

/// Tests never wait longer than this for anything.
pub const WAIT: Duration = Duration::from_secs(20);

/// 2026-11-25 10:00 in Shanghai.
pub fn ten_am() -> i64 {
    local_ms("2026-11-25", 10 * 60)
}

/// `day` at `minute` after midnight, Shanghai.
pub fn local_ms(day: &str, minute: u32) -> i64 {
    let d: Date = day.parse().unwrap();
    let t = jiff::civil::Time::new((minute / 60) as i8, (minute % 60) as i8, 0, 0).unwrap();
    d.to_datetime(t)
        .to_zoned_datetime(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap())
        .unwrap()
        .timestamp()
        .as_millisecond()
}

/// A workflow on a manual clock with recording notifiers (webhook channel for people,
/// the device channel for feedback).
pub struct Harness {
    pub wf: WorkflowHandle,
    pub clock: Arc<ManualClock>,
    pub store: Store,
    pub people: Arc<MockNotifier>,
    pub devices: Arc<MockDevices>,
    pub modes: Arc<RecordedModes>,
    pub config: WorkflowConfig,
    pub dir: tempfile::TempDir,
    pub url: String,
}

/// The store of a new harness: SQLite in `dir`, or a fresh PostgreSQL database when
/// `ANXIN_TEST_POSTGRES` names a server (e.g. `postgres://postgres@127.0.0.1:55432`).
async fn store_url(dir: &std::path::Path) -> String {
    match std::env::var("ANXIN_TEST_POSTGRES") {
        Ok(base) if !base.is_empty() => {
            use sqlx::Executor;
            sqlx::any::install_default_drivers();
            let name = format!("wf_{:016x}", rand::random::<u64>());
            let admin = sqlx::AnyPool::connect(&format!("{base}/postgres"))
                .await
                .unwrap();
            admin
                .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .unwrap();
            admin.close().await;
            format!("{base}/{name}")
        }
        _ => format!("sqlite://{}", dir.join("anxin.db").display()),
    }
}

/// The default test configuration: critical = caseworker at once, backup at 120 s,
/// committee head at 300 s, street duty at 600 s; no repeats unless a test asks.
pub fn test_config() -> WorkflowConfig {
    let mut c = WorkflowConfig::default();
    c.escalation.critical.repeat_s = 0;
    c.escalation.warning.repeat_s = 0;
    c.notify.role_channels.caseworker = vec![Channel::Webhook];
    c.notify.role_channels.committee_head = vec![Channel::Webhook];
    c.notify.role_channels.street_supervisor = vec![Channel::Webhook];
    c.notify.role_channels.technician = vec![Channel::Webhook];
    c.notify.role_channels.admin = vec![Channel::Webhook];
    c
}

impl Harness {
    /// A fresh store at 10:00 with the test organisation.
    pub async fn new(config: WorkflowConfig) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(ten_am()));
        let url = store_url(dir.path()).await;
        let h = Harness::open(dir, url, clock, config).await;
        h.seed().await;
        h
    }

    /// A fresh store at 10:00 with no organisation.
    pub async fn empty(config: WorkflowConfig) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(ten_am()));
        let url = store_url(dir.path()).await;
        Harness::open(dir, url, clock, config).await
    }

    async fn open(
        dir: tempfile::TempDir,
        url: String,
        clock: Arc<ManualClock>,
        config: WorkflowConfig,
    ) -> Harness {
        let store = Store::open(&url).await.unwrap();
        let people = MockNotifier::new(Channel::Webhook);
        let devices = MockDevices::new();
        let modes = Arc::new(RecordedModes::default());
        let mut notifiers: Notifiers = HashMap::new();
        notifiers.insert(Channel::Webhook, people.clone());
        notifiers.insert(
            Channel::Device,
            Arc::new(DeviceNotifier::new(devices.clone())),
        );
        let wf = WorkflowHandle::open(WorkflowDeps {
            store: store.clone(),
            clock: clock.clone(),
            metrics: Metrics::new(),
            config: config.clone(),
            timezone: "Asia/Shanghai".into(),
            notifiers,
            modes: modes.clone(),
            check_in_s: 300,
        })
        .unwrap();
        Harness {
            wf,
            clock,
            store,
            people,
            devices,
            modes,
            config,
            dir,
            url,
        }
    }

    /// The same store, a new workflow (a restart); what was delivered before is
    /// forgotten by the new recorders.
    pub async fn restart(self) -> Harness {
        let Harness {
            dir,
            url,
            clock,
            config,
            store,
            ..
        } = self;
        store.close().await;
        Harness::open(dir, url, clock, config).await
    }

    /// Imports the fictional organisation.
    pub async fn seed(&self) {
        self.wf
            .import_org(&Actor::System, &org_files(), false)
            .await
            .expect("test organisation imports");
    }

    /// Moves the clock.
    pub fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    /// Processes due deadlines and delivers the outbox.
    pub async fn tick(&self) {
        self.wf.run_due_deadlines().await.unwrap();
        self.deliver().await;
    }

    /// Delivers everything due.
    pub async fn deliver(&self) {
        while self.wf.outbox().deliver_due(None).await.unwrap() > 0 {}
    }

    /// Alert notifications (not device feedback, not daily lists) delivered to `user`.
    pub fn to(&self, user: &str) -> Vec<anxin_gateway::notify::Notification> {
        self.people.sent_to(user)
    }

    /// Purposes delivered to `user`, in order.
    pub fn purposes_to(&self, user: &str) -> Vec<String> {
        self.to(user).into_iter().map(|n| n.purpose).collect()
    }

    /// Raises `kind` for `household` from `device` and returns the alert.
    pub async fn raise(
        &self,
        household: &str,
        device: &str,
        kind: AlertKind,
        severity: Severity,
    ) -> AlertId {
        match self
            .wf
            .apply_signal(&signal(
                household,
                device,
                kind,
                severity,
                SignalAction::Raise,
                self.clock_now(),
            ))
            .await
            .unwrap()
        {
            SignalOutcome::Opened(id)
            | SignalOutcome::Repeated(id)
            | SignalOutcome::Upgraded(id) => id,
            other => panic!("raise gave {other:?}"),
        }
    }

    pub fn clock_now(&self) -> i64 {
        use anxin_gateway::clock::Clock;
        self.clock.now_ms()
    }

    /// Inserts a sign-of-life event at `at_ms`.
    pub async fn event(&self, household: &str, kind: &str, at_ms: i64) {
        static NEXT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        sqlx::query(
            "INSERT INTO events (journal_id, device_id, boot, seq, household_id, kind, event_ms, received_ms, body) \
             VALUES ($1, $2, 1, $1, $3, $4, $5, $5, '{}')",
        )
        .bind(id)
        .bind(format!("{household}-motion"))
        .bind(household)
        .bind(kind)
        .bind(at_ms)
        .execute(self.store.pool())
        .await
        .unwrap();
    }
}

/// A signal.
pub fn signal(
    household: &str,
    device: &str,
    kind: AlertKind,
    severity: Severity,
    action: SignalAction,
    at_ms: i64,
) -> Signal {
    Signal {
        household_id: Some(household.into()),
        device_id: Some(device.into()),
        kind,
        severity,
        action,
        at_ms,
        observed_ms: None,
        episode_ms: at_ms,
        reason: format!("{} at {household}", kind.as_str()),
    }
}

/// The fictional organisation: district d1 → street s1 → committees c1, c2; caseworkers
/// cw1, cw2 (c1), cw3 (c2); head1 (c1); sup1 (s1, on duty); tech1; admin1; households
/// h1–h3 (cw1, backup cw2) and h4 (cw3, no backup).
pub fn org_files() -> Vec<(String, Vec<u8>)> {
    let committees = "committee_id,committee_name,street_id,street_name,district_id,district_name\n\
        c1,幸福里居委会,s1,安宁街道,d1,示例区\n\
        c2,和平居委会,s1,,,\n";
    let users = "user_id,name,role,committee_id,street_id,phone,email,channels,on_duty\n\
        cw1,张社工,caseworker,c1,,13900000001,cw1@example.org,,no\n\
        cw2,李社工,caseworker,c1,,13900000002,cw2@example.org,,no\n\
        cw3,赵社工,caseworker,c2,,13900000003,,,no\n\
        head1,王主任,committee_head,c1,,13900000004,head1@example.org,,no\n\
        sup1,陈值班,street_supervisor,,s1,13900000005,,,yes\n\
        tech1,刘师傅,technician,,,13900000006,,,no\n\
        admin1,管理员,admin,,,,,,no\n";
    let households = "household_id,name,address,phone,committee_id,caseworker_id,backup_id,risk_tags,emergency_contacts\n\
        h1,周阿婆,示例路 1 号 101,021-00000001,c1,cw1,cw2,高龄,周小明|儿子|13800000001\n\
        h2,吴老伯,示例路 1 号 201,,c1,cw1,cw2,,\n\
        h3,郑阿姨,示例路 2 号 101,,c1,cw1,cw2,透析,\n\
        h4,钱老师,示例路 3 号 301,,c2,cw3,,,\n";
    vec![
        ("committees.csv".into(), committees.as_bytes().to_vec()),
        ("users.csv".into(), users.as_bytes().to_vec()),
        ("households.csv".into(), households.as_bytes().to_vec()),
    ]
}
