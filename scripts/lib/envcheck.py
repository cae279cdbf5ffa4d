#!/usr/bin/env python3
# envcheck.py - the "env:check" gate: JF_* names in code, schema, .env.example, docs.
#
# The code reads its environment through one schema (src/core/config_schema.def), so
# a variable name appears in C source as a string literal ("JF_POOL") - either the
# schema row stringified or a message that names the variable. This gate takes every
# JF_[A-Z0-9_]+ found *inside a string literal* of src/**/*.{c,h,def} (a small C
# lexer skips comments and character constants) and requires it to be
#   (a) in the schema: `BUILDDIR/src/app/jetfleet config schema --names`, one name a
#       line (or --schema-file FILE, for tests),
#   (b) in .env.example, as a `JF_NAME=` or `# JF_NAME=` line,
#   (c) in docs/configuration.md, as `JF_NAME` in backticks.
# Every schema name must in turn be in .env.example and the docs. Status codes
# (JF_OK, JF_E<WORD>), JF_VERSION, JF_ABI_VERSION, prefixes ending in '_' (as in
# "JF_NATS_TLS_*") and the names in env-ignore.txt (e.g. the KV bucket JF_LEDGER)
# are not variables and are ignored.
#
# Exit status: 0 consistent, 1 something missing, 2 usage error.
import argparse
import os
import re
import subprocess
import sys

NAME_RE = re.compile(r"(?<![A-Za-z0-9_])JF_[A-Z0-9_]+(?![A-Za-z0-9_])")
ENV_LINE_RE = re.compile(r"^[ \t]*(?:#[ \t]*)?(JF_[A-Z0-9_]+)=", re.M)
DOC_RE = re.compile(r"`(JF_[A-Z0-9_]+)(?:=[^`\n]*)?`")
SOURCE_EXT = (".c", ".h", ".def")


HERE = os.path.dirname(os.path.abspath(__file__))
EXTRA_IGNORED = set()


def load_ignore(path):
    """Names listed in env-ignore.txt (one a line, '#' starts a comment)."""
    try:
        with open(path) as f:
            return {l.split("#", 1)[0].strip() for l in f} - {""}
    except OSError:
        return set()


def ignored(name):
    return (name in ("JF_OK", "JF_VERSION", "JF_ABI_VERSION") or name in EXTRA_IGNORED
            # A status code is one word after JF_E (JF_EINVAL, JF_EUNKNOWN); a
            # variable such as JF_EVENTS_STREAM has more words and stays checked.
            or re.fullmatch(r"JF_E[A-Z0-9]+", name) is not None
            or name.endswith("_"))


def string_literals(text):
    """Yield (line, contents) of every string literal, skipping comments and
    character constants."""
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            line += text.count("\n", i, j)
            i = j
        elif c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c in "\"'":
            j, buf = i + 1, []
            while j < n and text[j] != c and text[j] != "\n":
                if text[j] == "\\" and j + 1 < n:
                    if text[j + 1] == "\n":
                        line += 1
                    buf.append(text[j:j + 2])
                    j += 2
                else:
                    buf.append(text[j])
                    j += 1
            if c == '"':
                yield line, "".join(buf)
            i = j + 1 if j < n and text[j] == c else j
        else:
            i += 1


def code_names(root):
    """{name: [(file, line)]} of JF_* names inside string literals under src/."""
    found = {}
    for dp, dns, fns in os.walk(os.path.join(root, "src")):
        dns.sort()
        for fn in sorted(fns):
            if not fn.endswith(SOURCE_EXT):
                continue
            path = os.path.join(dp, fn)
            with open(path, errors="replace") as f:
                text = f.read()
            for line, lit in string_literals(text):
                for m in NAME_RE.finditer(lit):
                    if not ignored(m.group(0)):
                        found.setdefault(m.group(0), []).append((os.path.relpath(path, root), line))
    return found


def schema_names(args):
    if args.schema_file:
        with open(args.schema_file) as f:
            text = f.read()
        src = args.schema_file
    else:
        binary = args.binary or os.path.join(args.builddir, "src", "app", "jetfleet")
        src = f"{binary} config schema --names"
        if not os.access(binary, os.X_OK):
            raise RuntimeError(f"{binary} does not exist or is not executable; build it first "
                               "(typecheck gate) or pass --schema-file")
        p = subprocess.run([binary, "config", "schema", "--names"], capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError(f"`{src}` exited {p.returncode}: {p.stderr.strip()[:2000]}")
        text = p.stdout
    names, bad = [], []
    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        if re.fullmatch(r"JF_[A-Z0-9_]+", s):
            names.append(s)
        else:
            bad.append(s)
    if bad:
        raise RuntimeError(f"`{src}` printed lines that are not JF_* names: {bad[:5]}")
    return names, src


def read_or_empty(path):
    try:
        with open(path) as f:
            return f.read(), True
    except OSError:
        return "", False


def main():
    ap = argparse.ArgumentParser(description="JF_* environment names gate (env:check)")
    ap.add_argument("--src-root", default=".")
    ap.add_argument("--builddir", default="build")
    ap.add_argument("--binary", help="jetfleet binary (default BUILDDIR/src/app/jetfleet)")
    ap.add_argument("--schema-file", help="schema names, one a line, instead of running the binary")
    ap.add_argument("--env-example", help="default SRC_ROOT/.env.example")
    ap.add_argument("--docs", help="default SRC_ROOT/docs/configuration.md")
    ap.add_argument("--ignore-file", default=os.path.join(HERE, "env-ignore.txt"),
                    help="JF_* literals that are not environment variables")
    args = ap.parse_args()
    EXTRA_IGNORED.update(load_ignore(args.ignore_file))
    root = os.path.abspath(args.src_root)
    env_path = args.env_example or os.path.join(root, ".env.example")
    doc_path = args.docs or os.path.join(root, "docs", "configuration.md")

    try:
        schema, schema_src = schema_names(args)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"envcheck: FAIL: cannot read the schema: {e}")
        return 1
    code = code_names(root)
    env_text, env_ok = read_or_empty(env_path)
    doc_text, doc_ok = read_or_empty(doc_path)
    in_env = set(ENV_LINE_RE.findall(env_text))
    in_doc = set(DOC_RE.findall(doc_text))
    schema_set = set(schema)
    problems = []
    if not env_ok:
        problems.append(f"{os.path.relpath(env_path, root)} is missing")
    if not doc_ok:
        problems.append(f"{os.path.relpath(doc_path, root)} is missing")

    for name in sorted(code):
        where = ", ".join(f"{f}:{l}" for f, l in code[name][:3]) + (" ..." if len(code[name]) > 3 else "")
        if name not in schema_set:
            problems.append(f"{name} (used at {where}) is not in the schema ({schema_src})")
    for name in sorted(schema_set | set(code)):
        if name not in in_env:
            problems.append(f"{name} is not in {os.path.relpath(env_path, root)} (want a `{name}=` or `# {name}=` line)")
        if name not in in_doc:
            problems.append(f"{name} is not in {os.path.relpath(doc_path, root)} (want `{name}` in backticks)")
    stale = sorted((in_env | in_doc) - schema_set - set(code))

    print(f"envcheck: {len(schema_set)} schema names ({schema_src}), {len(code)} names in string "
          f"literals under src/, {len(in_env)} in .env.example, {len(in_doc)} in the docs")
    for s in stale:
        print(f"  warning: {s} is documented but is in neither the schema nor the code")
    for p in problems:
        print(f"  missing: {p}")
    if problems:
        print(f"envcheck: FAIL ({len(problems)} problem(s))")
        return 1
    print("envcheck: code, schema, .env.example and docs agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
