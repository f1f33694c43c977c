//! mqttbridge modes as their own processes, so a test can kill -9, stop or
//! restart them, and read their admin endpoint to see that nothing leaked.
//! A process may run inside a network namespace the test made; sockets to
//! it are then opened from inside that namespace ([`Dialer::Netns`]).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::bounded;

/// Where sockets are opened: this process's network or a named namespace.
#[derive(Debug, Clone)]
pub enum Dialer {
    Host,
    Netns(String),
}

impl Dialer {
    /// A TCP connection to `addr` from this dialer's network.
    pub async fn tcp(&self, addr: &str) -> std::io::Result<TcpStream> {
        match self {
            Dialer::Host => TcpStream::connect(addr).await,
            Dialer::Netns(name) => {
                let (name, addr) = (name.clone(), addr.to_string());
                // setns changes the calling thread for good, so a thread of
                // its own; the socket stays in the namespace it was made in.
                let (tx, rx) = tokio::sync::oneshot::channel();
                std::thread::spawn(move || {
                    let _ = tx.send(connect_in_netns(&name, &addr));
                });
                let stream = rx.await.map_err(std::io::Error::other)??;
                TcpStream::from_std(stream)
            }
        }
    }
}

fn connect_in_netns(name: &str, addr: &str) -> std::io::Result<std::net::TcpStream> {
    use std::os::fd::AsRawFd;
    let ns = std::fs::File::open(format!("/var/run/netns/{name}"))?;
    // SAFETY: a valid namespace file descriptor and flag; only this thread
    // changes namespace.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let addr: std::net::SocketAddr = addr.parse().map_err(std::io::Error::other)?;
    let stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_nonblocking(true)?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A free TCP port on loopback (of this process's network), never handed
/// out before in this test run: processes in a test's network namespace
/// listen on ports the host does not see taken, so the host alone could
/// hand the same port out twice to one namespace.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    // Bounded: the ephemeral range holds thousands of ports, a run uses
    // hundreds.
    for _ in 0..10_000 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if GIVEN.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return port;
        }
    }
    panic!("no loopback port left that this run has not handed out");
}

/// What a leak would grow: live tokio tasks, open file descriptors, RSS.
#[derive(Debug, Clone, Copy)]
pub struct Footprint {
    pub tasks: u64,
    pub fds: u64,
    pub rss_kib: u64,
}

/// `mqttbridge <mode> ...` as a process with its admin endpoint; its log
/// (JSON lines) goes to a file the test can search.
pub struct ModeProcess {
    child: tokio::process::Child,
    command: Vec<String>,
    /// Variables set in its environment besides `RUST_LOG`.
    env: Vec<(String, String)>,
    /// The admin endpoint (`127.0.0.1:port` in the process's network).
    pub admin: String,
    dialer: Dialer,
    log: tempfile::NamedTempFile,
}

impl ModeProcess {
    /// Starts `mqttbridge ARGS --admin 127.0.0.1:PORT` on this host and
    /// waits until it is ready.
    pub async fn start(args: &[&str]) -> ModeProcess {
        Self::start_in(Dialer::Host, args).await
    }

    /// The same with `env` set in its environment.
    pub async fn start_with_env(env: &[(&str, &str)], args: &[&str]) -> ModeProcess {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::start_in_with(Dialer::Host, env, args).await
    }

    /// The same inside `dialer`'s network namespace.
    pub async fn start_in(dialer: Dialer, args: &[&str]) -> ModeProcess {
        Self::start_in_with(dialer, Vec::new(), args).await
    }

