//! Same-run comparison of the gRPC line against mosquitto directly:
//! throughput (QoS 0, 16-byte payloads, 1 publisher -> 1 subscriber) and
//! sequential publish -> delivery latency. Prints ratios to the direct
//! baseline, measured in the same run on the same machine.
//!
//!   cargo run --release --example bench_grpc_line [messages]

use std::time::{Duration, Instant};

use bytes::BytesMut;
use mqttbridge::client::{Connection, exchange, packets};
use mqttbridge::codec::{self, Version};
use mqttbridge::config::{RProxyConfig, SProxyConfig};
use mqttbridge::mode::{r_proxy::RProxy, s_proxy::SProxy};
use mqttbridge::mosquitto::Mosquitto;
use mqttbridge::relay::PacketReader;
use tokio::io::AsyncWriteExt;

const BOUND: Duration = Duration::from_secs(120);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let messages: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(200_000);
    let broker = Mosquitto::start("max_queued_messages 0").await?;
    let s_proxy = SProxy::bind(SProxyConfig {
        listen: "127.0.0.1:0".parse().map_err(anyhow::Error::msg)?,
        broker: broker
            .addr()
            .to_string()
            .parse()
            .map_err(anyhow::Error::msg)?,
        ..Default::default()
    })
    .await?;
    let s_addr = s_proxy.local_addr()?;
    tokio::spawn(s_proxy.serve(std::future::pending()));
    let r_proxy = RProxy::bind(RProxyConfig {
        listen: "127.0.0.1:0".parse().map_err(anyhow::Error::msg)?,
        upstream: vec![
            format!("http://{s_addr}")
                .parse()
                .map_err(anyhow::Error::msg)?,
        ],
        ..Default::default()
    })
    .await?;
    let r_addr = r_proxy.local_addr()?.to_string();
    tokio::spawn(r_proxy.serve(std::future::pending()));
    let direct = broker.addr().to_string();

    println!("gRPC line vs direct mosquitto, {messages} messages, QoS 0, 16-byte payloads");
    let base_rate = throughput(&direct, messages, "d").await?;
    let chain_rate = throughput(&r_addr, messages, "c").await?;
    println!("throughput  direct {base_rate:>10.0} msg/s");
    println!(
        "throughput  chain  {chain_rate:>10.0} msg/s   ratio {:.3}",
        chain_rate / base_rate
    );

    let base = latency(&direct, 2000, "d").await?;
    let chain = latency(&r_addr, 2000, "c").await?;
    for (name, q) in [("p50", 0.50), ("p99", 0.99)] {
        let b = percentile(&base, q);
        let c = percentile(&chain, q);
        println!(
            "latency {name}  direct {b:>6} us   chain {c:>6} us   added {:>6} us",
            c as i64 - b as i64
        );
    }
    Ok(())
}

async fn throughput(addr: &str, messages: usize, tag: &str) -> anyhow::Result<f64> {
    let mut sub = Connection::open(addr, Version::V5).await?;
    exchange::connect(
        &mut sub,
        &packets::connect(Version::V5, &format!("{tag}-sub"), true, 60)?,
    )
    .await?;
    exchange::subscribe(&mut sub, 1, "bench/t", 0).await?;
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (rd, mut wr) = stream.into_split();
    let mut publisher_reader = PacketReader::new(rd, 1 << 20);
    let mut buf = BytesMut::new();
    codec::encode(
        &packets::connect(Version::V5, &format!("{tag}-pub"), true, 60)?,
        &mut buf,
    );
    wr.write_all(&buf).await?;
    publisher_reader.next().await?;
    let publish = packets::publish(Version::V5, "bench/t", vec![b'x'; 16], 0, false, 0, vec![])?;
    buf.clear();
    codec::encode(&publish, &mut buf);
    let one = buf.split().freeze();

    let start = Instant::now();
    let writer = tokio::spawn(async move {
        let mut batch = BytesMut::with_capacity(one.len() * 256);
        let mut sent = 0;
        while sent < messages {
            batch.clear();
            for _ in 0..256.min(messages - sent) {
                batch.extend_from_slice(&one);
                sent += 1;
            }
            wr.write_all(&batch).await?;
        }
        anyhow::Ok(wr)
    });
    let mut received = 0;
    tokio::time::timeout(BOUND, async {
        while received < messages {
            match sub.recv().await? {
                Some(_) => received += 1,
                None => anyhow::bail!("subscriber closed after {received}"),
            }
        }
        anyhow::Ok(())
    })
    .await??;
    let elapsed = start.elapsed();
    writer.await??;
    Ok(messages as f64 / elapsed.as_secs_f64())
}

async fn latency(addr: &str, rounds: usize, tag: &str) -> anyhow::Result<Vec<u64>> {
    let mut sub = Connection::open(addr, Version::V5).await?;
    exchange::connect(
        &mut sub,
        &packets::connect(Version::V5, &format!("{tag}-lsub"), true, 60)?,
    )
    .await?;
    exchange::subscribe(&mut sub, 1, "bench/l", 0).await?;
    let mut publisher = Connection::open(addr, Version::V5).await?;
    exchange::connect(
        &mut publisher,
        &packets::connect(Version::V5, &format!("{tag}-lpub"), true, 60)?,
    )
    .await?;
    let publish = packets::publish(Version::V5, "bench/l", vec![b'x'; 16], 0, false, 0, vec![])?;
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        publisher.send(&publish).await?;
        tokio::time::timeout(BOUND, sub.recv()).await??;
        samples.push(start.elapsed().as_micros() as u64);
    }
    samples.sort_unstable();
    Ok(samples)
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i]
}
