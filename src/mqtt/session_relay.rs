//! A session's bytes relayed both ways untouched, in one hand-written
//! future: what `scion-quic` runs for each client once the broker has its
//! CONNECT. Each direction holds only what was read and not yet written
//! (nothing while idle: reads go through the thread's scratch buffer), the
//! streams are not split, and the stop signal is polled only where a read
//! from the broker would wait, so a packet is never cut. An idle session's
//! relay is 208 bytes and the caller's stop signal: as an `async fn` it kept
//! 720 (each argument is kept apart from where it is used), and two `async`
//! copies joined by a `select!` kept 800.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::passthrough::{PacketBounds, RelayEnd, finish_packet};
use super::scratch_read::poll_read_into;

/// How a relay ended.
#[derive(Debug)]
pub struct Relayed {
    /// Bytes relayed from the client, when its side ended cleanly (`None`
    /// when reading or writing failed, or the relay stopped first).
    pub up: Option<u64>,
    /// How the broker's side ended.
    pub down: RelayEnd,
    /// The client's side ended before the broker's.
    pub client_first: bool,
}

/// Relays `client` <-> `broker` until both sides have ended, the broker's
/// side failed, or `stop` completed. The broker's stream is shut for
/// writing once the client's side ends, the client's once the broker's
/// does. On stop the packet in progress to the client is finished if its
/// bytes arrive within `finish_within`, and `farewell` is written to the
/// client if that left it between two packets.
///
/// `stop` is pinned by the caller, so the relay holds a reference to it and
/// not a second copy.
pub fn relay_session<'a, C, B, S>(
    client: &'a mut C,
    broker: &'a mut B,
    stop: Pin<&'a mut S>,
    finish_within: Duration,
    farewell: Option<&'a [u8]>,
) -> SessionRelay<'a, C, B, S>
where
    C: AsyncRead + AsyncWrite + Unpin + Send,
    B: AsyncRead + AsyncWrite + Unpin + Send,
    S: Future<Output = ()>,
{
    SessionRelay {
        phase: Phase::Relaying { client, broker },
        both_ways: BothWays {
            stop,
            up: Direction::default(),
            down: Direction::default(),
            bounds: PacketBounds::default(),
            up_end: None,
            up_closed: false,
            down_end: None,
            down_closed: false,
            client_first: false,
        },
        finish_within,
        farewell,
    }
}

/// The relay of [`relay_session`]: a plain struct, so an idle session keeps
/// each of its parts once.
pub struct SessionRelay<'a, C, B, S> {
    phase: Phase<'a, C, B>,
    both_ways: BothWays<'a, S>,
    finish_within: Duration,
    farewell: Option<&'a [u8]>,
}

/// The relay's state while it relays both ways.
struct BothWays<'a, S> {
    stop: Pin<&'a mut S>,
    up: Direction,
    down: Direction,
    /// Where the bytes to the client are within MQTT packets.
    bounds: PacketBounds,
    /// How the client's side ended (`Some(None)`: it failed).
    up_end: Option<Option<u64>>,
    /// The broker's stream has been shut since.
    up_closed: bool,
    /// How the broker's side ended.
    down_end: Option<RelayEnd>,
    /// The client's stream has been shut since.
    down_closed: bool,
    client_first: bool,
}

/// The steps after stopping, boxed: the relay keeps no room for them while
/// it relays.
type Stopping<'a> = Pin<Box<dyn Future<Output = RelayEnd> + Send + 'a>>;

enum Phase<'a, C, B> {
    Relaying {
        client: &'a mut C,
        broker: &'a mut B,
    },
    Stopping(Stopping<'a>),
    Ended,
}

impl<'a, C, B, S> Future for SessionRelay<'a, C, B, S>
where
    C: AsyncRead + AsyncWrite + Unpin + Send,
    B: AsyncRead + AsyncWrite + Unpin + Send,
    S: Future<Output = ()>,
{
    type Output = Relayed;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Relayed> {
        let this = self.get_mut();
        loop {
            match &mut this.phase {
                Phase::Relaying { client, broker } => {
                    if let Some(relayed) = ready!(this.both_ways.poll(cx, client, broker)) {
                        this.phase = Phase::Ended;
                        return Poll::Ready(relayed);
                    }
                    // Stopped: the client's stream is finished boxed.
                    let Phase::Relaying { client, broker } =
                        std::mem::replace(&mut this.phase, Phase::Ended)
                    else {
                        unreachable!("matched as relaying above");
                    };
                    this.phase = Phase::Stopping(Box::pin(stop_at_boundary(
                        client,
                        broker,
                        this.both_ways.bounds,
                        this.both_ways.down.bytes,
                        this.finish_within,
                        this.farewell,
                    )));
                }
                Phase::Stopping(steps) => {
                    let down = ready!(steps.as_mut().poll(cx));
                    this.phase = Phase::Ended;
                    return Poll::Ready(Relayed {
                        up: None,
                        down,
                        client_first: false,
                    });
                }
                // As an `async fn` does.
                Phase::Ended => panic!("a session relay polled after it ended"),
            }
        }
    }
}

