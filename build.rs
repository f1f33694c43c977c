//! Compiles `proto/` into Rust with protox (pure Rust), so no system protoc is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/mqtt.proto"];
    for file in [
        "proto/mqtt.proto",
        "proto/mqttv3.proto",
        "proto/mqttv5.proto",
    ] {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    // The proxies speak gRPC on HTTP/2 themselves (src/line/grpc/). The
    // client and server tonic generates are what the tests check them
    // against: tonic's client in front of the s-proxy, tonic's server (the
    // seed system's s-proxy runs it) behind the r-proxy.
    tonic_prost_build::configure()
        .bytes(".")
        .compile_fds(descriptors)?;
    Ok(())
}
