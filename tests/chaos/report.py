#!/usr/bin/env python3
# report.py - the verdict of a chaos run (scripts/chaos, docs/chaos.md).
#
# Reads a run directory and accounts for every accepted job:
#   pub<k>.json / pub<k>.err   publisher results; "unacked <id>" lines on stderr
#                              are ids the stream never acknowledged
#   w<i>-<gen>.log             worker logs (JSON lines, debug level)
#   effects.log                "<job id> <attempt> <pid>" per diag.effect run
#   events.tsv                 what the chaos script did: worker starts, SIGKILLs,
#                              server restarts, timestamps
#   --monitor URL              nats-server monitoring, for the JOBS and DLQ counts
#                              and the pool's consumer (falls back to jsz.json)
#   --nats URL                 the server itself, to list any message left in JOBS
#                              (nats-server 2.9 can keep a message its work-queue
#                              consumer acknowledged across a restart): each must
#                              belong to a job that finished
#
# It prints a table and one JSON summary line (also written to summary.json),
# and exits 1 when a job was lost, when a job succeeded without its effect, or
# when an effect applied twice is not explained. Explained means one of the
# ways into the at-least-once window between the effect and the ledger write
# (DESIGN.md 5.1): the worker was SIGKILLed there, its ledger write failed
# there, or it lost the server there and the job was redelivered to another
# worker before its write went through.
# Exit 2 on unusable input. Standard library only.
import argparse
import base64
import collections
import glob
import json
import os
import re
import socket
import sys
import urllib.request

SUCCEEDED = "job succeeded"
DUPLICATE = "job duplicate"
STARTED = "job started"
DEAD_MSGS = {"job failed": "failed", "job rejected": "rejected", "job quarantined": "quarantined"}
LEDGER_FAILED = "job succeeded but the ledger write failed; it will run again"
DISCONNECTED = "disconnected from NATS"
# Lines after which a run is over, with or without an effect.
RUN_ENDS = {SUCCEEDED, "job will be retried", "job failed", "job returned at shutdown",
            LEDGER_FAILED}
WORKER_LOG = re.compile(r"^(w\d+-\d+)\.log$")


def fail(msg):
    print("report: " + msg, file=sys.stderr)
    sys.exit(2)


def read_events(path):
    ev = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 2:
                    ev.append((int(parts[0]), parts[1], parts[2:]))
    except OSError:
        pass
    return ev


def read_publishers(d):
    pubs, unacked, problems = [], set(), []
    for path in sorted(glob.glob(os.path.join(d, "pub*.json"))):
        try:
            with open(path) as f:
                lines = [l for l in f.read().splitlines() if l.strip()]
            pubs.append(json.loads(lines[-1]))
        except (OSError, ValueError, IndexError):
            problems.append("%s: no result line" % os.path.basename(path))
    for path in sorted(glob.glob(os.path.join(d, "pub*.err"))):
        with open(path) as f:
            for line in f:
                if line.startswith("unacked "):
                    unacked.add(line.split()[1])
    return pubs, unacked, problems


def read_worker_logs(d):
    """Per worker generation: its lines as dicts; plus counts of every message."""
    logs, counts, bad = {}, collections.Counter(), 0
    for path in sorted(glob.glob(os.path.join(d, "w*.log"))):
        m = WORKER_LOG.match(os.path.basename(path))
        if not m:
            continue
        recs = []
        with open(path, errors="replace") as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    bad += line.strip() != ""
                    continue
                recs.append(r)
                counts[r.get("msg", "")] += 1
        logs[m.group(1)] = recs
    return logs, counts, bad


def read_effects(path):
    eff = collections.defaultdict(list)   # id -> [(attempt, pid)]
    n = 0
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) == 3:
                    eff[p[0]].append((int(p[1]), int(p[2])))
                    n += 1
    except OSError:
        pass
    return eff, n


def stream_counts(monitor, d):
    """{stream: state} and the state of the pool's consumer on JOBS."""
    data = None
    if monitor:
        try:
            with urllib.request.urlopen(monitor.rstrip("/") + "/jsz?streams=true&consumers=true",
                                        timeout=5) as r:
                data = json.load(r)
        except (OSError, ValueError):
            data = None
    if data is None:
        try:
            with open(os.path.join(d, "jsz.json")) as f:
                data = json.load(f)
        except (OSError, ValueError):
            return {}, None
    details = [s for a in data.get("account_details", []) for s in a.get("stream_detail", [])]
    consumer = None
    for s in details:
        if s["name"] == "JOBS":
            for c in s.get("consumer_detail") or []:
                if c.get("name") == "default":
                    consumer = c
    return {s["name"]: s["state"] for s in details}, consumer


