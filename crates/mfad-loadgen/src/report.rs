//! Latency recording (HDR histograms in microseconds) and the final report.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Highest latency the histograms track (60 s, in microseconds); larger values saturate.
const MAX_TRACKED_US: u64 = 60_000_000;
/// Distinct error messages kept per operation for the report.
const ERROR_SAMPLES: usize = 5;

/// Latencies and failures of one kind of request.
#[derive(Debug)]
pub struct OpStats {
    /// Operation name as printed (`verify`, `challenge`, ...).
    pub name: &'static str,
    /// Latencies of successful requests, in microseconds.
    pub hist: Histogram<u64>,
    /// Requests with an unexpected status, body or transport error.
    pub errors: u64,
    /// The first few distinct error messages.
    pub error_samples: Vec<String>,
}

impl OpStats {
    fn new(name: &'static str) -> Result<Self> {
        Ok(OpStats {
            name,
            hist: Histogram::new_with_bounds(1, MAX_TRACKED_US, 3)
                .context("creating a latency histogram")?,
            errors: 0,
            error_samples: Vec::new(),
        })
    }

    fn quantile_ms(&self, q: f64) -> f64 {
        if self.hist.is_empty() {
            0.0
        } else {
            us_to_ms(self.hist.value_at_quantile(q))
        }
    }

    fn max_ms(&self) -> f64 {
        if self.hist.is_empty() {
            0.0
        } else {
            us_to_ms(self.hist.max())
        }
    }
}

fn us_to_ms(us: u64) -> f64 {
    // Latencies are far below 2^52 µs, so the conversion is exact.
    #[allow(clippy::cast_precision_loss)]
    let us = us as f64;
    us / 1000.0
}

fn per_sec(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let count = count as f64;
    if secs > 0.0 { count / secs } else { 0.0 }
}

/// Per-worker recorder for a fixed list of operations (indexed by position).
#[derive(Debug)]
pub struct Recorder {
    ops: Vec<OpStats>,
}

