//! A relay direction's packet and byte counters as a pump uses them: looked
//! up once per pump, PUBLISHes added once per burst.

use std::sync::{Mutex, OnceLock};

use prometheus_client::metrics::counter::Counter;

use super::labels::TrafficLabels;
use super::telemetry::METRICS;

/// Packet and byte counters of one relay direction, looked up once and then
/// only incremented (the hot path takes no lock). Shared by every session
/// of the same mode and direction, so a session holds only a reference,
/// and the PUBLISHes of a burst: those are added once per burst
/// ([`TrafficCounters::settle`], when the pump waits or goes), where an
/// addition per packet and counter cost each proxy two atomic operations
/// per message and direction.
pub struct TrafficCounters {
    counters: &'static DirectionCounters,
    /// PUBLISHes counted and not yet added, and their bytes.
    publishes: u64,
    publish_bytes: u64,
}

/// The counters of one mode and direction.
struct DirectionCounters {
    mode: &'static str,
    direction: &'static str,
    bytes: Counter,
    /// By MQTT packet type code (1..=15), created on first use.
    packets: [OnceLock<Counter>; 16],
}

/// Every mode and direction counted so far: a handful (modes times two
/// directions), made once each and kept for the life of the process.
static DIRECTIONS: Mutex<Vec<&'static DirectionCounters>> = Mutex::new(Vec::new());

/// The packet type code of PUBLISH.
const PUBLISH: u8 = 3;

impl TrafficCounters {
    /// Counters for `mode` and `direction`.
    pub fn new(mode: &'static str, direction: &'static str) -> Self {
        // A poisoned lock only means a panic elsewhere; the list is whole.
        let mut known = DIRECTIONS.lock().unwrap_or_else(|e| e.into_inner());
        let counters = match known
            .iter()
            .find(|c| c.mode == mode && c.direction == direction)
        {
            Some(counters) => counters,
            None => {
                let counters: &'static DirectionCounters = Box::leak(Box::new(DirectionCounters {
                    mode,
                    direction,
                    bytes: METRICS.bytes.get_or_create_owned(&TrafficLabels {
                        mode,
                        direction,
                        packet_type: "all",
                    }),
                    packets: Default::default(),
                }));
                known.push(counters);
                counters
            }
        };
        Self {
            counters,
            publishes: 0,
            publish_bytes: 0,
        }
    }

    /// Counts one packet of type `code` (named `name`) and `bytes` bytes;
    /// a PUBLISH only here until [`TrafficCounters::settle`].
    pub fn count(&mut self, code: u8, name: &'static str, bytes: usize) {
        let code = code & 0x0f;
        if code == PUBLISH {
            self.publishes += 1;
            self.publish_bytes += bytes as u64;
            return;
        }
        self.counters.bytes.inc_by(bytes as u64);
        self.counters.packet(code, name).inc();
    }

    /// Adds the PUBLISHes counted since the last time to the metrics.
    pub fn settle(&mut self) {
        if self.publishes == 0 {
            return;
        }
        self.counters.bytes.inc_by(self.publish_bytes);
        self.counters
            .packet(PUBLISH, "publish")
            .inc_by(self.publishes);
        self.publishes = 0;
        self.publish_bytes = 0;
    }
}

impl Drop for TrafficCounters {
    fn drop(&mut self) {
        self.settle();
    }
}

impl DirectionCounters {
    /// The counter of packets of type `code`, named `name`.
    fn packet(&'static self, code: u8, name: &'static str) -> &'static Counter {
        self.packets[usize::from(code)].get_or_init(|| {
            METRICS.packets.get_or_create_owned(&TrafficLabels {
                mode: self.mode,
                direction: self.direction,
                packet_type: name,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publishes() -> (u64, u64) {
        let labels = |packet_type| TrafficLabels {
            mode: "test-traffic",
            direction: "client_to_broker",
            packet_type,
        };
        (
            METRICS.packets.get_or_create(&labels("publish")).get(),
            METRICS.bytes.get_or_create(&labels("all")).get(),
        )
    }

    #[test]
    fn publishes_are_added_when_settled_and_when_dropped() {
        let mut counters = TrafficCounters::new("test-traffic", "client_to_broker");
        counters.count(3, "publish", 10);
        counters.count(3, "publish", 20);
        assert_eq!(publishes(), (0, 0), "not yet");
        counters.settle();
        assert_eq!(publishes(), (2, 30));
        counters.count(3, "publish", 5);
        drop(counters);
        assert_eq!(publishes(), (3, 35), "the drop adds what was left");
        // Anything else is added at once.
        let mut counters = TrafficCounters::new("test-traffic", "client_to_broker");
        counters.count(12, "pingreq", 2);
        assert_eq!(publishes(), (3, 37));
    }
}
