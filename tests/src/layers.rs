//! The layering of the daemon (`appliance/src`) and the web server (`webgui/src`), checked
//! from their sources: every top-level module has a layer; a module may import (`crate::…`)
//! from its own layer or below, never above; and no two modules import each other, however
//! indirectly. A new module must be given its layer here, which is where a reviewer sees
//! where it sits. Std only: the sources are read as text.

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// appliance/src, bottom to top (see its `lib.rs`).
    const APPLIANCE: &[(&str, u8)] = &[
        ("clock", 0),
        ("config", 0),
        ("smtp", 0),
        ("tls", 0),
        ("settings", 0),
        ("network", 0),
        ("update", 0),
        ("policy", 1),
        ("relay", 2),
        ("federation", 3),
        ("keystore", 3),
        ("views", 3),
        ("member", 4),
        ("services", 5),
        ("dispatch", 6),
        ("control", 7),
        ("web", 7),
        ("tasks", 7),
        ("daemon", 7),
    ];

    /// webgui/src, bottom to top (see its `lib.rs`).
    const WEBGUI: &[(&str, u8)] = &[
        ("auth", 0),
        ("tls", 0),
        ("app", 1),
        ("openapi", 2),
        ("api", 3),
        ("pages", 3),
        ("wellknown", 3),
        ("server", 4),
    ];

    fn src(krate: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(krate)
            .join("src")
    }

    /// Every `.rs` file of a crate's library (binaries in `src/bin` are crates of their own).
    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "bin") {
                    files(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The top-level module a file belongs to (None: the crate root, `lib.rs`).
    fn module_of(root: &Path, file: &Path) -> Option<String> {
        let rel = file.strip_prefix(root).ok()?;
        let first = rel.components().next()?.as_os_str().to_str()?;
        if first == "lib.rs" {
            return None;
        }
        Some(first.trim_end_matches(".rs").to_owned())
    }

    /// The top-level modules a source text names through `crate::` paths (in `use`
    /// declarations, grouped or not, and in paths in code), comments left out.
    fn imports(text: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for line in text.lines() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            let code = code.split(" // ").next().unwrap_or(code);
            let mut rest = code;
            while let Some(i) = rest.find("crate::") {
                // Not part of a longer path such as `postern_crate::`.
                let before = rest[..i].chars().last();
                rest = &rest[i + "crate::".len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                if let Some(group) = rest.strip_prefix('{') {
                    let inner = group.split('}').next().unwrap_or("");
                    out.extend(inner.split(',').filter_map(first_segment));
                } else if let Some(name) = first_segment(rest) {
                    out.insert(name);
                }
            }
        }
        out
    }

    fn first_segment(path: &str) -> Option<String> {
        let name: String = path
            .trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        (!name.is_empty() && name.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
            .then_some(name)
    }

    /// The crate's import graph between top-level modules.
    fn graph(krate: &str) -> BTreeMap<String, BTreeSet<String>> {
        let root = src(krate);
        let mut all = Vec::new();
        files(&root, &mut all);
        assert!(all.len() > 5, "{krate}: only {all:?}");
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in &all {
            let Some(m) = module_of(&root, f) else {
                continue;
            };
            let text = std::fs::read_to_string(f).expect("read source");
            let deps = g.entry(m.clone()).or_default();
            deps.extend(imports(&text).into_iter().filter(|d| *d != m));
        }
        // Items the crate root defines itself (`crate::Backend`) sit below everything.
        let modules: BTreeSet<String> = g.keys().cloned().collect();
        for deps in g.values_mut() {
            deps.retain(|d| modules.contains(d));
        }
        g
    }

    /// Problems with `krate`'s layering: unknown modules, upward imports, circles.
    fn check(krate: &str, layers: &[(&str, u8)]) -> Vec<String> {
        let g = graph(krate);
        let layer: BTreeMap<&str, u8> = layers.iter().copied().collect();
        let mut problems = Vec::new();
        for m in g.keys() {
            if !layer.contains_key(m.as_str()) {
                problems.push(format!(
                    "{krate}: module {m} has no layer (add it to tests/src/layers.rs)"
                ));
            }
        }
        for (m, deps) in &g {
            for d in deps {
                if let (Some(a), Some(b)) = (layer.get(m.as_str()), layer.get(d.as_str()))
                    && b > a
                {
                    problems.push(format!(
                        "{krate}: {m} (layer {a}) imports {d} (layer {b}), which is above it"
                    ));
                }
            }
        }
        problems.extend(
            circles(&g)
                .into_iter()
                .map(|c| format!("{krate}: import circle {}", c.join(" → "))),
        );
        problems
    }

    /// Every circle in the graph, as the path that closes it.
    fn circles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
        fn visit(
            g: &BTreeMap<String, BTreeSet<String>>,
            m: &str,
            path: &mut Vec<String>,
            done: &mut BTreeSet<String>,
            found: &mut Vec<Vec<String>>,
        ) {
            if let Some(i) = path.iter().position(|p| p == m) {
                let mut c = path[i..].to_vec();
                c.push(m.to_owned());
                found.push(c);
                return;
            }
            if done.contains(m) {
                return;
            }
            path.push(m.to_owned());
            for d in g.get(m).into_iter().flatten() {
                visit(g, d, path, done, found);
            }
            path.pop();
            done.insert(m.to_owned());
        }
        let mut found = Vec::new();
        let mut done = BTreeSet::new();
        for m in g.keys() {
            visit(g, m, &mut Vec::new(), &mut done, &mut found);
        }
        found
    }

    #[test]
    fn the_daemon_imports_only_downwards_and_without_circles() {
        let problems = check("appliance", APPLIANCE);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn the_web_server_imports_only_downwards_and_without_circles() {
        let problems = check("webgui", WEBGUI);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn the_checker_sees_imports_and_circles() {
        let text = "use crate::{member::Member, views::{A, B}};\nuse crate::relay::trace;\n\
                    // crate::commented\nlet x = crate::services::now_secs(); // crate::after\n\
                    use postern_crate::nothing;";
        let found: Vec<String> = imports(text).into_iter().collect();
        assert_eq!(found, ["member", "relay", "services", "views"]);
        let mut g = BTreeMap::new();
        g.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
        g.insert("b".to_owned(), BTreeSet::from(["c".to_owned()]));
        g.insert("c".to_owned(), BTreeSet::from(["a".to_owned()]));
        g.insert("d".to_owned(), BTreeSet::from(["a".to_owned()]));
        assert_eq!(circles(&g), [["a", "b", "c", "a"]]);
    }
}
