//! Attaching to a SCION network with scion-stack: building a stack from an
//! endhost API URL and SNAP token, sharing one per process between client
//! connections, and sockets that follow a path ACL.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Weak};

use anyhow::Context;
use scion_stack::stack::builder::SnapUnderlayConfig;
use scion_stack::stack::{
    ScionSocketBindError, ScionStack, ScionStackBuilder, SnapConnectionError, SocketConfig,
    UdpScionSocket,
};
use scion_stack::x25519_dalek::StaticSecret;
use sciparse::address::ip_socket_addr::ScionSocketIpAddr;

/// A SCION stack for the local AS behind `endhost_api`.
pub async fn build_stack(
    endhost_api: url::Url,
    snap_token: Option<String>,
) -> anyhow::Result<ScionStack> {
    // scion-stack talks to the endhost API over rustls; it needs a process-wide
    // crypto provider (installing it twice is harmless).
    scion_sdk_utils::rustls::select_ring_crypto_provider();
    let mut builder = ScionStackBuilder::new().with_endhost_api(endhost_api.clone());
    if let Some(token) = snap_token {
        let identity = snap_identity(&token);
        builder = builder.with_auth_token(token).with_snap_underlay_config(
            SnapUnderlayConfig::default().with_static_identity(identity),
        );
    }
    builder
        .build()
        .await
        .with_context(|| format!("attaching to SCION through endhost API {endhost_api}"))
}

/// The SNAP tunnel identity of every stack that holds `token`, in every
/// process: derived from the token rather than drawn at random.
///
/// A SNAP data plane authorises one identity per token (the last one
/// registered) and knows each tunnel by the UDP address it comes from. With
/// an identity of its own per process, a second process holding the token
/// took the first one's authorisation away (a `sub` left running stalled
/// when `pub` started), and a tunnel from a UDP port that an exited process
/// had used was refused until the data plane expired the old tunnel,
/// minutes later: a SCION server restarted on its fixed port could not
/// start, and a client that happened to draw such a port could not connect.
/// With one identity per token, each of these is the same peer coming back.
/// Whoever holds the token can register an identity of their choosing, so
/// one derived from it gives nothing away that the token does not.
fn snap_identity(token: &str) -> StaticSecret {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        &[SNAP_IDENTITY_LABEL, token.as_bytes()].concat(),
    );
    let mut secret = [0u8; 32];
    secret.copy_from_slice(digest.as_ref());
    StaticSecret::from(secret)
}

/// Separates the identity's derivation from any other use of the token.
const SNAP_IDENTITY_LABEL: &[u8] = b"mqttbridge SNAP tunnel identity v1\0";

/// Stacks that client connections of this process share, by endhost API
/// and SNAP token; an entry lives as long as a connection uses it.
type SharedStacks = HashMap<(url::Url, Option<String>), Weak<ScionStack>>;
static SHARED_STACKS: LazyLock<tokio::sync::Mutex<SharedStacks>> = LazyLock::new(Default::default);

/// The stack this process already has for `endhost_api` and `snap_token`,
/// or a new one: one stack's tunnels, path lookups and keep-alives serve
/// every client connection of the process.
pub async fn shared_stack(
    endhost_api: url::Url,
    snap_token: Option<String>,
) -> anyhow::Result<Arc<ScionStack>> {
    let key = (endhost_api, snap_token);
    // Held across the build, so that clients connecting at once wait for
    // one stack instead of each building their own.
    let mut stacks = SHARED_STACKS.lock().await;
    if let Some(stack) = stacks.get(&key).and_then(Weak::upgrade) {
        return Ok(stack);
    }
    let stack = Arc::new(build_stack(key.0.clone(), key.1.clone()).await?);
    stacks.retain(|_, stack| stack.strong_count() > 0);
    stacks.insert(key, Arc::downgrade(&stack));
    Ok(stack)
}

/// Binds a UDP socket on `stack` at `addr` (any port when `None`); its
/// paths follow `acl` when given.
pub async fn bind(
    stack: &ScionStack,
    addr: Option<ScionSocketIpAddr>,
    acl: Option<&PathAcl>,
) -> anyhow::Result<UdpScionSocket> {
    let mut config = SocketConfig::new();
    if let Some(acl) = acl {
        config = config.with_path_policy(acl.0.clone());
    }
    match stack.bind_with_config(addr, config).await {
        Ok(socket) => Ok(socket),
        Err(ScionSocketBindError::SnapConnectionError(
            SnapConnectionError::SnapTokenSourceMissing,
        )) => anyhow::bail!(
            "the AS's SCION data plane (SNAP) needs a token and none was given: \
             set --snap-token-file (snap_token_file in a config file)"
        ),
        Err(e) => Err(e).context("binding a SCION UDP socket"),
    }
}

/// Where and how a server-side mode attaches to SCION (from its config).
pub struct Attachment<'a> {
    /// Endhost API of the local AS.
    pub endhost_api: Option<&'a url::Url>,
    /// File with the SNAP token.
    pub snap_token_file: Option<&'a std::path::Path>,
    /// SCION address to bind, `[ISD-AS,IP]:port`; any port when `None`.
    pub listen: Option<&'a str>,
    /// Path ACL for the socket.
    pub path_acl: Option<&'a PathAcl>,
}

/// Builds the stack and binds the socket a server-side mode listens on.
pub async fn attach(at: Attachment<'_>) -> anyhow::Result<(ScionStack, UdpScionSocket)> {
    let api = at
        .endhost_api
        .cloned()
        .context("SCION needs `endhost_api` (or --endhost-api)")?;
    let token = at.snap_token_file.map(read_token).transpose()?;
    let stack = build_stack(api, token).await?;
    let addr = at
        .listen
        .map(|s| {
            s.parse::<ScionSocketIpAddr>().map_err(|_| {
                anyhow::anyhow!("`{s}` is not a SCION address like [1-ff00:0:110,10.0.0.1]:4433")
            })
        })
        .transpose()?;
    let socket = bind(&stack, addr, at.path_acl).await?;
    Ok((stack, socket))
}

/// Reads a SNAP token file (surrounding white space removed).
pub fn read_token(path: &std::path::Path) -> anyhow::Result<String> {
    let token = std::fs::read_to_string(path)
        .with_context(|| format!("reading SNAP token {}", path.display()))?;
    Ok(token.trim().to_string())
}

/// A SCION path ACL such as `"- 2-ff00:0:222 +"` (deny paths through that
/// AS, allow the rest), checked when the file is read.
#[derive(Debug, Clone, PartialEq)]
pub struct PathAcl(pub sciparse::path::policy::acl::AclPolicy);

impl FromStr for PathAcl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        sciparse::path::policy::acl::AclPolicy::parse(s)
            .map(PathAcl)
            .map_err(|e| format!("path ACL `{s}`: {e}"))
    }
}

super::deserialize_from_str!(PathAcl);

#[cfg(test)]
mod tests {
    use super::*;
    use scion_stack::x25519_dalek::PublicKey;

    #[test]
    fn one_token_gives_every_process_the_same_identity_and_another_token_another() {
        let public = |token: &str| PublicKey::from(&snap_identity(token)).to_bytes();
        assert_eq!(public("token-a"), public("token-a"));
        assert_ne!(public("token-a"), public("token-b"));
        // Not the token's bare hash: the label keeps it apart from any other
        // use of the token.
        let bare = ring::digest::digest(&ring::digest::SHA256, b"token-a");
        assert_ne!(snap_identity("token-a").to_bytes()[..], bare.as_ref()[..]);
    }
}
