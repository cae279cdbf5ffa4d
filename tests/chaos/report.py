#!/usr/bin/env python3
# report.py - the verdict of a chaos run (scripts/chaos, docs/chaos.md).
#
# Reads a run directory and accounts for every accepted job:
#   pub<k>.json / pub<k>.err   publisher results; "unacked <id>" lines on stderr
#                              are ids the stream never acknowledged
#   w<i>-<gen>.log             worker logs (JSON lines, debug level)
#   effects.log                "<job id> <attempt> <pid> <unix ms>" per diag.effect
#                              run (lines without the time, from before it was
#                              added, are read too)
#   events.tsv                 what the chaos script did, with times in Unix ms:
#                              worker starts, SIGKILLs, freezes and thaws, server
#                              restarts and freezes
#   --monitor URL              nats-server monitoring, for the JOBS and DLQ counts
#                              and the pool's consumer (falls back to jsz.json)
#   --nats URL                 the server itself, to list any message left in JOBS
#                              (nats-server 2.9 can keep a message its work-queue
#                              consumer acknowledged across a restart): each must
#                              belong to a job that finished
#
# It prints a table and one JSON summary line (also written to summary.json),
# and exits 1 when a job was lost, when a job succeeded without its effect, or
# when an effect applied more than once has no documented cause.
#
# Every run of a job after its first (by start time) is an extra run, and it
# needs a documented cause (docs/reliability.md, "At the edges, delivery is at
# least once" and "Known limits"): an earlier run of the job that was cut short
# between its effect and its ledger write, because its worker was SIGKILLed
# there, its ledger write failed there, its worker lost the server there
# (disconnected, or the server restarted or was frozen) and the job was
# redelivered, or its worker was frozen for longer than AckWait while that run
# was in progress. Undocumented, and a failure: a run that started after
# another run of the job from a newer delivery had started, i.e. from a copy
# the worker held (queued, its ledger record read ahead) for longer than
# AckWait, typically across a freeze; and an extra run that no earlier run
# explains. docs/chaos.md has the rules.
# Exit 2 on unusable input. Standard library only.
import argparse
import base64
import calendar
import collections
import glob
import json
import os
import re
import socket
import sys
import time
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
SLACK_MS = 5   # a process stops or resumes this close to the time taken for it
STALE_COPY = "stale copy"
STALE_READ = "stale ledger read"
OVERLAP = "overlap"


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
    """id -> [(attempt, pid, unix ms or None)], in file order."""
    eff = collections.defaultdict(list)
    n = 0
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) in (3, 4):
                    eff[p[0]].append((int(p[1]), int(p[2]), int(p[3]) if len(p) == 4 else None))
                    n += 1
    except (OSError, ValueError):
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


_SECONDS = {}


def ts_ms(ts):
    """Unix ms of a log line's ts ("2025-01-02T03:04:05.678Z"), or None."""
    if not ts or len(ts) < 23:
        return None
    head = ts[:19]
    sec = _SECONDS.get(head)
    if sec is None:
        try:
            sec = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
        except ValueError:
            return None
        _SECONDS[head] = sec
    try:
        return sec * 1000 + int(ts[20:23])
    except ValueError:
        return None


