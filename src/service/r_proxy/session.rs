//! One r-proxy connection: its CONNECT, the stream to an s-proxy (resumable
//! when granted), both directions pumped independently, and the end, first
//! seen on either side, each told to the other as it expects.

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::time::timeout;
use tracing::{Instrument, debug, info, warn};

use super::takeover::{TakeoverWriter, newer_connection};
use super::{Held, Live, MODE, Shared};
use crate::line::convert::packet_to_payload;
use crate::line::proto::mqtt::mqtt_stream_message::Payload;
use crate::line::proto::mqtt::session_control::ControlType;
use crate::line::proto::mqtt::{MessageDirection, SessionControl};
use crate::line::resume::{End, Link, LinkReceiver, LinkSender, envelopes, keep_edge};
use crate::line::{
    InboundEnd, OutboundEnd, Traffic, envelope, pump_envelopes_to_writer, pump_reader_to_envelopes,
};
use crate::line::{Opened, new_session_id};
use crate::mqtt::{ClientConnect, PacketReader, receive_connect};
use crate::mqtt::{Version, client_id, replies};
use crate::net::connector::BoxedStream;
use crate::net::counted::{self, CountedReader, CountedWriter};
use crate::net::woken::OnWake;
use crate::ops::session_span::SessionSpan;
use crate::ops::telemetry::{METRICS, SessionGuard};

/// When a session ends here (shutdown, takeover) on a resumable line, how
/// long to spend telling the s-proxy so (TERMINATE and its acknowledgement).
const TERMINATE_WITHIN: Duration = Duration::from_secs(1);

/// How long a connection whose broker side ended waits for a newer
/// connection of its client id (already waiting for its CONNACK) to take it
/// over; the broker answers that CONNACK right after closing this one.
const TAKEOVER_GRACE: Duration = Duration::from_millis(500);

/// What ended a relayed connection, first seen on either side.
enum FirstEnd {
    Client(InboundEnd),
    Upstream(OutboundEnd),
    Shutdown,
    /// A newer connection of the same client id was accepted.
    TakenOver,
}

/// A session opened on both sides: what relaying it needs, and nothing of
/// the opening (the CONNECT, the stream's set-up), so that the task that
/// relays, mostly idle, does not keep room for it.
struct Relaying {
    version: Version,
    reader: PacketReader<CountedReader<BoxedStream>>,
    wr: CountedWriter<BoxedStream>,
    client_id: String,
    session_id: String,
    /// The last sequence number sent to the s-proxy.
    sequence_id: u64,
    line: LinkSender,
    inbound: LinkReceiver,
    /// Set when the session is resumable.
    link: Option<Link>,
    session: SessionGuard,
    arrival: Arrival,
    /// Makes the session's span, for the end's log lines.
    log: SessionSpan,
}

/// What a connection brings from its acceptance to its session's end.
pub(super) struct Arrival {
    pub began: Instant,
    /// The client's TCP socket under any TLS or WebSocket layer (for
    /// session takeover); `None` for QUIC.
    pub client_socket: Option<RawFd>,
    pub shared: Arc<Shared>,
    pub live: Arc<Live>,
    /// The connection's place in the limits, kept until the session ends.
    pub _held: Held,
}

/// Relays one client connection. The relaying runs in a task of its own,
/// sized for relaying alone: this one, which also had room for the
/// opening, ends once the session is open. The session's log lines are in
/// the span `log` makes, for the opening (the caller's) and for the end.
pub(super) async fn serve_client(
    stream: BoxedStream,
    peer: SocketAddr,
    arrival: Arrival,
    log: SessionSpan,
) {
    if let Some(relaying) = open(stream, peer, arrival, log).await {
        tokio::spawn(relay(relaying));
    }
}

