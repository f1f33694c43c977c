//! The example config files parse to exactly the defaults they document,
//! and a bad file is reported with its path, key and line by the binary.

use std::process::Command;

use mqttbridge::service::r_proxy::RProxyConfig;
use mqttbridge::service::s_proxy::SProxyConfig;
use mqttbridge::service::settings as config;

fn example(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name)
}

#[test]
fn edge_example_parses_to_the_defaults() {
    let file: RProxyConfig = config::load(&example("edge.toml")).expect("edge.toml parses");
    let default = RProxyConfig::default();
    assert_eq!(format!("{file:?}"), format!("{default:?}"));
}

#[test]
fn cloud_example_is_the_defaults_plus_mutual_tls() {
    let file: SProxyConfig = config::load(&example("cloud.toml")).expect("cloud.toml parses");
    let default = SProxyConfig::default();
    let without_tls = SProxyConfig {
        tls_cert: None,
        tls_key: None,
        client_ca: None,
        ..file.clone()
    };
    assert_eq!(format!("{without_tls:?}"), format!("{default:?}"));
    assert!(file.tls_cert.is_some() && file.tls_key.is_some() && file.client_ca.is_some());
    file.validate().expect("the example is not an open relay");
}

#[test]
fn bad_config_file_is_reported_with_file_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken-edge.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:0\"\n# comment\nmax_connections = -5\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
        .args(["r-proxy", "--config"])
        .arg(&path)
        .output()
        .expect("binary runs");
    assert!(!output.status.success(), "a bad config must not start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("broken-edge.toml"),
        "names the file: {stderr}"
    );
    assert!(
        stderr.contains("max_connections"),
        "names the key: {stderr}"
    );
    assert!(stderr.contains("line 3"), "names the line: {stderr}");
}

#[test]
fn missing_config_file_is_reported() {
    let output = Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
        .args(["s-proxy", "--config", "/nonexistent/cloud.toml"])
        .output()
        .expect("binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/cloud.toml"), "{stderr}");
}

