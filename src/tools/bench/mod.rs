//! `mqttbridge bench`: a load generator for any URL the client library
//! speaks (tcp, quic, scion-quic), in the spirit of emqtt-bench.
//!
//! Three modes: `throughput` (N publishers -> M subscribers), `latency`
//! (sequential publish -> delivery) and `connections` (N idle connections
//! opened at a rate and held). Each prints a live progress line on a
//! terminal and a summary at the end, or JSON with `--json`, and can draw
//! an SVG chart with `--plot`.
//!
//! The clients here work at the packet level (see [`wire`]) so that the
//! generator costs less than what it measures. Every payload of at least
//! [`STAMP_LEN`] bytes starts with a stamp (send time, publisher, sequence)
//! from which subscribers measure latency, loss, duplicates and order.

mod args;
mod connections;
mod latency;
mod pace;
mod plot;
mod report;
mod subscriber;
mod throughput;
mod wire;

use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::BytesMut;
use mqtt_protocol_core::mqtt::packet::Property;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};

use crate::client::{ClientOptions, packets};
use crate::mqtt::PacketReader;
use crate::mqtt::{self, DEFAULT_MAX_PACKET_SIZE, Packet, Version};
use crate::net::connector::{self as transport, BoxedStream, Endpoint, TransportOptions};

pub use args::{BenchArgs, BenchMode, BenchOutput, ConnectionsArgs, LatencyArgs, ThroughputArgs};
pub use connections::Watched;
pub use report::Report;

/// Bytes at the start of a payload that carry its stamp.
pub const STAMP_LEN: usize = 16;

