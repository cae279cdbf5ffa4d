#!/usr/bin/env python3
"""test_nats_recipes.py - every `nats` CLI recipe of docs/operations.md, done on the wire.

jetfleet keeps all of its state in plain JetStream objects, so an operator can do
everything with the stock `nats` CLI. The CLI is not a Debian package and cannot be
installed here, so this test does what it does on the wire, with natsraw.py (plain
Python sockets, not jetfleet's nats.c code path), against a real nats-server and
the real `jetfleet provision` and `jetfleet worker`:

  nats pub <subject> '<json>' -H Nats-Msg-Id:<id> -J   HPUB with a reply inbox; the pub ack
  nats stream info JOBS                                 $JS.API.STREAM.INFO.JOBS
  nats consumer ls JOBS                                 $JS.API.CONSUMER.NAMES.JOBS
  nats consumer info JOBS default                       $JS.API.CONSUMER.INFO.JOBS.default
  nats consumer report JOBS                             $JS.API.CONSUMER.LIST.JOBS
  nats kv get JF_LEDGER <key>                           $JS.API.STREAM.INFO.KV_JF_LEDGER, then
                                                        $JS.API.DIRECT.GET.KV_JF_LEDGER.$KV.JF_LEDGER.<key>
                                                        (or STREAM.MSG.GET with last_by_subj)
  nats stream get DLQ <seq>                             $JS.API.STREAM.MSG.GET.DLQ {"seq":N}
                                                        (or DIRECT.GET.DLQ when the stream allows it)
  nats sub 'telemetry.jobs.>'                           SUB telemetry.jobs.>
  nats kv get JF_SUBSCRIPTIONS <tenant>                 as for JF_LEDGER

Protobuf values (the ledger's JobRecord, JobEvent, EndpointSet) are decoded with the
field numbers and types read from proto/ by a small stdlib reader, and the ledger
record once more with `protoc-c --decode` (the documented pipe) when it is installed.

usage: test_nats_recipes.py --jetfleet BIN [--telemetry-format protobuf|json]
                            [--source-root DIR] [--nats-server PATH] [--quiet]
It prints a transcript (command, wire operation, the raw JSON answer) on stdout,
which docs/operations.md quotes. Exit 0 when every assertion holds, 1 otherwise.
"""
import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsraw  # noqa: E402

TENANT = "acme"
NOOP_ID = "recipe-noop-1"
FAIL_ID = "recipe-fail-1"
SUB_ID = "recipe-sub-1"
WORKER_ID = "recipes-w1"
DUP_WINDOW = "3m"            # set for provision, asserted in the stream config
ACK_WAIT = "20s"             # likewise, in the consumer config

QUIET = False


