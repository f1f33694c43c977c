//! Runs a real mosquitto broker on an ephemeral loopback port, for the demo
//! and the tests. A missing `mosquitto` binary is an error, never a skip.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long mosquitto may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A mosquitto process; killed when dropped.
pub struct Mosquitto {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

/// A directory removed on drop (mosquitto's config file lives there).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Mosquitto {
    /// Starts mosquitto listening on 127.0.0.1 at a free port, with
    /// anonymous access and `extra` appended to its configuration.
    pub async fn start(extra: &str) -> anyhow::Result<Self> {
        Self::launch(&format!("allow_anonymous true\n{extra}"), &[], "").await
    }

    /// Starts mosquitto that only lets in `users` (name, password), with
    /// `acl` as its ACL file (empty: every user may do everything) and
    /// `extra` appended to its configuration.
    pub async fn start_with_users(
        users: &[(&str, &str)],
        acl: &str,
        extra: &str,
    ) -> anyhow::Result<Self> {
        Self::launch(
            &format!("allow_anonymous false\n{extra}"),
            users,
            if acl.is_empty() {
                "pattern readwrite #\n"
            } else {
                acl
            },
        )
        .await
    }

    async fn launch(settings: &str, users: &[(&str, &str)], acl: &str) -> anyhow::Result<Self> {
        let binary = find_mosquitto()?;
        // Port 0 cannot be given to mosquitto, so take a free one from the
        // kernel; retry if another process grabs it first.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let dir = std::env::temp_dir().join(format!(
                "mqttbridge-mosquitto-{}-{:x}",
                std::process::id(),
                rand::random::<u64>()
            ));
            std::fs::create_dir_all(&dir)?;
            let dir = TempDir(dir);
            let conf = dir.0.join("mosquitto.conf");
            let mut config = format!(
                "listener {port} 127.0.0.1\npersistence false\nset_tcp_nodelay true\n{settings}\n"
            );
            if !users.is_empty() {
                config += &write_users(&dir.0, &binary, users, acl)?;
            }
            std::fs::write(&conf, config)?;
            let child = Command::new(&binary)
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", binary.display()))?;
            let mut broker = Mosquitto {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                dir,
            };
            if broker.wait_ready().await? {
                return Ok(broker);
            }
        }
        anyhow::bail!("mosquitto did not start on a free port after 5 tries")
    }

    /// Where the broker listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The broker's process id (for measuring its memory).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the broker now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the broker and starts it again on the same port and config.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let conf = self.dir.0.join("mosquitto.conf");
        self.child = Command::new(find_mosquitto()?)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        anyhow::ensure!(
            self.wait_ready().await?,
            "mosquitto did not restart on port {}",
            self.addr.port()
        );
        Ok(())
    }

    /// True once a TCP connect succeeds; false if the process exited (port
    /// taken). Bounded by `READY_TIMEOUT`.
    async fn wait_ready(&mut self) -> anyhow::Result<bool> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                tracing::debug!(%status, "mosquitto exited during start");
                return Ok(false);
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(true);
            }
            if Instant::now() > deadline {
                anyhow::bail!("mosquitto did not accept connections within {READY_TIMEOUT:?}");
            }
            // Retry interval while the process starts.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Writes the password file (with mosquitto's own `mosquitto_passwd`) and
/// the ACL file into `dir`; returns the configuration lines naming them.
fn write_users(
    dir: &Path,
    mosquitto: &Path,
    users: &[(&str, &str)],
    acl: &str,
) -> anyhow::Result<String> {
    let passwords = dir.join("passwords");
    let tool = [
        "/usr/bin/mosquitto_passwd",
        "/usr/local/bin/mosquitto_passwd",
    ]
    .iter()
    .map(PathBuf::from)
    .chain(mosquitto.parent().map(|d| d.join("mosquitto_passwd")))
    .find(|p| p.is_file())
    .ok_or_else(|| {
        anyhow::anyhow!("mosquitto_passwd not found: it comes with the mosquitto package")
    })?;
    std::fs::write(&passwords, "")?;
    for (user, password) in users {
        let status = Command::new(&tool)
            .arg("-b")
            .arg(&passwords)
            .args([user, password])
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "mosquitto_passwd failed for {user}");
    }
    let acl_file = dir.join("acl");
    std::fs::write(&acl_file, acl)?;
    Ok(format!(
        "password_file {}\nacl_file {}\n",
        passwords.display(),
        acl_file.display()
    ))
}

fn find_mosquitto() -> anyhow::Result<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")]);
    for dir in candidates {
        let path = dir.join("mosquitto");
        if path.is_file() {
            return Ok(path);
        }
    }
    anyhow::bail!(
        "mosquitto not found in PATH or /usr/sbin: install it (Debian: apt-get install mosquitto)"
    )
}
