//! A TCP relay between a client and a server whose open connections the
//! test can cut at will (both sockets closed, as when a network path
//! fails); new connections are accepted, or during an outage
//! ([`CutRelay::cut_for`]) closed at once, as a dead path refuses them.

use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Relays every connection to `target` until cut.
pub struct CutRelay {
    /// Where clients connect.
    pub addr: std::net::SocketAddr,
    cuts: watch::Sender<u64>,
    /// New connections are closed at once until then.
    down_until: watch::Sender<Option<Instant>>,
}

impl CutRelay {
    /// Listens on a loopback ephemeral port and relays to `target`.
    pub async fn start(target: std::net::SocketAddr) -> CutRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cuts, watching) = watch::channel(0u64);
        let (down_until, outage) = watch::channel(None::<Instant>);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if outage.borrow().is_some_and(|until| Instant::now() < until) {
                    drop(client);
                    continue;
                }
                let mut cut = watching.clone();
                cut.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    // As a router would: forward each segment as it comes
                    // (Nagle here would hold small packets for ACKs).
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        CutRelay {
            addr,
            cuts,
            down_until,
        }
    }

    /// Closes every connection open now.
    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Closes every connection open now and refuses new ones for `outage`.
    pub fn cut_for(&self, outage: Duration) {
        self.down_until.send_replace(Some(Instant::now() + outage));
        self.cut();
    }
}
