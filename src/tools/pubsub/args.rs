//! The flags of `pub` and `sub`, named and shaped as mosquitto_pub and
//! mosquitto_sub name them (`-h host -p port`, `-u/-P`, `-m/-f/-l/-s/-n`,
//! `-D command property value`, ...), plus the transports only we have.
//! [`ClientArgs`] is also what the benchmarks connect with.

use std::path::PathBuf;

use clap::Args;

use super::format;

/// Connection flags shared by `pub`, `sub` and `bench`.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Where to connect, as a URL: mqtt://host:port (also tcp://),
    /// mqtts://host:port (TLS), ws://host:port/path, wss://host:port/path,
    /// quic://host:port or scion-quic://[ISD-AS,IP]:port; optionally with
    /// user:password@ before the host. For pub and sub, a path after an
    /// mqtt(s):// host is the topic, as with mosquitto [default:
    /// mqtt://localhost:1883].
    #[arg(long, short = 'L', value_name = "URL")]
    pub url: Option<String>,
    /// MQTT version: 5 (mqttv5) or 311 (mqttv311).
    #[arg(short = 'V', long = "protocol-version", default_value = "5", value_parser = ["311", "5", "mqttv311", "mqttv5"])]
    pub protocol_version: String,
    /// Client id [default: mqttbridge-<random>].
    #[arg(short = 'i', long = "id")]
    pub client_id: Option<String>,
    /// Keep-alive in seconds (0: none).
    #[arg(short = 'k', long, default_value_t = 60, value_parser = clap::value_parser!(u16))]
    pub keepalive: u16,
    /// User name (overrides the URL's).
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password (overrides the URL's; MQTT 3.1.1 needs a user name with it).
    #[arg(short = 'P', long = "pw")]
    pub password: Option<String>,
    /// PEM CA bundle to check the server's certificate; turns TLS on
    /// (mqtts://, port 8883) when the URL does not choose.
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,
    /// Directory of PEM CA certificates (.pem/.crt); turns TLS on like
    /// --cafile.
    #[arg(long, value_name = "DIR")]
    pub capath: Option<PathBuf>,
    /// Check the server against the system's CA certificates; turns TLS on.
    #[arg(long)]
    pub tls_use_os_certs: bool,
    /// Do not check the server's certificate at all (testing only; mosquitto's
    /// --insecure skips only the host name check, this skips every check).
    #[arg(long)]
    pub insecure: bool,
    /// PEM client certificate for mutual TLS.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM client key for mutual TLS.
    #[arg(long, value_name = "FILE", requires = "cert")]
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

/// What `pub` and `sub` add: host and port as mosquitto takes them, the
/// session, the Will, MQTT 5 properties and debug output.
#[derive(Debug, Args)]
pub struct SessionArgs {
    /// Broker host (instead of -L).
    #[arg(short = 'h', long, conflicts_with = "url")]
    pub host: Option<String>,
    /// Broker port [default: 1883, 8883 with TLS] (instead of -L).
    #[arg(short = 'p', long, conflicts_with = "url")]
    pub port: Option<u16>,
    /// Client id: this prefix followed by the process id.
    #[arg(short = 'I', long = "id-prefix", conflicts_with = "client_id")]
    pub id_prefix: Option<String>,
    /// Keep the session when disconnecting (clean session off); needs -i or
    /// -I. MQTT 5: the session never expires unless -x says otherwise.
    #[arg(short = 'c', long = "disable-clean-session")]
    pub keep_session: bool,
    /// MQTT 5 session expiry interval in seconds (-1: never) [default: -1
    /// with -c, else 0].
    #[arg(
        short = 'x',
        long = "session-expiry-interval",
        allow_negative_numbers = true
    )]
    pub session_expiry: Option<i64>,
    /// Topic of the Will, the message the broker publishes if this client
    /// vanishes without disconnecting.
    #[arg(long)]
    pub will_topic: Option<String>,
    /// Payload of the Will.
    #[arg(long, requires = "will_topic")]
    pub will_payload: Option<String>,
    /// QoS of the Will.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2), requires = "will_topic")]
    pub will_qos: u8,
    /// Retain the Will.
    #[arg(long, requires = "will_topic")]
    pub will_retain: bool,
    /// MQTT 5 property: -D COMMAND PROPERTY VALUE [VALUE], as mosquitto
    /// (e.g. -D publish user-property key value, -D connect
    /// session-expiry-interval 60, -D will will-delay-interval 10). Repeat
    /// for several.
    #[arg(short = 'D', long = "property", num_args = 3..=4, value_names = ["COMMAND", "PROPERTY", "VALUE"], action = clap::ArgAction::Append)]
    pub properties: Vec<String>,
    /// Print every packet sent and received on stderr.
    #[arg(short = 'd', long)]
    pub debug: bool,
    /// Print help (-h is the host, as with mosquitto).
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

