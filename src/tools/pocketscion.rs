//! `mqttbridge pocketscion`: a local SCION network (pocketscion, in this
//! process) for trying scion-quic and scion-udp without a SCION deployment:
//! a built-in topology or one from a topology file ([`crate::tools::topology`]).
//! It prints one line per AS with its endhost API and runs until SIGTERM or
//! Ctrl-C.

use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context;
use clap::Args;
use pocketscion::runtime::builder::PocketScionRuntimeBuilder;
use pocketscion::util::dev_auth_token;
use pocketscion::util::topologies::{
    PsSetup, UnderlayType, minimal::minimal_topology, minimal::two_path_topology,
};

use crate::tools::topology::TopologyFile;

/// Which network to run: `minimal`, `two-path` or a topology file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// Two core ASes, 1-ff00:0:132 and 2-ff00:0:212, one link between them.
    Minimal,
    /// 1-ff00:0:132, 2-ff00:0:212 and 2-ff00:0:222 in a triangle: two paths
    /// between the first two.
    TwoPath,
    /// A topology file.
    File(PathBuf),
}

impl FromStr for Topology {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "minimal" => Topology::Minimal,
            "two-path" => Topology::TwoPath,
            path => Topology::File(PathBuf::from(path)),
        })
    }
}

/// Starts the network, prints `endhost-api <ISD-AS> <URL>` for each AS
/// with an endhost API, writes a distinct SNAP token to each of
/// `token_files`, and serves until `shutdown` completes.
pub async fn run(
    topology: Topology,
    token_files: Vec<PathBuf>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // Read the file first: a broken one is refused before anything starts.
    let file = match &topology {
        Topology::File(path) => Some((path, crate::service::settings::load::<TopologyFile>(path)?)),
        _ => None,
    };
    for path in &token_files {
        // A new random PSSID each call: a token of its own per file.
        std::fs::write(path, dev_auth_token())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let network = match file {
        Some((path, file)) => {
            let network = file
                .build()
                .with_context(|| format!("topology file {}", path.display()))?;
            scion_sdk_utils::rustls::select_ring_crypto_provider();
            let runtime = PocketScionRuntimeBuilder::new()
                .with_system_state(network.state)
                .with_io_config(network.io)
                .start()
                .await
                .map_err(|e| anyhow::anyhow!("pocketscion did not start: {e}"))?;
            PsSetup {
                runtime,
                endhost_apis: network.endhost_apis,
            }
        }
        None if topology == Topology::TwoPath => two_path_topology(UnderlayType::Snap).await,
        None => minimal_topology(UnderlayType::Snap).await,
    };
    let mut out = std::io::stdout().lock();
    for &ia in network.endhost_apis.keys() {
        if let Some(url) = network.endhost_api(ia) {
            writeln!(out, "endhost-api {ia} {url}")?;
        }
    }
    out.flush()?;
    drop(out);
    shutdown.await;
    Ok(())
}

/// Flags of `pocketscion`.
#[derive(Debug, Args)]
pub struct PocketscionArgs {
    /// Which network to run: `minimal` (two core ASes, one link),
    /// `two-path` (three ASes in a triangle) or a topology file (TOML; see
    /// config/topology-*.toml).
    #[arg(long, default_value = "minimal", value_name = "NAME|FILE")]
    pub topology: Topology,
    /// Write a SNAP token for clients and proxies to this file; repeat for
    /// several, each a token of its own. Processes attached to one AS may
    /// share a token: each derives the same tunnel identity from it.
    #[arg(long = "snap-token-file", value_name = "FILE")]
    pub snap_token_files: Vec<PathBuf>,
}
