//! The two pumps of a relayed connection: packets read from a byte stream
//! become envelopes on a bounded queue, and envelopes from a stream become
//! bytes on a writer.

use bytes::BytesMut;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite};
use tonic::Status;

use crate::line::convert::{
    ConvertError, ReadPublish, encode_publish, packet_to_payload, payload_to_packet,
};
use crate::line::proto::mqtt::session_control::ControlType;
use crate::line::proto::mqtt::{MessageDirection, MqttStreamMessage, mqtt_stream_message::Payload};
use crate::line::resume::LinkSender;
use crate::line::{Outgoing, ReceiveEach, Received};
use crate::mqtt::{self, CodecError, Packet, RawPacket, Version, packet_type_name};
use crate::mqtt::{PacketReader, ReadError};
use crate::ops::telemetry::{self, METRICS, TrafficCounters};

/// Encoded bytes gathered from ready envelopes before one write, so a burst
/// of small packets costs one system call.
const WRITE_BATCH: usize = 64 * 1024;

/// Write buffers up to this size are kept while the connection is idle.
const KEEP_WRITE_BUFFER: usize = 4 * 1024;

/// The packet type of DISCONNECT, the high four bits of its first byte.
const DISCONNECT: u8 = 14;

/// Builds an envelope; the sequence number counts per direction. The
/// session id is not repeated here: it travels in the request metadata.
pub fn envelope(
    sequence_id: &mut u64,
    direction: MessageDirection,
    payload: Payload,
) -> MqttStreamMessage {
    MqttStreamMessage {
        sequence_id: next_number(sequence_id),
        direction: direction as i32,
        payload: Some(payload),
        acknowledged: 0,
    }
}

/// The next sequence number of a direction.
fn next_number(sequence_id: &mut u64) -> u64 {
    *sequence_id += 1;
    *sequence_id
}

/// How the byte stream -> envelopes pump ended.
#[derive(Debug)]
pub enum InboundEnd {
    /// The byte stream ended.
    Eof,
    /// A DISCONNECT was read and forwarded; nothing may follow it.
    Disconnected,
    /// The bytes were not valid MQTT.
    Codec(CodecError),
    /// Reading failed.
    Io(std::io::Error),
    /// The queue's receiver is gone: the other side ended.
    QueueClosed,
}

/// Reads packets from `reader` and sends each as an envelope on `line`,
/// waiting while its queue (or replay buffer) is full. The plain PUBLISHes
/// of one read are offered in one burst of `line` ([`LinkSender::burst`]),
/// and the envelopes go out together: `line` is flushed whenever the reader
/// has to wait for more bytes, and at the end.
pub async fn pump_reader_to_envelopes<R>(
    reader: &mut PacketReader<R>,
    version: Version,
    mode: &'static str,
    direction: MessageDirection,
    sequence_id: &mut u64,
    line: &mut LinkSender,
) -> InboundEnd
where
    R: AsyncRead + Unpin,
{
    let mut counters = TrafficCounters::new(mode, direction_label(direction));
    let end = loop {
        // What the reader holds (or the socket has) now comes at once; the
        // batch goes out (and is counted) whenever the reader has to wait
        // for more.
        let next = std::future::poll_fn(|cx| {
            let next = reader.poll_next(cx);
            if next.is_pending() {
                line.flush();
                counters.settle();
            }
            next
        })
        .await;
        let raw = match next {
            Ok(Some(raw)) => raw,
            Ok(None) => break InboundEnd::Eof,
            Err(ReadError::Codec(e)) => break InboundEnd::Codec(e),
            Err(ReadError::Io(e)) => break InboundEnd::Io(e),
        };
        let conversion = Conversion {
            version,
            direction,
            sequence_id: &mut *sequence_id,
            counters: &mut counters,
        };
        // The packet is converted and dropped before the send may wait, so
        // the task keeps no room for it while idle.
        let (message, size, is_disconnect) = match conversion.send(raw, reader, line) {
            Left::Nothing => continue,
            Left::Invalid(e) => break InboundEnd::Codec(e),
            Left::Waiting(message, size) => (message, size, false),
            Left::Packet(raw) => {
                let size = mqtt::wire_size(&raw);
                let packet = match mqtt::decode(version, &raw) {
                    Ok(p) => p,
                    Err(e) => break InboundEnd::Codec(e),
                };
                counters.count(raw.packet_type(), packet_type_name(&packet), size);
                let is_disconnect = matches!(
                    packet,
                    Packet::V3_1_1Disconnect(_) | Packet::V5_0Disconnect(_)
                );
                if let Some(keep_alive) = mqtt::server_keep_alive(&packet) {
                    line.keep_alive_changed(keep_alive);
                }
                let payload = packet_to_payload(&packet);
                let message = envelope(sequence_id, direction, payload).into();
                (message, size, is_disconnect)
            }
        };
        match line.send_batched(message, size).await {
            Ok(false) => {}
            Ok(true) => METRICS.queue_was_full(mode, direction_label(direction)),
            Err(_) => break InboundEnd::QueueClosed,
        }
        if is_disconnect {
            break InboundEnd::Disconnected;
        }
    };
    line.flush();
    end
}

