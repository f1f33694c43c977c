//! The `mqttbridge` binary: parses the command line and hands over to a mode.

use std::process::ExitCode;

use clap::Parser;
use mqttbridge::cli::{Cli, Command, LogFormat, check_config};
use mqttbridge::net::HostPort;
use mqttbridge::ops::admin::{self, Readiness};
use mqttbridge::ops::systemd;
use mqttbridge::service::{
    r_proxy::RProxy, s_proxy::SProxy, scion_quic::ScionQuic, scion_udp::ScionUdp,
};
use mqttbridge::tools::{demo, pocketscion, pubsub};
use tracing::info;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own story; proxies log at info unless RUST_LOG says otherwise.
    let default_level = match cli.command {
        // scion-stack warns whenever a stack is dropped, which these
        // short-lived commands do on purpose.
        Command::Demo(_) | Command::Pub(_) | Command::Sub(_) | Command::Bench(_) => {
            "warn,scion_stack=error"
        }
        _ => "info",
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let threads = cli.worker_threads.unwrap_or(match cli.command {
        Command::RProxy(_) | Command::SProxy(_) | Command::ScionQuic(_) | Command::ScionUdp(_) => 1,
        _ => 0,
    });
    let runtime = match threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        0 => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mqttbridge: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mqttbridge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the admin endpoint when an address is configured, then reports
/// the mode ready to systemd and to `/readyz`.
async fn announce_ready(admin: Option<&HostPort>, readiness: &Readiness) -> anyhow::Result<()> {
    if let Some(addr) = admin {
        admin::serve(addr.as_str(), readiness.clone()).await?;
    }
    readiness.set(true);
    systemd::notify("READY=1");
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let readiness = Readiness::default();
    let admin_flag = cli.admin.clone();
    let admin = |from_file: &Option<HostPort>| admin_flag.clone().or_else(|| from_file.clone());
    let shutdown = shutdown_signal(readiness.clone());
    match cli.command {
        Command::RProxy(args) => {
            let config = args.resolve()?;
            let admin_addr = admin(&config.admin);
            let proxy = RProxy::bind(config).await?;
            let reloader = proxy.reloader();
            on_hangup(move || reloader.apply(args.resolve()?));
            announce_ready(admin_addr.as_ref(), &readiness).await?;
            proxy.serve(shutdown).await;
        }
        Command::SProxy(args) => {
            let config = args.resolve()?;
            let admin_addr = admin(&config.admin);
            let proxy = SProxy::bind(config).await?;
            let reloader = proxy.reloader();
            on_hangup(move || reloader.apply(args.resolve()?));
            announce_ready(admin_addr.as_ref(), &readiness).await?;
            proxy.serve(shutdown).await?;
        }
        Command::ScionQuic(args) => {
            let config = args.resolve()?;
            let admin_addr = admin(&config.admin);
            let proxy = ScionQuic::bind(config).await?;
            let reloader = proxy.reloader();
            on_hangup(move || reloader.apply(args.resolve()?));
            announce_ready(admin_addr.as_ref(), &readiness).await?;
            proxy.serve(shutdown).await;
        }
        Command::ScionUdp(args) => {
            let config = args.resolve()?;
            let admin_addr = admin(&config.admin);
            let relay = ScionUdp::bind(config).await?;
            let reloader = relay.reloader();
            on_hangup(move || reloader.apply(args.resolve()?));
            announce_ready(admin_addr.as_ref(), &readiness).await?;
            relay.serve(shutdown).await;
        }
        Command::CheckConfig { mode, file } => {
            check_config(mode, &file)?;
            println!("{}: ok", file.display());
        }
        Command::Pub(args) => return pubsub::publish(args).await,
        Command::Sub(args) => return pubsub::subscribe(args).await,
        Command::Demo(args) => return demo::run(args.count).await,
        Command::Bench(args) => return mqttbridge::tools::bench::run(args).await,
        Command::Certs(args) => {
            let names: Vec<&str> = args.names.iter().map(String::as_str).collect();
            let certs = mqttbridge::tools::certs::generate(&args.out, &names)?;
            for path in [
                &certs.ca,
                &certs.server_cert,
                &certs.server_key,
                &certs.client_cert,
                &certs.client_key,
            ] {
                println!("{}", path.display());
            }
        }
        Command::Pocketscion(args) => {
            pocketscion::run(args.topology, args.snap_token_files, shutdown).await?
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Re-reads the configuration on every SIGHUP; a configuration that does
/// not check out is refused and the running one kept.
fn on_hangup(mut reload: impl FnMut() -> anyhow::Result<()> + Send + 'static) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hangups.recv().await.is_some() {
            info!("SIGHUP: reloading the configuration");
            if let Err(e) = reload() {
                tracing::error!("reload refused, keeping the running configuration: {e:#}");
            }
        }
    });
}

/// Completes on SIGINT or SIGTERM, telling systemd and `/readyz` that the
/// service is stopping.
async fn shutdown_signal(readiness: Readiness) {
    wait_for_signal().await;
    info!("shutting down");
    readiness.set(false);
    systemd::notify("STOPPING=1");
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
