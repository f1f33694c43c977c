//! The pumps against in-memory streams and writers that take little at a
//! time.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use prost::Message;

use super::*;
use crate::line::proto::mqtt::SessionControl;

/// A v3.1.1 QoS 0 PUBLISH of `payload` to topic "t": its envelope's bytes,
/// which the line reads straight.
fn publish(sequence_id: &mut u64, payload: &[u8]) -> Result<Bytes, Status> {
    use crate::line::proto::mqttv3;
    let publish = mqttv3::Publish {
        topic: "t".into(),
        payload: bytes::Bytes::copy_from_slice(payload),
        ..Default::default()
    };
    let packet = mqttv3::MqttPacket {
        packet: Some(mqttv3::mqtt_packet::Packet::Publish(publish)),
    };
    let envelope = envelope(
        sequence_id,
        MessageDirection::ClientToBroker,
        Payload::MqttV3Packet(packet),
    );
    let bytes = Bytes::from(envelope.encode_to_vec());
    let read = Received::read(&bytes).expect("valid");
    assert!(matches!(read, Received::Publish(_)), "read straight");
    Ok(bytes)
}

/// A writer that takes at most `most` bytes a call and makes every
/// other call wait (waking the task at once), recording each call.
struct Stingy {
    most: usize,
    pend_next: bool,
    calls: Vec<Vec<u8>>,
    flushes: usize,
}

impl Stingy {
    fn taking(most: usize) -> Self {
        Stingy {
            most,
            pend_next: false,
            calls: Vec::new(),
            flushes: 0,
        }
    }
}

/// A stream of envelopes' bytes, each read and handed to the pump as it
/// comes.
struct OneByOne<S>(S);

