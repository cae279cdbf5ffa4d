#!/usr/bin/env python3
# workerscan.py - the "workers" gate: the worker runtime holds no business rule, and
# module code is reached only through the registry (DESIGN.md section 3; the seed's
# "no duplicated business logic in worker-only files, no bypass around module
# contracts").
#
# Everything it looks for is derived from the tree when it runs, so the gate grows
# with the modules:
#   modules           the folders under src/modules/ (and each descriptor's .name)
#   actions           every `.action = "..."` initializer in src/modules/<m>/**/*.c
#   job types         <module>.<action>
#   module functions  every `.handler = f`, `.init = f`, `.shutdown = f` initializer,
#                     and every function defined without `static` in module code
#   descriptors       every `jf_module_t <name> =` definition, and jf_module_<module>
# and four rules are checked (a small C lexer skips comments, character constants
# and numbers; #include lines are read only by rules a and d):
#   (a) no file under src/app/ but the composition root src/app/modules.c includes a
#       modules/... header (resolved like the compiler would: own directory, src/,
#       include/), and no file under src/app/worker/ includes a module's payload
#       proto header (jetfleet/<module>/...);
#   (b) no file under src/app/worker/ names a module or a job type: no string
#       literal equal to a module name, an action or "<module>.<action>" (adjacent
#       literals are joined first), nor one holding "<module>.<action>" as dotted
#       tokens (a hard-coded subject such as "jobs.acme.webhooks.deliver"); no
#       identifier equal to a module name, none holding <module>_<action> as
#       '_'-bounded words (webhooks_deliver, JF_WEBHOOKS_DELIVER), and none with a
#       module as a `__`-separated part (its protobuf payload type). A bare action
#       is not checked as an identifier: `deliver` or `sleep` is a C name of its own;
#   (c) in src/ outside src/modules/, no identifier names a module function (handlers
#       are called only through a jf_job_type_t the registry hands out), and a
#       module descriptor is named only in src/app/modules.c. A struct member of the
#       same name (after . or ->, or declared in a struct body) is not the function,
#       nor is a file's own function of that name (printed as a note);
#   (d) no file under src/modules/ includes src/security, or another module's file
#       other than its contract.h (a module's own files are its own).
# Rule (d) repeats, with resolved paths, what the printed scans (grep, modscan.py)
# and madge check, so that this one report covers the whole guarantee.
#
# Usage: workerscan.py [--src-root ROOT]
# Exit status: 0 clean, 1 violations (or nothing to scan), 2 usage error.
import argparse
import os
import re
import sys

