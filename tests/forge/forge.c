/*
 * tests/forge/forge.c: a tiny Multiboot loader that hands the kernel forged
 * boot information, for the boot tests of hostile input (issue 13) that GRUB
 * and QEMU cannot produce: a memory-map entry that wraps past 2^64, modules
 * over a device, past RAM or over the kernel, junk after the end tag, two
 * memory maps, an unterminated string, a Multiboot 1 ELF section table of
 * 0xffffffff entries.
 *
 * How it runs: QEMU's Multiboot 1 loader boots this file (-kernel) with the
 * real kernel ELF as its first module (-initrd build/kernel.elf) and the
 * command line "SCENARIO -- KERNEL COMMAND LINE". The forger
 *   1. loads the kernel's PT_LOAD segments at their physical addresses
 *      (zeroing the rest of each segment), as a Multiboot loader does;
 *   2. builds Multiboot2 (or, for mb1-* scenarios, Multiboot 1) information
 *      in low memory from QEMU's real memory map and meminfo, then spoils it
 *      as the scenario says;
 *   3. jumps to the kernel's ELF entry with EAX = the protocol's magic and
 *      EBX = the information, in the state QEMU left: protected mode, flat
 *      segments, paging off, interrupts off (Multiboot2 spec §3.3).
 * It prints one "[INFO ] forge: ..." line on COM1 so the log says what was
 * forged, and stops with a "PANIC: forge: ..." line for an unknown scenario
 * or a kernel file it cannot load.
 *
 * Build (tests/boot/run-tests.sh does it): gcc -m32 -ffreestanding, linked
 * with tests/forge/forge.ld. No C library: freestanding code only.
 */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

#define MB1_MAGIC 0x1BADB002u
#define MB1_HEADER_FLAGS 0x00000002u /* bit 1: memory information please */
#define MB1_LOADER_MAGIC 0x2BADB002u
#define MB2_LOADER_MAGIC 0x36D76289u

__attribute__((section(".multiboot"), used, aligned(4)))
static const u32 multiboot_header[3] = {
    MB1_MAGIC, MB1_HEADER_FLAGS, (u32)-(MB1_MAGIC + MB1_HEADER_FLAGS)};

/* Where the forged information goes: usable low memory (QEMU's map has RAM
 * up to 0x9fc00), away from the BIOS data at the bottom. */
#define INFO_BASE 0x10000u
#define INFO_MAX 0x8000u

u8 forge_stack[16384] __attribute__((aligned(16)));

void forge_main(u32 magic, u32 info);

