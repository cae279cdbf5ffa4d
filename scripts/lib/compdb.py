# compdb.py - rerun the compiler over compile_commands.json to get the real include sets.
#
# Used by layergraph.py (madge gate) and depcheck.py (depcheck gate). Both need what
# the compiler itself includes, not what a regex thinks it includes, so this module
# takes each compile command, strips its output and dependency-file options, adds a
# dependency mode (-MM -MG or -M) and parses the make-style rule the compiler prints.
# The invocations run in a thread pool: each one is a separate process, so threads
# are enough to keep every core busy.
import json
import os
import re
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor

# Options (and how many following arguments they take) that would write files or
# change the dependency output; they are dropped before we add our own mode.
_DROP_WITH_ARG = {"-o", "-MF", "-MQ", "-MT"}
_DROP_ALONE = {"-c", "-MD", "-MMD", "-MP", "-M", "-MM", "-MG", "-E", "-S"}


def norm(path, cwd):
    """Absolute, normalised path (no symlink resolution, so system paths stay as
    dpkg knows them)."""
    return os.path.normpath(os.path.join(cwd, path))


def under(path, root):
    root = root.rstrip("/")
    return path == root or path.startswith(root + "/")


class Entry:
    """One compile_commands.json entry: working directory, argv, absolute source."""

    def __init__(self, raw):
        self.directory = raw["directory"]
        if "arguments" in raw:
            self.argv = list(raw["arguments"])
        else:
            self.argv = shlex.split(raw["command"])
        self.file = norm(raw["file"], self.directory)

    def base_argv(self):
        """argv without the source file and without output/dependency options."""
        out, skip = [], 0
        for a in self.argv:
            if skip:
                skip -= 1
                continue
            if a in _DROP_WITH_ARG:
                skip = 1
                continue
            if a in _DROP_ALONE:
                continue
            if (a.startswith("-MF") and len(a) > 3) or (a.startswith("-o") and len(a) > 2):
                continue  # joined forms: -MFfile, -ofile
            if a.startswith("-fdiagnostics-color"):
                continue
            if not a.startswith("-") and norm(a, self.directory) == self.file:
                continue
            out.append(a)
        return out


def load(path):
    with open(path) as f:
        data = json.load(f)
    return [Entry(e) for e in data]


def parse_make_rule(text):
    """Prerequisites of the first rule in make-style dependency output."""
    text = text.replace("\\\n", " ")
    # The target ends at the first ':' followed by whitespace (paths may hold ':').
    m = re.search(r":(\s|$)", text)
    if not m:
        return []
    body = text[m.end():].split("\n", 1)[0]
    deps, cur, i = [], [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body) and body[i + 1] in " #":
            cur.append(body[i + 1])
            i += 2
            continue
        if c == "$" and i + 1 < len(body) and body[i + 1] == "$":
            cur.append("$")
            i += 2
            continue
        if c.isspace():
            if cur:
                deps.append("".join(cur))
                cur = []
        else:
            cur.append(c)
        i += 1
    if cur:
        deps.append("".join(cur))
    return deps


def parse_search_dirs(stderr, cwd):
    """The quote and bracket include search lists printed by `cc -v`."""
    quote, bracket, mode = [], [], None
    for line in stderr.splitlines():
        if line.startswith('#include "..." search starts here'):
            mode = quote
        elif line.startswith("#include <...> search starts here"):
            mode = bracket
        elif line.startswith("End of search list"):
            mode = None
        elif mode is not None and line.startswith(" "):
            d = line.strip()
            d = re.sub(r"\s+\(framework directory\)$", "", d)
            mode.append(norm(d, cwd))
    return quote, bracket


class Result:
    def __init__(self, source, cwd, argv, rc, deps, stderr, quote_dirs, bracket_dirs):
        self.source, self.cwd, self.argv, self.rc = source, cwd, argv, rc
        self.deps, self.stderr = deps, stderr
        self.quote_dirs, self.bracket_dirs = quote_dirs, bracket_dirs
        self.missing = {}


def run_one(entry, mode_args, source=None, lang=None, verbose_dirs=False):
    """Run entry's compiler in dependency mode over `source` (default: the entry's
    own file). Returns a Result whose deps are absolute paths (the source first)."""
    src = source or entry.file
    argv = entry.base_argv() + list(mode_args) + ["-w"]
    if verbose_dirs:
        argv.append("-v")
    if lang:
        argv += ["-x", lang]
    argv.append(src)
    try:
        p = subprocess.run(argv, cwd=entry.directory, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return Result(src, entry.directory, argv, 127, [], str(e), [], [])
    raw = parse_make_rule(p.stdout) if p.returncode == 0 else []
    deps = [norm(d, entry.directory) for d in raw]
    q, b = parse_search_dirs(p.stderr, entry.directory) if verbose_dirs else ([], [])
    res = Result(src, entry.directory, argv, p.returncode, deps, p.stderr, q, b)
    # With -MG a header that is not found is listed as spelled in the #include.
    res.missing = {n: r for n, r in zip(deps, raw) if not os.path.exists(n)}
    return res


def first_error(stderr):
    """The most useful line of a failed compiler run, for a one-line report."""
    lines = [l for l in stderr.strip().splitlines() if l.strip()]
    for l in lines:
        if "error:" in l:
            return l
    return lines[-1] if lines else "?"


def run_many(jobs, workers=None):
    """jobs: list of (entry, mode_args, source, lang, verbose_dirs). Results in order."""
    workers = workers or max(2, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futs = [pool.submit(run_one, *j) for j in jobs]
        return [f.result() for f in futs]
