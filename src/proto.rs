//! Generated protobuf types and gRPC stubs for the `MqttRelayService` wire
//! contract (see `proto/`). Module names follow the proto packages because
//! the generated code refers to its siblings by package name.

#![allow(clippy::all, missing_docs)]

/// Envelope, session control and the relay service (package `mqtt`).
pub mod mqtt {
    tonic::include_proto!("mqtt");
}

/// MQTT 3.1.1 packets (package `mqttv3`).
pub mod mqttv3 {
    tonic::include_proto!("mqttv3");
}

/// MQTT 5.0 packets (package `mqttv5`).
pub mod mqttv5 {
    tonic::include_proto!("mqttv5");
}
