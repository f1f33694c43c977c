//! The systemd unit starts the binary with flags it accepts, for every mode.

use clap::Parser;
use mqttbridge::cli::Cli;

fn unit() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib/systemd/mqttbridge@.service");
    std::fs::read_to_string(path).unwrap()
}

fn line(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} in the unit"))
        .to_string()
}

#[test]
fn unit_command_lines_parse_for_every_mode() {
    let unit = unit();
    assert_eq!(line(&unit, "Type"), "notify");
    for mode in ["r-proxy", "s-proxy", "scion-quic", "scion-udp"] {
        for key in ["ExecStart", "ExecStartPre"] {
            let command = line(&unit, key)
                .replace("%i", mode)
                .replace("$MQTTBRIDGE_OPTS", "--log-format json");
            let args: Vec<&str> = command.split_whitespace().collect();
            assert!(args[0].ends_with("/mqttbridge"));
            Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{key} for {mode}: {e}"));
        }
    }
}
