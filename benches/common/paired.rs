//! Paired sampling: ratios measured per repetition in one run.
//!
//! [`compare`] takes contestants (sides) that each run a batch of the same
//! workload on their own, identical state and leave that state as they
//! found it (a pair frees what it allocated; a fill frees everything). One
//! repetition runs every side once, back to back: even repetitions in the
//! given order, odd ones in reverse, so that each side goes first as often
//! as it goes last (for two sides: A then B, then B then A). Every side of
//! a comparison runs the same number of iterations per batch, calibrated
//! once (untimed, which also warms caches and per-cpu lists) until the
//! fastest side's batch lasts at least [`Config::batch`].
//!
//! A ratio A / B is computed per repetition from the two batches' times
//! per operation; [`Outcome`] reports its median and its min-max over the
//! repetitions. A slow-down of the whole machine during one repetition
//! (another build on the other core) slows both batches of that repetition
//! and mostly cancels in its ratio; the median ignores the repetitions
//! where it did not.

use std::time::{Duration, Instant};

/// How a comparison is sampled.
#[derive(Clone, Copy)]
pub struct Config {
    /// Repetitions (at least 1).
    pub reps: usize,
    /// Minimum length of the fastest side's batch (calibration target).
    pub batch: Duration,
    /// Iterations per batch, fixed (no calibration), for workloads whose
    /// single iteration is long already (whole fills).
    pub iters: Option<u64>,
}

/// Median and range of one figure over the repetitions.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    /// # Panics
    /// If `xs` is empty or holds a NaN.
    pub fn of(mut xs: Vec<f64>) -> Stats {
        assert!(!xs.is_empty(), "no repetitions");
        xs.sort_by(|a, b| a.partial_cmp(b).expect("NaN in a benchmark figure"));
        let n = xs.len();
        let median = if n % 2 == 1 {
            xs[n / 2]
        } else {
            (xs[n / 2 - 1] + xs[n / 2]) / 2.0
        };
        Stats {
            median,
            min: xs[0],
            max: xs[n - 1],
        }
    }
}

/// Times of one comparison: ns per operation of each side in each
/// repetition.
pub struct Outcome {
    names: Vec<String>,
    /// `ns[side][rep]`.
    ns: Vec<Vec<f64>>,
}

impl Outcome {
    fn side(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no contestant {name}"))
    }

    /// Repetitions measured.
    pub fn reps(&self) -> usize {
        self.ns[0].len()
    }

    /// ns per operation of `name`.
    pub fn ns(&self, name: &str) -> Stats {
        Stats::of(self.ns[self.side(name)].clone())
    }

    /// `a / b`, per repetition.
    pub fn ratio(&self, a: &str, b: &str) -> Stats {
        self.per_rep(|t| t(a) / t(b))
    }

    /// Any figure computed per repetition from that repetition's ns per
    /// operation of the named sides (`t(name)`).
    pub fn per_rep(&self, f: impl Fn(&dyn Fn(&str) -> f64) -> f64) -> Stats {
        let xs = (0..self.reps())
            .map(|r| f(&|name: &str| self.ns[self.side(name)][r]))
            .collect();
        Stats::of(xs)
    }
}

/// Runs the comparison. `run(side, iters)` runs `iters` iterations of side
/// `side` (an index into `names`), timing only the measured work, and
/// returns that time and the number of operations done.
///
/// # Panics
/// If a side reports zero operations.
pub fn compare<F>(cfg: &Config, names: &[&str], mut run: F) -> Outcome
where
    F: FnMut(usize, u64) -> (Duration, u64),
{
    let sides = names.len();
    let iters = match cfg.iters {
        Some(n) => {
            // Warm-up: one untimed round.
            for s in 0..sides {
                run(s, n);
            }
            n
        }
        None => calibrate(cfg.batch, sides, &mut run),
    };
    let mut ns = vec![Vec::with_capacity(cfg.reps); sides];
    for rep in 0..cfg.reps {
        let order: Vec<usize> = if rep % 2 == 0 {
            (0..sides).collect()
        } else {
            (0..sides).rev().collect()
        };
        for s in order {
            let (d, ops) = run(s, iters);
            assert!(ops > 0, "{}: no operations", names[s]);
            ns[s].push(d.as_nanos() as f64 / ops as f64);
        }
    }
    Outcome {
        names: names.iter().map(|n| n.to_string()).collect(),
        ns,
    }
}

/// Doubles (or more) the iterations until the fastest side's batch takes
/// `batch`; every round is a warm-up.
fn calibrate<F>(batch: Duration, sides: usize, run: &mut F) -> u64
where
    F: FnMut(usize, u64) -> (Duration, u64),
{
    let mut iters = 1u64;
    loop {
        let fastest = (0..sides)
            .map(|s| run(s, iters).0)
            .min()
            .expect("no contestants");
        if fastest >= batch || iters >= 1 << 32 {
            return iters;
        }
        let scale = (batch.as_secs_f64() / fastest.as_secs_f64().max(1e-9)).ceil();
        iters *= scale.clamp(2.0, 64.0) as u64;
    }
}

/// The time `f` takes.
#[inline(always)]
pub fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// The table header's words on the wall-clock figures: repetitions per
/// comparison and per fill, or `None` when only instructions were counted.
pub fn how(reps: Option<(usize, usize)>) -> String {
    match reps {
        Some((pairs, fills)) => format!(
            "wall: {pairs} paired repetitions per comparison ({fills} for fills), release build"
        ),
        None => "wall: not measured (--ir-only)".to_string(),
    }
}
