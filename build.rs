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
    tonic_prost_build::configure()
        .bytes(".")
        // Small per-stream buffers for many idle streams (src/line/codec.rs).
        .codec_path("crate::line::codec::LeanCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