/// What a burst left to the usual way.
enum Left {
    /// Every packet read so far was sent.
    Nothing,
    /// A PUBLISH's envelope that has to wait, and its packet's size.
    Waiting(Outgoing, usize),
    /// A packet other than a plain PUBLISH.
    Packet(RawPacket),
    /// The bytes after the burst are not MQTT.
    Invalid(CodecError),
}

/// How the packets of one read become envelopes.
struct Conversion<'a> {
    version: Version,
    direction: MessageDirection,
    sequence_id: &'a mut u64,
    counters: &'a mut TrafficCounters,
}

impl Conversion<'_> {
    /// Sends `raw` and the packets read with it, while they are plain
    /// PUBLISHes that can go at once, in one burst of `line`.
    fn send<R>(self, raw: RawPacket, reader: &mut PacketReader<R>, line: &mut LinkSender) -> Left
    where
        R: AsyncRead + Unpin,
    {
        let mut burst = line.burst();
        let mut raw = raw;
        loop {
            let size = mqtt::wire_size(&raw);
            let packet_type = raw.packet_type();
            match ReadPublish::read(self.version, raw) {
                Ok(publish) => {
                    self.counters.count(packet_type, "publish", size);
                    let number = next_number(self.sequence_id);
                    let message = Outgoing::publish(number, self.direction, publish);
                    if let Err(message) = burst.offer(message, size) {
                        return Left::Waiting(message, size);
                    }
                }
                Err(raw) => return Left::Packet(raw),
            }
            raw = match reader.next_read() {
                Ok(Some(raw)) => raw,
                Ok(None) => return Left::Nothing,
                Err(e) => return Left::Invalid(e),
            };
        }
    }
}

/// How the envelopes -> byte stream pump ended.
#[derive(Debug)]
pub enum OutboundEnd {
    /// The envelope stream ended normally (or said TERMINATE).
    Finished,
    /// The envelope stream failed: the peer or the link is gone.
    Failed(Status),
    /// An envelope did not hold a valid packet for this session.
    Invalid(ConvertError),
    /// Writing failed.
    Io(std::io::Error),
}

/// What one envelope asks of the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Go on: its packet (if any: a heartbeat carries none) was written.
    Continue,
    /// The peer ended the session (TERMINATE).
    Terminate,
}

/// Where a writer pump's packets go, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct Traffic {
    /// The mode label.
    pub mode: &'static str,
    /// The direction the pump writes.
    pub direction: MessageDirection,
}

fn direction_label(direction: MessageDirection) -> &'static str {
    match direction {
        MessageDirection::ClientToBroker => telemetry::CLIENT_TO_BROKER,
        MessageDirection::BrokerToClient => telemetry::BROKER_TO_CLIENT,
    }
}

/// Appends the MQTT bytes of a received envelope to `out`, as the pump
/// writing to the client or the broker does: a plain PUBLISH straight from
/// the envelope's bytes, anything else (and a PUBLISH the straight way
/// cannot write) by the general path.
pub fn encode_received(
    message: Received<'_>,
    version: Version,
    counters: &mut TrafficCounters,
    out: &mut BytesMut,
) -> Result<Step, ConvertError> {
    match message {
        Received::Publish(publish) => match publish.put_mqtt(version, out) {
            Some(n) => {
                counters.count(3, "publish", n);
                Ok(Step::Continue)
            }
            None => encode_envelope(publish.to_envelope(), version, counters, out),
        },
        Received::Envelope(envelope) => encode_envelope(*envelope, version, counters, out),
    }
}

fn encode_envelope(
    message: MqttStreamMessage,
    version: Version,
    counters: &mut TrafficCounters,
    out: &mut BytesMut,
) -> Result<Step, ConvertError> {
    let payload = message.payload.ok_or(ConvertError::MissingPacket)?;
    if let Payload::SessionControl(control) = &payload {
        return Ok(match control.control_type() {
            ControlType::Terminate => Step::Terminate,
            // Heartbeats and repeated establishes carry nothing to write.
            _ => Step::Continue,
        });
    }
    if let Some(n) = encode_publish(&payload, version, out) {
        counters.count(3, "publish", n);
        return Ok(Step::Continue);
    }
    let packet = payload_to_packet(payload, version)?;
    let before = out.len();
    mqtt::encode(&packet, out);
    counters.count(
        out[before] >> 4,
        packet_type_name(&packet),
        out.len() - before,
    );
    Ok(Step::Continue)
}

/// Writes the packets of `inbound` to `writer`, gathering whatever is
/// already queued into one write.
///
/// One hand-written poll loop rather than `next().await` and `write_all`:
/// each wake-up polls `inbound` until it has nothing more (that last poll
/// leaves the task's waker with it) and writes what it gathered, so a
/// message costs two polls of `inbound`, not four, and a write that
/// completes at once needs no further turn.
pub async fn pump_envelopes_to_writer<S, W>(
    inbound: &mut S,
    writer: &mut W,
    version: Version,
    traffic: Traffic,
) -> OutboundEnd
where
    S: ReceiveEach,
    W: AsyncWrite + Unpin,
{
    pump_envelopes_noting_disconnect(inbound, writer, version, traffic, &mut false).await
}

