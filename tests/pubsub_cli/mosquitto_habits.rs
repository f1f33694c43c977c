//! `pub` and `sub` with the flags a mosquitto_pub/mosquitto_sub user types,
//! each exercised once against a real mosquitto, with mosquitto's exit codes.

use std::process::{Output, Stdio};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};

use mqttbridge::tools::certs;
use mqttbridge::tools::mosquitto::Mosquitto;

use crate::common::{CutRelay, bounded, free_port};
use crate::pubsub_cli::{run, strings};

pub(crate) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn host_port(broker: &Mosquitto) -> Vec<String> {
    strings(&["-h", "127.0.0.1", "-p", &broker.addr().port().to_string()])
}

pub(crate) async fn cli(args: &[&str], broker: &Mosquitto) -> Output {
    let mut all = strings(&args[..1]);
    all.extend(host_port(broker));
    all.extend(strings(&args[1..]));
    run(all).await
}

/// A `sub` running in the background; `-d` output tells when it has
/// subscribed.
pub(crate) struct Background {
    pub(crate) child: Child,
    stderr: BufReader<ChildStderr>,
}

impl Background {
    pub(crate) async fn start(args: Vec<String>) -> Background {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
            .args(&args)
            .arg("-d")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("binary runs");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut background = Background { child, stderr };
        background.wait_for("suback").await;
        background
    }

    /// Reads `-d` lines until one names `packet`.
    pub(crate) async fn wait_for(&mut self, packet: &str) {
        let quoted = format!("\"{packet}\"");
        bounded(packet, async {
            let mut line = String::new();
            loop {
                line.clear();
                let n = self.stderr.read_line(&mut line).await.unwrap();
                assert!(n > 0, "sub ended before {packet}");
                if line.contains("received") && line.contains(&quoted) {
                    return;
                }
            }
        })
        .await;
    }

