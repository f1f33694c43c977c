//! What the QUIC driver needs from a datagram socket, for UDP/IP and SCION.

use std::fmt::{Debug, Display};
use std::future::Future;
use std::hash::Hash;
use std::io;
use std::net::SocketAddr;

use futures_util::FutureExt;
use scion_stack::stack::UdpScionSocket;
use sciparse::address::ip_socket_addr::ScionSocketIpAddr;
use tokio::net::UdpSocket;

/// A datagram socket the QUIC driver can run over.
pub trait DatagramSocket: Send + Sync + 'static {
    /// A peer's full address (for SCION: ISD-AS, IP and port).
    type Addr: Copy + Eq + Hash + Debug + Display + Send + Sync + 'static;

    /// Sends one datagram now, or fails with `WouldBlock` when the socket
    /// cannot take it yet (then [`DatagramSocket::send_to`] waits).
    fn try_send_to(&self, buf: &[u8], to: Self::Addr) -> io::Result<()>;

    /// Sends one datagram.
    fn send_to(&self, buf: &[u8], to: Self::Addr) -> impl Future<Output = io::Result<()>> + Send;

    /// Receives one datagram.
    fn recv_from(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, Self::Addr)>> + Send;

    /// This socket's own address.
    fn local(&self) -> io::Result<Self::Addr>;

    /// The IP socket address quiche tracks for `addr` (quiche identifies
    /// network paths by IP address and port).
    fn ip_of(addr: &Self::Addr) -> SocketAddr;
}

impl DatagramSocket for UdpSocket {
    type Addr = SocketAddr;

    fn try_send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<()> {
        UdpSocket::try_send_to(self, buf, to).map(|_| ())
    }

    async fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<()> {
        UdpSocket::send_to(self, buf, to).await.map(|_| ())
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        UdpSocket::recv_from(self, buf).await
    }

    fn local(&self) -> io::Result<SocketAddr> {
        self.local_addr()
    }

    fn ip_of(addr: &SocketAddr) -> SocketAddr {
        *addr
    }
}

impl DatagramSocket for UdpScionSocket {
    type Addr = ScionSocketIpAddr;

    fn try_send_to(&self, buf: &[u8], to: ScionSocketIpAddr) -> io::Result<()> {
        // The stack has no sending without waiting: its send, polled once.
        // A send dropped unfinished is sent again by `send_to` (a datagram
        // sent twice is one QUIC discards).
        match UdpScionSocket::send_to(self, buf, to).now_or_never() {
            Some(sent) => sent.map_err(io::Error::other),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    async fn send_to(&self, buf: &[u8], to: ScionSocketIpAddr) -> io::Result<()> {
        UdpScionSocket::send_to(self, buf, to)
            .await
            .map_err(io::Error::other)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, ScionSocketIpAddr)> {
        UdpScionSocket::recv_from(self, buf)
            .await
            .map_err(io::Error::other)
    }

    fn local(&self) -> io::Result<ScionSocketIpAddr> {
        Ok(self.local_addr())
    }

    fn ip_of(addr: &ScionSocketIpAddr) -> SocketAddr {
        addr.socket_addr()
    }
}
