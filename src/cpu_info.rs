//! What the boot CPU is and which paging features it has.
//!
//! The arch layer runs the two EFLAGS tests and CPUID
//! (`arch::x86::cpu::detect`); this module turns their results into a
//! [`CpuInfo`] and decides what the kernel may rely on, so the decisions are
//! tested on the host with made-up CPUID answers.
//!
//! How an i386-class CPU is told apart, oldest first (Intel SDM Vol. 1, §19.1
//! "Using the CPUID Instruction" and Vol. 3B §22 "Architecture
//! Compatibility"; Linux `arch/x86/kernel/head_32.S`):
//! - a **386** cannot set EFLAGS.AC (bit 18, added by the 486);
//! - an early **486** can set AC but not EFLAGS.ID (bit 21): no CPUID;
//! - everything later sets ID and answers CPUID.
//!
//! The paging features that matter to this kernel:
//! - `invlpg` exists from the 486 on ("not supported on IA-32 processors
//!   earlier than the Intel486"), so a 386 must reload CR3 instead;
//! - PSE (4 MiB pages), PGE (global pages) and PAE are CPUID leaf 1 EDX bits
//!   3, 13 and 6; a 386 or early 486 has none of them (and no CR4).

use core::fmt;
use x86::cpuid::{CpuId, CpuIdResult};

/// CPU generation as far as the kernel needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuClass {
    /// EFLAGS.AC cannot be set: an 80386.
    I386,
    /// EFLAGS.AC can be set, EFLAGS.ID cannot: a 486 without CPUID.
    I486NoCpuid,
    /// The CPU answers CPUID.
    Cpuid {
        /// Vendor string from leaf 0, e.g. `GenuineIntel`.
        vendor: [u8; 12],
        /// Family (4 = 486, 5 = Pentium, 6 = Pentium Pro and later), with the
        /// extended family added as CPUID defines it.
        family: u8,
        /// Model, with the extended model where CPUID defines it.
        model: u8,
        /// Stepping.
        stepping: u8,
    },
}

/// The CPU features this kernel looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    /// 4 MiB pages (CR4.PSE): the direct map's large pages under 32-bit
    /// paging (the boot stub uses none, so that a 486 boots).
    pub pse: bool,
    /// Global pages (CR4.PGE).
    pub pge: bool,
    /// Physical address extension (CR4.PAE): 64-bit entries, 2 MiB pages,
    /// RAM above 4 GiB.
    pub pae: bool,
    /// Time-stamp counter.
    pub tsc: bool,
    /// CR4 exists (any CPU with CPUID leaf 1 feature bits for VME, PSE, ...).
    pub cr4: bool,
    /// The execute-disable bit of PAE entries (`CPUID.80000001H:EDX.NX[bit
    /// 20]`, enabled by `IA32_EFER.NXE`; Intel SDM Vol. 3A §4.1.4). Only
    /// PAE entries have the bit.
    pub nx: bool,
    /// Physical address width, MAXPHYADDR (Intel SDM Vol. 3A §4.1.4):
    /// `CPUID.80000008H:EAX[7:0]` where that leaf exists; else 36 with
    /// PSE-36 (`CPUID.1:EDX[17]`), else 32. The SDM says 36 for any PAE
    /// CPU without the leaf, but QEMU's `qemu32` model (PAE, no PSE-36) sets
    /// reserved-bit faults at bit 32: assuming 32 there costs nothing on
    /// real CPUs of that kind, which have no RAM above 4 GiB. 32 without
    /// CPUID.
    pub phys_bits: u8,
}

/// The boot CPU's identity and features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuInfo {
    /// Generation and CPUID identity.
    pub class: CpuClass,
    /// Paging-related features.
    pub features: CpuFeatures,
}

impl CpuInfo {
    /// A CPU that failed the EFLAGS.AC test.
    pub const I386: CpuInfo = CpuInfo {
        class: CpuClass::I386,
        features: CpuFeatures {
            pse: false,
            pge: false,
            pae: false,
            tsc: false,
            cr4: false,
            nx: false,
            phys_bits: 32,
        },
    };

    /// A CPU that passed the AC test but failed the ID test.
    pub const I486_NO_CPUID: CpuInfo = CpuInfo {
        class: CpuClass::I486NoCpuid,
        features: CpuFeatures {
            pse: false,
            pge: false,
            pae: false,
            tsc: false,
            cr4: false,
            nx: false,
            phys_bits: 32,
        },
    };

