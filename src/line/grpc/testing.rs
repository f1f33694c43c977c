//! For unit tests: one call on a real HTTP/2 connection in memory, our
//! client at one end and our server at the other.

use std::time::Duration;

use super::messages::Messages;
use crate::net::http2::client::{self, Request, ResponseFuture};
use crate::net::http2::{self, RecvStream, SendStream};

const CONFIG: http2::Config = http2::Config {
    max_streams: 10,
    stream_window: 1 << 20,
    connection_window: 1 << 20,
    max_header_list: 16 * 1024,
    send_buffer: 64 * 1024,
};

/// A call on an in-memory HTTP/2 connection: the client's request stream,
/// the server's side of it, and the response to come (kept, or the call
/// is cancelled).
pub async fn call() -> (SendStream, RecvStream, ResponseFuture) {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let server = tokio::spawn(async move {
        let mut connection = http2::server::handshake(Box::new(server_io), CONFIG)
            .await
            .expect("handshake");
        let incoming = connection
            .accept()
            .await
            .expect("a request")
            .expect("no error");
        tokio::spawn(async move { while connection.accept().await.is_some() {} });
        let (_responses, requests) = incoming
            .respond(200, &http::HeaderMap::new(), false)
            .expect("responded");
        requests
    });
    let (requests, connection) = client::handshake(Box::new(client_io), CONFIG)
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let request = Request {
        https: false,
        authority: "s-proxy",
        path: "/relay",
        headers: &http::HeaderMap::new(),
    };
    let (response, stream) = requests.send_request(request, false).await.expect("sent");
    let served = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("accepted in time")
        .expect("server");
    (stream, served, response)
}

/// The server's side of a call as the messages it reads.
pub fn served<M>(body: RecvStream) -> Messages<M> {
    Messages::new(body, 1024, None)
}
