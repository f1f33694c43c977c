//! `sub`: subscribes to every `-t` filter and prints what arrives until
//! `-C` messages were printed, `-W` runs out or it is interrupted;
//! reconnects (and subscribes again) when the link drops, as mosquitto_sub
//! does.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;

use super::args::SubArgs;
use super::format;
use super::{Stop, exit_code, options};
use crate::client::{Client, Message, Reconnect, RetainHandling, SubscribeOptions};

/// Subscribes and prints as the flags say; the exit code tells how it went.
pub async fn subscribe(args: SubArgs) -> anyhow::Result<ExitCode> {
    Ok(exit_code(run(args).await))
}

async fn run(args: SubArgs) -> Result<(), Stop> {
    let mut prepared = options::prepare(&args.client, &args.session)?;
    let mut filters = args.topics.clone();
    filters.extend(prepared.url_topic.take());
    if filters.is_empty() {
        return Err(anyhow!("give a topic filter: -t FILTER (repeat for several)").into());
    }
    for filter in &filters {
        crate::mqtt::check_topic_filter(filter).map_err(anyhow::Error::from)?;
    }
    prepared.options.reconnect = Some(Reconnect::default());
    let (client, mut messages) = Client::connect(prepared.options).await?;
    let subscribe = SubscribeOptions {
        qos: args.qos,
        no_local: args.no_local,
        retain_as_published: args.retain_as_published,
        retain_handling: RetainHandling::try_from(args.retain_handling)
            .map_err(anyhow::Error::msg)?,
        subscription_identifier: prepared.properties.subscription_identifier,
        user_properties: prepared.properties.subscribe_user_properties.clone(),
    };
    for filter in &filters {
        client.subscribe_with(filter, subscribe.clone()).await?;
    }
    let receive = async {
        let mut printed = 0u64;
        while args.count.is_none_or(|count| printed < count) {
            let Some(message) = messages.recv().await else {
                return Err(Stop::Other(anyhow!(
                    "connection closed after {printed} messages"
                )));
            };
            if args.retained_only && !message.retain {
                break;
            }
            if args.remove_retained && message.retain && !message.payload.is_empty() {
                client.publish(&message.topic, Vec::new(), 1, true).await?;
            }
            if args.no_retained && message.retain {
                continue;
            }
            print(&args, &message).map_err(anyhow::Error::from)?;
            printed += 1;
        }
        Ok(())
    };
    let result = match args.timeout {
        Some(secs) => tokio::time::timeout(Duration::from_secs(secs), receive)
            .await
            .unwrap_or(Err(Stop::TimedOut(secs))),
        None => receive.await,
    };
    let _ = client.disconnect().await;
    result
}

fn print(args: &SubArgs, message: &Message) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match &args.format {
        Some(f) => out.write_all(&format::render(f, message, chrono::Local::now()))?,
        None => {
            if args.verbose {
                write!(out, "{} ", message.topic)?;
            }
            out.write_all(&message.payload)?;
        }
    }
    if !args.no_newline {
        writeln!(out)?;
    }
    out.flush()
}
