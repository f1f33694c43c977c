//! The subscribing side of `bench throughput`: each subscriber counts what
//! it receives, acknowledges it as its QoS requires, and from each payload's
//! stamp measures latency, duplicates and order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::BytesMut;
use futures_util::FutureExt;
use hdrhistogram::Histogram;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use super::pace::Pace;
use super::report::latency_histogram;
use super::wire::{self, PUBACK, PUBCOMP, PUBREC, PUBREL};
use super::{Link, Stamp, now_ns};
use crate::mqtt::Version;

/// What one subscriber counted.
pub(super) struct Counted {
    pub(super) unique: u64,
    pub(super) duplicates: u64,
    pub(super) out_of_order: u64,
    pub(super) latency: Histogram<u64>,
}

/// Shared between the subscribers and the run.
pub(super) struct Deliveries {
    /// Unique deliveries so far, all subscribers.
    pub(super) count: AtomicU64,
    /// When the latest delivery arrived (ns since the bench epoch).
    pub(super) last_ns: AtomicU64,
}

/// Which sequence numbers of one publisher a subscriber has seen.
#[derive(Default)]
struct Seen {
    bits: Vec<u64>,
    highest: Option<u32>,
}

impl Seen {
    /// Records `sequence`; returns (new, out of order).
    fn record(&mut self, sequence: u32) -> (bool, bool) {
        let (word, bit) = ((sequence / 64) as usize, sequence % 64);
        if self.bits.len() <= word {
            self.bits.resize(word + 1, 0);
        }
        let new = self.bits[word] & (1 << bit) == 0;
        self.bits[word] |= 1 << bit;
        let late = self.highest.is_some_and(|h| sequence < h);
        if self.highest.is_none_or(|h| sequence > h) {
            self.highest = Some(sequence);
        }
        (new, new && late)
    }
}

/// What one subscriber needs.
pub(super) struct Subscriber {
    pub(super) link: Link,
    pub(super) version: Version,
    pub(super) publishers: usize,
    /// Time per message taken, for a slow consumer.
    pub(super) pace: Option<Duration>,
    pub(super) deliveries: Arc<Deliveries>,
    pub(super) goal: watch::Receiver<u64>,
    pub(super) halted: watch::Receiver<bool>,
}

pub(super) async fn subscribe_loop(s: Subscriber) -> anyhow::Result<Counted> {
    let Subscriber {
        link,
        version,
        publishers,
        pace,
        deliveries,
        mut goal,
        mut halted,
    } = s;
    let pace = Pace {
        start: Instant::now(),
        every: pace,
    };
    let mut taken = 0u64;
    let Link {
        mut reader,
        mut writer,
        ..
    } = link;
    let mut seen: Vec<Seen> = (0..publishers).map(|_| Seen::default()).collect();
    let mut counted = Counted {
        unique: 0,
        duplicates: 0,
        out_of_order: 0,
        latency: latency_histogram(),
    };
    let mut acks = BytesMut::new();
    let mut wanted = u64::MAX;
    loop {
        if counted.unique >= wanted {
            break;
        }
        if taken >= pace.allowed() {
            // A slow consumer: answer what was taken, then stop reading
            // until the next message is due.
            send_acks(&mut writer, &mut acks).await?;
            tokio::select! {
                () = pace.wait(taken) => {}
                _ = halted.wait_for(|h| *h) => break,
            }
        }
        let next = match reader.next().now_or_never() {
            Some(next) => next,
            None => {
                // Nothing buffered: acknowledge what was read, then wait.
                send_acks(&mut writer, &mut acks).await?;
                tokio::select! {
                    next = reader.next() => next,
                    changed = goal.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        wanted = *goal.borrow_and_update();
                        continue;
                    }
                    _ = halted.wait_for(|h| *h) => break,
                }
            }
        };
        let Some(raw) = next? else { break };
        match raw.packet_type() {
            wire::PUBLISH => {
                taken += 1;
                let Some(publish) = wire::parse_publish(version, raw.flags(), raw.data_as_slice())
                else {
                    bail!("malformed PUBLISH");
                };
                match publish.qos {
                    1 => wire::put_ack(&mut acks, PUBACK, publish.packet_id),
                    2 => wire::put_ack(&mut acks, PUBREC, publish.packet_id),
                    _ => {}
                }
                let now = now_ns();
                let Some(stamp) = Stamp::read(publish.payload) else {
                    counted.unique += 1;
                    deliveries.count.fetch_add(1, Ordering::Relaxed);
                    deliveries.last_ns.fetch_max(now, Ordering::Relaxed);
                    continue;
                };
                let (new, late) = match seen.get_mut(stamp.publisher as usize) {
                    Some(s) => s.record(stamp.sequence),
                    None => bail!("a message from an unknown publisher {}", stamp.publisher),
                };
                if new {
                    counted.unique += 1;
                    deliveries.count.fetch_add(1, Ordering::Relaxed);
                    deliveries.last_ns.fetch_max(now, Ordering::Relaxed);
                    counted
                        .latency
                        .saturating_record(now.saturating_sub(stamp.sent_ns).max(1));
                } else {
                    counted.duplicates += 1;
                }
                if late {
                    counted.out_of_order += 1;
                }
            }
            PUBREL => {
                if let Some(id) = wire::ack_id(raw.data_as_slice()) {
                    wire::put_ack(&mut acks, PUBCOMP, id);
                }
            }
            _ => {}
        }
    }
    if !acks.is_empty() {
        let _ = writer.write_all(&acks).await;
    }
    Link {
        reader,
        writer,
        receive_maximum: 0,
    }
    .disconnect(version)
    .await;
    Ok(counted)
}

/// Writes the acknowledgements gathered so far, if any.
async fn send_acks(
    writer: &mut (impl tokio::io::AsyncWrite + Unpin),
    acks: &mut BytesMut,
) -> std::io::Result<()> {
    if !acks.is_empty() {
        writer.write_all(acks).await?;
        writer.flush().await?;
        acks.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_tells_new_duplicate_and_late() {
        let mut seen = Seen::default();
        assert_eq!(seen.record(0), (true, false));
        assert_eq!(seen.record(2), (true, false));
        assert_eq!(seen.record(1), (true, true));
        assert_eq!(seen.record(2), (false, false));
        assert_eq!(seen.record(200), (true, false));
    }
}
