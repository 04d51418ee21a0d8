//! Choosing the paging mode at boot, from the CPU's features and the
//! command line (`paging=`, `pse=`, `pge=`, `nx=`).
//!
//! Linux picks the page-table format when it is compiled (`CONFIG_X86_PAE`)
//! and each feature at boot (`cpu_has_pse`, `cpu_has_pge`, `noexec=`); here
//! the format is picked at boot too, so the same kernel shows every mode.
//! `auto` takes the best the CPU offers; a feature asked for that the CPU
//! lacks is refused with a [`ModeNote`], never used (using it would fault:
//! a PS entry without CR4.PSE is walked as a page table, a set NX bit
//! without EFER.NXE is a reserved-bit fault).

use super::entry::{Format, PagingMode};
use crate::cmdline::{PagingRequest, Switch};
use crate::cpu_info::CpuFeatures;
use core::fmt;

/// What the command line asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeRequest {
    /// `paging=`.
    pub paging: PagingRequest,
    /// `pse=`.
    pub pse: Switch,
    /// `pge=`.
    pub pge: Switch,
    /// `nx=`.
    pub nx: Switch,
}

/// A request that could not be honoured, for a warning on the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeNote {
    /// `paging=pae` on a CPU without PAE: 32-bit paging instead.
    NoPae,
    /// `pse=on` on a CPU without PSE: 4 KiB pages only.
    NoPse,
    /// `pge=on` on a CPU without PGE: no global pages.
    NoPge,
    /// `nx=on` on a CPU without NX.
    NoNx,
    /// `nx=on` with 32-bit paging, whose entries have no NX bit.
    NxNeedsPae,
}

impl fmt::Display for ModeNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModeNote::NoPae => {
                "paging=pae refused: this CPU has no PAE (CPUID.1:EDX bit 6); using 2-level paging"
            }
            ModeNote::NoPse => {
                "pse=on refused: this CPU has no PSE (CPUID.1:EDX bit 3); 4 KiB pages only"
            }
            ModeNote::NoPge => {
                "pge=on refused: this CPU has no PGE (CPUID.1:EDX bit 13); no global pages"
            }
            ModeNote::NoNx => "nx=on refused: this CPU has no NX (CPUID.80000001H:EDX bit 20)",
            ModeNote::NxNeedsPae => {
                "nx=on refused: 2-level entries have no NX bit (it is bit 63 of a PAE entry)"
            }
        })
    }
}

/// The chosen mode and what was refused on the way (at most four notes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModeChoice {
    /// The mode the final page directory is built in.
    pub mode: PagingMode,
    /// Requests the CPU could not honour.
    pub notes: heapless::Vec<ModeNote, 4>,
}

/// Picks the paging mode for `cpu` and `req` (see the module docs).
pub fn choose_mode(cpu: &CpuFeatures, req: ModeRequest) -> ModeChoice {
    let mut notes = heapless::Vec::new();
    let mut note = |n| {
        let _ = notes.push(n);
    };
    let format = match req.paging {
        PagingRequest::TwoLevel => Format::TwoLevel,
        PagingRequest::Auto if cpu.pae => Format::Pae,
        PagingRequest::Auto => Format::TwoLevel,
        PagingRequest::Pae if cpu.pae => Format::Pae,
        PagingRequest::Pae => {
            note(ModeNote::NoPae);
            Format::TwoLevel
        }
    };
    // Large pages: PSE under 32-bit paging; under PAE, PS is always
    // honoured, but Linux still asks for PSE (`cpu_has_pse`) before using
    // 2 MiB pages, as this does.
    let mut feature = |s: Switch, has: bool, missing: ModeNote| match s {
        Switch::Off => false,
        Switch::Auto => has,
        Switch::On if has => true,
        Switch::On => {
            note(missing);
            false
        }
    };
    let large_pages = feature(req.pse, cpu.pse, ModeNote::NoPse);
    let global = feature(req.pge, cpu.pge, ModeNote::NoPge);
    let nx = match (format, req.nx) {
        (Format::TwoLevel, Switch::On) => {
            note(ModeNote::NxNeedsPae);
            false
        }
        (Format::TwoLevel, _) => false,
        (Format::Pae, s) => feature(s, cpu.nx, ModeNote::NoNx),
    };
    ModeChoice {
        mode: PagingMode {
            format,
            large_pages,
            global,
            nx,
        },
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTO: ModeRequest = ModeRequest {
        paging: PagingRequest::Auto,
        pse: Switch::Auto,
        pge: Switch::Auto,
        nx: Switch::Auto,
    };

    fn cpu(pse: bool, pge: bool, pae: bool, nx: bool) -> CpuFeatures {
        CpuFeatures {
            pse,
            pge,
            pae,
            nx,
            cr4: pse || pge || pae,
            ..CpuFeatures::default()
        }
    }

    #[test]
    fn auto_takes_the_best_each_cpu_offers() {
        let i486 = choose_mode(&cpu(false, false, false, false), AUTO);
        assert_eq!(i486.mode, PagingMode::LEGACY);
        let pentium = choose_mode(&cpu(true, false, false, false), AUTO).mode;
        assert_eq!(
            (pentium.format, pentium.large_pages, pentium.global),
            (Format::TwoLevel, true, false)
        );
        let p6 = choose_mode(&cpu(true, true, true, false), AUTO).mode;
        assert_eq!(
            (p6.format, p6.large_pages, p6.global, p6.nx),
            (Format::Pae, true, true, false)
        );
        let nx = choose_mode(&cpu(true, true, true, true), AUTO);
        assert!(nx.mode.nx && nx.notes.is_empty());
    }

    #[test]
    fn what_the_cpu_lacks_is_refused_with_a_note() {
        let req = ModeRequest {
            paging: PagingRequest::Pae,
            pse: Switch::On,
            pge: Switch::On,
            nx: Switch::On,
        };
        let c = choose_mode(&cpu(false, false, false, false), req);
        assert_eq!(c.mode, PagingMode::LEGACY);
        assert_eq!(
            c.notes.as_slice(),
            [
                ModeNote::NoPae,
                ModeNote::NoPse,
                ModeNote::NoPge,
                ModeNote::NxNeedsPae
            ]
        );
        let c = choose_mode(&cpu(true, true, true, false), req);
        assert_eq!(c.notes.as_slice(), [ModeNote::NoNx]);
        assert!(c.mode.format == Format::Pae && !c.mode.nx);
    }

    #[test]
    fn off_switches_reproduce_the_legacy_mode_on_any_cpu() {
        let req = ModeRequest {
            paging: PagingRequest::TwoLevel,
            pse: Switch::Off,
            pge: Switch::Off,
            nx: Switch::Auto,
        };
        let c = choose_mode(&cpu(true, true, true, true), req);
        assert_eq!(c.mode, PagingMode::LEGACY);
        assert!(c.notes.is_empty());
    }
}
