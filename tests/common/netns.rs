//! Network namespaces a test makes: its own network joined to this host
//! by a veth pair, for cutting links and for per-namespace `/etc/hosts`.

/// A network namespace joined to this host by a veth pair; removed on drop.
pub struct Netns {
    pub name: String,
    host_if: String,
    /// The host's address on the link (the namespace has the next one).
    pub host_ip: String,
}

impl Netns {
    /// Needs root and iproute2 (`ip`), as CI has.
    pub fn create() -> Netns {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "this test makes network namespaces: run it as root"
        );
        let tag = format!("{:05x}", rand::random::<u32>() & 0xfffff);
        let subnet = rand::random::<u8>();
        let netns = Netns {
            name: format!("mqb-{tag}"),
            host_if: format!("mqbh{tag}"),
            host_ip: format!("10.231.{subnet}.1"),
        };
        let ns_if = format!("mqbn{tag}");
        let ns_ip = format!("10.231.{subnet}.2/30");
        let host_cidr = format!("{}/30", netns.host_ip);
        ip(&["netns", "add", &netns.name]);
        ip(&[
            "link",
            "add",
            &netns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &ns_if,
        ]);
        ip(&["link", "set", &ns_if, "netns", &netns.name]);
        ip(&["addr", "add", &host_cidr, "dev", &netns.host_if]);
        ip(&["link", "set", &netns.host_if, "up"]);
        for args in [
            vec!["addr", "add", &ns_ip, "dev", &ns_if],
            vec!["link", "set", &ns_if, "up"],
            vec!["link", "set", "lo", "up"],
        ] {
            let mut inside = vec!["netns", "exec", &netns.name, "ip"];
            inside.extend(args);
            ip(&inside);
        }
        netns
    }

    /// Brings the link between the namespace and the host up or down.
    pub fn set_link(&self, up: bool) {
        ip(&["link", "set", &self.host_if, if up { "up" } else { "down" }]);
    }
}

impl Netns {
    /// `/etc/hosts` as the namespace's processes see it (`ip netns exec`
    /// mounts `/etc/netns/NAME/hosts` over it); removed with the namespace.
    pub fn set_hosts(&self, hosts: &str) {
        let dir = format!("/etc/netns/{}", self.name);
        std::fs::create_dir_all(&dir).unwrap();
        // Written in place: a running process's mount sees the new lines.
        std::fs::write(format!("{dir}/hosts"), hosts).unwrap();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.name));
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn ip(args: &[&str]) {
    let status = std::process::Command::new("ip")
        .args(args)
        .status()
        .expect("iproute2's `ip` runs (apt-get install iproute2)");
    assert!(status.success(), "ip {}", args.join(" "));
}
