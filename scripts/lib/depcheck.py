#!/usr/bin/env python3
# depcheck.py - the "depcheck" gate: declared meson dependencies versus headers used.
#
# Passes when every external dependency declared in meson.build provides a header
# that some compiled project file includes, and every external header that a project
# file includes comes from a declared dependency (or from the C library/compiler).
#
# How "includes" is decided, and why it is sound:
#   * The compiler is the authority on which headers a translation unit uses: every
#     entry of compile_commands.json is rerun with `-M -v`, which prints the complete
#     header set (-M) and the exact quote/bracket search lists (-v).
#   * Only *direct* includes of project files count. A library's header may pull in
#     another library's headers (nats.h could bring in OpenSSL, curl.h brings in
#     system headers); that is the library's business and must neither make an
#     undeclared use nor make a declared dependency look used. So, for each project
#     file in a unit's header set (the sources, src/, include/, tests/, and generated
#     files in the build dir), its `#include <...>` / `#include "..."` lines are read
#     and resolved with the compiler's own search lists, in the compiler's order. A
#     resolved header counts only if it is in that unit's -M set, i.e. the include
#     was live in this build (an include in a dead #if branch does not count).
#     `#include MACRO` lines are not followed; the project does not use them.
#   * Each direct external header is mapped to its Debian package with `dpkg -S`,
#     in one batched call, cached in BUILDDIR/gates/dpkg-cache.json (valid while
#     /var/lib/dpkg/status is unchanged).
#   * Declared dependencies come from `meson introspect BUILDDIR --dependencies`;
#     deps.tsv maps each to its -dev package(s). `threads` and meson-internal
#     dependencies are skipped; `@system` rows are the C library.
#
# Exit status: 0 clean, 1 unused/undeclared/unknown, 2 usage error.
import argparse
import json
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compdb  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
IGNORED_DEPS = {"threads", ""}
SYSTEM_PKG = re.compile(r"^(libc6-dev|libc6\.1-dev|libc-dev|linux-libc-dev|libgcc(-s)?\d*(-dev)?|"
                        r"libgcc-\d+-dev|gcc(-\d+)?(-base)?|gcc-\d+-[a-z0-9_-]+|libc6)$")
INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*(?:"([^"\n]+)"|<([^>\n]+)>)', re.M)
COMMENT_RE = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def read_table(path):
    table = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, _, pkgs = line.partition("\t")
            table[name.strip()] = [p.strip() for p in pkgs.split(",") if p.strip()]
    return table


