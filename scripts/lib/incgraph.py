#!/usr/bin/env python3
# incgraph.py - the "skott" gate: cycle check on the file include graph.
#
# Reads every C file under src/ and include/ as text, takes its `#include "..."` and
# `#include <jetfleet/...>` lines with a regular expression, resolves each to a file
# the way DESIGN.md section 3 lays out the tree, and runs Tarjan's strongly connected
# components over the resulting graph. Every cycle is printed as a path of files.
# An include that resolves to nothing (other than a generated header) is an error
# too: a cycle check over a graph with holes in it proves little.
#
# This tool is deliberately simple and textual; layergraph.py (the "madge" gate) is
# the independent second opinion built from the compiler's own dependency output.
#
# Exit status: 0 clean, 1 cycles or unresolved includes, 2 usage error.
import argparse
import os
import re
import sys
from collections import deque

INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*(?:"([^"\n]+)"|<(jetfleet/[^>\n]+)>)', re.M)
SOURCE_EXT = (".c", ".h", ".def", ".inc")
# Generated headers live in the build dir; they are part of the schema layer.
GENERATED_RE = re.compile(r"\.pb-c\.h$|^jf_build_config\.h$")


def strip_comments(text):
    """Blank out comments (keeping newlines so line numbers stay right) and leave
    string literals alone, so that a commented-out #include is not an edge."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == "/" and i + 1 < n and text[i + 1] == "*":
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "/" and i + 1 < n and text[i + 1] == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def scan(root, dirs):
    files = []
    for d in dirs:
        base = os.path.join(root, d)
        for dp, dns, fns in os.walk(base):
            dns.sort()
            for fn in sorted(fns):
                if fn.endswith(SOURCE_EXT):
                    files.append(os.path.normpath(os.path.join(dp, fn)))
    return files


def resolve(root, builddir, including, name, quoted):
    """Return (kind, path): kind is 'file', 'generated' or 'missing'."""
    cands = []
    if quoted:
        cands.append(os.path.dirname(including))
    cands += [os.path.join(root, "src"), os.path.join(root, "include")]
    for d in cands:
        p = os.path.normpath(os.path.join(d, name))
        if os.path.isfile(p):
            return "file", p
    if builddir:
        for d in (builddir, os.path.join(builddir, "proto")):
            if os.path.isfile(os.path.join(d, name)):
                return "generated", None
    if GENERATED_RE.search(name):
        return "generated", None
    return "missing", None


def tarjan(graph):
    """Iterative Tarjan SCC; returns the list of components (lists of nodes)."""
    index, low, on, stack, comps = {}, {}, set(), [], []
    counter = [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                comps.append(sorted(comp))
    return comps


def shortest_cycle(graph, comp, start):
    """Shortest cycle through `start` inside the component (BFS)."""
    members = set(comp)
    prev = {start: None}
    q = deque([start])
    while q:
        v = q.popleft()
        for w in sorted(graph.get(v, ())):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w in members and w not in prev:
                prev[w] = v
                q.append(w)
    return None


def cycles_of(graph, max_per_comp=20):
    found = []
    for comp in tarjan(graph):
        if len(comp) == 1 and comp[0] not in graph.get(comp[0], ()):
            continue
        seen = set()
        for node in comp:
            cyc = shortest_cycle(graph, comp, node)
            if not cyc:
                continue
            body = cyc[:-1]
            k = body.index(min(body))
            key = tuple(body[k:] + body[:k])
            if key in seen:
                continue
            seen.add(key)
            found.append((comp, list(key) + [key[0]]))
            if len(seen) >= max_per_comp:
                break
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", default=".", help="source root (holds src/ and include/)")
    ap.add_argument("--builddir", help="build dir, to recognise generated headers")
    ap.add_argument("dirs", nargs="*", default=["src", "include"])
    a = ap.parse_args()
    root = os.path.abspath(a.root)
    builddir = os.path.abspath(a.builddir) if a.builddir else None

    files = scan(root, a.dirs)
    graph = {f: set() for f in files}
    rel = lambda p: os.path.relpath(p, root)
    missing, n_inc = [], 0
    for f in files:
        try:
            with open(f, errors="replace") as fh:
                text = strip_comments(fh.read())
        except OSError as e:
            missing.append(f"{rel(f)}: cannot read: {e}")
            continue
        for m in INCLUDE_RE.finditer(text):
            n_inc += 1
            name = m.group(1) or m.group(2)
            kind, target = resolve(root, builddir, f, name, m.group(1) is not None)
            line = text.count("\n", 0, m.start()) + 1
            if kind == "file":
                graph[f].add(target)
                graph.setdefault(target, set())
            elif kind == "missing":
                q = f'"{name}"' if m.group(1) else f"<{name}>"
                missing.append(f"{rel(f)}:{line}: #include {q} resolves to no file under src/ or include/")

    cycles = cycles_of(graph)
    n_edges = sum(len(v) for v in graph.values())
    print(f"incgraph: {len(files)} files, {n_inc} project include directives, {n_edges} edges")
    for comp, cyc in cycles:
        print("  cycle: " + " -> ".join(rel(p) for p in cyc))
    for m in missing:
        print("  unresolved: " + m)
    if cycles or missing:
        print(f"incgraph: FAIL ({len(cycles)} cycle(s), {len(missing)} unresolved include(s))")
        return 1
    print("incgraph: no include cycles, every project include resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
