//! In-kernel self-tests of what only real (or emulated) hardware can show,
//! run with `selftest` on the command line. Each prints one
//! `selftest: <name> ... ok` line; a failure takes the fatal path with a
//! `PANIC:` line naming the test and what it saw.

use super::{boot_page_directory_va, boot_stack, cpu, early_map, idt, tlb};
use crate::mm::layout::{PAGE_OFFSET, pdx, phys_to_virt, ptx, virt_to_phys};
use log::info;

/// A self-test: `Err` says what it saw instead of the expected.
type SelfTest = fn() -> Result<(), &'static str>;

/// Runs every self-test; returns how many passed (all, or it does not return).
pub fn run() -> u32 {
    let tests: [(&str, SelfTest); 5] = [
        ("paging is on with the boot page directory", paging_enabled),
        (
            "both aliases of the kernel reach the same frames",
            higher_half_alias,
        ),
        ("null page and stack guard are unmapped", holes_unmapped),
        ("early map reads physical memory", early_map_reads_physical),
        ("int3 reaches the IDT and returns", breakpoint_returns),
    ];
    for (name, test) in tests {
        match test() {
            Ok(()) => info!(target: "selftest", "{name} ... ok"),
            Err(why) => super::exit::fatal(format_args!("selftest '{name}' failed: {why}")),
        }
    }
    tests.len() as u32
}

fn paging_enabled() -> Result<(), &'static str> {
    if cpu::read_cr0() & (1 << 31) == 0 {
        return Err("CR0.PG is clear");
    }
    if cpu::read_cr3() & !0xfff != virt_to_phys(boot_page_directory_va()) {
        return Err("CR3 does not hold pa(boot_page_directory)");
    }
    Ok(())
}

/// Translates `va` through the boot page directory in software (Intel SDM
/// Vol. 3A §4.3: PDE at CR3 + 4 * pdx, PTE at PDE.frame + 4 * ptx).
/// `None` if the PDE or PTE is not present.
fn walk(va: u32) -> Option<u32> {
    let pd = boot_page_directory_va() as *const u32;
    // SAFETY: the boot page directory is a 4 KiB static; pdx(va) < 1024.
    let pde = unsafe { pd.add(pdx(va) as usize).read_volatile() };
    if pde & 1 == 0 {
        return None;
    }
    // Boot page tables live in .bss, so their physical address has a linear
    // virtual alias.
    let pt = phys_to_virt(pde & !0xfff) as *const u32;
    // SAFETY: a present boot PDE points at one of the boot page tables, which
    // are mapped; ptx(va) < 1024.
    let pte = unsafe { pt.add(ptx(va) as usize).read_volatile() };
    (pte & 1 != 0).then_some((pte & !0xfff) | (va & 0xfff))
}

static ALIAS_PROBE: spin::Mutex<u32> = spin::Mutex::new(0);

fn higher_half_alias() -> Result<(), &'static str> {
    let mut probe = ALIAS_PROBE.lock();
    let va = &mut *probe as *mut u32 as u32;
    let identity = (va - PAGE_OFFSET) as *const u32;
    for pattern in [0x5a5a_1234, 0xa5a5_4321] {
        // Volatile: the compiler must not drop or delay this store, which only
        // the read through the other alias observes.
        // SAFETY: `probe` is a valid, exclusively borrowed u32.
        unsafe { core::ptr::write_volatile(&mut *probe, pattern) };
        // SAFETY: `identity` is the identity-map alias of `probe`'s frame,
        // which the boot stub maps (PDE 0 and PDE 768 share page tables).
        let seen = unsafe { identity.read_volatile() };
        if seen != pattern {
            return Err("a write through PAGE_OFFSET was not seen through the identity map");
        }
    }
    Ok(())
}

fn holes_unmapped() -> Result<(), &'static str> {
    let (guard, _, _) = boot_stack();
    if walk(0).is_some() || walk(PAGE_OFFSET).is_some() {
        return Err("the null page is mapped");
    }
    if walk(guard).is_some() || walk(guard - PAGE_OFFSET).is_some() {
        return Err("the boot stack guard page is mapped");
    }
    let here = run as *const () as u32;
    if walk(here) != Some(virt_to_phys(here)) {
        return Err("kernel text does not translate to pa = va - PAGE_OFFSET");
    }
    Ok(())
}

static KNOWN_BYTES: [u8; 16] = *b"early-map-probe!";

fn early_map_reads_physical() -> Result<(), &'static str> {
    let va = KNOWN_BYTES.as_ptr() as u32;
    let before = tlb::flush_counts();
    let bytes = early_map::early_memremap_ro(u64::from(virt_to_phys(va)), 16)
        .map_err(|_| "early_memremap_ro failed")?;
    if bytes != KNOWN_BYTES {
        return Err("bytes read through the window differ from the kernel's copy");
    }
    if walk(bytes.as_ptr() as u32) != Some(virt_to_phys(va)) {
        return Err("window PTE does not point at the requested frame");
    }
    if tlb::flush_counts() == before {
        return Err("mapping a window slot did not flush its TLB entry");
    }
    Ok(())
}

fn breakpoint_returns() -> Result<(), &'static str> {
    let before = idt::breakpoints_caught();
    idt::expect_breakpoint();
    // SAFETY: int3 raises #BP; the handler sees it was announced and returns
    // to the next instruction with every register restored.
    unsafe { core::arch::asm!("int3") };
    if idt::breakpoints_caught() != before + 1 {
        return Err("the #BP handler did not run");
    }
    Ok(())
}
