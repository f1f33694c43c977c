//! The README's command lines, tried as a reader would: every `mqttbridge`
//! line in its `sh` blocks parses as written, and the recipes run with only
//! what cannot be the same on a test machine put in place (ports, addresses,
//! host names, where files are): "Use it" (s-proxy and r-proxy from the
//! example config files, certificates filled in as the README says) and the
//! QUIC block (certificates, scion-quic over SCION and over UDP/IP,
//! scion-udp, then sub and pub) on a local SCION network, and what the
//! client says when the SNAP token is left out. The `pub` and
//! `sub` block runs in `pubsub_cli::mosquitto_habits`.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use clap::Parser;
use common::*;
use mqttbridge::cli::Cli;
use mqttbridge::tools::certs;
use mqttbridge::tools::mosquitto::Mosquitto;
use tokio::io::AsyncBufReadExt;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The `sh` blocks of `text` (indented ones too), in order.
fn sh_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), line) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// The `mqttbridge` commands of a shell snippet.
fn mqttbridge_commands(snippet: &str) -> Vec<Vec<String>> {
    shell_commands(snippet)
        .into_iter()
        .filter(|words| words[0] == "mqttbridge")
        .collect()
}

/// The `mqttbridge` commands of the first `sh` block after `heading`.
fn commands_after(heading: &str) -> Vec<Vec<String>> {
    let readme = readme();
    let section = readme
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("the README has {heading:?}"));
    let block = sh_blocks(section).into_iter().next().expect("an sh block");
    mqttbridge_commands(&block)
}

/// `words` without the leading `mqttbridge`, each replaced by its entry in
/// `places`, or by its path in `dir` when it names a file there.
fn place(words: &[String], places: &BTreeMap<&str, String>, dir: &Path) -> Vec<String> {
    words[1..]
        .iter()
        .map(|word| match places.get(word.as_str()) {
            Some(placed) => placed.clone(),
            None if dir.join(word).is_file() => dir.join(word).display().to_string(),
            None => word.clone(),
        })
        .collect()
}

/// `text` with every `(from, to)` replaced; each `from` must occur.
fn edited(text: &str, edits: &[(&str, String)]) -> String {
    edits.iter().fold(text.to_string(), |text, (from, to)| {
        assert!(text.contains(from), "{from:?} is in the example file");
        text.replace(from, to)
    })
}

