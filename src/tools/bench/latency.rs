//! `bench latency`: one message at a time from a publisher to a subscriber,
//! each timed from the moment it is written to the moment it is read, so
//! the figure is what the path adds, not queueing behind other messages.

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::args::LatencyArgs;
use super::report::{LatencyReport, LatencySummary, Progress, Report, cdf, latency_histogram};
use super::wire::{self, PUBACK, PUBCOMP, PUBREC, PUBREL};
use super::{Link, STEP_TIMEOUT, Stamp, Target, now_ns, run_topic};
use crate::mqtt::Version;

pub async fn run(args: LatencyArgs) -> anyhow::Result<Report> {
    let target = Target::new(crate::tools::pubsub::options(&args.client)?).await?;
    let version = target.version;
    let topic = run_topic(&args.topic);
    let size = args.size.max(super::STAMP_LEN);
    let mut subscriber = target.connect(&format!("{}-sub", target.id_prefix)).await?;
    subscriber.subscribe(version, &topic, args.qos).await?;
    let mut publisher = target.connect(&format!("{}-pub", target.id_prefix)).await?;

    let progress = Progress::new();
    let mut histogram = latency_histogram();
    let mut payload = vec![b'x'; size];
    let mut buf = BytesMut::new();
    let total = args.warmup + args.count;
    for sequence in 0..total {
        let sent_ns = now_ns();
        Stamp {
            sent_ns,
            publisher: 0,
            sequence,
        }
        .write(&mut payload);
        buf.clear();
        // Packet ids cycle through 1..=65535.
        let packet_id = (sequence % 65_535) as u16 + 1;
        wire::put_publish(&mut buf, version, &topic, args.qos, packet_id, &payload);
        publisher.writer.write_all(&buf).await?;
        publisher.writer.flush().await?;
        let latency =
            tokio::time::timeout(STEP_TIMEOUT, deliver(&mut subscriber, version, sequence))
                .await
                .with_context(|| {
                    format!("message {sequence} not delivered in {STEP_TIMEOUT:?}")
                })??;
        if sequence >= args.warmup {
            histogram.saturating_record(latency.max(1));
        }
        tokio::time::timeout(STEP_TIMEOUT, complete(&mut publisher, args.qos, packet_id))
            .await
            .with_context(|| {
                format!("message {sequence} not acknowledged in {STEP_TIMEOUT:?}")
            })??;
        if sequence % 1000 == 999 {
            progress.show(&format!("{} / {total} messages", sequence + 1));
        }
        if let Some(gap) = args.interval_ms.filter(|ms| *ms > 0) {
            tokio::time::sleep(Duration::from_millis(gap)).await;
        }
    }
    progress.done();
    publisher.disconnect(version).await;
    subscriber.disconnect(version).await;
    Ok(Report::Latency(LatencyReport {
        url: target.url.clone(),
        version: version.to_string(),
        qos: args.qos,
        payload_bytes: size,
        latency: LatencySummary::of(&histogram).context("no samples (--count 0)")?,
        cdf: cdf(&histogram),
    }))
}

/// Reads until message `sequence` arrives, acknowledging on the way;
/// returns its latency in nanoseconds.
async fn deliver(link: &mut Link, version: Version, sequence: u32) -> anyhow::Result<u64> {
    let mut acks = BytesMut::new();
    loop {
        let raw = link.reader.next().await?.context("subscriber closed")?;
        match raw.packet_type() {
            wire::PUBLISH => {
                let now = now_ns();
                let publish = wire::parse_publish(version, raw.flags(), raw.data_as_slice())
                    .context("malformed PUBLISH")?;
                match publish.qos {
                    1 => wire::put_ack(&mut acks, PUBACK, publish.packet_id),
                    2 => wire::put_ack(&mut acks, PUBREC, publish.packet_id),
                    _ => {}
                }
                if !acks.is_empty() {
                    link.writer.write_all(&acks).await?;
                    link.writer.flush().await?;
                    acks.clear();
                }
                if let Some(stamp) = Stamp::read(publish.payload)
                    && stamp.sequence == sequence
                {
                    return Ok(now.saturating_sub(stamp.sent_ns));
                }
            }
            PUBREL => {
                if let Some(id) = wire::ack_id(raw.data_as_slice()) {
                    wire::put_ack(&mut acks, PUBCOMP, id);
                    link.writer.write_all(&acks).await?;
                    link.writer.flush().await?;
                    acks.clear();
                }
            }
            _ => {}
        }
    }
}

/// Completes the publisher's side of the QoS flow for `packet_id`.
async fn complete(link: &mut Link, qos: u8, packet_id: u16) -> anyhow::Result<()> {
    let done = match qos {
        0 => return Ok(()),
        1 => PUBACK,
        _ => PUBCOMP,
    };
    loop {
        let raw = link.reader.next().await?.context("publisher closed")?;
        let id = wire::ack_id(raw.data_as_slice());
        match raw.packet_type() {
            t if t == done && id == Some(packet_id) => return Ok(()),
            PUBREC if id == Some(packet_id) => {
                let mut buf = BytesMut::new();
                wire::put_ack(&mut buf, PUBREL, packet_id);
                link.writer.write_all(&buf).await?;
                link.writer.flush().await?;
            }
            wire::CONNACK => bail!("unexpected CONNACK"),
            _ => {}
        }
    }
}
