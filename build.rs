//! Links the kernel binary with `linker.ld` when building for the kernel
//! target (`target_os = "none"`); host builds (`cargo test`) are untouched.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bin=kernel=-T{dir}/linker.ld");
        println!("cargo:rustc-link-arg-bin=kernel=-zmax-page-size=4096");
        println!("cargo:rustc-link-arg-bin=kernel=--no-dynamic-linker");
    }
    for f in ["linker.ld", "boot/entry.S", "boot/multiboot_header.S"] {
        println!("cargo:rerun-if-changed={f}");
    }
}
