//! The public data sets in `data/`: every file is the one its README's
//! table names, byte for byte (SHA-256 and size), and no file is unlisted.
//! The scenarios, tests and benches read only these copies, so a changed or
//! truncated file would change results silently; this test says which.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::{refdata, root};

/// The `| `file` | bytes | `sha256` |` rows of a set's README.
fn listed(readme: &str) -> BTreeMap<String, (u64, String)> {
    let mut out = BTreeMap::new();
    for line in readme.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "", file, bytes, sha, ""
        if cells.len() != 5 {
            continue;
        }
        let (Some(file), Ok(bytes), Some(sha)) = (
            cells[1].strip_prefix('`').and_then(|c| c.strip_suffix('`')),
            cells[2].parse::<u64>(),
            cells[3].strip_prefix('`').and_then(|c| c.strip_suffix('`')),
        ) else {
            continue;
        };
        if sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            out.insert(file.to_string(), (bytes, sha.to_ascii_lowercase()));
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every file under `dir`, as paths relative to `base` with `/`.
fn files(base: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(base, &p, out);
        } else {
            let rel = p.strip_prefix(base).unwrap();
            out.push(
                rel.components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/"),
            );
        }
    }
}

#[test]
fn every_data_file_matches_its_readme_checksum() {
    let sets = ["ieee_eu_lv", "radio"];
    let mut problems = Vec::new();
    for set in sets {
        let dir = refdata(set);
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        for heading in ["## Source", "## Terms", "## Files and SHA-256"] {
            assert!(
                readme.contains(heading),
                "data/{set}/README.md: no `{heading}`"
            );
        }
        let table = listed(&readme);
        assert!(
            table.len() > 3,
            "data/{set}/README.md lists {} files",
            table.len()
        );
        let mut present = Vec::new();
        files(&dir, &dir, &mut present);
        present.retain(|f| f != "README.md");
        present.sort();
        for f in &present {
            let Some((bytes, sha)) = table.get(f) else {
                problems.push(format!("data/{set}/{f}: not listed in its README"));
                continue;
            };
            let content = std::fs::read(dir.join(f)).unwrap();
            let got = hex(&Sha256::digest(&content));
            if content.len() as u64 != *bytes || got != *sha {
                problems.push(format!(
                    "data/{set}/{f}: {} bytes, SHA-256 {got}; the README says {bytes} bytes, {sha}",
                    content.len()
                ));
            }
        }
        for f in table.keys() {
            if !present.contains(f) {
                problems.push(format!("data/{set}/{f}: listed but missing"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Every set has its README and is named in data/README.md.
    let index = std::fs::read_to_string(root().join("data/README.md")).unwrap();
    for set in sets {
        assert!(
            index.contains(&format!("`{set}/`")),
            "data/README.md: {set}"
        );
    }
}

#[test]
fn the_checksum_table_parser_reads_rows_and_ignores_the_rest() {
    let t = listed(
        "| file | bytes | SHA-256 |\n|---|---|---|\n\
         | `a/b.txt` | 12 | `00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff` |\n\
         | `c` | x | `00` |\n",
    );
    assert_eq!(t.len(), 1);
    assert_eq!(t["a/b.txt"].0, 12);
}
