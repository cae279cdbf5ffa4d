#!/usr/bin/env python3
# layergraph.py - the "madge" gate: layer and module graph, from the compiler's view.
#
# An independent second opinion to incgraph.py: it never reads #include lines itself.
# It reruns every compile command of compile_commands.json with `-MM -MG` and parses
# the make-style rule the compiler prints (so conditional includes, include paths and
# macros are resolved exactly as in the real build). -MM gives a file's *transitive*
# include set, so every project header met that way is also preprocessed on its own
# (with the flags of a translation unit that includes it): the edges that a header
# adds are then charged to that header, not only to the .c files above it.
#
# Every file is lifted to a node - a layer (include, shared, core, security, app,
# proto, generated, tests) or `module:<name>` - and three things are checked:
#   (a) the node graph has no cycle;
#   (b) every file edge is allowed by the layer matrix of DESIGN.md section 3, and a
#       module reaches another module only through that module's contract.h;
#   (c) the module contract requirements printed by `jetfleet modules --deps`
#       (`<module> -> <provider module>` per line) are added to the module graph and
#       the whole graph is checked again for cycles.
# Cycles are found with Kosaraju's algorithm (incgraph.py uses Tarjan's), so a bug in
# one implementation does not hide the same cycle from both gates.
#
# Exit status: 0 clean, 1 violations/cycles/failures, 2 usage error.
import argparse
import os
import re
import subprocess
import sys
import time
from collections import deque

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compdb  # noqa: E402

LAYERS = ("include", "shared", "core", "security", "app")
BASE = {"include", "proto", "generated"}
# What each layer may include (besides itself). Modules are handled separately.
ALLOWED = {
    "include": BASE,
    "shared": BASE | {"shared"},
    "core": BASE | {"shared", "core"},
    "security": BASE | {"shared", "core", "security"},
    "module": BASE | {"shared", "core"},
    "proto": {"proto", "generated"},
    "generated": {"proto", "generated"},
}
EVERYTHING = ("app", "tests", "other")  # may include anything in the project
DEP_LINE = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*->\s*([A-Za-z0-9_.-]+)\s*$")


class Classifier:
    def __init__(self, root, builddir):
        self.root = os.path.realpath(root)
        self.build = os.path.realpath(builddir) if builddir else None
        self.cache = {}

    def __call__(self, path):
        """(node, detail): node is a layer name or 'module:<name>'; detail is the
        path relative to its root; for modules, 'contract' or 'private'."""
        if path in self.cache:
            return self.cache[path]
        real = os.path.realpath(path)
        res = self._classify(real, path)
        self.cache[path] = res
        return res

    def _classify(self, real, path):
        if self.build and compdb.under(real, self.build):
            rel = os.path.relpath(real, self.build)
            return ("proto" if rel.startswith("proto/") or rel.endswith(".pb-c.h") else "generated"), rel
        if not os.path.exists(real) and path.endswith(".pb-c.h"):
            return "proto", path  # -MG: generated header not built yet
        if not compdb.under(real, self.root):
            return "external", real
        rel = os.path.relpath(real, self.root)
        parts = rel.split("/")
        if parts[0] == "include":
            return "include", rel
        if parts[0] == "proto":
            return "proto", rel
        if parts[0] == "tests":
            return "tests", rel
        if parts[0] == "src" and len(parts) > 2:
            if parts[1] in LAYERS:
                return parts[1], rel
            if parts[1] == "modules" and len(parts) > 3:
                kind = "contract" if parts[3:] == ["contract.h"] else "private"
                return f"module:{parts[2]}", kind
            return "unclassified", rel
        if parts[0] == "src":
            return "unclassified", rel
        return "other", rel


def edge_problem(src_node, dst_node, dst_detail):
    """None if src_node may include a file of dst_node, else a short reason."""
    if src_node == dst_node or src_node in EVERYTHING or dst_node == "external":
        return None
    if src_node == "unclassified":
        return "file is outside every layer of DESIGN.md section 3"
    if dst_node == "unclassified":
        return "target is outside every layer of DESIGN.md section 3"
    if src_node.startswith("module:"):
        if dst_node.startswith("module:"):
            if dst_detail == "contract":
                return None
            return f"{dst_node} is reached through a private file; only its contract.h may be included"
        allowed = ALLOWED["module"]
    else:
        allowed = ALLOWED.get(src_node, set())
    if dst_node in allowed:
        return None
    return f"{src_node} may not include {dst_node}"