    /// Identifies a CPU that has CPUID, with `cpuid(leaf, subleaf)` running
    /// the instruction (or a table, in tests).
    pub fn from_cpuid(cpuid: fn(u32, u32) -> CpuIdResult) -> CpuInfo {
        let id = CpuId::with_cpuid_fn(cpuid);
        let mut vendor = [b'?'; 12];
        if let Some(v) = id.get_vendor_info() {
            for (dst, src) in vendor.iter_mut().zip(v.as_str().bytes()) {
                *dst = src;
            }
        }
        let (family, model, stepping, features) = match id.get_feature_info() {
            Some(f) => {
                let features = CpuFeatures {
                    pse: f.has_pse(),
                    pge: f.has_pge(),
                    pae: f.has_pae(),
                    tsc: f.has_tsc(),
                    // CR4 arrived with the Pentium (and late 486s) together with
                    // the leaf-1 features it controls.
                    cr4: f.has_vme() || f.has_pse() || f.has_de() || f.has_tsc(),
                    nx: has_nx(&id, cpuid),
                    phys_bits: phys_bits(cpuid, f.has_pse36()),
                };
                (f.family_id(), f.model_id(), f.stepping_id(), features)
            }
            None => (4, 0, 0, CpuFeatures::default()),
        };
        CpuInfo {
            class: CpuClass::Cpuid {
                vendor,
                family,
                model,
                stepping,
            },
            features,
        }
    }

    /// Whether the CPU has `invlpg` (the 486 and every later CPU).
    pub fn has_invlpg(&self) -> bool {
        !matches!(self.class, CpuClass::I386)
    }

    /// Whether CR0.WP exists (the 486 and later).
    pub fn has_cr0_wp(&self) -> bool {
        !matches!(self.class, CpuClass::I386)
    }
}

/// Whether leaf `0x8000_0001` reports NX. The extended leaves are read only
/// when leaf `0x8000_0000` answers with a maximum of the form `0x8000_xxxx`
/// (as Linux's `get_cpu_cap()` checks): CPUs without extended leaves
/// return the highest basic leaf's data instead, which is no such number.
fn has_nx(id: &CpuId, cpuid: fn(u32, u32) -> CpuIdResult) -> bool {
    let max_extended = cpuid(0x8000_0000, 0).eax;
    max_extended & 0xffff_0000 == 0x8000_0000
        && max_extended >= 0x8000_0001
        && id
            .get_extended_processor_and_feature_identifiers()
            .is_some_and(|e| e.has_execute_disable())
}

/// MAXPHYADDR (see [`CpuFeatures::phys_bits`]).
fn phys_bits(cpuid: fn(u32, u32) -> CpuIdResult, pse36: bool) -> u8 {
    let max_extended = cpuid(0x8000_0000, 0).eax;
    if max_extended & 0xffff_0000 == 0x8000_0000 && max_extended >= 0x8000_0008 {
        let bits = (cpuid(0x8000_0008, 0).eax & 0xff) as u8;
        if bits >= 32 {
            return bits;
        }
    }
    if pse36 { 36 } else { 32 }
}

