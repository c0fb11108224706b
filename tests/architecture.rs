//! The crate's top-level modules (`src/<name>/` or `src/<name>.rs`) import one another without a
//! cycle, so they stack in the layers of ARCHITECTURE §3: `domain` at the bottom (it imports
//! nothing of the crate), `config` below the store (it reaches neither the store nor anything
//! above it), then the store, the stages, and `app` and `cli` composing them on top.
//!
//! The sources are read the way the compiler finds them: from `src/lib.rs` down the `mod`
//! declarations (with their `#[path]` attributes), and every `.rs` file under `src/` must be
//! reached, so a file the walk cannot place fails rather than going unread. In each file a
//! reference to another top-level module is a path that starts with `crate::<top>` (in a `use`
//! line, a `use` group `crate::{a, b::c}`, or an expression or type) or with as many `super::`
//! as lead back to the crate root, counting inline `mod` blocks.
//!
//! Left out, on purpose:
//! - `src/lib.rs` only declares the modules, and `src/main.rs` is the binary that calls `cli`;
//!   neither belongs to a layer.
//! - Code under `#[cfg(test)]` (test modules inline or in their own files): a unit test may build
//!   its fixtures from a higher layer without the compiled crate depending on it.
//!
//! `app` and `cli` are the composition root: nothing imports `cli`, and only `cli` imports `app`
//! (asserted below), so they cannot close a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Edges that still close a cycle, each with why it is not broken yet. An entry that no longer
/// matches an edge fails the test, so the list cannot go stale.
const KNOWN_CYCLE_EDGES: &[(&str, &str, &str)] = &[];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Str(String),
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

/// Splits Rust source into identifiers, `::`, string literals and single punctuation, dropping
/// comments, char literals, lifetimes and numbers: what is left is enough to follow paths and
/// `mod` declarations.
fn lex(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let ident_start = |ch: char| ch == '_' || ch.is_alphabetic();
    let ident_cont = |ch: char| ch == '_' || ch.is_alphanumeric();
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            let start_line = line;
            let mut s = String::new();
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                if c.get(i) == Some(&'\n') {
                    line += 1;
                }
                if let Some(&x) = c.get(i) {
                    s.push(x);
                }
                i += 1;
            }
            i += 1;
            out.push(Token {
                tok: Tok::Str(s),
                line: start_line,
            });
        } else if ch == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a), which has no closing quote.
            if c.get(i + 1) == Some(&'\\') {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && ident_cont(c[i]) {
                i += 1;
            }
        } else if ident_start(ch) {
            let start = i;
            while i < c.len() && ident_cont(c[i]) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            // Raw strings (r"..", r#".."#, br".."), whose contents take no escapes, and raw
            // identifiers (r#type).
            if (word == "r" || word == "br") && matches!(c.get(i), Some('"' | '#')) {
                let mut hashes = 0;
                while c.get(i + hashes) == Some(&'#') {
                    hashes += 1;
                }
                if c.get(i + hashes) == Some(&'"') {
                    let start_line = line;
                    i += hashes + 1;
                    let mut s = String::new();
                    loop {
                        if i >= c.len() {
                            break;
                        }
                        if c[i] == '"' && (0..hashes).all(|h| c.get(i + 1 + h) == Some(&'#')) {
                            i += 1 + hashes;
                            break;
                        }
                        if c[i] == '\n' {
                            line += 1;
                        }
                        s.push(c[i]);
                        i += 1;
                    }
                    out.push(Token {
                        tok: Tok::Str(s),
                        line: start_line,
                    });
                    continue;
                }
                if word == "r" && hashes == 1 && c.get(i + 1).is_some_and(|&x| ident_start(x)) {
                    let start = i + 1;
                    i = start;
                    while i < c.len() && ident_cont(c[i]) {
                        i += 1;
                    }
                    out.push(Token {
                        tok: Tok::Ident(c[start..i].iter().collect()),
                        line,
                    });
                    continue;
                }
            }
            // b'x' is a byte literal, not a lifetime after `b`.
            if word == "b" && c.get(i) == Some(&'\'') {
                continue;
            }
            out.push(Token {
                tok: Tok::Ident(word),
                line,
            });
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push(Token {
                tok: Tok::PathSep,
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                tok: Tok::Punct(ch),
                line,
            });
            i += 1;
        }
    }
    out
}

/// One reference from a file to a module at the crate root.
#[derive(Debug, Clone, PartialEq)]
struct Reference {
    /// The top-level module named (it may also be an item of the root, which the caller filters).
    root_item: String,
    line: usize,
}

