#!/usr/bin/env python3
"""Reports import cycles between the modules (files) of a Rust crate.

Usage: scripts/import-cycles.py [SRC_DIR] [--depth N]   (default: src)

With --depth N, modules are merged into their ancestors N levels below the
crate root (--depth 1: `worker::api` counts as `worker`), which shows the
cycles between subsystems too.

Each .rs file is one module (`a/mod.rs` and `a.rs` are module `a`). An
edge M -> N is any `use` line, or inline `crate::`/`super::`/`self::`
path, in M that names N or something inside N. Test modules
(`#[cfg(test)] mod tests { ... }` to the end of the file) are skipped:
tests may reach anywhere. Prints every strongly connected component of
more than one module and exits 1 if there is any.
"""
import os
import re
import sys

PATH = re.compile(r"\b(crate|super|self)((?:::\w+)+)")


def modules(src):
    mods = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, f), src)[:-3].split(os.sep)
            if rel[-1] == "mod" or rel in (["lib"], ["main"]):
                rel = rel[:-1]
            mods[os.path.join(root, f)] = tuple(rel)
    return mods


def code(path):
    """The file's text without comments and without its trailing test module."""
    text = open(path, encoding="utf-8").read()
    m = re.search(r"#\[cfg\(test\)\]\s*(?:pub(?:\(\w+\))?\s+)?mod tests\s*\{", text)
    if m:
        text = text[: m.start()]
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def expand(tree):
    """`a::{b, c::{d}}` -> ['a::b', 'a::c::d']."""
    tree = tree.strip()
    i = tree.find("{")
    if i < 0:
        return [tree]
    head, body = tree[:i], tree[i + 1 : tree.rfind("}")]
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    return [head + p for part in parts if part.strip() for p in expand(part)]


def paths(text):
    for stmt in re.findall(r"\buse\s+([^;]+);", text):
        for p in expand(re.sub(r"\s+", "", stmt)):
            yield p.split(" as ")[0]
    for m in PATH.finditer(text):
        yield m.group(0)


def resolve(path, here, known):
    parts = path.replace(" ", "").split("::")
    if parts[0] == "crate":
        base, rest = (), parts[1:]
    elif parts[0] in ("super", "self"):
        base, rest = here, parts
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    elif here + (parts[0],) in known:
        base, rest = here, parts  # a child module, named without `self::`
    else:
        return None  # an external crate or a local name
    return base + tuple(r for r in rest if r not in ("*", "self"))


def graph(src):
    mods = modules(src)
    known = set(mods.values())
    edges = {m: set() for m in known}
    for path, here in mods.items():
        for p in paths(code(path)):
            full = resolve(p, here, known)
            if full is None:
                continue
            target = max(
                (full[:n] for n in range(len(full) + 1) if full[:n] in known),
                key=len,
                default=None,
            )
            if target is not None and target != here:
                edges[here].add(target)
    return edges


def cycles(edges):
    """Tarjan's strongly connected components of more than one node."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def collapse(edges, depth):
    out = {}
    for v, ws in edges.items():
        out.setdefault(v[:depth], set()).update(w[:depth] for w in ws if w[:depth] != v[:depth])
    return out


def main():
    args = sys.argv[1:]
    depth = None
    if "--depth" in args:
        i = args.index("--depth")
        depth = int(args[i + 1])
        del args[i : i + 2]
    src = args[0] if args else "src"
    edges = graph(src)
    if depth is not None:
        edges = collapse(edges, depth)
    found = cycles(edges)
    name = lambda m: "::".join(m) or "crate"
    for comp in found:
        print("cycle: " + " <-> ".join(name(m) for m in comp))
    print(f"{len(found)} import cycle(s) in {src}")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