def stream_leftovers(url, stream="JOBS", limit=1000):
    """[(seq, Nats-Msg-Id)] of the messages still in a stream, asked of the
    server with $JS.API.STREAM.MSG.GET (next_by_subj) over the plain NATS text
    protocol; None when the server cannot be asked."""
    m = re.match(r"^nats://(?:[^@/]*@)?([^:/]+):(\d+)", url or "")
    if not m:
        return None
    out = []
    try:
        with socket.create_connection((m.group(1), int(m.group(2))), timeout=5) as s:
            f = s.makefile("rb")
            f.readline()   # INFO
            s.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\n'
                      b"SUB _INBOX.jfchaos 1\r\n")
            seq = 1
            while len(out) < limit:
                body = json.dumps({"seq": seq, "next_by_subj": ">"}).encode()
                s.sendall(b"PUB $JS.API.STREAM.MSG.GET.%s _INBOX.jfchaos %d\r\n%s\r\n"
                          % (stream.encode(), len(body), body))
                while True:
                    line = f.readline()
                    if not line or line.startswith(b"-ERR"):
                        return None
                    if line.startswith(b"PING"):
                        s.sendall(b"PONG\r\n")
                    elif line.startswith(b"MSG "):
                        break
                r = json.loads(f.read(int(line.split()[-1]) + 2)[:-2])
                msg = r.get("message")
                if msg is None:
                    break   # 404: no message at or after seq
                hdrs = base64.b64decode(msg.get("hdrs") or "").decode(errors="replace")
                mid = next((h.split(":", 1)[1].strip() for h in hdrs.split("\r\n")
                            if h.lower().startswith("nats-msg-id:")), "")
                out.append((msg["seq"], mid))
                seq = msg["seq"] + 1
    except (OSError, ValueError):
        return None
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", required=True, help="the run directory of scripts/chaos")
    ap.add_argument("--jobs", type=int, help="jobs the run meant to publish (a cross-check)")
    ap.add_argument("--monitor", help="nats-server monitoring URL, e.g. http://127.0.0.1:8222")
    ap.add_argument("--nats", help="nats-server URL, to list messages left in JOBS")
    a = ap.parse_args()
    d = a.dir
    if not os.path.isdir(d):
        fail("no directory %s" % d)

    events = read_events(os.path.join(d, "events.tsv"))
    pubs, unacked, problems = read_publishers(d)
    logs, counts, bad_lines = read_worker_logs(d)
    effects, effect_lines = read_effects(os.path.join(d, "effects.log"))
    streams, consumer = stream_counts(a.monitor, d)
    if not pubs:
        fail("no publisher results (pub*.json) in %s" % d)

    # ---- accepted ids: deterministic <prefix>-<i> minus what was never acked ----
    published = set()
    for p in pubs:
        for i in range(int(p["start"]), int(p["start"]) + int(p["published"])):
            published.add("%s-%d" % (p["prefix"], i))
    accepted = published - unacked
    if a.jobs is not None and len(published) != a.jobs:
        problems.append("publishers report %d jobs, the run asked for %d" % (len(published), a.jobs))

    # ---- outcomes from the worker logs ----
    succeeded, dead = set(), collections.defaultdict(set)
    started_by = collections.defaultdict(dict)         # (id, attempt) -> {worker: ts}
    ended_by = collections.defaultdict(dict)           # (id, attempt) -> {worker: ts}
    ledger_failed = collections.defaultdict(set)       # (id, attempt) -> workers
    disconnects = collections.defaultdict(list)        # worker -> [ts]
    for wid, recs in logs.items():
        for r in recs:
            msg, jid = r.get("msg"), r.get("job_id")
            if msg == DISCONNECTED:
                disconnects[wid].append(r.get("ts", ""))
            if not jid:
                continue
            key = (jid, r.get("attempt"))
            if msg == SUCCEEDED:
                succeeded.add(jid)
            elif msg == DUPLICATE:
                # The ledger said the job is finished: succeeded or dead.
                if r.get("ledger_state", "succeeded") == "dead":
                    dead["duplicate of dead"].add(jid)
                else:
                    succeeded.add(jid)
            elif msg in DEAD_MSGS:
                dead[r.get("outcome") or DEAD_MSGS[msg]].add(jid)
            # Timestamps share one format and clock (UTC, ms): strings compare.
            if msg == STARTED:
                started_by[key].setdefault(wid, r.get("ts", ""))
            if msg in RUN_ENDS:
                ended_by[key].setdefault(wid, r.get("ts", ""))
            if msg == LEDGER_FAILED:
                ledger_failed[key].add(wid)
    dead_all = set().union(*dead.values()) if dead else set()
    finished = succeeded | dead_all
    lost = sorted(accepted - finished)
    both = sorted(succeeded & dead_all)
    strangers = sorted(finished - accepted)
    no_effect = sorted(succeeded - set(effects))

    # ---- who ran what: pid -> worker generation, and which were SIGKILLed ----
    pid_worker, killed = {}, set()
    kills = restarts = exits = 0
    t = {}
    for ms, kind, args in events:
        if kind == "worker_start":
            if int(args[1]) in pid_worker:
                problems.append("pid %s was reused by %s; attribution may be wrong" % (args[1], args[0]))
            pid_worker[int(args[1])] = args[0]
        elif kind == "worker_kill":
            killed.add(args[0])
            kills += 1
        elif kind == "server_restart":
            restarts += 1
        elif kind == "worker_exit":
            exits += 1
        t.setdefault(kind, ms)
        if kind in ("drained", "timeout"):
            t["end"] = ms

    # ---- effects applied more than once ----
    doubles, unexplained, categories = [], [], collections.Counter()
    for jid, runs in sorted(effects.items()):
        if len(runs) < 2:
            continue
        why, open_runs = [], []
        starts = [started_by.get((jid, at), {}).get(pid_worker.get(p)) for at, p in runs]
        for attempt, pid in runs:
            wid = pid_worker.get(pid)
            key = (jid, attempt)
            t_start = started_by.get(key, {}).get(wid)
            t_end = ended_by.get(key, {}).get(wid)
            if wid in ledger_failed.get(key, ()):
                why.append("ledger write failed after the effect")
            elif wid in killed and t_start is not None and t_end is None:
                why.append("killed mid-job")
            elif (t_start is not None and t_end is not None
                  and any(t_start <= t <= t_end for t in disconnects.get(wid, ()))
                  and any(s is not None and t_start < s < t_end for s in starts)):
                # The worker lost the server between the effect and the ledger
                # write; the restarted server redelivered the job meanwhile.
                why.append("cut off from NATS before the ledger write; redelivered meanwhile")
            else:
                open_runs.append((attempt, pid, wid))
        # One run may be the one whose ledger write went through; every other
        # run must have an explanation.
        explained = len(open_runs) <= 1
        cat = "+".join(sorted(set(why))) if explained else "unexplained"
        categories[cat] += 1
        entry = {"job_id": jid, "runs": [{"attempt": at, "pid": p, "worker": pid_worker.get(p)}
                                         for at, p in runs], "class": cat}
        doubles.append(entry)
        if not explained:
            unexplained.append(entry)

    # ---- streams ----
    jobs_left = streams.get("JOBS", {}).get("messages")
    dlq = streams.get("DLQ", {}).get("messages")
    unacked = None if consumer is None else consumer["num_pending"] + consumer["num_ack_pending"]
    leftovers, residue_ok = [], jobs_left in (0, None)
    if jobs_left:
        leftovers = stream_leftovers(a.nats) if a.nats else None
        if leftovers is None:
            problems.append("%d messages left in JOBS and no --nats to list them" % jobs_left)
        else:
            # A message the consumer no longer counts, of a job that finished,
            # is server residue; anything else is work that never ran.
            residue_ok = unacked == 0 and all(mid in finished for _, mid in leftovers)
    secs = None
    if "pubs_start" in t and "end" in t:
        secs = (t["end"] - t["pubs_start"]) / 1000.0

    # ---- table ----
    pub_tot = collections.Counter()
    for p in pubs:
        for k in ("published", "acked", "duplicates_reported", "retries", "copies", "ack_errors"):
            pub_tot[k] += int(p.get(k, 0))
    rows = [
        ("jobs published (distinct ids)", len(published)),
        ("  copies sent (incl. deliberate duplicates)", pub_tot["copies"]),
        ("  duplicates reported by the stream", pub_tot["duplicates_reported"]),
        ("  publish retries", pub_tot["retries"]),
        ("jobs accepted (acked by the stream)", len(accepted)),
        ("succeeded", len(succeeded)),
        ("dead-lettered", len(dead_all)),
    ]
    for reason in sorted(dead):
        rows.append(("  " + reason, len(dead[reason])))
    rows += [
        ("LOST (accepted - succeeded - dead-lettered)", len(lost)),
        ("succeeded without an effect line", len(no_effect)),
        ("both succeeded and dead-lettered", len(both)),
        ("finished but never accepted", len(strangers)),
        ("effect lines", effect_lines),
        ("effects applied twice or more (ids)", len(doubles)),
    ]
    for cat in sorted(categories):
        rows.append(("  " + cat, categories[cat]))
    rows += [
        ("DLQ stream messages", "?" if dlq is None else dlq),
        ("JOBS stream messages left", "?" if jobs_left is None else jobs_left),
        ("  of jobs that finished (server residue)",
         sum(1 for _, mid in leftovers or () if mid in finished)),
        ("pool consumer: pending + unacknowledged", "?" if unacked is None else unacked),
        ("worker SIGKILLs", kills),
        ("worker generations started", len(pid_worker)),
        ("workers that exited by themselves", exits),
        ("nats-server restarts", restarts),
        ("seconds, first publish to drained", "?" if secs is None else "%.1f" % secs),
        ("throughput, jobs/s", "?" if not secs else "%.1f" % (len(accepted) / secs)),
    ]
    width = max(len(r[0]) for r in rows)
    print("%-*s  %s" % (width, "chaos run " + d, "value"))
    print("-" * (width + 10))
    for name, val in rows:
        print("%-*s  %s" % (width, name, val))
    print("-" * (width + 10))
    print("log lines: " + ", ".join("%s=%d" % (k, v) for k, v in sorted(counts.items())
                                     if k.startswith("job ")))
    if bad_lines:
        print("non-JSON log lines: %d" % bad_lines)
    for p in problems:
        print("warning: " + p)
    for jid in lost[:20]:
        print("lost: " + jid)
    for jid in no_effect[:20]:
        print("succeeded without effect: " + jid)
    for e in doubles[:10]:
        print("double effect: %s %s %s" % (e["job_id"], e["class"], json.dumps(e["runs"])))
    for e in unexplained[:20]:
        print("UNEXPLAINED double effect: %s %s" % (e["job_id"], json.dumps(e["runs"])))
    for seq, mid in (leftovers or [])[:20]:
        print("left in JOBS: seq %d id %s (%s)" % (
            seq, mid, "succeeded" if mid in succeeded else "dead-lettered" if mid in dead_all
            else "NOT FINISHED"))
    if dlq is not None and dlq != len(dead_all):
        print("note: the DLQ holds %d messages for %d dead-lettered ids" % (dlq, len(dead_all)))

    ok = not lost and not unexplained and not no_effect and residue_ok and unacked in (0, None)
    summary = {
        "verdict": "pass" if ok else "fail",
        "published": len(published), "accepted": len(accepted),
        "succeeded": len(succeeded), "dead_lettered": len(dead_all), "lost": len(lost),
        "succeeded_without_effect": len(no_effect),
        "double_effects": len(doubles), "double_effects_by_class": dict(categories),
        "unexplained": len(unexplained), "dlq_messages": dlq, "jobs_left": jobs_left,
        "jobs_left_of_finished_jobs": sum(1 for _, mid in leftovers or () if mid in finished),
        "consumer_unacked": unacked,
        "kills": kills, "server_restarts": restarts, "worker_exits": exits,
        "publish_retries": pub_tot["retries"],
        "duplicates_reported": pub_tot["duplicates_reported"],
        "seconds": secs, "jobs_per_s": round(len(accepted) / secs, 1) if secs else None,
    }
    line = json.dumps(summary, sort_keys=True)
    with open(os.path.join(d, "summary.json"), "w") as f:
        f.write(line + "\n")
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
