//! One s-proxy session: the CONNECT from the r-proxy, the broker
//! connection, both directions pumped until either side ends, and the end
//! itself (a FIN the broker reads to the last packet; on a resumable line,
//! TERMINATE and its acknowledgement).

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use tokio::time::timeout;
use tonic::Status;
use tracing::{Instrument, debug, info, warn};

use super::{MODE, SProxyConfig};
use crate::line::convert::{connack_server_unavailable, disconnect_server_shutting_down};
use crate::line::proto::mqtt::MessageDirection;
use crate::line::resume::{Link, LinkReceiver, LinkSender, envelopes};
use crate::line::server::read_connect;
use crate::line::{
    InboundEnd, OutboundEnd, Traffic, envelope, pump_envelopes_noting_disconnect,
    pump_reader_to_envelopes,
};
use crate::mqtt::{self, PacketReader, Version};
use crate::net::broker::BrokerConnector;
use crate::net::connector::BoxedStream;
use crate::net::counted::{self, CountedReader, CountedWriter};
use crate::net::woken::OnWake;
use crate::ops::session_span::SessionSpan;
use crate::ops::telemetry::{METRICS, SessionGuard};
use crate::service::frame::Ending;

/// A session's side of the gRPC line.
pub(super) struct Line {
    pub sender: LinkSender,
    pub receiver: LinkReceiver,
    /// Set when the session is resumable.
    pub link: Option<Link>,
}

impl Line {
    /// Ends the line: on a resumable one, TERMINATE and (bounded) its
    /// acknowledgement or the r-proxy's own TERMINATE, so a break now is not
    /// taken for a resume to wait for; a plain one half-closes. When the
    /// r-proxy has ended its side (`peer_done`) it acknowledges nothing
    /// more, and nothing is awaited: it is not going to resume.
    async fn end(&mut self, sequence_id: &mut u64, within: std::time::Duration, peer_done: bool) {
        if let Some(link) = &self.link {
            let end = envelope(
                sequence_id,
                MessageDirection::BrokerToClient,
                envelopes::terminate(),
            );
            let said = link.terminate(&mut self.sender, end, &mut self.receiver, peer_done);
            if timeout(within, said).await.is_err() {
                warn!("the r-proxy did not acknowledge the end of the session in time");
            }
            link.close();
        }
        self.sender.finish();
    }
}

/// The broker's side of an opened session: what relaying needs, and
/// nothing of the opening (the CONNECT), so that the task that relays,
/// mostly idle, does not keep room for it.
struct Broker {
    version: Version,
    reader: PacketReader<CountedReader<BoxedStream>>,
    wr: CountedWriter<BoxedStream>,
    session: SessionGuard,
    opened_at: Instant,
}

/// Runs one session. `line` is boxed: a future keeps its async fn's
/// arguments twice, and the task spawning it a third time.
/// Its log lines are in the session's span, made by `log` for the opening
/// and for the end.
pub(super) async fn run_session(
    mut line: Box<Line>,
    config: &SProxyConfig,
    connector: &BrokerConnector,
    client: SocketAddr,
    ending: Arc<Ending>,
    log: &SessionSpan,
) {
    let mut sequence_id = 0;
    // Boxed: the opening's state is freed once the session relays.
    let opened = Box::pin(open(&mut line, &mut sequence_id, config, connector, client))
        .instrument(log.span())
        .await;
    if let Some(broker) = opened {
        relay(line, broker, sequence_id, config, ending, log).await;
    }
}

/// What ended a relayed session, first seen on either side.
enum FirstEnd {
    /// Writing the r-proxy's envelopes to the broker ended.
    ToBroker(OutboundEnd),
    /// Reading the broker's packets ended.
    FromBroker(InboundEnd),
    Shutdown,
}