/// How long one connection attempt, or one step of a run, may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs one bench mode and prints its report.
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let output = match &args.mode {
        BenchMode::Throughput(a) => &a.output,
        BenchMode::Latency(a) => &a.output,
        BenchMode::Connections(a) => &a.output,
    }
    .clone();
    let report = match args.mode {
        BenchMode::Throughput(a) => throughput::run(a).await?,
        BenchMode::Latency(a) => latency::run(a).await?,
        BenchMode::Connections(a) => connections::run(a).await?,
    };
    let text = if output.json {
        format!("{}\n", serde_json::to_string_pretty(&report)?)
    } else {
        report.table()
    };
    // A reader that stopped early (`| head`) is no failure of the bench.
    if let Err(e) = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e.into());
    }
    if let Some(path) = &output.plot {
        std::fs::write(path, report.svg())
            .with_context(|| format!("writing {}", path.display()))?;
        if !output.json {
            println!("chart: {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where and how the bench clients connect.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    endpoint: Endpoint,
    transport: TransportOptions,
    pub version: Version,
    keep_alive: u16,
    /// Client ids are this prefix and a role and number.
    pub id_prefix: String,
}

impl Target {
    /// From the usual client flags; a scion-quic URL gets one SCION stack
    /// that every connection shares.
    pub async fn new(options: ClientOptions) -> anyhow::Result<Self> {
        let endpoint: Endpoint = options.url.parse().map_err(anyhow::Error::msg)?;
        let mut transport = options.transport;
        if matches!(endpoint, Endpoint::ScionQuic(_)) && transport.scion_stack.is_none() {
            let api = transport
                .endhost_api
                .clone()
                .context("a scion-quic URL needs --endhost-api")?;
            let stack = crate::net::scion::shared_stack(api, transport.snap_token.clone()).await?;
            transport.scion_stack = Some(stack);
        }
        Ok(Self {
            url: options.url,
            endpoint,
            transport,
            version: options.version,
            keep_alive: options.keep_alive.as_secs().min(u64::from(u16::MAX)) as u16,
            id_prefix: options.client_id,
        })
    }

    /// Opens a connection and completes CONNECT (clean start).
    pub async fn connect(&self, client_id: &str) -> anyhow::Result<Link> {
        tokio::time::timeout(STEP_TIMEOUT, self.connect_unbounded(client_id))
            .await
            .with_context(|| format!("connecting {client_id} timed out"))?
    }

    async fn connect_unbounded(&self, client_id: &str) -> anyhow::Result<Link> {
        let stream = transport::open(&self.endpoint, &self.transport).await?;
        let (rd, mut writer) = tokio::io::split(stream);
        let mut reader = PacketReader::new(rd, DEFAULT_MAX_PACKET_SIZE * 4);
        let connect = packets::connect(self.version, client_id, true, self.keep_alive)?;
        let mut buf = BytesMut::new();
        mqtt::encode(&connect, &mut buf);
        writer.write_all(&buf).await?;
        writer.flush().await?;
        let raw = reader.next().await?.context("closed before CONNACK")?;
        let mut receive_maximum = u16::MAX;
        match mqtt::decode(self.version, &raw)? {
            Packet::V3_1_1Connack(c) if c.return_code() as u8 == 0 => {}
            Packet::V5_0Connack(c) if (c.reason_code() as u8) < 0x80 => {
                for p in &c.props {
                    if let Property::ReceiveMaximum(m) = p {
                        receive_maximum = m.val();
                    }
                }
            }
            Packet::V3_1_1Connack(c) => bail!("CONNACK refused: {:#04x}", c.return_code() as u8),
            Packet::V5_0Connack(c) => bail!("CONNACK refused: {:#04x}", c.reason_code() as u8),
            other => bail!("expected CONNACK, got {}", mqtt::packet_type_name(&other)),
        }
        Ok(Link {
            reader,
            writer,
            receive_maximum,
        })
    }
}

/// One connected bench client.
pub struct Link {
    pub reader: PacketReader<ReadHalf<BoxedStream>>,
    pub writer: WriteHalf<BoxedStream>,
    /// The broker's MQTT 5 receive maximum (65535 when not given).
    pub receive_maximum: u16,
}

impl Link {
    /// Subscribes to `filter` and waits for the SUBACK.
    pub async fn subscribe(
        &mut self,
        version: Version,
        filter: &str,
        qos: u8,
    ) -> anyhow::Result<()> {
        let mut buf = BytesMut::new();
        mqtt::encode(&packets::subscribe(version, 1, filter, qos)?, &mut buf);
        self.writer.write_all(&buf).await?;
        self.writer.flush().await?;
        tokio::time::timeout(STEP_TIMEOUT, async {
            loop {
                let raw = self.reader.next().await?.context("closed before SUBACK")?;
                if raw.packet_type() == wire::SUBACK {
                    let granted = raw.data_as_slice().last().copied().unwrap_or(0x80);
                    anyhow::ensure!(granted < 0x80, "subscription refused: {granted:#04x}");
                    return Ok(());
                }
            }
        })
        .await
        .context("no SUBACK in time")?
    }

    /// Sends DISCONNECT and closes the connection.
    pub async fn disconnect(mut self, version: Version) {
        let mut buf = BytesMut::new();
        mqtt::encode(&packets::disconnect(version), &mut buf);
        let _ = self.writer.write_all(&buf).await;
        let _ = self.writer.shutdown().await;
    }
}

/// The stamp at the start of a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// When it was sent, nanoseconds since [`epoch`].
    pub sent_ns: u64,
    pub publisher: u32,
    pub sequence: u32,
}

impl Stamp {
    /// Writes the stamp into the first [`STAMP_LEN`] bytes of `payload`
    /// (a payload shorter than that carries none).
    pub fn write(&self, payload: &mut [u8]) {
        if let Some(head) = payload.get_mut(..STAMP_LEN) {
            head[..8].copy_from_slice(&self.sent_ns.to_be_bytes());
            head[8..12].copy_from_slice(&self.publisher.to_be_bytes());
            head[12..16].copy_from_slice(&self.sequence.to_be_bytes());
        }
    }

    /// The stamp of a payload, if it is long enough to carry one.
    pub fn read(payload: &[u8]) -> Option<Self> {
        let head = payload.get(..STAMP_LEN)?;
        let u32_at =
            |i: usize| u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        Some(Self {
            sent_ns: u64::from_be_bytes(head[..8].try_into().ok()?),
            publisher: u32_at(8),
            sequence: u32_at(12),
        })
    }
}

/// The instant all stamps count from (the first use in this process).
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since [`epoch`].
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos().min(u128::from(u64::MAX)) as u64
}

/// A unique topic prefix for one run, so runs never see each other's
/// messages.
pub fn run_topic(prefix: &str) -> String {
    format!("{prefix}/{:08x}", rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips_and_short_payloads_carry_none() {
        let stamp = Stamp {
            sent_ns: 123_456_789_012,
            publisher: 7,
            sequence: 99,
        };
        let mut payload = vec![0u8; 20];
        stamp.write(&mut payload);
        assert_eq!(Stamp::read(&payload), Some(stamp));
        let mut short = vec![0u8; 8];
        stamp.write(&mut short);
        assert_eq!(short, vec![0u8; 8]);
        assert_eq!(Stamp::read(&short), None);
    }
}