def kosaraju(graph):
    """Strongly connected components (Kosaraju, iterative)."""
    nodes = sorted(set(graph) | {w for vs in graph.values() for w in vs})
    order, seen = [], set()
    for s in nodes:
        if s in seen:
            continue
        seen.add(s)
        stack = [(s, iter(sorted(graph.get(s, ()))))]
        while stack:
            v, it = stack[-1]
            nxt = next((w for w in it if w not in seen), None)
            if nxt is None:
                stack.pop()
                order.append(v)
            else:
                seen.add(nxt)
                stack.append((nxt, iter(sorted(graph.get(nxt, ())))))
    rev = {}
    for v, ws in graph.items():
        for w in ws:
            rev.setdefault(w, set()).add(v)
    comps, assigned = [], set()
    for s in reversed(order):
        if s in assigned:
            continue
        comp, todo = [], [s]
        assigned.add(s)
        while todo:
            v = todo.pop()
            comp.append(v)
            for w in rev.get(v, ()):
                if w not in assigned:
                    assigned.add(w)
                    todo.append(w)
        comps.append(sorted(comp))
    return comps


def cycle_path(graph, comp):
    """One shortest cycle inside a component, as a node list closed on itself."""
    members = set(comp)
    best = None
    for start in comp:
        prev, q = {start: None}, deque([start])
        while q:
            v = q.popleft()
            if start in graph.get(v, ()):
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                cyc = list(reversed(path)) + [start]
                if best is None or len(cyc) < len(best):
                    best = cyc
                break
            for w in sorted(graph.get(v, ())):
                if w in members and w not in prev:
                    prev[w] = v
                    q.append(w)
    return best