impl<S: Stream<Item = Result<Bytes, Status>> + Unpin> ReceiveEach for OneByOne<S> {
    fn poll_each<F>(
        &mut self,
        cx: &mut Context<'_>,
        mut each: F,
    ) -> Poll<Option<Result<(), Status>>>
    where
        F: FnMut(Received<'_>) -> bool,
    {
        loop {
            match std::task::ready!(self.0.poll_next_unpin(cx)) {
                Some(Ok(bytes)) => {
                    let message = Received::read(&bytes).expect("valid");
                    if !each(message) {
                        return Poll::Ready(Some(Ok(())));
                    }
                }
                Some(Err(status)) => return Poll::Ready(Some(Err(status))),
                None => return Poll::Ready(None),
            }
        }
    }
}

/// Three ready PUBLISHes with payloads "a", "b", "c".
fn three() -> impl Stream<Item = Result<Bytes, Status>> + Unpin {
    let mut sequence_id = 0;
    let ready: Vec<_> = [b"a", b"b", b"c"]
        .iter()
        .map(|p| publish(&mut sequence_id, *p))
        .collect();
    futures_util::stream::iter(ready)
}

impl AsyncWrite for Stingy {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.pend_next = !self.pend_next;
        if !self.pend_next {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let n = buf.len().min(self.most);
        self.calls.push(buf[..n].to_vec());
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.flushes += 1;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

const TRAFFIC: Traffic = Traffic {
    mode: "test",
    direction: MessageDirection::ClientToBroker,
};

#[tokio::test]
async fn ready_envelopes_go_out_in_one_write_and_partial_writes_resume() {
    let mut inbound = OneByOne(three());
    let mut writer = Stingy::taking(usize::MAX);
    let end = pump_envelopes_to_writer(&mut inbound, &mut writer, Version::V3_1_1, TRAFFIC).await;
    assert!(matches!(end, OutboundEnd::Finished), "{end:?}");
    // Three PUBLISHes (0x30, length 4, topic "t", one payload byte),
    // in a single write.
    let one = |p: u8| [0x30, 4, 0, 1, b't', p];
    let all: Vec<u8> = [one(b'a'), one(b'b'), one(b'c')].concat();
    assert_eq!(writer.calls, vec![all.clone()]);
    assert_eq!(writer.flushes, 1);

    // A writer taking 4 bytes at a time, waiting between: every byte
    // arrives once, in order, and is flushed before the pump ends.
    let mut inbound = OneByOne(three());
    let mut writer = Stingy::taking(4);
    let end = pump_envelopes_to_writer(&mut inbound, &mut writer, Version::V3_1_1, TRAFFIC).await;
    assert!(matches!(end, OutboundEnd::Finished), "{end:?}");
    assert_eq!(writer.calls.concat(), all);
    assert!(writer.calls.iter().all(|c| c.len() <= 4));
    assert_eq!(writer.flushes, 1);
}

#[tokio::test]
async fn more_than_a_batch_ready_goes_out_in_batches_in_order() {
    // 100 PUBLISHes of 1,000 bytes: more than one write batch.
    let mut sequence_id = 0;
    let payloads: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 1000]).collect();
    let items: Vec<_> = payloads
        .iter()
        .map(|p| publish(&mut sequence_id, p))
        .collect();
    let mut inbound = OneByOne(futures_util::stream::iter(items));
    let mut writer = Stingy::taking(usize::MAX);
    let end = pump_envelopes_to_writer(&mut inbound, &mut writer, Version::V3_1_1, TRAFFIC).await;
    assert!(matches!(end, OutboundEnd::Finished), "{end:?}");
    // Each PUBLISH: 0x30, length 1,003 (two bytes), topic "t", payload.
    let expected: Vec<u8> = payloads
        .iter()
        .flat_map(|p| [&[0x30, 0xEB, 0x07, 0, 1, b't'][..], p].concat())
        .collect();
    assert_eq!(writer.calls.concat(), expected);
    assert!(writer.calls.len() >= 2, "{} writes", writer.calls.len());
    assert!(
        writer.calls.iter().all(|c| c.len() < WRITE_BATCH + 1009),
        "a batch stops at the first packet past {WRITE_BATCH} bytes"
    );
}

#[tokio::test]
async fn a_failed_stream_ends_the_pump_after_what_came_before_is_written() {
    let mut sequence_id = 0;
    let items = vec![
        publish(&mut sequence_id, b"x"),
        Err(Status::unavailable("gone")),
    ];
    let mut inbound = OneByOne(futures_util::stream::iter(items));
    let mut writer = Stingy::taking(usize::MAX);
    let end = pump_envelopes_to_writer(&mut inbound, &mut writer, Version::V3_1_1, TRAFFIC).await;
    assert!(
        matches!(end, OutboundEnd::Failed(ref s) if s.message() == "gone"),
        "{end:?}"
    );
    assert_eq!(writer.calls, vec![vec![0x30, 4, 0, 1, b't', b'x']]);
}

/// A v3.1.1 DISCONNECT: its envelope's bytes.
fn disconnect(sequence_id: &mut u64) -> Result<Bytes, Status> {
    use crate::line::proto::mqttv3;
    let packet = mqttv3::MqttPacket {
        packet: Some(mqttv3::mqtt_packet::Packet::Disconnect(
            mqttv3::Disconnect {},
        )),
    };
    let envelope = envelope(
        sequence_id,
        MessageDirection::ClientToBroker,
        Payload::MqttV3Packet(packet),
    );
    Ok(Bytes::from(envelope.encode_to_vec()))
}

#[tokio::test]
async fn a_disconnect_that_passed_is_noted() {
    // PUBLISHes alone: not noted.
    let mut inbound = OneByOne(three());
    let mut writer = Stingy::taking(usize::MAX);
    let mut passed = false;
    let end = pump_envelopes_noting_disconnect(
        &mut inbound,
        &mut writer,
        Version::V3_1_1,
        TRAFFIC,
        &mut passed,
    )
    .await;
    assert!(matches!(end, OutboundEnd::Finished), "{end:?}");
    assert!(!passed);

    // A PUBLISH, then a DISCONNECT, and the stream stays open: noted once
    // the DISCONNECT is written, while the pump still waits for more.
    let mut sequence_id = 0;
    let items = vec![
        publish(&mut sequence_id, b"x"),
        disconnect(&mut sequence_id),
    ];
    let mut inbound =
        OneByOne(futures_util::stream::iter(items).chain(futures_util::stream::pending()));
    let mut writer = Stingy::taking(usize::MAX);
    let mut passed = false;
    {
        let mut pump = std::pin::pin!(pump_envelopes_noting_disconnect(
            &mut inbound,
            &mut writer,
            Version::V3_1_1,
            TRAFFIC,
            &mut passed,
        ));
        // The writer makes every other call wait: a few turns write it all.
        for _ in 0..8 {
            assert!(
                futures_util::poll!(pump.as_mut()).is_pending(),
                "the pump waits for the stream's end"
            );
        }
    }
    assert!(passed);
    assert_eq!(
        writer.calls.concat(),
        vec![0x30, 4, 0, 1, b't', b'x', 0xe0, 0]
    );
}

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

/// One turn of `batch` with `payloads` ready as PUBLISHes, the stream then
/// waiting, written to `written`; the pump goes idle.
fn idle_turn(batch: &mut WriteBatch, written: &mut Vec<u8>, payloads: &[Vec<u8>]) {
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    let mut counters = TrafficCounters::new(TRAFFIC.mode, direction_label(TRAFFIC.direction));
    let mut sequence_id = 0;
    let items: Vec<_> = payloads
        .iter()
        .map(|p| publish(&mut sequence_id, p))
        .collect();
    let mut inbound =
        OneByOne(futures_util::stream::iter(items).chain(futures_util::stream::pending()));
    let polled = batch.poll(
        &mut cx,
        &mut inbound,
        written,
        Version::V3_1_1,
        &mut counters,
        &mut false,
    );
    assert!(polled.is_pending(), "the stream stays open");
}

#[test]
fn a_large_write_buffer_is_given_back_when_idle_and_its_room_taken_at_once_next_turn() {
    let mut batch = WriteBatch::default();
    let mut written = Vec::new();
    // Ten PUBLISHes of 1,006 bytes each: more than is kept while idle.
    idle_turn(&mut batch, &mut written, &vec![vec![7; 1000]; 10]);
    assert_eq!(written.len(), 10_060);
    assert_eq!(batch.out.capacity(), 0, "given back");
    assert_eq!(batch.regrow, 10_060);
    // One small PUBLISH: the turn took the room of the last at once (and
    // gave it back, as it is more than is kept), and remembers the little
    // it needed this time.
    idle_turn(&mut batch, &mut written, &[b"x".to_vec()]);
    assert_eq!(written.len(), 10_066);
    assert_eq!(
        batch.out.capacity(),
        0,
        "the room taken at once, given back"
    );
    assert_eq!(batch.regrow, 6);
    // Another: the room it grows to is small, and kept.
    idle_turn(&mut batch, &mut written, &[b"y".to_vec()]);
    assert_eq!(written.len(), 10_072);
    assert!((1..=KEEP_WRITE_BUFFER).contains(&batch.out.capacity()));
}
