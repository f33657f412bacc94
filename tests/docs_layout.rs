//! The docs that say where the code is are held to the code: every module
//! a library declares is named in its crate's `//! # Layout` and in its
//! crate's table in docs/architecture.md, and every library the binary
//! depends on is in the architecture diagram.
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use revocation_test_support::repo_root;

/// The libraries (every directory of `libs/`), by the short name
/// docs/architecture.md uses (the directory's): a new crate is held to the
/// docs without anyone remembering to list it here.
fn crates() -> Vec<(String, String)> {
    let mut crates: Vec<(String, String)> = std::fs::read_dir(repo_root().join("libs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .map(|name| (name.clone(), format!("libs/{name}")))
        .collect();
    crates.sort();
    assert!(crates.len() >= 5, "libs/ holds {crates:?}");
    crates
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The modules `lib.rs` declares (`mod x;` and `pub mod x;`).
fn modules(lib: &str) -> Vec<String> {
    lib.lines()
        .filter_map(|l| l.strip_prefix("pub mod ").or_else(|| l.strip_prefix("mod ")))
        .filter_map(|rest| rest.strip_suffix(';'))
        .map(str::to_owned)
        .collect()
}

/// The text of a section: from the line `heading` to the next line that
/// starts a section of the same kind (`prefix`).
fn section<'a>(text: &'a str, heading: &str, prefix: &str) -> Option<&'a str> {
    let start = text.find(heading)? + heading.len();
    let rest = &text[start..];
    let end = rest.find(&format!("\n{prefix}")).unwrap_or(rest.len());
    Some(&rest[..end])
}

#[test]
fn every_module_is_in_its_crates_layout_and_in_docs_architecture() {
    let architecture = read("docs/architecture.md");
    let mut missing = Vec::new();
    for (name, dir) in crates() {
        let lib = read(&format!("{dir}/src/lib.rs"));
        let layout =
            section(&lib, "//! # Layout", "//! # ").unwrap_or_else(|| panic!("{dir}/src/lib.rs has no `//! # Layout`"));
        let table = section(&architecture, &format!("## The modules of `{name}`"), "## ")
            .unwrap_or_else(|| panic!("docs/architecture.md has no \"## The modules of `{name}`\""));
        for module in modules(&lib) {
            let quoted = format!("`{module}`");
            if !layout.contains(&quoted) {
                missing.push(format!("{dir}/src/lib.rs `# Layout` does not name {quoted}"));
            }
            if !table.contains(&format!("| {quoted} |")) {
                missing.push(format!("docs/architecture.md's table of `{name}` has no row for {quoted}"));
            }
        }
    }
    assert!(missing.is_empty(), "the docs miss modules:\n{}", missing.join("\n"));
}

#[test]
fn the_diagram_says_every_library_the_binary_uses() {
    let manifest = read("services/projector/Cargo.toml");
    let dependencies = section(&manifest, "[dependencies]", "[").unwrap();
    let architecture = read("docs/architecture.md");
    let binary = architecture
        .lines()
        .find(|l| l.contains("services/projector") && l.contains("uses"))
        .expect("docs/architecture.md's diagram has a line for services/projector saying what it uses");
    for (name, _) in crates() {
        if dependencies.contains(&format!("revocation-{name}")) {
            assert!(
                binary.contains(name.as_str()),
                "the binary uses revocation-{name}; the diagram's line does not say so:\n{binary}"
            );
        }
    }
}