#[test]
fn every_readme_command_parses_as_written() {
    let mut parsed = 0;
    for block in sh_blocks(&readme()) {
        // The one command substitution stands for a process id.
        let block = block.replace("$(pidof -s mqttbridge)", "4242");
        for words in mqttbridge_commands(&block) {
            if let Err(e) = Cli::try_parse_from(&words) {
                panic!("`{}` does not parse: {e}", words.join(" "));
            }
            parsed += 1;
        }
    }
    assert!(parsed >= 18, "{parsed} README commands");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_use_it_recipe_carries_a_message() {
    let commands = commands_after("## Use it");
    let [cloud, edge] = &commands[..] else {
        panic!("\"Use it\" starts an s-proxy and an r-proxy: {commands:?}");
    };
    let broker = Mosquitto::start("").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::generate(dir.path(), &["127.0.0.1"]).unwrap();
    let (edge_port, cloud_port) = (free_port(), free_port());
    let path = |p: &Path| p.display().to_string();
    // The example config files with the certificates the README names.
    let cloud_toml = edited(
        include_str!("../config/cloud.toml"),
        &[
            ("\"[::]:50516\"", format!("\"127.0.0.1:{cloud_port}\"")),
            ("/etc/mqttbridge/cloud.pem", path(&certs.server_cert)),
            ("/etc/mqttbridge/cloud.key", path(&certs.server_key)),
            ("/etc/mqttbridge/edge-ca.pem", path(&certs.ca)),
        ],
    );
    let edge_toml = edited(
        include_str!("../config/edge.toml"),
        &[
            (
                "# upstream_ca = \"/etc/mqttbridge/cloud-ca.pem\"",
                format!("upstream_ca = {:?}", path(&certs.ca)),
            ),
            (
                "# upstream_cert = \"/etc/mqttbridge/edge.pem\"",
                format!("upstream_cert = {:?}", path(&certs.client_cert)),
            ),
            (
                "# upstream_key = \"/etc/mqttbridge/edge.key\"",
                format!("upstream_key = {:?}", path(&certs.client_key)),
            ),
        ],
    );
    std::fs::write(dir.path().join("cloud.toml"), cloud_toml).unwrap();
    std::fs::write(dir.path().join("edge.toml"), edge_toml).unwrap();
    let places = BTreeMap::from([
        ("127.0.0.1:1883", broker.addr().to_string()),
        ("0.0.0.0:1883", format!("127.0.0.1:{edge_port}")),
        (
            "https://cloud.example:50516",
            format!("https://127.0.0.1:{cloud_port}"),
        ),
    ]);
    let cloud = place(cloud, &places, dir.path());
    let _s_proxy = ModeProcess::start(&cloud.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let edge = place(edge, &places, dir.path());
    let _r_proxy = ModeProcess::start(&edge.iter().map(String::as_str).collect::<Vec<_>>()).await;

    assert_round_trip(
        &format!("127.0.0.1:{edge_port}"),
        "use-it",
        "sensors/1",
        "21.5",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quic_recipes_carry_a_reading_over_scion_and_udp() {
    let commands = commands_after("MQTT over QUIC, over SCION or UDP/IP:");
    let modes: Vec<&str> = commands.iter().map(|w| w[1].as_str()).collect();
    assert_eq!(
        modes,
        [
            "certs",
            "scion-quic",
            "scion-quic",
            "scion-udp",
            "sub",
            "pub"
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    // Every process attached to the network has a token of its own, as the
    // README says; the proxy and the relay share an AS, the client has one
    // of its own.
    let tokens = ["snap.token", "relay.token", "client.token"].map(|t| dir.path().join(t));
    let network = Pocketscion::start("minimal", &tokens, 2).await;
    let ases: Vec<&String> = network.endhost_apis.keys().collect();
    let (proxy_as, client_as) = (ases[0].clone(), ases[1].clone());
    let broker = Mosquitto::start("").await.unwrap();
    let (scion_port, quic_port) = (free_port(), free_port());
    let scion_proxy = format!("[{proxy_as},127.0.0.1]:{scion_port}");
    let places = BTreeMap::from([
        (
            "http://10.0.0.1:48000",
            network.endhost_apis[&proxy_as].to_string(),
        ),
        (
            "http://10.0.1.1:48000",
            network.endhost_apis[&client_as].to_string(),
        ),
        ("[1-ff00:0:110,10.0.0.2]:4433", scion_proxy.clone()),
        (
            "scion-quic://[1-ff00:0:110,10.0.0.2]:4433",
            format!("scion-quic://{scion_proxy}"),
        ),
        ("127.0.0.1:1883", broker.addr().to_string()),
        ("0.0.0.0:14567", format!("127.0.0.1:{quic_port}")),
        ("broker.example:14567", format!("127.0.0.1:{quic_port}")),
        (
            "quic://proxy.example:14567",
            format!("quic://localhost:{quic_port}"),
        ),
        (".", dir.path().display().to_string()),
    ]);
    let binary = env!("CARGO_BIN_EXE_mqttbridge");
    let mut processes = Vec::new();
    let mut subscriber = None;
    for words in &commands {
        let args = place(words, &places, dir.path());
        let what = args.join(" ");
        match args[0].as_str() {
            "certs" | "pub" => {
                let out = bounded(
                    &what,
                    tokio::process::Command::new(binary).args(&args).output(),
                )
                .await
                .unwrap();
                assert!(
                    out.status.success(),
                    "{what}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            "sub" => {
                let mut sub = tokio::process::Command::new(binary)
                    .args(&args)
                    .stdout(Stdio::piped())
                    .kill_on_drop(true)
                    .spawn()
                    .unwrap();
                let lines = tokio::io::BufReader::new(sub.stdout.take().unwrap()).lines();
                subscriber = Some((sub, lines));
            }
            _ => {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                processes.push(ModeProcess::start(&args).await);
            }
        }
    }
    // The reading is retained: the subscriber prints it whether it
    // subscribed before the publisher sent it or after.
    let (_sub, mut lines) = subscriber.expect("the sub example ran");
    let line = bounded("the subscriber prints the reading", lines.next_line())
        .await
        .unwrap();
    assert_eq!(line.as_deref(), Some("sensors/1 21.5"));

    // Without its token the client is told which flag is missing.
    let publish = place(&commands[5], &places, dir.path());
    let token_flag = publish
        .iter()
        .position(|w| w == "--snap-token-file")
        .unwrap();
    let mut untokened = publish.clone();
    untokened.drain(token_flag..token_flag + 2);
    let out = bounded(
        "pub without a token",
        tokio::process::Command::new(binary)
            .args(&untokened)
            .output(),
    )
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Error: cannot connect: the AS's SCION data plane (SNAP) needs a token and none \
         was given: set --snap-token-file (snap_token_file in a config file)"
    );
}
