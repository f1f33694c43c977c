//! `bench throughput`: N publishers -> M subscribers on one topic tree, for
//! a count of messages or a duration, at QoS 0, 1 or 2.
//!
//! Publishers write as fast as the connection takes, or at `--rate` (QoS 0
//! in batches; QoS 1 and 2 with a window of packets in flight), each offset
//! by its share of the interval unless `--aligned`. Every subscriber
//! receives every message; it counts them, acknowledges them as its QoS
//! requires, and from each payload's stamp measures latency, duplicates and
//! order. The run ends when every subscriber has every message, or when
//! deliveries stop for the drain timeout (the rest count as lost).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};

use super::args::ThroughputArgs;
use super::pace::Pace;
use super::report::{
    LatencySummary, Progress, Report, Sample, ThroughputReport, latency_histogram,
};
use super::subscriber::{Deliveries, Subscriber, subscribe_loop};
use super::wire::{self, PUBACK, PUBCOMP, PUBREC, PUBREL};
use super::{Link, STEP_TIMEOUT, Stamp, Target, now_ns, run_topic};
use crate::mqtt::Version;

/// QoS 0 PUBLISHes written per system call.
const BATCH: usize = 64;

/// When publishers stop.
#[derive(Clone, Copy)]
enum Stop {
    /// After this many messages each.
    Count(u64),
    /// At this instant.
    At(Instant),
}

impl Stop {
    fn done(&self, sent: u64) -> bool {
        match self {
            Stop::Count(n) => sent >= *n,
            Stop::At(t) => Instant::now() >= *t,
        }
    }
}

/// What one publisher needs.
struct Publisher {
    link: Link,
    version: Version,
    topic: String,
    index: u32,
    qos: u8,
    size: usize,
    stop: Stop,
    inflight: u16,
    pace: Pace,
    sent: Arc<AtomicU64>,
}

pub async fn run(args: ThroughputArgs) -> anyhow::Result<Report> {
    anyhow::ensure!(args.publishers >= 1, "--publishers must be at least 1");
    let subscribe_qos = args.qos.iter().copied().max().unwrap_or(0);
    let publisher_qos = |i: usize| {
        args.qos
            .get(i % args.qos.len().max(1))
            .copied()
            .unwrap_or(0)
    };
    let target = Target::new(crate::tools::pubsub::options(&args.client)?).await?;
    let version = target.version;
    let topic = run_topic(&args.topic);
    anyhow::ensure!(topic.len() < 60_000, "--topic is too long");
    let stop_after = match (args.count, args.duration) {
        (Some(n), _) => Err(n),
        (None, Some(d)) => Ok(Duration::from_secs_f64(d)),
        (None, None) => Ok(Duration::from_secs(10)),
    };

    let deliveries = Arc::new(Deliveries {
        count: AtomicU64::new(0),
        last_ns: AtomicU64::new(0),
    });
    // Unique deliveries each subscriber waits for: unknown until the
    // publishers are done.
    let (goal, goal_rx) = watch::channel(u64::MAX);
    let (halt, halted) = watch::channel(false);
    let mut subscribers = Vec::with_capacity(args.subscribers);
    for i in 0..args.subscribers {
        let mut link = target
            .connect(&format!("{}-sub{i}", target.id_prefix))
            .await?;
        link.subscribe(version, &format!("{topic}/#"), subscribe_qos)
            .await?;
        subscribers.push(tokio::spawn(subscribe_loop(Subscriber {
            link,
            version,
            publishers: args.publishers,
            pace: args
                .subscriber_rate
                .map(|r| Duration::from_secs_f64(1.0 / r)),
            deliveries: deliveries.clone(),
            goal: goal_rx.clone(),
            halted: halted.clone(),
        })));
    }
    let mut links = Vec::with_capacity(args.publishers);
    for i in 0..args.publishers {
        links.push(
            target
                .connect(&format!("{}-pub{i}", target.id_prefix))
                .await?,
        );
    }

    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let started_ns = now_ns();
    let stop = match stop_after {
        Err(n) => Stop::Count(n),
        Ok(d) => Stop::At(started + d),
    };
    let sampler = tokio::spawn(sample(
        deliveries.clone(),
        sent.clone(),
        halted.clone(),
        started,
    ));
    let publishers: Vec<_> = links
        .into_iter()
        .enumerate()
        .map(|(i, link)| {
            tokio::spawn(publish_loop(Publisher {
                link,
                version,
                topic: format!("{topic}/{i}"),
                index: i as u32,
                qos: publisher_qos(i),
                size: args.size,
                stop,
                inflight: args.inflight,
                pace: publisher_pace(started, args.rate, args.aligned, i, args.publishers),
                sent: sent.clone(),
            }))
        })
        .collect();
    let mut sent_total = 0;
    let mut failure = None;
    for p in publishers {
        match p.await {
            Ok(Ok(n)) => sent_total += n,
            Ok(Err(e)) => failure = Some(e),
            Err(e) => failure = Some(anyhow::anyhow!("publisher task failed: {e}")),
        }
    }
    let publish_seconds = started.elapsed().as_secs_f64();
    if let Some(e) = failure {
        halt.send_replace(true);
        return Err(e.context("publishing failed"));
    }

    // Wait for the deliveries until they stop coming.
    goal.send_replace(sent_total);
    let drain = Duration::from_secs_f64(args.drain_timeout);
    let mut last = deliveries.count.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while !subscribers.iter().all(|s| s.is_finished()) {
        tick.tick().await;
        let now = deliveries.count.load(Ordering::Relaxed);
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() >= drain {
            break;
        }
    }
    halt.send_replace(true);
    let timeline = sampler.await.unwrap_or_default();

    let mut latency = latency_histogram();
    let (mut unique, mut duplicates, mut out_of_order) = (0, 0, 0);
    for s in subscribers {
        let counted = s.await.context("subscriber task failed")??;
        unique += counted.unique;
        duplicates += counted.duplicates;
        out_of_order += counted.out_of_order;
        latency.add(&counted.latency).ok();
    }
    let expected = sent_total * args.subscribers as u64;
    let last_ns = deliveries.last_ns.load(Ordering::Relaxed);
    let seconds = if unique > 0 && last_ns > started_ns {
        (last_ns - started_ns) as f64 / 1e9
    } else {
        publish_seconds
    };
    Ok(Report::Throughput(ThroughputReport {
        url: target.url.clone(),
        version: version.to_string(),
        qos: (0..args.publishers.min(args.qos.len()))
            .map(publisher_qos)
            .collect(),
        payload_bytes: args.size,
        publishers: args.publishers,
        subscribers: args.subscribers,
        seconds,
        sent: sent_total,
        expected,
        received: unique + duplicates,
        lost: expected.saturating_sub(unique),
        duplicates,
        out_of_order,
        publish_rate: sent_total as f64 / publish_seconds.max(1e-9),
        delivery_rate: unique as f64 / seconds.max(1e-9),
        latency: LatencySummary::of(&latency),
        timeline,
    }))
}

