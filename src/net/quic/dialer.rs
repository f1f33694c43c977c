//! The client side: dials one QUIC connection on a datagram socket and
//! returns the MQTT stream once the handshake is done.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::connection::{DATAGRAM_QUEUE, Driver, Role};
use super::datagram_queue::datagram_queue;
use super::{ClientConfig, DatagramSocket, QuicStream};

/// Dialing failed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// quiche refused the parameters.
    #[error("quic: {0}")]
    Quic(#[from] quiche::Error),
    /// The socket failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// The handshake did not complete in time.
    #[error("no QUIC handshake within {0:?}")]
    Timeout(Duration),
    /// The handshake failed (certificate refused, ALPN mismatch, ...).
    #[error("QUIC handshake failed: {0}")]
    Handshake(String),
}

/// Dials `peer` over `socket` (which this connection then owns) and waits
/// for the handshake; the server must prove the identity `config` names.
pub async fn dial<S: DatagramSocket>(
    socket: S,
    peer: S::Addr,
    mut config: ClientConfig,
    timeout: Duration,
) -> Result<QuicStream, DialError> {
    let socket = Arc::new(socket);
    let local = S::ip_of(&socket.local()?);
    let scid: [u8; quiche::MAX_CONN_ID_LEN] = rand::random();
    let scid = quiche::ConnectionId::from_ref(&scid);
    let conn = quiche::connect(
        config.identity.sni(),
        &scid,
        local,
        S::ip_of(&peer),
        &mut config.quiche,
    )?;
    let (tx, rx) = datagram_queue(DATAGRAM_QUEUE);
    let receiver = socket.clone();
    // Feeds the connection until it ends (its receiver closes).
    tokio::spawn(async move {
        let mut buf = vec![0u8; super::MAX_DATAGRAM];
        let mut errors = 0;
        loop {
            tokio::select! {
                () = tx.closed() => break,
                received = receiver.recv_from(&mut buf) => match received {
                    Ok((n, from)) => {
                        errors = 0;
                        tx.try_send((buf[..n].to_vec(), from));
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "client receive failed");
                        errors += 1;
                        if errors >= super::MAX_RECV_ERRORS {
                            break;
                        }
                    }
                },
            }
        }
    });
    let driver = Box::new(Driver {
        conn,
        socket,
        peer,
        local,
        datagrams: rx,
        role: Role::Client,
    });
    let (handshake_tx, handshake_rx) = oneshot::channel();
    let task = tokio::spawn(driver.run(handshake_tx));
    match tokio::time::timeout(timeout, handshake_rx).await {
        Ok(Ok(Ok((stream, _)))) => Ok(stream),
        // Our own check's words say more than the alert it sent.
        Ok(Ok(Err(reason))) => Err(DialError::Handshake(
            config.report.refusal().unwrap_or(reason),
        )),
        Ok(Err(_)) => Err(DialError::Handshake("connection task ended".into())),
        Err(_) => {
            task.abort();
            Err(DialError::Timeout(timeout))
        }
    }
}
