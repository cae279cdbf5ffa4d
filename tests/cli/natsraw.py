#!/usr/bin/env python3
# natsraw.py - a small NATS client in plain Python (stdlib only), for tests.
#
# It speaks the NATS client protocol over one TCP socket, the way the `nats` CLI
# (nats.go) does on the wire, so that a test can do what an operator does with
# the CLI without going through jetfleet's own code (nats.c and src/core):
#
#   client -> server   CONNECT {...}, PING, PONG, SUB, UNSUB, PUB, HPUB
#   server -> client   INFO {...}, PING, PONG, +OK, -ERR, MSG, HMSG
#
# Headers are the NATS/1.0 block ("NATS/1.0[ <status>[ <text>]]\r\n" then
# "Name: value\r\n" lines and an empty line), sent with HPUB and received with
# HMSG. Requests use one wildcard inbox per connection, _INBOX.<random>.*, with
# a fresh last token per request, as nats.go's response multiplexer does; the
# CONNECT asks for headers and no_responders, so a request nobody serves gets a
# 503 status message at once instead of a timeout.
#
# JetStream needs nothing more: every JetStream operation is a request to a
# $JS.API.> subject with a JSON body (or none) and a JSON answer, or a message
# with headers (direct get). js_api() is that request plus the JSON decoding.
#
# Authentication: user and password from the URL (nats://user:password@host:port).
# Not supported (not needed on loopback test servers): TLS, tokens, NKEYs and
# JWTs, reconnects, cluster discovery, verbose mode.
import base64
import json
import os
import queue
import socket
import threading
from urllib.parse import urlsplit

__all__ = ["Client", "Msg", "NatsError", "NoResponders", "JetStreamError",
           "encode_headers", "parse_headers", "new_inbox"]

CRLF = b"\r\n"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class NatsError(Exception):
    """A protocol error, an -ERR from the server, or a timeout."""


class NoResponders(NatsError):
    """A request got the 503 status: nothing subscribes to the subject."""


class JetStreamError(NatsError):
    """A JetStream API answer with an "error" object ({code, err_code, description})."""

    def __init__(self, subject, error):
        self.subject = subject
        self.code = error.get("code")
        self.err_code = error.get("err_code")
        self.description = error.get("description", "")
        super().__init__("%s: %s (code %s, err_code %s)" % (
            subject, self.description, self.code, self.err_code))


def new_inbox():
    """_INBOX.<22 random base-62 characters>, as nats.go's NewInbox."""
    raw = os.urandom(22)
    return "_INBOX." + "".join(_ALPHABET[b % 62] for b in raw)


def encode_headers(headers, status=None):
    """The NATS/1.0 header block for a list of (name, value) pairs or a dict."""
    items = headers.items() if isinstance(headers, dict) else headers
    out = ["NATS/1.0" + ("" if status is None else " %s" % status)]
    for name, value in items:
        name, value = str(name), str(value)
        if any(c in name for c in ":\r\n ") or any(c in value for c in "\r\n"):
            raise ValueError("invalid header %r: %r" % (name, value))
        out.append("%s: %s" % (name, value))
    return ("\r\n".join(out) + "\r\n\r\n").encode()


def parse_headers(block):
    """(status, description, [(name, value), ...]) of a NATS/1.0 header block.

    status is an int (100, 404, 408, 409, 503, ...) or None when the first line is
    the bare "NATS/1.0"."""
    text = block.decode("utf-8", "replace")
    lines = text.split("\r\n")
    first = lines[0]
    if not first.startswith("NATS/1.0"):
        raise NatsError("not a NATS header block: %r" % first[:40])
    status, desc = None, ""
    rest = first[len("NATS/1.0"):].strip()
    if rest:
        code, _, desc = rest.partition(" ")
        status = int(code)
    headers = []
    for line in lines[1:]:
        if line == "":
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise NatsError("bad header line %r" % line)
        headers.append((name.strip(), value.strip()))
    return status, desc.strip(), headers


class Msg:
    """One MSG or HMSG."""

    __slots__ = ("subject", "sid", "reply", "status", "description", "headers", "data")

    def __init__(self, subject, sid, reply, data, header_block=None):
        self.subject = subject
        self.sid = sid
        self.reply = reply
        self.data = data
        self.status, self.description, self.headers = (None, "", [])
        if header_block is not None:
            self.status, self.description, self.headers = parse_headers(header_block)

    def header(self, name, default=None):
        """The first value of a header, matched case-insensitively."""
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return default

    def json(self):
        return json.loads(self.data)

    def __repr__(self):
        return "Msg(%r, status=%r, headers=%r, %d bytes)" % (
            self.subject, self.status, self.headers, len(self.data))


