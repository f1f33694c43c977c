//! A TCP relay between a client and a server whose open connections the
//! test can cut at will (both sockets closed, as when a network path
//! fails), while new connections keep being accepted.

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Relays every connection to `target` until cut.
pub struct CutRelay {
    /// Where clients connect.
    pub addr: std::net::SocketAddr,
    cuts: watch::Sender<u64>,
}

impl CutRelay {
    /// Listens on a loopback ephemeral port and relays to `target`.
    pub async fn start(target: std::net::SocketAddr) -> CutRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cuts, watching) = watch::channel(0u64);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = watching.clone();
                cut.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        CutRelay { addr, cuts }
    }

    /// Closes every connection open now.
    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }
}