/// A `mod name;` declared outside `#[cfg(test)]`, with its `#[path]` if any and the inline
/// modules it sits in.
#[derive(Debug, Clone, PartialEq)]
struct ModDecl {
    name: String,
    path_attr: Option<String>,
    inline: Vec<String>,
}

#[derive(Debug, Default)]
struct Scan {
    references: Vec<Reference>,
    children: Vec<ModDecl>,
    /// `mod name;` declarations under `#[cfg(test)]`: their files are read by the walk (so every
    /// file is accounted for) but their references do not count.
    test_children: Vec<ModDecl>,
}

fn ident(t: Option<&Token>) -> Option<&str> {
    match t.map(|t| &t.tok) {
        Some(Tok::Ident(s)) => Some(s),
        _ => None,
    }
}

fn is(t: Option<&Token>, p: char) -> bool {
    matches!(t.map(|t| &t.tok), Some(Tok::Punct(x)) if *x == p)
}

fn is_sep(t: Option<&Token>) -> bool {
    matches!(t.map(|t| &t.tok), Some(Tok::PathSep))
}

/// The first segment of each item of the `use` group opening at `toks[open]` (`{`):
/// `{a, b::c, d::{e, f}}` gives a, b, d.
fn group_heads(toks: &[Token], open: usize) -> Vec<(String, usize)> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expect_head = true;
    for (k, t) in toks.iter().enumerate().skip(open) {
        match &t.tok {
            Tok::Punct('{') => {
                depth += 1;
                if depth == 1 {
                    expect_head = true;
                }
            }
            Tok::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Tok::Punct(',') if depth == 1 => expect_head = true,
            Tok::Ident(s) if depth == 1 && expect_head => {
                heads.push((s.clone(), toks[k].line));
                expect_head = false;
            }
            _ if depth == 1 => expect_head = false,
            _ => {}
        }
    }
    heads
}

