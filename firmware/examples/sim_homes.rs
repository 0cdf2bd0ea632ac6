//! Runs simulated homes against an MQTT broker and prints the report as JSON.
//!
//! ```text
//! cargo run -p anxin-firmware --features sim --example sim_homes -- \
//!     --port 1883 --homes 50 --speed 1440 --seconds 60 \
//!     --scenario help@h0001@+2h --scenario collapse@h0003@+5h
//! ```
//! Options: `--host` (127.0.0.1), `--port` (1883), `--homes` (50), `--speed` (1440),
//! `--seed` (1), `--seconds` of real time to run (until Ctrl-C when absent),
//! `--start` local `YYYY-MM-DDTHH:MM` (now when absent), `--heartbeat-s` (300),
//! `--population` (print the population as JSON and exit), `--scenario` (repeatable),
//! `--self-ack` (acknowledge events from this process, when no gateway runs: a stand-in
//! for trying the simulation alone or measuring its load).

#[cfg(feature = "sim")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::time::Duration;

    use anxin_firmware::sim::{self, Scenario, SimClock, SimConfig};
    use tokio_util::sync::CancellationToken;

    let mut host = "127.0.0.1".to_owned();
    let (mut port, mut homes, mut speed, mut seed) = (1883u16, 50usize, 1440.0f64, 1u64);
    let (mut seconds, mut start, mut heartbeat_s) = (None::<u64>, None::<u64>, 300u32);
    let mut scenarios: Vec<Scenario> = Vec::new();
    let (mut print_population, mut self_ack) = (false, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--host" => host = value()?,
            "--port" => port = value()?.parse()?,
            "--homes" => homes = value()?.parse()?,
            "--speed" => speed = value()?.parse()?,
            "--seed" => seed = value()?.parse()?,
            "--seconds" => seconds = Some(value()?.parse()?),
            "--heartbeat-s" => heartbeat_s = value()?.parse()?,
            "--start" => start = Some(sim::calendar::parse_local(&value()?).ok_or("bad --start")?),
            "--scenario" => scenarios.push(value()?.parse()?),
            "--population" => print_population = true,
            "--self-ack" => self_ack = true,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let population = sim::population(homes, seed);
    if print_population {
        println!("{}", serde_json::to_string_pretty(&population)?);
        return Ok(());
    }
    let clock = match start {
        Some(t) => SimClock::new(t, speed),
        None => SimClock::starting_now(speed),
    };
    let mut config = SimConfig::new(host.clone(), port, clock);
    config.seed = seed;
    config.heartbeat_s = heartbeat_s;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        if self_ack {
            tokio::spawn(acker(host, port, shutdown.clone()));
        }
        let stop = shutdown.clone();
        tokio::spawn(async move {
            match seconds {
                Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            stop.cancel();
        });
        sim::run(config, population, scenarios, shutdown).await
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Acknowledges every event, contiguously per device and boot, like the gateway would.
#[cfg(feature = "sim")]
async fn acker(host: String, port: u16, stop: tokio_util::sync::CancellationToken) {
    use std::collections::{BTreeMap, BTreeSet};

    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

    let (client, mut eventloop) = AsyncClient::new(MqttOptions::new("sim-acker", host, port), 4096);
    let mut acked: BTreeMap<(String, u64), (u64, BTreeSet<u64>)> = BTreeMap::new();
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => return,
            ev = eventloop.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                let _ = client.try_subscribe("anxin/v1/dev/+/up/event", QoS::AtLeastOnce);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let Some(dev) = p.topic.split('/').nth(3).map(str::to_owned) else {
                    continue;
                };
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(&p.payload) else {
                    continue;
                };
                let field = |k: &str| v[k].as_u64().unwrap_or(0);
                let (boot, seq, oldest) = (field("boot"), field("seq"), field("oldest"));
                let (upto, above) = acked.entry((dev.clone(), boot)).or_default();
                *upto = (*upto).max(oldest.saturating_sub(1));
                above.insert(seq);
                while above.remove(&(*upto + 1)) {
                    *upto += 1;
                }
                above.retain(|s| *s > *upto);
                let ack = format!(r#"{{"v":1,"boot":{boot},"upto":{upto}}}"#);
                let topic = format!("anxin/v1/dev/{dev}/down/ack");
                let _ = client.try_publish(topic, QoS::AtMostOnce, false, ack);
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
}

#[cfg(not(feature = "sim"))]
fn main() {
    eprintln!("build with --features sim");
}
