#!/usr/bin/env python3
"""Import cycles between the files of a Rust crate's src/ (tunfw's layout rule:
every `use crate::...` points down the pipeline, none back up).

usage: scripts/module-cycles.py [SRC_DIR]      (default: src)

Each file is a node; an edge A -> B means A names a path into B
(`crate::x::y`, `super::x`, or a child module's own name after `mod x;`). A path is resolved to the
deepest file it names (`crate::conntrack::tuple::Tuple` -> conntrack/tuple.rs,
`crate::conntrack::Flow` -> conntrack/mod.rs). A `mod x;` declaration is not
an import. Code after `#[cfg(test)]` is ignored (tests may import anything).

Prints `cycles N`, each cycle's files, then the largest files and the
longest functions; exits 1 when there is a cycle.
"""
import os
import re
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "src"
texts = {}
for root, _, names in os.walk(src):
    for name in names:
        if name.endswith(".rs"):
            path = os.path.join(root, name)
            with open(path, encoding="utf-8") as f:
                texts[os.path.relpath(path, src)] = f.read()


def module_of(rel):
    parts = rel[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


files_by_module = {module_of(r): r for r in texts}


def strip(text):
    text = text.split("#[cfg(test)]")[0]
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def resolve(segments):
    for k in range(len(segments), 0, -1):
        if segments[:k] in files_by_module:
            return files_by_module[segments[:k]]
    return None


IDENT = r"[a-z_][a-z0-9_]*"
NAME = r"[A-Za-z_][A-Za-z0-9_]*"
edges = {r: set() for r in texts}
for rel, text in texts.items():
    code = strip(text)
    me = module_of(rel)
    # The module a `super::` in this file refers to.
    parent = me[:-1]
    found = []
    # (A path that continues with `::{` is a group, read below.)
    for m in re.finditer(rf"\bcrate((?:::{NAME})+)(?![\w:])", code):
        found.append(tuple(m.group(1).split("::")[1:]))
    for m in re.finditer(rf"(?<!\()\bsuper((?:::{NAME})*)(?![\w:])", code):
        base, rest = parent, m.group(1).split("::")[1:]
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
        found.append(base + tuple(rest))
    # Grouped imports: `use crate::a::{b, c::d}` / `use super::{x, y}`.
    for m in re.finditer(rf"\b(crate|super)((?:::{IDENT})*)::\{{([^}}]*)\}}", code):
        base = () if m.group(1) == "crate" else parent
        base = base + tuple(m.group(2).split("::")[1:])
        for item in m.group(3).split(","):
            segs = tuple(s for s in item.strip().split("::") if re.fullmatch(IDENT, s))
            found.append(base + segs)
    # Paths into this file's own child modules (`mod x;` ... `use x::Y`,
    # `x::f()`): a parent that uses its children is an edge too, so a child
    # that imports from its parent closes a cycle.
    for child in re.findall(rf"^\s*(?:pub(?:\([a-z]+\))? )?mod ({IDENT});", code, re.M):
        if re.search(rf"(?<![\w:]){child}::", code):
            found.append(me + (child,))
    for segs in found:
        target = resolve(segs)
        if target and target != rel:
            edges[rel].add(target)

# Tarjan's strongly connected components.
sys.setrecursionlimit(10_000)
index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on_stack.add(v)
    for w in sorted(edges[v]):
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on_stack:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        component = []
        while True:
            w = stack.pop()
            on_stack.discard(w)
            component.append(w)
            if w == v:
                break
        if len(component) > 1:
            cycles.append(sorted(component))


for v in sorted(texts):
    if v not in index:
        visit(v)

print(f"cycles {len(cycles)}")
for c in cycles:
    print("  cycle: " + " ".join(c))
for rel in sorted(texts, key=lambda r: -texts[r].count("\n"))[:3]:
    print(f"largest_file {rel} {texts[rel].count(chr(10))}")
functions = []
for rel, text in texts.items():
    lines = text.split("\n")
    for n, line in enumerate(lines):
        m = re.match(r"^(\s*)(?:pub(?:\([a-z:]+\))? )?(?:const )?(?:unsafe )?fn (\w+)", line)
        if not m or line.rstrip().endswith(";"):
            continue
        for k in range(n + 1, len(lines)):
            if lines[k] == m.group(1) + "}":
                functions.append((k - n + 1, f"{rel}:{n + 1}", m.group(2)))
                break
for length, where, name in sorted(functions, reverse=True)[:5]:
    print(f"longest_fn {where} {name} {length}")
sys.exit(1 if cycles else 0)
