//! A rough load measurement of the embedded broker (the spike behind choosing rmqtt):
//! QoS 1 from many device publishers to one gateway subscriber that acknowledges
//! manually, outside its event loop. Ignored by default; run it with
//!
//! ```text
//! cargo test -p anxin-gateway --release --test integration broker_throughput:: -- --ignored --nocapture
//! ```
//!
//! Knobs (environment):
//! - `ANXIN_BENCH_PUBLISHERS` (50), `ANXIN_BENCH_MESSAGES` per publisher (2000);
//! - `ANXIN_BENCH_RATE`: total offered msg/s; 0 (default) = as fast as possible, where
//!   latency is mostly the publishers' own backlog: set a rate to read latency;
//! - `ANXIN_BENCH_EXTERNAL_PORT`: measure the broker already listening on that 127.0.0.1
//!   port (e.g. a mosquitto with `allow_anonymous true`) with the very same clients.
//!
//! Clients and broker share the process and the cores, so the figures are a lower bound
//! for the broker alone; RSS is the whole process (in-process broker only). The broker
//! acknowledges a PUBLISH once it is queued for the subscriber: when the gateway reads
//! slower than devices publish, its session queue (`max_queue`) fills and the broker
//! drops (and counts, `anxin_broker_dropped_total{reason="queue_full"}`) the excess.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anxin_firmware::wire::DeviceId;
use anxin_gateway::broker::{self, AuthMode, BrokerConfig, BrokerStats, DeviceCredentials};
use anyhow::{Context, Result};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "load measurement; run explicitly"]
async fn qos1_fan_in_to_a_manually_acking_gateway_is_lossless() -> Result<()> {
    let publishers = env_or("ANXIN_BENCH_PUBLISHERS", 50);
    let per_publisher = env_or("ANXIN_BENCH_MESSAGES", 2000);
    let total = publishers * per_publisher;
    let rate = env_or("ANXIN_BENCH_RATE", 0);

    let creds = Arc::new(DeviceCredentials::new(AuthMode::Production).with_gateway("gw", b"gw"));
    for i in 0..publishers {
        creds.set_device_secret(DeviceId::new(&format!("dev-{i:03}"))?, b"secret");
    }
    let stats = Arc::new(BrokerStats::new());
    let b = broker::start(BrokerConfig::loopback(), creds, stats.clone()).await?;
    // ANXIN_BENCH_EXTERNAL_PORT: measure another broker on 127.0.0.1 instead (e.g. a
    // mosquitto with allow_anonymous), with the very same clients.
    let port = match std::env::var("ANXIN_BENCH_EXTERNAL_PORT") {
        Ok(p) if !p.is_empty() => p.parse()?,
        _ => b.local_addr().port(),
    };
    let rss_idle = rss_mib();

    // The gateway: clean_session=false, manual acks sent from another task.
    let mut opts = MqttOptions::new("gw-bench", "127.0.0.1", port);
    opts.set_credentials("gw", "gw")
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_request_channel_capacity(100_000)
        .set_keep_alive(Duration::from_secs(60));
    let (gw, mut gw_loop) = AsyncClient::new(opts, 100_000);
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel();
    let acker = {
        let gw = gw.clone();
        tokio::spawn(async move {
            while let Some(p) = ack_rx.recv().await {
                if gw.ack(&p).await.is_err() {
                    return;
                }
            }
        })
    };
    let (sub_tx, mut sub_rx) = mpsc::unbounded_channel::<()>();
    let epoch = Instant::now();
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let receiver = tokio::spawn({
        let received = received.clone();
        async move {
            let mut latencies = Vec::with_capacity(total);
            let mut next_seq: HashMap<String, u64> = HashMap::new();
            let mut out_of_order = 0usize;
            let mut first = None;
            while latencies.len() < total {
                let event = tokio::select! {
                    _ = &mut stop_rx => break,
                    event = gw_loop.poll() => event,
                };
                match event {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let now = epoch.elapsed();
                        first.get_or_insert(now);
                        let sent = u64::from_be_bytes(p.payload[..8].try_into()?);
                        let seq = u64::from_be_bytes(p.payload[8..16].try_into()?);
                        latencies.push(now.as_nanos() as u64 - sent);
                        let expected = next_seq.entry(p.topic.clone()).or_insert(0);
                        if seq != *expected {
                            out_of_order += 1;
                        }
                        *expected = seq + 1;
                        received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let _ = ack_tx.send(p);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = sub_tx.send(());
                    }
                    Ok(_) => {}
                    Err(e) => anyhow::bail!("gateway connection failed: {e}"),
                }
            }
            anyhow::Ok((latencies, out_of_order, first, epoch.elapsed()))
        }
    });
    gw.subscribe("anxin/v1/dev/+/up/#", QoS::AtLeastOnce)
        .await?;
    tokio::time::timeout(Duration::from_secs(10), sub_rx.recv())
        .await?
        .context("no SUBACK")?;

    let mut tasks = Vec::new();
    for i in 0..publishers {
        let id = format!("dev-{i:03}");
        let mut opts = MqttOptions::new(id.clone(), "127.0.0.1", port);
        opts.set_credentials(id.clone(), "secret")
            .set_inflight(100)
            .set_keep_alive(Duration::from_secs(60));
        let (client, mut event_loop) = AsyncClient::new(opts, 1000);
        let topic = format!("anxin/v1/dev/{id}/up/event");
        tasks.push(tokio::spawn(async move {
            let poller = tokio::spawn(async move {
                let mut acked = 0;
                while acked < per_publisher {
                    match event_loop.poll().await {
                        Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                        Ok(_) => {}
                        Err(e) => anyhow::bail!("publisher failed: {e}"),
                    }
                }
                anyhow::Ok(())
            });
            // Open loop: each publisher sends a batch every 10 ms.
            let batch = (rate / publishers / 100).max(1);
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            for seq in 0..per_publisher as u64 {
                if rate > 0 && seq % batch as u64 == 0 {
                    tick.tick().await;
                }
                let mut payload = Vec::with_capacity(64);
                payload.extend_from_slice(&(epoch.elapsed().as_nanos() as u64).to_be_bytes());
                payload.extend_from_slice(&seq.to_be_bytes());
                payload.resize(64, b'x');
                client
                    .publish(&topic, QoS::AtLeastOnce, false, payload)
                    .await?;
            }
            poller.await?
        }));
    }
    let started = epoch.elapsed();
    let peak_kib = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let peak_kib = peak_kib.clone();
        tokio::spawn(async move {
            loop {
                let now = (rss_mib() * 1024.0) as u64;
                peak_kib.fetch_max(now, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    for t in tasks {
        t.await??;
    }
    // Wait until everything arrived, or nothing moved for 5 s (messages dropped).
    let mut last = (0, Instant::now());
    loop {
        let now = received.load(std::sync::atomic::Ordering::Relaxed);
        if now >= total {
            break;
        }
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(5) {
            let _ = stop_tx.send(());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (mut lat, out_of_order, _first, finished) =
        tokio::time::timeout(Duration::from_secs(30), receiver).await???;
    let rss_peak =
        (peak_kib.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0).max(rss_mib());
    sampler.abort();
    acker.abort();

    anyhow::ensure!(!lat.is_empty(), "nothing received");
    lat.sort_unstable();
    let pct = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)] as f64 / 1e6;
    let secs = (finished - started).as_secs_f64();
    println!(
        "{publishers} publishers x {per_publisher} = {total} QoS 1 msgs (64 B), offered {rate}/s \
         (0 = max), in {secs:.2} s: \
         {:.0} msg/s; latency ms p50 {:.1} p99 {:.1} max {:.1}; out of order {out_of_order}; \
         RSS MiB idle {rss_idle:.0} peak {rss_peak:.0}; broker connections {}; \
         received {}, dropped by the broker {:?}",
        total as f64 / secs,
        pct(0.5),
        pct(0.99),
        pct(1.0),
        stats.connections(),
        lat.len(),
        stats.dropped().collect::<Vec<_>>(),
    );
    assert_eq!(lat.len(), total);
    assert_eq!(out_of_order, 0);
    b.shutdown().await;
    Ok(())
}

/// rumqttd's router thread panicked under a QoS 0 overload and never routed again; this
/// floods rmqtt with QoS 0 towards a subscriber that stops reading, then checks that the
/// broker still routes to a fresh subscriber and still accepts connections.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "load measurement; run explicitly"]
async fn a_qos0_flood_to_a_stalled_subscriber_does_not_stop_routing() -> Result<()> {
    let publishers = env_or("ANXIN_BENCH_PUBLISHERS", 50);
    let per_publisher = env_or("ANXIN_BENCH_MESSAGES", 20_000);
    let creds = Arc::new(DeviceCredentials::new(AuthMode::Open).with_gateway("gw", b"gw"));
    let stats = Arc::new(BrokerStats::new());
    let config = BrokerConfig {
        max_queue: 10_000,
        ..BrokerConfig::loopback()
    };
    let b = broker::start(config, creds, stats).await?;
    let port = b.local_addr().port();

    // A subscriber that reads its SUBACK and then never polls again.
    let mut opts = MqttOptions::new("stalled", "127.0.0.1", port);
    opts.set_credentials("gw", "gw")
        .set_keep_alive(Duration::from_secs(600));
    let (stalled, mut stalled_loop) = AsyncClient::new(opts, 10);
    stalled
        .subscribe("anxin/v1/dev/+/up/#", QoS::AtMostOnce)
        .await?;
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = stalled_loop.poll().await? {
            break;
        }
    }

    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..publishers {
        let id = format!("flood-{i:03}");
        let mut opts = MqttOptions::new(id.clone(), "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(60));
        let (client, mut event_loop) = AsyncClient::new(opts, 1000);
        let topic = format!("anxin/v1/dev/{id}/up/hb");
        tasks.push(tokio::spawn(async move {
            let poller = tokio::spawn(async move {
                loop {
                    match event_loop.poll().await {
                        Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
            });
            for _ in 0..per_publisher {
                client
                    .publish(&topic, QoS::AtMostOnce, false, vec![b'x'; 64])
                    .await?;
            }
            client.disconnect().await?;
            let _ = poller.await;
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let flood_secs = started.elapsed().as_secs_f64();

    // Routing still works for everybody else.
    let mut opts = MqttOptions::new("fresh", "127.0.0.1", port);
    opts.set_credentials("gw", "gw");
    let (fresh, mut fresh_loop) = AsyncClient::new(opts, 10);
    fresh
        .subscribe("anxin/v1/dev/after/up/#", QoS::AtLeastOnce)
        .await?;
    let mut opts = MqttOptions::new("after", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(60));
    let (after, mut after_loop) = AsyncClient::new(opts, 10);
    let after_poller = tokio::spawn(async move { while after_loop.poll().await.is_ok() {} });
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        let mut published = false;
        loop {
            match fresh_loop.poll().await? {
                Event::Incoming(Packet::SubAck(_)) if !published => {
                    after
                        .publish(
                            "anxin/v1/dev/after/up/event",
                            QoS::AtLeastOnce,
                            false,
                            "still routing",
                        )
                        .await?;
                    published = true;
                }
                Event::Incoming(Packet::Publish(p)) => return anyhow::Ok(p),
                _ => {}
            }
        }
    })
    .await??;
    assert_eq!(&got.payload[..], b"still routing");
    println!(
        "QoS 0 flood: {} msgs from {publishers} publishers in {flood_secs:.2} s ({:.0} msg/s) \
         towards a stalled subscriber (queue 10000); routing afterwards: ok; RSS MiB {:.0}",
        publishers * per_publisher,
        (publishers * per_publisher) as f64 / flood_secs,
        rss_mib()
    );
    after_poller.abort();
    drop(stalled_loop);
    b.shutdown().await;
    Ok(())
}
