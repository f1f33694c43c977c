//! Which s-proxies an r-proxy's upstream URLs stand for: a host name that
//! resolves to several addresses (a Kubernetes headless Service, DNS round
//! robin) becomes one endpoint per address, resolved again every so often
//! as gRPC's own DNS resolver does. Each endpoint has its own HTTP/2
//! channel; a session keeps the endpoint it started on (and resumes there)
//! even after the name stops listing it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio_rustls::rustls::ClientConfig;

use super::grpc::{Channel, ChannelSettings, Target};
use super::upstreams::UpstreamUrl;
use crate::net::tls::server_name;

/// One s-proxy: a configured URL, at one address once resolved.
pub struct Endpoint {
    /// The URL as configured (the metrics' `upstream` label).
    pub url: UpstreamUrl,
    /// The address it resolved to; `None` until the name was resolved.
    pub addr: Option<SocketAddr>,
    /// Its HTTP/2 connection, made on first use.
    pub channel: Channel,
    /// Until when it is skipped after a failure.
    down_until: Mutex<Option<Instant>>,
    /// Whether the last health probe found it serving.
    probed_healthy: AtomicBool,
}

impl Endpoint {
    /// Skipped for new sessions: failed lately, or not serving.
    pub fn is_down(&self, now: Instant) -> bool {
        if !self.probed_healthy.load(Ordering::Relaxed) {
            return true;
        }
        // A poisoned lock only means another task panicked mid-update; the
        // value itself is always valid.
        let down = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        down.is_some_and(|until| until > now)
    }

    /// Skips it until `down_until` (`None`: not at all).
    pub fn mark(&self, down_until: Option<Instant>) {
        *self.down_until.lock().unwrap_or_else(|e| e.into_inner()) = down_until;
    }

    /// What its health probe found.
    pub fn set_healthy(&self, healthy: bool) {
        self.probed_healthy.store(healthy, Ordering::Relaxed);
    }

    /// The URL, and the address when resolved (for logs and reasons).
    pub fn label(&self) -> String {
        match self.addr {
            Some(addr) => format!("{} ({addr})", self.url),
            None => self.url.to_string(),
        }
    }
}

/// How endpoints' channels are made.
pub struct Channels {
    /// TLS for `https://` URLs (with ALPN `h2`); `None` when no URL asks
    /// for it.
    pub tls: Option<Arc<ClientConfig>>,
    /// The TLS name to expect, when configured (else the URL's host).
    pub server_name: Option<String>,
    /// Timeouts, keep-alive and buffers of every channel.
    pub settings: ChannelSettings,
}

impl Channels {
    /// A lazy channel to `url`, at `addr` when given (the TLS name and the
    /// `:authority` stay the URL's host).
    fn make(&self, url: &UpstreamUrl, addr: Option<SocketAddr>) -> anyhow::Result<Channel> {
        let tls = match (url.is_tls(), &self.tls) {
            (false, _) => None,
            (true, None) => anyhow::bail!("{url} asks for TLS, but no TLS settings were made"),
            (true, Some(config)) => {
                let name = self.server_name.as_deref().unwrap_or_else(|| url.host());
                Some((config.clone(), server_name(name)?))
            }
        };
        Ok(Channel::new(
            Target {
                addr,
                host_port: url.host_port().to_string(),
                tls,
            },
            self.settings,
        ))
    }
}

/// The endpoints of every configured URL, resolved now and again.
pub struct Pool {
    urls: Vec<UpstreamUrl>,
    channels: Channels,
    endpoints: RwLock<Vec<Arc<Endpoint>>>,
    resolve_every: Duration,
    resolved_at: Mutex<Option<Instant>>,
}

impl Pool {
    /// One endpoint per URL, by name, until the first [`Pool::resolve`].
    pub fn new(
        urls: &[UpstreamUrl],
        channels: Channels,
        resolve_every: Duration,
    ) -> anyhow::Result<Self> {
        let endpoints = urls
            .iter()
            .map(|url| new_endpoint(&channels, url, None))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            urls: urls.to_vec(),
            channels,
            endpoints: RwLock::new(endpoints),
            resolve_every,
            resolved_at: Mutex::new(None),
        })
    }

    /// The endpoints now.
    pub fn endpoints(&self) -> Vec<Arc<Endpoint>> {
        self.endpoints
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Resolves every URL's host again when `resolve_every` has passed:
    /// an address that is new gets an endpoint, one that is gone is
    /// dropped (its sessions keep theirs). A name that does not resolve
    /// keeps the endpoints it had.
    pub async fn resolve(&self) {
        {
            let mut at = self.resolved_at.lock().unwrap_or_else(|e| e.into_inner());
            if at.is_some_and(|at| at.elapsed() < self.resolve_every) {
                return;
            }
            *at = Some(Instant::now());
        }
        let current = self.endpoints();
        let mut next = Vec::new();
        for url in &self.urls {
            let mut addrs: Vec<SocketAddr> = match tokio::net::lookup_host(url.host_port()).await {
                Ok(addrs) => addrs.collect(),
                Err(e) => {
                    tracing::debug!(upstream = %url, error = %e, "cannot resolve; keeping its endpoints");
                    Vec::new()
                }
            };
            addrs.sort();
            addrs.dedup();
            let of_url = current.iter().filter(|e| &e.url == url);
            if addrs.is_empty() {
                next.extend(of_url.cloned());
                continue;
            }
            for gone in of_url.filter(|e| e.addr.is_some_and(|a| !addrs.contains(&a))) {
                tracing::info!(upstream = %url, addr = ?gone.addr, "s-proxy address removed");
            }
            for addr in addrs {
                let kept = current
                    .iter()
                    .find(|e| &e.url == url && e.addr == Some(addr))
                    .cloned();
                match kept {
                    Some(endpoint) => next.push(endpoint),
                    None => match new_endpoint(&self.channels, url, Some(addr)) {
                        Ok(endpoint) => {
                            tracing::info!(upstream = %url, %addr, "s-proxy address added");
                            next.push(endpoint);
                        }
                        Err(e) => {
                            tracing::warn!(upstream = %url, %addr, error = %e, "s-proxy address unusable")
                        }
                    },
                }
            }
        }
        *self.endpoints.write().unwrap_or_else(|e| e.into_inner()) = next;
    }
}

fn new_endpoint(
    channels: &Channels,
    url: &UpstreamUrl,
    addr: Option<SocketAddr>,
) -> anyhow::Result<Arc<Endpoint>> {
    Ok(Arc::new(Endpoint {
        url: url.clone(),
        addr,
        channel: channels.make(url, addr)?,
        down_until: Mutex::new(None),
        // Until the first probe says otherwise.
        probed_healthy: AtomicBool::new(true),
    }))
}
