/*
 * boot/entry.S: from the loader's hand-off to Rust, on any i386-class CPU.
 *
 * Machine state on entry (Multiboot2 spec §3.3 "I386 machine state";
 * Multiboot 0.6.96 §3.2 "Machine state"):
 *   EAX = 0x36D76289 (Multiboot2) or 0x2BADB002 (Multiboot 1)
 *   EBX = physical address of the boot information structure
 *   CS/DS/ES/SS = flat 4 GiB segments of some loader GDT that we must not
 *   reload from; CR0.PE = 1, CR0.PG = 0, EFLAGS.IF = 0; ESP undefined.
 *
 * What it does, in order:
 *   1. zero .bss (holds the page tables and the stack built below);
 *   2. fill the boot page tables: physical [0x1000, BOOT_MAP_LIMIT) page by
 *      page, leaving page 0 (null pointers) and the stack guard page unmapped:
 *      the kernel image plus room for memblock's first allocations (Linux
 *      head_32.S likewise maps beyond _end);
 *   3. install those tables twice in the page directory, at PDE 0 (identity)
 *      and at PDE 768 (PAGE_OFFSET), plus the early map window's table;
 *   4. load CR3, set CR0.PG, jump to the higher half;
 *   5. switch to the boot stack and call kernel_entry(magic, info_pa).
 *
 * The mapping after step 3 (BOOT_PAGE_TABLES = 4 tables, 16 MiB):
 *
 *   boot_page_directory                    boot_page_tables
 *   PDE    0  VA 0x0000_0000 --+---------> table 0: PTE i -> PA i * 4 KiB
 *   PDE    1  VA 0x0040_0000 --|-+-------> table 1: PTE i -> PA 4 MiB + i * 4 KiB
 *   PDE    2, 3 (8, 12 MiB)    | |  ...    tables 2, 3 likewise, up to 16 MiB
 *   PDE  768  VA 0xC000_0000 --+ |           (PTE 0 of table 0 and the guard
 *   PDE  769  VA 0xC040_0000 ----+            page's PTE are 0: not present)
 *   PDE  770, 771              -> tables 2, 3
 *   PDE 1022  VA 0xFF80_0000 -----------> boot_early_map_table (empty; filled by
 *   every other PDE: 0 (not present)         src/arch/x86/early_map.rs)
 *
 * It uses no CR4 bit and no 4 MiB page (PSE is a Pentium feature; a 386 has
 * no CR4 at all), only 4 KiB pages, so it is correct on a 386 or 486.
 * The identity half is kept until the final page directory replaces this one.
 *
 * References: Intel SDM Vol. 3A §4.3 "32-Bit Paging" (PDE/PTE formats,
 * CR3), §2.5 "Control Registers" (CR0.PG); Linux arch/x86/kernel/head_32.S
 * (the same two-alias scheme, its pa() macro).
 *
 * Constants (PAGE_OFFSET, BOOT_PAGE_TABLES, EARLY_MAP_PDE ...) come from
 * src/mm/layout.rs through the global_asm! operands in src/main.rs, and so do
 * the entry bits: PTE_FLAGS and PDE_FLAGS (present, writable; Intel SDM
 * Vol. 3A Tables 4-5, 4-6) are src/mm/paging.rs's BOOT_PTE_FLAGS and
 * BOOT_PDE_FLAGS, computed from the x86 crate's PTFlags/PDFlags that the
 * early map and the final page tables use too.
 * (No braces in this file: it is a Rust global_asm! template.)
 */

    .set BOOT_STACK_SIZE, 64 * 1024

/* ======================================================================== */
/* Runs before paging: linked at its physical address (see linker.ld).      */
/* ======================================================================== */
    .section .boot.text, "ax"
    .code32
    .globl _start
    .type _start, @function
_start:
    /* Interrupts are off per the spec; make sure, and make string
     * instructions count upwards. */
    cli
    cld

    /* Keep magic and info pointer: ESI and EBX are not touched below. */
    movl %eax, %esi

    /* 1. Zero .bss. A Multiboot loader zero-fills p_memsz > p_filesz, but
     * not every loader does, and the page tables below must start at 0.
     * Addresses are physical: (sym - PAGE_OFFSET) is Linux's pa(sym). */
    movl $(__bss_start - PAGE_OFFSET), %edi
    movl $(__bss_end - PAGE_OFFSET), %ecx
    subl %edi, %ecx
    xorl %eax, %eax
    rep stosb

    /* 2. Fill the boot page tables. The tables are contiguous, so table t,
     * entry i is simply entry t * 1024 + i: one loop over physical pages.
     * EDX = physical address of the page, EDI = its PTE. */
    movl $PAGE_SIZE, %edx                   /* start at page 1: page 0 stays unmapped */
    movl $(boot_page_tables - PAGE_OFFSET + 4), %edi
