//! Host benchmarks of the zoned buddy page allocator (`make bench`).
//!
//! Two machines' worth of page frames, each booted the way the kernel does it
//! (`new` → `mark_present` → `free_memory_range` from 4 MiB up →
//! `setup_watermarks`):
//! - 128 MiB: 32768 pages, zones DMA + Normal;
//! - 4 GiB: 1,048,576 pages (an 8 MiB `mem_map`), DMA + Normal + HighMem with
//!   `max_low_pfn` 229376 (896 MiB).
//!
//! On each, with `GFP_HIGHUSER` (HighMem → Normal → DMA):
//! - `order0-pair-*`: one order-0 alloc + free, per-cpu lists on and off;
//! - `order-pair-*`: one alloc + free at each order 0..=10 (per-cpu lists on,
//!   the default; they only serve order 0);
//! - `fill-*`: order-0 allocations until the allocator refuses (the zones'
//!   `min` watermarks), then every page freed again, newest first.
//!
//! Baselines, measured in the same run on the same frames (pfn 1024 up, see
//! [`FIRST_FREE_PFN`]):
//! - `stack`: a `Vec<u32>` of free pfns, pop to allocate, push to free: the
//!   lower bound (no orders, zones, descriptors or checks);
//! - `bsa`: the `buddy_system_allocator` crate's `FrameAllocator::<32>`
//!   (free lists as `BTreeSet`s, no per-page descriptors).
//!
//! Then the ratio table is printed from the means criterion wrote this run
//! (`<criterion dir>/<group>/<bench>/new/estimates.json`). A missed target
//! is reported, never an error: benchmarks inform.
//!
//! `BENCH_QUICK=1` makes a smoke run (very short measurements); criterion's
//! usual arguments work (`cargo bench --bench buddy -- fill`), and rows whose
//! benchmarks were filtered out show `n/a`.

mod common;

use buddy_system_allocator::FrameAllocator;
use common::{criterion_dir, mean_ns};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode};
use kernel::addr::Pfn;
use kernel::mm::buddy::{BuddyAllocator, PageBlock};
use kernel::mm::gfp::{GFP_HIGHUSER, Gfp};
use kernel::mm::page::Page;
use kernel::mm::zone::{DEFAULT_MAX_LOW_PFN, MAX_PAGE_ORDER, ZoneType};
use std::collections::BTreeMap;
use std::env;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// Every allocation: HighMem first, falling back to Normal then DMA, so that
/// all zones of both machines are used; failures (the end of a fill) are
/// expected, so they are not recorded as warnings.
const GFP: Gfp = GFP_HIGHUSER.union(Gfp::NOWARN);

/// The first 4 MiB stay reserved (the PC's first MiB, the kernel image and
/// early allocations above it). Starting at an order-10 boundary makes the
/// comparison like for like: every allocator starts from whole order-10
/// blocks and splits and merges the same number of levels per order.
/// (From pfn 256, `FrameAllocator` would serve orders 8 and 9 from the
/// order-8 and order-9 blocks at 256 and 512 without splitting, while the
/// zoned allocator, serving HighMem and Normal before DMA, splits order-10
/// blocks.)
const FIRST_FREE_PFN: u32 = 1024;

/// `FrameAllocator::<BSA_ORDER>`: orders up to 31, as in the crate's examples.
const BSA_ORDER: usize = 32;

#[derive(Clone, Copy)]
struct Machine {
    /// Used in benchmark ids.
    name: &'static str,
    pages: u32,
}

const MACHINES: [Machine; 2] = [
    Machine {
        name: "128MiB",
        pages: 32 * 1024,
    },
    Machine {
        name: "4GiB",
        pages: 1 << 20,
    },
];

/// Measurement settings; `BENCH_QUICK` selects the smoke-run set.
struct Settings {
    quick: bool,
    warm_up: Duration,
    measure: Duration,
    samples: usize,
    fill_measure: Duration,
}

impl Settings {
    fn from_env() -> Settings {
        let quick = env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        if quick {
            Settings {
                quick,
                warm_up: Duration::from_millis(50),
                measure: Duration::from_millis(100),
                samples: 10,
                fill_measure: Duration::from_millis(100),
            }
        } else {
            Settings {
                quick,
                warm_up: Duration::from_millis(200),
                measure: Duration::from_millis(700),
                samples: 30,
                fill_measure: Duration::from_millis(1500),
            }
        }
    }

    fn criterion(&self) -> Criterion {
        Criterion::default()
            .warm_up_time(self.warm_up)
            .measurement_time(self.measure)
            .sample_size(self.samples)
            .nresamples(if self.quick { 1_000 } else { 10_000 })
            .without_plots()
            .configure_from_args()
    }

