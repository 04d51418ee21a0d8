//! Host benchmarks of the zoned buddy page allocator (`make bench`,
//! `make bench-ir`), the workloads of issue 15.
//!
//! Two machines' worth of page frames, each booted the way the kernel does it
//! (`new` → `mark_present` → `free_memory_range` from 4 MiB up →
//! `setup_watermarks`):
//! - 128 MiB: 32768 pages, zones DMA + Normal;
//! - 4 GiB: 1,048,576 pages (an 8 MiB `mem_map`), DMA + Normal + HighMem with
//!   `max_low_pfn` 229376 (896 MiB).
//!
//! Workloads, on each machine, with `GFP_HIGHUSER` (HighMem → Normal → DMA):
//! - order-0 pair (one alloc + one free) with per-cpu lists (`pcp`), without
//!   (`nopcp`, its own allocator with the lists turned off), and on the
//!   floor, `stack`: a `Vec<u32>` of free pfns, pop to allocate, push to
//!   free (no orders, zones, descriptors or checks);
//! - a pair at each order 0..=10 against `buddy_system_allocator`'s
//!   `FrameAllocator::<32>` (`bsa`: free lists as `BTreeSet`s, no per-page
//!   descriptors); per-cpu lists on (they serve order 0 only);
//! - fill and free: order-0 allocations until the allocator refuses (the
//!   zones' `min` watermarks for the buddy allocator, empty for the
//!   others), then every page freed in a random order: the held blocks are
//!   shuffled between the two phases (untimed, `rand`'s `shuffle` with a
//!   seeded xorshift, the same permutation every time), so frees touch the
//!   descriptors in no useful order, as a long-running kernel does. Per
//!   operation (an alloc or a free), against `stack` and `bsa`; both
//!   machines' sides run in the same repetitions, so the 4 GiB/128 MiB
//!   ratio of "buddy / stack" is paired too.
//!
//! Every allocator gets the same frames: pfn 1024 up to the machine's end
//! ([`FIRST_FREE_PFN`]). After the comparisons, every buddy allocator is
//! checked (`drain_pages`, `check`, no page leaked).
//!
//! Measurement (see `common`): wall-clock ratios from paired repetitions
//! in one run (median, min-max), and instructions per operation from
//! callgrind, counting only the measured operations. The table lists each
//! target of issue 15 with PASS/MISS (a miss is information, not an error),
//! then information rows, then every instruction count.
//!
//! `BENCH_QUICK=1`: a smoke run (few repetitions, instruction counts on the
//! 128 MiB machine only, fewer operations). `-- --ir-only`: instruction
//! counts only (`make bench-ir`). `cargo test --benches`: every workload
//! once, checked, no table.

mod common;

use buddy_system_allocator::FrameAllocator;
use common::Plan;
use common::ir::{self, IrCount};
use common::paired::{self, Outcome, Stats, timed};
use common::report::{self, Goal, Table, fmt_ns};
use kernel::addr::Pfn;
use kernel::mm::buddy::{BuddyAllocator, PageBlock};
use kernel::mm::gfp::{GFP_HIGHUSER, Gfp};
use kernel::mm::page::Page;
use kernel::mm::zone::{DEFAULT_MAX_LOW_PFN, MAX_PAGE_ORDER, ZoneType};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xorshift::XorShiftRng;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Every allocation: HighMem first, falling back to Normal then DMA, so that
/// all zones of both machines are used; failures (the end of a fill) are
/// expected, so they are not recorded as warnings.
const GFP: Gfp = GFP_HIGHUSER.union(Gfp::NOWARN);

/// The first 4 MiB stay reserved (the PC's first MiB, the kernel image and
/// early allocations above it). Starting at an order-10 boundary makes the
/// comparison like for like: every allocator starts from whole order-10
/// blocks and splits and merges the same number of levels per order.
const FIRST_FREE_PFN: u32 = 1024;

/// `FrameAllocator::<BSA_ORDER>`: orders up to 31, as in the crate's examples.
const BSA_ORDER: usize = 32;

/// Seed of the free order of the fills.
const SHUFFLE_SEED: u64 = 0x5DEE_CE66_D1CE_4E5B;