1:
    /* The page under the boot stack is the guard: left not-present, so a
     * stack overflow faults instead of silently overwriting .bss. */
    cmpl $(boot_stack_guard - PAGE_OFFSET), %edx
    je 2f
    movl %edx, %eax
    orl $PTE_FLAGS, %eax
    movl %eax, (%edi)
2:
    addl $4, %edi
    addl $PAGE_SIZE, %edx
    cmpl $BOOT_MAP_LIMIT, %edx
    jb 1b

    /* 3. Point PDE i and PDE PAGE_OFFSET_PDE + i at table i, for every boot
     * table: VA [i * 4 MiB, +4 MiB) and VA [0xC000_0000 + i * 4 MiB, +4 MiB)
     * both -> PA [i * 4 MiB, +4 MiB). */
    movl $(boot_page_tables - PAGE_OFFSET + PDE_FLAGS), %eax
    movl $(boot_page_directory - PAGE_OFFSET), %edi
    movl $BOOT_PAGE_TABLES, %ecx
3:
    movl %eax, (%edi)                       /* identity */
    movl %eax, (PAGE_OFFSET_PDE * 4)(%edi)  /* higher half */
    addl $PAGE_SIZE, %eax
    addl $4, %edi
    loop 3b

    /* The early map window: one empty table that Rust fills later, so that
     * it can reach boot information wherever the loader put it. */
    movl $(boot_early_map_table - PAGE_OFFSET + PDE_FLAGS), %eax
    movl %eax, (boot_page_directory - PAGE_OFFSET + EARLY_MAP_PDE * 4)

    /* 4. Enable paging: CR3 takes the physical address of the directory,
     * then CR0.PG = 1. From the next instruction on, every address is
     * translated; EIP is still physical, which is why the identity half
     * exists. CR0.WP is not set here: it does not exist on a 386. */
    movl $(boot_page_directory - PAGE_OFFSET), %eax
    movl %eax, %cr3
    movl %cr0, %eax
    orl $0x80000000, %eax                   /* CR0.PG (bit 31) */
    movl %eax, %cr0

    /* Jump to the higher half: load the absolute address the linker gave
     * higher_half (0xC01.....) and jump there. (A direct jmp would land
     * there too, since .boot is linked at its physical address and the
     * displacement is computed between link addresses; the absolute form
     * makes the change of half visible.) */
    movl $higher_half, %eax
    jmp *%eax
    .size _start, . - _start

/* ======================================================================== */
/* Runs at its linked (higher-half) address.                                */
/* ======================================================================== */
    .section .text.boot_higher_half, "ax"
    .type higher_half, @function
higher_half:
    /* 5. The boot stack: BOOT_STACK_SIZE bytes above the guard page. ESP must
     * be 16-byte aligned at the call (the i386 System V ABI, which rustc
     * assumes), so 8 bytes of padding precede the two 4-byte arguments. */
    movl $boot_stack_top, %esp
    xorl %ebp, %ebp                         /* ends the frame-pointer chain for backtraces */
    /* Multiboot leaves every EFLAGS bit but IF and VM undefined. A stray NT
     * (nested task) would make the first iret a task return through a null
     * back-link (#TS); clear them all, as Linux head_32.S does. */
    pushl $0
    popfl
    subl $8, %esp
    pushl %ebx                              /* info_pa: physical address of the boot info */
    pushl %esi                              /* magic */
    call kernel_entry                       /* extern "C" fn(u32, u32) -> ! */
    /* kernel_entry never returns; if it did, stop here rather than run off. */
4:
    cli
    hlt
    jmp 4b
    .size higher_half, . - higher_half

/* ======================================================================== */
/* Boot page tables and stack (in .bss, zeroed in step 1).                  */
/* ======================================================================== */
    .section .bss.boot_paging, "aw", @nobits
    .balign 4096
    .globl boot_page_directory
boot_page_directory:
    .skip 4096
    .globl boot_page_tables
boot_page_tables:
    .skip 4096 * BOOT_PAGE_TABLES
    .globl boot_early_map_table
boot_early_map_table:
    .skip 4096

    .section .bss.boot_stack, "aw", @nobits
    .balign 4096
    .globl boot_stack_guard
boot_stack_guard:                           /* one page, never mapped */
    .skip 4096
    .globl boot_stack_bottom
boot_stack_bottom:
    .skip BOOT_STACK_SIZE
    .globl boot_stack_top
boot_stack_top:
