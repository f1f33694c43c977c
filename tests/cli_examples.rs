//! The examples `mqttbridge --help` shows: every one parses as written
//! (flags, URLs, addresses), and the edge/cloud pair runs: with only its
//! ports, host names and token file put in place, a message goes through.

use crate::common;

use clap::Parser;
use common::*;
use mqttbridge::cli::{Cli, EXAMPLES};
use mqttbridge::tools::mosquitto::Mosquitto;

/// The example command lines, split as a shell would.
fn examples() -> Vec<Vec<String>> {
    shell_commands(EXAMPLES)
        .into_iter()
        .filter(|words| words[0] == "mqttbridge")
        .collect()
}

#[test]
fn every_help_example_parses_as_written() {
    let all = examples();
    assert!(all.len() >= 15, "{} examples", all.len());
    for words in &all {
        if let Err(e) = Cli::try_parse_from(words) {
            panic!("`{}` does not parse: {e}", words.join(" "));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_and_cloud_examples_carry_a_message() {
    let all = examples();
    let find = |mode: &str| {
        all.iter()
            .find(|w| w[1] == mode && w.iter().any(|a| a == "--auth-token-file"))
            .unwrap_or_else(|| panic!("a {mode} example with a token"))
            .clone()
    };
    let broker = Mosquitto::start("").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "example-token\n").unwrap();
    let (edge_port, cloud_port) = (free_port(), free_port());
    // Only what cannot be the same on a test machine changes: ports, the
    // cloud's host name, the broker's port and where the token file is.
    let place = |words: Vec<String>| -> Vec<String> {
        words[1..]
            .iter()
            .map(|w| match w.as_str() {
                "0.0.0.0:1883" => format!("127.0.0.1:{edge_port}"),
                "[::]:50516" => format!("127.0.0.1:{cloud_port}"),
                "http://cloud.example:50516" => format!("http://127.0.0.1:{cloud_port}"),
                "127.0.0.1:1883" => broker.addr().to_string(),
                "token" => token.display().to_string(),
                other => other.to_string(),
            })
            .collect()
    };
    let cloud = place(find("s-proxy"));
    let cloud: Vec<&str> = cloud.iter().map(String::as_str).collect();
    let _s_proxy = ModeProcess::start(&cloud).await;
    let edge = place(find("r-proxy"));
    let edge: Vec<&str> = edge.iter().map(String::as_str).collect();
    let _r_proxy = ModeProcess::start(&edge).await;
    assert_round_trip(
        &format!("127.0.0.1:{edge_port}"),
        "example",
        "examples",
        "through",
    )
    .await;
}