/// [`pump_envelopes_to_writer`], which also sets `disconnect_passed` once
/// a DISCONNECT packet has gone to the writer: its sender is leaving, so
/// the other side closing next is its answer, not a failure of its own.
pub async fn pump_envelopes_noting_disconnect<S, W>(
    inbound: &mut S,
    writer: &mut W,
    version: Version,
    traffic: Traffic,
    disconnect_passed: &mut bool,
) -> OutboundEnd
where
    S: ReceiveEach,
    W: AsyncWrite + Unpin,
{
    let mut counters = TrafficCounters::new(traffic.mode, direction_label(traffic.direction));
    let mut batch = WriteBatch::default();
    std::future::poll_fn(|cx| {
        batch.poll(
            cx,
            inbound,
            writer,
            version,
            &mut counters,
            disconnect_passed,
        )
    })
    .await
}

/// What the envelopes -> byte stream pump holds between its turns.
#[derive(Default)]
struct WriteBatch {
    /// Encoded packets not written yet.
    out: BytesMut,
    /// How much of `out` the writer has taken.
    written: usize,
    /// Written to the end, `out` still needs a flush.
    unflushed: bool,
    /// The most `out` held since the pump last went idle.
    peak: u32,
    /// What `out` held at most before it was given back for going idle:
    /// when it is more than is kept, the next turn takes that much room at
    /// once instead of growing `out` step by step, each step a copy.
    regrow: u32,
    /// How the pump ends once `out` is written (boxed: rare, and the
    /// session task keeps this slot while it waits).
    end: Option<Box<OutboundEnd>>,
}

impl WriteBatch {
    fn poll<S, W>(
        &mut self,
        cx: &mut Context<'_>,
        inbound: &mut S,
        writer: &mut W,
        version: Version,
        counters: &mut TrafficCounters,
        disconnect_passed: &mut bool,
    ) -> Poll<OutboundEnd>
    where
        S: ReceiveEach,
        W: AsyncWrite + Unpin,
    {
        if self.out.capacity() == 0 && self.regrow as usize > KEEP_WRITE_BUFFER {
            self.out.reserve(self.regrow as usize);
        }
        loop {
            // Gather what is ready, until `inbound` has to wait (it then
            // holds this task's waker) or the batch is full.
            let mut inbound_waits = false;
            if self.end.is_none() && self.out.len() < WRITE_BATCH {
                let (out, end) = (&mut self.out, &mut self.end);
                let gathered = inbound.poll_each(cx, |message| {
                    let before = out.len();
                    *end = step(message, version, counters, out).map(Box::new);
                    if out
                        .get(before)
                        .is_some_and(|first| first >> 4 == DISCONNECT)
                    {
                        *disconnect_passed = true;
                    }
                    end.is_none() && out.len() < WRITE_BATCH
                });
                match gathered {
                    // `inbound` holds this task's waker.
                    Poll::Pending => inbound_waits = true,
                    // Full, or ending.
                    Poll::Ready(Some(Ok(()))) => {}
                    Poll::Ready(None) => self.end = Some(Box::new(OutboundEnd::Finished)),
                    Poll::Ready(Some(Err(status))) => {
                        self.end = Some(Box::new(OutboundEnd::Failed(status)));
                    }
                }
            }
            self.peak = self
                .peak
                .max(u32::try_from(self.out.len()).unwrap_or(u32::MAX));
            while self.written < self.out.len() {
                match Pin::new(&mut *writer).poll_write(cx, &self.out[self.written..]) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(OutboundEnd::Io(std::io::ErrorKind::WriteZero.into()));
                    }
                    Poll::Ready(Ok(n)) => {
                        self.written += n;
                        self.unflushed = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(OutboundEnd::Io(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            if self.unflushed {
                // TLS and WebSocket writers buffer until told.
                match Pin::new(&mut *writer).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.unflushed = false,
                    Poll::Ready(Err(e)) => return Poll::Ready(OutboundEnd::Io(e)),
                    Poll::Pending => return Poll::Pending,
                }
                self.out.clear();
                self.written = 0;
            }
            if let Some(end) = self.end.take() {
                return Poll::Ready(*end);
            }
            if inbound_waits {
                counters.settle();
                // Going idle: give a large buffer back rather than hold it.
                if self.out.capacity() > KEEP_WRITE_BUFFER {
                    self.out = BytesMut::new();
                    self.regrow = self.peak;
                }
                self.peak = 0;
                return Poll::Pending;
            }
        }
    }
}

fn step(
    message: Received<'_>,
    version: Version,
    counters: &mut TrafficCounters,
    out: &mut BytesMut,
) -> Option<OutboundEnd> {
    match encode_received(message, version, counters, out) {
        Ok(Step::Continue) => None,
        Ok(Step::Terminate) => Some(OutboundEnd::Finished),
        Err(e) => Some(OutboundEnd::Invalid(e)),
    }
}

#[cfg(test)]
mod tests;
