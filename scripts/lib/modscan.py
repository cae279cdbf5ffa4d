#!/usr/bin/env python3
# modscan.py - the fifth forbidden-include scan: a module must not include another
# module's private files (DESIGN.md section 3; only modules/<other>/contract.h).
#
# Like the four grep scans printed by scripts/gates, it reads include lines as text
# and prints each hit as `file:line:text` (nothing when clean), so its output can be
# shown verbatim next to theirs. grep alone cannot say "a module other than the one
# this file is in", hence the script. Both spellings are caught: the include-root form
# `"modules/<other>/x.h"` (optionally `src/` or `../` prefixed) and a relative
# `"../<other>/x.h"` from inside src/modules/<this>/.
#
# Usage: modscan.py [MODULES_DIR]   (default src/modules). Always exits 0; a
# missing directory prints nothing, as `grep ... || true` would.
import os
import re
import sys

LINE_RE = re.compile(r'^\s*#\s*include\s*["<]([^">]+)[">]')
ROOT_FORM = re.compile(r"^(?:\.\./)*(?:src/)?modules/([^/]+)/(.+)$")


def main():
    mdir = sys.argv[1] if len(sys.argv) > 1 else "src/modules"
    if not os.path.isdir(mdir):
        return 0
    mdir_abs = os.path.abspath(mdir)
    for dp, dns, fns in os.walk(mdir):
        dns.sort()
        rel_dir = os.path.relpath(dp, mdir)
        if rel_dir == ".":
            continue  # files directly in src/modules belong to no module
        this = rel_dir.split(os.sep)[0]
        for fn in sorted(fns):
            path = os.path.join(dp, fn)
            try:
                with open(path, errors="replace") as f:
                    lines = f.read().splitlines()
            except OSError:
                continue
            for n, text in enumerate(lines, 1):
                m = LINE_RE.match(text)
                if not m:
                    continue
                name = m.group(1)
                target = None
                rf = ROOT_FORM.match(name)
                if rf:
                    target = (rf.group(1), rf.group(2))
                else:
                    p = os.path.normpath(os.path.join(os.path.abspath(dp), name))
                    if p.startswith(mdir_abs + os.sep):
                        parts = os.path.relpath(p, mdir_abs).split(os.sep)
                        if len(parts) >= 2:
                            target = (parts[0], "/".join(parts[1:]))
                if target and target[0] != this and target[1] != "contract.h":
                    print(f"{path}:{n}:{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