/// Pairs counted per instruction-count workload (full run, smoke run).
const IR_PAIRS: u64 = 20_000;
const IR_PAIRS_QUICK: u64 = 2_000;

/// Issue 15's targets.
const PCP_VS_STACK: f64 = 2.0;
const NOPCP_IR: f64 = 417.0;
const NOPCP_VS_STACK: f64 = 36.0;
const ORDERS_GEOMEAN: f64 = 5.0;
const ORDERS_WORST: f64 = 2.0;
const FILL_VS_STACK: f64 = 10.0;
const FILL_4G_VS_128M: f64 = 1.2;

#[derive(Clone, Copy)]
struct Machine {
    /// Used in names.
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

fn machine(name: &str) -> Machine {
    *MACHINES
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no machine {name}"))
}

fn no_zero(_pfn: Pfn, _nr_pages: u32) {}

fn new_mem_map(m: Machine) -> Vec<Page> {
    vec![Page::reserved(ZoneType::Dma); m.pages as usize]
}

/// The kernel's bring-up sequence over `mem_map`: all RAM present, all of it
/// from [`FIRST_FREE_PFN`] up handed off free.
fn boot(mem_map: &mut [Page]) -> BuddyAllocator<'_> {
    let max_pfn = Pfn(u32::try_from(mem_map.len()).expect("mem_map too large"));
    let mut a = BuddyAllocator::new(mem_map, DEFAULT_MAX_LOW_PFN, no_zero);
    a.mark_present(Pfn(0), max_pfn);
    a.free_memory_range(Pfn(FIRST_FREE_PFN), max_pfn);
    a.setup_watermarks();
    a
}

/// After a comparison: per-cpu pages back, invariants hold, nothing leaked.
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

// ---- the measured operations ---------------------------------------------

fn stack_pairs(stack: &mut Vec<u32>, n: u64) {
    for _ in 0..n {
        let s = black_box(&mut *stack);
        let pfn = s.pop().expect("free-list stack empty");
        s.push(black_box(pfn));
    }
}

fn buddy_pairs(a: &mut BuddyAllocator<'_>, order: u8, n: u64) {
    for _ in 0..n {
        let block = a
            .alloc_pages(black_box(GFP), black_box(order))
            .expect("buddy: allocation failed");
        a.free_pages(black_box(block)).expect("buddy: free refused");
    }
}

fn bsa_pairs(f: &mut FrameAllocator<BSA_ORDER>, order: u8, n: u64) {
    let count = 1usize << order;
    for _ in 0..n {
        let frame = f.alloc(black_box(count)).expect("bsa: allocation failed");
        f.dealloc(black_box(frame), count);
    }
}

/// An allocator of single frames for the fill: allocate until refused,
/// then free what is held.
trait Fill {
    type Held;
    fn fill(&mut self, held: &mut Vec<Self::Held>);
    /// Frees `held` front to back, emptying it.
    fn free_all(&mut self, held: &mut Vec<Self::Held>);
}

impl Fill for Vec<u32> {
    type Held = u32;
    fn fill(&mut self, held: &mut Vec<u32>) {
        while let Some(pfn) = self.pop() {
            held.push(black_box(pfn));
        }
    }
    fn free_all(&mut self, held: &mut Vec<u32>) {
        for pfn in held.drain(..) {
            self.push(black_box(pfn));
        }
    }
}

impl Fill for BuddyAllocator<'_> {
    type Held = PageBlock;
    fn fill(&mut self, held: &mut Vec<PageBlock>) {
        while let Some(block) = self.alloc_pages(black_box(GFP), black_box(0)) {
            held.push(block);
        }
    }
    fn free_all(&mut self, held: &mut Vec<PageBlock>) {
        for block in held.drain(..) {
            self.free_pages(black_box(block))
                .expect("buddy: free refused");
        }
    }
}

impl Fill for FrameAllocator<BSA_ORDER> {
    type Held = usize;
    fn fill(&mut self, held: &mut Vec<usize>) {
        while let Some(frame) = self.alloc(black_box(1)) {
            held.push(frame);
        }
    }
    fn free_all(&mut self, held: &mut Vec<usize>) {
        for frame in held.drain(..) {
            self.dealloc(black_box(frame), 1);
        }
    }
}

