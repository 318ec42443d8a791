//! The documentation a reader follows: README.md and the guides in docs/ link only to files
//! and sections that exist, README.md stays a short front door, and its table lists every
//! guide there is.

use std::fs;
use std::path::{Path, PathBuf};

fn checkout() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .canonicalize()
        .unwrap()
}

/// README.md and every docs/*.md.
fn documents() -> Vec<PathBuf> {
    let root = checkout();
    let mut docs: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .expect("reading docs/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    docs.insert(0, root.join("README.md"));
    docs
}

/// The text outside fenced code blocks, where `#` starts a comment, not a heading.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(path: &Path) -> Vec<String> {
    prose(&fs::read_to_string(path).unwrap())
        .lines()
        .filter_map(|l| {
            l.trim_start_matches('#')
                .strip_prefix(' ')
                .filter(|_| l.starts_with('#'))
        })
        .map(anchor)
        .collect()
}

/// The targets of the Markdown links `[text](target)` in `text`.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            targets.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    targets
}

#[test]
fn every_link_of_the_readme_and_the_guides_leads_somewhere() {
    let mut broken = Vec::new();
    for doc in documents() {
        let text = prose(&fs::read_to_string(&doc).unwrap());
        for target in link_targets(&text) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let (file, section) = match target.split_once('#') {
                Some((file, section)) => (file, Some(section)),
                None => (target.as_str(), None),
            };
            let linked = if file.is_empty() {
                doc.clone()
            } else {
                doc.parent().unwrap().join(file)
            };
            if !linked.exists() {
                broken.push(format!("{}: {target}: no such file", doc.display()));
                continue;
            }
            if let Some(section) = section {
                if linked.extension().is_some_and(|e| e == "md")
                    && !anchors(&linked).iter().any(|a| a == section)
                {
                    broken.push(format!("{}: {target}: no such section", doc.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_is_a_short_front_door_that_lists_every_guide() {
    let root = checkout();
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines: move the detail into a guide"
    );
    // .ci/run runs the test command README.md shows, as a line by itself.
    assert!(readme.lines().any(|l| l == "make check"));
    for doc in documents().iter().skip(1) {
        let name = doc.file_name().unwrap().to_string_lossy();
        assert!(
            readme.contains(&format!("](docs/{name})")),
            "README.md's table of the guides does not list docs/{name}"
        );
    }
}
