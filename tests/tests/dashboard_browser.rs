//! The dashboard in a real browser: a gateway runs in-process on loopback with a small
//! fictional roster; Debian's `chromium` is driven headless over WebDriver
//! (`chromium-driver`, fantoccini) at a phone's size (390×844).
//!
//! A caseworker logs in (the page is Chinese by default), sees only her households,
//! receives a live alert from a simulated help press without reloading (and the alarm
//! sounds), acknowledges and resolves it with an outcome, and records a daily contact;
//! a second caseworker sees none of the first one's households, and their URLs answer
//! 404 in the page and from the API; a technician sees the device list (never-seen
//! devices said in words), registers a device (its secret shown once), starts an
//! installation test and sees a simulated help press check the button off live, the
//! untested devices at the end, and the work orders the test left. A screenshot of
//! every page is saved under `tests/artifacts/`. Every wait has a deadline; the DOM is polled, nothing sleeps
//! blindly.
//!
//! Needs `apt-get install chromium chromium-driver` (scripts/test-all.sh installs them).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anxin_firmware::wire::{self, Channel, Clock, DeviceId, Event, EventBody, HelpAction};
use anxin_gateway::app::{Gateway, StartOptions};
use anxin_gateway::broker::{AuthMode, BrokerConfig};
use anxin_gateway::clock::SystemClock;
use anxin_gateway::config::Config;
use anxin_gateway::store::{NewDevice, NewHousehold};
use anxin_gateway::workflow::{Actor, AlertFilter, AlertState, UserId};
use anxin_tests::harness::{ClientOpts, TestClient, free_port};
use anyhow::{Context, Result, bail};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

