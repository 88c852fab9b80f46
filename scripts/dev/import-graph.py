#!/usr/bin/env python3
"""Draws the crate's module import graph from its `crate::` paths and checks its direction.

Usage: scripts/dev/import-graph.py [--dot] [SRC_DIR]

Every `crate::a::b` path in a file of src/ (in `use` lines, `use` blocks and inline paths)
is an edge from the file's top-level module to `a`. The script prints the edges between
top-level modules with their counts, then the imports that point upward (against the layer
order below) and the circles between top-level modules and between files. It exits non-zero
when there is an upward import or a circle, so it can guard the layout in CI or by hand.
"""

import re
import sys
from collections import defaultdict
from pathlib import Path

# The layers, lowest first. A module may import its own layer and any lower one. Modules
# not named here are reported as unplaced.
LAYERS = [
    # Ground floor: the data model and cross-cutting observability.
    {"domain", "telemetry", "metrics", "observability"},
    # The engines: in-memory search, embedders, built-in tools.
    {"index", "embedding", "builtins"},
    # Running tools and persisting the catalogue.
    {"execution", "tools", "store"},
    # The application service.
    {"registry"},
    # Settings: sections that build each component's options from the environment.
    {"config"},
    # Adapters.
    # Adapters (`error` was the HTTP error when it sat at the top of the tree).
    {"http", "mcp", "cli", "portable", "healthcheck", "error"},
    # Wiring and entry points.
    {"app"},
    {"lib", "main"},
]
RANK = {module: rank for rank, layer in enumerate(LAYERS) for module in layer}

ROOT = re.compile(r"\b(crate|super|self)((?:::super)*)::")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def module_of(path: Path, src: Path) -> tuple:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    return tuple(parts)


def strip_comments(text: str) -> str:
    """The code without comments, strings and character literals (kept as blanks)."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            raw = re.match(r'r(#*)"', text[i : i + 40])
            if raw and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
                close = '"' + raw.group(1)
                j = text.find(close, i + raw.end())
                i = n if j < 0 else j + len(close)
                out.append('""')
            elif text[i] == '"':
                j = i + 1
                while j < n and text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
                i = j + 1
                out.append('""')
            elif text[i] == "'" and re.match(r"'(\\.[^']*|[^\\'])'", text[i : i + 12]):
                i += re.match(r"'(\\.[^']*|[^\\'])'", text[i : i + 12]).end()
                out.append("' '")
            else:
                out.append(text[i])
                i += 1
    return "".join(out)


def inline_modules(text: str) -> list:
    """(start, end, path) of every inline `mod name { ... }` block, outermost first."""
    blocks, stack, depth = [], [], 0
    pending = None
    for match in re.finditer(r"\bmod\s+([A-Za-z_][A-Za-z0-9_]*)\s*\{|[{}]", text):
        if match.group(1):
            stack.append((match.group(1), depth, match.end()))
            depth += 1
        elif match.group(0) == "{":
            depth += 1
        else:
            depth -= 1
            if stack and stack[-1][1] == depth:
                name, _, start = stack.pop()
                path = tuple(entry[0] for entry in stack) + (name,)
                blocks.append((start, match.start(), path))
    return blocks


def expand(text: str, i: int, prefix: tuple, out: list) -> int:
    """Reads a path (or a `{...}` group of paths) at `i` below `prefix`; appends full paths."""
    path = list(prefix)
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if text.startswith("{", i):
            i += 1
            while True:
                while i < len(text) and (text[i].isspace() or text[i] == ","):
                    i += 1
                if i >= len(text) or text[i] == "}":
                    return i + 1
                i = expand(text, i, tuple(path), out)
                # skip `as name` and anything else up to the next item
                while i < len(text) and text[i] not in ",}":
                    i += 1
        ident = IDENT.match(text, i)
        if not ident:
            out.append(tuple(path))
            return i
        name = ident.group(0)
        i = ident.end()
        if name != "self":
            path.append(name)
        if text.startswith("::", i):
            i += 2
            continue
        out.append(tuple(path))
        return i


def referenced_paths(text: str, module: tuple, is_mod_rs: bool) -> list:
    """Every crate path a file names, resolved from `crate::`, `super::` and `self::`."""
    found = []
    blocks = inline_modules(text)
    for match in ROOT.finditer(text):
        inner = max(
            (b for b in blocks if b[0] <= match.start() < b[1]),
            key=lambda b: len(b[2]),
            default=(0, 0, ()),
        )[2]
        here = module + inner
        root, supers = match.group(1), match.group(2).count("super")
        if root == "crate":
            base = ()
        else:
            # `self` in a.rs is module a; `super` is its parent (mod.rs files are their module).
            base = here
            ups = supers + (1 if root == "super" else 0)
            base = base[: len(base) - ups] if ups else base
        expand(text, match.end(), base, found)
    return found


def file_targets(text: str, module: tuple, is_mod_rs: bool, files: dict) -> set:
    """The files (as module paths) a text refers to: the longest known module prefix."""
    targets = set()
    for parts in referenced_paths(text, module, is_mod_rs):
        for n in range(len(parts), 0, -1):
            if tuple(parts[:n]) in files:
                targets.add(tuple(parts[:n]))
                break
    return targets


def cycles(graph: dict) -> list[list]:
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    dot = "--dot" in sys.argv
    src = Path(args[0] if args else Path(__file__).resolve().parents[2] / "src")
    sources = {module_of(p, src): p for p in sorted(src.rglob("*.rs"))}
    sources = {k: v for k, v in sources.items() if k}
    # `lib` and `main` are the crate roots: files of their own, not modules.
    edges = defaultdict(int)
    file_graph = defaultdict(set)
    upward = []
    for module, path in sources.items():
        text = strip_comments(path.read_text())
        top = module[0]
        for target in sorted(file_targets(text, module, path.name == "mod.rs", sources)):
            if target == module or target[: len(module)] == module:
                continue
            file_graph[module].add(target)
            if target[0] != top:
                edges[(top, target[0])] += 1
                if top in RANK and target[0] in RANK and RANK[target[0]] > RANK[top]:
                    upward.append((module, target))
    if dot:
        print("digraph imports {")
        for (a, b), n in sorted(edges.items()):
            print(f'  "{a}" -> "{b}" [label={n}];')
        print("}")
        return 0
    print("Imports between top-level modules (files importing):")
    for (a, b), n in sorted(edges.items()):
        mark = "  UPWARD" if a in RANK and b in RANK and RANK[b] > RANK[a] else ""
        print(f"  {a} -> {b} ({n}){mark}")
    unplaced = sorted({m[0] for m in sources} - set(RANK))
    if unplaced:
        print("Modules with no layer:", ", ".join(unplaced))
    print(f"Upward imports: {len(upward)}")
    for a, b in upward:
        print(f"  {'::'.join(a)} -> {'::'.join(b)}")
    top_graph = defaultdict(set)
    for (a, b) in edges:
        top_graph[a].add(b)
    top_cycles = cycles(top_graph)
    file_cycles = cycles(file_graph)
    print(f"Circles between top-level modules: {len(top_cycles)}")
    for c in top_cycles:
        print("  " + " <-> ".join(c))
    print(f"Circles between files: {len(file_cycles)}")
    for c in file_cycles:
        print("  " + " <-> ".join("::".join(m) for m in c))
    return 1 if upward or top_cycles or file_cycles else 0


if __name__ == "__main__":
    sys.exit(main())
