//! `mqttbridge pub` and `mqttbridge sub`: command-line clients in the style
//! of mosquitto_pub/mosquitto_sub, on the client library.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::client::{Client, ClientOptions};
use crate::mqtt::Version;
use crate::net::connector::TransportOptions;
use crate::net::tls::ClientTls;
use clap::Args;

/// Client settings from the shared connection flags.
pub(crate) fn options(args: &ClientArgs) -> anyhow::Result<ClientOptions> {
    let version = match args.protocol_version.as_str() {
        "311" | "mqttv311" => Version::V3_1_1,
        _ => Version::V5,
    };
    let client_id = args
        .client_id
        .clone()
        .unwrap_or_else(|| format!("mqttbridge-{:08x}", rand::random::<u32>()));
    let snap_token = args
        .snap_token_file
        .as_deref()
        .map(crate::net::scion::read_token)
        .transpose()?;
    Ok(ClientOptions {
        version,
        keep_alive: Duration::from_secs(args.keepalive),
        transport: TransportOptions {
            tls: ClientTls {
                ca: args.cafile.clone(),
                insecure: args.insecure,
                cert_chain: args.cert.clone(),
                private_key: args.key.clone(),
            },
            server_name: args.server_name.clone(),
            endhost_api: args.endhost_api.clone(),
            snap_token,
            ..TransportOptions::default()
        },
        ..ClientOptions::new(&args.url, &client_id)
    })
}

/// Publishes the message, waiting for its acknowledgement.
pub async fn publish(args: PubArgs) -> anyhow::Result<ExitCode> {
    let payload = match (&args.message, &args.file) {
        (Some(m), _) => m.clone().into_bytes(),
        (None, Some(path)) => {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, None) => Vec::new(),
    };
    let (client, _messages) = Client::connect(options(&args.client)?).await?;
    for _ in 0..args.repeat {
        client
            .publish(&args.topic, payload.clone(), args.qos, args.retain)
            .await?;
    }
    client.disconnect().await?;
    Ok(ExitCode::SUCCESS)
}

/// Prints messages until the count is reached, the timeout passes or the
/// connection ends.
pub async fn subscribe(args: SubArgs) -> anyhow::Result<ExitCode> {
    let (client, mut messages) = Client::connect(options(&args.client)?).await?;
    for topic in &args.topics {
        client.subscribe(topic, args.qos).await?;
    }
    let receive = async {
        let mut seen = 0u64;
        let stdout = std::io::stdout();
        while args.count.is_none_or(|c| seen < c) {
            let Some(message) = messages.recv().await else {
                anyhow::bail!("connection closed after {seen} messages");
            };
            let mut out = stdout.lock();
            if args.verbose {
                write!(out, "{} ", message.topic)?;
            }
            out.write_all(&message.payload)?;
            writeln!(out)?;
            out.flush()?;
            seen += 1;
        }
        Ok(())
    };
    let result = match args.timeout {
        Some(secs) => tokio::time::timeout(Duration::from_secs(secs), receive)
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out after {secs} s"))),
        None => receive.await,
    };
    let _ = client.disconnect().await;
    result.map(|()| ExitCode::SUCCESS)
}

/// Connection flags shared by `pub` and `sub`.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Where to connect: tcp://host:port, mqtts://host:port (TLS),
    /// ws://host:port/path or wss://host:port/path (WebSocket; path /mqtt
    /// when left out), quic://host:port or scion-quic://[ISD-AS,IP]:port.
    #[arg(long, short = 'L', default_value = "tcp://127.0.0.1:1883")]
    pub url: String,
    /// MQTT version: 311 or 5.
    #[arg(short = 'V', long = "protocol-version", default_value = "5", value_parser = ["311", "5", "mqttv311", "mqttv5"])]
    pub protocol_version: String,
    /// Client id [default: mqttbridge-<random>].
    #[arg(short = 'i', long = "id")]
    pub client_id: Option<String>,
    /// Keep-alive in seconds.
    #[arg(short = 'k', long, default_value_t = 60)]
    pub keepalive: u64,
    /// PEM CA bundle to check the server's certificate (mqtts, wss, quic).
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,
    /// Do not check the server's certificate (testing only).
    #[arg(long)]
    pub insecure: bool,
    /// PEM client certificate for mutual TLS.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// PEM client key for mutual TLS.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Name (or IP address) the server's certificate must carry [default: the
    /// URL's host; localhost for SCION]. An IP address is checked against the
    /// certificate's IP addresses, a name against its DNS names.
    #[arg(long)]
    pub server_name: Option<String>,
    /// Endhost API of the local SCION AS (scion-quic).
    #[arg(long, value_name = "URL")]
    pub endhost_api: Option<url::Url>,
    /// File with the SNAP token for the endhost API (scion-quic).
    #[arg(long, value_name = "FILE")]
    pub snap_token_file: Option<PathBuf>,
}

/// Flags of `pub`.
#[derive(Debug, Args)]
pub struct PubArgs {
    /// Connection settings.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Topic to publish to.
    #[arg(short = 't', long)]
    pub topic: String,
    /// Message payload.
    #[arg(short = 'm', long, conflicts_with = "file")]
    pub message: Option<String>,
    /// Send the contents of a file as the payload.
    #[arg(short = 'f', long)]
    pub file: Option<PathBuf>,
    /// QoS 0, 1 or 2.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Retain the message.
    #[arg(short = 'r', long)]
    pub retain: bool,
    /// Publish the message this many times.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
}

/// Flags of `sub`.
#[derive(Debug, Args)]
pub struct SubArgs {
    /// Connection settings.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Topic filter; repeat for several.
    #[arg(short = 't', long = "topic", required = true)]
    pub topics: Vec<String>,
    /// QoS to subscribe with.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Exit after this many messages.
    #[arg(short = 'C', long)]
    pub count: Option<u64>,
    /// Exit after this many seconds without the expected messages (error).
    #[arg(short = 'W', long)]
    pub timeout: Option<u64>,
    /// Print the topic before each payload.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}