/// Every wait ends by then.
const WAIT: Duration = Duration::from_secs(20);
const PASSWORD: &str = "ceshi-mima-2026";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A gateway with two caseworkers of one committee: cw1 looks after h1–h3 (no
/// backup), cw2 after h4; a committee head and a technician.
async fn gateway(dir: &Path) -> Result<Gateway> {
    let mut c = Config::default();
    c.general.data_dir = dir.to_path_buf();
    c.broker = BrokerConfig::loopback();
    c.http.listen = "127.0.0.1:0".parse()?;
    c.mqtt.reconnect_min_ms = 50;
    c.mqtt.reconnect_max_ms = 500;
    let gw = Gateway::start(
        c,
        Arc::new(SystemClock),
        StartOptions {
            broker_auth: Some(AuthMode::Open),
        },
    )
    .await?;
    anyhow::ensure!(gw.wait_connected(WAIT).await, "gateway MQTT session up");
    let households: Vec<NewHousehold> = ["h1", "h2", "h3", "h4"]
        .iter()
        .map(|h| NewHousehold {
            id: (*h).into(),
            name: String::new(),
            address: String::new(),
        })
        .collect();
    gw.store.upsert_households(&households, 1).await?;
    let mut devices = vec![];
    for h in ["h1", "h2", "h3", "h4"] {
        for (kind, room) in [
            ("help", "bedroom"),
            ("door", "entrance"),
            ("motion", "living"),
        ] {
            devices.push(NewDevice {
                id: format!("{h}-{kind}"),
                household_id: Some(h.into()),
                kind: kind.into(),
                room: Some(room.into()),
            });
        }
    }
    gw.store.upsert_devices(&devices, 1).await?;
    gw.registry.reload(&gw.store).await?;
    let committees = "committee_id,committee_name,street_id,street_name,district_id,district_name\n\
        c1,测试居委会,s1,测试街道,d1,测试区\n";
    let users = "user_id,name,role,committee_id,street_id\n\
        cw1,测试员 王小梅,caseworker,c1,\n\
        cw2,测试员 李小兰,caseworker,c1,\n\
        head1,测试员 赵主任,committee_head,c1,\n\
        tech1,测试员 刘师傅,technician,,\n";
    let hh = "household_id,name,address,phone,committee_id,caseworker_id,backup_id,risk_tags\n\
        h1,测试户 周阿婆,测试路 1 号 101,021-00000001,c1,cw1,,高龄\n\
        h2,测试户 吴老伯,测试路 1 号 201,,c1,cw1,,\n\
        h3,测试户 郑阿姨,测试路 2 号 101,,c1,cw1,,透析\n\
        h4,测试户 钱老师,测试路 3 号 301,,c1,cw2,,\n";
    gw.workflow
        .import_org(
            &Actor::System,
            &[
                ("committees.csv".into(), committees.as_bytes().to_vec()),
                ("users.csv".into(), users.as_bytes().to_vec()),
                ("households.csv".into(), hh.as_bytes().to_vec()),
            ],
            false,
        )
        .await?;
    for u in ["cw1", "cw2", "head1", "tech1"] {
        anxin_gateway::api::auth::store_password(&gw.store, 1, &UserId::new(u), PASSWORD)
            .await
            .map_err(|e| anyhow::anyhow!("setting a password: {e}"))?;
    }
    Ok(gw)
}

/// `chromedriver` on a free port, stopped on drop.
struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
    profile_dir: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn chromedriver() -> Result<Driver> {
    for bin in [CHROMIUM, CHROMEDRIVER] {
        if !Path::new(bin).exists() {
            bail!("{bin} is missing: apt-get install chromium chromium-driver");
        }
    }
    let profile = tempfile::tempdir()?;
    let profile_dir = profile.path().to_path_buf();
    let port = free_port()?;
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting chromedriver")?;
    let driver = Driver {
        child,
        port,
        _profile: profile,
        profile_dir,
    };
    let deadline = Instant::now() + WAIT;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(driver);
        }
        if Instant::now() > deadline {
            bail!("chromedriver did not listen on {port} within {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn browser(d: &Driver) -> Result<Client> {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            // A phone's viewport (390×844 CSS pixels), whatever the window.
            "mobileEmulation": {"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 1.0}},
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=390,844", "--lang=zh-CN",
                "--autoplay-policy=no-user-gesture-required",
                format!("--user-data-dir={}", d.profile_dir.display()),
            ],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", d.port))
        .await
        .context("a WebDriver session")?;
    Ok(client)
}

/// Polls the DOM until `css` matches, or fails after [`WAIT`].
async fn wait_for(c: &Client, css: &str) -> Result<Element> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            return Ok(e);
        }
        if Instant::now() > deadline {
            let body = c
                .find(Locator::Css("body"))
                .await?
                .text()
                .await
                .unwrap_or_default();
            bail!("no {css} within {WAIT:?}; the page says: {body}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `script` (a JS expression) until it is true, or fails after [`WAIT`].
async fn wait_js(c: &Client, what: &str, script: &str) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        let v = c.execute(&format!("return !!({script});"), vec![]).await?;
        if v == serde_json::Value::Bool(true) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what}: not true within {WAIT:?}: {script}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Saves a screenshot as `tests/artifacts/<name>.png`.
async fn shot(c: &Client, name: &str) -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    std::fs::create_dir_all(&dir)?;
    let png = c.screenshot().await?;
    std::fs::write(dir.join(format!("{name}.png")), png)?;
    Ok(())
}

/// Ids of the household tiles on the page.
async fn tile_ids(c: &Client) -> Result<Vec<String>> {
    let v = c
        .execute(
            "return [...document.querySelectorAll('li.tile')].map(e => e.dataset.household);",
            vec![],
        )
        .await?;
    let mut ids: Vec<String> = serde_json::from_value(v)?;
    ids.sort();
    Ok(ids)
}

async fn login(c: &Client, base: &str, user: &str) -> Result<()> {
    c.goto(&format!("{base}/login")).await?;
    wait_for(c, "#user_id").await?.send_keys(user).await?;
    wait_for(c, "#password").await?.send_keys(PASSWORD).await?;
    wait_for(c, "#login-submit").await?.click().await?;
    wait_for(c, "#logout:not([hidden])").await?;
    Ok(())
}

async fn logout(c: &Client) -> Result<()> {
    wait_for(c, "#logout").await?.click().await?;
    wait_for(c, "#login-submit").await?;
    Ok(())
}

/// HTTP status of a GET from inside the page (with the page's session cookie).
async fn status_in_page(c: &Client, path: &str) -> Result<u16> {
    let v = c
        .execute_async(
            "const [p, done] = arguments; fetch(p, {credentials: 'same-origin'}).then(r => done(r.status), () => done(0));",
            vec![serde_json::json!(path)],
        )
        .await?;
    Ok(v.as_u64().unwrap_or(0) as u16)
}

/// A help button press of `device` (boot epoch `boot`), as the device sends it.
async fn press_help(mqtt: SocketAddr, device: &str, boot: u32) -> Result<()> {
    let mut dev = TestClient::connect("127.0.0.1", mqtt.port(), ClientOpts::new(device)).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    let e = Event::new(
        boot,
        1,
        1,
        now,
        Clock::Unix,
        EventBody::Help {
            act: HelpAction::Press,
        },
    );
    let id = DeviceId::new(device).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let payload = wire::codec::encode_vec(&e).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    dev.publish(&wire::topic::topic(&id, Channel::Event), &payload, false)
        .await?;
    dev.disconnect().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caseworker_answers_a_live_alert_and_records_a_contact_and_sees_only_her_households()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    let gw = gateway(dir.path()).await?;
    let base = format!("http://{}", gw.http_addr);
    let driver = chromedriver().await?;
    let c = browser(&driver).await?;
    let result = scenario(&c, &gw, &base).await;
    if result.is_err() {
        let _ = shot(&c, "failure").await;
    }
    let _ = c.close().await;
    drop(driver);
    gw.shutdown().await;
    result
}

async fn scenario(c: &Client, gw: &Gateway, base: &str) -> Result<()> {
    // Chinese by default, at a phone's size.
    c.goto(base).await?;
    wait_for(c, "#login-submit").await?;
    let lang = c
        .execute("return document.documentElement.lang;", vec![])
        .await?;
    assert_eq!(lang, "zh-CN", "Chinese by default");
    let title = wait_for(c, "main h1").await?.text().await?;
    assert_eq!(title, "登录安心");
    shot(c, "01-login").await?;

    // A wrong password is refused with a clear message.
    wait_for(c, "#user_id").await?.send_keys("cw1").await?;
    wait_for(c, "#password")
        .await?
        .send_keys("wrong-password")
        .await?;
    wait_for(c, "#login-submit").await?.click().await?;
    let err = wait_for(c, "#login-error:not([hidden])")
        .await?
        .text()
        .await?;
    assert_eq!(err, "工号或密码错误");

    // cw1 sees her three households, and only them.
    login(c, base, "cw1").await?;
    wait_for(c, "li.tile").await?;
    assert_eq!(tile_ids(c).await?, vec!["h1", "h2", "h3"]);
    let body = c.find(Locator::Css("body")).await?.text().await?;
    assert!(body.contains("我的包保户"), "{body}");
    assert!(
        !body.contains("钱老师"),
        "another caseworker's household is not shown"
    );
    shot(c, "02-today").await?;

    // The alert queue, then a help press at h1: it arrives without a reload.
    wait_for(c, "nav a[data-page='alerts']")
        .await?
        .click()
        .await?;
    wait_for(c, "#no-alerts").await?;
    c.execute("window.__sameDocument = true;", vec![]).await?;
    press_help(gw.mqtt_addr, "h1-help", 1).await?;
    let card = wait_for(c, "#alert-list li[data-household='h1']").await?;
    wait_js(
        c,
        "the page was not reloaded",
        "window.__sameDocument === true",
    )
    .await?;
    wait_js(
        c,
        "the alarm sounds",
        "document.body.dataset.alarm === 'on'",
    )
    .await?;
    let text = card.text().await?;
    assert!(text.contains("一键求助"), "{text}");
    assert!(text.contains("测试户 周阿婆"), "{text}");
    shot(c, "03-alerts-live").await?;

    // Acknowledge, then resolve with an outcome.
    wait_for(
        c,
        "#alert-list li[data-household='h1'] button[data-action='acknowledge']",
    )
    .await?
    .click()
    .await?;
    wait_for(
        c,
        "#alert-list li[data-household='h1'][data-state='acknowledged']",
    )
    .await?;
    wait_js(
        c,
        "the alarm stops once taken",
        "document.body.dataset.alarm === 'off'",
    )
    .await?;
    wait_for(
        c,
        "#alert-list li[data-household='h1'] button[data-action='resolve']",
    )
    .await?
    .click()
    .await?;
    let form = "#alert-list li[data-household='h1'] form[data-form='resolve']";
    wait_for(c, &format!("{form}:not([hidden])")).await?;
    // Without an outcome the form says so and nothing is sent.
    wait_for(c, &format!("{form} button[data-action='resolve-submit']"))
        .await?
        .click()
        .await?;
    let msg = wait_for(c, &format!("{form} .error:not([hidden])"))
        .await?
        .text()
        .await?;
    assert_eq!(msg, "请选择处置结果");
    wait_for(c, &format!("{form} select"))
        .await?
        .select_by_value("elder_ok")
        .await?;
    wait_for(c, &format!("{form} textarea"))
        .await?
        .send_keys("电话联系，老人误按，身体无恙")
        .await?;
    shot(c, "04-resolve-form").await?;
    wait_for(c, &format!("{form} button[data-action='resolve-submit']"))
        .await?
        .click()
        .await?;
    wait_for(c, "#no-alerts").await?;
    let resolved = gw
        .workflow
        .alerts(&AlertFilter {
            household_id: Some("h1".into()),
            ..AlertFilter::default()
        })
        .await?;
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].state, AlertState::Resolved);
    assert_eq!(resolved[0].outcome.as_deref(), Some("elder_ok"));
    assert_eq!(resolved[0].acknowledged_by.as_deref(), Some("user:cw1"));

    // The household's page: timeline, heat map, charts, ledger, needs, devices.
    c.goto(&format!("{base}/households/h1")).await?;
    wait_for(c, "#timeline li").await?;
    wait_for(c, "#heatmap .heat").await?;
    wait_for(c, "#devices table").await?;
    shot(c, "05-household").await?;

    // The daily contact.
    wait_for(c, "a[data-action='contact']")
        .await?
        .click()
        .await?;
    wait_for(c, "#contact-form").await?;
    wait_for(c, "input[name='method'][value='phone']")
        .await?
        .click()
        .await?;
    wait_for(c, "input[name='outcome'][value='well']")
        .await?
        .click()
        .await?;
    wait_for(c, "#contact-note")
        .await?
        .send_keys("老人精神好，已提醒按时吃药")
        .await?;
    shot(c, "06-contact-form").await?;
    wait_for(c, "#contact-submit").await?.click().await?;
    wait_for(c, "#tiles").await?;
    let contacts = gw
        .workflow
        .contacts(
            &anxin_gateway::workflow::Scope::All,
            gw.workflow.local_time().date(gw.workflow.now_ms()),
            gw.workflow.local_time().date(gw.workflow.now_ms()),
        )
        .await?;
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].household_id.as_str(), "h1");
    assert_eq!(contacts[0].user_id.as_str(), "cw1");
    wait_js(
        c,
        "h1 shows the contact",
        "document.querySelector('#tile-h1')?.textContent.includes('今天已联系')",
    )
    .await?;

    // Needs.
    wait_for(c, "nav a[data-page='needs']")
        .await?
        .click()
        .await?;
    wait_for(c, "#need-list").await?;
    shot(c, "07-needs").await?;

    // English on request.
    wait_for(c, "#lang").await?.click().await?;
    wait_for(c, "nav a[data-page='today']")
        .await?
        .click()
        .await?;
    wait_js(
        c,
        "English",
        "document.querySelector('main h1')?.textContent === 'My households today'",
    )
    .await?;
    shot(c, "08-today-english").await?;
    wait_for(c, "#lang").await?.click().await?;
    logout(c).await?;

    // cw2: only h4; h1's page and API answer 404 and show nothing of h1.
    login(c, base, "cw2").await?;
    wait_for(c, "li.tile").await?;
    assert_eq!(tile_ids(c).await?, vec!["h4"]);
    c.goto(&format!("{base}/households/h1")).await?;
    let nf = wait_for(c, "#not-found").await?.text().await?;
    assert_eq!(nf, "未找到该户，或您无权查看。");
    let body = c.find(Locator::Css("body")).await?.text().await?;
    assert!(
        !body.contains("周阿婆") && !body.contains("测试路 1 号"),
        "{body}"
    );
    shot(c, "09-other-caseworker-404").await?;
    for p in [
        "/api/v1/households/h1",
        "/api/v1/households/h1/timeline",
        "/api/v1/households/h1/activity",
        "/api/v1/households/h1/contacts",
        "/api/v1/households/h1/devices",
        &format!("/api/v1/alerts/{}", resolved[0].id),
    ] {
        let s = status_in_page(c, p).await?;
        assert!(
            s == 404 || s == 403,
            "{p} answered {s} to another caseworker"
        );
    }
    c.goto(&format!("{base}/contact/h1")).await?;
    wait_for(c, "#not-found").await?;
    logout(c).await?;

    // The supervisor's overview and the technician's devices.
    login(c, base, "head1").await?;
    wait_for(c, "nav a[data-page='overview']")
        .await?
        .click()
        .await?;
    wait_for(c, "#overview-table tbody tr").await?;
    shot(c, "10-overview").await?;
    logout(c).await?;
    technician(c, gw, base).await
}

