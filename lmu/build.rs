//! Writes `build_id.rs` into `OUT_DIR`: [`BUILD_ID`], the first 32 bits
//! (big-endian) of a SHA-256 over this crate's sources, so that a host and
//! a board built from the same LMU source agree on it, whatever the
//! commit, machine or target, and differ when the firmware logic or the
//! wire format (`src/hil.rs`, with `WIRE_VERSION`) differs.
//!
//! Hashed, in order of their paths relative to this folder (with `/`):
//! `Cargo.toml` and every file under `src/`, each as its path, a zero
//! byte, its length as a little-endian u64, and its bytes.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a readable directory entry").path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=src");
    let mut paths = vec![root.join("Cargo.toml")];
    files(&root.join("src"), &mut paths);
    let mut named: Vec<(String, PathBuf)> = paths
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&root).expect("under the crate");
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            (name, p)
        })
        .collect();
    named.sort();
    let mut h = Sha256::new();
    for (name, path) in &named {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        h.update(name.as_bytes());
        h.update([0]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    let d = h.finalize();
    let id = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(
        out.join("build_id.rs"),
        format!(
            "/// This build's id: the first 32 bits of a SHA-256 over the LMU crate's\n\
             /// sources (see `build.rs`). Host and board agree on it when they\n\
             /// were built from the same LMU source.\n\
             pub const BUILD_ID: u32 = 0x{id:08x};\n"
        ),
    )
    .expect("OUT_DIR is writable");
}
