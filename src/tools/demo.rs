//! `mqttbridge demo`: both lines on one machine. Starts mosquitto on a free
//! port, an s-proxy and an r-proxy (the gRPC line), an in-process SCION
//! network (pocketscion) with the scion-quic proxy in one AS, then sends
//! through both: MQTT 3.1.1 and 5.0 at QoS 0, 1 and 2 over the gRPC line, and
//! MQTT over QUIC over SCION from the other AS to a subscriber on the gRPC
//! line, printing each message as it arrives.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::oneshot;

use crate::client::{Connection, exchange, packets};
use crate::mqtt::Version;
use crate::service::Service;
use crate::service::r_proxy::RProxy;
use crate::service::r_proxy::RProxyConfig;
use crate::service::s_proxy::SProxy;
use crate::service::s_proxy::SProxyConfig;
use crate::tools::mosquitto::Mosquitto;

/// Upper bound for the whole message exchange.
const DEMO_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the demo; exit status 0 when every message arrived.
pub async fn run(count: u32) -> anyhow::Result<ExitCode> {
    let broker = Mosquitto::start("").await?;
    println!("mosquitto      listening on {}", broker.addr());

    let s_proxy = SProxy::bind(SProxyConfig {
        listen: "127.0.0.1:0".parse().map_err(anyhow::Error::msg)?,
        broker: broker
            .addr()
            .to_string()
            .parse()
            .map_err(anyhow::Error::msg)?,
        ..SProxyConfig::default()
    })
    .await?;
    let s_addr = s_proxy.local_addr()?;
    println!(
        "s-proxy (gRPC) listening on {s_addr}, broker {}",
        broker.addr()
    );
    let (stop_s, s_stopped) = oneshot::channel::<()>();
    let s_task = tokio::spawn(s_proxy.serve(async move {
        let _ = s_stopped.await;
    }));

    let r_proxy = RProxy::bind(RProxyConfig {
        listen: "127.0.0.1:0".parse().map_err(anyhow::Error::msg)?,
        upstream: vec![
            format!("http://{s_addr}")
                .parse()
                .map_err(anyhow::Error::msg)?,
        ],
        ..RProxyConfig::default()
    })
    .await?;
    let r_addr = r_proxy.local_addr()?.to_string();
    println!("r-proxy (MQTT) listening on {r_addr}, upstream http://{s_addr}");
    let (stop_r, r_stopped) = oneshot::channel::<()>();
    let r_task = tokio::spawn(r_proxy.serve(async move {
        let _ = r_stopped.await;
    }));

    println!(
        "\nclient -> r-proxy -> gRPC -> s-proxy -> mosquitto -> s-proxy -> gRPC -> r-proxy -> client\n"
    );
    let result = tokio::time::timeout(DEMO_TIMEOUT, async {
        exchange_messages(&r_addr, count).await?;
        scion_leg(&r_addr, &broker.addr().to_string(), count).await
    })
    .await;
    let _ = stop_r.send(());
    let _ = stop_s.send(());
    let _ = r_task.await;
    let _ = s_task.await;
    match result {
        Ok(Ok(())) => {
            println!("\ndemo: all messages arrived");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Err(e)) => {
            eprintln!("\ndemo failed: {e:#}");
            Ok(ExitCode::FAILURE)
        }
        Err(_) => {
            eprintln!("\ndemo failed: messages did not arrive within {DEMO_TIMEOUT:?}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn exchange_messages(r_addr: &str, count: u32) -> anyhow::Result<()> {
    let mut subscriber = Connection::open(r_addr, Version::V5).await?;
    let code = exchange::connect(
        &mut subscriber,
        &packets::connect(Version::V5, "demo-subscriber", true, 30)?,
    )
    .await?;
    anyhow::ensure!(code == 0, "subscriber CONNACK {code:#04x}");
    exchange::subscribe(&mut subscriber, 1, "demo/#", 2).await?;
    println!("subscriber (MQTT 5.0) subscribed to demo/# at QoS 2");

    let mut expected = 0;
    for version in [Version::V3_1_1, Version::V5] {
        let mut publisher = Connection::open(r_addr, version).await?;
        let id = format!("demo-publisher-{}", version.to_string().replace('.', ""));
        let code =
            exchange::connect(&mut publisher, &packets::connect(version, &id, true, 30)?).await?;
        anyhow::ensure!(code == 0, "publisher CONNACK {code:#04x}");
        for level in 0..=2u8 {
            for n in 1..=count {
                let topic = format!("demo/v{version}/qos{level}");
                let payload = format!("message {n} of {count}");
                let sent = Instant::now();
                exchange::publish(
                    &mut publisher,
                    &topic,
                    payload,
                    level,
                    false,
                    n as u16,
                    vec![],
                )
                .await?;
                expected += 1;
                let message = exchange::receive(&mut subscriber)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("subscriber connection closed"))?;
                println!(
                    "received  {:<18} qos {}  {:<16} ({} us after publish)",
                    message.topic,
                    message.qos,
                    String::from_utf8_lossy(&message.payload),
                    sent.elapsed().as_micros()
                );
            }
        }
        publisher.send(&packets::disconnect(version)).await?;
    }
    subscriber.send(&packets::disconnect(Version::V5)).await?;
    println!("\n{expected} messages published and received through the chain");
    Ok(())
}

/// MQTT over QUIC over SCION: a publisher in AS 1-ff00:0:132 reaches the
/// scion-quic proxy in AS 2-ff00:0:212; a subscriber on the gRPC line gets
/// the messages from the same broker.
async fn scion_leg(r_addr: &str, broker: &str, count: u32) -> anyhow::Result<()> {
    use pocketscion::util::dev_auth_token;
    use pocketscion::util::topologies::{IA132, IA212, UnderlayType, minimal::minimal_topology};

    use crate::client::{Client, ClientOptions};
    use crate::net::connector::TransportOptions;
    use crate::net::tls::ClientTls;
    use crate::service::scion_quic::ScionQuic;
    use crate::service::scion_quic::{QuicTransport, ScionQuicConfig};

    let network = minimal_topology(UnderlayType::Snap).await;
    let dir = std::env::temp_dir().join(format!("mqttbridge-demo-{:x}", rand::random::<u64>()));
    let certs = crate::tools::certs::generate(&dir, &["localhost"])?;
    let token = dir.join("snap.token");
    std::fs::write(&token, dev_auth_token())?;
    let proxy = ScionQuic::bind(ScionQuicConfig {
        transport: QuicTransport::Scion,
        endhost_api: network.endhost_api(IA212),
        snap_token_file: Some(token),
        broker: broker.parse().map_err(anyhow::Error::msg)?,
        cert: Some(certs.server_cert.clone()),
        key: Some(certs.server_key.clone()),
        ..ScionQuicConfig::default()
    })
    .await?;
    let url = format!("scion-quic://{}", proxy.local_addr());
    println!("\npocketscion    AS 1-ff00:0:132 <-> AS 2-ff00:0:212, in-process");
    println!(
        "scion-quic     listening on {} (QUIC over SCION), broker {broker}",
        proxy.local_addr()
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(proxy.serve(async move {
        let _ = stopped.await;
    }));

    println!(
        "\nclient (AS 1-ff00:0:132) -> QUIC over SCION -> scion-quic -> mosquitto -> gRPC line -> subscriber\n"
    );
    let result = async {
        let mut subscriber = Connection::open(r_addr, Version::V5).await?;
        exchange::connect(
            &mut subscriber,
            &packets::connect(Version::V5, "demo-scion-sub", true, 30)?,
        )
        .await?;
        exchange::subscribe(&mut subscriber, 1, "demo/scion/#", 2).await?;
        let stack = crate::net::scion::build_stack(
            network
                .endhost_api(IA132)
                .ok_or_else(|| anyhow::anyhow!("no endhost API for 1-ff00:0:132"))?,
            Some(dev_auth_token()),
        )
        .await?;
        let mut options = ClientOptions::new(&url, "demo-scion-publisher");
        options.transport = TransportOptions {
            tls: ClientTls {
                ca: Some(certs.ca.clone()),
                ..ClientTls::default()
            },
            server_name: Some("localhost".into()),
            scion_stack: Some(std::sync::Arc::new(stack)),
            ..TransportOptions::default()
        };
        let (publisher, _) = Client::connect(options).await?;
        for level in 0..=2u8 {
            for n in 1..=count {
                let topic = format!("demo/scion/qos{level}");
                let sent = Instant::now();
                publisher
                    .publish(&topic, format!("over SCION {n} of {count}"), level, false)
                    .await?;
                let message = exchange::receive(&mut subscriber)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("subscriber connection closed"))?;
                println!(
                    "received  {:<18} qos {}  {:<16} ({} us after publish)",
                    message.topic,
                    message.qos,
                    String::from_utf8_lossy(&message.payload),
                    sent.elapsed().as_micros()
                );
            }
        }
        publisher.disconnect().await?;
        println!("\n{} messages published over SCION and received", 3 * count);
        anyhow::Ok(())
    }
    .await;
    let _ = stop.send(());
    let _ = task.await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Flags of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Messages to send at each QoS level and MQTT version.
    #[arg(long, default_value_t = 3)]
    pub count: u32,
}
