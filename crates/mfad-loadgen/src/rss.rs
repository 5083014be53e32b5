//! Samples a server process's memory from `/proc/PID/status` (Linux only).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tokio::task::JoinHandle;

use crate::report::RssReport;

const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// `(VmRSS, VmHWM)` in KiB.
fn read_status(pid: u32) -> Result<(u64, u64)> {
    let path = format!("/proc/{pid}/status");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {path} (--server-pid)"))?;
    let field = |name: &str| -> Result<u64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| anyhow!("{path} has no {name} line"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// A background task recording the highest `VmRSS` seen.
#[derive(Debug)]
pub struct RssSampler {
    pid: u32,
    start_kib: u64,
    max_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl RssSampler {
    /// Starts sampling; fails if the process cannot be read right now.
    pub fn start(pid: u32) -> Result<Self> {
        let (rss, _hwm) = read_status(pid)?;
        let max_kib = Arc::new(AtomicU64::new(rss));
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let max_kib = Arc::clone(&max_kib);
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(SAMPLE_EVERY);
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    match read_status(pid) {
                        Ok((rss, _)) => {
                            max_kib.fetch_max(rss, Ordering::Relaxed);
                        }
                        Err(_) => break, // the process went away; finish() reports it
                    }
                }
            })
        };
        Ok(RssSampler {
            pid,
            start_kib: rss,
            max_kib,
            stop,
            task,
        })
    }

    /// Stops sampling and reads the final peak.
    pub async fn finish(self) -> Result<RssReport> {
        self.stop.store(true, Ordering::Relaxed);
        let _ignored = self.task.await;
        let (rss, hwm) = read_status(self.pid)
            .context("the server process disappeared during the run (did it crash?)")?;
        Ok(RssReport {
            pid: self.pid,
            start_kib: self.start_kib,
            max_sampled_kib: self.max_kib.load(Ordering::Relaxed).max(rss),
            hwm_kib: hwm,
        })
    }
}