/// Reads the client's CONNECT and opens the stream to an s-proxy; `None`
/// when the session does not come about (the client has been answered).
/// Its steps are boxed, so that the session task keeps no room for them.
async fn open(
    stream: BoxedStream,
    peer: SocketAddr,
    arrival: Arrival,
    log: SessionSpan,
) -> Option<Box<Relaying>> {
    let live = &arrival.live;
    let config = &live.config;
    let (mut rd, mut wr) = counted::split(stream);
    let ClientConnect {
        version,
        packet: connect,
        ..
    } = match Box::pin(receive_connect(
        &mut rd,
        &mut wr,
        config.connect_timeout_ms.duration(),
        config.max_packet_size.get(),
    ))
    .await
    {
        Ok(connect) => connect,
        Err(no_connect) => {
            if let Some(reason) = no_connect.refusal_reason() {
                METRICS.refused(MODE, reason);
            }
            return None;
        }
    };
    let reader = PacketReader::new(rd, config.max_packet_size.get());
    let client_id = client_id(&connect).to_string();

    let session_id = new_session_id();
    let mut sequence_id = 0;
    let establish = match version {
        Version::V3_1_1 => ControlType::Establishv3,
        Version::V5 => ControlType::Establishv5,
    };
    let opening = vec![
        envelope(
            &mut sequence_id,
            MessageDirection::ClientToBroker,
            Payload::SessionControl(SessionControl {
                control_type: establish as i32,
                client_id: client_id.clone(),
            }),
        ),
        envelope(
            &mut sequence_id,
            MessageDirection::ClientToBroker,
            packet_to_payload(&connect),
        ),
    ];
    drop(connect);
    let connecting = Instant::now();
    let offer_resume = (!config.no_resume).then(|| config.replay_buffer_bytes.get());
    let opened =
        Box::pin(
            live.upstreams
                .open(&session_id, peer, &client_id, &opening, offer_resume),
        )
        .await;
    let Opened {
        outlet,
        inbound,
        endpoint,
        resume_token,
        peer_replay_bytes,
    } = match opened {
        Ok(opened) => opened,
        Err(e) => {
            METRICS.refused(MODE, "upstream_unavailable");
            warn!(reason = %e.last.message(), "no s-proxy accepted the session");
            replies::refuse_server_unavailable(&mut wr, version).await;
            return None;
        }
    };
    METRICS.connected_after(MODE, connecting.elapsed());
    let session = METRICS.session(MODE);
    info!(session = %session_id, client_id = %client_id, %version,
          resumable = resume_token.is_some(), "relaying");
    let (line, inbound, link) = match resume_token {
        Some(token) => {
            let link = Link::new(
                End::Edge,
                version,
                MODE,
                config.replay_buffer_bytes.get(),
                peer_replay_bytes,
                outlet,
                inbound,
            );
            link.sent_before(&opening);
            let live = live.clone();
            keep_edge(
                &link,
                MODE,
                config.resume_window_ms.duration(),
                token,
                log.clone(),
                move |token, received| {
                    let (live, endpoint) = (live.clone(), endpoint.clone());
                    async move { live.upstreams.resume(&endpoint, &token, received).await }
                },
            );
            (
                LinkSender::resumable(&link),
                LinkReceiver::resumable(&link),
                Some(link),
            )
        }
        None => (
            LinkSender::Plain(Some(outlet)),
            LinkReceiver::Plain(Box::new(inbound)),
            None,
        ),
    };
    Some(Box::new(Relaying {
        version,
        reader,
        wr,
        client_id,
        session_id,
        sequence_id,
        line,
        inbound,
        link,
        session,
        arrival,
        log,
    }))
}