/// Samples deliveries once a second until halted; shows progress.
async fn sample(
    deliveries: Arc<Deliveries>,
    sent: Arc<AtomicU64>,
    mut halted: watch::Receiver<bool>,
    started: Instant,
) -> Vec<Sample> {
    let progress = Progress::new();
    let mut timeline = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut before = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = halted.wait_for(|h| *h) => break,
        }
        let now = deliveries.count.load(Ordering::Relaxed);
        let t = started.elapsed().as_secs_f64();
        timeline.push(Sample {
            t_s: t.round(),
            value: (now - before) as f64,
        });
        progress.show(&format!(
            "{t:5.0} s  sent {:>10}  delivered {:>10}  {:>9.0} msg/s",
            sent.load(Ordering::Relaxed),
            now,
            (now - before) as f64
        ));
        before = now;
    }
    progress.done();
    timeline
}

/// When publisher `index` of `publishers` sends at `rate` a second: from
/// `started`, or (not `aligned`) offset by its share of the interval, so
/// the publishers together send evenly instead of in bursts.
fn publisher_pace(
    started: Instant,
    rate: Option<f64>,
    aligned: bool,
    index: usize,
    publishers: usize,
) -> Pace {
    let every = rate.map(|r| Duration::from_secs_f64(1.0 / r));
    let offset = match every {
        Some(every) if !aligned => every.mul_f64(index as f64 / publishers.max(1) as f64),
        _ => Duration::ZERO,
    };
    Pace {
        start: started + offset,
        every,
    }
}

