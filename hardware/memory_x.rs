//! The build script of both firmware images: puts the image's `memory.x`
//! (beside its `Cargo.toml`) where the linker finds it, since cortex-m-rt's
//! `link.x` includes it.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::copy(dir.join("memory.x"), out.join("memory.x")).expect("memory.x is readable");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={}", dir.join("memory.x").display());
    println!("cargo:rerun-if-changed=../memory_x.rs");
}