/// The untimed step between a fill and its frees: the same permutation
/// every time for the same number of blocks.
fn shuffle<T>(held: &mut [T]) {
    held.shuffle(&mut XorShiftRng::seed_from_u64(SHUFFLE_SEED));
}

/// `iters` fills, each freed in random order: the time of the fills and
/// frees (not of the shuffles) and the operations done.
fn fill_free_timed<F: Fill>(f: &mut F, held: &mut Vec<F::Held>, iters: u64) -> (Duration, u64) {
    let mut d = Duration::ZERO;
    let mut ops = 0;
    for _ in 0..iters {
        d += timed(|| f.fill(held));
        ops += 2 * held.len() as u64;
        shuffle(held);
        d += timed(|| f.free_all(held));
    }
    (d, ops)
}

// ---- wall-clock comparisons ----------------------------------------------

/// Order-0 pairs: floor, per-cpu lists on, off (each buddy side its own
/// allocator on the same frames).
fn compare_order0(plan: &Plan, m: Machine) -> Outcome {
    let mut stack = free_list_stack(m);
    let (mut map_on, mut map_off) = (new_mem_map(m), new_mem_map(m));
    let mut on = boot(&mut map_on);
    let mut off = boot(&mut map_off);
    off.set_pcp_enabled(false);
    let free_at_boot = on.nr_free_pages();
    let out = paired::compare(
        &plan.pairs(),
        &["stack", "pcp", "nopcp"],
        |side, n| match side {
            0 => (timed(|| stack_pairs(&mut stack, n)), 2 * n),
            1 => (timed(|| buddy_pairs(&mut on, 0, n)), 2 * n),
            _ => (timed(|| buddy_pairs(&mut off, 0, n)), 2 * n),
        },
    );
    verify(&mut on, free_at_boot, "order-0 pairs, pcp on");
    verify(&mut off, free_at_boot, "order-0 pairs, pcp off");
    out
}

fn order_names() -> Vec<String> {
    (0..=MAX_PAGE_ORDER)
        .flat_map(|o| [format!("buddy-o{o}"), format!("bsa-o{o}")])
        .collect()
}

/// Pairs at every order, buddy (per-cpu lists on) and bsa, all in each
/// repetition (so that the geometric mean is per repetition too).
fn compare_orders(plan: &Plan, m: Machine) -> Outcome {
    let mut map = new_mem_map(m);
    let mut a = boot(&mut map);
    let free_at_boot = a.nr_free_pages();
    let mut f = bsa(m);
    let names = order_names();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let out = paired::compare(&plan.pairs(), &names, |side, n| {
        let order = (side / 2) as u8;
        if side % 2 == 0 {
            (timed(|| buddy_pairs(&mut a, order, n)), 2 * n)
        } else {
            (timed(|| bsa_pairs(&mut f, order, n)), 2 * n)
        }
    });
    verify(&mut a, free_at_boot, "order pairs");
    out
}

/// One machine's three fill contestants.
struct FillSides<'m> {
    stack: Vec<u32>,
    stack_held: Vec<u32>,
    buddy: BuddyAllocator<'m>,
    buddy_held: Vec<PageBlock>,
    free_at_boot: u32,
    bsa: FrameAllocator<BSA_ORDER>,
    bsa_held: Vec<usize>,
}

