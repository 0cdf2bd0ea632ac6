//! A small MQTT 3.1.1 client codec for the load generator: it encodes CONNECT, PUBLISH,
//! PUBACK, SUBSCRIBE and PINGREQ straight into a write buffer and parses
//! what a broker sends back, without a per-message allocation. A general client
//! (rumqttc) costs several times the CPU per message, and every microsecond the
//! generator spends is taken from the broker and the gateway on the same two cores.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::LoadError;

/// What a CONNECT says.
#[derive(Debug, Clone)]
pub struct Connect<'a> {
    /// Client id.
    pub client_id: &'a str,
    /// Username and password.
    pub login: Option<(&'a str, &'a [u8])>,
    /// Last will: topic, payload, retained (QoS 1).
    pub will: Option<(&'a str, &'a [u8], bool)>,
    /// Keep-alive in seconds.
    pub keep_alive_s: u16,
    /// Clean session.
    pub clean: bool,
}

fn put_str(buf: &mut Vec<u8>, s: &[u8]) {
    buf.extend_from_slice(&(s.len() as u16).to_be_bytes());
    buf.extend_from_slice(s);
}

fn put_len(buf: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        buf.push(b);
        if n == 0 {
            break;
        }
    }
}

/// Appends a CONNECT packet.
pub fn connect(buf: &mut Vec<u8>, c: &Connect<'_>) {
    let mut body = Vec::with_capacity(64);
    put_str(&mut body, b"MQTT");
    body.push(4);
    let mut flags = 0u8;
    if c.clean {
        flags |= 0x02;
    }
    if let Some((_, _, retain)) = c.will {
        flags |= 0x04 | 0x08; // will, QoS 1
        if retain {
            flags |= 0x20;
        }
    }
    if c.login.is_some() {
        flags |= 0x80 | 0x40;
    }
    body.push(flags);
    body.extend_from_slice(&c.keep_alive_s.to_be_bytes());
    put_str(&mut body, c.client_id.as_bytes());
    if let Some((topic, payload, _)) = c.will {
        put_str(&mut body, topic.as_bytes());
        put_str(&mut body, payload);
    }
    if let Some((user, pass)) = c.login {
        put_str(&mut body, user.as_bytes());
        put_str(&mut body, pass);
    }
    buf.push(0x10);
    put_len(buf, body.len());
    buf.extend_from_slice(&body);
}

/// Appends a PUBLISH whose topic is the concatenation of `topic` parts (QoS 1 when `pid`
/// is given, else QoS 0).
pub fn publish(buf: &mut Vec<u8>, topic: &[&[u8]], pid: Option<u16>, retain: bool, payload: &[u8]) {
    let tlen: usize = topic.iter().map(|t| t.len()).sum();
    let len = 2 + tlen + if pid.is_some() { 2 } else { 0 } + payload.len();
    let mut h = if pid.is_some() { 0x32 } else { 0x30 };
    if retain {
        h |= 0x01;
    }
    buf.push(h);
    put_len(buf, len);
    buf.extend_from_slice(&(tlen as u16).to_be_bytes());
    for t in topic {
        buf.extend_from_slice(t);
    }
    if let Some(p) = pid {
        buf.extend_from_slice(&p.to_be_bytes());
    }
    buf.extend_from_slice(payload);
}

/// Appends a PUBACK.
pub fn puback(buf: &mut Vec<u8>, pid: u16) {
    buf.extend_from_slice(&[0x40, 0x02]);
    buf.extend_from_slice(&pid.to_be_bytes());
}

/// Appends a SUBSCRIBE of `filters` at `qos`.
pub fn subscribe(buf: &mut Vec<u8>, pid: u16, filters: &[&str], qos: u8) {
    let len = 2 + filters.iter().map(|f| 3 + f.len()).sum::<usize>();
    buf.push(0x82);
    put_len(buf, len);
    buf.extend_from_slice(&pid.to_be_bytes());
    for f in filters {
        put_str(buf, f.as_bytes());
        buf.push(qos);
    }
}

/// Appends a PINGREQ.
pub fn pingreq(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&[0xC0, 0x00]);
}

/// A packet from the broker, borrowing the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// CONNACK with its return code (0: accepted).
    ConnAck(u8),
    /// PUBACK of a packet id.
    PubAck(u16),
    /// An incoming PUBLISH.
    Publish {
        /// Packet id when QoS > 0.
        pid: Option<u16>,
        /// Topic.
        topic: &'a [u8],
        /// Payload.
        payload: &'a [u8],
    },
    /// SUBACK: the return codes.
    SubAck(&'a [u8]),
    /// PINGRESP.
    PingResp,
    /// Anything else (ignored).
    Other(u8),
}