async fn publish_loop(p: Publisher) -> anyhow::Result<u64> {
    let Publisher {
        link,
        version,
        topic,
        index,
        qos,
        size,
        stop,
        inflight,
        pace,
        sent,
    } = p;
    let mut payload = vec![b'x'; size];
    let mut stamp = Stamp {
        sent_ns: 0,
        publisher: index,
        sequence: 0,
    };
    let mut next = |buf: &mut BytesMut, packet_id: u16| {
        stamp.sent_ns = now_ns();
        stamp.write(&mut payload);
        wire::put_publish(buf, version, &topic, qos, packet_id, &payload);
        stamp.sequence = stamp.sequence.wrapping_add(1);
    };
    let Link {
        mut reader,
        mut writer,
        receive_maximum,
    } = link;
    let mut count = 0u64;
    let mut batch = BytesMut::new();
    if qos == 0 {
        while !stop.done(count) {
            let allowed = pace.allowed();
            if allowed <= count {
                pace.wait(count).await;
                continue;
            }
            batch.clear();
            let mut n = 0;
            while n < BATCH && count + (n as u64) < allowed && !stop.done(count + n as u64) {
                next(&mut batch, 0);
                n += 1;
            }
            writer.write_all(&batch).await?;
            writer.flush().await?;
            count += n as u64;
            sent.fetch_add(n as u64, Ordering::Relaxed);
        }
    } else {
        let window = inflight.min(receive_maximum).max(1);
        let (acks_tx, mut acks) = mpsc::channel::<(u8, u16)>(usize::from(window) * 2 + 8);
        let acks_reader = tokio::spawn(async move {
            while let Ok(Some(raw)) = reader.next().await {
                let kind = raw.packet_type();
                if let (PUBACK | PUBREC | PUBCOMP, Some(id)) =
                    (kind, wire::ack_id(raw.data_as_slice()))
                    && acks_tx.send((kind, id)).await.is_err()
                {
                    return;
                }
            }
        });
        let mut free: Vec<u16> = (1..=window).rev().collect();
        let mut release = Vec::new();
        let handle = |(kind, id): (u8, u16), free: &mut Vec<u16>, release: &mut Vec<u16>| match kind
        {
            PUBREC => release.push(id),
            _ => free.push(id),
        };
        loop {
            while let Ok(ack) = acks.try_recv() {
                handle(ack, &mut free, &mut release);
            }
            let releasing = std::mem::take(&mut release);
            let allowed = pace.allowed();
            let paced = !stop.done(count) && !free.is_empty() && allowed <= count;
            if !releasing.is_empty() || (!free.is_empty() && !stop.done(count) && !paced) {
                batch.clear();
                for id in releasing {
                    wire::put_ack(&mut batch, PUBREL, id);
                }
                let mut n = 0u64;
                while !stop.done(count + n) && count + n < allowed {
                    let Some(id) = free.pop() else { break };
                    next(&mut batch, id);
                    n += 1;
                }
                writer.write_all(&batch).await?;
                writer.flush().await?;
                count += n;
                sent.fetch_add(n, Ordering::Relaxed);
                continue;
            }
            if stop.done(count) && free.len() == usize::from(window) {
                break;
            }
            let ack = tokio::select! {
                ack = tokio::time::timeout(STEP_TIMEOUT, acks.recv()) => ack,
                () = pace.wait(count), if paced => continue,
            };
            match ack {
                Ok(Some(ack)) => handle(ack, &mut free, &mut release),
                Ok(None) => bail!(
                    "connection closed with {} messages unacknowledged",
                    usize::from(window) - free.len()
                ),
                Err(_) => bail!("no acknowledgement for {STEP_TIMEOUT:?}"),
            }
        }
        acks_reader.abort();
    }
    let mut buf = BytesMut::new();
    crate::mqtt::encode(&crate::client::packets::disconnect(version), &mut buf);
    let _ = writer.write_all(&buf).await;
    let _ = writer.shutdown().await;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_publishers_share_the_interval_unless_aligned() {
        let started = Instant::now();
        let starts = |aligned| -> Vec<Duration> {
            (0..4)
                .map(|i| publisher_pace(started, Some(100.0), aligned, i, 4).start - started)
                .collect()
        };
        let ms = |m: f64| Duration::from_secs_f64(m / 1000.0);
        assert_eq!(starts(false), [ms(0.0), ms(2.5), ms(5.0), ms(7.5)]);
        assert_eq!(starts(true), [Duration::ZERO; 4]);
        let unpaced = publisher_pace(started, None, false, 3, 4);
        assert_eq!((unpaced.start, unpaced.every), (started, None));
        // A start still ahead allows nothing yet.
        let ahead = publisher_pace(Instant::now(), Some(1.0), false, 1, 2);
        assert_eq!(ahead.allowed(), 0);
    }
}