impl<'m> FillSides<'m> {
    fn new(m: Machine, map: &'m mut [Page]) -> FillSides<'m> {
        let buddy = boot(map);
        let n = m.pages as usize;
        FillSides {
            stack: free_list_stack(m),
            stack_held: Vec::with_capacity(n),
            free_at_boot: buddy.nr_free_pages(),
            buddy,
            buddy_held: Vec::with_capacity(n),
            bsa: bsa(m),
            bsa_held: Vec::with_capacity(n),
        }
    }

    fn run(&mut self, which: usize, iters: u64) -> (Duration, u64) {
        match which {
            0 => fill_free_timed(&mut self.stack, &mut self.stack_held, iters),
            1 => fill_free_timed(&mut self.buddy, &mut self.buddy_held, iters),
            _ => fill_free_timed(&mut self.bsa, &mut self.bsa_held, iters),
        }
    }
}

/// Fill and free in random order on `machines`, all in each repetition.
fn compare_fill(plan: &Plan, machines: &[Machine]) -> Outcome {
    let mut maps: Vec<Vec<Page>> = machines.iter().map(|&m| new_mem_map(m)).collect();
    let mut sides: Vec<FillSides<'_>> = machines
        .iter()
        .zip(maps.iter_mut())
        .map(|(&m, map)| FillSides::new(m, map))
        .collect();
    let names: Vec<String> = machines
        .iter()
        .flat_map(|m| ["stack", "buddy", "bsa"].map(|s| format!("{s}-{}", m.name)))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let out = paired::compare(&plan.fills(), &names, |side, n| {
        sides[side / 3].run(side % 3, n)
    });
    for (s, m) in sides.iter_mut().zip(machines) {
        verify(&mut s.buddy, s.free_at_boot, &format!("fill {}", m.name));
    }
    out
}

struct Wall {
    order0: BTreeMap<&'static str, Outcome>,
    orders: BTreeMap<&'static str, Outcome>,
    fill: Outcome,
}

fn run_wall(plan: &Plan) -> Wall {
    let mut order0 = BTreeMap::new();
    let mut orders = BTreeMap::new();
    for m in MACHINES {
        eprintln!("bench buddy: order-0 pairs, {}", m.name);
        order0.insert(m.name, compare_order0(plan, m));
        eprintln!("bench buddy: pairs at orders 0-10, {}", m.name);
        orders.insert(m.name, compare_orders(plan, m));
    }
    // `cargo test --benches` runs the debug build: the 4 GiB fill (seconds
    // per fill there, more for bsa) is left to the benchmark runs.
    let fill_machines: &[Machine] = if plan.test { &MACHINES[..1] } else { &MACHINES };
    eprintln!("bench buddy: fill and free in random order");
    let fill = compare_fill(plan, fill_machines);
    Wall {
        order0,
        orders,
        fill,
    }
}

// ---- instruction counts --------------------------------------------------

/// The instruction-count workloads: `<machine>/<workload>/<allocator>`.
fn ir_workloads(plan: &Plan) -> Vec<String> {
    let machines: &[Machine] = if plan.quick {
        &MACHINES[..1]
    } else {
        &MACHINES
    };
    let mut w = Vec::new();
    for m in machines {
        let n = m.name;
        for s in ["stack", "pcp", "nopcp"] {
            w.push(format!("{n}/order0/{s}"));
        }
        for s in ["stack", "buddy"] {
            w.push(format!("{n}/fill/{s}"));
        }
    }
    // Per order and bsa's fill on the small machine only: the counts at
    // 4 GiB differ by a few instructions (HighMem is there to serve
    // GFP_HIGHUSER first), and every run there boots 1M descriptors under
    // callgrind.
    let n = MACHINES[0].name;
    for o in 0..=MAX_PAGE_ORDER {
        w.push(format!("{n}/o{o}/buddy"));
        w.push(format!("{n}/o{o}/bsa"));
    }
    w.push(format!("{n}/fill/bsa"));
    w
}

/// Sets up workload `name`, warms it up, runs `pairs` pairs (or one fill
/// and free) inside [`ir::bench_ir_measured`]; returns the operations
/// measured (allocs + frees: two per pair).
fn ir_workload(name: &str, pairs: u64) -> u64 {
    let parts: Vec<&str> = name.split('/').collect();
    let [m, what, who] = parts[..] else {
        panic!("bad workload name {name}");
    };
    let m = machine(m);
    if what == "fill" {
        fn fill_measured<F: Fill>(f: &mut F, held: &mut Vec<F::Held>) -> u64 {
            // Warm-up: one whole fill and free, then the counted one, its
            // shuffle outside the counted regions.
            fill_free_timed(f, held, 1);
            ir::bench_ir_measured(|| f.fill(held));
            let ops = 2 * held.len() as u64;
            shuffle(held);
            ir::bench_ir_measured(|| f.free_all(held));
            ops
        }
        let n = m.pages as usize;
        return match who {
            "stack" => fill_measured(&mut free_list_stack(m), &mut Vec::with_capacity(n)),
            "buddy" => {
                let mut map = new_mem_map(m);
                let mut a = boot(&mut map);
                let free_at_boot = a.nr_free_pages();
                let ops = fill_measured(&mut a, &mut Vec::with_capacity(n));
                verify(&mut a, free_at_boot, name);
                ops
            }
            "bsa" => fill_measured(&mut bsa(m), &mut Vec::with_capacity(n)),
            _ => panic!("bad workload name {name}"),
        };
    }
    let warm = pairs.min(1000);
    if what == "order0" && who == "stack" {
        let mut s = free_list_stack(m);
        stack_pairs(&mut s, warm);
        ir::bench_ir_measured(|| stack_pairs(&mut s, pairs));
        return 2 * pairs;
    }
    let (order, bsa_side, pcp) = match (what, who) {
        ("order0", "pcp") => (0, false, true),
        ("order0", "nopcp") => (0, false, false),
        (o, side) => {
            let order = o
                .strip_prefix('o')
                .and_then(|o| o.parse::<u8>().ok())
                .unwrap_or_else(|| panic!("bad workload name {name}"));
            (order, side == "bsa", true)
        }
    };
    if bsa_side {
        let mut f = bsa(m);
        bsa_pairs(&mut f, order, warm);
        ir::bench_ir_measured(|| bsa_pairs(&mut f, order, pairs));
    } else {
        let mut map = new_mem_map(m);
        let mut a = boot(&mut map);
        let free_at_boot = a.nr_free_pages();
        a.set_pcp_enabled(pcp);
        buddy_pairs(&mut a, order, warm);
        ir::bench_ir_measured(|| buddy_pairs(&mut a, order, pairs));
        verify(&mut a, free_at_boot, name);
    }
    2 * pairs
}

type IrCounts = BTreeMap<String, IrCount>;

// ---- the table -----------------------------------------------------------

fn geomean(xs: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x.ln(), n + 1));
    (sum / n as f64).exp()
}

