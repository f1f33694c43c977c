//! The reference `bench/compare.sh` holds each gRPC-line proxy against: a
//! plain TCP splice on tokio, the least a user-space proxy hop can do. It
//! accepts a connection, opens one to its upstream and copies bytes both
//! ways (`tokio::io::copy_bidirectional`) on one thread, as the proxies run
//! by default, with Nagle's algorithm off on both sockets as theirs is. Two
//! of them in a row have the gRPC line's shape (two hops between client and
//! broker) without MQTT, gRPC or HTTP/2: what the line adds beyond them is
//! its own work.
//!
//!   tcp-splice LISTEN UPSTREAM
//!
//! It says `{"fields":{"message":"tcp-splice serving","listen":ADDR}}` on
//! stderr once it listens (the form `bench/lines.sh` waits for).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// How long accepting pauses after an error (out of file descriptors, most
/// likely) before it tries again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, upstream] = args.as_slice() else {
        eprintln!("usage: tcp-splice LISTEN UPSTREAM");
        std::process::exit(2);
    };
    let parse = |what: &str, addr: &str| {
        addr.parse::<SocketAddr>()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {e}")))
    };
    let (listen, upstream) = (parse("LISTEN", listen)?, parse("UPSTREAM", upstream)?);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve(listen, upstream))
}

async fn serve(listen: SocketAddr, upstream: SocketAddr) -> io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    eprintln!(
        r#"{{"fields":{{"message":"tcp-splice serving","listen":"{}"}}}}"#,
        listener.local_addr()?
    );
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                tokio::spawn(async move {
                    if let Err(e) = splice(client, upstream).await {
                        eprintln!("tcp-splice: connection ended: {e}");
                    }
                });
            }
            Err(e) => {
                eprintln!("tcp-splice: accept: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

async fn splice(mut client: TcpStream, upstream: SocketAddr) -> io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}
