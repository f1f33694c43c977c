//! For unit tests: one call on a real HTTP/2 connection in memory.

use bytes::Bytes;
use h2::{RecvStream, SendStream};

use super::messages::Messages;

/// A call on an in-memory HTTP/2 connection: the client's request stream,
/// the server's side of it, and the response to come (kept, or the client
/// cancels the call).
pub async fn call() -> (SendStream<Bytes>, RecvStream, h2::client::ResponseFuture) {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let server = tokio::spawn(async move {
        let mut connection = h2::server::handshake(server_io).await.expect("handshake");
        let (request, _respond) = connection
            .accept()
            .await
            .expect("a request")
            .expect("no error");
        tokio::spawn(async move { while connection.accept().await.is_some() {} });
        request.into_body()
    });
    let (requests, connection) = h2::client::handshake(client_io).await.expect("handshake");
    tokio::spawn(connection);
    let mut requests = requests.ready().await.expect("ready");
    let request = http::Request::post("http://s-proxy/relay")
        .body(())
        .expect("request");
    let (response, stream) = requests.send_request(request, false).expect("sent");
    (stream, server.await.expect("server"), response)
}

/// The server's side of a call as the messages it reads.
pub fn served<M>(body: RecvStream) -> Messages<M> {
    Messages::new(super::messages::Body::H2(body), 1024, None)
}
