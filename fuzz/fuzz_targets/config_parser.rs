//! Configuration files: any text, parsed and validated as each mode's
//! TOML and as a pocketscion topology file (built into a network, not
//! started). Nothing may panic; a broken file is an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqttbridge::service::r_proxy::RProxyConfig;
use mqttbridge::service::s_proxy::SProxyConfig;
use mqttbridge::service::scion_quic::ScionQuicConfig;
use mqttbridge::service::scion_udp::ScionUdpConfig;
use mqttbridge::service::settings as config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = config::parse::<RProxyConfig>(text, "fuzz") {
        let _ = c.validate();
    }
    if let Ok(c) = config::parse::<SProxyConfig>(text, "fuzz") {
        let _ = c.validate();
    }
    if let Ok(c) = config::parse::<ScionQuicConfig>(text, "fuzz") {
        let _ = c.validate();
    }
    if let Ok(c) = config::parse::<ScionUdpConfig>(text, "fuzz") {
        let _ = c.validate();
    }
    if let Ok(t) = config::parse::<mqttbridge::tools::topology::TopologyFile>(text, "fuzz") {
        let _ = t.build();
    }
});
