//! The repository explains itself: every link in the README and `docs/` resolves inside the
//! repository (the file, and the heading an anchor names), every repository path the docs
//! quote exists, every `docs/…md` a source file cites exists with its anchor, and nothing
//! cites a document outside the repository or speaks of issue numbers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level folders of the repository: a quoted path starting with one is checked.
const FOLDERS: &[&str] = &[
    "shared",
    "txchain",
    "mainchain",
    "channels",
    "hub",
    "client",
    "node",
    "tests",
    "docs",
    ".ci",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    for entry in fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Source files of ours (not build output, not installed test packages).
fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if !matches!(
                name.as_str(),
                "target" | "node_modules" | ".venv" | ".git" | "devnet"
            ) {
                source_files(&path, out);
            }
        } else if name.ends_with(".rs")
            || name.ends_with(".toml")
            || dir.file_name().is_some_and(|d| d == ".ci")
        {
            out.push(path);
        }
    }
}

/// The anchor GitHub gives a heading: lower case, inline code marks and punctuation dropped,
/// spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a markdown file's headings (outside code blocks), with GitHub's `-1`, `-2`
/// suffixes for repeated headings.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code || !line.starts_with('#') {
            continue;
        }
        let base = slug(line.trim_start_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// `[text](target)` link targets outside code blocks and inline code.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            targets.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    targets
}

/// Checks that `target` (a path relative to `from_dir`, maybe with `#anchor`) exists.
fn check_target(
    root: &Path,
    from_dir: &Path,
    from: &str,
    target: &str,
    problems: &mut Vec<String>,
) {
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (target, None),
    };
    let file = if path.is_empty() {
        from_dir.join(Path::new(from).file_name().unwrap())
    } else {
        from_dir.join(path)
    };
    if !file.exists() {
        problems.push(format!("{from}: `{target}`: no such file"));
        return;
    }
    if let Some(anchor) = anchor {
        let text = fs::read_to_string(&file).unwrap_or_default();
        if !anchors(&text).contains(anchor) {
            let shown = file
                .strip_prefix(root)
                .unwrap_or(&file)
                .display()
                .to_string();
            problems.push(format!(
                "{from}: `{target}`: {shown} has no heading #{anchor}"
            ));
        }
    }
}

#[test]
fn every_doc_link_and_quoted_path_resolves_inside_the_repository() {
    let root = root();
    let mut problems = Vec::new();
    for file in markdown_files(&root) {
        let text = fs::read_to_string(&file).unwrap();
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        let dir = file.parent().unwrap();
        for target in link_targets(&text) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            check_target(&root, dir, &name, &target, &mut problems);
        }
        // Quoted repository paths: `txchain/core/src/apply.rs`, `tests/tests/integration/x.rs`.
        for quoted in text.split('`').skip(1).step_by(2) {
            let path = quoted.trim_end_matches(['.', ',', ':', ';']);
            let path = path.split(['#', ':']).next().unwrap_or_default();
            let Some((first, _)) = path.split_once('/') else {
                continue;
            };
            if !FOLDERS.contains(&first)
                || path.contains(char::is_whitespace)
                || path.contains(['*', '<', '>', '…', '{'])
                // Made by the setup script or a build, not kept in the repository: whether
                // they exist depends on what has run on this machine.
                || path
                    .split('/')
                    .any(|c| matches!(c, ".venv" | "node_modules" | "target"))
            {
                continue;
            }
            if !root.join(path).exists() {
                problems.push(format!("{name}: quotes `{path}`, which does not exist"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Whether the relative path in `line` that climbs into a `shared` folder at `at` (with any
/// further climbs before it), taken from `dir`, names something that exists inside the
/// repository (a manifest's path dependency on the project's own `shared/` crates does; the
/// folder beside the checkout does not).
fn resolves_inside(root: &Path, dir: &Path, line: &str, at: usize) -> bool {
    let mut start = at;
    while line[..start].ends_with("../") {
        start -= 3;
    }
    let cited: String = line[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "/.-_".contains(*c))
        .collect();
    let mut path = dir.to_path_buf();
    for part in cited.trim_end_matches('.').split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if !path.pop() {
                    return false;
                }
            }
            p => path.push(p),
        }
    }
    path.starts_with(root) && path.exists()
}

#[test]
fn sources_cite_only_documents_of_this_repository() {
    let root = root();
    let mut files = Vec::new();
    source_files(&root, &mut files);
    files.extend(markdown_files(&root));
    // Built from parts, so that this file does not itself hold what it looks for.
    let design = ["DESIGN", " §"].concat();
    let up_shared = ["..", "/shared/"].concat();
    let mut problems = Vec::new();
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        for (n, line) in text.lines().enumerate() {
            let at = format!("{name}:{}", n + 1);
            let escapes = line
                .match_indices(up_shared.as_str())
                .any(|(i, _)| !resolves_inside(&root, file.parent().unwrap_or(&root), line, i));
            if line.contains(design.as_str()) || escapes {
                problems.push(format!("{at}: cites a document outside the repository"));
            }
            let lower = line.to_lowercase();
            for (i, _) in lower.match_indices("issue ") {
                if lower[i + 6..].starts_with(|c: char| c.is_ascii_digit()) {
                    problems.push(format!("{at}: speaks of an issue number"));
                }
            }
            // `docs/<name>.md` and `docs/<name>.md#<anchor>` cited from anywhere (the
            // repository's own docs folder: not preceded by another path segment).
            let mut from = 0;
            while let Some(offset) = line[from..].find("docs/") {
                let start = from + offset;
                from = start + "docs/".len();
                let before = line[..start].chars().next_back();
                if before.is_some_and(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c)) {
                    continue;
                }
                let cited: String = line[start..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || "/.-_#".contains(*c))
                    .collect();
                let cited = cited.trim_end_matches(['.', '#']);
                let Some(md) = cited.find(".md") else {
                    continue;
                };
                let (_, anchor) = cited.split_at(md + 3);
                if anchor.is_empty() || anchor.starts_with('#') {
                    check_target(&root, &root, &at, cited, &mut problems);
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
