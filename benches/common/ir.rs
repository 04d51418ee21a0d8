//! Instruction counts from valgrind's callgrind: deterministic, so a change
//! of a hot path shows without timing noise.
//!
//! The benchmark binary runs itself again under
//! `valgrind --tool=callgrind --collect-atstart=no
//! --toggle-collect=*bench_ir_measured*`, once per workload, with the
//! workload's name in [`WORKLOAD_ENV`]. The child sets the workload up
//! (boot, prefill, a warm-up of the same operations: all uncounted), then
//! runs the measured operations inside [`bench_ir_measured`], a function
//! that is never inlined: callgrind counts instructions only between its
//! entry and its exit (callees included), so setup, the warm-up, untimed
//! shuffles between a fill and its frees, checks and process start-up are
//! excluded. The child prints how many operations it measured; the count
//! divided by that is instructions per operation (the call of the closure
//! adds a handful of instructions per workload, not per operation).
//! Callgrind counts guest instructions (`Ir`) of the host build (x86-64,
//! release profile), not of the i386 kernel.

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

/// Names the workload a child run measures.
pub const WORKLOAD_ENV: &str = "BENCH_IR_WORKLOAD";
/// The valgrind program (default: `valgrind` on `PATH`).
const VALGRIND_ENV: &str = "BENCH_VALGRIND";
/// What the child prints: this prefix, then the operations measured.
const OPS_PREFIX: &str = "bench-ir-ops ";

/// The workload this process must run as a callgrind child, if it is one.
pub fn child_workload() -> Option<String> {
    env::var(WORKLOAD_ENV).ok()
}

/// Runs `f`, the counted region. Never inlined, so that callgrind's
/// `--toggle-collect` finds it.
#[inline(never)]
pub fn bench_ir_measured<R>(f: impl FnOnce() -> R) -> R {
    black_box(f())
}

/// The child's report of the operations it measured.
pub fn report_ops(ops: u64) {
    println!("{OPS_PREFIX}{ops}");
}

fn valgrind() -> String {
    env::var(VALGRIND_ENV).unwrap_or_else(|_| "valgrind".to_string())
}

/// `valgrind --version`, or `None` if valgrind does not run.
fn valgrind_version() -> Option<String> {
    let out = Command::new(valgrind()).arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The table header's words on the instruction counts: the valgrind that
/// counted them, or why there are none.
pub fn how(counted: bool) -> String {
    match (counted, valgrind_version()) {
        (true, Some(v)) => format!("Ir: {v} callgrind, measured operations only"),
        _ => "Ir: not measured (valgrind missing or failed; make bench-ir installs it)".into(),
    }
}

/// One workload's count.
#[derive(Clone, Copy, Debug)]
pub struct IrCount {
    /// Instructions executed in the measured region.
    pub ir: u64,
    /// Operations measured.
    pub ops: u64,
}

impl IrCount {
    pub fn per_op(&self) -> f64 {
        self.ir as f64 / self.ops as f64
    }
}

/// Instructions counted by callgrind for each workload, by name; runs as
/// many children at a time as there are cores (the counts do not depend on
/// load).
///
/// # Errors
/// Valgrind missing, or a child failing (its name and stderr's tail).
pub fn count_all(workloads: &[String]) -> Result<BTreeMap<String, IrCount>, String> {
    let exe = env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let dir = env::temp_dir().join(format!("bench-ir-{}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let next = AtomicUsize::new(0);
    let results = Mutex::new(BTreeMap::new());
    let first_error = Mutex::new(None);
    let jobs = thread::available_parallelism().map_or(1, |n| n.get());
    thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(w) = workloads.get(i) else { break };
                    match count_one(&exe, &dir, i, w) {
                        Ok(c) => {
                            results.lock().unwrap().insert(w.clone(), c);
                        }
                        Err(e) => {
                            first_error.lock().unwrap().get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    let _ = fs::remove_dir_all(&dir);
    match first_error.into_inner().unwrap() {
        Some(e) => Err(e),
        None => Ok(results.into_inner().unwrap()),
    }
}

fn count_one(exe: &Path, dir: &Path, i: usize, workload: &str) -> Result<IrCount, String> {
    let out_file: PathBuf = dir.join(format!("callgrind.{i}.out"));
    let out = Command::new(valgrind())
        .args([
            "--tool=callgrind",
            "--collect-atstart=no",
            "--toggle-collect=*bench_ir_measured*",
        ])
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(exe)
        .env(WORKLOAD_ENV, workload)
        .output()
        .map_err(|e| format!("{}: {e}", valgrind()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
        return Err(format!(
            "callgrind run of {workload} failed ({}):\n{}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ops = stdout
        .lines()
        .find_map(|l| l.strip_prefix(OPS_PREFIX))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("{workload}: the child did not report its operations"))?;
    let text = fs::read_to_string(&out_file)
        .map_err(|e| format!("{workload}: {}: {e}", out_file.display()))?;
    // `totals:` (or, in older files, `summary:`) holds the collected cost
    // of every event; Ir is the first.
    let ir = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| format!("{workload}: no totals in {}", out_file.display()))?;
    if ir == 0 {
        return Err(format!(
            "{workload}: nothing counted (bench_ir_measured not found by --toggle-collect?)"
        ));
    }
    Ok(IrCount { ir, ops })
}
