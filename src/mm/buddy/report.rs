//! Reports in Linux's `/proc` formats (`buddyinfo`, `zoneinfo`, `vmstat`), a
//! one-line zone summary, and an OSDev-style picture of a pfn range.
//!
//! Every report writes whole lines, without the newline, to a sink taking
//! `fmt::Arguments` (as [`crate::mm::memblock::Memblock::dump`] does): the
//! kernel sends them to its log, tests collect them into strings. Nothing
//! allocates.

use super::BuddyAllocator;
use crate::addr::Pfn;
use crate::mm::page::PageFlags;
use crate::mm::zone::{MAX_PAGE_ORDER, Zone, ZoneType};
use core::fmt;

/// Labels of the diagram's order lines.
const ORDER_LABELS: [&str; MAX_PAGE_ORDER as usize + 1] = [
    "order 0:",
    "order 1:",
    "order 2:",
    "order 3:",
    "order 4:",
    "order 5:",
    "order 6:",
    "order 7:",
    "order 8:",
    "order 9:",
    "order 10:",
];

/// `"{:>6} "` per order: the counts of a `/proc/buddyinfo` line.
struct FreeCounts<'z>(&'z Zone);

impl fmt::Display for FreeCounts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for order in 0..=MAX_PAGE_ORDER {
            write!(f, "{:>6} ", self.0.free_area(order).nr_free())?;
        }
        Ok(())
    }
}

/// One character per page: `.` free, `p` on a per-cpu list, `#` anything
/// else (allocated, reserved, a hole).
struct MemoryPattern<'b, 'a> {
    buddy: &'b BuddyAllocator<'a>,
    start_pfn: u32,
    end_pfn: u32,
}

impl fmt::Display for MemoryPattern<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        for pfn in self.start_pfn..self.end_pfn {
            let c = if self.buddy.free_block_containing(Pfn(pfn)).is_some() {
                '.'
            } else if self.buddy.mem_map[pfn as usize].has(PageFlags::PCP) {
                'p'
            } else {
                '#'
            };
            f.write_char(c)?;
        }
        Ok(())
    }
}

/// One character per block of `order`, at the block's first page, spaces for
/// the rest: `.` a free block of exactly this order, `x` part of a larger
/// free block, `#` not free as a whole at this order.
struct OrderPattern<'b, 'a> {
    buddy: &'b BuddyAllocator<'a>,
    start_pfn: u32,
    end_pfn: u32,
    order: u8,
}

impl OrderPattern<'_, '_> {
    fn block_char(&self, pfn: u32) -> char {
        let head = pfn & !((1 << self.order) - 1);
        match self.buddy.free_block_containing(Pfn(head)) {
            Some((_, o)) if o == self.order => '.',
            Some((_, o)) if o > self.order => 'x',
            _ => '#',
        }
    }

    /// Whether `pfn` gets a block character: the first page of an aligned
    /// block, or the range start when it is not aligned.
    fn is_block_start(&self, pfn: u32) -> bool {
        pfn == self.start_pfn || pfn.is_multiple_of(1 << self.order)
    }

    fn nr_free(&self) -> usize {
        (self.start_pfn..self.end_pfn)
            .filter(|&pfn| self.is_block_start(pfn) && self.block_char(pfn) == '.')
            .count()
    }
}

impl fmt::Display for OrderPattern<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        for pfn in self.start_pfn..self.end_pfn {
            if self.is_block_start(pfn) {
                f.write_char(self.block_char(pfn))?;
            } else {
                f.write_char(' ')?;
            }
        }
        Ok(())
    }
}