impl Recorder {
    /// A recorder for `names`; index `i` in [`Recorder::ok`] refers to `names[i]`.
    pub fn new(names: &[&'static str]) -> Result<Self> {
        Ok(Recorder {
            ops: names
                .iter()
                .map(|name| OpStats::new(name))
                .collect::<Result<_>>()?,
        })
    }

    /// Records a successful request of operation `op` that took `latency`.
    pub fn ok(&mut self, op: usize, latency: Duration) {
        if let Some(stats) = self.ops.get_mut(op) {
            let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            stats.hist.saturating_record(us.max(1));
        }
    }

    /// Records a failed request of operation `op`.
    pub fn err(&mut self, op: usize, message: String) {
        if let Some(stats) = self.ops.get_mut(op) {
            stats.errors += 1;
            if stats.error_samples.len() < ERROR_SAMPLES && !stats.error_samples.contains(&message)
            {
                stats.error_samples.push(message);
            }
        }
    }

    /// Total failed requests over all operations.
    pub fn errors(&self) -> u64 {
        self.ops.iter().map(|o| o.errors).sum()
    }

    /// Every error sample, prefixed with its operation.
    pub fn error_samples(&self) -> Vec<String> {
        self.ops
            .iter()
            .flat_map(|o| {
                o.error_samples
                    .iter()
                    .map(move |m| format!("{}: {m}", o.name))
            })
            .collect()
    }

    /// Folds another worker's recorder (built from the same names) into this one.
    pub fn merge(&mut self, other: Recorder) -> Result<()> {
        for (mine, theirs) in self.ops.iter_mut().zip(other.ops) {
            mine.hist
                .add(&theirs.hist)
                .context("merging latency histograms")?;
            mine.errors += theirs.errors;
            for m in theirs.error_samples {
                if mine.error_samples.len() < ERROR_SAMPLES && !mine.error_samples.contains(&m) {
                    mine.error_samples.push(m);
                }
            }
        }
        Ok(())
    }

    /// The per-operation statistics, in the order of the names.
    pub fn ops(&self) -> &[OpStats] {
        &self.ops
    }
}

/// One phase (setup or measured) of a run.
#[derive(Debug)]
pub struct Phase {
    /// Wall time from the start of the phase until the last worker finished.
    pub elapsed: Duration,
    /// Merged statistics of all workers.
    pub rec: Recorder,
}

/// Memory of the server process, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy)]
pub struct RssReport {
    /// The PID sampled.
    pub pid: u32,
    /// `VmRSS` when the load generator started, KiB.
    pub start_kib: u64,
    /// Highest `VmRSS` seen while sampling (every 50 ms), KiB.
    pub max_sampled_kib: u64,
    /// `VmHWM` (the kernel's peak RSS since the process started) at the end, KiB.
    pub hwm_kib: u64,
}

impl RssReport {
    /// The larger of `VmHWM` and the highest sample: the kernel updates its RSS
    /// counters lazily, so a sample can exceed `VmHWM` by a few pages.
    pub fn peak_kib(&self) -> u64 {
        self.hwm_kib.max(self.max_sampled_kib)
    }
}

fn kib_to_mib(kib: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let kib = kib as f64;
    kib / 1024.0
}

/// Everything printed at the end.
#[derive(Debug)]
pub struct Report {
    /// Scenario name.
    pub scenario: &'static str,
    /// Server URL.
    pub url: String,
    /// Worker tasks (= connections).
    pub connections: usize,
    /// Tokio worker threads.
    pub threads: usize,
    /// Requested measurement duration.
    pub duration: Duration,
    /// Why the measured phase ended.
    pub stop_reason: String,
    /// Setup phase, if the scenario has one (not part of the headline numbers).
    pub setup: Option<Phase>,
    /// Measured phase; operation 0 is the headline operation.
    pub measured: Phase,
    /// Server memory, with `--server-pid`.
    pub rss: Option<RssReport>,
    /// Reconnections during the measured phase.
    pub reconnects: u64,
    /// Extra remarks (starvation, warnings).
    pub notes: Vec<String>,
}

impl Report {
    /// Errors in the measured phase (setup errors abort the run before a report exists).
    pub fn errors(&self) -> u64 {
        self.measured.rec.errors()
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "mfad-loadgen  scenario={}  url={}  connections={}  threads={}  duration={:.1}s",
            self.scenario,
            self.url,
            self.connections,
            self.threads,
            self.duration.as_secs_f64()
        );
        if let Some(setup) = &self.setup {
            let _ = writeln!(
                out,
                "\nsetup (not measured, {:.2}s):",
                setup.elapsed.as_secs_f64()
            );
            table_rows(&mut out, setup);
        }
        let _ = writeln!(
            out,
            "\nmeasured ({:.2}s, {}):",
            self.measured.elapsed.as_secs_f64(),
            self.stop_reason
        );
        table_rows(&mut out, &self.measured);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "errors: {}   reconnects: {}",
            self.errors(),
            self.reconnects
        );
        if let Some(rss) = &self.rss {
            let _ = writeln!(
                out,
                "server pid {}: peak RSS {:.1} MiB (VmHWM {:.1} MiB, max sampled VmRSS {:.1} MiB), VmRSS at start {:.1} MiB",
                rss.pid,
                kib_to_mib(rss.peak_kib()),
                kib_to_mib(rss.hwm_kib),
                kib_to_mib(rss.max_sampled_kib),
                kib_to_mib(rss.start_kib)
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        let samples = self.measured.rec.error_samples();
        if !samples.is_empty() {
            let _ = writeln!(out, "error samples:");
            for s in samples {
                let _ = writeln!(out, "  {s}");
            }
        }
        out
    }

    /// The report as one JSON object; the headline operation's numbers are top level.
    pub fn json(&self) -> Value {
        let headline = self.measured.rec.ops().first();
        let mut v = json!({
            "scenario": self.scenario,
            "url": self.url,
            "connections": self.connections,
            "threads": self.threads,
            "duration_s": self.duration.as_secs_f64(),
            "elapsed_s": self.measured.elapsed.as_secs_f64(),
            "stop_reason": self.stop_reason,
            "op": headline.map(|o| o.name),
            "ops": headline.map_or(0, |o| o.hist.len()),
            "errors": self.errors(),
            "throughput": headline.map_or(0.0, |o| per_sec(o.hist.len(), self.measured.elapsed)),
            "p50_ms": headline.map_or(0.0, |o| o.quantile_ms(0.5)),
            "p90_ms": headline.map_or(0.0, |o| o.quantile_ms(0.9)),
            "p99_ms": headline.map_or(0.0, |o| o.quantile_ms(0.99)),
            "p999_ms": headline.map_or(0.0, |o| o.quantile_ms(0.999)),
            "max_ms": headline.map_or(0.0, OpStats::max_ms),
            "reconnects": self.reconnects,
            "detail": phase_json(&self.measured),
            "setup": self.setup.as_ref().map(|p| json!({
                "elapsed_s": p.elapsed.as_secs_f64(),
                "detail": phase_json(p),
            })),
            "notes": self.notes,
            "error_samples": self.measured.rec.error_samples(),
        });
        if let (Some(rss), Some(obj)) = (&self.rss, v.as_object_mut()) {
            obj.insert("server_pid".into(), json!(rss.pid));
            obj.insert(
                "server_peak_rss_mib".into(),
                json!(kib_to_mib(rss.peak_kib())),
            );
            obj.insert("server_vmhwm_mib".into(), json!(kib_to_mib(rss.hwm_kib)));
            obj.insert(
                "server_max_sampled_rss_mib".into(),
                json!(kib_to_mib(rss.max_sampled_kib)),
            );
            obj.insert(
                "server_start_rss_mib".into(),
                json!(kib_to_mib(rss.start_kib)),
            );
        }
        v
    }
}

fn table_rows(out: &mut String, phase: &Phase) {
    let _ = writeln!(
        out,
        "  {:<22} {:>10} {:>7} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "op", "ops", "errors", "ops/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    for o in phase.rec.ops() {
        let _ = writeln!(
            out,
            "  {:<22} {:>10} {:>7} {:>11.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            o.name,
            o.hist.len(),
            o.errors,
            per_sec(o.hist.len(), phase.elapsed),
            o.quantile_ms(0.5),
            o.quantile_ms(0.9),
            o.quantile_ms(0.99),
            o.quantile_ms(0.999),
            o.max_ms(),
        );
    }
}

fn phase_json(phase: &Phase) -> Value {
    Value::Array(
        phase
            .rec
            .ops()
            .iter()
            .map(|o| {
                json!({
                    "op": o.name,
                    "ops": o.hist.len(),
                    "errors": o.errors,
                    "throughput": per_sec(o.hist.len(), phase.elapsed),
                    "p50_ms": o.quantile_ms(0.5),
                    "p90_ms": o.quantile_ms(0.9),
                    "p99_ms": o.quantile_ms(0.99),
                    "p999_ms": o.quantile_ms(0.999),
                    "max_ms": o.max_ms(),
                })
            })
            .collect(),
    )
}