#[test]
fn flags_override_the_file() {
    use clap::Parser;
    use mqttbridge::cli::{Cli, Command};
    let cloud = example("cloud.toml");
    let cli = Cli::try_parse_from([
        "mqttbridge",
        "s-proxy",
        "--config",
        cloud.to_str().unwrap(),
        "--listen",
        "127.0.0.1:6000",
        "--max-sessions",
        "7",
        "--drain-timeout-ms",
        "250",
        "--insecure",
    ])
    .unwrap();
    let Command::SProxy(args) = cli.command else {
        panic!("not s-proxy");
    };
    let config = args.resolve().unwrap();
    assert_eq!(config.listen.as_str(), "127.0.0.1:6000");
    assert_eq!(config.max_sessions.get(), 7);
    assert_eq!(config.drain_timeout_ms.duration().as_millis(), 250);
    assert!(config.insecure);
    assert_eq!(config.broker.to_string(), "127.0.0.1:1883", "from the file");

    // A repeated flag replaces the file's whole list.
    let edge = example("edge.toml");
    let cli = Cli::try_parse_from([
        "mqttbridge",
        "r-proxy",
        "--config",
        edge.to_str().unwrap(),
        "--upstream",
        "http://a.example:1",
        "--upstream",
        "https://b.example:2",
        "--listeners",
        "quic://0.0.0.0:14567",
    ])
    .unwrap();
    let Command::RProxy(args) = cli.command else {
        panic!("not r-proxy");
    };
    let config = args.resolve().unwrap();
    let upstream: Vec<&str> = config.upstream.iter().map(|u| u.as_str()).collect();
    assert_eq!(upstream, ["http://a.example:1", "https://b.example:2"]);
    assert_eq!(config.listeners[0].to_string(), "quic://0.0.0.0:14567");

    // A bad value is refused, naming the flag.
    let err = Cli::try_parse_from(["mqttbridge", "s-proxy", "--max-sessions", "0"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("--max-sessions"), "{err}");
}

#[test]
fn scion_quic_example_parses() {
    let file: mqttbridge::service::scion_quic::ScionQuicConfig =
        config::load(&example("scion-quic.toml")).expect("scion-quic.toml parses");
    let default = mqttbridge::service::scion_quic::ScionQuicConfig::default();
    assert_eq!(file.transport, default.transport);
    assert_eq!(file.broker, default.broker);
    assert_eq!(file.max_connections, default.max_connections);
    assert_eq!(file.idle_timeout_ms, default.idle_timeout_ms);
    assert_eq!(file.stream_window, default.stream_window);
    assert!(file.cert.is_some() && file.key.is_some());
}

#[test]
fn scion_udp_example_parses_to_the_defaults() {
    let file: mqttbridge::service::scion_udp::ScionUdpConfig =
        config::load(&example("scion-udp.toml")).expect("scion-udp.toml parses");
    let default = mqttbridge::service::scion_udp::ScionUdpConfig::default();
    assert_eq!(file.broker, default.broker);
    assert_eq!(file.max_peers, default.max_peers);
    assert_eq!(file.idle_timeout_ms, default.idle_timeout_ms);
    assert!(file.endhost_api.is_some());
}

#[test]
fn check_config_accepts_every_example_and_names_what_is_missing() {
    let files = tempfile::tempdir().unwrap();
    for (mode, file) in [
        ("r-proxy", "edge.toml"),
        ("s-proxy", "cloud.toml"),
        ("scion-quic", "scion-quic.toml"),
        ("scion-udp", "scion-udp.toml"),
    ] {
        let body = std::fs::read_to_string(example(file)).unwrap();
        let path = files.path().join(file);
        std::fs::write(&path, with_files_in(&body, files.path())).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
            .args(["check-config", mode])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{mode} {file}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).ends_with(": ok\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quic.toml");
    std::fs::write(&path, "transport = \"quic\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
        .args(["check-config", "scion-quic"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("quic.toml") && stderr.contains("`cert`"),
        "{stderr}"
    );
    // An s-proxy that would be an open relay fails the check, not just the start.
    let path = dir.path().join("open.toml");
    std::fs::write(&path, "listen = \"0.0.0.0:50516\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
        .args(["check-config", "s-proxy"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("without authentication"), "{stderr}");
}

/// `body` with the files it names under /etc/mqttbridge/ made in `dir`
/// (certificates from one CA: `*ca.pem` the CA, `*client*` a client
/// certificate and key, other `.pem`/`.key` the server's; anything else a
/// token), so that check-config, which reads them all, can pass.
fn with_files_in(body: &str, dir: &std::path::Path) -> String {
    let certs = mqttbridge::tools::certs::generate(&dir.join("generated"), &["localhost"]).unwrap();
    for named in body.split("\"/etc/mqttbridge/").skip(1) {
        let name = named.split('"').next().unwrap();
        let from = if name.ends_with("ca.pem") {
            &certs.ca
        } else if name.contains("client") && name.ends_with(".pem") {
            &certs.client_cert
        } else if name.contains("client") && name.ends_with(".key") {
            &certs.client_key
        } else if name.ends_with(".pem") {
            &certs.server_cert
        } else if name.ends_with(".key") {
            &certs.server_key
        } else {
            std::fs::write(dir.join(name), "a-token\n").unwrap();
            continue;
        };
        std::fs::copy(from, dir.join(name)).unwrap();
    }
    body.replace("/etc/mqttbridge/", &format!("{}/", dir.display()))
}

#[test]
fn check_config_opens_every_file_and_names_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let body = std::fs::read_to_string(example("cloud.toml")).unwrap();
    let good = with_files_in(&body, dir.path());
    let check = |text: &str| {
        let path = dir.path().join("check.toml");
        std::fs::write(&path, text).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
            .args(["check-config", "s-proxy"])
            .arg(&path)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert!(check(&good).0, "{}", check(&good).1);
    // A certificate that is not there: its path and the cause, once.
    let missing = good.replace("cloud.pem", "gone.pem");
    let (ok, stderr) = check(&missing);
    assert!(!ok);
    assert!(stderr.contains("gone.pem"), "{stderr}");
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
    // A key that is not the certificate's.
    let generated = dir.path().join("generated");
    let mismatched = good.replace(
        &format!("{}/cloud.key", dir.path().display()),
        &generated.join("client.key").display().to_string(),
    );
    let (ok, stderr) = check(&mismatched);
    assert!(!ok, "a key of another certificate passes");
    assert!(stderr.to_lowercase().contains("key"), "{stderr}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    // s-proxy logs one line as soon as it serves.
    let mut child = Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
        .args(["--log-format", "json", "s-proxy", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stderr), &mut first);
        let _ = tx.send(first);
    });
    let first = rx.recv_timeout(std::time::Duration::from_secs(10));
    let _ = child.kill();
    let _ = child.wait();
    let first = first.expect("a log line within 10 s");
    assert!(
        first.starts_with('{') && first.trim_end().ends_with('}'),
        "{first}"
    );
    assert!(first.contains("\"message\":\"s-proxy serving\""), "{first}");
}

#[test]
fn readme_config_blocks_pass_check_config() {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for block in readme.split("```toml\n").skip(1) {
        let body = block.split("```").next().unwrap();
        // Each block starts with "# <mode>: <path>".
        let mode = body
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# "))
            .and_then(|l| l.split(':').next())
            .unwrap_or_else(|| panic!("README toml block without a mode line:\n{body}"));
        let path = dir.path().join(format!("{checked}.toml"));
        std::fs::write(&path, with_files_in(body, dir.path())).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
            .args(["check-config", mode])
            .arg(&path)
            .output()
            .expect("binary runs");
        assert!(
            output.status.success(),
            "README block for {mode} fails check-config: {}\n{body}",
            String::from_utf8_lossy(&output.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 2, "the README's recipes were found");
}

#[test]
fn topology_example_passes_check_config() {
    let output = Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
        .args(["check-config", "topology"])
        .arg(example("topology-three-as.toml"))
        .output()
        .expect("binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn process_flags_show_only_where_they_apply() {
    let help = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    for mode in ["r-proxy", "s-proxy", "scion-quic", "scion-udp"] {
        let text = help(&[mode, "--help"]);
        for flag in ["--admin", "--log-format", "--worker-threads"] {
            assert!(text.contains(flag), "{mode} --help lacks {flag}");
        }
    }
    for tool in ["pub", "sub", "certs", "check-config"] {
        let text = help(&[tool, "--help"]);
        assert!(!text.contains("--admin"), "{tool} --help offers --admin");
        assert!(
            !text.contains("--worker-threads"),
            "{tool} --help offers --worker-threads"
        );
    }
    let refused = Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
        .args(["--admin", "127.0.0.1:9", "pub", "-t", "t", "-m", "m"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--admin is for the proxy modes"));
}
