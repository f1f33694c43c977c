//! From flags to client options: the URL (from `-L`, or `-h`/`-p` with TLS
//! chosen by the TLS flags as mosquitto does), identity, credentials,
//! session, Will and MQTT 5 properties.

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;

use super::args::{ClientArgs, SessionArgs};
use super::properties::PropertyFlags;
use crate::client::{ClientOptions, Will};
use crate::mqtt::Version;
use crate::net::connector::TransportOptions;
use crate::net::tls::ClientTls;

/// The URL when neither `-L` nor `-h`/`-p` say otherwise.
const DEFAULT_URL: &str = "mqtt://localhost:1883";

/// Client options for the connection flags alone (the benchmarks).
pub(crate) fn options(args: &ClientArgs) -> anyhow::Result<ClientOptions> {
    let url = args.url.clone().unwrap_or_else(|| DEFAULT_URL.into());
    client_options(args, &url)
}

fn client_options(args: &ClientArgs, url: &str) -> anyhow::Result<ClientOptions> {
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
        keep_alive: Duration::from_secs(args.keepalive.into()),
        username: args.username.clone(),
        password: args.password.clone().map(Bytes::from),
        transport: TransportOptions {
            tls: ClientTls {
                ca: args.cafile.clone(),
                ca_dir: args.capath.clone(),
                insecure: args.insecure,
                cert_chain: args.cert.clone(),
                private_key: args.key.clone(),
            },
            server_name: args.server_name.clone(),
            endhost_api: args.endhost_api.clone(),
            snap_token,
            ..TransportOptions::default()
        },
        ..ClientOptions::new(url, &client_id)
    })
}

/// Options for `pub` and `sub`, with the topic an `-L mqtt://host/topic`
/// URL names and the `-D` properties.
pub(super) struct Prepared {
    pub(super) options: ClientOptions,
    pub(super) url_topic: Option<String>,
    pub(super) properties: PropertyFlags,
}

pub(super) fn prepare(client: &ClientArgs, session: &SessionArgs) -> anyhow::Result<Prepared> {
    let (url, url_topic) = match &client.url {
        Some(url) => split_topic(url),
        None => (host_port_url(client, session), None),
    };
    let tls_flags = client.cafile.is_some()
        || client.capath.is_some()
        || client.tls_use_os_certs
        || client.cert.is_some();
    let plain = ["tcp://", "mqtt://", "ws://"]
        .iter()
        .any(|scheme| url.starts_with(scheme));
    if tls_flags && plain {
        bail!(
            "TLS flags (--cafile, --capath, --cert, --tls-use-os-certs) need a TLS URL: {url} is not (use mqtts:// or wss://)"
        );
    }
    let mut options = client_options(client, &url)?;
    let properties = PropertyFlags::parse(&session.properties).map_err(anyhow::Error::msg)?;
    if options.version == Version::V3_1_1 && !session.properties.is_empty() {
        bail!("-D sets MQTT 5 properties: use -V 5");
    }
    if let Some(prefix) = &session.id_prefix {
        options.client_id = format!("{prefix}{}", std::process::id());
    }
    if session.keep_session && client.client_id.is_none() && session.id_prefix.is_none() {
        bail!("-c keeps a session, which needs a client id: give -i or -I");
    }
    options.clean_start = !session.keep_session;
    let expiry = match (session.session_expiry, properties.session_expiry) {
        (Some(-1), _) => u32::MAX,
        (Some(seconds), _) => u32::try_from(seconds)
            .ok()
            .filter(|s| *s != u32::MAX)
            .context("-x takes seconds from 0 to 4294967294, or -1 for never")?,
        (None, Some(seconds)) => seconds,
        (None, None) if session.keep_session => u32::MAX,
        (None, None) => 0,
    };
    options.session_expiry = Duration::from_secs(expiry.into());
    if expiry == 0 && properties.disconnect.session_expiry.is_some_and(|s| s > 0) {
        bail!(
            "-D disconnect session-expiry-interval: the session opens with an expiry of 0 \
             (give -c, -x or -D connect session-expiry-interval), which cannot be raised at DISCONNECT"
        );
    }
    options.receive_maximum = properties.receive_maximum;
    if let Some(size) = properties.maximum_packet_size {
        options.maximum_packet_size = size;
    }
    options.topic_alias_maximum = properties.topic_alias_maximum.unwrap_or(0);
    options.user_properties = properties.connect_user_properties.clone();
    if let Some(topic) = &session.will_topic {
        options.will = Some(Will {
            topic: topic.clone(),
            payload: Bytes::from(session.will_payload.clone().unwrap_or_default()),
            qos: session.will_qos,
            retain: session.will_retain,
            delay_interval: properties.will_delay,
            properties: properties.will.clone(),
        });
    } else if properties.will_delay.is_some() || !properties.will.is_empty() {
        bail!("-D will ... needs --will-topic");
    }
    Ok(Prepared {
        options,
        url_topic,
        properties,
    })
}

/// mosquitto's `-L mqtt://host:port/topic`: the path of an MQTT URL is the
/// topic. WebSocket URLs keep their path (the HTTP request path).
fn split_topic(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    if !matches!(scheme, "mqtt" | "tcp" | "mqtts" | "tls" | "ssl") {
        return (url.to_string(), None);
    }
    match rest.split_once('/') {
        Some((authority, topic)) if !topic.is_empty() => {
            (format!("{scheme}://{authority}"), Some(topic.to_string()))
        }
        _ => (url.to_string(), None),
    }
}

/// `-h host -p port`: mqtts:// when any TLS flag is given (port 8883),
/// else mqtt:// (1883), as mosquitto chooses.
fn host_port_url(client: &ClientArgs, session: &SessionArgs) -> String {
    let tls = client.cafile.is_some()
        || client.capath.is_some()
        || client.tls_use_os_certs
        || client.insecure
        || client.cert.is_some();
    let host = session.host.as_deref().unwrap_or("localhost");
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let (scheme, default_port) = if tls { ("mqtts", 8883) } else { ("mqtt", 1883) };
    let port = session.port.unwrap_or(default_port);
    format!("{scheme}://{host}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mqtt_url_path_is_the_topic_a_websocket_path_is_not() {
        assert_eq!(
            split_topic("mqtt://u:p@host:1883/a/b"),
            ("mqtt://u:p@host:1883".into(), Some("a/b".into()))
        );
        assert_eq!(split_topic("mqtts://host/"), ("mqtts://host/".into(), None));
        assert_eq!(
            split_topic("ws://host:9001/mqtt"),
            ("ws://host:9001/mqtt".into(), None)
        );
    }
}