def say(*args):
    if not QUIET:
        print(*args, flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


# ---- protobuf: the schema from proto/, the wire format by hand -------------------

def load_proto(path):
    """{message: {num: (name, type, repeated)}}, {enum: {num: name}} of a simple
    proto3 file: top-level messages and enums, scalar and message fields."""
    text = re.sub(r"//[^\n]*", "", open(path, encoding="utf-8").read())
    messages, enums = {}, {}
    for kind, name, body in re.findall(r"\b(message|enum)\s+(\w+)\s*\{([^{}]*)\}", text):
        if kind == "enum":
            enums[name] = {int(n): v for v, n in re.findall(r"(\w+)\s*=\s*(\d+)\s*;", body)}
        else:
            fields = {}
            for rep, typ, fname, num in re.findall(
                    r"(repeated\s+)?([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;", body):
                fields[int(num)] = (fname, typ, bool(rep))
            messages[name] = fields
    return messages, enums


def _varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def pb_decode(buf, msg_name, messages, enums):
    """Decode protobuf bytes into a dict keyed by field name (proto names), the way
    protoc --decode would show them; unknown fields are kept by number."""
    fields = messages[msg_name]
    out, i = {}, 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            raw, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            raw, i = bytes(buf[i:i + n]), i + n
        elif wt == 1:
            raw, i = int.from_bytes(buf[i:i + 8], "little"), i + 8
        elif wt == 5:
            raw, i = int.from_bytes(buf[i:i + 4], "little"), i + 4
        else:
            raise ValueError("wire type %d at field %d" % (wt, num))
        if num not in fields:
            out.setdefault(num, []).append(raw)
            continue
        name, typ, repeated = fields[num]
        if typ == "string":
            val = raw.decode("utf-8")
        elif typ == "bytes":
            val = raw
        elif typ == "bool":
            val = bool(raw)
        elif typ in ("int64", "int32"):
            val = raw - (1 << 64) if raw >= 1 << 63 else raw
        elif typ in ("uint64", "uint32"):
            val = raw
        elif typ in enums:
            val = enums[typ].get(raw, raw)
        elif typ in messages:
            val = pb_decode(raw, typ, messages, enums)
        else:
            raise ValueError("type %s of field %s not handled" % (typ, name))
        if repeated:
            out.setdefault(name, []).append(val)
        else:
            out[name] = val
    return out


# ---- processes ----------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def child_env(url, extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JF_")}
    env.update({"JF_NATS_URL": url, "JF_LOG_FORMAT": "json",
                "JF_DUPLICATE_WINDOW": DUP_WINDOW, "JF_ACK_WAIT": ACK_WAIT})
    env.update(extra)
    return env


def start_server(nats_server, tmp):
    for _ in range(5):
        port = free_port()
        log = open(os.path.join(tmp, "server.log"), "wb")
        proc = subprocess.Popen(
            [nats_server, "-js", "-a", "127.0.0.1", "-p", str(port),
             "-sd", os.path.join(tmp, "js"), "--server_name", "jf-cli-recipes"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        url = "nats://127.0.0.1:%d" % port
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                natsraw.Client(url, timeout=1).connect().close()
                return proc, url
            except (OSError, natsraw.NatsError):
                time.sleep(0.05)
        stop(proc)     # the port was taken between probe and bind, or it hung
    raise AssertionError("nats-server did not start; see %s/server.log" % tmp)


def stop(proc, grace=15):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for(fn, what, timeout=20.0, interval=0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except (natsraw.NatsError, KeyError) as e:
            last = e
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


# ---- the recipes, as the CLI does them ----------------------------------------------

class Recipes:
    """Each method is one `nats` command: the same requests, in the same order."""

    def __init__(self, nc, wire):
        self.nc = nc
        self.wire = wire      # client->server op lines, for the transcript

    def quiet(self):
        """Forget the wire operations of polling that is not part of a recipe."""
        del self.wire[:]

    def show(self, command, answer=None):
        say("\n$ " + command)
        for data in self.wire:
            op, _, rest = data.decode("utf-8", "replace").partition("\r\n")
            say("  > " + op)
            if rest.endswith("\r\n") and rest != "\r\n":
                say("    " + rest[:-2].replace("\r\n", "\\r\\n"))
        del self.wire[:]
        if answer is not None:
            say("  < " + (json.dumps(answer, indent=None, sort_keys=False)
                          if not isinstance(answer, str) else answer))

    def pub_js(self, subject, payload, msg_id):
        """nats pub SUBJECT PAYLOAD -H Nats-Msg-Id:ID -J: HPUB with a reply inbox,
        answered by the stream's pub ack ({"stream","seq"[,"duplicate"]})."""
        msg = self.nc.request(subject, payload.encode(), headers=[("Nats-Msg-Id", msg_id)])
        ack = msg.json()
        if "error" in ack:
            raise natsraw.JetStreamError(subject, ack["error"])
        self.show("nats pub %s '%s' -H Nats-Msg-Id:%s -J" % (subject, payload, msg_id), ack)
        return ack

    def stream_info(self, stream):
        info = self.nc.js_api("STREAM.INFO." + stream)
        self.show("nats stream info %s" % stream, info)
        return info

    def consumer_ls(self, stream):
        names = self.nc.js_api("CONSUMER.NAMES." + stream, {"offset": 0})
        self.show("nats consumer ls %s" % stream, names)
        return names

    def consumer_info(self, stream, consumer):
        info = self.nc.js_api("CONSUMER.INFO.%s.%s" % (stream, consumer))
        self.show("nats consumer info %s %s" % (stream, consumer), info)
        return info

    def consumer_report(self, stream):
        # the CLI loads the stream first, then pages through CONSUMER.LIST
        self.nc.js_api("STREAM.INFO." + stream)
        consumers, offset = [], 0
        while True:
            page = self.nc.js_api("CONSUMER.LIST." + stream, {"offset": offset})
            consumers += page.get("consumers") or []
            offset += len(page.get("consumers") or [])
            if offset >= page.get("total", 0) or not page.get("consumers"):
                break
        self.show("nats consumer report %s" % stream, page)
        return consumers

    def kv_get(self, bucket, key):
        """nats kv get BUCKET KEY: (value bytes, revision, headers), None when absent.

        Like nats.go's KeyValue.Get: STREAM.INFO of KV_<bucket> first (bucket
        exists? allow_direct?), then the last message on $KV.<bucket>.<key>."""
        stream, subject = "KV_" + bucket, "$KV.%s.%s" % (bucket, key)
        info = self.nc.js_api("STREAM.INFO." + stream)
        if info["config"].get("allow_direct"):
            # direct get, last by subject: no body; the answer is the stored
            # message itself, with Nats-Sequence etc. headers, or a 404 status
            msg = self.nc.request("$JS.API.DIRECT.GET.%s.%s" % (stream, subject), b"")
            if msg.status == 404:
                self.show("nats kv get %s %s" % (bucket, key),
                          "status %d %s" % (msg.status, msg.description))
                return None
            check(msg.status is None, "direct get status %r %s" % (msg.status, msg.description))
            check(msg.header("KV-Operation") not in ("DEL", "PURGE"), "key %s deleted" % key)
            rev = int(msg.header("Nats-Sequence"))
            self.show("nats kv get %s %s" % (bucket, key),
                      "HMSG headers %s, %d value bytes" % (msg.headers, len(msg.data)))
            return msg.data, rev, msg.headers
        try:
            resp = self.nc.js_api("STREAM.MSG.GET." + stream, {"last_by_subj": subject})
        except natsraw.JetStreamError as e:
            if e.err_code == 10037:          # no message found
                return None
            raise
        m = resp["message"]
        hdrs = natsraw.parse_headers(natsraw.b64decode(m["hdrs"]))[2] if m.get("hdrs") else []
        self.show("nats kv get %s %s" % (bucket, key), resp)
        return natsraw.b64decode(m.get("data")), m["seq"], hdrs

    def stream_get(self, stream, seq):
        """nats stream get STREAM SEQ: (subject, headers, data, answer)."""
        info = self.nc.js_api("STREAM.INFO." + stream)
        if info["config"].get("allow_direct"):
            msg = self.nc.request("$JS.API.DIRECT.GET." + stream,
                                  json.dumps({"seq": seq}).encode())
            check(msg.status is None, "direct get status %r" % msg.status)
            self.show("nats stream get %s %d" % (stream, seq), "HMSG %r" % msg)
            return msg.header("Nats-Subject"), msg.headers, msg.data, None
        resp = self.nc.js_api("STREAM.MSG.GET." + stream, {"seq": seq})
        self.show("nats stream get %s %d" % (stream, seq), resp)
        m = resp["message"]
        status, _, hdrs = natsraw.parse_headers(natsraw.b64decode(m["hdrs"]))
        check(status is None, "stored headers carry a status: %r" % status)
        return m["subject"], hdrs, natsraw.b64decode(m.get("data")), resp


def protoc_decode(value, msg_type, proto_root, proto_file):
    """`... --raw | protoc-c --decode=TYPE -I proto FILE`, the documented pipe: its
    text, or None (and a note) when neither protoc-c nor protoc is installed."""
    protoc = shutil.which("protoc-c") or shutil.which("protoc")
    if not protoc:
        say("  (no protoc-c or protoc: the decode pipe was not checked)")
        return None
    dec = subprocess.run([protoc, "--decode=" + msg_type, "-I", proto_root,
                          os.path.join(proto_root, proto_file)],
                         input=value, capture_output=True, timeout=30)
    check(dec.returncode == 0, "%s --decode: %s" % (protoc, dec.stderr))
    text = dec.stdout.decode()
    say("  | %s --decode=%s -I proto proto/%s\n" % (os.path.basename(protoc), msg_type, proto_file)
        + "\n".join("    " + line for line in text.splitlines()))
    return text


def decode_event(msg, messages, enums):
    """A lifecycle event as a dict, from either encoding (look at Content-Type)."""
    ctype = msg.header("Content-Type")
    if ctype == "application/json":
        ev = msg.json()
        for k in ("stream_seq", "enqueued_ms", "received_ms", "started_ms", "ended_ms",
                  "duration_us"):
            if k in ev:
                ev[k] = int(ev[k])   # 64-bit integers are strings in proto3 JSON
        return ev
    check(ctype == "application/protobuf", "event Content-Type %r" % ctype)
    return pb_decode(msg.data, "JobEvent", messages, enums)


# ---- the test ---------------------------------------------------------------------------

def run(args, tmp):
    jf = args.jetfleet
    proto = os.path.join(args.source_root, "proto")
    led_msgs, led_enums = load_proto(os.path.join(proto, "jetfleet/v1/ledger.proto"))
    ev_msgs, ev_enums = load_proto(os.path.join(proto, "jetfleet/v1/event.proto"))
    sub_msgs, sub_enums = load_proto(os.path.join(proto, "jetfleet/subscriptions/v1/subscriptions.proto"))
    procs = []
    try:
        server, url = start_server(args.nats_server, tmp)
        procs.append(server)
        say("== nats-server on %s, telemetry format %s" % (url, args.telemetry_format))

        env = child_env(url, {"JF_WORKER_ID": WORKER_ID,
                              "JF_TELEMETRY_FORMAT": args.telemetry_format})
        prov = subprocess.run([jf, "provision"], env=env, capture_output=True, text=True,
                              timeout=60)
        check(prov.returncode == 0, "jetfleet provision exit %d: %s" % (prov.returncode, prov.stderr))
        say("$ jetfleet provision\n" + prov.stdout.rstrip())

        wire = []
        with natsraw.Client(url, name="natsraw-recipes", trace=wire.append) as nc:
            r = Recipes(nc, wire)

            # nats sub 'telemetry.jobs.>' - before anything runs
            telemetry = nc.subscribe("telemetry.jobs.>")
            nc.flush()
            r.show("nats sub 'telemetry.jobs.>'")

            # nats stream info JOBS
            info = r.stream_info("JOBS")
            cfg = info["config"]
            check(cfg["retention"] == "workqueue", "JOBS retention %r" % cfg["retention"])
            check(cfg["storage"] == "file", "JOBS storage %r" % cfg["storage"])
            check(cfg["subjects"] == ["jobs.>"], "JOBS subjects %r" % cfg["subjects"])
            check(cfg["duplicate_window"] == 180 * 10**9,
                  "JOBS duplicate_window %r, JF_DUPLICATE_WINDOW=%s" % (cfg["duplicate_window"], DUP_WINDOW))
            check(info["state"]["messages"] == 0, "JOBS not empty: %r" % info["state"])

            # nats pub ... -J: enqueue by hand, JSON payloads, and a duplicate
            ack = r.pub_js("jobs.acme.diag.noop", '{"tenant":"acme"}', NOOP_ID)
            check(ack.get("stream") == "JOBS" and ack.get("seq") == 1 and not ack.get("duplicate"),
                  "first pub ack %r" % ack)
            dup = r.pub_js("jobs.acme.diag.noop", '{"tenant":"acme"}', NOOP_ID)
            check(dup.get("stream") == "JOBS" and dup.get("seq") == 1 and dup.get("duplicate") is True,
                  "second pub ack (same Nats-Msg-Id) %r" % dup)
            fail_ack = r.pub_js("jobs.acme.diag.fail",
                                '{"retryable":false,"message":"card declined"}', FAIL_ID)
            check(fail_ack.get("seq") == 2, "fail pub ack %r" % fail_ack)
            sub_payload = ('{"endpoint_id":"orders","url":"https://hooks.example.test/orders",'
                           '"event_types":["order.*"]}')
            sub_ack = r.pub_js("jobs.acme.subscriptions.upsert", sub_payload, SUB_ID)
            check(sub_ack.get("seq") == 3, "upsert pub ack %r" % sub_ack)

            # consumers with no worker running: the lag is the three jobs
            names = r.consumer_ls("JOBS")
            check(names.get("consumers") == ["default"], "consumer names %r" % names)
            ci = r.consumer_info("JOBS", "default")
            check(ci["config"].get("durable_name") == "default", "durable %r" % ci["config"])
            check(ci["config"].get("ack_policy") == "explicit", "ack policy %r" % ci["config"])
            check(ci["config"].get("ack_wait") == 20 * 10**9, "ack_wait %r" % ci["config"].get("ack_wait"))
            check(not ci["config"].get("backoff"), "consumer has a BackOff: %r" % ci["config"])
            check(ci["num_pending"] == 3 and ci["num_ack_pending"] == 0,
                  "before the worker: num_pending %r num_ack_pending %r" % (ci["num_pending"], ci["num_ack_pending"]))
            report = r.consumer_report("JOBS")
            check([c["name"] for c in report] == ["default"], "consumer list %r" % report)
            lag = report[0]["num_pending"] + report[0]["num_ack_pending"]
            check(lag == 3, "lag from CONSUMER.LIST %d" % lag)
            jl = subprocess.run([jf, "lag", "--json"], env=env, capture_output=True, text=True, timeout=30)
            check(jl.returncode == 0, "jetfleet lag exit %d: %s" % (jl.returncode, jl.stderr))
            check(json.loads(jl.stdout)["lag"] == lag, "jetfleet lag %s, raw API %d" % (jl.stdout, lag))
            say("  (jetfleet lag --json agrees: %s)" % jl.stdout.strip())

            # start the worker
            werr = open(os.path.join(tmp, "worker.log"), "wb")
            worker = subprocess.Popen([jf, "worker"], env=env, stdin=subprocess.DEVNULL,
                                      stdout=werr, stderr=werr)
            werr.close()
            procs.append(worker)

            def drained():
                c = nc.js_api("CONSUMER.INFO.JOBS.default")
                return c["num_pending"] + c["num_ack_pending"] == 0 and c["delivered"]["stream_seq"] >= 3

            wait_for(drained, "the worker to drain JOBS")
            r.quiet()
            ci = r.consumer_info("JOBS", "default")
            check(ci["num_pending"] == 0 and ci["num_ack_pending"] == 0, "after the worker: %r" % ci)
            check(ci["ack_floor"]["stream_seq"] == 3, "ack floor %r" % ci["ack_floor"])
            check(r.stream_info("JOBS")["state"]["messages"] == 0, "JOBS keeps acked jobs")

            # nats kv get JF_LEDGER acme.diag.noop.recipe-noop-1
            key = "%s.diag.noop.%s" % (TENANT, NOOP_ID)
            got = wait_for(lambda: r.kv_get("JF_LEDGER", key), "ledger key " + key)
            value, rev, _ = got
            rec = pb_decode(value, "JobRecord", led_msgs, led_enums)
            say("  JobRecord: " + json.dumps(rec))
            check(rec.get("state") == "JOB_STATE_SUCCEEDED", "ledger state %r" % rec)
            check(rec.get("attempts") == 1, "ledger attempts %r" % rec)
            check(rec.get("job_id") == NOOP_ID and rec.get("tenant") == TENANT
                  and rec.get("type") == "diag.noop", "ledger identity %r" % rec)
            check(rec.get("worker") == WORKER_ID, "ledger worker %r" % rec)
            check(rec.get("stream_seq") == 1, "ledger stream_seq %r" % rec)
            check(rec.get("finished_ms", 0) >= rec.get("last_started_ms", 0) > 0, "ledger times %r" % rec)
            check(rev > 0, "revision %r" % rev)
            text = protoc_decode(value, "jetfleet.v1.JobRecord", proto, "jetfleet/v1/ledger.proto")
            check(text is None or ("state: JOB_STATE_SUCCEEDED" in text and "attempts: 1" in text
                                   and 'job_id: "%s"' % NOOP_ID in text),
                  "protoc --decode output %r" % text)
            missing = r.kv_get("JF_LEDGER", "%s.diag.noop.never-enqueued" % TENANT)
            check(missing is None, "a key never written reads as %r" % (missing,))

            # the failing job: dead in the ledger, then nats stream get DLQ <seq>
            fkey = "%s.diag.fail.%s" % (TENANT, FAIL_ID)
            fval = wait_for(lambda: r.kv_get("JF_LEDGER", fkey), "ledger key " + fkey)[0]
            frec = pb_decode(fval, "JobRecord", led_msgs, led_enums)
            say("  JobRecord: " + json.dumps(frec))
            check(frec.get("state") == "JOB_STATE_DEAD" and frec.get("attempts") == 1
                  and frec.get("last_error") == "card declined"
                  and frec.get("last_error_code") == "JF_EINVAL", "failed job's record %r" % frec)
            dlq = wait_for(lambda: (lambda i: i if i["state"]["messages"] >= 1 else None)(
                nc.js_api("STREAM.INFO.DLQ")), "a dead letter in DLQ")
            r.quiet()
            dlq = r.stream_info("DLQ")
            check(dlq["state"]["messages"] == 1, "DLQ messages %r" % dlq["state"])
            seq = dlq["state"]["last_seq"]
            subject, hdrs, data, _ = r.stream_get("DLQ", seq)
            h = {}
            for k, v in hdrs:
                h.setdefault(k, v)
            say("  headers: " + json.dumps(h))
            check(subject == "dlq.acme.diag.fail", "dead letter subject %r" % subject)
            check(h.get("Jf-Failure-Reason") == "failed", "Jf-Failure-Reason %r" % h)
            check(h.get("Jf-Attempts") == "1", "Jf-Attempts %r" % h)
            check(h.get("Jf-Last-Error") == "card declined", "Jf-Last-Error %r" % h)
            check(h.get("Jf-Error-Code") == "JF_EINVAL", "Jf-Error-Code %r" % h)
            check(h.get("Jf-Job-Id") == FAIL_ID, "Jf-Job-Id %r" % h)
            check(h.get("Jf-Original-Subject") == "jobs.acme.diag.fail"
                  and h.get("Jf-Original-Stream") == "JOBS" and h.get("Jf-Original-Seq") == "2",
                  "Jf-Original-* %r" % h)
            check(h.get("Jf-Worker") == WORKER_ID, "Jf-Worker %r" % h)
            check(h.get("Nats-Msg-Id") == "jf-dlq-JOBS-2", "dead letter Nats-Msg-Id %r" % h)
            check(data == b'{"retryable":false,"message":"card declined"}',
                  "dead letter keeps the original payload: %r" % data)

            # nats kv get JF_SUBSCRIPTIONS acme
            sval = wait_for(lambda: r.kv_get("JF_SUBSCRIPTIONS", TENANT), "JF_SUBSCRIPTIONS acme")[0]
            eps = pb_decode(sval, "EndpointSet", sub_msgs, sub_enums)
            say("  EndpointSet: " + json.dumps(eps))
            ep = (eps.get("endpoints") or [{}])[0]
            text = protoc_decode(sval, "jetfleet.subscriptions.v1.EndpointSet", proto,
                                 "jetfleet/subscriptions/v1/subscriptions.proto")
            check(text is None or ('id: "orders"' in text and "enabled: true" in text),
                  "protoc --decode output %r" % text)
            check(len(eps.get("endpoints", [])) == 1 and ep.get("id") == "orders"
                  and ep.get("url") == "https://hooks.example.test/orders"
                  and ep.get("event_types") == ["order.*"] and ep.get("enabled") is True
                  and ep.get("updated_by") == SUB_ID, "EndpointSet %r" % eps)

            # what nats sub 'telemetry.jobs.>' received
            want = {
                # the lean path: one outcome event carries the times
                NOOP_ID: ["succeeded"],
                FAIL_ID: ["failed", "dead_lettered"],
                SUB_ID: ["succeeded"],
            }
            seen = {k: [] for k in want}
            events = []

            def all_events():
                for m in telemetry.pending():
                    ev = decode_event(m, ev_msgs, ev_enums)
                    events.append((m, ev))
                    if ev.get("job_id") in seen:
                        seen[ev["job_id"]].append(m.subject.rsplit(".", 1)[1])
                # order is kept per worker connection, but a retried publish may
                # arrive late: compare the sets of events per job
                return all(sorted(seen[k]) == sorted(v) for k, v in want.items())

            wait_for(all_events, "lifecycle events %r (seen %r)" % (want, seen), timeout=10)
            say("\n$ nats sub 'telemetry.jobs.>'   (what arrived)")
            for m, ev in events:
                say("  [#%s] %s Content-Type=%s Nats-Msg-Id=%s\n    %s" % (
                    m.sid, m.subject, m.header("Content-Type"), m.header("Nats-Msg-Id"),
                    m.data.decode() if m.header("Content-Type") == "application/json"
                    else "(protobuf, decoded) " + json.dumps(ev)))
            for m, ev in events:
                kind = m.subject.rsplit(".", 1)[1]
                check(ev.get("event") == "EVENT_KIND_" + kind.upper(), "event kind %r on %s" % (ev, m.subject))
                check(ev.get("worker_id") == WORKER_ID and ev.get("tenant") == TENANT
                      and ev.get("pool") == "default", "event identity %r" % ev)
                check(m.subject == "telemetry.jobs.%s.%s.%s" % (TENANT, ev["type"], kind),
                      "event subject %s for %r" % (m.subject, ev))
                check(m.header("Nats-Msg-Id") == "%s:JOBS-%d:%d:%s" % (
                    ev["job_id"], ev["stream_seq"], ev["attempt"], kind),
                      "event Nats-Msg-Id %r" % m.header("Nats-Msg-Id"))
                check(m.header("Content-Type") == ("application/json" if args.telemetry_format == "json"
                                                   else "application/protobuf"),
                      "Content-Type %r" % m.header("Content-Type"))
            for m, ev in events:
                if ev.get("event") == "EVENT_KIND_SUCCEEDED":
                    check(0 < ev.get("received_ms", 0) <= ev.get("started_ms", 0)
                          <= ev.get("ended_ms", 0), "received, started, ended %r" % ev)
            failed = [ev for m, ev in events if ev.get("job_id") == FAIL_ID
                      and ev.get("event") == "EVENT_KIND_FAILED"][0]
            check(failed.get("error_code") == "JF_EINVAL" and failed.get("error_text") == "card declined",
                  "failed event %r" % failed)
            # the AUDIT stream captured the same events
            wait_for(lambda: nc.js_api("STREAM.INFO.AUDIT")["state"]["messages"] >= len(events),
                     "AUDIT to store %d events" % len(events), timeout=10)
            r.quiet()
            audit = r.stream_info("AUDIT")
            check(audit["state"]["messages"] == len(events), "AUDIT holds %d events, nats sub saw %d"
                  % (audit["state"]["messages"], len(events)))

        stop(worker)
        check(worker.returncode == 0, "worker exit %r" % worker.returncode)
        with open(os.path.join(tmp, "worker.log"), encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                obj = json.loads(line)
                check(isinstance(obj, dict) and {"ts", "level", "msg"} <= obj.keys(),
                      "worker.log:%d is not a JSON log line: %r" % (n, line))
        print("\nPASS: every nats CLI recipe worked over a raw NATS connection")
        return 0
    except Exception:
        traceback.print_exc()
        for name in ("worker.log", "server.log"):
            p = os.path.join(tmp, name)
            if os.path.exists(p):
                print("---- tail of %s" % p)
                with open(p, "rb") as f:
                    print(b"".join(f.readlines()[-40:]).decode("utf-8", "replace"))
        print("FAIL")
        return 1
    finally:
        for p in reversed(procs):
            stop(p)


def main():
    global QUIET
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jetfleet", required=True, help="the jetfleet binary under test")
    ap.add_argument("--source-root", default=os.path.dirname(os.path.dirname(here)))
    ap.add_argument("--nats-server", default=shutil.which("nats-server") or "nats-server")
    ap.add_argument("--telemetry-format", choices=("protobuf", "json"), default="protobuf")
    ap.add_argument("--quiet", action="store_true", help="no transcript")
    args = ap.parse_args()
    QUIET = args.quiet
    tmp = tempfile.mkdtemp(prefix="jf-cli-")
    try:
        return run(args, tmp)
    finally:
        if "JF_TEST_KEEP" not in os.environ:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept " + tmp)


if __name__ == "__main__":
    sys.exit(main())
