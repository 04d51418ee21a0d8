//! Helpers shared by the integration tests that read boot-information
//! fixtures (`tests/boot_info_fixtures.rs`, `tests/boot_info_props.rs`).

/// 8-byte aligned copy of Multiboot2 bytes, as a loader would place them.
pub fn aligned(bytes: &[u8]) -> Vec<u64> {
    let mut words = vec![0u64; bytes.len().div_ceil(8)];
    for (i, b) in bytes.iter().enumerate() {
        words[i / 8] |= u64::from(*b) << (8 * (i % 8));
    }
    words
}

/// The first `len` bytes of `words`.
pub fn as_bytes(words: &[u64], len: usize) -> &[u8] {
    // SAFETY: any u64 memory is valid as bytes; u8 has alignment 1.
    let (_, body, _) = unsafe { words.align_to::<u8>() };
    &body[..len]
}