/// Parses one packet at the start of `buf`: the packet and its length, or `None` when
/// `buf` does not hold a whole packet yet.
pub fn parse(buf: &[u8]) -> Result<Option<(Packet<'_>, usize)>, LoadError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let mut len = 0usize;
    let mut mul = 1usize;
    let mut i = 1;
    loop {
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        len += usize::from(b & 0x7f) * mul;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        mul *= 128;
        if i > 4 {
            return Err(LoadError::Protocol("remaining length too long"));
        }
    }
    let total = i + len;
    if buf.len() < total {
        return Ok(None);
    }
    let body = &buf[i..total];
    let u16_at = |b: &[u8], at: usize| -> Result<u16, LoadError> {
        match b.get(at..at + 2) {
            Some(s) => Ok(u16::from_be_bytes([s[0], s[1]])),
            None => Err(LoadError::Protocol("short packet")),
        }
    };
    let p = match buf[0] >> 4 {
        2 => Packet::ConnAck(*body.get(1).unwrap_or(&0xff)),
        4 => Packet::PubAck(u16_at(body, 0)?),
        3 => {
            let qos = (buf[0] >> 1) & 0x03;
            let tlen = usize::from(u16_at(body, 0)?);
            let topic = body
                .get(2..2 + tlen)
                .ok_or(LoadError::Protocol("short topic"))?;
            let mut at = 2 + tlen;
            let pid = if qos > 0 {
                let p = u16_at(body, at)?;
                at += 2;
                Some(p)
            } else {
                None
            };
            Packet::Publish {
                pid,
                topic,
                payload: body.get(at..).unwrap_or(&[]),
            }
        }
        9 => Packet::SubAck(body.get(2..).unwrap_or(&[])),
        13 => Packet::PingResp,
        t => Packet::Other(t),
    };
    Ok(Some((p, total)))
}

/// Reads into `buf` (growing it) until at least one whole packet is there.
pub async fn fill(read: &mut OwnedReadHalf, buf: &mut Vec<u8>) -> Result<(), LoadError> {
    let mut chunk = [0u8; 64 * 1024];
    let n = read.read(&mut chunk).await?;
    if n == 0 {
        return Err(LoadError::Closed);
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// Opens a TCP connection, sends CONNECT (and SUBSCRIBE `filters` at `qos`, when any)
/// and waits for the CONNACK (and SUBACK). Returns the two halves and whatever arrived
/// after them.
pub async fn open(
    addr: &str,
    c: &Connect<'_>,
    filters: &[&str],
    qos: u8,
    timeout: Duration,
) -> Result<(OwnedReadHalf, OwnedWriteHalf, Vec<u8>), LoadError> {
    let run = async {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (mut read, mut write) = stream.into_split();
        let mut out = Vec::with_capacity(256);
        connect(&mut out, c);
        if !filters.is_empty() {
            subscribe(&mut out, 1, filters, qos);
        }
        write.write_all(&out).await?;
        let mut buf = Vec::with_capacity(4096);
        let mut connacked = false;
        let mut subacked = filters.is_empty();
        while !(connacked && subacked) {
            fill(&mut read, &mut buf).await?;
            while let Some((p, n)) = parse(&buf)? {
                match p {
                    Packet::ConnAck(0) => connacked = true,
                    Packet::ConnAck(code) => return Err(LoadError::Refused(code)),
                    Packet::SubAck(codes) => {
                        if codes.contains(&0x80) {
                            return Err(LoadError::Protocol("subscription refused"));
                        }
                        subacked = true;
                    }
                    _ => {}
                }
                buf.drain(..n);
                if connacked && subacked {
                    break;
                }
            }
        }
        Ok((read, write, buf))
    };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| LoadError::Timeout("CONNECT"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_round_trips_through_the_parser() {
        let mut buf = Vec::new();
        publish(&mut buf, &[b"a/", b"b"], Some(7), false, b"{}");
        publish(&mut buf, &[b"c"], None, true, &[b'x'; 300]);
        let (p, n) = parse(&buf).unwrap().unwrap();
        assert_eq!(
            p,
            Packet::Publish {
                pid: Some(7),
                topic: b"a/b",
                payload: b"{}"
            }
        );
        let (p, m) = parse(&buf[n..]).unwrap().unwrap();
        assert!(
            matches!(p, Packet::Publish { pid: None, topic: b"c", payload } if payload.len() == 300)
        );
        assert_eq!(n + m, buf.len());
    }

    #[test]
    fn a_partial_packet_waits_for_more_bytes() {
        let mut buf = Vec::new();
        puback(&mut buf, 9);
        assert_eq!(parse(&buf[..3]).unwrap(), None);
        assert_eq!(parse(&buf).unwrap(), Some((Packet::PubAck(9), 4)));
    }
}
