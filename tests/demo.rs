//! `mqttbridge demo`, the README's main job, runs to success.

use std::process::Command;

#[test]
fn demo_delivers_every_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
        .args(["demo", "--count", "2"])
        .output()
        .expect("binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("12 messages published and received"),
        "{stdout}"
    );
    assert!(stdout.contains("demo: all messages arrived"), "{stdout}");
    assert!(
        stdout.contains("6 messages published over SCION and received"),
        "{stdout}"
    );
    for topic in [
        "demo/v3.1.1/qos0",
        "demo/v3.1.1/qos2",
        "demo/v5.0/qos1",
        "demo/scion/qos2",
    ] {
        assert!(stdout.contains(topic), "{topic} in {stdout}");
    }
}
