#!/usr/bin/env python3
"""test_multiregion.py - jetfleet on a real two-region supercluster (scripts/cluster).

Region us-east has three servers and R3 streams, eu-west one server. Every
process authenticates with the users of deploy/nats/accounts.conf: provision
as operator, workers as worker (the permission set a worker gets in
production), tenants as acme. Proves, in order:

  1. jobs enqueued in each region are run by that region's workers only;
  2. a tenant may publish its own jobs in any region, not another tenant's;
  3. the global AUDIT stream holds the events of both regions;
  4. failover: with eu-west's workers stopped, a worker in us-east pointed at
     eu-west (JF_REGION=eu-west over the gateway) drains eu-west's queue;
  5. killing one of us-east's three servers while jobs are published and run
     loses no job: every job runs, or, where nats-server 2.9.10 leaves a
     message below its consumer's ack floor (a known defect of the server,
     docs/operations.md), the runbook's rescue makes it run, once;
  6. no worker wrote a ThreadSanitizer report (the -Dtsan=true build).

Run by meson (suite integration) with JF_BIN, JF_CHAOS_PUB and JF_ROOT set.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("JF_BIN")
PUB = os.environ.get("JF_CHAOS_PUB")
ROOT = os.environ.get("JF_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
CLUSTER = os.path.join(ROOT, "scripts", "cluster")
sys.path.insert(0, os.path.join(ROOT, "tests", "cli"))
import natsraw  # noqa: E402

procs = []


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    raise SystemExit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print(f"ok: {msg}")


def with_creds(urls, user, password):
    return ",".join(u.replace("nats://", f"nats://{user}:{password}@") for u in urls.split(","))


class Env:
    def __init__(self, d):
        self.dir = d
        self.vars = {}
        with open(os.path.join(d, "cluster", "cluster.env")) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                self.vars[k] = v
        with open(os.path.join(d, "cluster", "cluster.json")) as f:
            self.cluster = json.load(f)

    def urls(self, region):
        return self.vars["JF_CLUSTER_URL_" + region.replace("-", "_")]


def jf(env, args, extra, check_rc=True, timeout=60):
    e = dict(os.environ)
    e.update({"JF_LOG_FORMAT": "json"})
    e.update(extra)
    p = subprocess.run([BIN] + args, env=e, capture_output=True, text=True, timeout=timeout)
    if check_rc and p.returncode != 0:
        fail(f"jetfleet {' '.join(args)} exited {p.returncode}: {p.stderr.strip()[-2000:]}")
    return p


def worker(env, name, region, urls, effects):
    os.makedirs(effects, exist_ok=True)
    e = dict(os.environ)
    e.update({
        "JF_NATS_URL": with_creds(urls, "worker", "worker-dev"), "JF_REGION": region,
        "JF_DIAG_EFFECTS_DIR": effects, "JF_WORKER_ID": name, "JF_LOG_LEVEL": "debug",
        "JF_CONCURRENCY": "16", "JF_SHUTDOWN_GRACE": "5s",
    })
    log = open(os.path.join(env.dir, f"{name}.log"), "w")
    p = subprocess.Popen([BIN, "worker"], env=e, stdout=log, stderr=log)
    procs.append(p)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with open(os.path.join(env.dir, f"{name}.log")) as f:
            text = f.read()
        if '"worker started"' in text:
            return p
        if p.poll() is not None:
            fail(f"worker {name} exited {p.returncode}: {text[-2000:]}")
        time.sleep(0.1)
    fail(f"worker {name} did not start")


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def effects(*dirs):
    """job id -> set of worker dirs that ran it"""
    ran = {}
    for d in dirs:
        path = os.path.join(d, "effects.log")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                parts = line.split()
                if parts:
                    ran.setdefault(parts[0], set()).add(d)
    return ran


def wait_effects(ids, dirs, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ran = effects(*dirs)
        missing = [i for i in ids if i not in ran]
        if not missing:
            return ran
        time.sleep(0.2)
    fail(f"{len(missing)} of {len(ids)} jobs never ran, e.g. {missing[:5]}")


def rescue_stuck(url, stream, consumer, missing):
    """docs/operations.md, "Jobs left below the ack floor": when the consumer
    owes nothing (num_pending and num_ack_pending 0) but the work-queue stream
    still holds messages, those are nats-server's orphans. Each one of the
    jobs in missing is published again with a new Nats-Msg-Id (<id>~s<seq>)
    and Jf-Job-Id, then deleted. Returns {job id: seq} of what was rescued,
    or None when the signature does not match."""
    with natsraw.Client(url, name="multiregion-rescue", timeout=10) as nc:
        ci = nc.js_api(f"CONSUMER.INFO.{stream}.{consumer}")
        si = nc.js_api(f"STREAM.INFO.{stream}")
        if ci.get("num_pending") or ci.get("num_ack_pending") or not si["state"]["messages"]:
            return None
        floor = ci["ack_floor"]["stream_seq"]
        stuck, seq = [], si["state"]["first_seq"]
        while True:
            try:
                m = nc.js_api(f"STREAM.MSG.GET.{stream}", {"seq": seq, "next_by_subj": ">"})
            except natsraw.JetStreamError:
                break   # no message at or after seq
            m = m["message"]
            seq = m["seq"] + 1
            _, _, hdrs = natsraw.parse_headers(natsraw.b64decode(m.get("hdrs")))
            h = dict(hdrs)
            job_id = h.get("Jf-Job-Id") or h.get("Nats-Msg-Id")
            if m["seq"] > floor or job_id not in missing:
                return None   # not the orphans of the defect: leave it to the report
            stuck.append((m, h, job_id))
        rescued = {}
        for m, h, job_id in stuck:
            h["Jf-Job-Id"] = job_id
            h["Nats-Msg-Id"] = f"{job_id}~s{m['seq']}"
            ack = nc.request(m["subject"], natsraw.b64decode(m.get("data")),
                             headers=list(h.items())).json()
            if "error" in ack:
                fail(f"rescue of {job_id}: publish refused: {ack}")
            nc.js_api(f"STREAM.MSG.DELETE.{stream}", {"seq": m["seq"]})
            rescued[job_id] = m["seq"]
        return rescued


def publish(env, region, prefix, count, start=0, rate=None, timeout=120):
    # one server (the publisher takes one URL): the region's last, which the
    # server-kill step below leaves alive
    url = with_creds(env.urls(region).split(",")[-1], "operator", "operator-dev")
    args = [PUB, "--url", url, "--count", str(count), "--start", str(start), "--prefix", prefix,
            "--dup-every", "0", "--subject-prefix", f"jobs.{region}", "--timeout", str(timeout)]
    if rate:
        args += ["--rate", str(rate)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def publish_all(env, region, prefix, count, **kw):
    p = publish(env, region, prefix, count, **kw)
    out, err = p.communicate(timeout=180)
    if p.returncode != 0:
        fail(f"publisher for {region} exited {p.returncode}: {out} {err[-1000:]}")
    return [f"{prefix}-{i}" for i in range(kw.get("start", 0), kw.get("start", 0) + count)]


def main():
    if not BIN or not PUB:
        fail("JF_BIN and JF_CHAOS_PUB must be set (run through meson test)")
    d = tempfile.mkdtemp(prefix="jf-mr-")
    cdir = os.path.join(d, "cluster")
    ok = False
    try:
        up = subprocess.run([CLUSTER, "up", "--regions", "us-east,eu-west", "--servers", "3,1",
                             "--dir", cdir, "--timeout", "60"], capture_output=True, text=True)
        if up.returncode != 0:
            fail(f"scripts/cluster up: {up.stderr}")
        print(up.stdout)
        env = Env(d)
        east, west = env.urls("us-east"), env.urls("eu-west")
        op = {"JF_NATS_USER": "operator", "JF_NATS_PASSWORD": "operator-dev"}

        jf(env, ["provision", "--region", "us-east"],
           dict(op, JF_NATS_URL=east, JF_STREAM_REPLICAS="3", JF_ACK_WAIT="10s"))
        p = jf(env, ["provision", "--region", "eu-west"],
               dict(op, JF_NATS_URL=west, JF_STREAM_REPLICAS="1", JF_ACK_WAIT="10s"))
        check("stream   AUDIT        updated" in p.stdout,
              "the second region's provision adds its AUDIT to the global AUDIT's sources")

        # 1. each region runs its own jobs
        east_urls = east.split(",")
        e1, e2, w1 = (os.path.join(d, n) for n in ("eff-east-1", "eff-east-2", "eff-west-1"))
        we1 = worker(env, "east-1", "us-east", east, e1)
        we2 = worker(env, "east-2", "us-east", ",".join(east_urls[1:] + east_urls[:1]), e2)
        ww1 = worker(env, "west-1", "eu-west", west, w1)
        east_ids = publish_all(env, "us-east", "use", 60)
        west_ids = publish_all(env, "eu-west", "euw", 60)
        ran = wait_effects(east_ids + west_ids, [e1, e2, w1], 60)
        check(all(ran[i] <= {e1, e2} for i in east_ids), "us-east jobs ran on us-east workers only")
        check(all(ran[i] == {w1} for i in west_ids), "eu-west jobs ran on the eu-west worker only")

        # 2. tenant permissions
        acme = {"JF_NATS_USER": "acme", "JF_NATS_PASSWORD": "acme-dev", "JF_NATS_URL": west,
                "JF_REGION": "eu-west"}
        jf(env, ["enqueue", "diag.effect", "--tenant", "acme", "--id", "acme-own", "--json", "{}"],
           acme)
        p = jf(env, ["enqueue", "diag.effect", "--tenant", "globex", "--id", "acme-as-globex",
                     "--json", "{}"], acme, check_rc=False)
        check(p.returncode != 0 and "ermission" in p.stderr,
              f"acme cannot publish globex's jobs (exit {p.returncode}: {p.stderr.strip()[:160]})")
        wait_effects(["acme-own"], [w1], 30)

        # 3. the global AUDIT has both regions' events
        # sourcing is asynchronous, and across the gateway for eu-west
        deadline = time.monotonic() + 45
        while True:
            p = jf(env, ["audit", "tail", "--no-follow", "--json"],
                   dict(op, JF_NATS_URL=east, JF_REGION="local"))
            regions = {}
            for line in p.stdout.splitlines():
                ev = json.loads(line)
                kind = str(ev.get("event", "")).lower().replace("event_kind_", "")
                key = (ev.get("region"), kind)
                regions[key] = regions.get(key, 0) + 1
            done = (regions.get(("us-east", "succeeded"), 0) >= 60 and
                    regions.get(("eu-west", "succeeded"), 0) >= 61)
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        check(done, f"global AUDIT holds both regions' events: {sorted(regions.items())}")

        # 4. failover: eu-west's queue drained by a us-east worker
        stop(ww1)
        fo_ids = publish_all(env, "eu-west", "fo", 30)
        lag = json.loads(jf(env, ["lag", "--json"], dict(op, JF_NATS_URL=west,
                                                         JF_REGION="eu-west")).stdout)
        check(lag.get("lag") == 30, f"with eu-west's workers stopped its lag is 30 ({lag})")
        fo = os.path.join(d, "eff-failover")
        wfo = worker(env, "failover", "eu-west", east, fo)
        wait_effects(fo_ids, [fo], 60)
        check(True, "a us-east worker with JF_REGION=eu-west drained eu-west's queue over the "
                    "gateway")
        stop(wfo)

        # 5. one of us-east's three servers killed while jobs flow
        pub = publish(env, "us-east", "kill", 600, rate=200, timeout=120)
        time.sleep(1.0)
        victim = next(s for s in env.cluster["servers"] if s["name"] == "us-east-1")
        os.kill(victim["pid"], signal.SIGKILL)
        print(f"killed {victim['name']} (pid {victim['pid']})")
        out, err = pub.communicate(timeout=180)
        check(pub.returncode == 0, f"every job was acknowledged by the stream: {out.strip()}")
        kill_ids = [f"kill-{i}" for i in range(600)]
        try:
            ran = wait_effects(kill_ids, [e1, e2], 180)
        except SystemExit:
            # evidence for the report: where are the missing jobs?
            for args in (["lag", "--json"],):
                q = jf(env, args, dict(op, JF_NATS_URL=east, JF_REGION="us-east"), check_rc=False)
                print(f"jetfleet {' '.join(args)}: {q.stdout.strip()} {q.stderr.strip()[-300:]}",
                      file=sys.stderr)
            for s in env.cluster["servers"]:
                if s["region"] != "us-east" or s["name"] == "us-east-1":
                    continue
                try:
                    import urllib.request
                    with urllib.request.urlopen(
                            f"http://127.0.0.1:{s['ports']['http']}/jsz?accounts=true&streams=true"
                            "&consumers=true", timeout=2) as r:
                        j = json.loads(r.read().decode())
                    for a in j.get("account_details", []):
                        for st in a.get("stream_detail", []):
                            if st["name"] == "JOBS_us-east":
                                print(f"{s['name']}: stream {json.dumps(st.get('state'))} "
                                      f"consumers {json.dumps(st.get('consumer_detail'))[:1500]}",
                                      file=sys.stderr)
                except Exception as ex:
                    print(f"{s['name']}: {ex}", file=sys.stderr)
            live = next(x for x in env.cluster["servers"]
                        if x["region"] == "us-east" and x["name"] != "us-east-1")
            missing = {i for i in kill_ids if i not in effects(e1, e2)}
            rescued = rescue_stuck(f"nats://operator:operator-dev@127.0.0.1:"
                                   f"{live['ports']['client']}", "JOBS_us-east", "default",
                                   missing)
            if not rescued or set(rescued) != missing:
                raise
            print(f"nats-server left {len(rescued)} message(s) below the consumer's ack floor "
                  f"when us-east-1 died (seqs {sorted(rescued.values())}), never delivered; "
                  f"rescued as docs/operations.md says")
            ran = wait_effects(kill_ids, [e1, e2], 60)
            runs = {}
            for ed in (e1, e2):
                if not os.path.exists(os.path.join(ed, "effects.log")):
                    continue
                with open(os.path.join(ed, "effects.log")) as f:
                    for line in f:
                        if line.split() and line.split()[0] in rescued:
                            runs[line.split()[0]] = runs.get(line.split()[0], 0) + 1
            check(all(runs.get(i) == 1 for i in rescued),
                  f"the rescued jobs ran, once each (a nats-server defect, not a loss): {runs}")
        check(len([i for i in kill_ids if i in ran]) == 600,
              "no job lost when one of three servers dies (R3 streams)")
        stop(we1)
        stop(we2)

        # 6. In the -Dtsan=true build a worker exits 66 on a report (TSAN_OPTIONS,
        # scripts/test), and the steps above would not notice: its peer or the
        # failover worker runs its jobs. The report is in its log.
        reports = []
        for n in sorted(os.listdir(d)):
            if n.endswith(".log"):
                with open(os.path.join(d, n), errors="replace") as f:
                    if "ThreadSanitizer" in f.read():
                        reports.append(n)
        check(not reports, f"no worker log holds a ThreadSanitizer report {reports}")
        ok = True
    finally:
        for p in procs:
            stop(p, signal.SIGKILL)
        if not ok and os.path.isdir(cdir):
            shutil.copytree(cdir, os.path.join(d, "cluster-logs"),
                            ignore=shutil.ignore_patterns("jetstream", "us-*", "eu-*"),
                            dirs_exist_ok=True)
            for f in os.listdir(cdir):
                if f.endswith(".log"):
                    shutil.copy(os.path.join(cdir, f), os.path.join(d, "cluster-logs", f))
        subprocess.run([CLUSTER, "down", "--dir", cdir], capture_output=True)
        if ok and not os.environ.get("JF_TEST_KEEP"):
            shutil.rmtree(d, ignore_errors=True)
        else:
            print(f"logs kept in {d}", file=sys.stderr)


if __name__ == "__main__":
    main()
