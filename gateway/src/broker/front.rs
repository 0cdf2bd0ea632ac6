//! The front door of the embedded broker's plain TCP listener: it accepts connections,
//! reads each client's first packet, which must be a whole CONNECT, within
//! [`BrokerConfig::connect_timeout`](super::BrokerConfig::connect_timeout), and only then
//! hands the connection to rmqtt (on a loopback listener, behind a PROXY protocol v1
//! header that carries the client's real address), splicing the two sockets.
//!
//! Why: rmqtt 0.24 waits for a client's first bytes with no time limit (its version
//! probe runs before its handshake timeout starts), so sockets that never send CONNECT
//! stayed open for ever, each holding a task and buffers. Here a socket that is silent,
//! too slow or sends anything but a CONNECT is closed at the deadline, and at most
//! [`MAX_HANDSHAKES`] connections are read at once. Connections beyond that wait for a
//! turn within the same deadline (a reconnect storm of thousands of devices after a
//! restart connects as fast as the handshakes go, instead of being refused and backing
//! off); only past [`MAX_WAITING`] waiting connections are they closed at once, counted
//! as `busy`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::stats::{BrokerStats, HandshakeRefusal};

/// Most connections whose CONNECT is being read at the same time.
pub const MAX_HANDSHAKES: usize = 1024;

/// Most connections waiting for a turn to be read (a socket and a small task each; each
/// one is closed at the CONNECT deadline at the latest).
pub const MAX_WAITING: usize = 16 * MAX_HANDSHAKES;

/// MQTT control packet type CONNECT in the first byte's high nibble, flags zero.
const CONNECT: u8 = 0x10;

/// Accepts on `listener` until the task is aborted; passes each connection that sent a
/// CONNECT within `timeout` (at most `max_packet` bytes) to `inner`.
pub async fn run(
    listener: TcpListener,
    inner: SocketAddr,
    timeout: Duration,
    max_packet: usize,
    stats: Arc<BrokerStats>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let waiting = Arc::new(Semaphore::new(MAX_WAITING));
    loop {
        let (socket, remote) = match listener.accept().await {
            Ok(c) => c,
            Err(error) => {
                // Out of file descriptors and the like: let the system breathe.
                tracing::warn!(%error, "Broker accept failed.");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(queued) = waiting.clone().try_acquire_owned() else {
            stats.count_handshake_refused(HandshakeRefusal::Busy);
            drop(socket);
            continue;
        };
        let stats = stats.clone();
        let handshakes = handshakes.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let permit = match tokio::time::timeout_at(deadline, handshakes.acquire_owned()).await {
                Ok(Ok(p)) => p,
                _ => {
                    stats.count_handshake_refused(HandshakeRefusal::Busy);
                    return;
                }
            };
            drop(queued);
            let mut socket = socket;
            let _ = socket.set_nodelay(true);
            let first = match tokio::time::timeout_at(
                deadline,
                read_connect(&mut socket, max_packet),
            )
            .await
            {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(refusal)) => {
                    stats.count_handshake_refused(refusal);
                    return;
                }
                Err(_) => {
                    stats.count_handshake_refused(HandshakeRefusal::Timeout);
                    return;
                }
            };
            drop(permit);
            splice(socket, remote, inner, first).await;
        });
    }
}

/// Reads exactly the first packet, which must be a CONNECT of at most `max_packet` bytes.
async fn read_connect(
    socket: &mut TcpStream,
    max_packet: usize,
) -> Result<Vec<u8>, HandshakeRefusal> {
    let closed = |_| HandshakeRefusal::NotConnect;
    let mut out = Vec::with_capacity(64);
    let kind = socket.read_u8().await.map_err(closed)?;
    if kind != CONNECT {
        return Err(HandshakeRefusal::NotConnect);
    }
    out.push(kind);
    // Remaining length: at most four bytes, seven bits each, low first.
    let mut len: usize = 0;
    for shift in [0, 7, 14, 21] {
        let b = socket.read_u8().await.map_err(closed)?;
        out.push(b);
        len |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        if shift == 21 {
            return Err(HandshakeRefusal::NotConnect);
        }
    }
    if len + out.len() > max_packet {
        return Err(HandshakeRefusal::NotConnect);
    }
    let start = out.len();
    out.resize(start + len, 0);
    socket.read_exact(&mut out[start..]).await.map_err(closed)?;
    Ok(out)
}

/// The PROXY protocol v1 line announcing `remote` to rmqtt at `inner`.
fn proxy_header(remote: SocketAddr, inner: SocketAddr) -> String {
    match remote.ip() {
        IpAddr::V4(ip) => format!(
            "PROXY TCP4 {ip} 127.0.0.1 {} {}\r\n",
            remote.port(),
            inner.port()
        ),
        IpAddr::V6(ip) => format!("PROXY TCP6 {ip} ::1 {} {}\r\n", remote.port(), inner.port()),
    }
}

/// Connects to rmqtt, sends the PROXY line and the CONNECT in one write, then copies both
/// ways until either side closes.
async fn splice(mut client: TcpStream, remote: SocketAddr, inner: SocketAddr, first: Vec<u8>) {
    let mut broker = match TcpStream::connect(inner).await {
        Ok(s) => s,
        Err(error) => {
            tracing::warn!(%error, %remote, "Embedded broker unreachable from its front.");
            return;
        }
    };
    let _ = broker.set_nodelay(true);
    let mut hello = proxy_header(remote, inner).into_bytes();
    hello.extend_from_slice(&first);
    if broker.write_all(&hello).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_line_names_the_client_and_the_inner_port() {
        let inner: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(
            proxy_header("192.168.1.7:5555".parse().unwrap(), inner),
            "PROXY TCP4 192.168.1.7 127.0.0.1 5555 4000\r\n"
        );
        assert_eq!(
            proxy_header("[fe80::1]:5555".parse().unwrap(), inner),
            "PROXY TCP6 fe80::1 ::1 5555 4000\r\n"
        );
    }
}
