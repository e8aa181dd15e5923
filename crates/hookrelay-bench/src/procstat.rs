//! What the kernel says about a process: resident memory (`VmRSS` in `/proc/<pid>/status`)
//! and CPU time (`utime + stime` in `/proc/<pid>/stat`, or per thread in
//! `/proc/self/task/<tid>/stat` to split the bench process's own load generator from its
//! receiver). Linux only, like the service it measures.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc/*/stat` times (`getconf CLK_TCK`; 100 on Linux).
static CLK_TCK: LazyLock<f64> = LazyLock::new(|| {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
});

/// Resident memory of `pid` in bytes, or `None` when it is gone.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `(comm, utime + stime in seconds)` from one `/proc/…/stat` file.
fn parse_stat(text: &str) -> Option<(String, f64)> {
    // The command name is in parentheses and may itself hold spaces or parentheses.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = text.get(close + 2..)?.split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15 (1-based).
    let utime: f64 = rest.get(11)?.parse().ok()?;
    let stime: f64 = rest.get(12)?.parse().ok()?;
    Some((comm, (utime + stime) / *CLK_TCK))
}

/// CPU seconds `pid` has used so far (all its threads), or 0 when it is gone.
pub fn cpu_secs(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|t| parse_stat(&t))
        .map_or(0.0, |(_, s)| s)
}

/// CPU seconds used by this process's children that have exited and been waited for
/// (`cutime + cstime` of `/proc/self/stat`): how the CPU of a load generator run as a child
/// process (wrk) is read once it has finished.
pub fn children_cpu_secs() -> f64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(rest) = text.rfind(')').and_then(|c| text.get(c + 2..)) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // cutime and cstime are fields 16 and 17 (1-based), 13 and 14 after the name.
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (field(13) + field(14)) / *CLK_TCK
}

/// CPU seconds used by this process's threads, summed by thread name.
pub fn own_threads_cpu() -> BTreeMap<String, f64> {
    let mut by_name = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    for entry in dir.flatten() {
        let path = entry.path().join("stat");
        if let Some((comm, secs)) = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| parse_stat(&t))
        {
            *by_name.entry(comm).or_insert(0.0) += secs;
        }
    }
    by_name
}

/// Samples the resident memory of some processes every 100 ms and keeps each one's peak,
/// until stopped. Runs on its own thread so a busy runtime does not skew it.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peaks: Arc<Vec<(u32, AtomicU64)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    /// Starts sampling `pids`.
    pub fn start(pids: &[u32]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peaks: Arc<Vec<(u32, AtomicU64)>> =
            Arc::new(pids.iter().map(|p| (*p, AtomicU64::new(0))).collect());
        let (s, p) = (stop.clone(), peaks.clone());
        let thread = std::thread::Builder::new()
            .name("bench-rss".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    for (pid, peak) in p.iter() {
                        if let Some(rss) = rss_bytes(*pid) {
                            peak.fetch_max(rss, Ordering::Relaxed);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
            .ok();
        Self {
            stop,
            peaks,
            thread,
        }
    }

    /// Stops and returns the peak of each pid, in the order given.
    pub fn finish(mut self) -> Vec<(u32, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peaks
            .iter()
            .map(|(pid, peak)| (*pid, peak.load(Ordering::Relaxed)))
            .collect()
    }
}

/// CPU used by each part of the system between two points in time.
#[derive(Debug, Clone)]
pub struct CpuSnapshot {
    at: Instant,
    procs: Vec<(String, f64)>,
    threads: BTreeMap<String, f64>,
}

/// The processes whose CPU is split out: (label, pid).
pub type Parts = Vec<(String, u32)>;

/// CPU one part used over an interval.
#[derive(Debug, Clone)]
pub struct CpuUse {
    /// Which part (`redis-server`, `hookrelay worker 1`, `bench load`…).
    pub label: String,
    /// CPU seconds.
    pub secs: f64,
    /// Share of one core over the interval (100 = one core busy).
    pub percent: f64,
}

impl CpuSnapshot {
    /// Reads the CPU time of `parts` and of this process's threads now.
    pub fn take(parts: &Parts) -> Self {
        Self {
            at: Instant::now(),
            procs: parts
                .iter()
                .map(|(label, pid)| (label.clone(), cpu_secs(*pid)))
                .collect(),
            threads: own_threads_cpu(),
        }
    }

    /// Each part's CPU since `earlier`, with its share of one core over the elapsed wall
    /// time (100 % = one core busy). This process
    /// appears as `bench load` (its publishing clients and everything else) and
    /// `bench receiver` (the threads named `bench-recv`).
    pub fn since(&self, earlier: &CpuSnapshot) -> Vec<CpuUse> {
        let wall = self.at.duration_since(earlier.at).as_secs_f64().max(1e-9);
        let share = |label: &str, secs: f64| CpuUse {
            label: label.to_owned(),
            secs,
            percent: 100.0 * secs / wall,
        };
        let mut out = Vec::new();
        for (label, now) in &self.procs {
            // A part started after `earlier` (a worker) counts from zero.
            let before = earlier
                .procs
                .iter()
                .find(|(l, _)| l == label)
                .map_or(0.0, |(_, b)| *b);
            out.push(share(label, (now - before).max(0.0)));
        }
        let thread_delta = |pred: &dyn Fn(&str) -> bool| -> f64 {
            self.threads
                .iter()
                .filter(|(name, _)| pred(name))
                .map(|(name, now)| {
                    (now - earlier.threads.get(name).copied().unwrap_or(0.0)).max(0.0)
                })
                .sum()
        };
        let recv = thread_delta(&|n| n.starts_with("bench-recv"));
        let load = thread_delta(&|n| !n.starts_with("bench-recv"));
        out.push(share("bench load", load));
        out.push(share("bench receiver", recv));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_names() {
        let line =
            "1234 (tokio (w) 1) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 10 0 0";
        let (comm, secs) = parse_stat(line).expect("parses");
        assert_eq!(comm, "tokio (w) 1");
        assert!((secs - 300.0 / *CLK_TCK).abs() < 1e-9);
    }

    #[test]
    fn own_process_is_measurable() {
        let pid = std::process::id();
        assert!(rss_bytes(pid).unwrap_or(0) > 0);
        assert!(!own_threads_cpu().is_empty());
    }
}