fn ns_pair(out: &Outcome, a: &str, b: &str) -> String {
    format!(
        "{} / {}",
        fmt_ns(out.ns(a).median),
        fmt_ns(out.ns(b).median)
    )
}

fn ir_pair(a: Option<IrCount>, b: Option<IrCount>) -> (String, Option<f64>) {
    match (a, b) {
        (Some(a), Some(b)) => (
            format!("{:.1} / {:.1} Ir", a.per_op(), b.per_op()),
            Some(a.per_op() / b.per_op()),
        ),
        _ => ("-".to_string(), None),
    }
}

fn print_table(plan: &Plan, wall: Option<&Wall>, ir: Option<&IrCounts>, seconds: f64) {
    let wall_how = paired::how(wall.map(|w| (w.order0[MACHINES[0].name].reps(), w.fill.reps())));
    let ir_how = ir::how(ir.is_some());
    report::header(
        "buddy allocator: issue 15 targets",
        &format!(
            "{wall_how}; {ir_how}{}\n\
             A / B: medians of A's and B's time per operation (an alloc or a free; a\n\
             pair is two) or instructions per operation; value: the ratio's median\n\
             over repetitions (per repetition for wall-clock), min-max its range.\n\
             stack: Vec<u32> of free pfns (the floor); bsa: buddy_system_allocator's\n\
             FrameAllocator::<32>. Frames from pfn 1024 up for every allocator;\n\
             GFP_HIGHUSER. A MISS is information, not failure.",
            if plan.quick {
                " (BENCH_QUICK smoke run)"
            } else {
                ""
            }
        ),
    );
    let mut t = Table::start(wall.is_none());
    let irc = |k: String| ir.and_then(|c| c.get(&k).copied());
    for m in MACHINES {
        let n = m.name;
        t.section(&format!("{n}: {} frames", m.pages));
        let o0 = wall.map(|w| &w.order0[n]);
        let (detail, ratio) = ir_pair(
            irc(format!("{n}/order0/pcp")),
            irc(format!("{n}/order0/stack")),
        );
        t.value(
            &format!("[{n}] order-0 pair, pcp on / stack (Ir)"),
            &detail,
            ratio,
            "x",
            Goal::AtMost(PCP_VS_STACK),
        );
        stats_row(
            &mut t,
            &format!("[{n}] order-0 pair, pcp on / stack (wall)"),
            o0.map(|o| (ns_pair(o, "pcp", "stack"), o.ratio("pcp", "stack"))),
            "x",
            Goal::AtMost(PCP_VS_STACK),
        );
        let nopcp = irc(format!("{n}/order0/nopcp"));
        t.value(
            &format!("[{n}] order-0 pair, pcp off (Ir per op)"),
            &nopcp.map_or("-".into(), |c| format!("{:.1} Ir", c.per_op())),
            nopcp.map(|c| c.per_op()),
            "",
            Goal::AtMost(NOPCP_IR),
        );
        stats_row(
            &mut t,
            &format!("[{n}] order-0 pair, pcp off / stack (wall)"),
            o0.map(|o| (ns_pair(o, "nopcp", "stack"), o.ratio("nopcp", "stack"))),
            "x",
            Goal::AtMost(NOPCP_VS_STACK),
        );
        let ords = wall.map(|w| &w.orders[n]);
        let speedup =
            |t: &dyn Fn(&str) -> f64, o: u8| t(&format!("bsa-o{o}")) / t(&format!("buddy-o{o}"));
        stats_row(
            &mut t,
            &format!("[{n}] pairs, bsa / buddy, geomean of orders 0-10 (wall)"),
            ords.map(|o| {
                (
                    "speed-up".to_string(),
                    o.per_rep(|t| geomean((0..=MAX_PAGE_ORDER).map(|k| speedup(t, k)))),
                )
            }),
            "x",
            Goal::AtLeast(ORDERS_GEOMEAN),
        );
        stats_row(
            &mut t,
            &format!("[{n}] pairs, bsa / buddy, slowest order (wall)"),
            ords.map(|o| {
                let worst = (0..=MAX_PAGE_ORDER)
                    .min_by(|&a, &b| {
                        let (a, b) = (o.per_rep(|t| speedup(t, a)), o.per_rep(|t| speedup(t, b)));
                        a.median.total_cmp(&b.median)
                    })
                    .expect("orders");
                (
                    format!("order {worst} (per rep)"),
                    o.per_rep(|t| {
                        (0..=MAX_PAGE_ORDER)
                            .map(|k| speedup(t, k))
                            .fold(f64::INFINITY, f64::min)
                    }),
                )
            }),
            "x",
            Goal::AtLeast(ORDERS_WORST),
        );
        let fill = wall;
        stats_row(
            &mut t,
            &format!("[{n}] fill, free in random order, per op / stack (wall)"),
            fill.map(|w| {
                let (b, s) = (format!("buddy-{n}"), format!("stack-{n}"));
                (ns_pair(&w.fill, &b, &s), w.fill.ratio(&b, &s))
            }),
            "x",
            Goal::AtMost(FILL_VS_STACK),
        );
    }
    let (small, big) = (MACHINES[0].name, MACHINES[1].name);
    t.section("4GiB against 128MiB, each against its own floor");
    stats_row(
        &mut t,
        "fill random: (buddy/stack at 4GiB) / (at 128MiB) (wall)",
        wall.map(|w| {
            let rel = |t: &dyn Fn(&str) -> f64, n: &str| {
                t(&format!("buddy-{n}")) / t(&format!("stack-{n}"))
            };
            (
                "per rep".to_string(),
                w.fill.per_rep(|t| rel(t, big) / rel(t, small)),
            )
        }),
        "x",
        Goal::AtMost(FILL_4G_VS_128M),
    );

    t.section("information (no target)");
    for m in MACHINES {
        let n = m.name;
        for o in 0..=MAX_PAGE_ORDER {
            let (b, f) = (format!("buddy-o{o}"), format!("bsa-o{o}"));
            stats_row(
                &mut t,
                &format!("[{n}] order-{o} pair, bsa / buddy (wall)"),
                wall.map(|w| {
                    let o = &w.orders[n];
                    (ns_pair(o, &f, &b), o.ratio(&f, &b))
                }),
                "x",
                Goal::Info,
            );
            // Counted on the small machine only (see `ir_workloads`).
            if n != MACHINES[0].name {
                continue;
            }
            let (detail, ratio) =
                ir_pair(irc(format!("{n}/o{o}/bsa")), irc(format!("{n}/o{o}/buddy")));
            t.value(
                &format!("[{n}] order-{o} pair, bsa / buddy (Ir)"),
                &detail,
                ratio,
                "x",
                Goal::Info,
            );
        }
        if n == MACHINES[0].name {
            let speedups: Option<Vec<f64>> = (0..=MAX_PAGE_ORDER)
                .map(|o| ir_pair(irc(format!("{n}/o{o}/bsa")), irc(format!("{n}/o{o}/buddy"))).1)
                .collect();
            t.value(
                &format!("[{n}] pairs, bsa / buddy, geomean of orders 0-10 (Ir)"),
                "speed-up",
                speedups.map(|v| geomean(v.into_iter())),
                "x",
                Goal::Info,
            );
        }
        let (detail, ratio) = ir_pair(
            irc(format!("{n}/order0/nopcp")),
            irc(format!("{n}/order0/stack")),
        );
        t.value(
            &format!("[{n}] order-0 pair, pcp off / stack (Ir)"),
            &detail,
            ratio,
            "x",
            Goal::Info,
        );
        let (detail, ratio) = ir_pair(
            irc(format!("{n}/fill/buddy")),
            irc(format!("{n}/fill/stack")),
        );
        t.value(
            &format!("[{n}] fill random, per op, buddy / stack (Ir)"),
            &detail,
            ratio,
            "x",
            Goal::Info,
        );
        stats_row(
            &mut t,
            &format!("[{n}] fill random, per op, bsa / buddy (wall)"),
            wall.map(|w| {
                let (f, b) = (format!("bsa-{n}"), format!("buddy-{n}"));
                (ns_pair(&w.fill, &f, &b), w.fill.ratio(&f, &b))
            }),
            "x",
            Goal::Info,
        );
    }
    t.finish("buddy", seconds);
    if let Some(ir) = ir {
        print_ir(ir);
    }
}