impl fmt::Display for CpuInfo {
    /// One line, e.g. `family 6 model 6 stepping 3 (GenuineIntel)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.class {
            CpuClass::I386 => f.write_str("386 class (EFLAGS.AC not settable, no CPUID)"),
            CpuClass::I486NoCpuid => {
                f.write_str("486 class without CPUID (EFLAGS.ID not settable)")
            }
            CpuClass::Cpuid {
                vendor,
                family,
                model,
                stepping,
            } => write!(
                f,
                "family {family} model {model} stepping {stepping} ({}), via CPUID",
                core::str::from_utf8(&vendor).unwrap_or("?")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(eax: u32, ebx: u32, ecx: u32, edx: u32) -> CpuIdResult {
        CpuIdResult { eax, ebx, ecx, edx }
    }

    /// Leaf 0 "GenuineIntel" (EBX, EDX, ECX = "Genu", "ineI", "ntel"), max leaf 1.
    fn vendor_intel() -> CpuIdResult {
        leaf(1, 0x756e_6547, 0x6c65_746e, 0x4965_6e69)
    }

    /// QEMU's `-cpu 486`: family 4 model 8, FPU only in leaf 1 EDX.
    fn cpuid_486(l: u32, _: u32) -> CpuIdResult {
        match l {
            0 => vendor_intel(),
            1 => leaf(0x0480, 0, 0, 1 << 0),
            _ => leaf(0, 0, 0, 0),
        }
    }

    /// A Pentium (P54C): family 5 model 2 stepping 1; FPU, VME, DE, PSE, TSC,
    /// MSR, MCE, CX8 (no PGE, no PAE).
    fn cpuid_pentium(l: u32, _: u32) -> CpuIdResult {
        match l {
            0 => vendor_intel(),
            1 => leaf(0x0521, 0, 0, 0x0000_01bf),
            _ => leaf(0, 0, 0, 0),
        }
    }

    /// A P6 with NX (a Pentium M or later, QEMU's `qemu32,+nx`): leaf
    /// 0x80000000 reports extended leaves up to 0x80000001, whose EDX has NX
    /// (bit 20).
    fn cpuid_p6_nx(l: u32, s: u32) -> CpuIdResult {
        match l {
            0x8000_0000 => leaf(0x8000_0001, 0, 0, 0),
            0x8000_0001 => leaf(0, 0, 0, 1 << 20),
            _ => cpuid_p6(l, s),
        }
    }

    /// A Pentium that answers an unsupported leaf with leaf 1's data, as
    /// Intel CPUs without extended leaves do: 0x80000001's "EDX" would
    /// claim NX, but 0x80000000's EAX (0x0521) is no extended maximum.
    fn cpuid_pentium_echo(l: u32, s: u32) -> CpuIdResult {
        match l {
            0 | 1 => cpuid_pentium(l, s),
            _ => leaf(0x0521, 0, 0, 0xffff_ffff),
        }
    }

    #[test]
    fn nx_comes_from_the_extended_leaf_only_when_it_exists() {
        assert!(CpuInfo::from_cpuid(cpuid_p6_nx).features.nx);
        assert!(!CpuInfo::from_cpuid(cpuid_p6).features.nx);
        assert!(!CpuInfo::from_cpuid(cpuid_pentium_echo).features.nx);
        assert!(!CpuInfo::from_cpuid(cpuid_486).features.nx);
    }

    /// A Pentium Pro or later: family 6 with PSE (3), PAE (6), PGE (13).
    fn cpuid_p6(l: u32, _: u32) -> CpuIdResult {
        match l {
            0 => vendor_intel(),
            1 => leaf(0x0663, 0, 0, (1 << 3) | (1 << 4) | (1 << 6) | (1 << 13)),
            _ => leaf(0, 0, 0, 0),
        }
    }

    #[test]
    fn a_386_has_no_invlpg_and_no_paging_extensions() {
        let cpu = CpuInfo::I386;
        assert!(!cpu.has_invlpg());
        assert!(!cpu.has_cr0_wp());
        let none = CpuFeatures {
            phys_bits: 32,
            ..CpuFeatures::default()
        };
        assert_eq!(cpu.features, none);
    }

    #[test]
    fn a_486_has_invlpg_but_no_cr4_features() {
        let cpu = CpuInfo::from_cpuid(cpuid_486);
        assert!(cpu.has_invlpg());
        assert!(!cpu.features.pse && !cpu.features.pge && !cpu.features.cr4);
        assert_eq!(
            cpu.to_string(),
            "family 4 model 8 stepping 0 (GenuineIntel), via CPUID"
        );
        assert!(CpuInfo::I486_NO_CPUID.has_invlpg());
    }

    #[test]
    fn a_pentium_has_pse_but_not_pge() {
        let cpu = CpuInfo::from_cpuid(cpuid_pentium);
        assert!(cpu.features.pse && cpu.features.cr4 && cpu.features.tsc);
        assert!(!cpu.features.pge && !cpu.features.pae);
    }

    #[test]
    fn a_p6_has_pse_pge_and_pae() {
        let cpu = CpuInfo::from_cpuid(cpuid_p6);
        assert!(cpu.features.pse && cpu.features.pge && cpu.features.pae);
        // No leaf 0x80000008: MAXPHYADDR 36 with PSE-36, 32 without.
        let pse36 = cpuid_p6(1, 0).edx & (1 << 17) != 0;
        assert_eq!(cpu.features.phys_bits, if pse36 { 36 } else { 32 });
        assert!(matches!(
            cpu.class,
            CpuClass::Cpuid {
                family: 6,
                model: 6,
                stepping: 3,
                ..
            }
        ));
    }
}
