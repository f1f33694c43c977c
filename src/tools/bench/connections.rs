//! `bench connections`: opens N connections at a given rate, holds them
//! idle, and reports how many opened, how fast, and (with `--watch`) what
//! each connection costs the processes on the path in resident memory.
//!
//! Memory is given two ways. Per connection: the RSS growth from before the
//! first connection to the hold, over all connections. Marginal: the growth
//! from when a tenth of them were open, over the connections opened since.
//! The first takes in a process's one-time costs (code first run, caches
//! filled once) and is lowered by heap that earlier work left free and the
//! new connections reuse, which differs between allocators and what ran
//! before; the marginal figure is what one more idle connection costs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::FutureExt;
use tokio::sync::{Semaphore, mpsc};

use super::args::ConnectionsArgs;
use super::report::{
    ConnectionsReport, LatencySummary, ProcessMemory, Progress, Report, Sample, latency_histogram,
};
use super::{Link, Target};

/// A process whose memory is measured: `name=pid`.
#[derive(Debug, Clone)]
pub struct Watched {
    pub name: String,
    pub pid: u32,
}

impl std::str::FromStr for Watched {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, pid) = s
            .split_once('=')
            .ok_or_else(|| format!("expected NAME=PID, got {s:?}"))?;
        let pid = pid
            .parse()
            .map_err(|_| format!("not a process id: {pid:?}"))?;
        Ok(Self {
            name: name.to_string(),
            pid,
        })
    }
}

/// Resident set size of `pid` in KiB, from /proc.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS for process {pid}"))
}