/// The index of the bracket that closes the one at `toks[open]`.
fn matching(toks: &[Token], open: usize) -> usize {
    let mut depth = 0i32;
    for (k, t) in toks.iter().enumerate().skip(open) {
        match &t.tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    toks.len() - 1
}

/// The index just past the item starting at `i`: its first `;` or its first balanced `{..}`,
/// whichever ends first at the item's own level.
fn skip_item(toks: &[Token], mut i: usize) -> usize {
    let mut depth = 0i32;
    while i < toks.len() {
        match &toks[i].tok {
            Tok::Punct('(' | '[') => depth += 1,
            Tok::Punct(')' | ']') => depth -= 1,
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
                if depth < 0 {
                    // The item was the last of its block: leave the block's `}` to the caller.
                    return i;
                }
            }
            Tok::Punct(';') if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    i
}

/// Finds the paths that reach the crate root and the `mod` declarations of one file whose module
/// path (from the crate root) has `depth` segments.
fn scan(src: &str, depth: usize) -> Scan {
    let toks = lex(src);
    let mut scan = Scan::default();
    // Inline `mod name {` blocks we are in, with the brace depth at which each closes.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut braces = 0usize;
    let mut cfg_test = false;
    let mut path_attr: Option<String> = None;
    let mut i = 0;
    while i < toks.len() {
        // `pub mod`, `pub(crate) mod`: the visibility does not change where the file is.
        if ident(toks.get(i)) == Some("pub") {
            let j = if is(toks.get(i + 1), '(') {
                matching(&toks, i + 1) + 1
            } else {
                i + 1
            };
            if ident(toks.get(j)) == Some("mod") {
                i = j;
            }
        }
        let t = &toks[i];
        match &t.tok {
            Tok::Punct('#') => {
                // An attribute: #[..] or #![..]; remember cfg(test) and path = "..".
                let mut j = i + 1;
                if is(toks.get(j), '!') {
                    j += 1;
                }
                if is(toks.get(j), '[') {
                    let end = matching(&toks, j);
                    let body = &toks[j + 1..end];
                    let words: Vec<&Tok> = body.iter().map(|t| &t.tok).collect();
                    if words
                        == [
                            &Tok::Ident("cfg".into()),
                            &Tok::Punct('('),
                            &Tok::Ident("test".into()),
                            &Tok::Punct(')'),
                        ]
                    {
                        cfg_test = true;
                    }
                    if let [Tok::Ident(p), Tok::Punct('='), Tok::Str(s)] = words.as_slice() {
                        if p == "path" {
                            path_attr = Some(s.clone());
                        }
                    }
                    i = end + 1;
                    continue;
                }
                i += 1;
                continue;
            }
            Tok::Ident(w) if w == "mod" => {
                if let Some(name) = ident(toks.get(i + 1)) {
                    let decl = ModDecl {
                        name: name.to_string(),
                        path_attr: path_attr.take(),
                        inline: inline.iter().map(|(n, _)| n.clone()).collect(),
                    };
                    if is(toks.get(i + 2), ';') {
                        if cfg_test {
                            scan.test_children.push(decl);
                        } else {
                            scan.children.push(decl);
                        }
                        cfg_test = false;
                        i += 3;
                        continue;
                    }
                    if is(toks.get(i + 2), '{') && !cfg_test {
                        braces += 1;
                        inline.push((name.to_string(), braces));
                        i += 3;
                        continue;
                    }
                }
            }
            _ => {}
        }
        if cfg_test {
            // The item the attribute applies to is test code: step over it whole.
            cfg_test = false;
            path_attr = None;
            i = skip_item(&toks, i);
            continue;
        }
        path_attr = None;
        match &t.tok {
            Tok::Punct('{') => braces += 1,
            Tok::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == braces) {
                    inline.pop();
                }
                braces = braces.saturating_sub(1);
            }
            Tok::Ident(w) if w == "crate" && is_sep(toks.get(i + 1)) => {
                if let Some(name) = ident(toks.get(i + 2)) {
                    scan.references.push(Reference {
                        root_item: name.to_string(),
                        line: t.line,
                    });
                } else if is(toks.get(i + 2), '{') {
                    for (name, line) in group_heads(&toks, i + 2) {
                        scan.references.push(Reference {
                            root_item: name,
                            line,
                        });
                    }
                }
            }
            Tok::Ident(w)
                if w == "super" && !is_sep(i.checked_sub(1).and_then(|k| toks.get(k))) =>
            {
                let mut k = i;
                let mut ups = 0;
                while ident(toks.get(k)) == Some("super") && is_sep(toks.get(k + 1)) {
                    ups += 1;
                    k += 2;
                }
                if ups > 0 && ups == depth + inline.len() {
                    if let Some(name) = ident(toks.get(k)) {
                        scan.references.push(Reference {
                            root_item: name.to_string(),
                            line: t.line,
                        });
                    } else if is(toks.get(k), '{') {
                        for (name, line) in group_heads(&toks, k) {
                            scan.references.push(Reference {
                                root_item: name,
                                line,
                            });
                        }
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    scan
}

/// Where the file of `mod <decl.name>;` is, declared in `file`.
fn child_file(file: &Path, decl: &ModDecl) -> Option<PathBuf> {
    let dir = file.parent()?;
    let stem = file.file_stem()?.to_str()?;
    let owns_dir = matches!(stem, "lib" | "main" | "mod");
    if let Some(p) = &decl.path_attr {
        // Outside inline blocks a #[path] is relative to the declaring file's directory; inside
        // them, to the directory the inline modules would have.
        let mut base = dir.to_path_buf();
        if !decl.inline.is_empty() {
            if !owns_dir {
                base.push(stem);
            }
            base.extend(&decl.inline);
        }
        return Some(base.join(p));
    }
    let mut base = dir.to_path_buf();
    if !owns_dir {
        base.push(stem);
    }
    base.extend(&decl.inline);
    let flat = base.join(format!("{}.rs", decl.name));
    if flat.exists() {
        return Some(flat);
    }
    Some(base.join(&decl.name).join("mod.rs"))
}

#[derive(Debug, Default)]
struct Graph {
    /// Top-level modules, as declared in src/lib.rs.
    tops: BTreeSet<String>,
    /// from → to → the first place (file:line) that makes the edge.
    edges: BTreeMap<String, BTreeMap<String, String>>,
}

fn crate_graph(root: &Path) -> Graph {
    let src = root.join("src");
    let lib = src.join("lib.rs");
    let mut graph = Graph::default();
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    seen.insert(lib.clone());
    let lib_scan = scan(&read(&lib), 0);
    // (file, module path from the root, counts?)
    let mut queue: Vec<(PathBuf, Vec<String>, bool)> = Vec::new();
    for decl in &lib_scan.children {
        graph.tops.insert(decl.name.clone());
        let file = child_file(&lib, decl).expect("a module file");
        queue.push((file, vec![decl.name.clone()], true));
    }
    while let Some((file, module, counts)) = queue.pop() {
        assert!(
            file.exists(),
            "{} is declared but not found",
            file.display()
        );
        seen.insert(file.clone());
        let s = scan(&read(&file), module.len());
        for (decls, child_counts) in [(&s.children, counts), (&s.test_children, false)] {
            for decl in decls {
                let child = child_file(&file, decl).expect("a module file");
                let mut path = module.clone();
                path.extend(decl.inline.iter().cloned());
                path.push(decl.name.clone());
                queue.push((child, path, child_counts));
            }
        }
        if !counts {
            continue;
        }
        let from = &module[0];
        for r in s.references {
            if &r.root_item == from || !graph.tops.contains(&r.root_item) {
                continue;
            }
            let place = format!(
                "{}:{}",
                file.strip_prefix(root).unwrap_or(&file).display(),
                r.line
            );
            graph
                .edges
                .entry(from.clone())
                .or_default()
                .entry(r.root_item)
                .or_insert(place);
        }
    }
    let mut unread = Vec::new();
    walk(&src, &mut |p| {
        if p.extension().is_some_and(|e| e == "rs") && !seen.contains(p) && p != src.join("main.rs")
        {
            unread.push(p.display().to_string());
        }
    });
    assert!(
        unread.is_empty(),
        "files under src/ that no `mod` declaration reaches, so their imports go unchecked: {unread:?}"
    );
    graph
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, f);
        } else {
            f(&p);
        }
    }
}

/// Every cycle's strongly connected component, each shown as one cycle through it
/// (`a → b → … → a`), found with Tarjan's algorithm.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        components: Vec<Vec<&'a str>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.edges.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                self.components.push(component);
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    let mut out = Vec::new();
    for component in t.components {
        let members: BTreeSet<&str> = component.iter().copied().collect();
        let self_loop = edges
            .get(component[0])
            .is_some_and(|to| to.contains(component[0]));
        if members.len() < 2 && !self_loop {
            continue;
        }
        // The shortest way back to the component's first member (by name), inside it.
        let start = *members.iter().next().expect("a member");
        let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
        let mut frontier = vec![start];
        let mut end = None;
        'search: while !frontier.is_empty() {
            let mut next = Vec::new();
            for v in frontier {
                for w in edges.get(v).into_iter().flatten() {
                    let w = w.as_str();
                    if !members.contains(w) {
                        continue;
                    }
                    if w == start {
                        end = Some(v);
                        break 'search;
                    }
                    if !prev.contains_key(w) {
                        prev.insert(w, v);
                        next.push(w);
                    }
                }
            }
            frontier = next;
        }
        let mut path = vec![start.to_string()];
        let mut v = end.expect("a component has a cycle through each member");
        let mut back = vec![v];
        while v != start {
            v = prev[v];
            back.push(v);
        }
        back.pop();
        path.extend(back.iter().rev().map(|s| s.to_string()));
        path.push(start.to_string());
        out.push(path);
    }
    out.sort();
    out
}