    async fn start_in_with(
        dialer: Dialer,
        env: Vec<(String, String)>,
        args: &[&str],
    ) -> ModeProcess {
        let admin = format!("127.0.0.1:{}", free_port());
        let mut command: Vec<String> = match &dialer {
            Dialer::Host => Vec::new(),
            Dialer::Netns(name) => ["ip", "netns", "exec", name.as_str()]
                .map(String::from)
                .to_vec(),
        };
        command.push(env!("CARGO_BIN_EXE_mqttbridge").to_string());
        command.extend(args.iter().map(|a| a.to_string()));
        command.extend(["--admin", &admin, "--log-format", "json"].map(String::from));
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = spawn(&command, &env, &log);
        let mut process = ModeProcess {
            child,
            command,
            env,
            admin,
            dialer,
            log,
        };
        process.wait_ready().await;
        process
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("process running")
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`).
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    /// kill -9, and reaps it.
    pub async fn kill9(&mut self) {
        self.child.start_kill().unwrap();
        bounded("killed process exits", self.child.wait())
            .await
            .unwrap();
    }

    /// Starts it again with the same arguments and admin address.
    pub async fn restart(&mut self) {
        self.child = spawn(&self.command, &self.env, &self.log);
        self.wait_ready().await;
    }

    /// Asserts the process is still running (no crash).
    pub fn assert_alive(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "{} exited",
            self.command.join(" ")
        );
    }

    async fn wait_ready(&mut self) {
        let what = format!("{} ready", self.command.join(" "));
        let (admin, dialer) = (self.admin.clone(), self.dialer.clone());
        let child = &mut self.child;
        let log = self.log.path().to_path_buf();
        bounded(&what, async {
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    let said = std::fs::read_to_string(&log).unwrap_or_default();
                    panic!("exited during start: {status}\n{said}");
                }
                if let Ok(stream) = dialer.tcp(&admin).await
                    && http_get(stream, "/readyz").await.0 == 200
                {
                    return;
                }
                // Retry interval while the process starts.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    }

    /// The value of `field` in the first log line whose message is
    /// `message`, waiting (bounded) for it.
    pub async fn log_field(&self, message: &str, field: &str) -> String {
        self.log_value(message, "fields", field).await
    }

    /// The value of `field` of the span the first log line whose message is
    /// `message` was written in, waiting (bounded) for it.
    pub async fn log_span_field(&self, message: &str, field: &str) -> String {
        self.log_value(message, "span", field).await
    }

    async fn log_value(&self, message: &str, section: &str, field: &str) -> String {
        let what = format!("log line {message:?} with {section}.{field}");
        bounded(&what, async {
            loop {
                let text = std::fs::read_to_string(self.log.path()).unwrap_or_default();
                let found = text.lines().find_map(|line| {
                    let entry: serde_json::Value = serde_json::from_str(line).ok()?;
                    let fields = entry.get("fields")?;
                    (fields.get("message")?.as_str()? == message).then(|| {
                        entry.get(section)?.get(field).map(|v| match v {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                    })?
                });
                if let Some(value) = found {
                    return value;
                }
                // Poll interval while the process starts.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    }

    /// Whether a line whose message is `message` is in the log now.
    pub fn logged(&self, message: &str) -> bool {
        let text = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        text.lines().any(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .is_ok_and(|entry| entry["fields"]["message"].as_str() == Some(message))
        })
    }

    /// `GET /readyz`: the status and the body.
    pub async fn readyz(&self) -> (u16, String) {
        let stream = self.dialer.tcp(&self.admin).await.expect("admin reachable");
        http_get(stream, "/readyz").await
    }

    /// Waits until `/readyz` answers `status`; returns the body.
    pub async fn readyz_becomes(&self, status: u16) -> String {
        let what = format!("{} /readyz {status}", self.command.join(" "));
        bounded(&what, async {
            loop {
                let (now, body) = self.readyz().await;
                if now == status {
                    return body;
                }
                // Poll interval while the probes run.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
    }

    /// The value of the first metric line starting with `prefix` (0 when
    /// there is none yet).
    pub async fn metric(&self, prefix: &str) -> f64 {
        let stream = self.dialer.tcp(&self.admin).await.expect("admin reachable");
        let (status, body) = http_get(stream, "/metrics").await;
        assert_eq!(status, 200, "GET /metrics");
        body.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .map_or(0.0, |v| v.parse().unwrap())
    }

    /// Tasks, file descriptors and RSS now.
    pub async fn footprint(&self) -> Footprint {
        Footprint {
            tasks: self.metric("mqttbridge_tasks_alive").await as u64,
            fds: self.metric("process_open_fds").await as u64,
            rss_kib: rss_kib(self.pid()),
        }
    }

    /// Waits until tasks and file descriptors are back to `baseline` and
    /// RSS is within `rss_slack_kib` of it; returns what it measured.
    pub async fn settles_to(&self, baseline: Footprint, rss_slack_kib: u64) -> Footprint {
        let what = format!("{} back to {baseline:?}", self.command.join(" "));
        let mut last = None;
        let settled = tokio::time::timeout(super::WAIT, async {
            loop {
                let now = self.footprint().await;
                last = Some(now);
                if now.tasks <= baseline.tasks
                    && now.fds <= baseline.fds
                    && now.rss_kib <= baseline.rss_kib + rss_slack_kib
                {
                    return now;
                }
                // Poll interval while sessions finish closing.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        settled.unwrap_or_else(|_| panic!("timed out: {what}; last {last:?}"))
    }
}

impl Drop for ModeProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn spawn(
    command: &[String],
    env: &[(String, String)],
    log: &tempfile::NamedTempFile,
) -> tokio::process::Child {
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(log.path())
        .unwrap();
    tokio::process::Command::new(&command[0])
        .args(&command[1..])
        // PROXY_LOG=debug (any RUST_LOG filter) shows more of the proxies.
        .env(
            "RUST_LOG",
            std::env::var("PROXY_LOG").unwrap_or_else(|_| "info".into()),
        )
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", command[0]))
}

/// Resident memory of a process, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A plain HTTP/1.1 GET over `stream`; the status code and the body.
pub async fn http_get(mut stream: TcpStream, path: &str) -> (u16, String) {
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    bounded("HTTP response", stream.read_to_string(&mut response))
        .await
        .unwrap();
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