def declared_deps(builddir, introspect_file):
    if introspect_file:
        with open(introspect_file) as f:
            data = json.load(f)
    else:
        p = subprocess.run(["meson", "introspect", builddir, "--dependencies"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"meson introspect failed: {p.stderr.strip()}")
        data = json.loads(p.stdout)
    names = []
    for d in data:
        name = d.get("name", "")
        if name in IGNORED_DEPS or d.get("type") == "internal":
            continue
        if name not in names:
            names.append(name)
    return names


_include_cache = {}


def includes_of(path):
    """[(line, quoted, name)] for the #include lines of a file (comments removed)."""
    if path not in _include_cache:
        try:
            with open(path, errors="replace") as f:
                text = f.read()
        except OSError:
            text = ""
        text = COMMENT_RE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
        out = []
        for m in INCLUDE_RE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            out.append((line, m.group(1) is not None, m.group(1) or m.group(2)))
        _include_cache[path] = out
    return _include_cache[path]


def resolve(including, quoted, name, quote_dirs, bracket_dirs, live):
    """The compiler's lookup: the including file's dir (quoted only), then -iquote,
    then the bracket list. Returns the first existing file, or None."""
    dirs = ([os.path.dirname(including)] + quote_dirs if quoted else []) + bracket_dirs
    for d in dirs:
        p = os.path.normpath(os.path.join(d, name))
        if p in live or os.path.isfile(p):
            return p
    return None


def dpkg_owners(paths, cache_file):
    """{path: [packages]} ([] when no package owns it)."""
    status_mtime = None
    try:
        status_mtime = os.stat("/var/lib/dpkg/status").st_mtime
    except OSError:
        pass
    cache = {}
    if cache_file:
        try:
            with open(cache_file) as f:
                c = json.load(f)
            if c.get("dpkg_status_mtime") == status_mtime:
                cache = c.get("owners", {})
        except (OSError, ValueError):
            pass
    todo = [p for p in paths if p not in cache]

    def query(qpaths):
        found = {}
        for i in range(0, len(qpaths), 300):
            chunk = qpaths[i:i + 300]
            p = subprocess.run(["dpkg", "-S"] + chunk, capture_output=True, text=True)
            for line in p.stdout.splitlines():
                if line.startswith("diversion by"):
                    continue
                pkgs, sep, path = line.partition(": ")
                if not sep:
                    continue
                found.setdefault(path.strip(), []).extend(
                    q.strip().split(":")[0] for q in pkgs.split(","))
        return found

    if todo:
        found = query(todo)
        # dpkg knows a file by the path its package ships; retry misses through
        # symlinks and the /usr merge.
        retry = {}
        for p in todo:
            if p in found:
                continue
            alts = {os.path.realpath(p)}
            for a, b in (("/usr/lib/", "/lib/"), ("/lib/", "/usr/lib/")):
                if p.startswith(a):
                    alts.add(b + p[len(a):])
            for alt in alts - {p}:
                retry[alt] = p
        if retry:
            found2 = query(sorted(retry))
            for alt, pkgs in found2.items():
                found.setdefault(retry[alt], pkgs)
        for p in todo:
            cache[p] = sorted(set(found.get(p, [])))
        if cache_file:
            try:
                os.makedirs(os.path.dirname(cache_file), exist_ok=True)
                with open(cache_file, "w") as f:
                    json.dump({"dpkg_status_mtime": status_mtime, "owners": cache}, f, indent=0)
            except OSError:
                pass
    return {p: cache.get(p, []) for p in paths}


def main():
    ap = argparse.ArgumentParser(description="declared dependencies versus included headers (depcheck)")
    ap.add_argument("--src-root", default=".")
    ap.add_argument("--builddir", default="build")
    ap.add_argument("--compile-db", help="default BUILDDIR/compile_commands.json")
    ap.add_argument("--introspect-file", help="JSON of `meson introspect --dependencies` (tests)")
    ap.add_argument("--deps-table", default=os.path.join(HERE, "deps.tsv"))
    ap.add_argument("--cache", help="dpkg cache file (default BUILDDIR/gates/dpkg-cache.json; 'none' to disable)")
    ap.add_argument("-j", "--jobs", type=int, default=None)
    args = ap.parse_args()

    root = os.path.realpath(args.src_root)
    builddir = os.path.abspath(args.builddir)
    build_real = os.path.realpath(builddir)
    dbpath = args.compile_db or os.path.join(builddir, "compile_commands.json")
    cache = None if args.cache == "none" else (args.cache or os.path.join(builddir, "gates", "dpkg-cache.json"))
    problems = []

    try:
        table = read_table(args.deps_table)
        declared = declared_deps(builddir, args.introspect_file)
        entries = compdb.load(dbpath)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        print(f"depcheck: FAIL: {e}")
        return 1

    def is_project(p):
        r = os.path.realpath(p)
        return compdb.under(r, root) or compdb.under(r, build_real)

    rel = lambda p: os.path.relpath(p, root) if compdb.under(os.path.realpath(p), root) else p

    t0 = time.monotonic()
    results = compdb.run_many([(e, ["-M"], None, None, True) for e in entries], args.jobs)
    direct = {}  # external header path -> {(including file, line, spelled)}
    for e, r in zip(entries, results):
        if r.rc != 0:
            problems.append(f"compiler failed on {rel(e.file)} (rc {r.rc}): " + compdb.first_error(r.stderr))
            continue
        live = set(r.deps)
        for f in r.deps:
            if not is_project(f):
                continue
            for line, quoted, name in includes_of(f):
                hit = resolve(f, quoted, name, r.quote_dirs, r.bracket_dirs, live)
                if hit is None or hit not in live or is_project(hit):
                    continue
                spelled = f'"{name}"' if quoted else f"<{name}>"
                direct.setdefault(hit, set()).add((rel(f), line, spelled))
    t_cc = time.monotonic() - t0

    t1 = time.monotonic()
    owners = dpkg_owners(sorted(direct), cache)
    t_dpkg = time.monotonic() - t1

    # Packages used directly, and by which files.
    used = {}  # package -> {(file, line, spelled)}
    unowned = []
    for h, sites in direct.items():
        pkgs = owners.get(h) or []
        if not pkgs:
            unowned.append((h, sites))
        for p in pkgs:
            used.setdefault(p, set()).update(sites)

    print(f"depcheck: {len(entries)} translation units rerun with -M in {t_cc:.1f}s; "
          f"{len(direct)} distinct external headers included directly; dpkg -S in {t_dpkg:.1f}s")
    print("declared dependencies (meson introspect --dependencies):")
    declared_pkgs = set()
    for name in declared:
        pkgs = table.get(name)
        if pkgs is None:
            problems.append(f"dependency '{name}' has no row in scripts/lib/deps.tsv")
            print(f"  {name:<16} ?  not in deps.tsv")
            continue
        if pkgs == ["@system"]:
            print(f"  {name:<16} C library (always allowed)")
            continue
        declared_pkgs.update(pkgs)
        sites = set().union(*(used.get(p, set()) for p in pkgs))
        if not sites:
            problems.append(f"dependency '{name}' is declared but unused: no compiled file includes a "
                            f"header from {' or '.join(pkgs)}")
            print(f"  {name:<16} {','.join(pkgs)}  UNUSED")
        else:
            ex = sorted(sites)[0]
            print(f"  {name:<16} {','.join(pkgs)}  used by {len({s[0] for s in sites})} file(s), "
                  f"e.g. {ex[0]}:{ex[1]} {ex[2]}")

    undeclared = {}
    for pkg, sites in sorted(used.items()):
        if SYSTEM_PKG.match(pkg) or pkg in declared_pkgs:
            continue
        undeclared[pkg] = sites
    if undeclared:
        print("headers from packages that no declared dependency provides:")
    for pkg, sites in undeclared.items():
        problems.append(f"package {pkg} is used but not declared in meson.build")
        hdrs = sorted(h for h, s in direct.items() if pkg in owners.get(h, []))
        print(f"  {pkg}: {', '.join(hdrs)}")
        for i, (f, line, spelled) in enumerate(sorted(sites)):
            if i == 25:
                print(f"    ... and {len(sites) - 25} more")
                break
            print(f"    {f}:{line}: #include {spelled} (undeclared: {pkg})")
    for h, sites in unowned:
        problems.append(f"{h} belongs to no Debian package")
        for f, line, spelled in sorted(sites):
            print(f"  {f}:{line}: #include {spelled} -> {h}: no package owns this header")

    if problems:
        for p in problems:
            print(f"  problem: {p}")
        print(f"depcheck: FAIL ({len(problems)} problem(s))")
        return 1
    print("depcheck: every declared dependency is used and every external header is declared")
    return 0


if __name__ == "__main__":
    sys.exit(main())