/// The modules that both reach `start` and are reached from it.
fn component_of(edges: &BTreeMap<String, BTreeSet<String>>, start: &str) -> BTreeSet<String> {
    let reach = |forward: bool| {
        let mut seen = BTreeSet::from([start.to_string()]);
        let mut todo = vec![start.to_string()];
        while let Some(v) = todo.pop() {
            for (a, to) in edges {
                for b in to {
                    let (from, next) = if forward { (a, b) } else { (b, a) };
                    if *from == v && seen.insert(next.clone()) {
                        todo.push(next.clone());
                    }
                }
            }
        }
        seen
    };
    reach(true).intersection(&reach(false)).cloned().collect()
}

#[test]
fn top_level_modules_form_no_cycle() {
    let graph = crate_graph(Path::new(env!("CARGO_MANIFEST_DIR")));
    assert!(
        graph.tops.len() > 10 && graph.tops.contains("domain") && graph.tops.contains("store"),
        "src/lib.rs was not read as expected: {:?}",
        graph.tops
    );

    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut excused = BTreeSet::new();
    for (from, to) in &graph.edges {
        for target in to.keys() {
            if KNOWN_CYCLE_EDGES
                .iter()
                .any(|(a, b, _)| a == from && b == target)
            {
                excused.insert((from.as_str(), target.as_str()));
                continue;
            }
            edges
                .entry(from.clone())
                .or_default()
                .insert(target.clone());
        }
    }
    for (a, b, why) in KNOWN_CYCLE_EDGES {
        assert!(
            excused.contains(&(*a, *b)),
            "the known exception {a} → {b} ({why}) no longer exists: remove it"
        );
    }

    let found = cycles(&edges);
    let report: Vec<String> = found
        .iter()
        .map(|cycle| {
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|w| format!("  {} → {} at {}", w[0], w[1], graph.edges[&w[0]][&w[1]]))
                .collect();
            // Breaking this one cycle may leave others among the same modules: name them all.
            let members = component_of(&edges, &cycle[0]);
            let mut inside = Vec::new();
            for a in &members {
                for b in edges[a].iter().filter(|b| members.contains(*b)) {
                    inside.push(format!("    {a} → {b} at {}", graph.edges[a][b]));
                }
            }
            format!(
                "{}\n{}\n  every import among {members:?}:\n{}",
                cycle.join(" → "),
                steps.join("\n"),
                inside.join("\n")
            )
        })
        .collect();
    assert!(
        found.is_empty(),
        "the top-level modules import one another in a cycle:\n{}",
        report.join("\n")
    );
}