SOURCE_EXT = (".c", ".h", ".def", ".inc")
INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*(?:include|include_next|import)[ \t]*([<"])([^">\n]+)[">]', re.M)
ID_START = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
ID_CHARS = ID_START | set("0123456789")
STR_PREFIXES = ("L", "u", "U", "u8")
COMPOSITION_ROOT = "src/app/modules.c"


# ---- a small C lexer -----------------------------------------------------------------

def lex(text):
    """Yield (kind, value, line) for identifiers ('id', or 'member' right after '.'
    or '->'), string literals ('str': adjacent literals joined, then each piece as
    'part' when there are several; escapes kept except for quotes and backslashes)
    and the punctuators ( ) { } ; = ('p'). Comments, character constants, numbers
    and #include lines are skipped."""
    i, n, line = 0, len(text), 1
    bol = True  # at the beginning of a line (only blanks seen)
    pending = None  # a string literal waiting for an adjacent one
    member = False  # the last token was '.' or '->'
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            bol = True
            i += 1
            continue
        if c in " \t\r\f\v":
            i += 1
            continue
        if c == "\\" and text.startswith("\\\n", i):
            line += 1
            i += 2
            continue
        if c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            line += text.count("\n", i, j)
            i = j
            continue
        if c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c == "#" and bol:
            m = INCLUDE_RE.match(text, text.rfind("\n", 0, i) + 1)
            if m:
                j = text.find("\n", i)
                i = n if j < 0 else j
                continue
        bol = False
        if c in ID_START:
            j = i + 1
            while j < n and text[j] in ID_CHARS:
                j += 1
            word = text[i:j]
            if word in STR_PREFIXES and j < n and text[j] in "\"'":
                i, c = j, text[j]
            else:
                if pending:
                    yield from flush(pending)
                    pending = None
                yield ("member" if member else "id"), word, line
                member = False
                i = j
                continue
        if c in "\"'":
            member = False
            j, buf, start = i + 1, [], line
            while j < n and text[j] != c and text[j] != "\n":
                if text[j] == "\\" and j + 1 < n:
                    if text[j + 1] == "\n":
                        line += 1
                    elif text[j + 1] in "\"\\'":
                        buf.append(text[j + 1])
                    else:
                        buf.append(text[j:j + 2])
                    j += 2
                else:
                    buf.append(text[j])
                    j += 1
            i = j + 1 if j < n and text[j] == c else j
            if c == '"':
                s = "".join(buf)
                if pending:
                    pending = ("str", pending[1] + s, pending[2], pending[3] + [s])
                else:
                    pending = ("str", s, start, [s])
            continue
        if pending:
            yield from flush(pending)
            pending = None
        member = False
        if c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            j = i + 1
            while j < n and (text[j] in ID_CHARS or text[j] == "."
                             or (text[j] in "+-" and text[j - 1] in "eEpP")):
                j += 1
            i = j
            continue
        if c == "." and text.startswith("...", i):
            i += 2
        elif c == ".":
            member = True
        elif c == "-" and text.startswith("->", i):
            member = True
            i += 1
        elif c in "(){};=":
            # '=' only on its own: '==', '<=', '+=' ... are not initializers.
            if c != "=" or (text[i + 1:i + 2] != "=" and text[i - 1:i] not in "=!<>+-*/%&|^"):
                yield "p", c, line
        i += 1
    if pending:
        yield from flush(pending)


def flush(pending):
    """The joined literal, then its pieces ('part') when there are several."""
    yield "str", pending[1], pending[2]
    if len(pending[3]) > 1:
        for piece in pending[3]:
            yield "part", piece, pending[2]


def strip_comments(text):
    """text with comments blanked (newlines kept), for reading #include lines."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j) or " ")
            i = j
        elif c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n) if j < n and text[j] == c else j
            out.append(text[i:j])
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


# ---- the tree ------------------------------------------------------------------------

class Tree:
    def __init__(self, root):
        self.root = root
        self.texts = {}

    def rel(self, path):
        return os.path.relpath(path, self.root).replace(os.sep, "/")

    def files(self, top, ext=SOURCE_EXT):
        """Source files under ROOT/top, as paths relative to ROOT, sorted."""
        out = []
        for dp, dns, fns in os.walk(os.path.join(self.root, top)):
            dns.sort()
            for fn in sorted(fns):
                if fn.endswith(ext):
                    out.append(self.rel(os.path.join(dp, fn)))
        return out

    def text(self, rel):
        if rel not in self.texts:
            with open(os.path.join(self.root, rel), errors="replace") as f:
                self.texts[rel] = f.read()
        return self.texts[rel]

    def includes(self, rel):
        """[(line, text, name, quoted, [candidate paths relative to ROOT])] of rel's
        #include lines (comments ignored). A name resolves like the compiler: the
        including file's directory (quoted form only), then src/, include/, ROOT; the
        first that exists wins, else every candidate is kept."""
        out = []
        for n, text in enumerate(strip_comments(self.text(rel)).splitlines(), 1):
            m = INCLUDE_RE.match(text)
            if not m:
                continue
            quoted, name = m.group(1) == '"', m.group(2).strip()
            dirs = ([os.path.dirname(rel)] if quoted else []) + ["src", "include", "."]
            cands = []
            for d in dirs:
                p = os.path.normpath(os.path.join(d, name)).replace(os.sep, "/")
                if not p.startswith("../") and p not in cands:
                    cands.append(p)
            hit = [p for p in cands if os.path.isfile(os.path.join(self.root, p))]
            out.append((n, text.strip(), name, quoted, hit[:1] or cands))
        return out


def module_of(path):
    """The module a path relative to ROOT belongs to, or None."""
    parts = path.split("/")
    if len(parts) >= 4 and parts[0] == "src" and parts[1] == "modules":
        return parts[2]
    return None


def functions_defined(tokens):
    """[(name, is_static, line)] of file-scope function definitions: at brace depth 0,
    `... name ( ... ) {` with no '=' before the name."""
    out, depth, stmt = [], 0, []
    for tok in tokens:
        kv = tok[:2]
        if kv == ("p", "{"):
            if depth == 0 and stmt and stmt[-1][:2] == ("p", ")"):
                lvl, j = 0, len(stmt) - 1
                while j >= 0:  # back over the parameter list to its '('
                    if stmt[j][:2] == ("p", ")"):
                        lvl += 1
                    elif stmt[j][:2] == ("p", "("):
                        lvl -= 1
                        if lvl == 0:
                            break
                    j -= 1
                head = [t[:2] for t in stmt[:j]]
                if j > 0 and stmt[j - 1][0] == "id" and ("p", "=") not in head:
                    out.append((stmt[j - 1][1], ("id", "static") in head, stmt[j - 1][2]))
            depth += 1
            stmt = []
        elif kv == ("p", "}"):
            depth = max(depth - 1, 0)
            stmt = []
        elif depth == 0:
            stmt = [] if kv == ("p", ";") else stmt + [tok]
    return out


def in_struct_body(tokens):
    """Indexes of the identifiers declared directly in a struct or union body."""
    out, stack, tag = set(), [], (("id", "struct"), ("id", "union"))
    for k, tok in enumerate(tokens):
        if tok[:2] == ("p", "{"):
            before = [t[:2] for t in tokens[max(0, k - 2):k]]
            stack.append(bool(before) and (before[-1] in tag or (
                len(before) == 2 and before[0] in tag and before[1][0] == "id")))
        elif tok[:2] == ("p", "}"):
            if stack:
                stack.pop()
        elif tok[0] == "id" and stack and stack[-1]:
            out.add(k)
    return out


def discover(tree):
    """What the modules are made of, from src/modules/."""
    mdir = os.path.join(tree.root, "src", "modules")
    modules = sorted(d for d in os.listdir(mdir) if os.path.isdir(os.path.join(mdir, d))) \
        if os.path.isdir(mdir) else []
    info = {
        "modules": modules,
        "names": {m: {m} for m in modules},  # folder name plus the descriptor's .name
        "actions": {m: [] for m in modules},
        "funcs": {},        # symbol -> (module, role, "file:line")
        "descriptors": {},  # symbol -> module
        "files": [],
    }
    for m in modules:
        info["descriptors"]["jf_module_" + m] = m
        for rel in tree.files(f"src/modules/{m}"):
            info["files"].append(rel)
            toks = list(lex(tree.text(rel)))
            for k in range(len(toks) - 2):
                a, b, c = toks[k], toks[k + 1], toks[k + 2]
                # `.field = value`: a member token, '=', then the value
                if a[0] != "member" or b != ("p", "=", b[2]):
                    continue
                if a[1] == "action" and c[0] == "str":
                    if c[1] not in info["actions"][m]:
                        info["actions"][m].append(c[1])
                elif a[1] in ("handler", "init", "shutdown") and c[0] == "id" and c[1] != "NULL":
                    info["funcs"].setdefault(c[1], (m, a[1], f"{rel}:{c[2]}"))
            for k in range(len(toks) - 3):
                if toks[k][:2] == ("id", "jf_module_t") and toks[k + 1][0] == "id" \
                        and toks[k + 2][:2] == ("p", "=") and toks[k + 3][:2] == ("p", "{"):
                    info["descriptors"][toks[k + 1][1]] = m
                    depth, j = 0, k + 3  # the descriptor's own `.name = "..."`
                    while j < len(toks) - 2:
                        if toks[j][:2] == ("p", "{"):
                            depth += 1
                        elif toks[j][:2] == ("p", "}"):
                            depth -= 1
                            if depth == 0:
                                break
                        elif depth == 1 and toks[j][:2] == ("member", "name") \
                                and toks[j + 1][:2] == ("p", "=") and toks[j + 2][0] == "str" \
                                and re.fullmatch(r"[a-z0-9_-]+", toks[j + 2][1]):
                            info["names"][m].add(toks[j + 2][1])
                        j += 1
            for name, static, line in functions_defined(toks):
                if not static:
                    info["funcs"].setdefault(name, (m, "exported function", f"{rel}:{line}"))
    for m in modules:
        info["actions"][m].sort()
    return info


# ---- the rules -----------------------------------------------------------------------

def rule_a(tree, info, problems):
    """App files include no modules/... header; worker files no module proto header."""
    files = [f for f in tree.files("src/app") if f != COMPOSITION_ROOT]
    worker = set(tree.files("src/app/worker"))
    names = set().union(*info["names"].values()) if info["names"] else set()
    n_inc = 0
    for rel in files:
        for line, text, name, _quoted, cands in tree.includes(rel):
            n_inc += 1
            hit = next((p for p in cands if p.startswith("src/modules/")), None)
            if hit:
                problems.append(f"(a) {rel}:{line}: {text}  -> {hit}: only {COMPOSITION_ROOT} "
                                "includes module headers")
                continue
            parts = name.split("/")
            if rel in worker and len(parts) >= 3 and parts[0] == "jetfleet" and parts[1] in names:
                problems.append(f"(a) {rel}:{line}: {text}: the payload proto of module "
                                f"{parts[1]} in worker code")
    return len(files), n_inc


def literal_hit(s, info):
    """Why string literal s names a module or a job type, or None."""
    for m in info["modules"]:
        for name in sorted(info["names"][m]):
            if s == name:
                return f"module name {m}"
            for a in info["actions"][m]:
                if s == f"{name}.{a}":
                    return f"job type {m}.{a}"
                if re.search(rf"(?<![A-Za-z0-9_-]){re.escape(name)}\.{re.escape(a)}(?![A-Za-z0-9_-])", s):
                    return f"job type {m}.{a} inside a subject"
        if s in info["actions"][m]:
            return f"action {s} of module {m}"
    return None


def ident_hit(word, info):
    low = word.lower()
    for m in info["modules"]:
        for name in sorted(info["names"][m]):
            nid = name.replace("-", "_")
            if low == nid:
                return f"module name {m}"
            for a in info["actions"][m]:
                # <module>_<action> as the whole name or as '_'-bounded words of it
                # (webhooks_deliver, JF_WEBHOOKS_DELIVER)
                if re.search(rf"(?:^|_){re.escape(nid)}_{re.escape(a.replace('-', '_').lower())}(?:_|$)", low):
                    return f"job type {m}.{a}"
            parts = [p for p in low.split("__") if p]
            if len(parts) > 1 and nid in parts:
                return f"a type or symbol of module {m}'s payload"
    return None


def rule_b(tree, info, problems):
    """Worker files name no module and no job type."""
    files = tree.files("src/app/worker")
    n_str = n_id = 0
    for rel in files:
        for kind, val, line in lex(tree.text(rel)):
            if kind in ("str", "part"):
                n_str += kind == "str"
                why = literal_hit(val, info)
                if why:
                    problems.append(f'(b) {rel}:{line}: string literal "{val}" names {why}')
            elif kind in ("id", "member"):
                n_id += 1
                why = ident_hit(val, info)
                if why:
                    problems.append(f"(b) {rel}:{line}: identifier {val} names {why}")
    return files, n_str, n_id


def rule_c(tree, info, problems):
    """Outside the modules, no module function is named, and descriptors only in the
    composition root. A member (after '.' or '->', or declared in a struct body) is
    a field, not the symbol, and a file's own function of that name is its own."""
    tops = sorted(d for d in os.listdir(os.path.join(tree.root, "src"))
                  if d != "modules" and os.path.isdir(os.path.join(tree.root, "src", d)))
    files = [f for t in tops for f in tree.files(f"src/{t}")]
    uses, calls, notes = [], [], []
    for rel in files:
        toks = list(lex(tree.text(rel)))
        own = {name for name, _static, _line in functions_defined(toks)}
        fields = in_struct_body(toks)
        for k, (kind, val, line) in enumerate(toks):
            if kind == "member" and val == "handler" and rel.startswith("src/app/worker/"):
                calls.append(f"{rel}:{line}")
            if kind != "id" or k in fields:
                continue
            if val in info["funcs"]:
                m, role, where = info["funcs"][val]
                if val in own:
                    notes.append(f"{rel}:{line}: {val} is this file's own function "
                                 f"(module {m} has a {role} of the same name)")
                    continue
                problems.append(f"(c) {rel}:{line}: {val} is module {m}'s {role} ({where}); "
                                "module code is reached only through the registry")
            elif val in info["descriptors"]:
                if rel == COMPOSITION_ROOT:
                    uses.append(f"{val} ({rel}:{line})")
                else:
                    problems.append(f"(c) {rel}:{line}: {val} is module {info['descriptors'][val]}'s "
                                    f"descriptor; only {COMPOSITION_ROOT} names it")
    return files, tops, uses, calls, notes


def rule_d(tree, info, problems):
    """Modules include no security header and no other module's private file."""
    n_inc = 0
    for rel in info["files"]:
        this = module_of(rel)
        for line, text, _name, _quoted, cands in tree.includes(rel):
            n_inc += 1
            sec = next((p for p in cands if p.startswith("src/security/")), None)
            if sec:
                problems.append(f"(d) {rel}:{line}: {text}  -> {sec}: modules never see src/security")
                continue
            for p in cands:
                other = module_of(p)
                if other and other != this and p != f"src/modules/{other}/contract.h":
                    problems.append(f"(d) {rel}:{line}: {text}  -> {p}: private to module {other} "
                                    "(only its contract.h may be included)")
                    break
    return n_inc


def main():
    ap = argparse.ArgumentParser(description="worker runtime and module-boundary gate")
    ap.add_argument("--src-root", default=".")
    args = ap.parse_args()
    root = os.path.abspath(args.src_root)
    tree = Tree(root)
    problems = []
    if not os.path.isdir(os.path.join(root, "src", "app", "worker")):
        print(f"workerscan: FAIL: {root}/src/app/worker does not exist: nothing to prove")
        return 1
    info = discover(tree)
    if not info["modules"]:
        print(f"workerscan: FAIL: no module folder under {root}/src/modules: nothing to prove")
        return 1

    types = [f"{m}.{a}" for m in info["modules"] for a in info["actions"][m]]
    per_mod = ", ".join(f"{m} ({len(info['actions'][m])} type(s), "
                        f"{sum(1 for v in info['funcs'].values() if v[0] == m)} function(s))"
                        for m in info["modules"])
    handlers = sorted(k for k, v in info["funcs"].items() if v[1] == "handler")
    others = sorted(k for k, v in info["funcs"].items() if v[1] != "handler")
    extra_names = sorted(n for m in info["modules"] for n in info["names"][m] if n != m)
    print(f"modules ({len(info['modules'])}, from src/modules/*/): {per_mod}")
    if extra_names:
        print(f"  descriptor .name values that differ from the folder: {', '.join(extra_names)}")
    print(f"job types ({len(types)}, from .action initializers): {', '.join(types) or '-'}")
    print(f"handler symbols ({len(handlers)}, from .handler initializers): {', '.join(handlers) or '-'}")
    print(f"other module functions ({len(others)}, .init/.shutdown and non-static): {', '.join(others) or '-'}")
    print(f"descriptors ({len(info['descriptors'])}): {', '.join(sorted(info['descriptors']))}")

    n_a, inc_a = rule_a(tree, info, problems)
    wfiles, n_str, n_id = rule_b(tree, info, problems)
    cfiles, tops, uses, calls, notes = rule_c(tree, info, problems)
    inc_d = rule_d(tree, info, problems)
    count = lambda tag: sum(1 for p in problems if p.startswith(tag))  # noqa: E731
    print(f"(a) app includes: {n_a} files under src/app/ ({COMPOSITION_ROOT} exempt), "
          f"{inc_a} #include lines: {count('(a)')} reach a module")
    print(f"(b) worker names: {len(wfiles)} files under src/app/worker/ "
          f"({', '.join(os.path.basename(f) for f in wfiles)}), {n_str} string literals and "
          f"{n_id} identifiers: {count('(b)')} name a module or job type")
    print(f"(c) registry only: {len(cfiles)} files in src/{{{','.join(tops)}}}: {count('(c)')} name a "
          f"module function or a descriptor outside the composition root; descriptors named in "
          f"{COMPOSITION_ROOT}: {len(uses)}; `handler` field uses in worker code: "
          f"{', '.join(calls) or 'none'}")
    print(f"(d) module includes: {len(info['files'])} files under src/modules/, {inc_d} #include "
          f"lines: {count('(d)')} reach src/security or another module's private file")
    for nt in sorted(set(notes)):
        print(f"  note: {nt}")
    for p in problems:
        print(f"  violation: {p}")
    if problems:
        print(f"workerscan: FAIL ({len(problems)} violation(s))")
        return 1
    print("workerscan: PASS - worker code holds no business rule; handlers are reached only "
          "through the registry; modules stay behind their contracts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