__asm__(".globl forge_start\n"
        "forge_start:\n"
        "  mov $forge_stack + 16384, %esp\n"
        "  push %ebx\n"
        "  push %eax\n"
        "  call forge_main\n"
        "1: hlt\n"
        "  jmp 1b\n");

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) {
    u8 v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static void putc(char c) {
    while (!(inb(0x3f8 + 5) & 0x20)) {
    }
    outb(0x3f8, (u8)c);
}
static void puts(const char *s) {
    while (*s)
        putc(*s++);
}
static void puthex(u32 v) {
    puts("0x");
    for (int i = 28; i >= 0; i -= 4)
        putc("0123456789abcdef"[(v >> i) & 15]);
}

/* Stops QEMU through isa-debug-exit with the kernel's PANIC status. */
static void die(const char *why) {
    puts("PANIC: forge: ");
    puts(why);
    puts("\n");
    __asm__ volatile("outl %0, %1" ::"a"(17u), "Nd"((u16)0xf4));
    for (;;)
        __asm__ volatile("hlt");
}

static u32 rd32(const void *p) { return *(const u32 *)p; }
static u64 rd64(const void *p) { return *(const u64 *)p; }

static void copy(u8 *to, const u8 *from, u32 n) {
    while (n--)
        *to++ = *from++;
}
static void fill(u8 *to, u8 v, u32 n) {
    while (n--)
        *to++ = v;
}
static u32 len(const char *s) {
    u32 n = 0;
    while (s[n])
        n++;
    return n;
}
static int starts(const char *s, const char *word) {
    u32 n = len(word);
    for (u32 i = 0; i < n; i++)
        if (s[i] != word[i])
            return 0;
    return s[n] == ' ' || s[n] == 0;
}

/* ---- The kernel ELF: PT_LOAD segments to their physical addresses. ---- */

static u32 load_elf(const u8 *elf, u32 size) {
    if (size < 52 || rd32(elf) != 0x464c457fu || elf[4] != 1 /* ELFCLASS32 */)
        die("module 0 is not an ELF32 file (give the kernel with -initrd)");
    u32 phoff = rd32(elf + 28), phentsize = *(const u16 *)(elf + 42), phnum = *(const u16 *)(elf + 44);
    for (u32 i = 0; i < phnum; i++) {
        const u8 *ph = elf + phoff + i * phentsize;
        if (rd32(ph) != 1 /* PT_LOAD */)
            continue;
        u32 off = rd32(ph + 4), pa = rd32(ph + 12), filesz = rd32(ph + 16), memsz = rd32(ph + 20);
        if (off + filesz > size)
            die("a kernel segment lies past the end of the file");
        copy((u8 *)pa, elf + off, filesz);
        fill((u8 *)pa + filesz, 0, memsz - filesz);
    }
    return rd32(elf + 24); /* e_entry: physical (.boot is identity-linked) */
}

/* ---- What QEMU gave us (Multiboot 1 information). ---- */

struct mmap_entry {
    u64 base, length;
    u32 type;
};
#define MAX_ENTRIES 64
static struct mmap_entry map[MAX_ENTRIES];
static u32 nr_map, mem_lower, mem_upper;
static const char *kernel_cmdline = "";

static void read_qemu_info(const u8 *mbi) {
    u32 flags = rd32(mbi);
    if (!(flags & (1u << 6)) || !(flags & 1u))
        die("QEMU gave no memory map or meminfo");
    mem_lower = rd32(mbi + 4);
    mem_upper = rd32(mbi + 8);
    const u8 *p = (const u8 *)rd32(mbi + 48), *end = p + rd32(mbi + 44);
    while (p < end && nr_map < MAX_ENTRIES) {
        map[nr_map].base = rd64(p + 4);
        map[nr_map].length = rd64(p + 12);
        map[nr_map].type = rd32(p + 20);
        nr_map++;
        p += rd32(p) + 4;
    }
}

/* ---- Building Multiboot2 information. ---- */

static u8 *out;      /* next byte to write */
static u8 *tag_start;

static void put32(u32 v) {
    copy(out, (const u8 *)&v, 4);
    out += 4;
}
static void put64(u64 v) {
    copy(out, (const u8 *)&v, 8);
    out += 8;
}
static void tag_begin(u32 type) {
    tag_start = out;
    put32(type);
    put32(0); /* size, filled in by tag_end */
}
static void tag_end(void) {
    *(u32 *)(tag_start + 4) = (u32)(out - tag_start);
    while ((u32)out & 7)
        *out++ = 0;
}
static void string_tag(u32 type, const char *s, int nul) {
    tag_begin(type);
    copy(out, (const u8 *)s, len(s));
    out += len(s);
    if (nul)
        *out++ = 0;
    tag_end();
}
static void mmap_tag(const struct mmap_entry *e, u32 n, const struct mmap_entry *extra) {
    tag_begin(6);
    put32(24);
    put32(0);
    for (u32 i = 0; i < n; i++) {
        put64(e[i].base);
        put64(e[i].length);
        put32(e[i].type);
        put32(0);
        if (i == 0 && extra) { /* right after the first entry */
            put64(extra->base);
            put64(extra->length);
            put32(extra->type);
            put32(0);
        }
    }
    tag_end();
}
static void module_tag(u32 start, u32 end, const char *name, int nul) {
    tag_begin(3);
    put32(start);
    put32(end);
    copy(out, (const u8 *)name, len(name));
    out += len(name);
    if (nul)
        *out++ = 0;
    tag_end();
}

struct scenario {
    const char *name;
    const char *what; /* for the log line */
};

static const struct scenario scenarios[] = {
    {"wrap-mmap", "a usable entry at 1 MiB whose end wraps past 2^64"},
    {"huge-module", "a module [2 MiB, 0xf0000000), far past the end of RAM"},
    {"mmio-module", "a module over the e1000's registers at 0xfebc0000"},
    {"overlap-module", "a module [0x00150000, 0x00200000) over the kernel image"},
    {"junk-after-end", "16 bytes after the end tag, counted in total_size"},
    {"two-mmaps", "a second memory-map tag claiming only 16 MiB"},
    {"unterminated-module", "a module tag whose string has no NUL"},
    {"mb1-elf-huge", "Multiboot 1 ELF section headers with num = entsize = 0xffffffff"},
};

static u32 build_mb2(const char *s) {
    out = (u8 *)INFO_BASE;
    fill(out, 0, INFO_MAX);
    put32(0); /* total_size */
    put32(0);
    string_tag(1, kernel_cmdline, 1);
    string_tag(2, "forge (tests/forge/forge.c)", 1);
    tag_begin(4);
    put32(mem_lower);
    put32(mem_upper);
    tag_end();

    struct mmap_entry wrap = {0x100000, ~0ull - 0x80000, 1};
    mmap_tag(map, nr_map, starts(s, "wrap-mmap") ? &wrap : 0);
    if (starts(s, "two-mmaps")) {
        struct mmap_entry small[2] = {{0, 0x9fc00, 1}, {0x100000, 0xf00000, 1}};
        mmap_tag(small, 2, 0);
    }
    if (starts(s, "huge-module"))
        module_tag(0x200000, 0xf0000000u, "huge", 1);
    if (starts(s, "mmio-module"))
        module_tag(0xfebc0000u, 0xfebc1000u, "e1000-registers", 1);
    if (starts(s, "overlap-module"))
        module_tag(0x150000, 0x200000, "over-the-kernel", 1);
    if (starts(s, "unterminated-module"))
        module_tag(0x3000000, 0x3001000, "no-nul", 0);

    tag_begin(0); /* end tag */
    tag_end();
    if (starts(s, "junk-after-end")) {
        fill(out, 0xaa, 16);
        out += 16;
    }
    *(u32 *)INFO_BASE = (u32)(out - (u8 *)INFO_BASE);
    return INFO_BASE;
}

/* Multiboot 1 information with a hostile ELF section-header field. */
static u32 build_mb1(void) {
    u8 *mbi = (u8 *)INFO_BASE;
    fill(mbi, 0, INFO_MAX);
    u8 *cmd = mbi + 0x100, *mm = mbi + 0x1000;
    copy(cmd, (const u8 *)kernel_cmdline, len(kernel_cmdline) + 1);
    for (u32 i = 0; i < nr_map; i++) {
        u8 *e = mm + i * 24;
        *(u32 *)e = 20;
        copy(e + 4, (const u8 *)&map[i].base, 8);
        copy(e + 12, (const u8 *)&map[i].length, 8);
        *(u32 *)(e + 20) = map[i].type;
    }
    *(u32 *)mbi = 1u | (1u << 2) | (1u << 5) | (1u << 6); /* MEM, CMDLINE, ELF_SHDR, MMAP */
    *(u32 *)(mbi + 4) = mem_lower;
    *(u32 *)(mbi + 8) = mem_upper;
    *(u32 *)(mbi + 16) = (u32)cmd;
    *(u32 *)(mbi + 28) = 0xffffffffu; /* num */
    *(u32 *)(mbi + 32) = 0xffffffffu; /* entsize */
    *(u32 *)(mbi + 36) = 0x200000;    /* addr */
    *(u32 *)(mbi + 40) = 0;           /* shndx */
    *(u32 *)(mbi + 44) = nr_map * 24;
    *(u32 *)(mbi + 48) = (u32)mm;
    return INFO_BASE;
}

void forge_main(u32 magic, u32 info) {
    if (magic != MB1_LOADER_MAGIC)
        die("not started by a Multiboot 1 loader (boot with qemu -kernel)");
    const u8 *mbi = (const u8 *)info;
    u32 flags = rd32(mbi);
    if (!(flags & (1u << 3)) || rd32(mbi + 20) < 1)
        die("no module: give the kernel ELF with -initrd");
    read_qemu_info(mbi);

    /* Command line: [path] SCENARIO [-- KERNEL COMMAND LINE] */
    const char *s = (flags & (1u << 2)) ? (const char *)rd32(mbi + 16) : "";
    const char *w = s;
    while (*w && *w != ' ')
        w++;
    for (const char *c = s; c < w; c++)
        if (*c == '/') { /* QEMU puts the file name first */
            s = *w ? w + 1 : w;
            break;
        }
    for (const char *c = s; *c; c++)
        if (c[0] == '-' && c[1] == '-' && (c[2] == ' ' || c[2] == 0)) {
            kernel_cmdline = c[2] ? c + 3 : c + 2;
            break;
        }

    const struct scenario *sc = 0;
    for (u32 i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
        if (starts(s, scenarios[i].name))
            sc = &scenarios[i];
    if (!sc)
        die("unknown scenario (see tests/forge/forge.c for the list)");

    const u8 *mods = (const u8 *)rd32(mbi + 24);
    u32 entry = load_elf((const u8 *)rd32(mods), rd32(mods + 4) - rd32(mods));
    int mb1 = starts(s, "mb1-elf-huge");
    u32 forged = mb1 ? build_mb1() : build_mb2(s);

    puts("[INFO ] forge: ");
    puts(sc->name);
    puts(": ");
    puts(sc->what);
    puts("; Multiboot");
    puts(mb1 ? " 1" : "2");
    puts(" information at ");
    puthex(forged);
    puts(", kernel entry ");
    puthex(entry);
    puts("\n");

    __asm__ volatile("jmp *%2" ::"a"(mb1 ? MB1_LOADER_MAGIC : MB2_LOADER_MAGIC), "b"(forged), "r"(entry)
                     : "memory");
    __builtin_unreachable();
}
