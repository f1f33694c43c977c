//! Same-run comparison of every line against mosquitto directly:
//! throughput (QoS 0, 16-byte payloads, 1 publisher -> 1 subscriber, both
//! through the line measured) and sequential publish -> delivery latency.
//! Prints ratios to the direct baseline measured in the same run.
//!
//!   cargo run --release --example bench_lines [messages]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mqttbridge::client::transport::{self, Endpoint, TransportOptions};
use mqttbridge::client::{Connection, exchange, packets};
use mqttbridge::codec::{self, Version};
use mqttbridge::config::{QuicTransport, RProxyConfig, SProxyConfig, ScionQuicConfig};
use mqttbridge::mode::{r_proxy::RProxy, s_proxy::SProxy, scion_quic::ScionQuic};
use mqttbridge::mosquitto::Mosquitto;
use mqttbridge::quic::ClientTls;
use pocketscion::util::dev_auth_token;
use pocketscion::util::topologies::{IA132, IA212, UnderlayType, minimal::minimal_topology};
use tokio::io::AsyncWriteExt;

const BOUND: Duration = Duration::from_secs(300);

struct Line {
    name: &'static str,
    endpoint: Endpoint,
    options: TransportOptions,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let messages: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(200_000);
    let broker = Mosquitto::start("max_queued_messages 0").await?;
    let direct = broker.addr().to_string();

    let s_proxy = SProxy::bind(SProxyConfig {
        listen: "127.0.0.1:0".parse().map_err(anyhow::Error::msg)?,
        broker: direct.parse().map_err(anyhow::Error::msg)?,
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

    let dir = tempfile::tempdir()?;
    let certs = mqttbridge::certs::generate(dir.path(), &["localhost"])?;
    let token = dir.path().join("snap.token");
    std::fs::write(&token, dev_auth_token())?;
    let quic_config = |transport, listen: Option<&str>| ScionQuicConfig {
        transport,
        listen: listen.map(str::to_string),
        broker: direct.parse().expect("broker address"),
        cert: Some(certs.server_cert.clone()),
        key: Some(certs.server_key.clone()),
        ..ScionQuicConfig::default()
    };
    let quic = ScionQuic::bind(quic_config(QuicTransport::Quic, Some("127.0.0.1:0"))).await?;
    let quic_url = format!("quic://{}", quic.local_addr());
    tokio::spawn(quic.serve(std::future::pending()));

    let network = minimal_topology(UnderlayType::Snap).await;
    let scion = ScionQuic::bind(ScionQuicConfig {
        endhost_api: network.endhost_api(IA212),
        snap_token_file: Some(token),
        ..quic_config(QuicTransport::Scion, None)
    })
    .await?;
    let scion_url = format!("scion-quic://{}", scion.local_addr());
    tokio::spawn(scion.serve(std::future::pending()));
    let stack = mqttbridge::scion::build_stack(
        network.endhost_api(IA132).expect("endhost API"),
        Some(dev_auth_token()),
    )
    .await?;
    let tls = TransportOptions {
        tls: ClientTls {
            ca: Some(certs.ca.clone()),
            ..ClientTls::default()
        },
        server_name: Some("localhost".into()),
        scion_stack: Some(Arc::new(stack)),
        ..TransportOptions::default()
    };
    let parse = |url: &str| url.parse::<Endpoint>().map_err(anyhow::Error::msg);
    let lines = [
        Line {
            name: "direct mosquitto",
            endpoint: parse(&format!("tcp://{direct}"))?,
            options: TransportOptions::default(),
        },
        Line {
            name: "gRPC line",
            endpoint: parse(&format!("tcp://{r_addr}"))?,
            options: TransportOptions::default(),
        },
        Line {
            name: "quic",
            endpoint: parse(&quic_url)?,
            options: tls.clone(),
        },
        Line {
            name: "scion-quic",
            endpoint: parse(&scion_url)?,
            options: tls,
        },
    ];

    println!("{messages} messages, QoS 0, 16-byte payloads, 1 publisher -> 1 subscriber");
    println!(
        "{:<18} {:>12} {:>8} {:>9} {:>9} {:>10} {:>10}",
        "line", "msg/s", "ratio", "p50 us", "p99 us", "+p50 us", "+p99 us"
    );
    let mut base: Option<(f64, u64, u64)> = None;
    for (i, line) in lines.iter().enumerate() {
        let rate = throughput(line, messages, i).await?;
        let samples = latency(line, 2000, i).await?;
        let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
        let (base_rate, base_p50, base_p99) = *base.get_or_insert((rate, p50, p99));
        println!(
            "{:<18} {:>12.0} {:>8.3} {:>9} {:>9} {:>10} {:>10}",
            line.name,
            rate,
            rate / base_rate,
            p50,
            p99,
            p50 as i64 - base_p50 as i64,
            p99 as i64 - base_p99 as i64
        );
    }
    Ok(())
}

async fn connection(line: &Line, id: &str) -> anyhow::Result<Connection> {
    let stream = transport::open(&line.endpoint, &line.options).await?;
    let mut conn = Connection::over(stream, Version::V5);
    let code = exchange::connect(&mut conn, &packets::connect(Version::V5, id, true, 60)?).await?;
    anyhow::ensure!(code == 0, "CONNACK {code:#04x}");
    Ok(conn)
}

async fn throughput(line: &Line, messages: usize, tag: usize) -> anyhow::Result<f64> {
    let topic = format!("bench/t{tag}");
    let mut sub = connection(line, &format!("tsub{tag}")).await?;
    exchange::subscribe(&mut sub, 1, &topic, 0).await?;
    // The publisher writes raw batches so that it is never the bottleneck.
    let mut publisher = transport::open(&line.endpoint, &line.options).await?;
    let mut buf = BytesMut::new();
    codec::encode(
        &packets::connect(Version::V5, &format!("tpub{tag}"), true, 60)?,
        &mut buf,
    );
    publisher.write_all(&buf).await?;
    buf.clear();
    codec::encode(
        &packets::publish(Version::V5, &topic, vec![b'x'; 16], 0, false, 0, vec![])?,
        &mut buf,
    );
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
            publisher.write_all(&batch).await?;
        }
        anyhow::Ok(publisher)
    });
    let mut received = 0;
    tokio::time::timeout(BOUND, async {
        while received < messages {
            match sub.recv().await? {
                Some(p) if packets::received(&p).is_some() => received += 1,
                Some(_) => {}
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

async fn latency(line: &Line, rounds: usize, tag: usize) -> anyhow::Result<Vec<u64>> {
    let topic = format!("bench/l{tag}");
    let mut sub = connection(line, &format!("lsub{tag}")).await?;
    exchange::subscribe(&mut sub, 1, &topic, 0).await?;
    let mut publisher = connection(line, &format!("lpub{tag}")).await?;
    let publish = packets::publish(Version::V5, &topic, vec![b'x'; 16], 0, false, 0, vec![])?;
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
