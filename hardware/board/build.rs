//! Writes `build_id.rs` into `OUT_DIR`: the firmware's build id, which the
//! board reports in its `Hello`.
//!
//! The id is `GRIDTWIN_BUILD_ID` (decimal, or hex with `0x`) when set, else
//! the first 32 bits of the git commit the firmware was built from, else 0.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
}

/// The files whose change means a new commit: `HEAD`, the branch it names
/// (loose or packed). Works in worktrees, whose `HEAD` lives apart from
/// the shared refs.
fn watch_git() {
    let (Some(dir), Some(common)) = (
        git(&["rev-parse", "--absolute-git-dir"]),
        git(&["rev-parse", "--git-common-dir"]),
    ) else {
        return;
    };
    let common = PathBuf::from(common);
    let common = if common.is_absolute() {
        common
    } else {
        std::env::current_dir()
            .map(|d| d.join(&common))
            .unwrap_or(common)
    };
    let mut paths = vec![Path::new(&dir).join("HEAD"), common.join("packed-refs")];
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        paths.push(common.join(r));
    }
    for p in paths.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}

fn parse(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=GRIDTWIN_BUILD_ID");
    let id = match std::env::var("GRIDTWIN_BUILD_ID") {
        Ok(v) => parse(&v).unwrap_or_else(|| panic!("GRIDTWIN_BUILD_ID={v:?} is not a u32")),
        Err(_) => {
            watch_git();
            git(&["rev-parse", "HEAD"])
                .and_then(|h| h.get(..8).and_then(|p| u32::from_str_radix(p, 16).ok()))
                .unwrap_or(0)
        }
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(
        out.join("build_id.rs"),
        format!("/// This firmware build's id (see `build.rs`).\npub const BUILD_ID: u32 = 0x{id:08x};\n"),
    )
    .expect("OUT_DIR is writable");
}
