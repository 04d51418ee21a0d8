# i386 memory bring-up kernel: build, boot and test.
#
#   make run          build, boot in QEMU (serial on stdout), exit 0 on KERNEL OK
#   make test         host unit tests + boot tests in QEMU and Bochs
#
# Other targets: kernel (default), user, iso, run-bochs, debug, bench, bench-ir, lint, clean.
# Variables: MEM=128M  CPU=<qemu -cpu model>  CMDLINE="<kernel command line>"
#            BOCHS_CPU=<bochs cpu model, default pentium>  (make run-bochs)
#            TIMEOUT=<seconds>  KERNEL_TOOLCHAIN=<rustup toolchain>|debian|<dir>
# The Rust toolchain is chosen by scripts/toolchain.sh (README, Toolchain);
# other missing tools are installed on Debian/Ubuntu (scripts/deps.sh).

MEM      ?= 128M
CPU      ?=
CMDLINE  ?=
TIMEOUT  ?= 120
BOCHS_CPU ?= pentium
export MEM CPU TIMEOUT BOCHS_CPU

BUILD      := build
KERNEL_ELF := $(BUILD)/kernel.elf
ISO        := $(BUILD)/kernel.iso
TARGET     := i686-kernel
# Kernel-only cargo flags: kept here (not in .cargo/config.toml) so that a
# plain `cargo test` builds for the host. scripts/kcargo adds
# -Zjson-target-spec where cargo wants it. trim-paths "macro" (cargo's
# -Ztrim-paths) keeps the build machine's paths out of the kernel's strings:
# panic locations read src/..., /rustc/<commit>/library/... and
# <crate>-<version>/src/..., while the debug info keeps absolute paths for GDB.
KERNEL_CARGO_FLAGS := --release --features kernel --target $(TARGET).json \
	-Zbuild-std=core,compiler_builtins,alloc \
	-Zbuild-std-features=compiler-builtins-mem \
	-Ztrim-paths --config 'profile.release.trim-paths="macro"'
