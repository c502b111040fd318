//! The architecture's rules, checked on the source itself (issue 20): no cycle between the
//! crates' top-level modules, no source file over 800 lines, exit codes chosen only at the
//! edge (`exit::Coded` built in `src/ops` alone), and every statement run through `Server`
//! (its session is private to `src/conn`). No servers needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 800;

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The file's lines that are code (comments dropped: they may name any module).
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.trim_start().starts_with("//"))
}

/// Each top-level module of the crate under `src` → the top-level modules it names as
/// `crate::X`.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src) {
        let rel = file.strip_prefix(src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let deps = graph.entry(top.clone()).or_default();
        for line in code_lines(&text) {
            for part in line.split("crate::").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != top {
                    deps.insert(name);
                }
            }
        }
    }
    graph
}

/// A module that reaches itself through others, with the path, if any.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn walk(
        g: &BTreeMap<String, BTreeSet<String>>,
        at: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == at) {
            let mut c = path[i..].to_vec();
            c.push(at.to_string());
            return Some(c);
        }
        if done.contains(at) {
            return None;
        }
        path.push(at.to_string());
        for next in g.get(at).into_iter().flatten() {
            if let Some(c) = walk(g, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(at.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|m| walk(graph, m, &mut Vec::new(), &mut done))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn no_cycle_between_top_level_modules() {
    for src in ["src", "sandbox/src"] {
        let graph = module_graph(&root().join(src));
        assert!(graph.len() > 5, "{src}: {graph:?}");
        if let Some(c) = cycle(&graph) {
            panic!("{src}: module cycle {}", c.join(" → "));
        }
    }
}

#[test]
fn no_source_file_over_800_lines() {
    let mut long = Vec::new();
    for src in ["src", "sandbox/src"] {
        for file in rust_files(&root().join(src)) {
            let n = std::fs::read_to_string(&file).unwrap().lines().count();
            if n > MAX_LINES {
                long.push(format!("{} ({n})", file.display()));
            }
        }
    }
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}

#[test]
fn exit_codes_are_chosen_only_at_the_edge() {
    let src = root().join("src");
    let mut outside = Vec::new();
    for file in rust_files(&src) {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .to_string();
        if rel.starts_with("ops/") || rel == "exit.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        if code_lines(&text).any(|l| l.contains("Coded(")) {
            outside.push(rel);
        }
    }
    assert!(
        outside.is_empty(),
        "exit::Coded built outside src/ops: {outside:?}"
    );
}

#[test]
fn statements_run_only_through_server() {
    let src = root().join("src");
    let raw = [
        ".query_first(",
        ".query_drop(",
        ".exec_first(",
        ".exec_drop(",
        ".exec_iter(",
        ".query_iter(",
    ];
    let mut outside = Vec::new();
    for file in rust_files(&src) {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .to_string();
        if rel.starts_with("conn/") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        if code_lines(&text).any(|l| raw.iter().any(|r| l.contains(r))) {
            outside.push(rel);
        }
    }
    assert!(
        outside.is_empty(),
        "raw queries outside src/conn: {outside:?}"
    );
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(cycle(&g).unwrap(), ["a", "b", "c", "a"]);
    g.get_mut("c").unwrap().clear();
    assert!(cycle(&g).is_none());
}
