#!/usr/bin/env python3
"""check_manifests.py - hold deploy/k8s and deploy/systemd to what
Kubernetes, KEDA, systemd and the worker expect (DESIGN.md 9).

usage: check_manifests.py <source root>

Stdlib only. The manifests are written in a small YAML subset that the
strict parser below reads: block mappings and sequences, plain, single- or
double-quoted one-line scalars, one-line flow sequences of scalars, comments
and `---`. Anything else (anchors, tags, block scalars, flow mappings, tabs,
duplicate keys) is an error, so the subset cannot drift silently. Why not
PyYAML: it is not a Debian package scripts/bootstrap installs, and the
project's python may lack it. When `yaml` happens to be importable, every
file is also loaded with yaml.safe_load_all and must give the same data.

The systemd unit is checked by its sections and keys, and with
`systemd-analyze verify` when that is installed (ExecStart pointed at an
existing binary, since verify insists the command exists).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

errors = []


def fail(where, msg):
    errors.append(f"{where}: {msg}")


# ---- the YAML subset --------------------------------------------------------------

class YamlError(Exception):
    pass


PLAIN_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")


def scalar(text, where):
    t = text.strip()
    if t == "":
        return None
    if t[0] in "&*!|>{%@`":
        raise YamlError(f"{where}: unsupported YAML construct '{t[:20]}'")
    if t[0] == '"':
        if len(t) < 2 or not t.endswith('"'):
            raise YamlError(f"{where}: unterminated double-quoted scalar")
        body = t[1:-1]
        if re.search(r'(?<!\\)"', body):
            raise YamlError(f"{where}: stray quote in {t}")
        if "\\" in body and re.search(r'\\[^"\\n/t]', body):
            raise YamlError(f"{where}: unsupported escape in {t}")
        return body.replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t") \
                   .replace("\\/", "/").replace("\\\\", "\\")
    if t[0] == "'":
        if len(t) < 2 or not t.endswith("'"):
            raise YamlError(f"{where}: unterminated single-quoted scalar")
        return t[1:-1].replace("''", "'")
    if t[0] == "[":
        if not t.endswith("]"):
            raise YamlError(f"{where}: multi-line flow sequence")
        inner = t[1:-1].strip()
        if inner == "":
            return []
        return [scalar(x, where) for x in inner.split(",")]
    if t in ("null", "~"):
        return None
    if t in ("true", "false"):
        return t == "true"
    if re.match(r"^(yes|no|on|off|y|n)$", t, re.I) or re.match(r"^0[0-7]+$", t):
        raise YamlError(f"{where}: '{t}' means different things in YAML 1.1 and 1.2; quote it")
    if PLAIN_INT.match(t):
        return int(t)
    if ": " in t or t.endswith(":") or " #" in t:
        raise YamlError(f"{where}: ambiguous plain scalar '{t}'")
    return t


def strip_comment(line):
    """Drop a comment: '#' at the start or after a space, outside quotes."""
    q = None
    for i, c in enumerate(line):
        if q:
            if c == q:
                q = None
        elif c in "'\"":
            q = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def parse_yaml(text, name):
    docs, cur = [], []
    for n, raw in enumerate(text.split("\n"), 1):
        if "\t" in raw:
            raise YamlError(f"{name}:{n}: tab character")
        if raw.strip() == "---":
            docs.append(cur)
            cur = []
            continue
        line = strip_comment(raw)
        if line.strip():
            cur.append((n, len(line) - len(line.lstrip(" ")), line.strip()))
    docs.append(cur)
    out = []
    for lines in docs:
        if not lines:
            continue
        value, i = parse_block(lines, 0, lines[0][1], name)
        if i != len(lines):
            raise YamlError(f"{name}:{lines[i][0]}: unexpected indentation")
        out.append(value)
    return out


KEY = re.compile(r"^([A-Za-z0-9_./-]+|\"[^\"]*\"):(?: (.*))?$")


def parse_block(lines, i, indent, name):
    n, ind, text = lines[i]
    if ind != indent:
        raise YamlError(f"{name}:{n}: bad indentation")
    if text == "-" or text.startswith("- "):
        return parse_seq(lines, i, indent, name)
    return parse_map(lines, i, indent, name)


def parse_map(lines, i, indent, name, first=None):
    result = {}
    while i < len(lines):
        n, ind, text = lines[i]
        if first is not None:
            ind, text, first = indent, first, None
        if ind < indent:
            break
        if ind > indent:
            raise YamlError(f"{name}:{n}: unexpected indentation")
        m = KEY.match(text)
        if not m:
            raise YamlError(f"{name}:{n}: expected 'key: value', got '{text}'")
        key = m.group(1).strip('"')
        if key in result:
            raise YamlError(f"{name}:{n}: duplicate key {key}")
        rest = m.group(2)
        i += 1
        if rest is None or rest.strip() == "":
            if i < len(lines) and lines[i][1] > indent:
                result[key], i = parse_block(lines, i, lines[i][1], name)
            elif i < len(lines) and lines[i][1] == indent and lines[i][2].startswith("- "):
                result[key], i = parse_seq(lines, i, indent, name)   # "key:\n- item"
            else:
                result[key] = None
        else:
            result[key] = scalar(rest, f"{name}:{n}")
    return result, i


def parse_seq(lines, i, indent, name):
    result = []
    while i < len(lines):
        n, ind, text = lines[i]
        if ind < indent or not (text == "-" or text.startswith("- ")):
            if ind > indent:
                raise YamlError(f"{name}:{n}: unexpected indentation")
            break
        if ind > indent:
            raise YamlError(f"{name}:{n}: unexpected indentation")
        item = text[1:].strip()
        if KEY.match(item):
            # "- key: value" opens a mapping indented to the key; parse_map
            # reads this line as its first, with the "- " taken off
            value, i = parse_map(lines, i, indent + 2, name, first=item)
        else:
            i += 1
            if item == "" and i < len(lines) and lines[i][1] > indent:
                value, i = parse_block(lines, i, lines[i][1], name)
            else:
                value = scalar(item, f"{name}:{n}")
        result.append(value)
    return result, i


# ---- Kubernetes and KEDA ------------------------------------------------------------

TOP_KEYS = {
    "Deployment": ({"apps/v1"}, {"apiVersion", "kind", "metadata", "spec"}),
    "ConfigMap": ({"v1"}, {"apiVersion", "kind", "metadata", "data", "binaryData", "immutable"}),
    "Secret": ({"v1"}, {"apiVersion", "kind", "metadata", "data", "stringData", "type",
                        "immutable"}),
    "ScaledObject": ({"keda.sh/v1alpha1"}, {"apiVersion", "kind", "metadata", "spec"}),
    "TriggerAuthentication": ({"keda.sh/v1alpha1"}, {"apiVersion", "kind", "metadata", "spec"}),
}
DEPLOYMENT_SPEC = {"replicas", "selector", "template", "strategy", "minReadySeconds",
                   "revisionHistoryLimit", "paused", "progressDeadlineSeconds"}
POD_SPEC = {"containers", "initContainers", "volumes", "terminationGracePeriodSeconds",
            "securityContext", "serviceAccountName", "automountServiceAccountToken",
            "nodeSelector", "affinity", "tolerations", "topologySpreadConstraints",
            "priorityClassName", "imagePullSecrets", "restartPolicy", "dnsPolicy"}
CONTAINER = {"name", "image", "imagePullPolicy", "command", "args", "env", "envFrom", "ports",
             "livenessProbe", "readinessProbe", "startupProbe", "resources", "securityContext",
             "volumeMounts", "workingDir", "lifecycle", "terminationMessagePolicy"}
PROBE = {"httpGet", "initialDelaySeconds", "periodSeconds", "timeoutSeconds",
         "failureThreshold", "successThreshold", "terminationGracePeriodSeconds"}
SCALEDOBJECT_SPEC = {"scaleTargetRef", "pollingInterval", "cooldownPeriod",
                     "initialCooldownPeriod", "idleReplicaCount", "minReplicaCount",
                     "maxReplicaCount", "fallback", "advanced", "triggers"}
TRIGGER = {"type", "metadata", "name", "authenticationRef", "metricType", "useCachedMetrics"}
# https://keda.sh/docs/scalers/nats-jetstream/ - parameter list
NATS_JS_KEYS = {"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold",
                "activationLagThreshold", "useHttps"}
NATS_JS_REQUIRED = {"natsServerMonitoringEndpoint", "account", "stream", "consumer",
                    "lagThreshold"}
NATS_JS_AUTH_PARAMS = {"natsServerMonitoringEndpoint", "account"}


def unknown(where, obj, allowed):
    if not isinstance(obj, dict):
        fail(where, "is not a mapping")
        return
    for k in obj:
        if k not in allowed:
            fail(where, f"unknown key '{k}'")


def duration_s(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", str(text))
    if not m:
        return None
    mult = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]
    return int(m.group(1)) * mult


def check_docs(docs):
    by_kind = {}
    for where, d in docs:
        if not isinstance(d, dict):
            fail(where, "document is not a mapping")
            continue
        kind = d.get("kind")
        if kind not in TOP_KEYS:
            fail(where, f"unexpected kind {kind!r}")
            continue
        versions, keys = TOP_KEYS[kind]
        if d.get("apiVersion") not in versions:
            fail(where, f"{kind}: apiVersion {d.get('apiVersion')!r}, want one of {versions}")
        unknown(f"{where}: {kind}", d, keys)
        name = (d.get("metadata") or {}).get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name):
            fail(where, f"{kind}: metadata.name {name!r} is not a DNS name")
        by_kind.setdefault(kind, []).append((where, d))
    for kind in ("Deployment", "ConfigMap", "ScaledObject", "TriggerAuthentication"):
        if kind not in by_kind:
            fail("deploy/k8s", f"no {kind}")
    if errors:
        return
    cm_where, cm = by_kind["ConfigMap"][0]
    data = cm.get("data") or {}
    for k, v in data.items():
        if not isinstance(v, str):
            fail(cm_where, f"data.{k} must be a string")
        if not k.startswith("JF_"):
            fail(cm_where, f"data.{k} is not a JF_* variable")
    for where, dep in by_kind["Deployment"]:
        check_deployment(where, dep, cm, data)
    dep_names = {d["metadata"]["name"] for _, d in by_kind["Deployment"]}
    for where, so in by_kind["ScaledObject"]:
        check_scaledobject(where, so, dep_names, data)
    for where, ta in by_kind["TriggerAuthentication"]:
        spec = ta.get("spec") or {}
        refs = spec.get("secretTargetRef") or []
        if not refs:
            fail(where, "TriggerAuthentication without secretTargetRef")
        for r in refs:
            unknown(f"{where}: secretTargetRef", r, {"parameter", "name", "key"})
            if r.get("parameter") not in NATS_JS_AUTH_PARAMS:
                fail(where, f"parameter {r.get('parameter')!r} is not one nats-jetstream takes "
                     f"from a TriggerAuthentication ({sorted(NATS_JS_AUTH_PARAMS)})")
            if not r.get("name") or not r.get("key"):
                fail(where, "secretTargetRef needs name and key")


def check_deployment(where, dep, cm, data):
    spec = dep.get("spec") or {}
    unknown(f"{where}: spec", spec, DEPLOYMENT_SPEC)
    tmpl = spec.get("template") or {}
    unknown(f"{where}: spec.template", tmpl, {"metadata", "spec"})
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    for k, v in ((spec.get("selector") or {}).get("matchLabels") or {}).items():
        if labels.get(k) != v:
            fail(where, f"selector label {k}={v} is not on the pod template")
    pod = tmpl.get("spec") or {}
    unknown(f"{where}: pod spec", pod, POD_SPEC)
    grace = duration_s(data.get("JF_SHUTDOWN_GRACE", "25s"))
    tgps = pod.get("terminationGracePeriodSeconds")
    if not isinstance(tgps, int) or grace is None or tgps < grace + 30:
        fail(where, f"terminationGracePeriodSeconds {tgps!r} must be at least JF_SHUTDOWN_GRACE "
             f"({data.get('JF_SHUTDOWN_GRACE')}) + 30 s (docs/operations.md)")
    secret_vols = {v["name"] for v in pod.get("volumes") or [] if "secret" in v}
    containers = pod.get("containers") or []
    if len(containers) != 1:
        fail(where, "want exactly one container")
        return
    c = containers[0]
    unknown(f"{where}: container", c, CONTAINER)
    if c.get("args") != ["worker"]:
        fail(where, f"container args {c.get('args')!r}, want ['worker']")
    refs = [e.get("configMapRef", {}).get("name") for e in c.get("envFrom") or []]
    if cm["metadata"]["name"] not in refs:
        fail(where, f"envFrom does not load ConfigMap {cm['metadata']['name']}")
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
    mport = ports.get("metrics")
    if not isinstance(mport, int):
        fail(where, "no container port named metrics")
        return
    addr = data.get("JF_METRICS_ADDR", "")
    if not addr.endswith(f":{mport}"):
        fail(where, f"JF_METRICS_ADDR {addr!r} does not serve the metrics port {mport}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        p = c.get(probe)
        if not isinstance(p, dict):
            fail(where, f"no {probe}")
            continue
        unknown(f"{where}: {probe}", p, PROBE)
        get = p.get("httpGet") or {}
        unknown(f"{where}: {probe}.httpGet", get, {"path", "port", "scheme", "host",
                                                    "httpHeaders"})
        if get.get("path") != path:
            fail(where, f"{probe} path {get.get('path')!r}, want {path}")
        if get.get("port") not in ("metrics", mport):
            fail(where, f"{probe} port {get.get('port')!r} is not the metrics port {mport}")
    res = c.get("resources") or {}
    for part in ("requests", "limits"):
        if not all(k in (res.get(part) or {}) for k in ("cpu", "memory")):
            fail(where, f"resources.{part} needs cpu and memory")
    env = {e.get("name"): e for e in c.get("env") or []}
    creds = (env.get("JF_NATS_CREDS") or {}).get("value")
    mounts = [m for m in c.get("volumeMounts") or [] if m.get("name") in secret_vols]
    if not creds or not any(creds.startswith(m["mountPath"].rstrip("/") + "/") for m in mounts):
        fail(where, f"JF_NATS_CREDS {creds!r} is not a file in a mounted Secret volume")
    if any(not m.get("readOnly") for m in mounts):
        fail(where, "the Secret volume must be mounted readOnly")


def check_scaledobject(where, so, dep_names, data):
    spec = so.get("spec") or {}
    unknown(f"{where}: spec", spec, SCALEDOBJECT_SPEC)
    target = (spec.get("scaleTargetRef") or {}).get("name")
    if target not in dep_names:
        fail(where, f"scaleTargetRef.name {target!r} is not a Deployment here")
    lo, hi = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi):
        fail(where, f"replica counts {lo!r}..{hi!r}")
    triggers = spec.get("triggers") or []
    js = [t for t in triggers if t.get("type") == "nats-jetstream"]
    if len(js) != 1:
        fail(where, "want one trigger of type nats-jetstream")
        return
    t = js[0]
    unknown(f"{where}: trigger", t, TRIGGER)
    md = t.get("metadata") or {}
    unknown(f"{where}: nats-jetstream metadata", md, NATS_JS_KEYS)
    missing = NATS_JS_REQUIRED - set(md) if "authenticationRef" not in t else \
        NATS_JS_REQUIRED - NATS_JS_AUTH_PARAMS - set(md)
    if missing:
        fail(where, f"nats-jetstream metadata lacks {sorted(missing)}")
    for k, v in md.items():
        if not isinstance(v, str):
            fail(where, f"metadata.{k} must be a string (KEDA metadata is map[string]string)")
    for k in ("lagThreshold", "activationLagThreshold"):
        if k in md and not re.fullmatch(r"\d+", str(md[k])):
            fail(where, f"{k} {md[k]!r} is not a whole number")
    if int(md.get("lagThreshold", "1")) < 1:
        fail(where, "lagThreshold must be at least 1")
    if md.get("useHttps", "false") not in ("true", "false"):
        fail(where, "useHttps must be \"true\" or \"false\"")
    ep = md.get("natsServerMonitoringEndpoint", "")
    if "://" in ep or "/" in ep:
        fail(where, f"natsServerMonitoringEndpoint {ep!r}: host:port only, KEDA adds the scheme")
    if md.get("stream") != data.get("JF_STREAM", "JOBS"):
        fail(where, f"stream {md.get('stream')!r} is not JF_STREAM {data.get('JF_STREAM')!r}")
    if md.get("consumer") != data.get("JF_POOL", "default"):
        fail(where, f"consumer {md.get('consumer')!r} is not JF_POOL {data.get('JF_POOL')!r}")


# ---- systemd -------------------------------------------------------------------------

UNIT_KEYS = {
    "Unit": {"Description", "Documentation", "After", "Wants", "Requires", "Before",
             "StartLimitIntervalSec", "StartLimitBurst", "ConditionPathExists"},
    "Service": {"Type", "EnvironmentFile", "Environment", "ExecStart", "KillSignal", "KillMode",
                "TimeoutStopSec", "Restart", "RestartSec", "RestartPreventExitStatus",
                "LoadCredential", "DynamicUser", "ProtectSystem", "ProtectHome", "PrivateTmp",
                "PrivateDevices", "NoNewPrivileges", "CapabilityBoundingSet",
                "AmbientCapabilities", "ProtectKernelTunables", "ProtectKernelModules",
                "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname",
                "ProtectProc", "RestrictAddressFamilies", "RestrictNamespaces",
                "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality",
                "MemoryDenyWriteExecute", "SystemCallArchitectures", "SystemCallFilter",
                "UMask"},
    "Install": {"WantedBy"},
}
UNIT_REQUIRED = {
    ("Service", "EnvironmentFile"): "/etc/jetfleet/%i.env",
    ("Service", "DynamicUser"): "yes",
    ("Service", "ProtectSystem"): "strict",
    ("Service", "ProtectHome"): "yes",
    ("Service", "NoNewPrivileges"): "yes",
    ("Service", "PrivateTmp"): "yes",
    ("Service", "RestrictAddressFamilies"): "AF_INET AF_INET6 AF_UNIX",
    ("Service", "CapabilityBoundingSet"): "",
    ("Service", "KillSignal"): "SIGTERM",
    ("Service", "Restart"): "on-failure",
}


def parse_unit(path):
    sections, cur = {}, None
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith(("#", ";")):
                continue
            if line.endswith("\\"):
                fail(f"{path}:{n}", "continuation lines are not used here")
            m = re.fullmatch(r"\[([A-Za-z]+)\]", line)
            if m:
                cur = m.group(1)
                if cur in sections:
                    fail(f"{path}:{n}", f"section [{cur}] twice")
                sections[cur] = {}
                continue
            m = re.fullmatch(r"([A-Za-z]+)=(.*)", line)
            if not m or cur is None:
                fail(f"{path}:{n}", f"not 'Key=value' in a section: {line!r}")
                continue
            sections[cur].setdefault(m.group(1), []).append(m.group(2))
    return sections


def env_file(path):
    out = {}
    if os.path.exists(path):
        for line in open(path):
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                out[k] = v
    return out


def check_unit(root):
    path = os.path.join(root, "deploy/systemd/jetfleet-worker@.service")
    secs = parse_unit(path)
    for s in ("Unit", "Service", "Install"):
        if s not in secs:
            fail(path, f"no [{s}] section")
    for s, keys in secs.items():
        if s not in UNIT_KEYS:
            fail(path, f"unknown section [{s}]")
            continue
        for k in keys:
            if k not in UNIT_KEYS[s]:
                fail(path, f"[{s}] unknown key {k}")
    for (s, k), want in UNIT_REQUIRED.items():
        got = secs.get(s, {}).get(k)
        if got is None or got[0] != want:
            fail(path, f"[{s}] {k}={want!r} expected, got {got!r}")
    if "@system-service" not in secs.get("Service", {}).get("SystemCallFilter", []):
        fail(path, "SystemCallFilter=@system-service expected")
    exe = (secs.get("Service", {}).get("ExecStart") or [""])[0].split()
    if exe[1:] != ["worker"]:
        fail(path, f"ExecStart {exe!r} does not run `jetfleet worker`")
    envs = secs.get("Service", {}).get("Environment", [])
    if "JF_POOL=%i" not in envs:
        fail(path, "Environment=JF_POOL=%i expected: the instance is the pool")
    example = env_file(os.path.join(root, "deploy/systemd/jetfleet.env.example"))
    if "JF_POOL" in example:
        fail(path, "jetfleet.env.example sets JF_POOL, which would override the instance")
    grace = duration_s(example.get("JF_SHUTDOWN_GRACE", "25s"))
    stop = duration_s((secs.get("Service", {}).get("TimeoutStopSec") or ["0"])[0])
    if stop is None or grace is None or stop < grace + 30:
        fail(path, f"TimeoutStopSec must be at least JF_SHUTDOWN_GRACE + 30 s, got {stop}")

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("systemd-analyze not installed: verify skipped")
        return
    with tempfile.TemporaryDirectory() as d:
        text = open(path).read()
        # verify needs an existing executable; any will do
        text = re.sub(r"^ExecStart=\S+", f"ExecStart={os.environ.get('JF_BIN', '/bin/true')}",
                      text, flags=re.M)
        unit = os.path.join(d, "jetfleet-worker@default.service")
        with open(unit, "w") as f:
            f.write(text)
        # --man=no: the unit's man: pages exist only once installed; the
        # deploy-install test (check_install.py) verifies them there
        r = subprocess.run([analyze, "verify", "--man=no", unit], capture_output=True,
                           text=True, timeout=60)
        out = (r.stdout + r.stderr).strip()
        if r.returncode != 0 or out:
            fail(path, f"systemd-analyze verify: exit {r.returncode}: {out}")
        else:
            print("systemd-analyze verify: ok")


# ---- main ------------------------------------------------------------------------------

def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    kdir = os.path.join(root, "deploy/k8s")
    docs = []
    try:
        import yaml   # optional cross-check, see the header
    except ImportError:
        yaml = None
    for f in sorted(os.listdir(kdir)):
        path = os.path.join(kdir, f)
        if not f.endswith((".yaml", ".yml")):
            continue
        text = open(path).read()
        if not text.startswith("#"):
            fail(path, "does not open with a comment saying what it is")
        try:
            parsed = parse_yaml(text, path)
        except YamlError as e:
            fail(path, str(e))
            continue
        if yaml is not None:
            ref = [d for d in yaml.safe_load_all(text) if d is not None]
            if ref != parsed:
                fail(path, f"the subset parser and PyYAML disagree:\n  {parsed}\n  {ref}")
        docs += [(f"{path}#{i}", d) for i, d in enumerate(parsed)]
    print(f"{len(docs)} manifests parsed" + (" (cross-checked with PyYAML)" if yaml else ""))
    check_docs(docs)
    check_unit(root)
    for e in errors:
        print("FAIL", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
