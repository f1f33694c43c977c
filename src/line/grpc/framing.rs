//! gRPC's message framing on an HTTP/2 stream: each message is a five-byte
//! prefix (a compression flag, then the length as a big-endian `u32`)
//! followed by its protobuf bytes. We never ask for compression, so a
//! compressed message is a protocol error.

use bytes::{Buf, Bytes, BytesMut};
use tonic::Status;

use super::wire_message::{WireEncode, WireMessage};

/// The compression flag and the length.
const PREFIX: usize = 5;

/// `message` with its prefix, ready to go out as (part of) a DATA frame;
/// refused when it is larger than `max` bytes.
pub fn encode<M: WireMessage>(message: &M, max: usize) -> Result<Bytes, Status> {
    let mut framed = BytesMut::new();
    encode_into(message, max, &mut framed)?;
    Ok(framed.freeze())
}

/// Appends `message` with its prefix to `framed` (several messages make
/// one DATA frame); refused when it is larger than `max` bytes.
pub fn encode_into<M: WireEncode>(
    message: &M,
    max: usize,
    framed: &mut BytesMut,
) -> Result<(), Status> {
    let len = framed_len(message, max)?;
    // Messages are written into a slice of their exact length (zeroed
    // first, a few dozen bytes): see `WireEncode::encode_framed`.
    let start = framed.len();
    framed.resize(start + len, 0);
    write_framed(message, &mut framed[start..]);
    Ok(())
}

/// How long `message` is with its prefix; refused when it is larger than
/// `max` bytes.
pub fn framed_len<M: WireEncode>(message: &M, max: usize) -> Result<usize, Status> {
    let len = message.framed_len();
    if len > max || u32::try_from(len).is_err() {
        return Err(Status::out_of_range(format!(
            "message of {len} bytes is over the limit of {max}"
        )));
    }
    Ok(PREFIX + len)
}

/// Writes `message` with its prefix into `out`, which is as long as
/// [`framed_len`] said (`encode_framed` writes exactly what `framed_len`
/// counts, so the slice is never short).
pub fn write_framed<M: WireEncode>(message: &M, out: &mut [u8]) {
    let (prefix, body) = out.split_at_mut(PREFIX);
    // At most `max`, checked to fit a u32 by `framed_len`.
    let len = body.len() as u32;
    prefix[0] = 0; // not compressed
    prefix[1..].copy_from_slice(&len.to_be_bytes());
    message.encode_framed(body);
}

/// Splits the DATA of a stream into messages. A chunk that holds whole
/// messages is sliced without copying; only a message split across chunks
/// is gathered, and the gathering buffer is released once it empties (an
/// idle stream holds nothing).
#[derive(Debug)]
pub struct Deframer {
    /// The rest of the last chunk, when nothing is being gathered.
    pending: Bytes,
    /// A message split across chunks, being gathered.
    partial: BytesMut,
    /// The largest message accepted.
    max: usize,
}

