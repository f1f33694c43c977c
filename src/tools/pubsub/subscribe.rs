//! `sub`: subscribes to every `-t` filter and prints what arrives until
//! `-C` messages were printed, `-W` runs out or it is interrupted (or, with
//! `-E`, once subscribed); `-T` filters hide topics, `-U` unsubscribes;
//! reconnects (and subscribes again) when the link drops, as mosquitto_sub
//! does.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;

use super::args::SubArgs;
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
    if filters.is_empty() && args.unsubscribe.is_empty() {
        return Err(anyhow!("give a topic filter: -t FILTER (repeat for several)").into());
    }
    for filter in filters
        .iter()
        .chain(&args.filter_out)
        .chain(&args.unsubscribe)
    {
        crate::mqtt::check_topic_filter(filter).map_err(anyhow::Error::from)?;
    }
    let disconnect = prepared.properties.disconnect.clone();
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
    for filter in &args.unsubscribe {
        let user_properties = prepared.properties.unsubscribe_user_properties.clone();
        client.unsubscribe_with(filter, user_properties).await?;
    }
    if args.exit_after_subscribe {
        client.disconnect_with(disconnect).await?;
        return Ok(());
    }
    let receive = async {
        let mut printed = 0u64;
        while args.count.is_none_or(|count| printed < count) {
            let Some(message) = messages.recv().await else {
                return Err(Stop::Other(anyhow!(
                    "connection closed after {printed} messages"
                )));
            };
            let filtered_out = |filter: &String| crate::mqtt::topic_matches(filter, &message.topic);
            if args.filter_out.iter().any(filtered_out) {
                continue;
            }
            if args.retained_only && !message.retain {
                break;
            }
            if args.remove_retained && message.retain && !message.payload.is_empty() {
                client.publish(&message.topic, Vec::new(), 1, true).await?;
            }
            if args.no_retained && message.retain {
                continue;
            }
            match print(&args, &message) {
                Ok(()) => printed += 1,
                // Whoever read the output is gone (`| head`): done, as
                // when `-C` messages came.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
                Err(e) => return Err(anyhow::Error::from(e).into()),
            }
        }
        Ok(())
    };
    let result = match args.timeout {
        Some(secs) => tokio::time::timeout(Duration::from_secs(secs), receive)
            .await
            .unwrap_or(Err(Stop::TimedOut(secs))),
        None => receive.await,
    };
    let _ = client.disconnect_with(disconnect).await;
    result
}

fn print(args: &SubArgs, message: &Message) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match &args.format {
        Some(format) => {
            out.write_all(&format.render(message, chrono::Local::now(), args.pretty))?
        }
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
