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
    // The proxies speak gRPC on HTTP/2 themselves (src/line/grpc/): only
    // the messages and a client (tonic's, what the tests check the s-proxy
    // with) are generated.
    tonic_prost_build::configure()
        .bytes(".")
        .build_server(false)
        .compile_fds(descriptors)?;
    Ok(())
}
