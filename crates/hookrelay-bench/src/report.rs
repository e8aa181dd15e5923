//! Figures and how they are printed: one clock for the whole run, percentiles, rates, and
//! small Markdown tables (so a run's output can be pasted into BENCHMARKS.md as it is).

use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// The instant every timestamp of a run is measured from. The load generator and the
/// receiver live in the same process, so publish and receive times share this clock.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Microseconds since the start of the run.
pub fn now_us() -> u64 {
    u64::try_from(EPOCH.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Microseconds since the start of the run at `at`.
pub fn us_at(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(*EPOCH).as_micros()).unwrap_or(u64::MAX)
}

/// Percentiles of a set of durations in microseconds, sorted once.
#[derive(Debug, Clone, Default)]
pub struct Percentiles {
    sorted: Vec<u64>,
}

impl Percentiles {
    /// Sorts `samples`.
    pub fn new(mut samples: Vec<u64>) -> Self {
        samples.sort_unstable();
        Self { sorted: samples }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The `p`-th percentile (0–100), nearest rank; 0 without samples.
    pub fn at(&self, p: f64) -> u64 {
        if self.sorted.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    /// The largest sample.
    pub fn max(&self) -> u64 {
        self.sorted.last().copied().unwrap_or(0)
    }

    /// "p50 / p99 / max" in milliseconds.
    pub fn summary_ms(&self) -> String {
        if self.is_empty() {
            return "no samples".to_owned();
        }
        format!(
            "p50 {} / p99 {} / max {}",
            ms(self.at(50.0)),
            ms(self.at(99.0)),
            ms(self.max())
        )
    }
}

/// Microseconds as milliseconds, with a precision that suits the size.
pub fn ms(us: u64) -> String {
    let m = us as f64 / 1000.0;
    if m < 10.0 {
        format!("{m:.2} ms")
    } else if m < 100.0 {
        format!("{m:.1} ms")
    } else {
        format!("{m:.0} ms")
    }
}

/// `count` per second over `span`, as a whole number with thousands separators.
pub fn rate(count: u64, span: Duration) -> String {
    let secs = span.as_secs_f64();
    if secs <= 0.0 {
        return "n/a".to_owned();
    }
    format!("{}/s", thousands((count as f64 / secs).round() as u64))
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A duration in seconds with two decimals.
pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// A Markdown table being built, printed at the end.
#[derive(Debug)]
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with a title line and column names.
    pub fn new(title: &str, header: &[&str]) -> Self {
        Self {
            title: title.to_owned(),
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// Adds a row of two cells: what is measured, and its figure.
    pub fn pair(&mut self, label: impl Into<String>, value: impl Into<String>) {
        self.rows.push(vec![label.into(), value.into()]);
    }

    /// Prints it to stdout, columns padded for reading in a terminal.
    pub fn print(&self) {
        let cols = self.header.len();
        let mut width: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(cols) {
                width[i] = width[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::from("|");
            for (i, w) in width.iter().enumerate() {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                let pad = w.saturating_sub(cell.chars().count());
                s.push(' ');
                s.push_str(cell);
                s.push_str(&" ".repeat(pad));
                s.push_str(" |");
            }
            s
        };
        println!();
        println!("### {}", self.title);
        println!();
        println!("{}", line(&self.header));
        let rule: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
        println!("{}", line(&rule));
        for row in &self.rows {
            println!("{}", line(row));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let p = Percentiles::new((1..=100).rev().collect());
        assert_eq!(p.at(50.0), 50);
        assert_eq!(p.at(99.0), 99);
        assert_eq!(p.at(100.0), 100);
        assert_eq!(p.max(), 100);
        assert_eq!(Percentiles::new(vec![7]).at(99.0), 7);
        assert_eq!(Percentiles::new(Vec::new()).at(50.0), 0);
    }

    #[test]
    fn thousands_groups_digits() {
        for (n, s) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (1234567, "1,234,567"),
        ] {
            assert_eq!(thousands(n), s);
        }
    }
}