#[test]
fn app_and_cli_are_the_composition_root() {
    let graph = crate_graph(Path::new(env!("CARGO_MANIFEST_DIR")));
    for (from, to) in &graph.edges {
        if let Some(at) = to.get("cli") {
            panic!("{from} imports cli at {at}: only src/main.rs calls the command line");
        }
        if let Some(at) = to.get("app").filter(|_| from != "cli") {
            panic!("{from} imports app at {at}: only cli starts the application");
        }
    }
}

#[test]
fn domain_is_the_bottom_layer() {
    let graph = crate_graph(Path::new(env!("CARGO_MANIFEST_DIR")));
    if let Some(to) = graph.edges.get("domain") {
        panic!("domain imports other modules of the crate: {to:?}");
    }
}

#[test]
fn config_is_below_the_store() {
    let graph = crate_graph(Path::new(env!("CARGO_MANIFEST_DIR")));
    let mut seen = BTreeSet::from(["config".to_string()]);
    let mut path_to: BTreeMap<String, Vec<String>> =
        BTreeMap::from([("config".to_string(), vec!["config".to_string()])]);
    let mut todo = vec!["config".to_string()];
    while let Some(from) = todo.pop() {
        for (to, at) in graph.edges.get(&from).into_iter().flatten() {
            if seen.insert(to.clone()) {
                let mut path = path_to[&from].clone();
                path.push(format!("{to} (at {at})"));
                assert!(
                    to != "store",
                    "config reaches the store: {}",
                    path.join(" → ")
                );
                path_to.insert(to.clone(), path);
                todo.push(to.clone());
            }
        }
    }
}

// The checker itself: each case here is one the crate has, or had, and that the walk must see.

#[test]
fn scan_finds_paths_to_the_root() {
    let src = r##"
        use crate::store::Store;
        use crate::{alerts::Alert, config::{Settings, Feeds}};
        use super::metrics;
        pub(crate) fn f() -> crate::domain::Code { todo!() }
        // use crate::commented::Out;
        const S: &str = "crate::in_a_string";
        const R: &str = r#"crate::in_a_raw_string"#;
        fn g<'a>(x: &'a str) -> char { let _ = '"'; 'x' }
        mod inner {
            use super::super::report;
            use super::sibling;
        }
        use super::after_inner;
        #[cfg(test)]
        mod tests {
            use crate::test_only::Fixture;
        }
        #[cfg(test)]
        use crate::test_only_use;
        #[cfg(test)]
        #[path = "x_tests.rs"]
        pub(crate) mod x_tests;
        pub mod real;
    "##;
    let s = scan(src, 1);
    let names: Vec<&str> = s.references.iter().map(|r| r.root_item.as_str()).collect();
    assert_eq!(
        names,
        [
            "store",
            "alerts",
            "config",
            "metrics",
            "domain",
            "report",
            "after_inner"
        ]
    );
    assert_eq!(s.references[0].line, 2);
    assert_eq!(
        s.children,
        [ModDecl {
            name: "real".into(),
            path_attr: None,
            inline: vec![]
        }]
    );
    assert_eq!(
        s.test_children,
        [ModDecl {
            name: "x_tests".into(),
            path_attr: Some("x_tests.rs".into()),
            inline: vec![]
        }]
    );
}

#[test]
fn cycles_are_named_as_paths() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in [
        ("config", "collectors"),
        ("collectors", "ingest"),
        ("ingest", "config"),
        ("ingest", "domain"),
        ("store", "domain"),
    ] {
        edges.entry(a.into()).or_default().insert(b.into());
    }
    assert_eq!(
        cycles(&edges),
        [["collectors", "ingest", "config", "collectors"]]
    );
    edges.get_mut("ingest").map(|to| to.remove("config"));
    assert!(cycles(&edges).is_empty());
}