impl<S: Future<Output = ()>> BothWays<'_, S> {
    /// Relays both ways as far as the streams allow; `Ready(Some)` once
    /// both sides are done, `Ready(None)` once `stop` completed (looked at
    /// only where the relay may stop).
    fn poll<C, B>(
        &mut self,
        cx: &mut Context<'_>,
        client: &mut C,
        broker: &mut B,
    ) -> Poll<Option<Relayed>>
    where
        C: AsyncRead + AsyncWrite + Unpin,
        B: AsyncRead + AsyncWrite + Unpin,
    {
        if self.up_end.is_none()
            && let Poll::Ready(end) = self.up.poll_copy(cx, client, broker, |_| {})
        {
            self.up_end = Some(end.ok());
        }
        // A failed shutdown changes nothing: the side has ended either way.
        if self.up_end.is_some()
            && !self.up_closed
            && Pin::new(&mut *broker).poll_shutdown(cx).is_ready()
        {
            self.up_closed = true;
            self.client_first = !self.down_closed;
        }
        if self.down_end.is_none() {
            // The stop is looked at only with nothing of the broker's in
            // flight, so what the client got ends where a read ended:
            // before reading more, or (once, if it was not looked at then)
            // when the copy has written everything and waits.
            let looked = self.down.is_idle();
            if looked && self.stop.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            let bounds = &mut self.bounds;
            match self
                .down
                .poll_copy(cx, broker, client, |read| bounds.advance(read))
            {
                Poll::Ready(Ok(bytes)) => self.down_end = Some(RelayEnd::Eof { bytes }),
                Poll::Ready(Err(e)) => self.down_end = Some(RelayEnd::Failed(e)),
                Poll::Pending => {
                    if !looked && self.down.is_idle() && self.stop.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(None);
                    }
                }
            }
        }
        if self.down_end.is_some()
            && !self.down_closed
            && Pin::new(&mut *client).poll_shutdown(cx).is_ready()
        {
            self.down_closed = true;
        }
        // The broker ended: the client hears the end of the stream and
        // closes (or the transport's idle timeout closes it), and what it
        // sends until then still goes to the broker. The broker failed:
        // the client's side is not waited for.
        let wait_for_client = matches!(self.down_end, Some(RelayEnd::Eof { .. }));
        if self.down_closed
            && (self.up_closed || !wait_for_client)
            && let Some(down) = self.down_end.take()
        {
            return Poll::Ready(Some(Relayed {
                up: self.up_end.filter(|_| self.up_closed).flatten(),
                down,
                client_first: self.client_first,
            }));
        }
        Poll::Pending
    }
}

/// Stopping: the packet in progress to the client finished if it arrives
/// within `finish_within`, then `farewell` if that left the client between
/// two packets, then the end of the client's stream.
async fn stop_at_boundary<C, B>(
    client: &mut C,
    broker: &mut B,
    bounds: PacketBounds,
    bytes: u64,
    finish_within: Duration,
    farewell: Option<&[u8]>,
) -> RelayEnd
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let end = finish_packet(broker, client, bounds, bytes, finish_within).await;
    if let RelayEnd::Stopped {
        at_boundary: true, ..
    } = end
        && let Some(farewell) = farewell
    {
        let _ = client.write_all(farewell).await;
    }
    let _ = client.shutdown().await;
    end
}

/// One direction's bytes in flight.
#[derive(Default)]
struct Direction {
    /// Read and not yet written; empty, without memory, while idle.
    pending: BytesMut,
    written: usize,
    /// Bytes relayed so far.
    bytes: u64,
}

