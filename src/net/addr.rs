//! `host:port` addresses as configs and flags give them: a name (resolved
//! when used) or an IP address, IPv6 in brackets.

use std::fmt;
use std::str::FromStr;

/// Implements `Deserialize` through the type's `FromStr`, so a config value
/// is checked by the same parser as its flag (errors name the key and line).
macro_rules! deserialize_from_str {
    ($t:ty) => {
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use deserialize_from_str;

/// A `host:port` that may be a name (resolved when used) or an IP address,
/// IPv6 in brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort(String);

impl HostPort {
    /// A default address written in the code (each service's tests parse
    /// its defaults).
    pub(crate) fn literal(s: &'static str) -> Self {
        HostPort(s.to_string())
    }

    /// The text form, as `tokio::net` accepts it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the host is a loopback address (or `localhost`).
    pub fn is_loopback(&self) -> bool {
        let host = self.0.rsplit_once(':').map_or("", |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl FromStr for HostPort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("`{s}` is not host:port"))?;
        port.parse::<u16>()
            .map_err(|_| format!("`{s}` has no valid port"))?;
        let host_ok = if let Some(inner) = host.strip_prefix('[') {
            inner
                .strip_suffix(']')
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
        } else {
            !host.is_empty() && !host.contains(':')
        };
        if !host_ok {
            return Err(format!(
                "`{s}` has no valid host (write IPv6 addresses in brackets)"
            ));
        }
        Ok(HostPort(s.to_string()))
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

deserialize_from_str!(HostPort);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        for ok in [
            "127.0.0.1:1883",
            "[::]:1883",
            "[::1]:8883",
            "broker.example:1883",
        ] {
            assert!(ok.parse::<HostPort>().is_ok(), "{ok}");
        }
        for bad in [
            "1883",
            "host",
            "::1:1883",
            ":1883",
            "host:99999",
            "[::1:1883",
        ] {
            assert!(bad.parse::<HostPort>().is_err(), "{bad}");
        }
    }
}