class Subscription:
    def __init__(self, client, sid, subject):
        self.client, self.sid, self.subject = client, sid, subject
        self.queue = queue.Queue()

    def next_msg(self, timeout=5.0):
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            raise NatsError("no message on %s within %.1fs" % (self.subject, timeout)) from None

    def pending(self):
        """Every message received so far, without waiting."""
        out = []
        while True:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                return out

    def unsubscribe(self):
        self.client.unsubscribe(self)


class Client:
    """A NATS connection. Use as a context manager, or call close()."""

    def __init__(self, url="nats://127.0.0.1:4222", name="natsraw", timeout=5.0, trace=None):
        parts = urlsplit(url if "://" in url else "nats://" + url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 4222
        self.user = parts.username    # nats://user:password@host:port
        self.password = parts.password
        self.name = name
        self.timeout = timeout
        self.trace = trace            # a callable(bytes) that sees each client->server
                                      # operation as sent (but PING and PONG)
        self.server_info = {}
        self._sock = None
        self._wlock = threading.Lock()
        self._slock = threading.Lock()
        self._subs = {}
        self._next_sid = 1
        self._pongs = []              # events waiting for a PONG, in order
        self._err = None              # last -ERR
        self._closed = False
        self._reader = None
        self._resp_prefix = None
        self._resp_sub = None
        self._resp_waiters = {}
        self._resp_n = 0

    # ---- connection ----------------------------------------------------------
    def connect(self):
        self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self._rfile = self._sock.makefile("rb")
        line = self._rfile.readline()
        if not line.startswith(b"INFO "):
            raise NatsError("expected INFO, got %r" % line[:80])
        self.server_info = json.loads(line[5:])
        if not self.server_info.get("headers"):
            raise NatsError("server does not support headers")
        connect = {"verbose": False, "pedantic": False, "tls_required": False,
                   "name": self.name, "lang": "python-natsraw", "version": "0.1.0",
                   "protocol": 1, "echo": True, "headers": True, "no_responders": True}
        if self.user is not None:
            connect.update({"user": self.user, "pass": self.password or ""})
        self._send(b"CONNECT " + json.dumps(connect, separators=(",", ":")).encode() + CRLF)
        self._sock.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, name="natsraw-reader",
                                        daemon=True)
        self._reader.start()
        self.flush()
        return self

    def __enter__(self):
        return self.connect()

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        if self._reader is not None:
            self._reader.join(timeout=2)

    def flush(self, timeout=None):
        """PING and wait for the PONG: every operation sent before is processed."""
        ev = threading.Event()
        with self._slock:
            self._pongs.append(ev)
        self._send(b"PING\r\n")
        if not ev.wait(timeout or self.timeout):
            raise NatsError("no PONG within %.1fs" % (timeout or self.timeout))
        if self._err is not None:
            err, self._err = self._err, None
            raise NatsError("server error: %s" % err)

    def _send(self, data):
        if self.trace is not None and not data.startswith((b"PING", b"PONG")):
            self.trace(data)
        with self._wlock:
            self._sock.sendall(data)

    # ---- reading ---------------------------------------------------------------
    def _read_exact(self, n):
        data = self._rfile.read(n)
        if data is None or len(data) != n:
            raise EOFError
        return data

    def _read_loop(self):
        try:
            while True:
                line = self._rfile.readline()
                if not line:
                    break
                if not line.endswith(CRLF):
                    raise NatsError("protocol line without CRLF: %r" % line[:80])
                self._dispatch_line(line[:-2])
        except (EOFError, OSError, ValueError, NatsError) as e:
            if not self._closed:
                self._err = "reader stopped: %s" % e
        finally:
            with self._slock:
                pongs, self._pongs = self._pongs, []
            for ev in pongs:
                ev.set()

    def _dispatch_line(self, line):
        op, _, args = line.partition(b" ")
        op = op.upper()
        if op == b"MSG":
            # MSG <subject> <sid> [reply-to] <#bytes>
            parts = args.decode().split()
            subject, sid = parts[0], int(parts[1])
            reply = parts[2] if len(parts) == 4 else None
            size = int(parts[-1])
            data = self._read_exact(size + 2)[:-2]
            self._deliver(Msg(subject, sid, reply, data))
        elif op == b"HMSG":
            # HMSG <subject> <sid> [reply-to] <#header bytes> <#total bytes>
            parts = args.decode().split()
            subject, sid = parts[0], int(parts[1])
            reply = parts[2] if len(parts) == 5 else None
            hlen, total = int(parts[-2]), int(parts[-1])
            raw = self._read_exact(total + 2)[:-2]
            self._deliver(Msg(subject, sid, reply, raw[hlen:], raw[:hlen]))
        elif op == b"PING":
            self._send(b"PONG\r\n")
        elif op == b"PONG":
            with self._slock:
                ev = self._pongs.pop(0) if self._pongs else None
            if ev is not None:
                ev.set()
        elif op == b"INFO":
            self.server_info.update(json.loads(args))
        elif op == b"+OK":
            pass
        elif op == b"-ERR":
            self._err = args.decode("utf-8", "replace").strip().strip("'")
        else:
            raise NatsError("unknown protocol operation %r" % line[:80])

    def _deliver(self, msg):
        with self._slock:
            sub = self._subs.get(msg.sid)
            if sub is self._resp_sub and sub is not None:
                waiter = self._resp_waiters.pop(msg.subject, None)
                if waiter is not None:
                    waiter.put(msg)
                return
        if sub is not None:
            sub.queue.put(msg)

    # ---- operations ------------------------------------------------------------
    def subscribe(self, subject, queue_group=None):
        with self._slock:
            sid = self._next_sid
            self._next_sid += 1
            sub = Subscription(self, sid, subject)
            self._subs[sid] = sub
        q = (" " + queue_group) if queue_group else ""
        self._send(("SUB %s%s %d\r\n" % (subject, q, sid)).encode())
        return sub

    def unsubscribe(self, sub):
        with self._slock:
            self._subs.pop(sub.sid, None)
        self._send(("UNSUB %d\r\n" % sub.sid).encode())

    def publish(self, subject, data=b"", reply=None, headers=None):
        """PUB, or HPUB when headers are given (a list of pairs or a dict)."""
        if isinstance(data, str):
            data = data.encode()
        r = (" " + reply) if reply else ""
        if headers:
            hdr = encode_headers(headers)
            op = "HPUB %s%s %d %d\r\n" % (subject, r, len(hdr), len(hdr) + len(data))
            self._send(op.encode() + hdr + data + CRLF)
        else:
            self._send(("PUB %s%s %d\r\n" % (subject, r, len(data))).encode() + data + CRLF)

    def request(self, subject, data=b"", headers=None, timeout=None):
        """Publish with a reply subject in this connection's response inbox and
        wait for the one answer. A 503 status answer raises NoResponders."""
        with self._slock:
            if self._resp_sub is None:
                self._resp_prefix = new_inbox()
                sid = self._next_sid
                self._next_sid += 1
                self._resp_sub = Subscription(self, sid, self._resp_prefix + ".*")
                self._subs[sid] = self._resp_sub
                created = True
            else:
                created = False
            self._resp_n += 1
            reply = "%s.%d" % (self._resp_prefix, self._resp_n)
            waiter = queue.Queue(1)
            self._resp_waiters[reply] = waiter
        if created:
            self._send(("SUB %s %d\r\n" % (self._resp_sub.subject, self._resp_sub.sid)).encode())
        self.publish(subject, data, reply=reply, headers=headers)
        try:
            msg = waiter.get(timeout=timeout or self.timeout)
        except queue.Empty:
            with self._slock:
                self._resp_waiters.pop(reply, None)
            if self._err is not None:
                raise NatsError("request to %s: server error: %s" % (subject, self._err)) from None
            raise NatsError("request to %s timed out after %.1fs"
                            % (subject, timeout or self.timeout)) from None
        if msg.status == 503:
            raise NoResponders("no responders for %s" % subject)
        return msg

    def js_api(self, subject, body=None, timeout=None):
        """A JetStream API request: subject under $JS.API., a JSON body or none,
        the JSON answer decoded. An answer with "error" raises JetStreamError."""
        full = subject if subject.startswith("$JS.") else "$JS.API." + subject
        data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        resp = self.request(full, data, timeout=timeout).json()
        if isinstance(resp, dict) and "error" in resp:
            raise JetStreamError(full, resp["error"])
        return resp


def b64decode(text):
    """Base64 of a stream_msg_get_response's "hdrs" and "data" (may be absent)."""
    return base64.b64decode(text) if text else b""