/// Relays an opened session until it ends on either side. `relaying` stays
/// boxed for the session's life, and is all the future takes: a future
/// keeps its arguments apart from the locals taken out of them.
async fn relay(mut relaying: Box<Relaying>) {
    let Relaying {
        version,
        reader,
        wr,
        client_id,
        session_id,
        sequence_id,
        line,
        inbound,
        link,
        session,
        arrival,
        log,
    } = &mut *relaying;
    let version = *version;
    let Arrival {
        began,
        client_socket,
        shared,
        live,
        _held,
    } = arrival;
    let (began, client_socket) = (*began, *client_socket);
    let config = &live.config;
    // Older connections of this client id are closed right before a
    // successful CONNACK is written, as the broker closed them
    // (see takeover.rs). The ticket is declared after `reader`, whose read
    // half keeps the socket open until the ticket has left the table.
    let (_ticket, acceptance, mut taken_over) =
        match shared.takeovers.ticket(client_id, client_socket) {
            Some(entry) => (
                Some(entry.ticket),
                Some(entry.acceptance),
                Some(entry.taken_over),
            ),
            None => (None, None, None),
        };
    let mut wr = TakeoverWriter::new(wr, acceptance);

    // Ended here (shutdown, takeover) on a resumable line: the s-proxy is
    // told, rather than left holding the session for a resume window.
    let mut tell_s_proxy = false;
    // The session's span, made once relaying is over: the end's lines are
    // in it.
    let end_span;
    // What an MQTT 5 client is told when the relay ends on our side.
    let farewell: Option<Vec<u8>> = {
        let to_client = pump_envelopes_to_writer(
            inbound,
            &mut wr,
            version,
            Traffic {
                mode: MODE,
                direction: MessageDirection::BrokerToClient,
            },
        );
        tokio::pin!(to_client);
        let first = async {
            let to_upstream = pump_reader_to_envelopes(
                reader,
                version,
                MODE,
                MessageDirection::ClientToBroker,
                sequence_id,
                line,
            );
            let newer_connection = newer_connection(&mut taken_over);
            // Each pump is polled only when something woke it: a message
            // one way wakes the task, and the other pump is not looked at.
            let to_upstream = pin!(to_upstream);
            tokio::select! {
                // In order, without drawing a random number on every
                // wake-up.
                biased;
                end = OnWake::new(to_upstream) => FirstEnd::Client(end),
                end = OnWake::new(to_client.as_mut()) => FirstEnd::Upstream(end),
                () = shared.ending.wait() => FirstEnd::Shutdown,
                true = newer_connection => FirstEnd::TakenOver,
            }
        }
        .instrument(log.relaying())
        .await;
        end_span = log.span();
        async {
            match first {
                FirstEnd::Client(end) => {
                    debug!(?end, "client side ended");
                    session.close_reason(match end {
                        InboundEnd::Eof | InboundEnd::Disconnected => "client_closed",
                        InboundEnd::Codec(_) => "client_bad_packet",
                        InboundEnd::Io(_) => "client_error",
                        InboundEnd::QueueClosed => "upstream_lost",
                    });
                    // The s-proxy writes what it has, closes the broker
                    // connection and ends its stream: told by a half-close, or
                    // on a resumable line by TERMINATE (a break is no end).
                    // The pump to the client reads the line meanwhile, where
                    // the acknowledgements arrive that make room for the
                    // TERMINATE when the replay buffer is full.
                    let drain = config.drain_timeout_ms.duration();
                    let tell = async {
                        if line.is_resumable() {
                            let end = envelope(
                                sequence_id,
                                MessageDirection::ClientToBroker,
                                envelopes::terminate(),
                            );
                            let _ = timeout(drain, line.send(end.into(), 0)).await;
                        }
                        line.finish();
                    };
                    let ((), confirmed) = tokio::join!(tell, timeout(drain, &mut to_client));
                    if confirmed.is_err() {
                        warn!("s-proxy did not confirm the end of the session in time");
                    }
                    match end {
                        InboundEnd::Codec(e) => {
                            Some(replies::disconnect_v5(e.v5_reason_code()).to_vec())
                        }
                        _ => None,
                    }
                }
                FirstEnd::Shutdown => {
                    session.close_reason("shutdown");
                    tell_s_proxy = true;
                    Some(replies::disconnect_v5(replies::REASON_SERVER_SHUTTING_DOWN).to_vec())
                }
                FirstEnd::TakenOver => {
                    // The client socket is shut down already; the broker has
                    // closed this connection's side too.
                    debug!("taken over by a newer connection of the same client id");
                    tell_s_proxy = true;
                    session.close_reason("taken_over");
                    None
                }
                FirstEnd::Upstream(end) => {
                    debug!(?end, "s-proxy side ended");
                    // Taken over, most likely: the newer connection closes this
                    // one right before its CONNACK, as the broker did.
                    if let Some(told) = &mut taken_over
                        && shared.takeovers.newer_pending(client_id)
                    {
                        let _ = timeout(TAKEOVER_GRACE, told).await;
                    }
                    let refused = link.as_ref().is_some_and(Link::was_refused);
                    let before_connack = link.as_ref().is_some_and(|l| l.received() == 0);
                    session.close_reason(match end {
                        OutboundEnd::Finished => "upstream_closed",
                        OutboundEnd::Io(_) => "client_error",
                        OutboundEnd::Failed(_) if refused => "not_resumed",
                        OutboundEnd::Failed(_) => "upstream_lost",
                        OutboundEnd::Invalid(_) => "broker_bad_packet",
                    });
                    match end {
                        OutboundEnd::Finished | OutboundEnd::Io(_) => None,
                        OutboundEnd::Failed(_) if before_connack => {
                            // Lost before the broker's CONNACK came through: the
                            // client still waits for one.
                            Some(replies::connack_server_unavailable(version))
                        }
                        OutboundEnd::Failed(_) if refused => {
                            Some(replies::DISCONNECT_NOT_RESUMED.to_vec())
                        }
                        OutboundEnd::Failed(_) | OutboundEnd::Invalid(_) => {
                            Some(replies::DISCONNECT_UPSTREAM_LOST.to_vec())
                        }
                    }
                }
            }
        }
        .instrument(end_span.clone())
        .await
    };
    async {
        if let Some(link) = &link {
            if tell_s_proxy {
                let end = envelope(
                    sequence_id,
                    MessageDirection::ClientToBroker,
                    envelopes::terminate(),
                );
                let said = link.terminate(line, end, inbound, false);
                if timeout(TERMINATE_WITHIN, said).await.is_err() {
                    warn!("the s-proxy did not acknowledge the end of the session in time");
                }
            }
            link.close();
        }
        // A CONNACK refusal goes to either version; a DISCONNECT to MQTT 5 only.
        if let Some(farewell) = farewell
            && (version == Version::V5 || farewell.first() == Some(&0x20))
        {
            let _ = wr.write_all(&farewell).await;
        }
        let _ = wr.shutdown().await;
        let counts = wr.get_ref().counts();
        info!(
            session = %session_id,
            reason = session.reason(),
            duration_ms = began.elapsed().as_millis() as u64,
            bytes_from_client = counts.read,
            bytes_to_client = counts.written,
            "closed"
        );
    }
    .instrument(end_span)
    .await;
}
