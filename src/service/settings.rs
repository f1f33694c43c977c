//! Configuration files: TOML typed and validated while it is parsed, so a
//! bad file is reported with its path, the key and the line; the value
//! types every service's settings share.

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::net::HostPort;
use crate::net::listener::{ListenSettings, ScionAttach};
use crate::net::quic::QuicLimits;
use crate::net::scion::PathAcl;
use crate::net::tls::ServerTls;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The flags of a proxy mode's process, given after the mode, or before
/// it (for every command; `--admin` only for the proxy modes).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ProcessFlags {
    /// Log line format on stderr [default: text].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Admin HTTP endpoint (/metrics, /healthz, /readyz), e.g.
    /// 127.0.0.1:9090; overrides the config file's `admin`.
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<HostPort>,
    /// Threads that run connections: 1 runs everything on one thread (the
    /// lowest latency: no hand-offs between threads), 0 one per core
    /// [default: 1 for the proxy modes, 0 for bench, pub, sub and demo].
    #[arg(long, value_name = "N")]
    pub worker_threads: Option<usize>,
}

/// A configuration file that could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {cause}")]
    Read {
        /// The file.
        path: String,
        /// Why (in the message, so not also a `source` printed twice).
        cause: std::io::Error,
    },
    /// The file is not valid for this mode. The message names the key and
    /// the line.
    #[error("invalid config file {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What toml and the validators said, with line and key.
        message: String,
    },
}

/// Reads and validates a mode's configuration file.
pub fn load<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
        path: path.display().to_string(),
        cause,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses configuration text; `origin` names it in errors.
pub fn parse<T: for<'de> Deserialize<'de>>(text: &str, origin: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Invalid {
        path: origin.to_string(),
        message: describe_toml_error(&e, text),
    })
}

/// toml's message with the line number made explicit, e.g.
/// "line 3, key `max_packet_size`: invalid value ...".
fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let line = e
        .span()
        .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
    let key = e
        .span()
        .and_then(|span| key_on_line(text, span.start))
        .map(|k| format!(", key `{k}`"))
        .unwrap_or_default();
    match line {
        Some(line) => format!("line {line}{key}: {}", e.message()),
        None => e.message().to_string(),
    }
}

/// The key assigned on the line that holds byte `offset`, if that line is a
/// `key = value` line.
fn key_on_line(text: &str, offset: usize) -> Option<String> {
    let start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && !key.starts_with('#')).then(|| key.to_string())
}

/// A duration written in milliseconds in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Millis(pub NonZeroU32);

impl Millis {
    /// Only used in `const` blocks, so a zero is a compile error.
    pub(crate) const fn of(ms: u32) -> Self {
        match NonZeroU32::new(ms) {
            Some(v) => Millis(v),
            None => panic!("zero duration default"),
        }
    }

    /// As a `Duration`.
    pub fn duration(self) -> Duration {
        Duration::from_millis(self.0.get().into())
    }
}

impl std::str::FromStr for Millis {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<NonZeroU32>()
            .map(Millis)
            .map_err(|_| format!("`{s}` is not a positive number of milliseconds"))
    }
}

/// Only used in `const` blocks, so a zero is a compile error.
pub(crate) const fn nonzero(v: usize) -> NonZeroUsize {
    match NonZeroUsize::new(v) {
        Some(v) => v,
        None => panic!("zero default"),
    }
}

/// Only used in `const` blocks, so a zero is a compile error.
pub(crate) const fn nonzero32(v: u32) -> NonZeroU32 {
    match NonZeroU32::new(v) {
        Some(v) => v,
        None => panic!("zero default"),
    }
}

/// The keys a service names its listeners' shared settings with (the
/// certificate keys differ between services; the QUIC and SCION keys do not).
pub struct ListenKeys<'a> {
    /// PEM certificate chain of the server.
    pub cert: Option<&'a PathBuf>,
    /// PEM key of `cert`.
    pub key: Option<&'a PathBuf>,
    /// PEM CA bundle clients' certificates must chain to.
    pub client_ca: Option<&'a PathBuf>,
    /// `idle_timeout_ms`.
    pub idle_timeout_ms: Millis,
    /// `stream_window`.
    pub stream_window: NonZeroU32,
    /// `retry_token_lifetime_ms`.
    pub retry_token_lifetime_ms: Millis,
    /// `max_connections`.
    pub max_connections: NonZeroUsize,
    /// `endhost_api`.
    pub endhost_api: Option<&'a url::Url>,
    /// `snap_token_file`.
    pub snap_token_file: Option<&'a PathBuf>,
    /// `path_acl`.
    pub path_acl: Option<&'a PathAcl>,
}

impl ListenKeys<'_> {
    /// What the service's listeners share.
    pub fn settings(&self) -> ListenSettings {
        ListenSettings {
            tls: match (self.cert, self.key) {
                (Some(cert), Some(key)) => Some(ServerTls {
                    cert_chain: cert.clone(),
                    private_key: key.clone(),
                    client_ca: self.client_ca.cloned(),
                }),
                _ => None,
            },
            quic: QuicLimits {
                idle_timeout: self.idle_timeout_ms.duration(),
                stream_window: self.stream_window.get().into(),
                connection_window: u64::from(self.stream_window.get()) * 2,
                ..QuicLimits::default()
            },
            retry_token_lifetime: self.retry_token_lifetime_ms.duration(),
            max_quic_connections: self.max_connections.get(),
            scion: ScionAttach {
                endhost_api: self.endhost_api.cloned(),
                snap_token_file: self.snap_token_file.cloned(),
                path_acl: self.path_acl.cloned(),
            },
        }
    }
}

/// The file's settings, or the defaults when no file is given.
pub fn file_or_default<T: Default + for<'de> serde::Deserialize<'de>>(
    path: &Option<PathBuf>,
) -> Result<T, ConfigError> {
    match path {
        Some(path) => load(path),
        None => Ok(T::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Example {
        listen: Option<String>,
        max_packet_size: Option<NonZeroU32>,
    }

    #[test]
    fn error_names_key_and_line() {
        let err = parse::<Example>(
            "listen = \"0.0.0.0:1883\"\n\nmax_packet_size = 0\n",
            "edge.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("edge.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("max_packet_size"), "{err}");
    }

    #[test]
    fn unknown_key_is_refused() {
        let err = parse::<Example>("brokr = \"x:1\"\n", "cloud.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("brokr"), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }
}