    /// Whole-memory fills take milliseconds (4 GiB: up to a few hundred) per
    /// iteration: ten samples of one or a few iterations each.
    fn fill_group(&self, g: &mut BenchmarkGroup<'_, WallTime>) {
        g.sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .measurement_time(self.fill_measure);
    }
}

fn no_zero(_pfn: Pfn, _nr_pages: u32) {}

fn new_mem_map(m: Machine) -> Vec<Page> {
    vec![Page::reserved(ZoneType::Dma); m.pages as usize]
}

/// The kernel's bring-up sequence over `mem_map`: all RAM present, all of it
/// above 1 MiB handed off free.
fn boot(mem_map: &mut [Page]) -> BuddyAllocator<'_> {
    let max_pfn = Pfn(u32::try_from(mem_map.len()).expect("mem_map too large"));
    let mut a = BuddyAllocator::new(mem_map, DEFAULT_MAX_LOW_PFN, no_zero);
    a.mark_present(Pfn(0), max_pfn);
    a.free_memory_range(Pfn(FIRST_FREE_PFN), max_pfn);
    a.setup_watermarks();
    a
}

/// After a group: per-cpu pages back, invariants hold, nothing leaked.
fn verify(a: &mut BuddyAllocator<'_>, free_at_boot: u32, what: &str) {
    a.drain_pages();
    if let Err(e) = a.check() {
        panic!("{what}: buddy invariants broken: {e:?}");
    }
    assert_eq!(a.nr_free_pages(), free_at_boot, "{what}: pages leaked");
}

/// Free pfns, lowest on top.
fn free_list_stack(m: Machine) -> Vec<u32> {
    (FIRST_FREE_PFN..m.pages).rev().collect()
}

fn bsa(m: Machine) -> FrameAllocator<BSA_ORDER> {
    let mut f = FrameAllocator::<BSA_ORDER>::new();
    f.add_frame(FIRST_FREE_PFN as usize, m.pages as usize);
    f
}

fn stack_pair(stack: &mut Vec<u32>) {
    let s = black_box(stack);
    let pfn = s.pop().expect("free-list stack empty");
    s.push(black_box(pfn));
}

fn buddy_pair(a: &mut BuddyAllocator<'_>, order: u8) {
    let block = a
        .alloc_pages(black_box(GFP), black_box(order))
        .expect("buddy: allocation failed");
    a.free_pages(black_box(block)).expect("buddy: free refused");
}

fn bsa_pair(f: &mut FrameAllocator<BSA_ORDER>, count: usize) {
    let frame = f.alloc(black_box(count)).expect("bsa: allocation failed");
    f.dealloc(black_box(frame), count);
}

/// Pops every frame, pushes them all back; returns the number of frames.
fn stack_fill(stack: &mut Vec<u32>, held: &mut Vec<u32>) -> usize {
    while let Some(pfn) = stack.pop() {
        held.push(black_box(pfn));
    }
    let n = held.len();
    while let Some(pfn) = held.pop() {
        stack.push(black_box(pfn));
    }
    n
}

fn buddy_fill(a: &mut BuddyAllocator<'_>, held: &mut Vec<PageBlock>) -> usize {
    while let Some(block) = a.alloc_pages(black_box(GFP), black_box(0)) {
        held.push(block);
    }
    let n = held.len();
    while let Some(block) = held.pop() {
        a.free_pages(black_box(block)).expect("buddy: free refused");
    }
    n
}

fn bsa_fill(f: &mut FrameAllocator<BSA_ORDER>, held: &mut Vec<usize>) -> usize {
    while let Some(frame) = f.alloc(black_box(1)) {
        held.push(frame);
    }
    let n = held.len();
    while let Some(frame) = held.pop() {
        f.dealloc(black_box(frame), 1);
    }
    n
}

/// Operations per iteration (alloc and free each count one) of the fill
/// benchmarks, keyed by benchmark id, for the per-operation metric.
type FillOps = BTreeMap<String, f64>;

fn bench_order0_pairs(c: &mut Criterion, s: &Settings, m: Machine) {
    let mut g = c.benchmark_group(format!("order0-pair-{}", m.name));
    g.warm_up_time(s.warm_up);
    let mut stack = free_list_stack(m);
    g.bench_function("stack", |b| b.iter(|| stack_pair(&mut stack)));

    let mut map = new_mem_map(m);
    let mut a = boot(&mut map);
    let free_at_boot = a.nr_free_pages();
    for (name, pcp) in [("buddy-pcp", true), ("buddy-nopcp", false)] {
        a.set_pcp_enabled(pcp);
        g.bench_function(name, |b| b.iter(|| buddy_pair(&mut a, 0)));
        verify(&mut a, free_at_boot, name);
    }
    g.finish();
}