impl Deframer {
    /// Accepts messages up to `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            pending: Bytes::new(),
            partial: BytesMut::new(),
            max,
        }
    }

    /// Adds the next chunk of DATA; call only after [`Deframer::next_message`]
    /// said it needs more.
    pub fn push(&mut self, chunk: Bytes) {
        if self.partial.is_empty() && self.pending.is_empty() {
            self.pending = chunk;
        } else {
            self.partial.extend_from_slice(&self.pending);
            self.pending = Bytes::new();
            self.partial.extend_from_slice(&chunk);
        }
    }

    /// The next whole message's bytes, `None` when more DATA is needed.
    pub fn next_message(&mut self) -> Result<Option<Bytes>, Status> {
        let Some(len) = self.next_len()? else {
            return Ok(None);
        };
        let gathered = !self.partial.is_empty();
        let message = if gathered {
            self.partial.advance(PREFIX);
            self.partial.split_to(len).freeze()
        } else {
            self.pending.advance(PREFIX);
            self.pending.split_to(len)
        };
        self.release_emptied(gathered);
        Ok(Some(message))
    }

    /// Hands the next whole message's bytes to `read` where they lie, with
    /// no count taken on the buffer that holds them (what a message that
    /// is read and let go at once needs), and returns what `read` made;
    /// `None` when more DATA is needed.
    pub fn next_with<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, Status> {
        let Some(len) = self.next_len()? else {
            return Ok(None);
        };
        let gathered = !self.partial.is_empty();
        let made = if gathered {
            let made = read(&self.partial[PREFIX..PREFIX + len]);
            self.partial.advance(PREFIX + len);
            made
        } else {
            let made = read(&self.pending[PREFIX..PREFIX + len]);
            self.pending.advance(PREFIX + len);
            made
        };
        self.release_emptied(gathered);
        Ok(Some(made))
    }

    /// The length of the next message when all of it is held (gathered,
    /// or at the start of the last chunk); when only part of it is, that
    /// part is gathered and `None` returned.
    fn next_len(&mut self) -> Result<Option<usize>, Status> {
        if !self.partial.is_empty() {
            return self.whole(&self.partial);
        }
        let len = self.whole(&self.pending)?;
        if len.is_none() && !self.pending.is_empty() {
            self.partial.extend_from_slice(&self.pending);
            self.pending = Bytes::new();
        }
        Ok(len)
    }

    /// Lets go of the buffer a message was taken from (the gathered one,
    /// or the last chunk) once it is read to its end: an idle stream holds
    /// neither gathered room nor the connection's read buffer.
    fn release_emptied(&mut self, gathered: bool) {
        if gathered {
            if self.partial.is_empty() {
                self.partial = BytesMut::new();
            }
        } else if self.pending.is_empty() {
            self.pending = Bytes::new();
        }
    }

    /// Whether part of a message is held (the stream must not end here).
    pub fn is_empty(&self) -> bool {
        self.partial.is_empty() && self.pending.is_empty()
    }

    /// The length of the message at the start of `bytes` when all of it is
    /// there; an error for a compressed or oversized message.
    fn whole(&self, bytes: &[u8]) -> Result<Option<usize>, Status> {
        let Some(prefix) = bytes.get(..PREFIX) else {
            return Ok(None);
        };
        match prefix[0] {
            0 => {}
            1 => {
                return Err(Status::internal(
                    "a compressed message, but no compression was agreed",
                ));
            }
            flag => {
                return Err(Status::internal(format!(
                    "invalid gRPC message flag {flag}"
                )));
            }
        }
        let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
        if len > self.max {
            return Err(Status::out_of_range(format!(
                "message of {len} bytes is over the limit of {}",
                self.max
            )));
        }
        Ok((bytes.len() >= PREFIX + len).then_some(len))
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::line::proto::mqtt::MqttStreamMessage;

    fn drain(frames: &mut Deframer) -> Vec<u64> {
        let mut got = Vec::new();
        while let Some(bytes) = frames.next_message().expect("valid") {
            got.push(
                MqttStreamMessage::decode(bytes)
                    .expect("decodes")
                    .sequence_id,
            );
        }
        got
    }

    /// As [`drain`], each message read where it lies.
    fn drain_in_place(frames: &mut Deframer) -> Vec<u64> {
        let mut got = Vec::new();
        while let Some(sequence_id) = frames
            .next_with(|bytes| {
                MqttStreamMessage::decode(bytes)
                    .expect("decodes")
                    .sequence_id
            })
            .expect("valid")
        {
            got.push(sequence_id);
        }
        got
    }

    #[test]
    fn a_framed_message_is_its_length_then_its_protobuf_bytes() {
        use crate::line::proto::mqtt::mqtt_stream_message::Payload;
        use crate::line::proto::mqttv5::{MqttPacket, Publish, mqtt_packet::Packet};
        let publish = Publish {
            topic: "sensors/room-1/temperature".into(),
            message_id: 70_000,
            qos: 1,
            payload: Bytes::from(vec![0xa5; 300]),
            ..Default::default()
        };
        let message = MqttStreamMessage {
            acknowledged: u64::MAX,
            payload: Some(Payload::MqttV5Packet(MqttPacket {
                packet: Some(Packet::Publish(publish)),
            })),
            ..MqttStreamMessage::numbered(300)
        };
        let protobuf = message.encode_to_vec();
        let mut framed = BytesMut::from(&b"before"[..]);
        encode_into(&message, 1024, &mut framed).expect("small");
        let mut expected = b"before\0".to_vec();
        expected.extend_from_slice(&(protobuf.len() as u32).to_be_bytes());
        expected.extend_from_slice(&protobuf);
        assert_eq!(&framed[..], &expected[..]);
    }

    #[test]
    fn messages_come_out_whatever_the_chunks() {
        let stream: Vec<u8> = (1..=5)
            .flat_map(|n| {
                encode(&MqttStreamMessage::numbered(n), 1024)
                    .expect("small")
                    .to_vec()
            })
            .collect();
        // Every way of cutting the stream in two places gives the same
        // messages, taken out or read in place.
        for a in 0..=stream.len() {
            for b in a..=stream.len() {
                for read in [drain, drain_in_place] {
                    let mut frames = Deframer::new(1024);
                    let mut got = Vec::new();
                    for chunk in [&stream[..a], &stream[a..b], &stream[b..]] {
                        frames.push(Bytes::copy_from_slice(chunk));
                        got.extend(read(&mut frames));
                    }
                    assert_eq!(got, [1, 2, 3, 4, 5], "cut at {a} and {b}");
                    assert!(frames.is_empty());
                }
            }
        }
    }

    #[test]
    fn a_cut_message_is_held_until_it_is_whole() {
        let framed = encode(&MqttStreamMessage::numbered(300), 1024).expect("small");
        let mut frames = Deframer::new(1024);
        frames.push(framed.slice(..3));
        assert_eq!(frames.next_message().expect("valid"), None);
        assert!(!frames.is_empty(), "part of a message is held");
        frames.push(framed.slice(3..));
        assert_eq!(drain(&mut frames), [300]);
    }

    #[test]
    fn compressed_and_oversized_messages_are_refused() {
        let mut frames = Deframer::new(1024);
        frames.push(Bytes::from_static(&[1, 0, 0, 0, 0]));
        assert_eq!(
            frames.next_message().expect_err("compressed").code(),
            tonic::Code::Internal
        );

        let mut frames = Deframer::new(16);
        frames.push(Bytes::from_static(&[0, 0, 0, 0, 17]));
        assert_eq!(
            frames.next_message().expect_err("too large").code(),
            tonic::Code::OutOfRange
        );

        let large = MqttStreamMessage {
            sequence_id: 1,
            payload: None,
            direction: 1,
            acknowledged: u64::MAX,
        };
        assert!(encode(&large, 4).is_err(), "over the sending limit");
    }
}