/// Takes the CONNECT from the r-proxy and opens the broker connection with
/// it; `None` when the session does not come about (the r-proxy has been
/// answered).
async fn open(
    line: &mut Line,
    sequence_id: &mut u64,
    config: &SProxyConfig,
    connector: &BrokerConnector,
    client: SocketAddr,
) -> Option<Box<Broker>> {
    let (version, connect) = match timeout(
        config.connect_timeout_ms.duration(),
        read_connect(&mut line.receiver),
    )
    .await
    {
        Ok(Ok(first)) => first,
        Ok(Err(status)) => {
            METRICS.refused(MODE, "malformed_first_packet");
            debug!(%status, "session refused");
            line.sender.end_with(status).await;
            return None;
        }
        Err(_) => {
            METRICS.refused(MODE, "connect_timeout");
            let status = Status::deadline_exceeded("no CONNECT in time");
            line.sender.end_with(status).await;
            return None;
        }
    };
    if let Some(link) = &line.link {
        link.set_session(version, mqtt::keep_alive(&connect));
    }
    let drain = config.drain_timeout_ms.duration();
    let connecting = Instant::now();
    let broker = match connector
        .connect_within(client, config.broker_connect_timeout_ms.duration())
        .await
    {
        Ok(stream) => stream,
        Err(reason) => {
            warn!(broker = %config.broker, %reason, "broker unreachable");
            METRICS.upstream_error(MODE, &config.broker.to_string());
            METRICS.refused(MODE, "upstream_unavailable");
            refuse_unavailable(line, version, sequence_id, drain).await;
            return None;
        }
    };
    METRICS.connected_after(MODE, connecting.elapsed());
    let session = METRICS.session(MODE);
    info!(broker = %config.broker, %version, resumable = line.link.is_some(), "session open");
    let (broker_rd, mut broker_wr) = counted::split(broker);
    let mut connect_bytes = bytes::BytesMut::new();
    mqtt::encode(&connect, &mut connect_bytes);
    if let Err(e) = tokio::io::AsyncWriteExt::write_all(&mut broker_wr, &connect_bytes).await {
        warn!(error = %e, "writing CONNECT to broker failed");
        refuse_unavailable(line, version, sequence_id, drain).await;
        return None;
    }
    Some(Box::new(Broker {
        version,
        reader: PacketReader::new(broker_rd, config.max_packet_size.get()),
        wr: broker_wr,
        session,
        opened_at: connecting,
    }))
}

