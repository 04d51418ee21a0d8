//! What both benchmarks share: the run's plan (test, smoke, full,
//! instruction counts only), the paired-sampling harness for wall-clock
//! ratios ([`paired`]), callgrind instruction counts ([`ir`]) and the
//! target table with its header ([`report`]).
//!
//! Why not criterion: criterion measures one benchmark at a time and
//! reports its mean; a ratio of two such means comes from two stretches of
//! time minutes apart, on a machine whose speed drifts (another build on the
//! second core, frequency changes), and has no spread of its own. The
//! tables here need the ratio itself to be measured: [`paired::compare`]
//! runs every contestant once per repetition, back to back on equal state,
//! alternating the order, and takes the ratio per repetition, so drift
//! between repetitions cancels out and the min-max over repetitions shows
//! how far the figure can be trusted. The per-contestant times printed
//! beside the ratios are the medians of the same repetitions.

pub mod ir;
pub mod paired;
pub mod report;

use std::env;
use std::time::Duration;

/// What this run of a benchmark binary does.
///
/// - `cargo bench` passes `--bench`: wall-clock comparisons, then the
///   instruction counts, then the table (full, or a smoke run with
///   `BENCH_QUICK=1`).
/// - `--ir-only` (`make bench-ir`): only the instruction counts and their
///   rows of the table.
/// - Without `--bench` (`cargo test --benches`): every workload once with
///   the smallest sizes, checked, nothing timed or printed as a table.
/// - With [`ir::WORKLOAD_ENV`] set: the child run under callgrind (see
///   [`ir`]).
#[derive(Clone, Copy)]
pub struct Plan {
    /// Wall-clock comparisons.
    pub wall: bool,
    /// Instruction counts under callgrind.
    pub ir: bool,
    /// Smoke run: few repetitions, short batches, fewer instruction counts.
    pub quick: bool,
    /// `cargo test --benches`: one repetition, no table.
    pub test: bool,
}

/// `BENCH_QUICK` is set (and not `0`): a smoke run.
pub fn quick_env() -> bool {
    env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

impl Plan {
    pub fn from_env() -> Plan {
        let args: Vec<String> = env::args().collect();
        let has = |a: &str| args.iter().any(|x| x == a);
        let quick = quick_env();
        if has("--ir-only") {
            Plan {
                wall: false,
                ir: true,
                quick,
                test: false,
            }
        } else if has("--bench") {
            Plan {
                wall: true,
                ir: true,
                quick,
                test: false,
            }
        } else {
            Plan {
                wall: true,
                ir: false,
                quick: true,
                test: true,
            }
        }
    }

    /// Repetitions and batch length of the wall-clock comparisons of
    /// single operations (pairs, mix steps).
    pub fn pairs(&self) -> paired::Config {
        let (reps, batch) = match (self.test, self.quick) {
            (true, _) => (1, Duration::ZERO),
            (false, true) => (5, Duration::from_micros(200)),
            (false, false) => (31, Duration::from_millis(2)),
        };
        paired::Config {
            reps,
            batch,
            iters: None,
        }
    }

    /// Repetitions of the comparisons whose every batch is one whole fill
    /// and free (milliseconds to a few hundred of them).
    pub fn fills(&self) -> paired::Config {
        let reps = match (self.test, self.quick) {
            (true, _) => 1,
            (false, true) => 3,
            (false, false) => 15,
        };
        paired::Config {
            reps,
            batch: Duration::ZERO,
            iters: Some(1),
        }
    }
}
