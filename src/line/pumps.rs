//! The two pumps of a relayed connection: packets read from a byte stream
//! become envelopes on a bounded queue, and envelopes from a stream become
//! bytes on a writer.

use bytes::BytesMut;
use futures_util::{FutureExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tonic::Status;

use crate::line::convert::{
    ConvertError, encode_publish, packet_to_payload, payload_to_packet, publish_to_payload,
};
use crate::line::proto::mqtt::session_control::ControlType;
use crate::line::proto::mqtt::{MessageDirection, MqttStreamMessage, mqtt_stream_message::Payload};
use crate::line::resume::LinkSender;
use crate::mqtt::{self, CodecError, Packet, Version, packet_type_name};
use crate::mqtt::{PacketReader, ReadError};
use crate::ops::telemetry::{self, METRICS, TrafficCounters};

/// Encoded bytes gathered from ready envelopes before one write, so a burst
/// of small packets costs one system call.
const WRITE_BATCH: usize = 64 * 1024;

/// Write buffers up to this size are kept while the connection is idle.
const KEEP_WRITE_BUFFER: usize = 4 * 1024;

/// Builds an envelope; the sequence number counts per direction. The
/// session id is not repeated here: it travels in the request metadata.
pub fn envelope(
    sequence_id: &mut u64,
    direction: MessageDirection,
    payload: Payload,
) -> MqttStreamMessage {
    *sequence_id += 1;
    MqttStreamMessage {
        sequence_id: *sequence_id,
        direction: direction as i32,
        payload: Some(payload),
        acknowledged: 0,
    }
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
/// waiting while its queue (or replay buffer) is full. The envelopes of a
/// burst go out together: `line` is flushed whenever the reader has to wait
/// for more bytes, and at the end.
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
    let counters = TrafficCounters::new(mode, direction_label(direction));
    let end = loop {
        // What the reader holds (or the socket has) now comes at once; the
        // batch goes out whenever the reader has to wait for more.
        let next = std::future::poll_fn(|cx| {
            let next = reader.poll_next(cx);
            if next.is_pending() {
                line.flush();
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
        let size = mqtt::wire_size(&raw);
        // The packet is converted and dropped before the send may wait, so
        // the task keeps no room for it while idle.
        let (payload, is_disconnect) = match publish_to_payload(version, &raw) {
            Some(payload) => {
                counters.count(raw.packet_type(), "publish", size);
                (payload, false)
            }
            None => {
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
                (packet_to_payload(&packet), is_disconnect)
            }
        };
        drop(raw);
        let message = Box::new(envelope(sequence_id, direction, payload));
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
enum Step {
    Continue,
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

fn encode_envelope(
    message: MqttStreamMessage,
    version: Version,
    counters: &TrafficCounters,
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
pub async fn pump_envelopes_to_writer<S, W>(
    inbound: &mut S,
    writer: &mut W,
    version: Version,
    traffic: Traffic,
) -> OutboundEnd
where
    S: Stream<Item = Result<MqttStreamMessage, Status>> + Unpin,
    W: AsyncWrite + Unpin,
{
    let counters = TrafficCounters::new(traffic.mode, direction_label(traffic.direction));
    let mut out = BytesMut::new();
    loop {
        // `next` ends with this block: were it in scope across the write
        // below, the session task would keep room for a whole envelope
        // (272 bytes) while it waits.
        let mut end = {
            // `if let`, not `match`: the scrutinee is dropped before the
            // `else` waits (a match would keep its 256 bytes meanwhile).
            let next = if let Some(next) = inbound.next().now_or_never() {
                next
            } else {
                // Going idle: give a large buffer back rather than hold it.
                if out.capacity() > KEEP_WRITE_BUFFER {
                    out = BytesMut::new();
                }
                inbound.next().await
            };
            match next {
                None => Some(OutboundEnd::Finished),
                Some(Err(status)) => Some(OutboundEnd::Failed(status)),
                Some(Ok(message)) => step(message, version, &counters, &mut out),
            }
        };
        while end.is_none() && out.len() < WRITE_BATCH {
            match inbound.next().now_or_never() {
                None => break,
                Some(None) => end = Some(OutboundEnd::Finished),
                Some(Some(Err(status))) => end = Some(OutboundEnd::Failed(status)),
                Some(Some(Ok(message))) => end = step(message, version, &counters, &mut out),
            }
        }
        if !out.is_empty() {
            // Flush too: TLS and WebSocket writers buffer until told.
            let written = async {
                writer.write_all(&out).await?;
                writer.flush().await
            };
            if let Err(e) = written.await {
                return OutboundEnd::Io(e);
            }
            out.clear();
        }
        if let Some(end) = end {
            return end;
        }
    }
}

fn step(
    message: MqttStreamMessage,
    version: Version,
    counters: &TrafficCounters,
    out: &mut BytesMut,
) -> Option<OutboundEnd> {
    match encode_envelope(message, version, counters, out) {
        Ok(Step::Continue) => None,
        Ok(Step::Terminate) => Some(OutboundEnd::Finished),
        Err(e) => Some(OutboundEnd::Invalid(e)),
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::line::proto::mqtt::SessionControl;

    #[test]
    fn envelopes_carry_no_session_id() {
        let mut sequence_id = 0;
        let message = envelope(
            &mut sequence_id,
            MessageDirection::BrokerToClient,
            Payload::SessionControl(SessionControl {
                control_type: ControlType::Establishv5 as i32,
                client_id: "c".into(),
            }),
        );
        // sequence_id (field 2) = 1, direction (field 3) = 1, then field 50
        // holding control_type 1 and client_id (field 2) "c". No field 1.
        assert_eq!(
            message.encode_to_vec(),
            [
                0x10, 0x01, 0x18, 0x01, 0x92, 0x03, 0x05, 0x08, 0x01, 0x12, 0x01, b'c'
            ]
        );
    }
}
