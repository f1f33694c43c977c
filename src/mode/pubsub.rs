//! `mqttbridge pub` and `mqttbridge sub`: command-line clients in the style
//! of mosquitto_pub/mosquitto_sub, on the client library.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::cli::{ClientArgs, PubArgs, SubArgs};
use crate::client::transport::TransportOptions;
use crate::client::{Client, ClientOptions};
use crate::codec::Version;
use crate::quic::ClientTls;

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
        .map(crate::scion::read_token)
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