fn bench_order_pairs(c: &mut Criterion, m: Machine) {
    let mut g = c.benchmark_group(format!("order-pair-{}", m.name));
    let mut map = new_mem_map(m);
    let mut a = boot(&mut map);
    let free_at_boot = a.nr_free_pages();
    let mut f = bsa(m);
    for order in 0..=MAX_PAGE_ORDER {
        g.bench_function(format!("buddy-o{order}"), |b| {
            b.iter(|| buddy_pair(&mut a, order))
        });
        verify(&mut a, free_at_boot, "order pairs");
        g.bench_function(format!("bsa-o{order}"), |b| {
            b.iter(|| bsa_pair(&mut f, 1 << order))
        });
    }
    g.finish();
}

fn bench_fill(c: &mut Criterion, s: &Settings, m: Machine, ops: &mut FillOps) {
    let group = format!("fill-{}", m.name);
    let mut g = c.benchmark_group(&group);
    s.fill_group(&mut g);
    // One untimed pass of each counts the pages, so that criterion's time
    // per iteration turns into a time per operation.
    let mut record = |bench: &str, pages: usize| {
        ops.insert(format!("{group}/{bench}"), 2.0 * pages as f64);
    };

    // Each allocator in its own block: its frames are freed before the next.
    {
        let mut stack = free_list_stack(m);
        let mut held = Vec::with_capacity(m.pages as usize);
        record("stack", stack_fill(&mut stack, &mut held));
        g.bench_function("stack", |b| b.iter(|| stack_fill(&mut stack, &mut held)));
    }
    {
        let mut map = new_mem_map(m);
        let mut a = boot(&mut map);
        let free_at_boot = a.nr_free_pages();
        let mut held = Vec::with_capacity(m.pages as usize);
        record("buddy", buddy_fill(&mut a, &mut held));
        g.bench_function("buddy", |b| b.iter(|| buddy_fill(&mut a, &mut held)));
        verify(&mut a, free_at_boot, "fill");
    }
    let mut f = bsa(m);
    let mut held_frames = Vec::with_capacity(m.pages as usize);
    record("bsa", bsa_fill(&mut f, &mut held_frames));
    g.bench_function("bsa", |b| b.iter(|| bsa_fill(&mut f, &mut held_frames)));
    g.finish();
}

#[derive(Clone, Copy)]
enum Goal {
    AtMost(f64),
    AtLeast(f64),
}

struct Table {
    dir: PathBuf,
    since: SystemTime,
    fill_ops: FillOps,
    met: usize,
    total: usize,
    unmeasured: usize,
}

impl Table {
    /// Mean ns per iteration, or per operation for the fill benchmarks.
    fn value(&self, id: &str) -> Option<f64> {
        let ns = mean_ns(&self.dir, id, self.since)?;
        match self.fill_ops.get(id) {
            Some(ops) => Some(ns / ops),
            None => Some(ns),
        }
    }

    fn row(&mut self, what: &str, num: Option<f64>, den: Option<f64>, goal: Goal) {
        self.total += 1;
        let target = match goal {
            Goal::AtMost(t) => format!("<= {t}x"),
            Goal::AtLeast(t) => format!(">= {t}x"),
        };
        let (Some(n), Some(d)) = (num, den) else {
            self.unmeasured += 1;
            println!("{what:<48} {:>21} {:>8} {target:>8}  n/a", "-", "-");
            return;
        };
        let ratio = n / d;
        let pass = match goal {
            Goal::AtMost(t) => ratio <= t,
            Goal::AtLeast(t) => ratio >= t,
        };
        self.met += usize::from(pass);
        let measured = format!("{} / {}", fmt_ns(n), fmt_ns(d));
        let verdict = if pass { "PASS" } else { "MISS" };
        println!("{what:<48} {measured:>21} {ratio:>7.2}x {target:>8}  {verdict}");
    }
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2}ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2}us", ns / 1e3)
    } else {
        format!("{ns:.1}ns")
    }
}

fn geomean(xs: &[Option<f64>]) -> Option<f64> {
    let logs: Option<Vec<f64>> = xs.iter().map(|x| x.map(f64::ln)).collect();
    let logs = logs?;
    Some((logs.iter().sum::<f64>() / logs.len() as f64).exp())
}