    pub(crate) async fn finish(mut self) -> (Option<i32>, String) {
        let status = bounded("sub exits", self.child.wait()).await.unwrap();
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .await
            .unwrap();
        (status.code(), out)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_exit_codes_as_mosquitto_gives_them() {
    let broker = Mosquitto::start_with_users(&[("alice", "pw")], "", "")
        .await
        .unwrap();
    ok(&cli(
        &[
            "pub", "-u", "alice", "-P", "pw", "-t", "t", "-m", "x", "-q", "1",
        ],
        &broker,
    )
    .await);
    // A refused CONNACK is the exit code: 135 (MQTT 5), 5 (3.1.1).
    for (version, code) in [("5", 135), ("311", 5)] {
        let out = cli(
            &[
                "pub", "-V", version, "-u", "alice", "-P", "wrong", "-t", "t", "-m", "x",
            ],
            &broker,
        )
        .await;
        assert_eq!(out.status.code(), Some(code), "-V {version}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("not authorized"));
    }
    // User and password in the URL, topic as the URL's path.
    let url = format!("mqtt://alice:pw@{}/from/url", broker.addr());
    ok(&run(strings(&["pub", "-L", &url, "-m", "x"])).await);

    let out = cli(
        &["pub", "-u", "alice", "-P", "pw", "-t", "t", "-r"],
        &broker,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give the message"));
    let out = cli(
        &["pub", "-u", "alice", "-P", "pw", "-t", "a/#", "-m", "x"],
        &broker,
    )
    .await;
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("invalid topic 'a/#': wildcards are not allowed in a PUBLISH topic")
    );
    let out = cli(
        &["sub", "-u", "alice", "-P", "pw", "-t", "quiet", "-W", "1"],
        &broker,
    )
    .await;
    assert_eq!(out.status.code(), Some(27), "-W ran out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_sources_and_retained_messages() {
    let broker = Mosquitto::start("").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payload.bin");
    std::fs::write(&file, b"from a file").unwrap();
    ok(&cli(
        &[
            "pub",
            "-t",
            "r/file",
            "-f",
            file.to_str().unwrap(),
            "-r",
            "-q",
            "1",
        ],
        &broker,
    )
    .await);
    ok(&cli(
        &[
            "pub", "-t", "r/msg", "-m", "kept", "-r", "-I", "pfx-", "-k", "30",
        ],
        &broker,
    )
    .await);
    let mut stdin = Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
        .args(strings(&["pub", "-t", "r/stdin", "-s", "-r"]))
        .args(host_port(&broker))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = stdin.stdin.take().unwrap();
    input.write_all(b"all of\nstdin").await.unwrap();
    drop(input);
    assert!(bounded("pub -s", stdin.wait()).await.unwrap().success());

    let out = ok(&cli(
        &[
            "sub", "-t", "r/#", "-C", "3", "-W", "10", "-F", "%t=%p;", "-N",
        ],
        &broker,
    )
    .await);
    let mut got: Vec<&str> = out.split_terminator(';').collect();
    got.sort();
    assert_eq!(
        got,
        ["r/file=from a file", "r/msg=kept", "r/stdin=all of\nstdin"]
    );

    // -n with -r deletes a retained message.
    ok(&cli(&["pub", "-t", "r/msg", "-n", "-r"], &broker).await);
    // --remove-retained clears the rest; afterwards nothing is retained.
    let out = ok(&cli(
        &[
            "sub",
            "-t",
            "r/#",
            "--retained-only",
            "--remove-retained",
            "-C",
            "2",
            "-W",
            "10",
            "-F",
            "%t;",
            "-N",
        ],
        &broker,
    )
    .await);
    let mut cleared: Vec<&str> = out.split_terminator(';').collect();
    cleared.sort();
    assert_eq!(cleared, ["r/file", "r/stdin"]);
    let out = cli(&["sub", "-t", "r/#", "-W", "1"], &broker).await;
    assert_eq!(out.status.code(), Some(27), "nothing retained is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_repeats_properties_and_formats() {
    let broker = Mosquitto::start("").await.unwrap();
    let mut sub = Background::start({
        let mut args = strings(&["sub", "-t", "live/#", "-C", "6", "-R", "-q", "1"]);
        args.extend(host_port(&broker));
        args.extend(strings(&["-F", "%t|%p|%q|%C|%P"]));
        args
    })
    .await;
    let mut lines = Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
        .args(strings(&["pub", "-t", "live/lines", "-l", "-q", "1"]))
        .args(host_port(&broker))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = lines.stdin.take().unwrap();
    input.write_all(b"one\ntwo\n").await.unwrap();
    drop(input);
    assert!(bounded("pub -l", lines.wait()).await.unwrap().success());
    ok(&cli(
        &[
            "pub",
            "-t",
            "live/again",
            "-m",
            "x",
            "--repeat",
            "3",
            "--repeat-delay",
            "0.01",
        ],
        &broker,
    )
    .await);
    ok(&cli(
        &[
            "pub",
            "-t",
            "live/props",
            "-m",
            "{}",
            "-q",
            "1",
            "-D",
            "publish",
            "content-type",
            "application/json",
            "-D",
            "publish",
            "user-property",
            "k",
            "v",
        ],
        &broker,
    )
    .await);
    sub.wait_for("publish").await;
    let (code, out) = sub.finish().await;
    assert_eq!(code, Some(0));
    assert_eq!(
        out,
        "live/lines|one|1||\nlive/lines|two|1||\nlive/again|x|0||\nlive/again|x|0||\nlive/again|x|0||\nlive/props|{}|1|application/json|k:v\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_sessions_wills_and_reconnection() {
    let broker = Mosquitto::start("").await.unwrap();
    // -c keeps the session: what is published while away arrives later.
    ok(&cli(
        &[
            "sub", "-c", "-i", "keeper", "-q", "1", "-t", "k", "-W", "1", "-C", "0",
        ],
        &broker,
    )
    .await);
    ok(&cli(&["pub", "-t", "k", "-m", "while away", "-q", "1"], &broker).await);
    let out = ok(&cli(
        &[
            "sub", "-c", "-i", "keeper", "-q", "1", "-t", "k", "-C", "1", "-W", "10",
        ],
        &broker,
    )
    .await);
    assert_eq!(out, "while away\n");
    let out = cli(&["sub", "-c", "-t", "k"], &broker).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a client id"));

    // The Will: published when the sub is killed.
    let wills = Background::start({
        let mut args = strings(&["sub", "-t", "wills/#", "-C", "1", "-v"]);
        args.extend(host_port(&broker));
        args
    })
    .await;
    let mut doomed = Background::start({
        let mut args = strings(&["sub", "-t", "nothing", "--will-topic", "wills/doomed"]);
        args.extend(strings(&["--will-payload", "gone", "--will-qos", "1"]));
        args.extend(host_port(&broker));
        args
    })
    .await;
    doomed.child.kill().await.unwrap();
    let (code, out) = wills.finish().await;
    assert_eq!((code, out.as_str()), (Some(0), "wills/doomed gone\n"));

    // sub reconnects and subscribes again when the link drops.
    let relay = CutRelay::start(broker.addr()).await;
    let mut sub = Background::start(strings(&[
        "sub",
        "-h",
        "127.0.0.1",
        "-p",
        &relay.addr.port().to_string(),
        "-t",
        "back",
        "-C",
        "2",
        "-q",
        "1",
    ]))
    .await;
    ok(&cli(&["pub", "-t", "back", "-m", "before", "-q", "1"], &broker).await);
    sub.wait_for("publish").await;
    relay.cut();
    sub.wait_for("suback").await;
    ok(&cli(&["pub", "-t", "back", "-m", "after", "-q", "1"], &broker).await);
    let (code, out) = sub.finish().await;
    assert_eq!((code, out.as_str()), (Some(0), "before\nafter\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_flags_choose_mqtts_and_check_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::generate(dir.path(), &["localhost"]).unwrap();
    let port = free_port();
    let extra = format!(
        "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
        certs.ca.display(),
        certs.server_cert.display(),
        certs.server_key.display(),
    );
    let _broker = Mosquitto::start(&extra).await.unwrap();
    let capath = dir.path().join("cas");
    std::fs::create_dir(&capath).unwrap();
    std::fs::copy(&certs.ca, capath.join("ca.pem")).unwrap();
    let port = port.to_string();
    let (cert, key) = (
        certs.client_cert.to_str().unwrap(),
        certs.client_key.to_str().unwrap(),
    );
    let base = [
        "pub",
        "-h",
        "localhost",
        "-p",
        &port,
        "-t",
        "tls",
        "-m",
        "x",
    ];
    for trust in [
        vec!["--cafile", certs.ca.to_str().unwrap()],
        vec!["--capath", capath.to_str().unwrap()],
        vec!["--insecure"],
    ] {
        let mut args = strings(&base);
        args.extend(strings(&trust));
        args.extend(strings(&["--cert", cert, "--key", key]));
        ok(&run(args).await);
    }
    // Without a client certificate the broker refuses.
    let mut args = strings(&base);
    args.extend(strings(&["--cafile", certs.ca.to_str().unwrap()]));
    assert!(!run(args).await.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_examples_run_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("### `pub` and `sub`")
        .nth(1)
        .expect("README has a pub and sub section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a sh block");
    let broker = Mosquitto::start_with_users(&[("alice", "secret")], "", "")
        .await
        .unwrap();
    let port = broker.addr().port();
    let binary = env!("CARGO_BIN_EXE_mqttbridge");
    let expected = ["", "sensors/1 21.5 (QoS 1, retained 1)\n", "", ""];
    let commands: Vec<&str> = block
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .collect();
    assert_eq!(
        commands.len(),
        expected.len(),
        "an example without an expected output here"
    );
    for (command, expected) in commands.iter().zip(expected) {
        let real = command
            .replacen("mqttbridge ", &format!("{binary} "), 1)
            .replace("localhost -p 1883", &format!("127.0.0.1 -p {port}"))
            .replace("localhost:1883", &format!("127.0.0.1:{port}"));
        assert_ne!(&real, command, "the example points at the test's broker");
        let out = bounded(command, Command::new("sh").arg("-c").arg(&real).output())
            .await
            .unwrap();
        assert_eq!(ok(&out), expected, "{command}");
    }
    let out = cli(
        &[
            "sub",
            "-u",
            "alice",
            "-P",
            "secret",
            "-t",
            "sensors/#",
            "-W",
            "1",
        ],
        &broker,
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(27),
        "the retained reading was deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_flags_session_expiry_will_properties_and_subscribe_options() {
    let broker = Mosquitto::start("").await.unwrap();
    // Subscription identifier and no-local: our own publish is not printed.
    let sub = Background::start({
        let mut args = strings(&[
            "sub",
            "-t",
            "m5/#",
            "-C",
            "1",
            "-F",
            "%S %t %p",
            "--no-local",
        ]);
        args.extend(strings(&[
            "-x",
            "60",
            "-i",
            "m5-sub",
            "-D",
            "connect",
            "user-property",
            "a",
            "b",
        ]));
        args.extend(strings(&[
            "-D",
            "subscribe",
            "subscription-identifier",
            "5",
        ]));
        args.extend(host_port(&broker));
        args
    })
    .await;
    ok(&cli(&["pub", "-t", "m5/x", "-m", "hi", "-q", "1"], &broker).await);
    let (code, out) = sub.finish().await;
    assert_eq!((code, out.as_str()), (Some(0), "5 m5/x hi\n"));

    // A retained Will with properties.
    let mut doomed = Background::start({
        let mut args = strings(&[
            "sub",
            "-t",
            "nothing",
            "--will-topic",
            "m5/will",
            "--will-payload",
            "gone",
        ]);
        args.extend(strings(&[
            "--will-retain",
            "-D",
            "will",
            "content-type",
            "text/plain",
        ]));
        args.extend(strings(&["-D", "will", "will-delay-interval", "0"]));
        args.extend(host_port(&broker));
        args
    })
    .await;
    doomed.child.kill().await.unwrap();
    let _ = doomed.child.wait().await;
    let out = ok(&cli(
        &[
            "sub", "-t", "m5/will", "-C", "1", "-W", "10", "-F", "%r %C %p",
        ],
        &broker,
    )
    .await);
    assert_eq!(out, "1 text/plain gone\n");

    // Retain handling 2: the retained Will is not sent at subscribe.
    let out = cli(
        &["sub", "-t", "m5/will", "--retain-handling", "2", "-W", "1"],
        &broker,
    )
    .await;
    assert_eq!(out.status.code(), Some(27));
    // Retain as published keeps the flag on a live retained message.
    let keep = Background::start({
        let mut args = strings(&[
            "sub",
            "-t",
            "m5/live",
            "-C",
            "1",
            "-F",
            "%r",
            "--retain-as-published",
        ]);
        args.extend(host_port(&broker));
        args
    })
    .await;
    ok(&cli(&["pub", "-t", "m5/live", "-m", "x", "-r"], &broker).await);
    let (_, out) = keep.finish().await;
    assert_eq!(out, "1\n");

    // TLS flags with a plain URL are a mistake, not silently ignored.
    let out = cli(
        &["pub", "-t", "x", "-m", "x", "--tls-use-os-certs"],
        &broker,
    )
    .await;
    assert!(!out.status.success());
    let out = run(strings(&[
        "pub",
        "-L",
        &format!("mqtt://{}", broker.addr()),
        "--cafile",
        "ca.pem",
        "-t",
        "x",
        "-m",
        "x",
    ]))
    .await;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("need a TLS URL"),
        "{out:?}"
    );
}

/// `sub ... | head -1`: once whoever reads its output is gone, `sub` ends
/// quietly with 0, as when `-C` messages came (mosquitto_sub dies of
/// SIGPIPE; an error message would be noise in every such pipeline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_early_ends_sub_quietly() {
    let broker = Mosquitto::start("").await.unwrap();
    let mut args = strings(&["sub"]);
    args.extend(host_port(&broker));
    args.extend(strings(&["-t", "pipe/t"]));
    let mut sub = Background::start(args).await;
    // The reading end closes, as when `head` has had its line.
    drop(sub.child.stdout.take());
    let published = cli(&["pub", "-t", "pipe/t", "-m", "one"], &broker).await;
    assert!(published.status.success(), "{published:?}");
    let status = bounded("sub exits", sub.child.wait()).await.unwrap();
    let mut rest = String::new();
    bounded("sub's stderr", sub.stderr.read_to_string(&mut rest))
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {rest}");
    assert!(
        !rest.contains("Broken pipe") && !rest.contains("Error"),
        "{rest}"
    );
}
