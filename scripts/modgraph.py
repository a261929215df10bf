#!/usr/bin/env python3
"""The crate's module graph, and the check that its dependencies point one way.

    python3 scripts/modgraph.py            check; print the part graph and files per folder
    python3 scripts/modgraph.py --files    also print every file-to-file edge
    python3 scripts/modgraph.py --src DIR  another tree (e.g. an old checkout's src/)

Reads every `src/**/*.rs`, leaves out `#[cfg(test)]` items and comments, and collects each
`crate::…` path (`use` groups expanded; `super::…` resolved) as an edge from the file to the
module it names. A part is a top-level folder or file of `src/` (`token`, `decide`, …).

Fails (exit 1) on:
  - a circle between files, or between parts;
  - a part importing a part at its own rank or above it (RANK below): `filter` → `decide` →
    `config` → {`oauth`, `authz`} → `token` → {`keys`, `http`} → `crypto` → `util`.
A part not in RANK (a new folder) fails too, so that a new folder states where it stands.
"""

import argparse
import os
import re
import sys
from collections import defaultdict

# Higher may use lower; equal ranks may not use each other.
RANK = {
    "util": 0,
    "crypto": 1,
    "http": 2,
    "keys": 2,
    "token": 3,
    "authz": 4,
    "oauth": 4,
    "config": 5,
    "decide": 6,
    "filter": 7,
    "lib": 8,
}

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def strip_comments(text):
    """Removes // and /* */ comments, keeping string literals as they are."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif c == "'" and i + 2 < n and (text[i + 2] == "'" or text[i + 1] == "\\"):
            # a char literal ('x', '\n', '\''); lifetimes ('a) fall through
            j = text.find("'", i + 2 if text[i + 1] == "\\" else i + 1)
            j = i + 2 if j < 0 else j
            out.append(text[i : j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def item_end(text, start):
    """Index just past the item that starts at `start`: its `;` or its balanced `{…}`."""
    depth = 0
    i = start
    while i < len(text):
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        elif c == ";" and depth == 0:
            return i + 1
        i += 1
    return len(text)


def strip_test_items(text):
    """Removes every item under `#[cfg(test)]` (test modules, test-only functions)."""
    marker = "#[cfg(test)]"
    while True:
        at = text.find(marker)
        if at < 0:
            return text
        text = text[:at] + text[item_end(text, at + len(marker)) :]


def parse_tree(text, i):
    """Parses `a::b::{c, d::e}` from text[i:]; returns (list of paths, end index)."""
    prefix = []
    while True:
        while i < len(text) and text[i] in " \n\t":
            i += 1
        if i < len(text) and text[i] == "{":
            i += 1
            paths = []
            while True:
                while i < len(text) and text[i] in " \n\t,":
                    i += 1
                if i >= len(text) or text[i] == "}":
                    return [prefix + p for p in paths] or [prefix], i + 1
                sub, i = parse_tree(text, i)
                paths.extend(sub)
        m = IDENT.match(text, i)
        if not m:
            return [prefix], i
        prefix.append(m.group(0))
        i = m.end()
        if text.startswith("::", i):
            i += 2
        else:
            return [prefix], i


def module_of(path_in_src):
    """`token/verify.rs` -> ('token', 'verify'); `token/mod.rs` -> ('token',)."""
    parts = path_in_src[:-3].split("/")
    if parts[-1] == "mod":
        parts = parts[:-1]
    return tuple(parts)


def collect(src):
    modules = {}
    for root, _, files in os.walk(src):
        for f in files:
            if f.endswith(".rs"):
                rel = os.path.relpath(os.path.join(root, f), src).replace(os.sep, "/")
                modules[module_of(rel)] = rel
    edges = defaultdict(set)  # file module -> set of file modules
    for mod, rel in modules.items():
        with open(os.path.join(src, rel), encoding="utf-8") as fh:
            text = strip_test_items(strip_comments(fh.read()))
        for m in re.finditer(r"\b(crate|super)::", text):
            paths, _ = parse_tree(text, m.end())
            for p in paths:
                if m.group(1) == "crate":
                    full = list(p)
                else:
                    # `super` of a/b.rs is a; of a/mod.rs (module a), the crate root.
                    full = list(mod[:-1]) + list(p)
                # the longest prefix that is a module
                target = None
                for k in range(len(full), 0, -1):
                    if tuple(full[:k]) in modules:
                        target = tuple(full[:k])
                        break
                if target and target != mod:
                    edges[mod].add(target)
    return modules, edges


def part(mod):
    return mod[0] if mod else "lib"


def cycles(nodes, edges):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=os.path.join(os.path.dirname(__file__), "..", "src"))
    ap.add_argument("--files", action="store_true")
    args = ap.parse_args()
    modules, edges = collect(args.src)
    problems = []

    name = lambda m: "::".join(m) or "lib"  # noqa: E731
    for c in cycles(modules, edges):
        problems.append("file circle: " + " -> ".join(name(m) for m in c))

    part_edges = defaultdict(lambda: defaultdict(list))
    for a, targets in edges.items():
        for b in targets:
            if part(a) != part(b):
                part_edges[part(a)][part(b)].append((a, b))
    parts = sorted({part(m) for m in modules})
    for c in cycles(parts, {p: set(t) for p, t in part_edges.items()}):
        problems.append("part circle: " + " -> ".join(c))
    for p in parts:
        if p not in RANK:
            problems.append(f"part {p} has no rank in scripts/modgraph.py (RANK): say where it stands")
    for a, targets in sorted(part_edges.items()):
        for b, pairs in sorted(targets.items()):
            if a in RANK and b in RANK and RANK[b] >= RANK[a]:
                for x, y in pairs:
                    problems.append(f"upward import: {name(x)} uses {name(y)} ({a} may not use {b})")

    print("parts (rank, files), and the parts each one uses:")
    by_part = defaultdict(list)
    for m, rel in modules.items():
        by_part[part(m)].append(rel)
    for p in sorted(parts, key=lambda p: (-RANK.get(p, 99), p)):
        uses = ", ".join(f"{b} ({len(v)})" for b, v in sorted(part_edges[p].items())) or "-"
        print(f"  {p:<8} rank {RANK.get(p, '?'):<2} {len(by_part[p]):>2} files  -> {uses}")
    if args.files:
        print("file edges:")
        for a in sorted(edges):
            print(f"  {name(a)} -> {', '.join(sorted(name(b) for b in edges[a]))}")
    if problems:
        print(f"\nmodgraph: {len(problems)} problem(s):", file=sys.stderr)
        for line in problems:
            print("  " + line, file=sys.stderr)
        return 1
    print(f"modgraph: {len(modules)} files, no circle, every import points down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