fn print_table(dir: PathBuf, since: SystemTime, fill_ops: FillOps, elapsed: Duration) {
    println!();
    println!("==================== buddy allocator: ratio table ====================");
    println!("How to read this:");
    println!("- Each row divides two means measured by criterion in this run,");
    println!("  shown as 'A / B'. Pairs are one alloc + one free, in time per pair;");
    println!("  fill rows (order-0 allocations until refused, then all freed) are");
    println!("  in time per operation (an alloc or a free).");
    println!("- 'stack' is a Vec<u32> of free pfns (pop/push): the lower bound.");
    println!("  'bsa' is buddy_system_allocator's FrameAllocator::<32>.");
    println!("- '<= Nx': the buddy allocator may cost at most N times the other");
    println!("  side; '>= Nx': it must be at least N times faster than bsa.");
    println!("- MISS is information, not failure. n/a: not measured in this run");
    println!("  (filtered out). Timings on a shared 2-core machine vary by ~10%.");
    println!("- 128MiB: 32768 pages, DMA+Normal; 4GiB: 1,048,576 pages,");
    println!("  DMA+Normal+HighMem (max_low_pfn 229376); frames from pfn 1024 (4 MiB)");
    println!("  up for every allocator. GFP_HIGHUSER throughout.");
    println!();
    println!(
        "{:<48} {:>21} {:>8} {:>8}  result",
        "metric", "measured (A / B)", "ratio", "target"
    );
    let mut t = Table {
        dir,
        since,
        fill_ops,
        met: 0,
        total: 0,
        unmeasured: 0,
    };
    for m in MACHINES {
        let n = m.name;
        let v = |t: &Table, id: String| t.value(&id);
        let stack = v(&t, format!("order0-pair-{n}/stack"));
        let pcp = v(&t, format!("order0-pair-{n}/buddy-pcp"));
        let nopcp = v(&t, format!("order0-pair-{n}/buddy-nopcp"));
        t.row(
            &format!("[{n}] order-0 pair, pcp on / stack"),
            pcp,
            stack,
            Goal::AtMost(1.5),
        );
        t.row(
            &format!("[{n}] order-0 pair, pcp off / stack"),
            nopcp,
            stack,
            Goal::AtMost(25.0),
        );
        for order in 0..=MAX_PAGE_ORDER {
            let buddy = v(&t, format!("order-pair-{n}/buddy-o{order}"));
            let other = v(&t, format!("order-pair-{n}/bsa-o{order}"));
            t.row(
                &format!("[{n}] order-{order} pair, bsa / buddy (speed-up)"),
                other,
                buddy,
                Goal::AtLeast(5.0),
            );
        }
        let fill = v(&t, format!("fill-{n}/buddy"));
        let fill_stack = v(&t, format!("fill-{n}/stack"));
        t.row(
            &format!("[{n}] fill+free per op / stack"),
            fill,
            fill_stack,
            Goal::AtMost(10.0),
        );
        let fill_bsa = v(&t, format!("fill-{n}/bsa"));
        if let (Some(b), Some(f)) = (fill_bsa, fill) {
            println!(
                "{:<48} {:>21} {:>7.2}x {:>8}  (info)",
                format!("[{n}] fill+free per op, bsa / buddy"),
                format!("{} / {}", fmt_ns(b), fmt_ns(f)),
                b / f,
                "-"
            );
        }
    }
    let (small, big) = (MACHINES[0].name, MACHINES[1].name);
    let scale = "[4GiB / 128MiB]";
    for (label, id) in [
        ("order-0 pair, pcp on", "order0-pair-{}/buddy-pcp"),
        ("order-0 pair, pcp off", "order0-pair-{}/buddy-nopcp"),
        ("fill+free per op", "fill-{}/buddy"),
    ] {
        let big_v = t.value(&id.replace("{}", big));
        let small_v = t.value(&id.replace("{}", small));
        t.row(
            &format!("{scale} {label}"),
            big_v,
            small_v,
            Goal::AtMost(1.2),
        );
    }
    let per_order = |t: &Table, n: &str| -> Vec<Option<f64>> {
        (0..=MAX_PAGE_ORDER)
            .map(|o| t.value(&format!("order-pair-{n}/buddy-o{o}")))
            .collect()
    };
    let big_orders = geomean(&per_order(&t, big));
    let small_orders = geomean(&per_order(&t, small));
    t.row(
        &format!("{scale} pairs, geomean of orders 0-10"),
        big_orders,
        small_orders,
        Goal::AtMost(1.2),
    );
    println!();
    if t.unmeasured > 0 {
        println!("({} rows not measured in this run)", t.unmeasured);
    }
    println!(
        "bench: {}/{} targets met (measured in {:.0} s)",
        t.met,
        t.total,
        elapsed.as_secs_f64()
    );
}

fn main() {
    let since = SystemTime::now();
    let start = Instant::now();
    let settings = Settings::from_env();
    let mut c = settings.criterion();
    let mut fill_ops = FillOps::new();
    for m in MACHINES {
        bench_order0_pairs(&mut c, &settings, m);
        bench_order_pairs(&mut c, m);
        bench_fill(&mut c, &settings, m, &mut fill_ops);
    }
    c.final_summary();
    // `cargo test --benches` runs each benchmark once (`--test`) and `--list`
    // none: no measurement, so no table.
    if env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    print_table(criterion_dir(), since, fill_ops, start.elapsed());
}