def read_deps(args, builddir):
    """Module requirement edges: (list of (a, b), error or None, source text)."""
    if args.deps_file:
        src = args.deps_file
        try:
            with open(args.deps_file) as f:
                text = f.read()
        except OSError as e:
            return [], f"cannot read --deps-file: {e}", src
    else:
        binary = args.binary or os.path.join(builddir, "src", "app", "jetfleet")
        src = f"{binary} modules --deps"
        if not os.access(binary, os.X_OK):
            return [], (f"{binary} does not exist or is not executable; build it first "
                        "(typecheck gate) or pass --deps-file"), src
        try:
            p = subprocess.run([binary, "modules", "--deps"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            return [], f"`{src}` could not run: {e}", src
        if p.returncode != 0:
            return [], f"`{src}` exited {p.returncode}: {p.stderr.strip()[:2000]}", src
        text = p.stdout
    edges, bad = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = DEP_LINE.match(line)
        if not m:
            bad.append(f"line {n}: {line!r}")
            continue
        edges.append((m.group(1), m.group(2)))
    if bad:
        return edges, "unparseable module requirement lines (want `<module> -> <module>`): " + "; ".join(bad[:10]), src
    return edges, None, src


def main():
    ap = argparse.ArgumentParser(description="layer/module graph gate (madge)")
    ap.add_argument("--src-root", default=".")
    ap.add_argument("--builddir", default="build")
    ap.add_argument("--compile-db", help="compile_commands.json (default BUILDDIR/compile_commands.json)")
    ap.add_argument("--deps-file", help="module requirements instead of running `jetfleet modules --deps`")
    ap.add_argument("--binary", help="jetfleet binary (default BUILDDIR/src/app/jetfleet)")
    ap.add_argument("-j", "--jobs", type=int, default=None)
    args = ap.parse_args()

    root = os.path.abspath(args.src_root)
    builddir = os.path.abspath(args.builddir)
    dbpath = args.compile_db or os.path.join(builddir, "compile_commands.json")
    errors = []
    try:
        entries = compdb.load(dbpath)
    except (OSError, ValueError, KeyError) as e:
        print(f"layergraph: FAIL: cannot read compile database {dbpath}: {e}")
        return 1
    classify = Classifier(root, builddir)
    t0 = time.monotonic()

    # 1. translation units, as built.
    results = compdb.run_many([(e, ["-MM", "-MG"], None, None, False) for e in entries], args.jobs)
    closure, owner_entry, missing = {}, {}, {}
    for e, r in zip(entries, results):
        if r.rc != 0:
            errors.append(f"compiler failed on {os.path.relpath(e.file, root)} (rc {r.rc}): "
                          + compdb.first_error(r.stderr))
            continue
        missing.update(r.missing)
        closure[e.file] = set(r.deps) - {e.file}
        for d in r.deps:
            owner_entry.setdefault(d, e)

    # 2. every project header met on the way, preprocessed on its own.
    headers = sorted(h for h in owner_entry
                     if h not in closure and classify(h)[0] != "external" and os.path.isfile(h))
    hres = compdb.run_many([(owner_entry[h], ["-MM", "-MG"], h, "c-header", False) for h in headers], args.jobs)
    warnings = []
    for h, r in zip(headers, hres):
        if r.rc != 0:
            warnings.append(f"{os.path.relpath(h, root)} does not preprocess on its own; its edges are "
                            "only seen through the files that include it")
            continue
        closure[h] = set(r.deps) - {h}
        missing.update(r.missing)
    elapsed = time.monotonic() - t0

    rel = lambda p: os.path.relpath(p, root) if compdb.under(os.path.realpath(p), os.path.realpath(root)) else p

    # 3. lift to nodes and check every file edge against the matrix.
    node_graph, example, violations = {}, {}, {}
    for f, deps in closure.items():
        fn, _ = classify(f)
        if fn == "external":
            continue
        node_graph.setdefault(fn, set())
        for d in deps:
            dn, detail = classify(d)
            if dn == "external":
                continue
            if d in missing and dn != "proto":
                errors.append(f"{rel(f)} includes \"{missing[d]}\", which is on no include path")
                continue
            if dn != fn:
                node_graph[fn].add(dn)
                example.setdefault((fn, dn), (f, d))
            why = edge_problem(fn, dn, detail)
            if why:
                violations[(f, d)] = why
    # A violation reached through a header that itself commits it is reported once,
    # at that header.
    reported = []
    for (f, d), why in sorted(violations.items()):
        via = [g for g in closure.get(f, ()) if g != d and d in closure.get(g, ()) and (g, d) in violations]
        if via:
            continue
        through = [g for g in closure.get(f, ()) if g != d and d in closure.get(g, ())]
        how = f" (through {rel(sorted(through)[0])})" if through else ""
        reported.append(f"{rel(f)} -> {rel(d)}{how}: {why}")

    # 4. module contract requirements.
    req, req_err, req_src = read_deps(args, builddir)
    if req_err:
        errors.append(f"module requirements: {req_err}")
    known = {n for n in node_graph if n.startswith("module:")}
    for a, b in req:
        na, nb = f"module:{a}", f"module:{b}"
        for n in (na, nb):
            if n not in known:
                warnings.append(f"requirement names module '{n[7:]}', which has no file under src/modules/")
        node_graph.setdefault(na, set()).add(nb)
        node_graph.setdefault(nb, set())
        example.setdefault((na, nb), None)

    # 5. cycles.
    cycles = []
    for comp in kosaraju(node_graph):
        if len(comp) == 1 and comp[0] not in node_graph.get(comp[0], ()):
            continue
        cyc = cycle_path(node_graph, comp)
        steps = []
        for a, b in zip(cyc, cyc[1:]):
            ex = example.get((a, b))
            steps.append(f"{a} -> {b} [" + (f"{rel(ex[0])} includes {rel(ex[1])}" if ex else "requires, from modules --deps") + "]")
        cycles.append((comp, cyc, steps))

    n_tu = len(entries)
    print(f"layergraph: {n_tu} translation units + {len(headers)} headers preprocessed with -MM -MG "
          f"in {elapsed:.1f}s")
    print("node graph (a -> what a includes):")
    for n in sorted(node_graph):
        print(f"  {n} -> {', '.join(sorted(node_graph[n])) or '(nothing)'}")
    print(f"module requirements ({req_src}): {len(req)}")
    for a, b in req:
        print(f"  {a} -> {b}")
    for w in warnings:
        print(f"  warning: {w}")
    for v in reported:
        print(f"  violation: {v}")
    for comp, cyc, steps in cycles:
        print(f"  cycle: {' -> '.join(cyc)}")
        for s in steps:
            print(f"      {s}")
    for e in errors:
        print(f"  error: {e}")
    if reported or cycles or errors:
        print(f"layergraph: FAIL ({len(reported)} violation(s), {len(cycles)} cycle(s), {len(errors)} error(s))")
        return 1
    print("layergraph: layer matrix respected, no cycle in the layer/module graph")
    return 0


if __name__ == "__main__":
    sys.exit(main())
