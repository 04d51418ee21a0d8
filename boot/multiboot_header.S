/*
 * boot/multiboot_header.S: the two headers a loader looks for.
 *
 * GRUB's `multiboot2` command looks for the Multiboot2 header (8-byte aligned,
 * within the first 32 KiB of the file); QEMU's `-kernel` and GRUB's
 * `multiboot` command look for the Multiboot 1 header (4-byte aligned, within
 * the first 8 KiB). linker.ld puts this section first in the image, so both
 * are found. Neither header uses the "address fields" (a.out kludge): the
 * loader takes the load addresses from the ELF program headers.
 *
 * References: Multiboot2 spec §3.1.1 "Multiboot2 header layout", §3.1.2
 * "The magic fields of Multiboot2 header", §3.1.3 "General tag structure",
 * §3.1.10 "Module alignment tag"; Multiboot 0.6.96 spec §3.1.1
 * "The layout of Multiboot header".
 *
 * (No braces in this file: it is a Rust global_asm! template.)
 */
    .section .multiboot_header, "a"

/* ---- Multiboot2 ---------------------------------------------------------- */
    .balign 8
mb2_header_start:
    .long 0xE85250D6                    /* magic */
    .long 0                             /* architecture 0: 32-bit protected-mode i386 */
    .long mb2_header_end - mb2_header_start     /* header_length in bytes */
    /* checksum: magic + architecture + header_length + checksum == 0 (mod 2^32) */
    .long 0x100000000 - (0xE85250D6 + 0 + (mb2_header_end - mb2_header_start))

    /* Module alignment tag (type 6): page-align modules, so that memblock can
     * reserve them as whole pages. */
    .balign 8
    .short 6, 0                         /* type, flags (0: required) */
    .long 8                             /* size */

    /* End tag (type 0, size 8). */
    .balign 8
    .short 0, 0
    .long 8
mb2_header_end:

/* ---- Multiboot 1 --------------------------------------------------------- */
    .set MB1_MAGIC, 0x1BADB002
    /* bit 0: align modules on 4 KiB pages; bit 1: provide mem_* and mmap_* */
    .set MB1_FLAGS, (1 << 0) | (1 << 1)
    .balign 4
mb1_header:
    .long MB1_MAGIC
    .long MB1_FLAGS
    .long 0x100000000 - (MB1_MAGIC + MB1_FLAGS)  /* checksum */