# Host cargo: the same toolchain choice, without the library source.
HOST_CARGO := scripts/kcargo --host
# User programs (user/, a cargo package of its own): the kernel's target
# spec and toolchain, core only (no alloc), linked by user/linker.ld at
# 0x08048000; one build/user/<name>.elf per user/src/bin/<name>.rs.
USER_PROGRAMS := $(sort $(basename $(notdir $(wildcard user/src/bin/*.rs))))
USER_CARGO_FLAGS := --release --manifest-path user/Cargo.toml --target $(TARGET).json \
	--target-dir target/user \
	-Zbuild-std=core,compiler_builtins \
	-Zbuild-std-features=compiler-builtins-mem \
	-Ztrim-paths --config 'profile.release.trim-paths="macro"'

.PHONY: all kernel user iso run run-bochs debug test test-toolchain test-structure test-host test-boot \
	test-docs test-repro fuzz bench bench-ir lint clean

all: kernel

kernel:
	@scripts/deps.sh kernel
	scripts/kcargo build $(KERNEL_CARGO_FLAGS)
	@mkdir -p $(BUILD)
	cp target/$(TARGET)/release/kernel $(KERNEL_ELF)

# Static ELF32 user programs, build/user/<name>.elf (not yet loaded by
# `make iso`: pass them with MKISO_MODULES).
user:
	@scripts/deps.sh kernel
	scripts/kcargo build $(USER_CARGO_FLAGS)
	@mkdir -p $(BUILD)/user
	for p in $(USER_PROGRAMS); do cp target/user/$(TARGET)/release/$$p $(BUILD)/user/$$p.elf; done

iso: kernel
	@scripts/deps.sh iso
	scripts/mkiso.sh $(KERNEL_ELF) $(ISO) "$(CMDLINE)"

run: iso
	@scripts/deps.sh qemu
	scripts/run-qemu.sh --iso $(ISO) --log $(BUILD)/serial.log

run-bochs: iso
	@scripts/deps.sh bochs
	scripts/run-bochs.sh $(ISO)

# QEMU stops before the first instruction and waits for GDB on port 1234.
debug: iso
	@scripts/deps.sh qemu
	@echo "QEMU is waiting for GDB. In another terminal run:  gdb -x scripts/kernel.gdb"
	@echo "(quit QEMU with Ctrl-C here, or 'kill' in GDB)"
	qemu-system-i386 -m $(MEM) $(if $(CPU),-cpu $(CPU)) -display none -serial stdio \
		-no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-cdrom $(ISO) -boot d -s -S

test: test-toolchain test-structure test-host test-boot test-docs test-repro

# The toolchain choice (scripts/toolchain.sh, scripts/kcargo) against stub
# rustc/cargo/rustup/apt programs: seconds, and first, because every other
# step depends on it.
test-toolchain:
	tests/toolchain/run-tests.sh

# The tree's shape (tests/structure/check.sh): src/main.rs under 300 lines,
# every src/arch file touching the hardware, no import cycle in src/arch.
test-structure:
	tests/structure/check.sh

test-host:
	@scripts/deps.sh host
	$(HOST_CARGO) test
	$(HOST_CARGO) test --bench buddy --bench kmalloc

test-boot: kernel
	@scripts/deps.sh iso qemu bochs isa forge
	tests/boot/run-tests.sh

# Every log excerpt quoted in README.md and docs/ must still appear in the
# log of the boot test it names (run after test-boot, which writes them).
test-docs:
	tests/docs/check-excerpts.sh

# The kernel built again from a copy of the tree at another path must have
# the same loaded bytes, and no build-machine path in its strings.
test-repro: kernel
	tests/repro/check.sh

# Structured fuzzing of the boot-information readers (tests/boot_info_props.rs:
# mutated GRUB/QEMU captures through the parsers, the sanitizer, the range
# checks and memblock setup; random memory maps; command-line bytes), with
# FUZZ_CASES cases per property in release mode. `make test` runs 256.
FUZZ_CASES ?= 200000
fuzz:
	@scripts/deps.sh host
	PROPTEST_CASES=$(FUZZ_CASES) $(HOST_CARGO) test --release --test boot_info_props

# Host benchmarks (release build) of issue 15's workloads, each followed by
# its table of targets: the buddy allocator (128 MiB and 4 GiB of frames)
# against a free-list stack and buddy_system_allocator, then kmalloc against
# talc (linked_list_allocator and segregated free lists as information).
# Wall-clock ratios come from paired repetitions in one run (median and
# min-max); instruction counts from callgrind (valgrind, installed by
# scripts/deps.sh). About 3 minutes; BENCH_QUICK=1 for a smoke run (under a
# minute). Missed targets do not fail.
bench:
	@scripts/deps.sh host valgrind
	$(HOST_CARGO) bench --bench buddy
	$(HOST_CARGO) bench --bench kmalloc

# Only the instruction counts of the hot paths (callgrind, deterministic:
# regressions show without timing noise) and their rows of the tables.
bench-ir:
	@scripts/deps.sh host valgrind
	$(HOST_CARGO) bench --bench buddy -- --ir-only
	$(HOST_CARGO) bench --bench kmalloc -- --ir-only

# Formatting and clippy on both targets and on the user programs (needs
# rustfmt and clippy).
lint:
	@scripts/deps.sh lint
	$(HOST_CARGO) fmt --all -- --check
	$(HOST_CARGO) fmt --manifest-path user/Cargo.toml --all -- --check
	$(HOST_CARGO) clippy --all-targets -- -D warnings
	scripts/kcargo clippy $(KERNEL_CARGO_FLAGS) -- -D warnings
	scripts/kcargo clippy $(USER_CARGO_FLAGS) -- -D warnings

clean:
	rm -rf $(BUILD) target
