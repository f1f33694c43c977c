//! mosquitto_sub's session and output flags against a real mosquitto:
//! `-E` (exit once subscribed), `-U` (unsubscribe a kept subscription),
//! `-T` (hide topics), `-F` widths and maximums, `--pretty`, and the
//! UNSUBSCRIBE and DISCONNECT properties of `-D`.

use mqttbridge::client::{Client, ClientOptions};
use mqttbridge::tools::mosquitto::Mosquitto;

use super::mosquitto_habits::{Background, cli, host_port, ok};
use crate::common::bounded;
use crate::pubsub_cli::strings;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_when_subscribed_then_unsubscribe_a_kept_subscription() {
    let broker = Mosquitto::start("").await.unwrap();
    let kept = ["-c", "-i", "keeper-e", "-x", "60", "-q", "1"];
    // -E: the session and both subscriptions exist once it exits.
    let mut args = vec!["sub"];
    args.extend(kept);
    args.extend(["-t", "s/a", "-t", "s/b", "-E"]);
    ok(&bounded("sub -E", cli(&args, &broker)).await);
    // -U drops one of them (with an UNSUBSCRIBE user property).
    let mut args = vec!["sub"];
    args.extend(kept);
    args.extend([
        "-U",
        "s/a",
        "-E",
        "-D",
        "unsubscribe",
        "user-property",
        "k",
        "v",
    ]);
    ok(&cli(&args, &broker).await);
    for topic in ["s/a", "s/b"] {
        ok(&cli(&["pub", "-t", topic, "-m", topic, "-q", "1"], &broker).await);
    }
    // Only s/b's message was queued for the session; s/a's came first and
    // would be printed first had the subscription stayed.
    let mut args = vec!["sub"];
    args.extend(kept);
    args.extend(["-t", "s/c", "-C", "1", "-W", "10", "-v"]);
    assert_eq!(ok(&cli(&args, &broker).await), "s/b s/b\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_topics_are_not_printed_and_fields_are_padded() {
    let broker = Mosquitto::start("").await.unwrap();
    let sub = Background::start({
        let mut args = strings(&["sub", "-t", "t/#", "-T", "t/hidden/#", "-C", "2", "-q", "1"]);
        args.extend(host_port(&broker));
        args.extend(strings(&["-F", "[%-9t|%5l|%03q|%.4p|%06x]"]));
        args
    })
    .await;
    for (topic, payload) in [
        ("t/hidden/x", "secret"),
        ("t/shown", "payload"),
        ("t/s", "ab"),
    ] {
        ok(&cli(&["pub", "-t", topic, "-m", payload, "-q", "1"], &broker).await);
    }
    let (code, out) = sub.finish().await;
    assert_eq!(code, Some(0));
    // %q takes no width; %.4p is not cut (a maximum is for text fields).
    assert_eq!(
        out,
        "[t/shown  |    7|1|payload|7061796c6f6164]\n[t/s      |    2|1|ab|006162]\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pretty_json_and_broken_formats() {
    let broker = Mosquitto::start("").await.unwrap();
    ok(&cli(&["pub", "-t", "j", "-m", "{\"t\":21}", "-r"], &broker).await);
    let out = ok(&cli(
        &[
            "sub", "-t", "j", "-C", "1", "-W", "10", "-F", "%J", "--pretty",
        ],
        &broker,
    )
    .await);
    assert!(out.lines().count() > 5, "indented over lines: {out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (json["topic"].as_str(), json["payload"]["t"].as_i64()),
        (Some("j"), Some(21))
    );

    let out = cli(&["sub", "-t", "j", "-F", "%10"], &broker).await;
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("incomplete % sequence"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_properties_end_a_kept_session() {
    let broker = Mosquitto::start("").await.unwrap();
    let url = format!("mqtt://{}", broker.addr());
    let session_present = |id: &'static str| {
        let url = url.clone();
        async move {
            let mut options = ClientOptions::new(&url, id);
            options.clean_start = false;
            options.session_expiry = std::time::Duration::from_secs(60);
            let (client, _messages) = Client::connect(options).await.unwrap();
            let present = client.connected().session_present;
            client.disconnect().await.unwrap();
            present
        }
    };
    // Left with the expiry it opened with, the session stays...
    ok(&cli(
        &["sub", "-c", "-i", "stays", "-x", "60", "-t", "d", "-E"],
        &broker,
    )
    .await);
    assert!(session_present("stays").await);
    // ...and a DISCONNECT with session-expiry-interval 0 ends it.
    ok(&cli(
        &[
            "sub",
            "-c",
            "-i",
            "ends",
            "-x",
            "60",
            "-t",
            "d",
            "-E",
            "-D",
            "disconnect",
            "session-expiry-interval",
            "0",
            "-D",
            "disconnect",
            "user-property",
            "why",
            "done",
        ],
        &broker,
    )
    .await);
    assert!(!session_present("ends").await);
    // A session opened with an expiry of 0 cannot get one when leaving.
    let out = cli(
        &[
            "pub",
            "-t",
            "d",
            "-m",
            "x",
            "-D",
            "disconnect",
            "session-expiry-interval",
            "5",
        ],
        &broker,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot be raised at DISCONNECT"),
        "{stderr}"
    );
}