fn stats_row(t: &mut Table, label: &str, v: Option<(String, Stats)>, unit: &str, goal: Goal) {
    match v {
        Some((detail, s)) => t.stats(label, &detail, s, unit, goal),
        None => t.value(label, "-", None, unit, goal),
    }
}

fn print_ir(ir: &IrCounts) {
    println!();
    println!(
        "buddy: instructions per operation (callgrind Ir; an operation is an alloc or a free)"
    );
    for (name, c) in ir {
        println!(
            "  {name:<24} {:>10.1}   ({} Ir / {} ops)",
            c.per_op(),
            c.ir,
            c.ops
        );
    }
}

fn main() {
    if let Some(w) = ir::child_workload() {
        let pairs = if common::quick_env() {
            IR_PAIRS_QUICK
        } else {
            IR_PAIRS
        };
        ir::report_ops(ir_workload(&w, pairs));
        return;
    }
    let start = Instant::now();
    let plan = Plan::from_env();
    let wall = plan.wall.then(|| run_wall(&plan));
    if plan.test {
        // The instruction-count workloads in this process (no callgrind),
        // so that `cargo test --benches` checks them too.
        for w in ir_workloads(&plan) {
            assert!(ir_workload(&w, 10) > 0, "{w}: no operations");
        }
        println!("bench buddy: test mode, every workload ran once and was checked");
        return;
    }
    let ir = plan.ir.then(|| {
        eprintln!("bench buddy: instruction counts under callgrind");
        ir::count_all(&ir_workloads(&plan))
            .inspect_err(|e| eprintln!("bench buddy: no instruction counts: {e}"))
            .ok()
    });
    print_table(
        &plan,
        wall.as_ref(),
        ir.flatten().as_ref(),
        start.elapsed().as_secs_f64(),
    );
}