/// Flags of `pub`.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct PubArgs {
    /// Connection settings.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Session, Will and properties.
    #[command(flatten)]
    pub session: SessionArgs,
    /// Topic to publish to.
    #[arg(short = 't', long)]
    pub topic: Option<String>,
    /// Message payload.
    #[arg(short = 'm', long, group = "payload")]
    pub message: Option<String>,
    /// Send the contents of a file as the payload.
    #[arg(short = 'f', long, group = "payload")]
    pub file: Option<PathBuf>,
    /// Send each line read from stdin as a message.
    #[arg(short = 'l', long = "stdin-line", group = "payload")]
    pub stdin_line: bool,
    /// Send everything read from stdin as one message.
    #[arg(short = 's', long = "stdin-file", group = "payload")]
    pub stdin_file: bool,
    /// Send an empty (zero-length) message; with -r, deletes a retained one.
    #[arg(short = 'n', long = "null-message", group = "payload")]
    pub null_message: bool,
    /// QoS 0, 1 or 2.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Retain the message.
    #[arg(short = 'r', long)]
    pub retain: bool,
    /// Publish the message this many times (with -m, -f, -s or -n).
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Seconds to wait between repeats (fractions allowed).
    #[arg(long, default_value_t = 0.0, value_parser = non_negative_seconds)]
    pub repeat_delay: f64,
}

/// Flags of `sub`.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct SubArgs {
    /// Connection settings.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Session, Will and properties.
    #[command(flatten)]
    pub session: SessionArgs,
    /// Topic filter; repeat for several.
    #[arg(short = 't', long = "topic")]
    pub topics: Vec<String>,
    /// Do not print (or count, or remove) messages whose topic matches this
    /// filter; repeat for several.
    #[arg(short = 'T', long = "filter-out")]
    pub filter_out: Vec<String>,
    /// Unsubscribe from this filter after connecting (with -c, to drop a
    /// kept subscription); repeat for several.
    #[arg(short = 'U', long = "unsubscribe")]
    pub unsubscribe: Vec<String>,
    /// Exit as soon as the subscriptions (and -U) are acknowledged.
    #[arg(short = 'E')]
    pub exit_after_subscribe: bool,
    /// QoS to subscribe with.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Exit after this many messages.
    #[arg(short = 'C', long)]
    pub count: Option<u64>,
    /// Exit with code 27 after this many seconds if -C's count has not been
    /// reached (or, without -C, after that long).
    #[arg(short = 'W', long)]
    pub timeout: Option<u64>,
    /// Print the topic before each payload.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Do not end each printed message with a newline.
    #[arg(short = 'N')]
    pub no_newline: bool,
    /// Do not print retained (stale) messages.
    #[arg(short = 'R')]
    pub no_retained: bool,
    /// Print only retained messages; exit at the first live one.
    #[arg(long, conflicts_with = "no_retained")]
    pub retained_only: bool,
    /// Clear each retained message received (publish an empty retained
    /// message to its topic).
    #[arg(long)]
    pub remove_retained: bool,
    /// Print each message in this format (mosquitto's codes: %t topic, %p
    /// payload, %l length, %q QoS, %r retain, %m message id, %x/%X hex,
    /// %I ISO time, %U Unix time, %j JSON, %C %D %E %F %P %R %S %A MQTT 5
    /// properties, with flags `-` and `0`, a width and a .maximum as
    /// mosquitto_sub takes them: %-10.10t; @ time codes, \n \t escapes).
    #[arg(short = 'F', long, value_parser = format::Format::parse)]
    pub format: Option<format::Format>,
    /// Print %j and %J JSON indented over several lines.
    #[arg(long)]
    pub pretty: bool,
    /// MQTT 5: do not receive our own publishes.
    #[arg(long)]
    pub no_local: bool,
    /// MQTT 5: keep the retain flag as published on forwarded messages.
    #[arg(long)]
    pub retain_as_published: bool,
    /// MQTT 5: retained messages at subscribe: 0 always, 1 for a new
    /// subscription only, 2 never.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub retain_handling: u8,
}

fn non_negative_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds (0 or more)")),
    }
}
