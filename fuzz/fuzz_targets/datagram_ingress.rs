//! Datagrams from the network as scion-quic's listener and scion-udp's
//! relay table first see them: the QUIC header, a stateless retry token,
//! and the peer table's routing (connection ids learned from the broker,
//! clients that change address). Nothing may panic; a token that was not
//! minted by us for this peer is never accepted.
#![no_main]

use std::time::{Duration, Instant, SystemTime};

use libfuzzer_sys::fuzz_target;
use mqttbridge::net::quic::RetryTokens;
use mqttbridge::net::udp_relay::{PeerTable, Route, quic_long_header_scid};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, datagram)) = data.split_first() else {
        return;
    };
    let mut copy = datagram.to_vec();
    if let Ok(header) = quiche::Header::from_slice(&mut copy, quiche::MAX_CONN_ID_LEN) {
        let tokens = RetryTokens::new(Duration::from_secs(10));
        if let Some(token) = header.token.as_deref() {
            assert!(
                tokens
                    .validate("192.0.2.1:4433", token, SystemTime::now())
                    .is_none(),
                "a token we never minted was accepted"
            );
        }
        let minted = tokens.mint("192.0.2.1:4433", header.dcid.as_ref(), SystemTime::now());
        assert_eq!(
            tokens.validate("192.0.2.1:4433", &minted, SystemTime::now()),
            Some(header.dcid.as_ref())
        );
        assert!(
            tokens
                .validate("192.0.2.2:4433", &minted, SystemTime::now())
                .is_none()
        );
    }
    let _ = quic_long_header_scid(datagram);

    // A small table, so the fuzzer also reaches "full" and expiry.
    let mut table = PeerTable::<u8>::new(4, Duration::from_millis(5));
    let start = Instant::now();
    for (i, chunk) in datagram.chunks(32).enumerate() {
        let now = start + Duration::from_millis(i as u64);
        let from = selector.wrapping_add(chunk.first().copied().unwrap_or(0) % 8);
        match table.from_client(from, chunk, now) {
            Route::Existing(id) | Route::New(id) => {
                let back = table.from_broker(id, chunk, now);
                assert!(back.is_some(), "a mapping just used is there");
            }
            Route::Full => {}
        }
    }
});