/// The technician: devices, a registration, an installation test checked off live.
async fn technician(c: &Client, gw: &Gateway, base: &str) -> Result<()> {
    login(c, base, "tech1").await?;
    let item = wait_for(c, "#device-list li.device[data-device='h2-door']").await?;
    let text = item.text().await?;
    assert!(text.contains("从未上线"), "offline said in words: {text}");
    let status = status_in_page(c, "/api/v1/households/h1").await?;
    assert_eq!(status, 403, "technicians do not read elders' records");
    let body = c.find(Locator::Css("body")).await?.text().await?;
    assert!(!body.contains("周阿婆"), "addresses, never names: {body}");
    shot(c, "11-devices").await?;

    // A new device: its secret is shown once, in the page only.
    wait_for(c, "#register summary").await?.click().await?;
    wait_for(c, "#reg-kind")
        .await?
        .select_by_value("motion")
        .await?;
    wait_for(c, "#reg-household").await?.send_keys("h1").await?;
    wait_for(c, "#reg-room").await?.send_keys("bedroom").await?;
    wait_for(c, "#reg-serial")
        .await?
        .send_keys("AX-UI-0001")
        .await?;
    wait_for(c, "#register-submit").await?.click().await?;
    let secret = wait_for(c, "#new-secret").await?.text().await?;
    assert_eq!(secret.len(), 32, "{secret}");
    wait_for(c, "#device-list li.device[data-device='h1-motion-bedroom']").await?;
    shot(c, "12-register-secret").await?;

    // The installation test of h1: started from the page, checked off live.
    wait_for(
        c,
        "#device-list section[data-household='h1'] a[data-action='installation']",
    )
    .await?
    .click()
    .await?;
    wait_for(c, "#start-test").await?.click().await?;
    wait_js(
        c,
        "the test runs",
        "document.body.dataset.test === 'running'",
    )
    .await?;
    let started_ms = gw.workflow.now_ms();
    c.execute("window.__sameDocument = true;", vec![]).await?;
    press_help(gw.mqtt_addr, "h1-help", 2).await?;
    wait_for(
        c,
        "#install-devices li[data-device='h1-help'][data-tested='yes']",
    )
    .await?;
    wait_js(
        c,
        "checked off without a reload",
        "window.__sameDocument === true",
    )
    .await?;
    let order = c
        .execute(
            "return [...document.querySelectorAll('#install-devices li')].map(e => e.dataset.tested);",
            vec![],
        )
        .await?;
    let order: Vec<String> = serde_json::from_value(order)?;
    assert_eq!(order.len(), 4, "{order:?}");
    assert_eq!(order[0], "yes", "checked off first: {order:?}");
    assert!(
        order[1..].iter().all(|x| x == "no"),
        "the untested ones at the end: {order:?}"
    );
    let progress = wait_for(c, "#test-progress").await?.text().await?;
    assert_eq!(progress, "已测 1 / 4");
    shot(c, "13-installation-live").await?;
    let alarmed = gw
        .workflow
        .alerts(&AlertFilter {
            household_id: Some("h1".into()),
            from_ms: Some(started_ms),
            ..AlertFilter::default()
        })
        .await?;
    assert!(alarmed.is_empty(), "no alert during the test: {alarmed:?}");

    // Ended early: the three untested devices get work orders.
    wait_for(c, "#stop-test").await?.click().await?;
    wait_js(c, "the test ended", "document.body.dataset.test === 'idle'").await?;
    wait_for(c, "nav a[data-page='work_orders']")
        .await?
        .click()
        .await?;
    wait_for(c, "#order-list li[data-reason='untested']").await?;
    shot(c, "14-work-orders").await?;

    // One device: health, credentials, the press the test counted, its work orders.
    c.goto(&format!("{base}/devices/h1-help")).await?;
    let presses = wait_for(c, "#presses li").await?.text().await?;
    assert!(
        presses.contains("测试"),
        "the press counted as a test: {presses}"
    );
    shot(c, "15-device").await?;
    Ok(())
}
