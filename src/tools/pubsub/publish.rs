//! `pub`: one message (`-m`, `-f`, `-s`, `-n`, repeated with `--repeat`)
//! or one per line of stdin (`-l`), each acknowledged at its QoS before
//! the next is sent.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::args::PubArgs;
use super::{Stop, exit_code, options};
use crate::client::Client;

/// Publishes as the flags say; the exit code tells how it went.
pub async fn publish(args: PubArgs) -> anyhow::Result<ExitCode> {
    Ok(exit_code(run(args).await))
}

async fn run(args: PubArgs) -> Result<(), Stop> {
    let prepared = options::prepare(&args.client, &args.session)?;
    let topic = args
        .topic
        .clone()
        .or(prepared.url_topic)
        .ok_or_else(|| anyhow!("give the topic: -t TOPIC (or -L mqtt://host/TOPIC)"))?;
    crate::mqtt::check_topic_name(&topic).map_err(anyhow::Error::from)?;
    let payload = match (&args.message, &args.file) {
        (Some(message), _) => Some(message.clone().into_bytes()),
        (None, Some(path)) => {
            Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        _ if args.null_message => Some(Vec::new()),
        _ if args.stdin_file => {
            let mut all = Vec::new();
            tokio::io::stdin()
                .read_to_end(&mut all)
                .await
                .context("reading stdin")?;
            Some(all)
        }
        _ if args.stdin_line => None,
        _ => {
            return Err(anyhow!(
                "give the message: -m MESSAGE, -f FILE, -l (lines of stdin), -s (all of stdin) or -n (empty message)"
            )
            .into());
        }
    };
    let (client, _messages) = Client::connect(prepared.options).await?;
    let properties = prepared.properties.publish.clone();
    let send = |payload: Vec<u8>| {
        client.publish_with_properties(&topic, payload, args.qos, args.retain, properties.clone())
    };
    match payload {
        Some(payload) => {
            for round in 0..args.repeat {
                if round > 0 && args.repeat_delay > 0.0 {
                    tokio::time::sleep(Duration::from_secs_f64(args.repeat_delay)).await;
                }
                send(payload.clone()).await?;
            }
        }
        None => {
            let mut lines = BufReader::new(tokio::io::stdin()).lines();
            while let Some(line) = lines.next_line().await.context("reading stdin")? {
                send(line.into_bytes()).await?;
            }
        }
    }
    client
        .disconnect_with(prepared.properties.disconnect)
        .await?;
    Ok(())
}