impl Direction {
    /// Nothing read is waiting to be written.
    fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// Copies `from` to `to` until `from` ends (the bytes relayed), a read
    /// or write fails, or either has to wait. `observe` sees each read.
    fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut R,
        to: &mut W,
        mut observe: impl FnMut(&[u8]),
    ) -> Poll<io::Result<u64>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            while self.written < self.pending.len() {
                let n = ready!(Pin::new(&mut *to).poll_write(cx, &self.pending[self.written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.written += n;
            }
            if !self.pending.is_empty() {
                // Flushed at once: a stream that buffers (WebSocket) would
                // otherwise hold the bytes until the next write.
                ready!(Pin::new(&mut *to).poll_flush(cx))?;
                self.bytes += self.pending.len() as u64;
                self.pending.clear();
                self.written = 0;
            }
            if ready!(poll_read_into(from, cx, &mut self.pending))? == 0 {
                return Poll::Ready(Ok(self.bytes));
            }
            observe(&self.pending);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, DuplexStream, duplex};
    use tokio::sync::watch;
    use tokio::task::JoinHandle;

    const WAIT: Duration = Duration::from_secs(10);

    /// A relay between two in-memory pipes: the client's and the broker's
    /// far ends, the stop switch and the relay's task.
    struct Running {
        client: DuplexStream,
        broker: DuplexStream,
        stop: watch::Sender<bool>,
        relay: JoinHandle<Relayed>,
    }

    fn start(farewell: Option<&'static [u8]>) -> Running {
        let (client, mut client_side) = duplex(1024);
        let (broker, mut broker_side) = duplex(1024);
        let (stop, mut stopping) = watch::channel(false);
        let relay = tokio::spawn(async move {
            let stop = std::pin::pin!(async move {
                let _ = stopping.wait_for(|s| *s).await;
            });
            relay_session(&mut client_side, &mut broker_side, stop, WAIT, farewell).await
        });
        Running {
            client,
            broker,
            stop,
            relay,
        }
    }

    async fn read_to_end(stream: &mut DuplexStream) -> Vec<u8> {
        let mut all = Vec::new();
        tokio::time::timeout(WAIT, stream.read_to_end(&mut all))
            .await
            .expect("the stream ends")
            .expect("reading works");
        all
    }

    async fn ended(relay: JoinHandle<Relayed>) -> Relayed {
        tokio::time::timeout(WAIT, relay)
            .await
            .expect("the relay ends")
            .expect("the relay did not panic")
    }

    #[tokio::test]
    async fn stops_only_between_packets_then_says_farewell() {
        let Running {
            mut client,
            mut broker,
            stop,
            relay,
        } = start(Some(&[0xe0, 0x01, 0x8b]));
        // Half a PUBLISH (5 of its 7 bytes), then the stop.
        broker
            .write_all(&[0x30, 0x05, 0x00, 0x01, b't'])
            .await
            .unwrap();
        let mut got = [0u8; 5];
        client.read_exact(&mut got).await.unwrap();
        stop.send_replace(true);
        // The rest of it and more: only the rest is relayed, then the farewell.
        broker.write_all(&[b'h', b'i', 0xd0, 0x00]).await.unwrap();
        let relayed = ended(relay).await;
        assert!(
            matches!(
                relayed.down,
                RelayEnd::Stopped {
                    bytes: 7,
                    at_boundary: true
                }
            ),
            "{relayed:?}"
        );
        assert_eq!(relayed.up, None);
        assert_eq!(
            read_to_end(&mut client).await,
            [b'h', b'i', 0xe0, 0x01, 0x8b]
        );
    }

    /// One side sends and ends, then the other: each hears the other's
    /// bytes and end of stream, and the relay tells both sides' bytes and
    /// which ended first.
    async fn one_side_ends_then_the_other(client_first: bool) {
        let Running {
            mut client,
            mut broker,
            stop: _stop,
            relay,
        } = start(None);
        let (first, second) = if client_first {
            (&mut client, &mut broker)
        } else {
            (&mut broker, &mut client)
        };
        first.write_all(b"first").await.unwrap();
        first.shutdown().await.unwrap();
        assert_eq!(read_to_end(second).await, b"first");
        second.write_all(b"second!").await.unwrap();
        second.shutdown().await.unwrap();
        assert_eq!(read_to_end(first).await, b"second!");
        let relayed = ended(relay).await;
        let (up, down) = if client_first { (5, 7) } else { (7, 5) };
        assert_eq!(relayed.up, Some(up));
        assert!(
            matches!(relayed.down, RelayEnd::Eof { bytes } if bytes == down),
            "{relayed:?}"
        );
        assert_eq!(relayed.client_first, client_first);
    }

    #[tokio::test]
    async fn the_client_ending_first_ends_the_brokers_stream_and_waits_for_the_broker() {
        one_side_ends_then_the_other(true).await;
    }

    #[tokio::test]
    async fn the_broker_ending_first_ends_the_clients_stream_and_waits_for_the_client() {
        one_side_ends_then_the_other(false).await;
    }

    #[tokio::test]
    async fn an_idle_relay_holds_no_buffer() {
        let mut up = Direction::default();
        let (mut from, mut far) = duplex(64);
        let (mut to, _sink) = duplex(64);
        far.write_all(b"x").await.unwrap();
        let copied = std::future::poll_fn(|cx| {
            let poll = up.poll_copy(cx, &mut from, &mut to, |_| {});
            Poll::Ready(poll.is_pending())
        })
        .await;
        assert!(copied, "the copy waits for more");
        assert_eq!(up.bytes, 1);
        assert_eq!(up.pending.capacity(), 0, "waiting, it holds no memory");
    }
}
