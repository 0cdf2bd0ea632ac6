//! [`TestClient`]: an MQTT 3.1.1 client (rumqttc) for asserting what a broker delivers.
//!
//! Its event loop runs in its own task (publishing from the polling task can deadlock
//! rumqttc), and stops at the first error or after DISCONNECT: no automatic reconnect, so
//! a test sees every connection loss. To prove that a message did *not* arrive, publish a
//! control message after it on the same connection and check that the control message
//! is the next one the subscriber gets.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, LastWill, MqttOptions, Outgoing,
    Packet, Publish, QoS, SubscribeReasonCode,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// How long a single wait (CONNACK, SUBACK, PUBACK, next message) may take.
pub const STEP: Duration = Duration::from_secs(5);

/// How to connect.
#[derive(Debug, Clone)]
pub struct ClientOpts {
    /// MQTT client id.
    pub client_id: String,
    /// Username and password.
    pub login: Option<(String, String)>,
    /// `clean_session` (default true).
    pub clean_session: bool,
    /// Last will.
    pub will: Option<LastWill>,
}

impl ClientOpts {
    /// A clean-session client without credentials.
    pub fn new(client_id: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            login: None,
            clean_session: true,
            will: None,
        }
    }

    /// With a username and password.
    pub fn login(mut self, username: &str, password: &str) -> Self {
        self.login = Some((username.to_owned(), password.to_owned()));
        self
    }

    /// A device: username = client id = `device_id`.
    pub fn device(device_id: &str, secret: &str) -> Self {
        Self::new(device_id).login(device_id, secret)
    }

    /// `clean_session = false`.
    pub fn persistent(mut self) -> Self {
        self.clean_session = false;
        self
    }

    /// With a last will.
    pub fn will(mut self, will: LastWill) -> Self {
        self.will = Some(will);
        self
    }
}

#[derive(Debug)]
enum Ev {
    Packet(Packet),
    Refused(ConnectReturnCode),
    Closed(String),
}

/// A connected client (see the module documentation).
#[derive(Debug)]
pub struct TestClient {
    /// The rumqttc handle, for anything the helpers do not cover.
    pub client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Ev>,
    backlog: VecDeque<Packet>,
    task: JoinHandle<()>,
}

impl TestClient {
    /// Connects; an error if the broker refuses (the code is in the message) or does not
    /// answer within [`STEP`].
    pub async fn connect(host: &str, port: u16, opts: ClientOpts) -> Result<TestClient> {
        match Self::try_connect(host, port, opts).await? {
            Ok(c) => Ok(c),
            Err(code) => bail!("connection refused: {code:?}"),
        }
    }

    /// Connects; `Ok(Err(code))` if the broker refused with a CONNACK code.
    pub async fn try_connect(
        host: &str,
        port: u16,
        opts: ClientOpts,
    ) -> Result<std::result::Result<TestClient, ConnectReturnCode>> {
        let mut o = MqttOptions::new(opts.client_id, host, port);
        o.set_clean_session(opts.clean_session)
            .set_keep_alive(Duration::from_secs(30));
        if let Some((u, p)) = opts.login {
            o.set_credentials(u, p);
        }
        if let Some(w) = opts.will {
            o.set_last_will(w);
        }
        let (client, mut event_loop) = AsyncClient::new(o, 1000);
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let ev = match event_loop.poll().await {
                    Ok(Event::Incoming(p)) => Ev::Packet(p),
                    // rumqttc keeps the socket open after DISCONNECT until polling stops.
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => Ev::Closed("disconnected".into()),
                    Ok(Event::Outgoing(_)) => continue,
                    Err(ConnectionError::ConnectionRefused(code)) => Ev::Refused(code),
                    Err(e) => Ev::Closed(e.to_string()),
                };
                let last = !matches!(ev, Ev::Packet(_));
                if tx.send(ev).is_err() || last {
                    return;
                }
            }
        });
        let mut c = TestClient {
            client,
            rx,
            backlog: VecDeque::new(),
            task,
        };
        match timeout(STEP, c.rx.recv()).await.context("no CONNACK")? {
            Some(Ev::Packet(Packet::ConnAck(_))) => Ok(Ok(c)),
            Some(Ev::Refused(code)) => Ok(Err(code)),
            other => bail!("unexpected first event {other:?}"),
        }
    }

    /// The next packet for which `want` is true; other packets are kept for later calls.
    pub async fn next_where(&mut self, want: impl Fn(&Packet) -> bool) -> Result<Packet> {
        if let Some(i) = self.backlog.iter().position(&want) {
            return self.backlog.remove(i).context("backlog");
        }
        loop {
            match timeout(STEP, self.rx.recv()).await.context("timed out")? {
                Some(Ev::Packet(p)) if want(&p) => return Ok(p),
                Some(Ev::Packet(p)) => self.backlog.push_back(p),
                other => bail!("connection ended: {other:?}"),
            }
        }
    }

    /// The next PUBLISH received.
    pub async fn next_publish(&mut self) -> Result<Publish> {
        match self.next_where(|p| matches!(p, Packet::Publish(_))).await? {
            Packet::Publish(p) => Ok(p),
            other => bail!("not a publish: {other:?}"),
        }
    }

    /// Subscribes at QoS 1; returns the SUBACK code.
    pub async fn subscribe(&mut self, filter: &str) -> Result<SubscribeReasonCode> {
        self.client.subscribe(filter, QoS::AtLeastOnce).await?;
        match self.next_where(|p| matches!(p, Packet::SubAck(_))).await? {
            Packet::SubAck(ack) => ack.return_codes.first().copied().context("empty SUBACK"),
            other => bail!("not a SUBACK: {other:?}"),
        }
    }

    /// Publishes at QoS 1 and waits for the PUBACK (which, under MQTT 3.1.1, mosquitto
    /// also sends for a publish its ACL denied).
    pub async fn publish(&mut self, topic: &str, payload: &[u8], retain: bool) -> Result<()> {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.to_vec())
            .await?;
        self.next_where(|p| matches!(p, Packet::PubAck(_))).await?;
        Ok(())
    }

    /// Waits until the connection ends (closed by the broker, or after
    /// [`disconnect`](Self::disconnect)); returns why.
    pub async fn closed(&mut self) -> Result<String> {
        loop {
            match timeout(STEP, self.rx.recv())
                .await
                .context("still connected")?
            {
                Some(Ev::Packet(p)) => self.backlog.push_back(p),
                Some(Ev::Closed(why)) => return Ok(why),
                Some(Ev::Refused(code)) => return Ok(format!("refused: {code:?}")),
                None => return Ok("event loop ended".into()),
            }
        }
    }

    /// Sends DISCONNECT (no last will) and waits until the socket is closed.
    pub async fn disconnect(mut self) -> Result<()> {
        self.client.disconnect().await?;
        self.closed().await?;
        Ok(())
    }

    /// Drops the TCP connection without DISCONNECT, as a device losing power does (the
    /// broker then publishes the last will).
    pub fn kill(self) {
        self.task.abort();
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}
