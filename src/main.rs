//! The `mqttbridge` binary: parses the command line, sets up logging and
//! the runtime, and hands over to a service or a tool.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use mqttbridge::cli::{Cli, Command, check_config};
use mqttbridge::net::HostPort;
use mqttbridge::ops::readiness::Readiness;
use mqttbridge::service::r_proxy::RProxy;
use mqttbridge::service::run::{run, shutdown_signal};
use mqttbridge::service::s_proxy::SProxy;
use mqttbridge::service::scion_quic::ScionQuic;
use mqttbridge::service::scion_udp::ScionUdp;
use mqttbridge::service::settings::LogFormat;
use mqttbridge::tools::{bench, certs, demo, pocketscion, pubsub};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let service = cli.command.is_service();
    let process = match cli.process_flags() {
        Ok(process) => process,
        Err(e) => {
            eprintln!("mqttbridge: {e}");
            return ExitCode::from(2);
        }
    };
    // Services log at info; the tools print their own story and log only
    // warnings (scion-stack warns whenever a stack is dropped, which these
    // short-lived commands do on purpose).
    let default_level = if service {
        "info"
    } else if cli.command.shows_packets() {
        "warn,scion_stack=error,mqttbridge::client=debug"
    } else {
        "warn,scion_stack=error"
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // Colour only for a person at a terminal: never into files or journald.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let json = process.log_format == Some(LogFormat::Json);
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
    let fatal = |message: String| {
        // Under --log-format json every line is JSON, the last one too.
        if json {
            tracing::error!(error = %message, "mqttbridge stopped");
        } else {
            eprintln!("mqttbridge: {message}");
        }
        ExitCode::FAILURE
    };
    let threads = process
        .worker_threads
        .unwrap_or(if service { 1 } else { 0 });
    let runtime = match threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_unpark(mqttbridge::net::http2::unparked)
            .build(),
        0 => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .on_thread_unpark(mqttbridge::net::http2::unparked)
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .on_thread_unpark(mqttbridge::net::http2::unparked)
            .build(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => return fatal(format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(dispatch(cli, process.admin)) {
        Ok(code) => code,
        Err(e) => fatal(format!("{e:#}")),
    }
}

async fn dispatch(cli: Cli, admin: Option<HostPort>) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::RProxy(args) => run::<RProxy>(move || Ok(args.resolve()?), admin).await?,
        Command::SProxy(args) => run::<SProxy>(move || Ok(args.resolve()?), admin).await?,
        Command::ScionQuic(args) => run::<ScionQuic>(move || Ok(args.resolve()?), admin).await?,
        Command::ScionUdp(args) => run::<ScionUdp>(move || Ok(args.resolve()?), admin).await?,
        Command::CheckConfig { mode, file } => {
            check_config(mode, &file)?;
            println!("{}: ok", file.display());
        }
        Command::Pub(args) => return pubsub::publish(args).await,
        Command::Sub(args) => return pubsub::subscribe(args).await,
        Command::Demo(args) => return demo::run(args.count).await,
        Command::Bench(args) => return bench::run(args).await,
        Command::Certs(args) => certs::run(&args)?,
        Command::Pocketscion(args) => {
            let shutdown = shutdown_signal(Readiness::default());
            pocketscion::run(args.topology, args.snap_token_files, shutdown).await?
        }
    }
    Ok(ExitCode::SUCCESS)
}
