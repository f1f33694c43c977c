//! `mqttbridge pocketscion`: a local SCION network (pocketscion, in this
//! process) for trying scion-quic and scion-udp without a SCION deployment.
//! It prints one line per AS with its endhost API and runs until SIGTERM or
//! Ctrl-C.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use pocketscion::util::dev_auth_token;
use pocketscion::util::topologies::{
    IA132, IA212, IA222, UnderlayType, minimal::minimal_topology, minimal::two_path_topology,
};

/// The built-in networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Topology {
    /// Two core ASes, 1-ff00:0:132 and 2-ff00:0:212, one link between them.
    Minimal,
    /// 1-ff00:0:132, 2-ff00:0:212 and 2-ff00:0:222 in a triangle: two paths
    /// between the first two.
    TwoPath,
}

/// Starts the network, prints `endhost-api <ISD-AS> <URL>` for each AS
/// with an endhost API, writes the SNAP token to `token_file` when given,
/// and serves until `shutdown` completes.
pub async fn run(
    topology: Topology,
    token_file: Option<PathBuf>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    if let Some(path) = &token_file {
        std::fs::write(path, dev_auth_token())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let (network, ases) = match topology {
        Topology::Minimal => (
            minimal_topology(UnderlayType::Snap).await,
            vec![IA132, IA212],
        ),
        Topology::TwoPath => (
            two_path_topology(UnderlayType::Snap).await,
            vec![IA132, IA212, IA222],
        ),
    };
    let mut out = std::io::stdout().lock();
    for ia in ases {
        if let Some(url) = network.endhost_api(ia) {
            writeln!(out, "endhost-api {ia} {url}")?;
        }
    }
    out.flush()?;
    drop(out);
    shutdown.await;
    Ok(())
}
