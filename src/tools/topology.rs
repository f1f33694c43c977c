//! The topology file of `mqttbridge pocketscion --topology FILE`: the ASes
//! and links of a local SCION network, and where its endhost APIs listen.
//! Read, checked (file, key and line in errors, like every config file)
//! and turned into pocketscion's state; `config/topology-*.toml` are
//! examples.
//!
//! ```toml
//! bind_ip = "127.0.0.1"         # where endhost APIs and SNAPs listen
//! # advertised_ip = "10.0.0.1"  # the IP handed to clients instead
//!
//! [[as]]
//! isd_as = "1-ff00:0:110"
//! core = true                   # default false
//! # endhost = false             # no endhost API in this AS (default true)
//!
//! [[as]]
//! isd_as = "1-ff00:0:111"
//!
//! [[link]]
//! from = "1-ff00:0:110#1"       # ISD-AS#interface
//! to = "1-ff00:0:111#1"
//! type = "parent"               # from is the core|parent|child|peer of to
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use pocketscion::comp::endhost_api::EndhostApiId;
use pocketscion::io_config::IoConfig;
use pocketscion::network::scion::topology::{
    ScionAs, ScionLink, ScionLinkType, ScionTopologyBuilder,
};
use pocketscion::state::PocketScionState;
use sciparse::identifier::isd_asn::IsdAsn;
use serde::Deserialize;

/// A topology file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyFile {
    /// Where the endhost APIs and SNAPs listen (ephemeral ports); default
    /// 127.0.0.1.
    #[serde(default)]
    pub bind_ip: Option<IpAddr>,
    /// The IP given to clients in the endhost API URLs and SNAP addresses,
    /// when they reach this host by another address than `bind_ip`.
    #[serde(default)]
    pub advertised_ip: Option<IpAddr>,
    /// The ASes.
    #[serde(rename = "as")]
    pub ases: Vec<AsEntry>,
    /// The links between them.
    #[serde(default, rename = "link")]
    pub links: Vec<LinkEntry>,
}

/// One AS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsEntry {
    /// Its ISD-AS, e.g. `1-ff00:0:110`.
    pub isd_as: IsdAsnText,
    /// A core AS.
    #[serde(default)]
    pub core: bool,
    /// Whether clients can attach here (an endhost API and a SNAP).
    #[serde(default = "yes")]
    pub endhost: bool,
}

fn yes() -> bool {
    true
}

/// One link: `from` is the `type` of `to`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkEntry {
    /// `ISD-AS#interface` on one end.
    pub from: Interface,
    /// `ISD-AS#interface` on the other.
    pub to: Interface,
    /// What `from` is to `to`.
    #[serde(rename = "type")]
    pub kind: LinkKind,
}

/// How two linked ASes relate, seen from the `from` side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkKind {
    /// Between two core ASes.
    Core,
    /// `from` is the parent (provider) of `to`.
    Parent,
    /// `from` is the child (customer) of `to`.
    Child,
    /// Peers.
    Peer,
}

/// An ISD-AS written as text, checked when the file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsdAsnText(pub IsdAsn);

impl<'de> Deserialize<'de> for IsdAsnText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        IsdAsn::from_str(&s)
            .map(IsdAsnText)
            .map_err(|e| serde::de::Error::custom(format!("`{s}` is not an ISD-AS: {e}")))
    }
}

/// `ISD-AS#interface`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interface {
    /// The AS.
    pub isd_as: IsdAsn,
    /// Its interface number (not 0).
    pub id: u16,
}

impl<'de> Deserialize<'de> for Interface {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let invalid = |why: &str| serde::de::Error::custom(format!("`{s}`: {why}"));
        let (ia, id) = s
            .rsplit_once('#')
            .ok_or_else(|| invalid("expected ISD-AS#interface, e.g. 1-ff00:0:110#1"))?;
        let isd_as = IsdAsn::from_str(ia).map_err(|e| invalid(&format!("not an ISD-AS: {e}")))?;
        let id = id
            .parse::<u16>()
            .ok()
            .filter(|id| *id != 0)
            .ok_or_else(|| invalid("the interface must be a number from 1 to 65535"))?;
        Ok(Interface { isd_as, id })
    }
}

/// A checked topology, ready to run.
pub struct Network {
    /// pocketscion's state: topology, endhost APIs, SNAPs.
    pub state: PocketScionState,
    /// Bind and advertised addresses.
    pub io: IoConfig,
    /// The endhost API of each AS that has one.
    pub endhost_apis: BTreeMap<IsdAsn, EndhostApiId>,
}

impl TopologyFile {
    /// Builds the network; refuses what pocketscion would not run (an AS
    /// twice, a link to an AS not listed, an interface used twice, no AS
    /// for clients).
    pub fn build(&self) -> anyhow::Result<Network> {
        anyhow::ensure!(!self.ases.is_empty(), "the topology lists no `[[as]]`");
        anyhow::ensure!(
            self.ases.iter().any(|a| a.endhost),
            "no AS has an endhost, so no client could attach"
        );
        let mut builder = ScionTopologyBuilder::new();
        for entry in &self.ases {
            let ia = entry.isd_as.0;
            let scion_as = if entry.core {
                ScionAs::new_core(ia)
            } else {
                ScionAs::new(ia)
            };
            builder
                .add_as(scion_as)
                .map_err(|e| anyhow::anyhow!("AS {ia}: {e}"))?;
        }
        for link in &self.links {
            let (from, to) = (link.from, link.to);
            let kind = match link.kind {
                LinkKind::Core => ScionLinkType::Core,
                LinkKind::Parent => ScionLinkType::Parent,
                LinkKind::Child => ScionLinkType::Child,
                LinkKind::Peer => ScionLinkType::Peer,
            };
            let what = || format!("link {}#{} - {}#{}", from.isd_as, from.id, to.isd_as, to.id);
            let scion_link = ScionLink::new(from.isd_as, from.id, kind, to.isd_as, to.id)
                .map_err(|e| anyhow::anyhow!("{}: {e}", what()))?;
            builder
                .add_link(scion_link)
                .map_err(|e| anyhow::anyhow!("{}: {e}", what()))?;
        }
        let topology = builder
            .build()
            .map_err(|e| anyhow::anyhow!("topology: {e}"))?;

        let mut state = PocketScionState::new(chrono::Utc::now());
        state.set_topology(topology);
        let mut endhost_apis = BTreeMap::new();
        for entry in self.ases.iter().filter(|a| a.endhost) {
            let ia = entry.isd_as.0;
            endhost_apis.insert(ia, state.add_endhost_api(vec![ia]));
            state
                .add_snap(ia)
                .map_err(|e| anyhow::anyhow!("SNAP for {ia}: {e}"))?;
        }
        let io = IoConfig::new();
        if let Some(ip) = self.bind_ip {
            io.set_bind_ip(ip);
        }
        if let Some(ip) = self.advertised_ip {
            io.set_advertised_ip(IsdAsn::WILDCARD, ip);
        }
        Ok(Network {
            state,
            io,
            endhost_apis,
        })
    }
}
