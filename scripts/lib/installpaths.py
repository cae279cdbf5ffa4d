#!/usr/bin/env python3
# installpaths.py - the installed copy of a deployment asset, with the paths of the build.
#
# deploy/systemd/jetfleet-worker@.service and jetfleet.env.example are written for the
# default layout (/usr/local/bin/jetfleet, settings in /etc/jetfleet/, the docs in
# /usr/share/doc/jetfleet/), so that they work as they stand when copied by hand
# (docs/deployment.md). `meson install` installs copies made by this script instead,
# run by deploy/meson.build, with the directories of the build's configuration:
#   ExecStart=<anything>/jetfleet ...        -> ExecStart=<bindir>/jetfleet ...
#   /etc/jetfleet/                           -> <sysconfdir>/jetfleet/
#   file:///usr/share/doc/jetfleet/          -> file://<docdir>/
# so `meson setup --prefix=/usr` gives /usr/bin/jetfleet and /etc/jetfleet. Every
# other byte is kept, hardening included (tests/deploy/check_install.py compares).
#
# Usage: installpaths.py IN OUT --bindir DIR --sysconfdir DIR --docdir DIR [--unit]
#   --unit   IN is a systemd unit: it must have exactly one ExecStart= running
#            .../jetfleet (anything else is an error, not a silent copy).
# Stdlib only. Exit status 0, 1 when a --unit has no such ExecStart=, 2 usage error.
import argparse
import re
import sys

EXEC = re.compile(r"^ExecStart=(\S*/)?jetfleet(?= |$)", re.M)


def main():
    ap = argparse.ArgumentParser(description="rewrite install paths in a deployment asset")
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--bindir", required=True)
    ap.add_argument("--sysconfdir", required=True)
    ap.add_argument("--docdir", required=True)
    ap.add_argument("--unit", action="store_true")
    a = ap.parse_args()
    with open(a.input) as f:
        text = f.read()
    bindir, etc, doc = (d.rstrip("/") for d in (a.bindir, a.sysconfdir, a.docdir))
    if a.unit:
        text, n = EXEC.subn(lambda m: f"ExecStart={bindir}/jetfleet", text)
        if n != 1:
            print(f"installpaths.py: {a.input}: {n} 'ExecStart=.../jetfleet' lines, want 1",
                  file=sys.stderr)
            return 1
        note = ("# Installed by `meson install` from deploy/systemd/ with this build's\n"
                f"# paths: the binary in {bindir},\n"
                f"# settings in {etc}/jetfleet, docs in {doc}.\n")
        # the note goes after the opening comment, before the first section
        text = re.sub(r"^(?=\[)", lambda m: note + "\n", text, count=1, flags=re.M)
    text = text.replace("/etc/jetfleet/", f"{etc}/jetfleet/")
    text = text.replace("file:///usr/share/doc/jetfleet/", f"file://{doc}/")
    with open(a.output, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