pub async fn run(args: ConnectionsArgs) -> anyhow::Result<Report> {
    let mut options = crate::tools::pubsub::options(&args.client)?;
    // Idle means idle: no keep-alive pings.
    options.keep_alive = Duration::ZERO;
    let target = Arc::new(Target::new(options).await?);
    let before: Vec<u64> = args
        .watch
        .iter()
        .map(|w| rss_kib(w.pid))
        .collect::<anyhow::Result<_>>()?;

    let progress = Progress::new();
    let started = Instant::now();
    let (opened_tx, mut opened_rx) = mpsc::channel::<(Link, u64)>(1024);
    let failures = Arc::new(AtomicUsize::new(0));
    let concurrency = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let pace = (args.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / args.rate));
    let opener = {
        let target = target.clone();
        let failures = failures.clone();
        let count = args.count;
        tokio::spawn(async move {
            let mut ticker = pace.map(tokio::time::interval);
            for i in 0..count {
                if let Some(t) = ticker.as_mut() {
                    t.tick().await;
                }
                let Ok(permit) = concurrency.clone().acquire_owned().await else {
                    return;
                };
                let target = target.clone();
                let failures = failures.clone();
                let opened = opened_tx.clone();
                tokio::spawn(async move {
                    let begun = Instant::now();
                    match target.connect(&format!("{}-c{i}", target.id_prefix)).await {
                        Ok(link) => {
                            let took = begun.elapsed().as_nanos() as u64;
                            let _ = opened.send((link, took)).await;
                        }
                        Err(e) => {
                            if failures.fetch_add(1, Ordering::Relaxed) == 0 {
                                tracing::warn!(error = %e, "connection failed");
                            }
                        }
                    }
                    drop(permit);
                });
            }
        })
    };

    let mut links = Vec::with_capacity(args.count);
    let mut latency = latency_histogram();
    let mut timeline = vec![Sample {
        t_s: 0.0,
        value: 0.0,
    }];
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last_open = started;
    // RSS of the watched processes once a tenth of the connections are
    // open, with how many were open then (the marginal figure).
    let tenth = (args.count / 10).max(1);
    let mut at_tenth: Option<(usize, Vec<u64>)> = None;
    while links.len() + failures.load(Ordering::Relaxed) < args.count {
        tokio::select! {
            opened = opened_rx.recv() => match opened {
                Some((link, ns)) => {
                    links.push(link);
                    latency.saturating_record(ns.max(1));
                    last_open = Instant::now();
                    if at_tenth.is_none() && links.len() >= tenth && links.len() < args.count {
                        at_tenth = Some((links.len(), measure(&args.watch)?));
                    }
                }
                None => break,
            },
            _ = tick.tick() => {
                let t = started.elapsed().as_secs_f64();
                timeline.push(Sample { t_s: t.round(), value: links.len() as f64 });
                progress.show(&format!(
                    "{t:5.0} s  open {:>7}  failed {:>6}",
                    links.len(),
                    failures.load(Ordering::Relaxed)
                ));
            }
        }
    }
    opener.abort();
    let open_seconds = last_open.duration_since(started).as_secs_f64();
    timeline.push(Sample {
        t_s: started.elapsed().as_secs_f64(),
        value: links.len() as f64,
    });

    // Hold, then measure and see who is still there.
    let hold = Duration::from_secs_f64(args.hold);
    let hold_started = Instant::now();
    let mut memory_at_end_of_hold = None;
    loop {
        let left = hold.saturating_sub(hold_started.elapsed());
        if left.is_zero() {
            break;
        }
        // Memory settles within the first second of the hold.
        if memory_at_end_of_hold.is_none()
            && hold_started.elapsed() >= hold.min(Duration::from_secs(1))
        {
            memory_at_end_of_hold = Some(measure(&args.watch)?);
        }
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        let t = started.elapsed().as_secs_f64();
        timeline.push(Sample {
            t_s: t.round(),
            value: links.len() as f64,
        });
        progress.show(&format!(
            "{t:5.0} s  holding {} connections, {:.0} s left",
            links.len(),
            hold.saturating_sub(hold_started.elapsed()).as_secs_f64()
        ));
    }
    progress.done();
    let after = match memory_at_end_of_hold {
        Some(m) => m,
        None => measure(&args.watch)?,
    };
    let alive = links
        .iter_mut()
        .filter_map(|l| {
            let closed = matches!(l.reader.next().now_or_never(), Some(Ok(None) | Err(_)));
            (!closed).then_some(())
        })
        .count();
    let opened = links.len();
    let memory = args
        .watch
        .iter()
        .zip(before.iter().zip(after))
        .enumerate()
        .map(|(i, (w, (before, after)))| ProcessMemory {
            name: w.name.clone(),
            pid: w.pid,
            rss_before_kib: *before,
            rss_after_kib: after,
            per_connection_bytes: growth_per_connection(*before, after, opened),
            marginal_bytes: at_tenth.as_ref().and_then(|(open_then, rss)| {
                let since = opened.checked_sub(*open_then).filter(|n| *n > 0)?;
                Some(growth_per_connection(rss[i], after, since))
            }),
        })
        .collect();
    drop(links);
    Ok(Report::Connections(ConnectionsReport {
        url: target.url.clone(),
        version: target.version.to_string(),
        requested: args.count,
        opened,
        failed: failures.load(Ordering::Relaxed),
        alive_after_hold: alive,
        open_seconds,
        open_rate: opened as f64 / open_seconds.max(1e-9),
        hold_seconds: args.hold,
        connect_latency: LatencySummary::of(&latency),
        memory,
        timeline,
    }))
}

/// RSS growth from `before_kib` to `after_kib`, in bytes per connection.
fn growth_per_connection(before_kib: u64, after_kib: u64, connections: usize) -> f64 {
    (after_kib as f64 - before_kib as f64) * 1024.0 / connections.max(1) as f64
}

fn measure(watch: &[Watched]) -> anyhow::Result<Vec<u64>> {
    watch.iter().map(|w| rss_kib(w.pid)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_rss_and_parses_watch_flags() {
        assert!(rss_kib(std::process::id()).unwrap() > 0);
        let w: Watched = "r-proxy=42".parse().unwrap();
        assert_eq!((w.name.as_str(), w.pid), ("r-proxy", 42));
        assert!("r-proxy".parse::<Watched>().is_err());
    }
}
