//! The target table: one row per figure, with its target and PASS/MISS
//! (a missed target is reported, never an error), and the header that says
//! when and on what it was measured.

use super::paired::Stats;
use std::fs;
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

/// A row's target, on its median.
#[derive(Clone, Copy)]
pub enum Goal {
    AtMost(f64),
    AtLeast(f64),
    /// Shown, no target.
    Info,
}

impl Goal {
    fn text(self, unit: &str) -> String {
        match self {
            Goal::AtMost(t) => format!("<= {t}{unit}"),
            Goal::AtLeast(t) => format!(">= {t}{unit}"),
            Goal::Info => "-".to_string(),
        }
    }
}

/// `YYYY-MM-DD HH:MM UTC` of now (civil date from days since 1970, Howard
/// Hinnant's `civil_from_days`).
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// `<CPU model> (<n> cores)`, from `/proc/cpuinfo` where there is one.
pub fn machine() -> String {
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    format!("{model} ({cores} cores)")
}

/// Prints the table's title and header lines.
pub fn header(title: &str, how: &str) {
    println!();
    println!("==================== {title} ====================");
    println!("date: {}   machine: {}", utc_now(), machine());
    println!("{how}");
}

pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2}ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2}us", ns / 1e3)
    } else {
        format!("{ns:.1}ns")
    }
}

fn fmt_num(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// The rows printed so far and how many targets they met.
pub struct Table {
    /// Leave out rows not measured in this run (`--ir-only`: the
    /// wall-clock rows) instead of showing them as `n/a`.
    skip_unmeasured: bool,
    met: usize,
    total: usize,
    unmeasured: usize,
}

impl Table {
    /// Prints the column titles.
    pub fn start(skip_unmeasured: bool) -> Table {
        println!();
        println!(
            "{:<58} {:>22} {:>8} {:>15} {:>8}  result",
            "metric", "measured (A / B)", "value", "min-max", "target"
        );
        Table {
            skip_unmeasured,
            met: 0,
            total: 0,
            unmeasured: 0,
        }
    }

    /// A figure with its spread over repetitions (a wall-clock ratio), in
    /// `unit` ("x" for ratios).
    pub fn stats(&mut self, label: &str, detail: &str, s: Stats, unit: &str, goal: Goal) {
        let range = format!("{}-{}", fmt_num(s.min), fmt_num(s.max));
        self.print(label, detail, Some(s.median), &range, unit, goal);
    }

    /// A figure without spread (an instruction count, a byte count), or
    /// `None` when it was not measured in this run.
    pub fn value(&mut self, label: &str, detail: &str, v: Option<f64>, unit: &str, goal: Goal) {
        self.print(label, detail, v, "", unit, goal);
    }

    fn print(
        &mut self,
        label: &str,
        detail: &str,
        v: Option<f64>,
        range: &str,
        unit: &str,
        goal: Goal,
    ) {
        if v.is_none() && self.skip_unmeasured {
            return;
        }
        let target = goal.text(unit);
        let counted = !matches!(goal, Goal::Info);
        self.total += usize::from(counted);
        let Some(v) = v else {
            self.unmeasured += usize::from(counted);
            println!(
                "{label:<58} {:>22} {:>8} {:>15} {target:>8}  n/a",
                "-", "-", "-"
            );
            return;
        };
        let verdict = match goal {
            Goal::AtMost(t) if v <= t => "PASS",
            Goal::AtLeast(t) if v >= t => "PASS",
            Goal::Info => "(info)",
            _ => "MISS",
        };
        self.met += usize::from(verdict == "PASS");
        let value = format!("{}{unit}", fmt_num(v));
        println!("{label:<58} {detail:>22} {value:>8} {range:>15} {target:>8}  {verdict}");
    }

    /// Prints a section title inside the table.
    pub fn section(&self, title: &str) {
        println!("-- {title}");
    }

    /// Prints the summary line.
    pub fn finish(&self, name: &str, seconds: f64) {
        println!();
        if self.unmeasured > 0 {
            println!("({} target rows not measured in this run)", self.unmeasured);
        }
        println!(
            "bench {name}: {}/{} targets met (measured in {seconds:.0} s)",
            self.met, self.total
        );
    }
}