def clock(ms):
    """HH:MM:SS.mmm (UTC) of a Unix ms, as in the worker logs' ts; '-' for None."""
    if ms is None:
        return "-"
    if ms == float("inf"):
        return "(never)"
    return time.strftime("%H:%M:%S", time.gmtime(ms // 1000)) + ".%03d" % (ms % 1000)


class Run:
    """One run of a job on one worker generation: from `job started` to the
    line that ends it (none when the worker died or the log stops)."""
    __slots__ = ("job", "worker", "attempt", "delivery", "seq", "start", "end", "end_msg",
                 "pid", "effect")

    def __init__(self, job, worker, rec):
        self.job, self.worker = job, worker
        self.attempt = rec.get("attempt")
        self.delivery = rec.get("delivery") or 0
        self.seq = rec.get("stream_seq")
        self.start = ts_ms(rec.get("ts"))
        self.end = self.end_msg = self.pid = self.effect = None

    def describe(self):
        end = "no end in its log" if self.end_msg is None else "%s %s" % (
            "ledger write failed" if self.end_msg == LEDGER_FAILED else
            self.end_msg.replace("job ", ""), clock(self.end))
        return ("%s pid %s attempt %s delivery %s seq %s: started %s, effect %s, %s"
                % (self.worker or "?", self.pid, self.attempt, self.delivery, self.seq,
                   clock(self.start), clock(self.effect), end))

    def as_json(self):
        return {"worker": self.worker, "pid": self.pid, "attempt": self.attempt,
                "delivery": self.delivery, "stream_seq": self.seq, "started_ms": self.start,
                "effect_ms": self.effect, "end": self.end_msg, "end_ms": self.end}


def index_runs(logs):
    """(worker, job id) -> [Run] from the `job started` lines and the lines
    that end them; job id -> [(ms, worker, msg, delivery)] of every line."""
    runs, lines = collections.defaultdict(list), collections.defaultdict(list)
    for wid, recs in logs.items():
        open_runs = {}
        for r in recs:
            msg, jid = r.get("msg"), r.get("job_id")
            if not jid:
                continue
            lines[jid].append((ts_ms(r.get("ts")), wid, msg, r.get("delivery") or 0))
            if msg == STARTED:
                run = Run(jid, wid, r)
                runs[(wid, jid)].append(run)
                open_runs[(jid, run.attempt)] = run
            elif msg in RUN_ENDS:
                run = open_runs.pop((jid, r.get("attempt")), None)
                if run is not None:
                    run.end, run.end_msg = ts_ms(r.get("ts")), msg
    return runs, lines


def match_effects(jid, eff, runs, pid_worker):
    """The Run behind each effect line of a job: that worker's run of the same
    attempt that started last before the effect (a stand-in when the log has
    none)."""
    out, used = [], set()
    for attempt, pid, ms in eff:
        wid = pid_worker.get(pid)
        best = None
        for run in runs.get((wid, jid), ()):
            if run.attempt != attempt or id(run) in used:
                continue
            if ms is not None and run.start is not None and run.start > ms:
                continue
            if best is None or (run.start or 0) > (best.start or 0):
                best = run
        if best is None:
            best = Run(jid, wid, {"attempt": attempt})
        used.add(id(best))
        best.pid, best.effect = pid, ms
        out.append(best)
    return out


class Faults:
    """What the chaos script did, as intervals in Unix ms."""

    def __init__(self, events):
        self.killed = set()
        self.worker_freezes = collections.defaultdict(list)   # worker -> [(start, end, backlog)]
        self.server_freezes = []                               # [(start, end, backlog)]
        self.restarts = []                                     # [(stop, started again)]
        open_w, open_s, restart_at = {}, None, None
        for ms, kind, args in events:
            if kind == "worker_kill":
                self.killed.add(args[0])
            elif kind == "worker_freeze":
                backlog = args[2] if len(args) > 2 else ""
                open_w[args[0]] = (ms, int(backlog) if backlog.isdigit() else None)
            elif kind == "worker_thaw" and args[0] in open_w:
                start, backlog = open_w.pop(args[0])
                self.worker_freezes[args[0]].append((start, ms, backlog))
            elif kind == "server_freeze":
                backlog = args[1] if len(args) > 1 else ""
                open_s = (ms, int(backlog) if backlog.isdigit() else None)
            elif kind == "server_thaw" and open_s is not None:
                self.server_freezes.append((open_s[0], ms, open_s[1]))
                open_s = None
            elif kind == "server_restart":
                restart_at = ms
            elif kind == "server_start" and restart_at is not None:
                self.restarts.append((restart_at, ms))
                restart_at = None
        # A freeze the script never ended (it was interrupted) lasts forever.
        for wid, (start, backlog) in open_w.items():
            self.worker_freezes[wid].append((start, float("inf"), backlog))
        if open_s is not None:
            self.server_freezes.append((open_s[0], float("inf"), open_s[1]))
        if restart_at is not None:
            self.restarts.append((restart_at, float("inf")))

    def restart_between(self, a, b):
        return any(a <= stop <= b or a <= up <= b for stop, up in self.restarts)


def explain(p, r, f, disconnects, ack_wait):
    """Why run r happened although run p of the same job ran first, when p was
    cut short in a documented way; None otherwise."""
    inf = float("inf")
    p_end = p.end if p.end is not None else inf
    p_effect = p.effect if p.effect is not None else p.start
    if p.start is None or r.start is None:
        return None
    if p.worker in f.killed and p.end_msg is None:
        return "killed mid-job"
    if p.end_msg == LEDGER_FAILED:
        return "ledger write failed after the effect"
    if (any(p.start <= t <= p_end for t in disconnects.get(p.worker, ()))
            and (p.start < r.start < p_end or r.delivery > p.delivery)):
        # The worker lost the server after the effect, and its ledger write
        # waited in the client's reconnect buffer; the job was redelivered.
        return "cut off from NATS before the ledger write; redelivered meanwhile"
    # A freeze's start is taken just before SIGSTOP, so a line logged in the
    # millisecond or two before the process stopped may carry a later time.
    for fs, fe, _ in f.worker_freezes.get(p.worker, ()):
        if fe - fs > ack_wait and p.start <= fs + SLACK_MS <= p_end + SLACK_MS and r.start >= fs:
            if p_effect is not None and p_effect <= fs + SLACK_MS:
                return ("worker frozen between the effect and the ledger write; "
                        "redelivered meanwhile")
            # The handler was running when the worker stopped: no progress
            # acks, so the server gave the job to another worker, as for a
            # run past its deadline (overlapping runs, reliability.md).
            return "worker frozen mid-run, before the effect; redelivered meanwhile (overlap)"
    if p_effect is not None and r.delivery > p.delivery:
        for ss, se, _ in f.server_freezes:
            if p_effect <= se and p_end >= ss and r.start >= ss:
                return ("server frozen between the effect and the ledger write; "
                        "redelivered meanwhile")
            if p.start <= ss + SLACK_MS and p_effect > se and r.start >= ss:
                return ("server frozen mid-run, before the effect; redelivered meanwhile "
                        "(overlap)")
        for rs, re_ in f.restarts:
            if p_effect <= re_ and p_end >= rs and r.start >= rs:
                return ("server restarted between the effect and the ledger write; "
                        "redelivered meanwhile")
    return None


def held_since(r, f):
    """The freeze (worker's own, or the server's) that the copy r ran from was
    held across: the last one that ended before r started."""
    best = None
    for fs, fe, _ in f.worker_freezes.get(r.worker, ()):
        if fe <= r.start + SLACK_MS and (best is None or fe > best[1]):
            best = ("worker %s frozen" % r.worker, fs, fe)
    for fs, fe, _ in f.server_freezes:
        if fe <= r.start + SLACK_MS and (best is None or fe > best[1]):
            best = ("nats-server frozen", fs, fe)
    for fs, fe in f.restarts:
        if fe <= r.start and (best is None or fe > best[1]):
            best = ("nats-server restarted", fs, fe)
    return best


def classify(jid, runs, f, disconnects, ack_wait):
    """The class of a job whose effect was applied more than once, and for each
    extra run without a documented cause, why not."""
    order = sorted(runs, key=lambda x: (x.start if x.start is not None else
                                        x.effect if x.effect is not None else 0))
    causes, problems = [], []
    for j, r in enumerate(order[1:], 1):
        if r.start is None:
            problems.append((r, "no `job started` line for this effect in %s's log"
                             % (r.worker or "an unknown worker (pid not in events.tsv)")))
            continue
        newer = [q for q in order if q is not r and q.start is not None and q.start < r.start
                 and q.delivery > r.delivery and not f.restart_between(q.start, r.start)]
        if newer:
            q = min(newer, key=lambda x: x.start)
            held = held_since(r, f)
            ctx = ("no freeze or restart before it was seen" if held is None else
                   "%s %s-%s (%.1f s)" % (held[0], clock(held[1]), clock(held[2]),
                                          (held[2] - held[1]) / 1000.0))
            if q.end_msg == SUCCEEDED and q.end is not None and q.end < r.start:
                then = ("; the job had succeeded %d ms before, so the ledger record it ran on "
                        "was read before that" % (r.start - q.end))
            else:
                then = ""
            problems.append((r, STALE_COPY + ": started %s from delivery %s, after %s had already "
                             "started delivery %s at %s (%s %s): the server had given the job "
                             "out again, so the worker held this copy without progress acks "
                             "for longer than AckWait, and ran it anyway%s; last fault before "
                             "the start: %s"
                             % (clock(r.start), r.delivery, q.worker, q.delivery, clock(q.start),
                                "no end" if q.end_msg is None else q.end_msg.replace("job ", ""),
                                clock(q.end), then, ctx)))
            continue
        why = None
        for p in order[:j]:
            # p's window must still be open when r started: another run that
            # recorded its success before r started means r should have
            # found the job finished, whatever happened to p.
            if any(o is not p and o is not r and o.end_msg == SUCCEEDED and o.end is not None
                   and o.end < r.start for o in order):
                continue
            why = explain(p, r, f, disconnects, ack_wait)
            if why:
                break
        if why:
            causes.append(why)
            continue
        done = [q for q in order if q is not r and q.end_msg == SUCCEEDED and q.end is not None
                and q.end < r.start]
        held = held_since(r, f)
        ctx = ("no freeze or restart before it" if held is None else
               "%s %s-%s (%.1f s)" % (held[0], clock(held[1]), clock(held[2]),
                                      (held[2] - held[1]) / 1000.0))
        if done:
            q = min(done, key=lambda x: x.end)
            problems.append((r, "%s: started %s from delivery %s, %d ms after %s's run of "
                             "delivery %s had recorded the job's success (%s); its ledger record "
                             "was read before that, when the delivery came in, and not again; "
                             "last fault before the start: %s"
                             % (STALE_READ, clock(r.start), r.delivery, r.start - q.end,
                                q.worker, q.delivery, clock(q.end), ctx)))
            continue
        running = [p for p in order[:j] if p.start is not None and p.start <= r.start
                   and (p.end is None or p.end >= r.start)]
        if running:
            p = running[0]
            p_held = held_since(p, f)
            since = ("" if p_held is None or p_held[2] == float("inf") else
                     ", %d ms after the last fault ended" % (p.start - p_held[2]))
            problems.append((r, "%s: started %s from delivery %s while %s's run of delivery %s "
                             "was in progress (started %s%s, %s %s), which nothing documented "
                             "cut short: the server gave the job out again although it was "
                             "being worked on; last fault before the start: %s"
                             % (OVERLAP, clock(r.start), r.delivery, p.worker, p.delivery,
                                clock(p.start), since, "no end" if p.end_msg is None else
                                p.end_msg.replace("job ", ""), clock(p.end), ctx)))
            continue
        prior = "; ".join("%s %s at %s" % (
            p.worker, "ended without a line" if p.end_msg is None else
            p.end_msg.replace("job ", ""), clock(p.end)) for p in order[:j])
        problems.append((r, "no earlier run was cut short in a documented way (%s); last fault "
                         "before the start: %s" % (prior, ctx)))
    return order, causes, problems


def freeze_report(f, lines, ack_wait):
    """Per worker freeze: the jobs the frozen worker held (delivered to it and
    not finished) that the server gave to a worker meanwhile, and the frozen
    worker's first line about each after the thaw. `job started` there is a
    job that waited in its queue, its ledger record read before the freeze,
    and ran on that. This is the evidence that a frozen worker held queued
    jobs."""
    out = []
    for wid, fl in sorted(f.worker_freezes.items()):
        for fs, fe, backlog in fl:
            running, after = 0, collections.Counter()
            for jid, ls in lines.items():
                mine = [x for x in ls if x[1] == wid and x[0] is not None]
                if not mine:
                    continue
                # The server gives a held job out again AckWait after its last
                # progress ack, so during the freeze; the frozen worker deals
                # with its copy right after the thaw.
                newer = max([x[3] for x in ls if x[1] != wid and x[0] is not None
                             and fs <= x[0] <= fe + ack_wait] or [0])
                old = [x for x in mine if x[3] < newer]
                if not old:
                    continue   # not given to anyone else meanwhile
                if any(x[2] == STARTED and x[0] <= fs + SLACK_MS for x in old) and not any(
                        x[2] in RUN_ENDS and x[0] <= fs + SLACK_MS for x in old):
                    running += 1
                post = [x for x in old if fe <= x[0] <= fe + ack_wait]
                if post:
                    after[min(post)[2]] += 1
            out.append({"worker": wid, "start_ms": fs,
                        "end_ms": None if fe == float("inf") else fe,
                        "seconds": None if fe == float("inf") else round((fe - fs) / 1000.0, 3),
                        "backlog_at_freeze": backlog,
                        "held_running_at_freeze": running,
                        "held_first_line_after_thaw": dict(after)})
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
    disconnects = collections.defaultdict(list)        # worker -> [ms]
    ack_wait = None
    for wid, recs in logs.items():
        for r in recs:
            msg, jid = r.get("msg"), r.get("job_id")
            if msg == DISCONNECTED:
                disconnects[wid].append(ts_ms(r.get("ts")))
            elif msg == "worker started" and r.get("ack_wait_ms"):
                ack_wait = int(r["ack_wait_ms"])
            if not jid:
                continue
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
    if ack_wait is None:
        ack_wait = 3000
        problems.append("no `worker started` line with ack_wait_ms; assuming AckWait 3000 ms")
    dead_all = set().union(*dead.values()) if dead else set()
    finished = succeeded | dead_all
    lost = sorted(accepted - finished)
    both = sorted(succeeded & dead_all)
    strangers = sorted(finished - accepted)
    no_effect = sorted(succeeded - set(effects))

    # ---- who ran what: pid -> worker generation; the faults injected ----
    pid_worker = {}
    kills = restarts = exits = 0
    t = {}
    for ms, kind, args in events:
        if kind == "worker_start":
            if int(args[1]) in pid_worker:
                problems.append("pid %s was reused by %s; attribution may be wrong" % (args[1], args[0]))
            pid_worker[int(args[1])] = args[0]
        elif kind == "worker_kill":
            kills += 1
        elif kind == "server_restart":
            restarts += 1
        elif kind == "worker_exit":
            exits += 1
        t.setdefault(kind, ms)
        if kind in ("drained", "timeout"):
            t["end"] = ms
    faults = Faults(events)
    if effect_lines and all(ms is None for rs in effects.values() for _, _, ms in rs):
        problems.append("effects.log has no times (an old diag.effect): the freeze rules "
                        "fall back to each run's start")

    # ---- effects applied more than once ----
    runs_index, job_lines = index_runs(logs)
    doubles, undocumented, categories = [], [], collections.Counter()
    for jid, eff in sorted(effects.items()):
        if len(eff) < 2:
            continue
        runs = match_effects(jid, eff, runs_index, pid_worker)
        order, causes, bad = classify(jid, runs, faults, disconnects, ack_wait)
        if bad:
            kinds = {w.split(":", 1)[0] for _, w in bad}
            cat = "UNDOCUMENTED: " + (
                "an older delivery ran after a newer one had started" if STALE_COPY in kinds
                else "started after another run had recorded success" if STALE_READ in kinds
                else "overlapped a run that nothing documented cut short" if OVERLAP in kinds
                else "no documented cause")
        else:
            cat = "+".join(sorted(set(causes)))
        categories[cat] += 1
        entry = {"job_id": jid, "class": cat, "runs": [r.as_json() for r in order],
                 "undocumented": [{"run": r.as_json(), "why": w} for r, w in bad]}
        doubles.append((entry, order))
        if bad:
            undocumented.append((entry, order, bad))
    freezes = freeze_report(faults, job_lines, ack_wait)

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
        for k in ("published", "acked", "duplicates_reported", "retries", "copies", "ack_errors",
                  "bursts"):
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
        ("UNDOCUMENTED double effects (ids)", len(undocumented)),
        ("DLQ stream messages", "?" if dlq is None else dlq),
        ("JOBS stream messages left", "?" if jobs_left is None else jobs_left),
        ("  of jobs that finished (server residue)",
         sum(1 for _, mid in leftovers or () if mid in finished)),
        ("pool consumer: pending + unacknowledged", "?" if unacked is None else unacked),
        ("worker SIGKILLs", kills),
        ("worker generations started", len(pid_worker)),
        ("workers that exited by themselves", exits),
        ("nats-server restarts", restarts),
        ("worker freezes (SIGSTOP > AckWait %d ms)" % ack_wait,
         sum(len(v) for v in faults.worker_freezes.values())),
        ("nats-server freezes", len(faults.server_freezes)),
        ("publisher bursts", pub_tot["bursts"]),
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
    for fz in freezes:
        after = fz["held_first_line_after_thaw"]
        print("worker freeze %s %s-%s (%s s), stream backlog before it %s; jobs it held that "
              "the server gave another worker meanwhile: %d, %d of them running at the freeze; "
              "its first line about them after the thaw: %s"
              % (fz["worker"], clock(fz["start_ms"]), clock(fz["end_ms"]), fz["seconds"],
                 "?" if fz["backlog_at_freeze"] is None else fz["backlog_at_freeze"],
                 sum(after.values()), fz["held_running_at_freeze"],
                 ", ".join("%s %d" % (k, v) for k, v in sorted(after.items())) or "none"))
    for ss, se, backlog in faults.server_freezes:
        print("server freeze %s-%s (%.1f s), stream backlog before it %s"
              % (clock(ss), clock(se), (se - ss) / 1000.0, "?" if backlog is None else backlog))
    for jid in lost[:20]:
        print("lost: " + jid)
    for jid in no_effect[:20]:
        print("succeeded without effect: " + jid)
    if doubles:
        print("times below are UTC, as in the worker logs' ts; each run: worker, pid, attempt, "
              "delivery, stream seq, its `job started`, its effects.log line, its end")
    for e, order in [x for x in doubles if not x[0]["undocumented"]][:10]:
        print("double effect %s, %s: %s" % (e["job_id"], e["class"],
                                            " | ".join(r.describe() for r in order)))
    for entry, order, bad in undocumented[:50]:
        print("UNDOCUMENTED double effect %s (%d runs):" % (entry["job_id"], len(order)))
        flagged = {id(r) for r, _ in bad}
        for r in order:
            print("    %s run %s" % ("->" if id(r) in flagged else "  ", r.describe()))
        for r, why in bad:
            print("    why %s's run is not documented: %s" % (r.worker, why))
    if len(undocumented) > 50:
        print("... %d more undocumented double effects in summary.json" % (len(undocumented) - 50))
    for seq, mid in (leftovers or [])[:20]:
        print("left in JOBS: seq %d id %s (%s)" % (
            seq, mid, "succeeded" if mid in succeeded else "dead-lettered" if mid in dead_all
            else "NOT FINISHED"))
    if dlq is not None and dlq != len(dead_all):
        print("note: the DLQ holds %d messages for %d dead-lettered ids" % (dlq, len(dead_all)))

    ok = not lost and not undocumented and not no_effect and residue_ok and unacked in (0, None)
    summary = {
        "verdict": "pass" if ok else "fail",
        "published": len(published), "accepted": len(accepted),
        "succeeded": len(succeeded), "dead_lettered": len(dead_all), "lost": len(lost),
        "succeeded_without_effect": len(no_effect),
        "double_effects": len(doubles), "double_effects_by_class": dict(categories),
        "undocumented": len(undocumented),
        "unexplained": len(undocumented),   # the name before freezes, kept for old readers
        "undocumented_jobs": [e for e, _, _ in undocumented],
        "dlq_messages": dlq, "jobs_left": jobs_left,
        "jobs_left_of_finished_jobs": sum(1 for _, mid in leftovers or () if mid in finished),
        "consumer_unacked": unacked,
        "kills": kills, "server_restarts": restarts, "worker_exits": exits,
        "worker_freezes": freezes,
        "server_freezes": [{"start_ms": s, "end_ms": None if e == float("inf") else e,
                            "backlog_at_freeze": b}
                           for s, e, b in faults.server_freezes],
        "ack_wait_ms": ack_wait,
        "publish_retries": pub_tot["retries"], "publisher_bursts": pub_tot["bursts"],
        "duplicates_reported": pub_tot["duplicates_reported"],
        "seconds": secs, "jobs_per_s": round(len(accepted) / secs, 1) if secs else None,
    }
    with open(os.path.join(d, "summary.json"), "w") as f:
        f.write(json.dumps(summary, sort_keys=True) + "\n")
    # The printed line leaves out the long lists; summary.json has them.
    short = {k: v for k, v in summary.items() if k not in ("undocumented_jobs", "worker_freezes",
                                                            "server_freezes")}
    print(json.dumps(short, sort_keys=True))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
