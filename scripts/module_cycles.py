#!/usr/bin/env python3
"""Finds import cycles between the library's modules.

Usage: python3 scripts/module_cycles.py [SRC_DIR]    (default: src/ beside this script)

Each file under SRC_DIR is a module: `lib.rs` is the crate root, `a/b.rs` is `a::b`,
`a/mod.rs` is `a`. A file depends on every module that a path in its code names:
`crate::a::b::Item`, `super::Item`, `self::child::Item`, and, in a `use` line, a child
module it declares (`mod child;` then `pub use child::Item`). A path names the longest
module prefix it has, so a child that uses its parent module's items (`crate::a::Item`
from `a/b.rs`) depends on the parent file. Doc comments (`//!`, `///`) and plain comments
are not code: a doc link is not an import.

Exits 1 and prints each cycle (one line per strongly connected group of modules, with the
edges inside it), or 0 and prints "no import cycles".
"""

import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def module_of(rel):
    """`a/b.rs` -> ("a", "b"); `a/mod.rs` -> ("a",); `lib.rs` -> ()."""
    parts = rel[:-3].split(os.sep)
    if parts[-1] == "mod":
        parts = parts[:-1]
    if parts == ["lib"] or parts == ["main"]:
        return ()
    return tuple(parts)


def strip_comments(text):
    """Removes comments and string literals' contents, keeping line structure."""
    out = []
    i, n = 0, len(text)
    depth = 0  # block comment nesting
    while i < n:
        c = text[i]
        if depth:
            if text.startswith("/*", i):
                depth += 1
                i += 2
            elif text.startswith("*/", i):
                depth -= 1
                i += 2
            else:
                if c == "\n":
                    out.append(c)
                i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth = 1
            i += 2
        elif c == '"':
            # A string literal: skip to its closing quote (raw strings are rare enough here
            # to be handled the same way: their contents never hold a quote in this crate).
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and i + 2 < n and (text[i + 2] == "'" or text[i + 1] == "\\"):
            # A char literal such as '"' or '\n' (a lifetime has no closing quote).
            j = text.find("'", i + 2)
            out.append("' '")
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> [["a","b"], ["a","c","d"], ["a","c","e"]]."""
    tree = tree.strip()
    brace = tree.find("{")
    if brace < 0:
        path = re.sub(r"\s+as\s+\w+$", "", tree).strip()
        return [[p for p in path.split("::") if p]] if path else []
    prefix = [p for p in tree[:brace].split("::") if p.strip()]
    prefix = [p.strip() for p in prefix]
    inner = tree[brace + 1 : tree.rfind("}")]
    items, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    items.append(cur)
    paths = []
    for item in items:
        if item.strip():
            for sub in expand_use(item):
                paths.append(prefix + sub)
    return paths


def resolve(path, here, modules):
    """The module a path names, seen from module `here`, or None if it names none."""
    if not path:
        return None
    head, rest = path[0], path[1:]
    if head == "crate":
        base = ()
    elif head == "super":
        base = here[:-1]
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    elif head == "self":
        base = here
    else:
        return None
    best = base
    cur = base
    for seg in rest:
        cur = cur + (seg,)
        if cur in modules:
            best = cur
        else:
            break
    return best


def inline_modules(code):
    """[(start, end, name)] of each inline `mod name { ... }` block (e.g. `mod tests`)."""
    spans = []
    for m in re.finditer(r"\bmod\s+(" + IDENT + r")\s*\{", code):
        depth, i = 1, m.end()
        while i < len(code) and depth:
            depth += code[i] == "{"
            depth -= code[i] == "}"
            i += 1
        spans.append((m.start(), i, m.group(1)))
    return spans


def scope_at(pos, here, spans):
    """The module path at `pos`: the file's module plus the inline modules around it."""
    inner = sorted((s for s in spans if s[0] <= pos < s[1]), key=lambda s: s[0])
    return here + tuple(s[2] for s in inner)


def deps_of(code, here, modules, children):
    """The modules the file names; the edges belong to the file, whatever inline module
    (`mod tests`) holds the path, but `super`/`self` resolve from that inline module."""
    spans = inline_modules(code)
    deps = set()
    paths = []
    for m in re.finditer(r"\buse\s+([^;]*);", code):
        scope = scope_at(m.start(), here, spans)
        for p in expand_use(m.group(1)):
            if p and p[0] in children and scope == here:
                p = ["self"] + p
            paths.append((p, scope))
    for m in re.finditer(r"\b(crate|super|self)((?:\s*::\s*" + IDENT + r")+)", code):
        segs = [m.group(1)] + [s.strip() for s in m.group(2).split("::") if s.strip()]
        paths.append((segs, scope_at(m.start(), here, spans)))
    for p, scope in paths:
        target = resolve([s.strip() for s in p], scope, modules)
        if target is None:
            continue
        # A path into the file's own inline modules resolves to the file itself.
        while target not in modules:
            target = target[:-1]
        if target != here:
            deps.add(target)
    return deps


def strongly_connected(graph):
    index, low, on_stack, stack, groups = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def name(module):
    return "::".join(module) if module else "crate"


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "src"
    )
    files = {}
    for dirpath, _, names in os.walk(root):
        for f in names:
            if f.endswith(".rs"):
                rel = os.path.relpath(os.path.join(dirpath, f), root)
                files[module_of(rel)] = os.path.join(dirpath, f)
    modules = set(files)
    graph = {}
    for here, path in files.items():
        with open(path, encoding="utf-8") as fh:
            code = strip_comments(fh.read())
        children = {
            m.group(1)
            for m in re.finditer(r"\bmod\s+(" + IDENT + r")\s*;", code)
            if here + (m.group(1),) in modules
        }
        graph[here] = deps_of(code, here, modules, children)
    cycles = strongly_connected(graph)
    if not cycles:
        print("no import cycles")
        return 0
    for group in cycles:
        members = set(group)
        edges = [
            f"{name(a)} -> {name(b)}"
            for a in group
            for b in sorted(graph[a])
            if b in members
        ]
        print("cycle: " + ", ".join(name(m) for m in group))
        for e in edges:
            print("    " + e)
    return 1


if __name__ == "__main__":
    sys.exit(main())
