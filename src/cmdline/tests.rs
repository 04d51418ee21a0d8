//! Host tests of `cmdline`.

use super::*;

fn parse_collect(s: &str) -> (BootOptions, Vec<String>) {
    let mut warnings = Vec::new();
    let opts = parse(s, |w| warnings.push(w.to_string()));
    (opts, warnings)
}

fn lossy(raw: &[u8], cap: usize) -> (String, LossyCopy) {
    let mut buf = vec![0u8; cap];
    let r = copy_lossy(raw, &mut buf);
    (String::from_utf8(buf[..r.len].to_vec()).unwrap(), r)
}

#[test]
fn bytes_that_are_not_utf8_are_replaced_and_their_word_ignored() {
    // Issue 13: one 0xff byte used to refuse the boot.
    let (s, r) = lossy(b"selftest sel\xffx loglevel=debug", 64);
    assert_eq!(s, "selftest sel\u{FFFD}x loglevel=debug");
    assert_eq!((r.replaced, r.cut), (1, false));
    let (opts, warnings) = parse_collect(&s);
    assert!(opts.selftest);
    assert_eq!(opts.loglevel, LogLevel::Debug);
    assert_eq!(warnings, ["unknown option 'sel\u{FFFD}x' ignored"]);
    // A truncated sequence and a stray continuation byte: one each,
    // as from_utf8_lossy counts them.
    let raw = b"mem=64M\xe2\x82 \x80tlb=cr3";
    let (s, r) = lossy(raw, 64);
    assert_eq!(s, String::from_utf8_lossy(raw));
    assert_eq!(r.replaced, 2);
    let (opts, warnings) = parse_collect(&s);
    assert_eq!((opts.mem_limit_bytes, opts.tlb), (None, TlbMode::Auto));
    assert_eq!(warnings.len(), 2);
    // Valid UTF-8 passes unchanged.
    assert_eq!(lossy("mem=1G é".as_bytes(), 64).0, "mem=1G é");
}

#[test]
fn a_lossy_copy_is_cut_at_a_character_boundary() {
    let (s, r) = lossy("abé".as_bytes(), 3);
    assert_eq!((s.as_str(), r.cut), ("ab", true));
    let (s, r) = lossy(b"ab\xff", 4);
    assert_eq!((s.as_str(), r.cut, r.replaced), ("ab", true, 0));
    let (s, r) = lossy(b"ab", 2);
    assert_eq!((s.as_str(), r.cut), ("ab", false));
}

#[test]
fn empty_command_line_gives_defaults() {
    let (opts, warnings) = parse_collect("");
    assert_eq!(opts, BootOptions::default());
    assert!(warnings.is_empty());
}

#[test]
fn every_option_is_recognised() {
    let (opts, warnings) = parse_collect(
        "loglevel=debug selftest tlb=cr3 memblock=debug slub_debug mem=64M crashtest=stack",
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(opts.loglevel, LogLevel::Debug);
    assert!(opts.selftest);
    assert_eq!(opts.tlb, TlbMode::Cr3);
    assert!(opts.memblock_debug);
    assert!(opts.slub_debug);
    assert_eq!(opts.mem_limit_bytes, Some(64 << 20));
    assert_eq!(opts.crashtest, Some(CrashTest::Stack));
}

#[test]
fn kernel_path_in_first_word_is_skipped() {
    let (opts, warnings) = parse_collect("/boot/kernel.elf selftest");
    assert!(opts.selftest);
    assert!(warnings.is_empty(), "{warnings:?}");
    // A first word with '=' is an option even if it holds a '/'.
    let (_, warnings) = parse_collect("root=/dev/sda selftest");
    assert_eq!(warnings, ["unknown option 'root=/dev/sda' ignored"]);
}

#[test]
fn unknown_words_and_bad_values_are_reported_and_ignored() {
    let (opts, warnings) =
        parse_collect("quiet loglevel=loud tlb=fast mem=12Q selftest=yes memblock=on");
    assert_eq!(opts, BootOptions::default());
    assert_eq!(
        warnings,
        [
            "unknown option 'quiet' ignored",
            "bad value in 'loglevel=loud' ignored (expected error|warn|info|debug|trace)",
            "bad value in 'tlb=fast' ignored (expected auto|invlpg|cr3)",
            "bad value in 'mem=12Q' ignored (expected <size>[K|M|G], greater than 0)",
            "unknown option 'selftest=yes' ignored",
            "bad value in 'memblock=on' ignored (expected debug)",
        ]
    );
}

#[test]
fn later_words_override_earlier_ones() {
    let (opts, _) = parse_collect("loglevel=trace loglevel=warn tlb=cr3 tlb=invlpg");
    assert_eq!(opts.loglevel, LogLevel::Warn);
    assert_eq!(opts.tlb, TlbMode::Invlpg);
}

#[test]
fn sizes_take_suffixes_and_reject_overflow() {
    assert_eq!(parse_size("4096"), Some(4096));
    assert_eq!(parse_size("640k"), Some(640 << 10));
    assert_eq!(parse_size("16M"), Some(16 << 20));
    assert_eq!(parse_size("3g"), Some(3 << 30));
    assert_eq!(parse_size("0x1000"), Some(0x1000));
    assert_eq!(parse_size(""), None);
    assert_eq!(parse_size("M"), None);
    assert_eq!(parse_size("-1M"), None);
    assert_eq!(parse_size("17179869184G"), None); // 2^34 GiB overflows u64
    assert_eq!(parse_size("18446744073709551615"), Some(u64::MAX));
}

#[test]
fn mem_zero_is_rejected() {
    let (opts, warnings) = parse_collect("mem=0");
    assert_eq!(opts.mem_limit_bytes, None);
    assert_eq!(warnings.len(), 1);
}

#[test]
fn options_display_in_one_line() {
    let (opts, _) = parse_collect("mem=0x2000000 crashtest=null");
    assert_eq!(
        opts.to_string(),
        "loglevel=info selftest=off tlb=auto memblock=off slub_debug=off mem=0x2000000 crashtest=null paging=auto"
    );
}

#[test]
fn paging_words_choose_the_mode_request_and_show_on_the_options_line() {
    let (opts, warnings) = parse_collect("paging=pae pse=off pge=on nx=off");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        (opts.paging, opts.pse, opts.pge, opts.nx),
        (PagingRequest::Pae, Switch::Off, Switch::On, Switch::Off)
    );
    assert!(
        opts.to_string()
            .ends_with("mem=all paging=pae pse=off pge=on nx=off"),
        "{opts}"
    );
    // No paging word: `auto`, shown, and no switch.
    let (plain, _) = parse_collect("selftest");
    assert_eq!(plain.paging, PagingRequest::Auto);
    assert!(
        plain.to_string().ends_with("mem=all paging=auto"),
        "{plain}"
    );
    let (opts, _) = parse_collect("pge=off");
    assert_eq!(opts.paging, PagingRequest::Auto);
    assert!(opts.to_string().ends_with("paging=auto pge=off"), "{opts}");
}

#[test]
fn bad_paging_values_are_ignored_with_what_is_accepted() {
    let (opts, warnings) = parse_collect("paging=3level pse=yes nx=on");
    assert_eq!(
        warnings,
        [
            "bad value in 'paging=3level' ignored (expected auto|2level|pae)",
            "bad value in 'pse=yes' ignored (expected on|off)",
        ]
    );
    assert_eq!(
        (opts.paging, opts.pse, opts.nx),
        (PagingRequest::Auto, Switch::Auto, Switch::On)
    );
}