impl BuddyAllocator<'_> {
    /// `/proc/buddyinfo`, byte for byte: one line per populated zone, the
    /// number of free blocks of each order (Linux `frag_show_print()`:
    /// `"Node %d, zone %8s "` then `"%6lu "` per order, so lines end with a
    /// space).
    ///
    /// ```text
    /// Node 0, zone      DMA      1      1      1      1      1      1      1      0      1      1      3
    /// ```
    ///
    /// (with one more space at the end of the line).
    pub fn buddyinfo(&self, mut line: impl FnMut(fmt::Arguments<'_>)) {
        for z in self.zones.iter().filter(|z| z.is_populated()) {
            line(format_args!(
                "Node 0, zone {:>8} {}",
                z.zone_type().name(),
                FreeCounts(z)
            ));
        }
    }

    /// One line per populated zone (empty zones are left out):
    /// `zone DMA: present=4096 managed=4096 free=4092 min=128 low=160
    /// high=192`, all in pages.
    pub fn zone_summary(&self, mut line: impl FnMut(fmt::Arguments<'_>)) {
        for z in self.zones.iter().filter(|z| z.is_populated()) {
            let w = z.watermark();
            line(format_args!(
                "zone {}: present={} managed={} free={} min={} low={} high={}",
                z.zone_type().name(),
                z.present_pages(),
                z.managed_pages(),
                z.free_pages(),
                w.min,
                w.low,
                w.high
            ));
        }
    }

    /// A `/proc/zoneinfo` subset for every zone, with Linux's field names and
    /// spacing (Linux `zoneinfo_show_print()`). As in Linux, an unpopulated
    /// zone stops after `managed`.
    ///
    /// ```text
    /// Node 0, zone      DMA
    ///   pages free     4092
    ///         min      128
    ///         low      160
    ///         high     192
    ///         spanned  4096
    ///         present  4096
    ///         managed  4096
    ///   pagesets
    ///     cpu: 0
    ///               count: 3
    ///               high:  24
    ///               batch: 4
    ///   start_pfn:           0
    /// ```
    pub fn zoneinfo(&self, mut line: impl FnMut(fmt::Arguments<'_>)) {
        for z in &self.zones {
            let w = z.watermark();
            line(format_args!("Node 0, zone {:>8}", z.zone_type().name()));
            line(format_args!("  pages free     {}", z.free_pages()));
            line(format_args!("        min      {}", w.min));
            line(format_args!("        low      {}", w.low));
            line(format_args!("        high     {}", w.high));
            line(format_args!("        spanned  {}", z.spanned_pages()));
            line(format_args!("        present  {}", z.present_pages()));
            line(format_args!("        managed  {}", z.managed_pages()));
            if !z.is_populated() {
                continue;
            }
            let pcp = z.pcp();
            line(format_args!("  pagesets"));
            line(format_args!("    cpu: 0"));
            line(format_args!("              count: {}", pcp.count()));
            line(format_args!("              high:  {}", pcp.high()));
            line(format_args!("              batch: {}", pcp.batch()));
            line(format_args!("  start_pfn:           {}", z.start_pfn()));
        }
    }

    /// `/proc/vmstat` lines for the page allocator: `nr_free_pages`,
    /// `pgalloc_dma`, `pgalloc_normal`, `pgalloc_high`, `pgfree` (Linux
    /// names), then this kernel's own `pcp_refills`, `pcp_drains` and
    /// `alloc_failures`. Format `"name value"`.
    pub fn vmstat(&self, mut line: impl FnMut(fmt::Arguments<'_>)) {
        let v = &self.vmstat;
        line(format_args!("nr_free_pages {}", self.nr_free_pages()));
        line(format_args!(
            "pgalloc_dma {}",
            v.pgalloc[ZoneType::Dma.index()]
        ));
        line(format_args!(
            "pgalloc_normal {}",
            v.pgalloc[ZoneType::Normal.index()]
        ));
        line(format_args!(
            "pgalloc_high {}",
            v.pgalloc[ZoneType::HighMem.index()]
        ));
        line(format_args!("pgfree {}", v.pgfree));
        line(format_args!("pcp_refills {}", v.pcp_refills));
        line(format_args!("pcp_drains {}", v.pcp_drains));
        line(format_args!("alloc_failures {}", v.alloc_failures));
    }

    /// A picture of pfn `[start_pfn, end_pfn)` in the style of the OSDev wiki
    /// buddy figure, one column per page: first the memory pattern (`.` free,
    /// `#` used or reserved, `p` on a per-cpu list), then a line per order
    /// from 0 to the largest that fits the range (at most
    /// [`MAX_PAGE_ORDER`]), each block drawn at its first page: `.` a free
    /// block of that order, `x` inside a larger free block, `#` not free
    /// whole; then the number of free blocks of that order in the range.
    ///
    /// The OSDev example before allocating 12K (pfn `[0, 40)`):
    ///
    /// ```text
    /// memory:   ###.#....#........#...###...########....
    /// order 0:  ###.#.xx.#xxxxxxxx#.xx###.xx########xxxx  5 free
    /// order 1:  # # # . # . x x . # . # # . # # # # x x   5 free
    /// order 2:  #   #   #   .   #   #   #   #   #   .     2 free
    /// order 3:  #       #       #       #       #         0 free
    /// order 4:  #               #               #         0 free
    /// order 5:  #                               #         0 free
    /// ```
    ///
    /// `end_pfn` is clamped to `max_pfn`; an empty range prints nothing.
    pub fn diagram(&self, start_pfn: Pfn, end_pfn: Pfn, mut line: impl FnMut(fmt::Arguments<'_>)) {
        let (start_pfn, end_pfn) = (start_pfn.0, end_pfn.min(self.max_pfn()).0);
        if start_pfn >= end_pfn {
            return;
        }
        line(format_args!(
            "{:<10}{}",
            "memory:",
            MemoryPattern {
                buddy: self,
                start_pfn,
                end_pfn,
            }
        ));
        let top = (31 - (end_pfn - start_pfn).leading_zeros()).min(u32::from(MAX_PAGE_ORDER));
        for order in 0..=top as u8 {
            let p = OrderPattern {
                buddy: self,
                start_pfn,
                end_pfn,
                order,
            };
            line(format_args!(
                "{:<10}{}  {} free",
                ORDER_LABELS[order as usize],
                p,
                p.nr_free()
            ));
        }
    }
}
