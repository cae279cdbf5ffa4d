#!/usr/bin/env python3
"""check_install.py - `meson install` puts exactly the packaged files in place,
and deploy/Dockerfile builds the image the way the docs say (docs/deployment.md,
"Packaging").

usage: check_install.py <source root> <build dir>

1. Runs `meson install -C <build dir> --no-rebuild --destdir <scratch dir>` and
   compares the installed files with the layout computed here from the build's
   own directory options (prefix, bindir, sysconfdir, mandir, datadir,
   systemdsystemunitdir): nothing missing, nothing extra.
2. The binary: the installed copy runs and prints the same --help.
3. The unit: the installed copy equals deploy/systemd/jetfleet-worker@.service
   but for the paths meson rewrites (ExecStart=<bindir>/jetfleet worker, the
   settings under <sysconfdir>/jetfleet/, the docs under <datadir>/doc/jetfleet/),
   keeps every hardening key, and passes `systemd-analyze verify` when that is
   installed.
4. The env example: VAR=value lines of schema variables only, no JF_POOL.
5. The man pages: one per command that `jetfleet --help` lists, plus jetfleet(1)
   and jetfleet.env(5); each has the man(7) skeleton, uses only man(7) macros,
   renders with `groff -man -Tutf8 -ww -z` without a warning, and its rendered
   text holds every option of the command's --help (every variable of the
   schema, for jetfleet.env(5)). Without groff, only the structural checks run.
6. deploy/Dockerfile: stages FROM debian:bookworm and debian:bookworm-slim, the
   build stage runs scripts/bootstrap and meson setup/compile/install into a
   DESTDIR, the runtime stage copies that binary to the ENTRYPOINT's path, runs
   as the non-root uid that deploy/k8s/worker-deployment.yaml expects, with
   CMD ["worker"], and installs a Debian package for every shared library the
   built binary links (found with readelf and dpkg, when those are present).
   .dockerignore keeps .git and build*/ out of the context.

Stdlib only. Exit status 0 when everything holds, 1 otherwise.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

errors = []
UNIT = "jetfleet-worker@.service"
ENV_EXAMPLE = "jetfleet.env.example"


def fail(where, msg):
    errors.append(f"{where}: {msg}")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def meson_cmd():
    exe = shutil.which("meson")
    return [exe] if exe else [sys.executable, "-m", "mesonbuild.mesonmain"]


# ---- the expected layout ---------------------------------------------------------

def build_options(builddir):
    r = run(meson_cmd() + ["introspect", builddir, "--buildoptions"])
    if r.returncode != 0:
        raise SystemExit(f"meson introspect failed: {r.stderr}")
    return {o["name"]: o["value"] for o in json.loads(r.stdout)}


def layout(opts):
    prefix = opts["prefix"]

    def under(p):
        return os.path.normpath(os.path.join(prefix, p))

    unitdir = opts.get("systemdsystemunitdir", "")
    if unitdir == "":
        unitdir = under("lib/systemd/system")
    elif unitdir != "no":
        unitdir = under(unitdir)
    return {
        "bindir": under(opts["bindir"]),
        "sysconfdir": under(opts["sysconfdir"]),
        "mandir": under(opts["mandir"]),
        "docdir": under(os.path.join(opts["datadir"], "doc", "jetfleet")),
        "unitdir": unitdir,
    }


def commands(help_text):
    """The commands `jetfleet --help` lists under 'commands:'."""
    out, inside = [], False
    for line in help_text.split("\n"):
        if line == "commands:":
            inside = True
        elif inside and line.startswith("  "):
            out.append(re.split(r"\s{2,}", line.strip())[0])
        elif inside:
            break
    return out


# ---- systemd -----------------------------------------------------------------------

HARDENING = {
    "DynamicUser": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
    "PrivateTmp": "yes", "PrivateDevices": "yes", "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "", "AmbientCapabilities": "", "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes",
    "ProtectClock": "yes", "ProtectHostname": "yes", "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes", "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
}


def unit_keys(text):
    keys, section = {}, None
    for line in text.split("\n"):
        if line.startswith(("#", ";")) or not line.strip():
            continue
        m = re.fullmatch(r"\[(\w+)\]", line)
        if m:
            section = m.group(1)
            continue
        k, _, v = line.partition("=")
        keys.setdefault((section, k), []).append(v)
    return keys


def check_unit(path, source, dirs, destdir, binary):
    text = open(path).read()
    want = open(source).read()
    # what meson is allowed to change (scripts/lib/installpaths.py)
    want = re.sub(r"^ExecStart=\S*/jetfleet", f"ExecStart={dirs['bindir']}/jetfleet", want,
                  flags=re.M)
    want = want.replace("/etc/jetfleet/", f"{dirs['sysconfdir']}/jetfleet/")
    want = want.replace("file:///usr/share/doc/jetfleet/", f"file://{dirs['docdir']}/")
    def body(t):
        return [x for x in t.split("\n") if x.strip() and not x.startswith("#")]
    if body(text) != body(want):
        fail(path, "differs from deploy/systemd/ by more than the install paths")
    keys = unit_keys(text)
    for k, v in HARDENING.items():
        if keys.get(("Service", k)) != [v]:
            fail(path, f"hardening: {k}={v!r} expected, got {keys.get(('Service', k))!r}")
    if "@system-service" not in keys.get(("Service", "SystemCallFilter"), []):
        fail(path, "hardening: SystemCallFilter=@system-service expected")
    execs = keys.get(("Service", "ExecStart"), [])
    if execs != [f"{dirs['bindir']}/jetfleet worker"]:
        fail(path, f"ExecStart {execs!r}, want ['{dirs['bindir']}/jetfleet worker']")
    envf = keys.get(("Service", "EnvironmentFile"), [])
    if envf != [f"{dirs['sysconfdir']}/jetfleet/%i.env"]:
        fail(path, f"EnvironmentFile {envf!r} is not under the sysconfdir {dirs['sysconfdir']}")
    docs = " ".join(keys.get(("Unit", "Documentation"), [])).split()
    for uri in docs:
        if uri.startswith("file://") and not os.path.isfile(destdir + uri[len("file://"):]):
            fail(path, f"Documentation={uri} is not an installed file")
        m = re.fullmatch(r"man:(.+)\((\d)\)", uri)
        if m and not os.path.isfile(os.path.join(destdir + dirs["mandir"], f"man{m.group(2)}",
                                                 f"{m.group(1)}.{m.group(2)}")):
            fail(path, f"Documentation={uri} is not an installed man page")
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("systemd-analyze not installed: verify of the installed unit skipped")
        return
    with tempfile.TemporaryDirectory() as d:
        # verify insists that ExecStart exists: point it at the installed binary
        unit = os.path.join(d, "jetfleet-worker@default.service")
        with open(unit, "w") as f:
            f.write(re.sub(r"^ExecStart=\S+", f"ExecStart={binary}", text, flags=re.M))
        # with MANPATH at the installed pages, verify also finds Documentation=man:...
        r = run([analyze, "verify", unit],
                env=dict(os.environ, MANPATH=destdir + dirs["mandir"]))
        out = (r.stdout + r.stderr).strip()
        if r.returncode != 0 or out:
            fail(path, f"systemd-analyze verify: exit {r.returncode}: {out}")


def check_env_example(path, names, dirs):
    seen = set()
    for n, line in enumerate(open(path), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"(JF_[A-Z0-9_]+)=(.*)", line)
        if not m:
            fail(f"{path}:{n}", f"not a VAR=value line: {line!r}")
            continue
        if m.group(1) not in names:
            fail(f"{path}:{n}", f"{m.group(1)} is not in `jetfleet config schema`")
        if m.group(1) == "JF_POOL":
            fail(f"{path}:{n}", "sets JF_POOL, which would override the unit's instance")
        seen.add(m.group(1))
    if "JF_NATS_URL" not in seen:
        fail(path, "does not set JF_NATS_URL")
    if f"{dirs['sysconfdir']}/jetfleet/" not in open(path).read():
        fail(path, f"does not name the installed settings directory {dirs['sysconfdir']}/jetfleet")


# ---- man pages ------------------------------------------------------------------------

MAN_MACROS = {"TH", "SH", "SS", "PP", "P", "LP", "TP", "IP", "RS", "RE", "B", "I", "BR", "BI",
              "IB", "IR", "RB", "RI", "nf", "fi", "br", "sp", "nh", "ad", "EX", "EE", "\\\""}


def check_man(path, name, section, groff, must_mention, items=()):
    """items: terms (options) that must each open a .TP item of the page."""
    text = open(path).read()
    lines = text.split("\n")
    macros = [x for x in lines if x.startswith((".", "'"))]
    heads = [re.fullmatch(r'\.SH "?(.*?)"?', x).group(1) for x in macros if x.startswith(".SH ")]
    th = [x for x in macros if x.startswith(".TH ")]
    if len(th) != 1:
        fail(path, "wants exactly one .TH")
    elif not re.match(rf'\.TH "?{re.escape(name.upper())}"? {section} ', th[0]):
        fail(path, f".TH {th[0]!r} does not name {name.upper()} in section {section}")
    first = next((x for x in macros if not x.startswith('.\\"')), "")
    if not first.startswith(".TH "):
        fail(path, "the first request is not .TH")
    for want in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
        if want not in heads:
            fail(path, f"no .SH {want}")
    for x in macros:
        req = re.match(r"[.'](\S+)", x)
        if req and req.group(1) not in MAN_MACROS:
            fail(path, f"request {x.split()[0]} is not a man(7) macro")
    if ".SH NAME" in lines or '.SH "NAME"' in lines:
        i = max(lines.index(x) for x in (".SH NAME", '.SH "NAME"') if x in lines)
        roff_name = name.replace("-", "\\-")
        if not re.fullmatch(re.escape(roff_name) + r" \\- \S.*", lines[i + 1]):
            fail(path, f"NAME line {lines[i + 1]!r} is not '{roff_name} \\- summary'")
    fill = True
    for i, x in enumerate(lines, 1):
        if x in (".nf", ".EX"):
            fill = False
        elif x in (".fi", ".EE"):
            fill = True
        elif fill and x.startswith(" "):
            fail(f"{path}:{i}", "a text line starts with a space in fill mode")
        for esc in re.findall(r"\\(f.|.)", x):
            if esc not in ("fB", "fI", "fR", "fP", "e", "-", "&", '"', "(", "%"):
                fail(f"{path}:{i}", f"unexpected escape \\{esc}")
    for opt in items:
        if not re.search(r"^\.TP\n\\fB" + re.escape(opt.replace("-", "\\-")) + r"\\fR", text,
                         flags=re.M):
            fail(path, f"{opt} of the --help options is not an item (.TP) of the page")
    if groff is None:
        return
    r = run([groff, "-man", "-Tutf8", "-ww", "-z", path])
    if r.returncode != 0 or r.stderr.strip():
        fail(path, f"groff -man -ww: exit {r.returncode}: {r.stderr.strip()}")
    r = run([groff, "-man", "-Tutf8", "-P-cbou", path], env=dict(os.environ, GROFF_NO_SGR="1"))
    rendered = r.stdout.replace("\u2010", "-").replace("\u2212", "-")
    rendered = re.sub(r"\s+", " ", rendered)
    for word in must_mention:
        if word not in rendered:
            fail(path, f"the rendered page does not mention {word!r}")


# ---- the Dockerfile -------------------------------------------------------------------

def instructions(path):
    out, cur = [], ""
    for line in open(path):
        line = line.rstrip("\n")
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        word, _, rest = cur.strip().partition(" ")
        out.append((word.upper(), re.sub(r"\s+", " ", rest.strip())))
        cur = ""
    return out


def runtime_packages(binary):
    """Debian packages of the shared libraries the binary links directly, or None
    when readelf, ldd or dpkg-query are missing."""
    readelf, ldd, dpkg = shutil.which("readelf"), shutil.which("ldd"), shutil.which("dpkg")
    if not (readelf and ldd and dpkg):
        return None
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                        run([readelf, "-d", binary]).stdout)
    paths = dict(re.findall(r"^\s*(\S+) => (/\S+)", run([ldd, binary]).stdout, flags=re.M))
    pkgs = {}
    for lib in needed:
        path = paths.get(lib)
        if path is None:
            fail(binary, f"ldd does not resolve {lib}")
            continue
        owner = None
        for p in (path, os.path.realpath(path), "/usr" + path):
            r = run([dpkg, "-S", p])
            if r.returncode == 0:
                owner = r.stdout.split(":")[0].strip()
                break
        if owner is None:
            fail(binary, f"no Debian package owns {path}")
            continue
        pkgs[lib] = owner
    return pkgs


# in debian:bookworm-slim already, or only in sanitizer builds
BASE_PACKAGES = re.compile(r"^(libc6|libgcc-s1|libstdc\+\+6|libasan\d+|libubsan\d+|liblsan\d+)$")


def check_dockerfile(root, binary):
    path = os.path.join(root, "deploy/Dockerfile")
    ins = instructions(path)
    froms = [(i, rest) for i, (w, rest) in enumerate(ins) if w == "FROM"]
    if len(froms) < 2:
        fail(path, "not a multi-stage build (want a build stage and a runtime stage)")
        return
    m = re.fullmatch(r"(\S+) AS (\S+)", froms[0][1], flags=re.I)
    if not m or m.group(1) != "debian:bookworm":
        fail(path, f"first stage 'FROM {froms[0][1]}', want 'FROM debian:bookworm AS <name>'")
        return
    stage = m.group(2)
    if froms[-1][1].split()[0] != "debian:bookworm-slim":
        fail(path, f"runtime stage 'FROM {froms[-1][1]}', want debian:bookworm-slim")
    for _, rest in froms:
        if not rest.startswith("debian:bookworm"):
            fail(path, f"FROM {rest}: every stage is Debian bookworm")
    build = [x for x in ins[froms[0][0] + 1:froms[1][0]] if x[0] == "RUN"]
    final = ins[froms[-1][0] + 1:]
    script = " && ".join(rest for _, rest in build)
    for want in ("scripts/bootstrap", "meson setup", "meson compile", "meson install"):
        if want not in script:
            fail(path, f"the build stage does not run {want}")
    if not os.access(os.path.join(root, "scripts/bootstrap"), os.X_OK):
        fail(path, "scripts/bootstrap is not an executable of the repository")
    known = set(build_options_cache)
    for opt in re.findall(r"-D([a-z_]+)=", script):
        if opt not in known:
            fail(path, f"meson setup -D{opt}: no such option")
    pm = re.search(r"--prefix[= ](\S+)", script)
    dm = re.search(r"meson install .*--destdir[= ](\S+)", script)
    if not dm:
        fail(path, "meson install without --destdir: the runtime stage copies from a staging dir")
        return
    staged = os.path.normpath(f"{dm.group(1)}/{pm.group(1) if pm else '/usr/local'}/bin/jetfleet")
    copies = [rest for w, rest in final if w == "COPY"]
    entry = [rest for w, rest in final if w == "ENTRYPOINT"]
    cmd = [rest for w, rest in final if w == "CMD"]
    users = [rest for w, rest in final if w == "USER"]
    try:
        entry = json.loads(entry[-1]) if entry else None
        cmd = json.loads(cmd[-1]) if cmd else None
    except ValueError as e:
        fail(path, f"ENTRYPOINT and CMD must be in exec (JSON) form: {e}")
        return
    if not entry or not entry[0].endswith("/jetfleet"):
        fail(path, f"ENTRYPOINT {entry!r} does not run jetfleet")
    elif f"--from={stage} {staged} {entry[0]}" not in copies:
        fail(path, f"no 'COPY --from={stage} {staged} {entry[0]}' (the staged binary to the "
                   f"ENTRYPOINT's path); COPY lines: {copies}")
    if cmd != ["worker"]:
        fail(path, f"CMD {cmd!r}, want [\"worker\"]")
    if not users:
        fail(path, "the runtime stage sets no USER: it would run as root")
    else:
        uid = users[-1].split(":")[0]
        if uid in ("0", "root"):
            fail(path, f"USER {users[-1]} is root")
        k8s = open(os.path.join(root, "deploy/k8s/worker-deployment.yaml")).read()
        want = re.search(r"runAsUser: (\d+)", k8s)
        if not uid.isdigit():
            fail(path, f"USER {users[-1]}: numeric, so that runAsNonRoot can check it")
        elif want and uid != want.group(1):
            fail(path, f"USER {uid} is not the runAsUser {want.group(1)} of the k8s Deployment")
    apt = " ".join(rest for w, rest in final if w == "RUN")
    am = re.search(r"apt-get install ((?:\S+ ?)+?)(?:&&|$)", apt)
    pkgs = [p for p in (am.group(1).split() if am else []) if not p.startswith("-")]
    if not pkgs:
        fail(path, "the runtime stage installs no packages with apt-get install")
    for p in pkgs:
        if p.endswith("-dev"):
            fail(path, f"the runtime stage installs the development package {p}")
    if "ca-certificates" not in pkgs:
        fail(path, "the runtime stage lacks ca-certificates (TLS to NATS and webhooks)")
    owners = runtime_packages(binary)
    if owners is None:
        print("readelf, ldd or dpkg missing: runtime libraries not compared")
    else:
        for lib, pkg in sorted(owners.items()):
            if pkg not in pkgs and not BASE_PACKAGES.match(pkg):
                fail(path, f"jetfleet links {lib} from Debian package {pkg}, which the runtime "
                           "stage does not install")
        print(f"Dockerfile runtime packages cover {len(owners)} linked libraries: "
              + ", ".join(sorted(set(owners.values()))))
    ignore = os.path.join(root, ".dockerignore")
    pats = [x.strip() for x in open(ignore)] if os.path.exists(ignore) else []
    for want in (".git", "build*"):
        if want not in pats:
            fail(ignore, f"does not exclude {want} from the build context")


build_options_cache = {}


# ---- main ------------------------------------------------------------------------------

def main():
    if len(sys.argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    root, builddir = (os.path.abspath(p) for p in sys.argv[1:])
    opts = build_options(builddir)
    build_options_cache.update(opts)
    dirs = layout(opts)
    built = os.path.join(builddir, "src/app/jetfleet")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JF_")}
    help_text = run([built, "--help"], env=env).stdout
    cmds = commands(help_text)
    if not cmds:
        fail(built, "`jetfleet --help` lists no commands")
    groff = shutil.which("groff")

    with tempfile.TemporaryDirectory(prefix="jf-install-") as destdir:
        r = run(meson_cmd() + ["install", "-C", builddir, "--no-rebuild", "--quiet",
                               "--destdir", destdir])
        if r.returncode != 0:
            print(r.stdout + r.stderr)
            fail("meson install", f"exit {r.returncode}")
            return finish()

        def inst(d, *parts):
            return os.path.join(destdir + dirs[d], *parts)

        man1 = {"jetfleet": None} | {"jetfleet-" + c.replace(" ", "-"): c for c in cmds}
        expected = {inst("bindir", "jetfleet"),
                    inst("sysconfdir", "jetfleet", ENV_EXAMPLE),
                    inst("docdir", "deployment.md"),
                    inst("mandir", "man5", "jetfleet.env.5")}
        expected |= {inst("mandir", "man1", p + ".1") for p in man1}
        if dirs["unitdir"] != "no":
            expected.add(inst("unitdir", UNIT))
        found = set()
        for d, _, files in os.walk(destdir):
            found |= {os.path.join(d, f) for f in files}
        for p in sorted(expected - found):
            fail("meson install", f"did not install {p[len(destdir):]}")
        for p in sorted(found - expected):
            fail("meson install", f"installed {p[len(destdir):]}, which is not in the packaging "
                                  "layout (tests/deploy/check_install.py)")

        binary = inst("bindir", "jetfleet")
        if os.path.exists(binary):
            if not os.access(binary, os.X_OK):
                fail(binary, "is not executable")
            elif run([binary, "--help"], env=env).stdout != help_text:
                fail(binary, "the installed binary's --help differs from the built one's")

        names = set(run([built, "config", "schema", "--names"], env=env).stdout.split())
        unit = inst("unitdir", UNIT)
        if os.path.exists(unit) and dirs["unitdir"] != "no":
            check_unit(unit, os.path.join(root, "deploy/systemd", UNIT), dirs, destdir, binary)
        example = inst("sysconfdir", "jetfleet", ENV_EXAMPLE)
        if os.path.exists(example):
            check_env_example(example, names, dirs)

        for page, command in man1.items():
            path = inst("mandir", "man1", page + ".1")
            if not os.path.exists(path):
                continue
            items = ()
            if command is None:
                mention = cmds
            else:
                text = run([built, *command.split(), "--help"], env=env).stdout
                mention = sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text)))
                items = re.findall(r"^  (--?[a-z][a-z-]*)", text, flags=re.M)
            check_man(path, page, 1, groff, mention, items)
        path = inst("mandir", "man5", "jetfleet.env.5")
        if os.path.exists(path):
            check_man(path, "jetfleet.env", 5, groff, sorted(names))
        if groff is None:
            print("groff not installed: man pages checked for structure only")
        print(f"installed {len(found)} files into a scratch DESTDIR; "
              f"{len(man1) + 1} man pages checked" + (" with groff" if groff else ""))

    check_dockerfile(root, built)
    return finish()


def finish():
    for e in errors:
        print("FAIL", e)
    print(f"{len(errors)} problems" if errors else "install layout, unit, man pages and "
          "Dockerfile: ok")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