/// Relays an opened session until it ends on either side. `broker` is
/// boxed and stays so (the future holds references into it, not its
/// fields): what an idle session's task keeps is smaller by their size.
async fn relay(
    mut line: Box<Line>,
    mut broker: Box<Broker>,
    mut sequence_id: u64,
    config: &SProxyConfig,
    ending: Arc<Ending>,
    log: &SessionSpan,
) {
    let Broker {
        version,
        reader,
        wr: broker_wr,
        session,
        opened_at,
    } = &mut *broker;
    let version = *version;
    let drain = config.drain_timeout_ms.duration();
    // Set once the client's DISCONNECT has gone to the broker: the broker
    // closing after it is the client's doing (it may come before the
    // r-proxy's end of the stream).
    let mut client_disconnected = false;
    let first = async {
        let Line {
            sender, receiver, ..
        } = &mut *line;
        let from_broker = broker_to_client(reader, version, &mut sequence_id, sender);
        let to_broker = pump_envelopes_noting_disconnect(
            receiver,
            broker_wr,
            version,
            Traffic {
                mode: MODE,
                direction: MessageDirection::ClientToBroker,
            },
            &mut client_disconnected,
        );
        // Each pump is polled only when something woke it: a message one
        // way wakes the task, and the other pump is not looked at.
        let (to_broker, from_broker) = (pin!(to_broker), pin!(from_broker));
        tokio::select! {
            // In order, without drawing a random number on every wake-up.
            biased;
            end = OnWake::new(to_broker) => FirstEnd::ToBroker(end),
            end = OnWake::new(from_broker) => FirstEnd::FromBroker(end),
            () = ending.wait() => FirstEnd::Shutdown,
        }
    }
    .instrument(log.relaying())
    .await;
    // The session ends: its lines from here on are in its span.
    async {
        // Set when the r-proxy ended the session: the broker gets a FIN
        // rather than a close (see below).
        let mut closing_after_client = false;
        // Set when the r-proxy finished its side of the stream.
        let mut r_proxy_done = false;
        // Set when the session ends with an error the r-proxy is told.
        let mut failure = None;
        match first {
            FirstEnd::ToBroker(end) => {
                closing_after_client =
                    matches!(end, OutboundEnd::Finished | OutboundEnd::Failed(_));
                r_proxy_done = matches!(end, OutboundEnd::Finished);
                session.close_reason(match &end {
                    OutboundEnd::Finished => "client_closed",
                    OutboundEnd::Failed(_) => "client_lost",
                    OutboundEnd::Invalid(_) => "client_bad_packet",
                    OutboundEnd::Io(_) => "broker_error",
                });
                match end {
                    OutboundEnd::Finished => debug!("r-proxy ended the stream"),
                    OutboundEnd::Failed(status) => debug!(%status, "r-proxy stream failed"),
                    OutboundEnd::Invalid(e) => {
                        warn!(error = %e, "invalid packet from r-proxy");
                        failure = Some(Status::invalid_argument(e.to_string()));
                    }
                    OutboundEnd::Io(e) => debug!(error = %e, "writing to broker failed"),
                }
            }
            FirstEnd::FromBroker(end) => {
                session.close_reason(match &end {
                    InboundEnd::Eof if client_disconnected => "client_closed",
                    InboundEnd::Eof | InboundEnd::Disconnected => "broker_closed",
                    InboundEnd::Codec(_) => "broker_bad_packet",
                    InboundEnd::Io(_) => "broker_error",
                    InboundEnd::QueueClosed => "client_lost",
                });
                match end {
                    InboundEnd::Eof | InboundEnd::Disconnected => debug!("broker closed"),
                    InboundEnd::Codec(e) => {
                        warn!(error = %e, "bad packet from broker");
                        failure = Some(Status::internal(format!("broker sent {e}")));
                    }
                    InboundEnd::Io(e) => debug!(error = %e, "reading from broker failed"),
                    InboundEnd::QueueClosed => debug!("r-proxy stopped reading"),
                }
            }
            FirstEnd::Shutdown => {
                session.close_reason("shutdown");
                if version == Version::V5 {
                    let goodbye = envelope(
                        &mut sequence_id,
                        MessageDirection::BrokerToClient,
                        disconnect_server_shutting_down(),
                    );
                    // Read meanwhile, for the acknowledgements that make
                    // room for it; an r-proxy that ended the session too
                    // (its TERMINATE) is waited for no more.
                    let send = line.sender.send(goodbye.into(), 0);
                    if let Ok(None) = timeout(drain, line.receiver.read_while(send)).await {
                        r_proxy_done = true;
                    }
                }
            }
        }
        if let Some(status) = failure {
            line.sender.end_with(status).await;
        }
        // Everything the r-proxy sent has been written; a FIN tells the
        // broker the client is gone.
        let _ = tokio::io::AsyncWriteExt::shutdown(broker_wr).await;
        if closing_after_client {
            // The broker may not have read the client's last packets yet
            // (say, retained-message deletions and a DISCONNECT). Closing
            // now, with its answers arriving unread, would reset the
            // connection, and the broker would drop what it had not read. So
            // read on (passing what comes to the client, as a broker's own
            // connection would) until the broker closes its side, which it
            // does once it has read everything.
            let rest = broker_to_client(reader, version, &mut sequence_id, &mut line.sender);
            if timeout(drain, rest).await.is_err() {
                debug!("the broker did not close its side within drain_timeout_ms");
            }
        }
        line.end(&mut sequence_id, drain, r_proxy_done).await;
        let counts = broker_wr.counts();
        info!(
            reason = session.reason(),
            duration_ms = opened_at.elapsed().as_millis() as u64,
            bytes_to_broker = counts.written,
            bytes_from_broker = counts.read,
            "session closed"
        );
    }
    .instrument(log.span())
    .await;
}

/// Pumps the broker's packets to the r-proxy until the broker's side ends.
async fn broker_to_client<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut PacketReader<R>,
    version: Version,
    sequence_id: &mut u64,
    line: &mut LinkSender,
) -> InboundEnd {
    pump_reader_to_envelopes(
        reader,
        version,
        MODE,
        MessageDirection::BrokerToClient,
        sequence_id,
        line,
    )
    .await
}

/// Tells the client the broker cannot be reached (CONNACK "server
/// unavailable") and ends the session.
async fn refuse_unavailable(
    line: &mut Line,
    version: Version,
    sequence_id: &mut u64,
    within: std::time::Duration,
) {
    let message = envelope(
        sequence_id,
        MessageDirection::BrokerToClient,
        connack_server_unavailable(version),
    );
    let _ = timeout(within, line.sender.send(message.into(), 0)).await;
    line.end(sequence_id, within, false).await;
}
