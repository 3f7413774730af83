#!/usr/bin/env python3
"""Crash hunt: throws thousands of generated hostile values at every endpoint of a live
messages-service and fails when the process dies, answers 5xx, resets a connection or does not
answer in time.

Python 3 standard library only. Normally started by tools/crash-hunt.sh, which runs the service
with AUTH_MODE=jwt and a test JWT_SECRET; the script mints its own HS256 tokens with that secret
so that requests pass authentication and reach the decoders behind it.

Phases:
  setup   real data: channels with messages, replies, edits, deletes, INF326 messages, and real
          cursors taken from real pages. Every setup call must succeed (else nothing would reach
          the handlers and the hunt would prove nothing).
  sweep   deterministic: every edge value of a family through every slot of that family (limit,
          before/after/around as `s1:`/`s2:` cursors, If-Match, attachment size, INF326 cursor
          timestamps, every UUID form in every id slot, every hostile token kind); sequential,
          so a request that kills the process is named exactly. --no-sweep skips it.
  random  --requests generated requests over all endpoints, mixing valid shapes with hostile
          values (seeded by --seed); a share of them is sent from several threads at once. Real
          ids and cursors seen in responses are fed back into the pools.

Fails (exit 1) on: a status >= 500; a connection closed without a response, reset or timed out
(unless the request was not valid HTTP on the wire, e.g. control bytes in a header, and the
server is still alive: refusing malformed HTTP by closing is not a crash); the process gone
(--server-pid, and /health/live). Exit 2: the service could not be reached or set up.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import concurrent.futures
import hashlib
import hmac
import json
import os
import random
import re
import socket
import sys
import threading
import time
import urllib.parse
import uuid

MAX_BODY = 65536
NIL_UUID = "00000000-0000-0000-0000-000000000000"
MAX_UUID = "ffffffff-ffff-ffff-ffff-ffffffffffff"

# --- value families ------------------------------------------------------------------------------

# Integers at the edges of every width a decoder may use, as text.
INT_EDGES = [
    "0", "1", "-1", "2", "49", "50", "51", "99", "100", "101", "199", "200", "201", "255", "256",
    "32767", "32768", "65535", "65536",
    "2147483646", "2147483647", "2147483648", "-2147483647", "-2147483648", "-2147483649",
    "4294967295", "4294967296",
    "9007199254740991", "9007199254740992", "9007199254740993", "-9007199254740993",
    "9223372036854775806", "9223372036854775807", "9223372036854775808", "9223372036854775809",
    "-9223372036854775807", "-9223372036854775808", "-9223372036854775809",
    "18446744073709551615", "18446744073709551616", "36893488147419103232",
    "1" + "0" * 400, "-1" + "0" * 400, "9" * 1000,
]
# Where integer widths end: overflow bugs live here, so these get a share of their own.
WIDTH_EDGES = [
    "127", "128", "255", "256", "32767", "32768", "65535", "65536", "2147483647", "2147483648", "-2147483648",
    "-2147483649", "4294967295", "4294967296", "9007199254740991", "9007199254740992", "9007199254740993",
    "9223372036854775806", "9223372036854775807", "9223372036854775808", "-9223372036854775807",
    "-9223372036854775808", "-9223372036854775809", "18446744073709551615", "18446744073709551616",
]
# Texts that some parser might read as an integer.
INT_LOOKALIKES = [
    "-0", "00", "007", "0" * 500 + "5", "1e3", "1E3", "1e400", "1.0", "1.5", "-0.0", ".5", "5.",
    "0x10", "0X1F", "0o17", "0b101", "1_0", "1,000", " 5", "5 ", "\t5", "5\n", "+5", "++5", "--5",
    "+-5", "\u0663", "\u0663\u0662", "\uff15", "\U0001d7d3", "\u09eb", "\u0beb", "\u00b2", "\u216b",
    "5\u0000", "\u202e5", "", "  ", "NaN", "nan", "Infinity", "-Infinity", "inf", "null", "true",
    "[]", "{}", "5abc", "abc", "%35", "9223372036854775807.0", "9.223372036854775807e18",
]
# JSON numbers (raw text) and other JSON values where an integer is expected.
JSON_NUMBER_EDGES = [
    "0", "-0", "1", "-1", "2147483647", "2147483648", "-2147483649", "4294967296",
    "9007199254740993", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
    "-9223372036854775809", "18446744073709551615", "18446744073709551616", "1" + "0" * 400,
    "1e3", "1E+2", "1.5", "-0.0", "1e400", "-1e400", "1e-400", "4.9e-324", "1.7976931348623157e308",
    "9.223372036854775807e18", "0.0000001", "\"5\"", "\"\"", "null", "true", "false", "[]", "{}",
    "[1]", "{\"a\":1}",
]
# Reactions: emoji (with joiners, modifiers, flags, keycaps, tags) and short codes.
REACTION_EMOJI = ["👍", "❤️", "❤", "👩🏽‍💻", "🇨🇱", "1️⃣", "🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F",
                  ":tada:", ":+1:", ":a-b_c:", "©", "a", "1", "::", ":Tada:", "\u200d", "\ufe0f", "👍\u0301"]
# Reaction path segments no client library would send.
HOSTILE_EMOJI_SEGMENTS = ["%", "%F0", "%F0%9F%91", "%zz", "%00", "%FF%FE", "%C0%80", "%ED%A0%80", "%25F0%259F%2591%258D",
                          "%F0%9F%91%8D%00", "%2F", "..", "%2e%2e", "%F0" * 300, "%3A" * 50, "+", "%20%F0%9F%91%8D"]

# INF326 cursor timestamps: edges of every calendar field and of what Postgres reads as a time.
TS_EDGES = [
    "0000-01-01T00:00:00Z", "0000-01-01", "0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999999",
    "9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999Z", "1970-01-01T00:00:00Z", "1970-01-01",
    "1969-12-31T23:59:59.999Z", "2025-13-01T00:00:00Z", "2025-00-01T00:00:00Z", "2025-01-32T00:00:00Z",
    "2025-01-00T00:00:00Z", "2025-02-30T00:00:00Z", "2024-02-29T00:00:00Z", "2025-01-01T24:00:00Z",
    "2025-01-01T24:60:60Z", "2025-01-01T23:59:60Z", "2025-01-01T23:59:61Z", "2025-01-01T00:00:00+99:99",
    "2025-01-01T00:00:00-99:99", "2025-01-01T00:00:00+14:00", "2025-01-01T00:00:00-12:00",
    "2025-01-01T00:00:00+2400", "2025-01-01T00:00:00." + "9" * 30 + "Z",
    "2025-01-01T00:00:00." + "0" * 30 + "1Z", "2025-01-01T00:00:00.123456789Z",
    "+275760-09-13T00:00:00Z", "275760-09-13T00:00:00Z", "-000001-01-01T00:00:00Z",
    "100000-01-01T00:00:00Z", "294276-12-31T23:59:59Z", "294277-01-01T00:00:00Z",
    "5874897-12-31T00:00:00Z", "4714-11-24T00:00:00Z BC", "4714-11-23T00:00:00Z BC",
    "2025-01-01T00:00:00Z BC", "2025-01-01 00:00:00", "2025-01-01T00:00:00", "20250101T000000Z",
    "2025-W01-1", "2025-001", "1e10", "-1", "0", "9223372036854775807", "now", "today", "tomorrow",
    "infinity", "-infinity", "epoch", "allballs", "NaN", "", " ", "2025-01-01T00:00:00\u0000Z",
    "\uff12\uff10\uff12\uff15-01-01T00:00:00Z", "2025-01-01T00:00:00Z'; SELECT 1; --",
]
# Strings that look like ids but are not.
GARBAGE_IDS = [
    "", " ", "not-a-uuid", "1", "-1", "0", "null", "undefined", "../", "..", ".", "%00", "%2e%2e",
    "\u0000", "9" * 40, "x" * 5000, "\U0001f600" * 36, "' OR '1'='1", "$(id)", "<script>", "g" * 36,
    "00000000-0000-0000-0000-00000000000", "00000000-0000-0000-0000-0000000000000",
    "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
]
LOOKALIKES = {
    "-": ["\u2010", "\u2011", "\u2212", "\uff0d", "\u2013"],
    "a": ["\u0430", "\uff41"], "b": ["\u0184", "\uff42"], "c": ["\u0441", "\uff43"],
    "e": ["\u0435", "\uff45"], "f": ["\uff46"], "d": ["\u0501", "\uff44"],
    "0": ["\uff10", "\u0660", "\u06f0", "O", "\u0966"], "1": ["\uff11", "l", "\u0661", "\u00b9"],
    "2": ["\uff12", "\u0662"], "3": ["\uff13", "\u0663"], "4": ["\uff14"], "5": ["\uff15"],
    "6": ["\uff16"], "7": ["\uff17", "\u0667"], "8": ["\uff18"], "9": ["\uff19", "\u0669"],
}
CONTENT_TYPES = [
    "application/json; charset=utf-8", "APPLICATION/JSON", "application/json;charset=UTF-16",
    "application/problem+json", "application/vnd.example+json; v=1", "text/plain", "text/json",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=----x", "", " ",
    "application/", "*/*", "json", "application/json, text/plain", "\U0001f600/json",
    "application/json; " + "a=b;" * 2000, "application/json; charset=latin1", "application/jsonx",
    "application/json\u00e9", "application/xml",
]
PATHS = [
    "a.png", "uploads/report.pdf", "dir/sub/file.txt", "", " ", "javascript:alert(1)",
    "JaVaScRiPt:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)", "javascript%3Aalert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "vbscript:msgbox(1)",
    "//evil.example/x.png", "\\\\evil\\share\\x", "../../../etc/passwd", "a/../../b", "..",
    "..%2f..%2fetc%2fpasswd", "%2e%2e/%2e%2e/etc/passwd", "/etc/passwd", "file:///etc/passwd",
    "http://example.com/y.png", "https://example.com/y.png", "https://", "https:///x", "HTTPS://x/y",
    "https://user:pw@example.com/", "C:\\Windows\\win.ini", "a" * 1024, "a" * 1025,
    "\U0001f600" * 1024, "\U0001f600" * 1025, "a\u0000b", "a\u0001b", "a\nb", "a\r\nb", "a\u007fb",
    "\u202egnp.exe", "%00", "?x=1#y", "a b", "<script>alert(1)</script>",
    "'; DROP TABLE messages; --", "$(reboot)", "\ud800", "~/x", ".", "./a", "a/./b", "a//b",
]
MIME_TYPES = [
    "image/png", "", "text/html", "a" * 255, "a" * 256, "application/json; charset=utf-8",
    "x/y\u0000", "\n", "\U0001f600" * 255, "*/*", "image/", "/png", "image/png; " + "a=b; " * 100,
    "image png", "\u00e9/\u00e9", "text/plain\r\nX-Injected: 1",
]


# --- JSON with raw numbers and duplicate keys ------------------------------------------------------

class Raw:
    """JSON text inserted verbatim (numbers no decoder can hold, literals, broken tokens)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


class Pairs:
    """A JSON object written with its keys in this order, duplicates included."""

    __slots__ = ("pairs",)

    def __init__(self, pairs):
        self.pairs = list(pairs)


def to_json(value, ascii_only: bool = True) -> str:
    if isinstance(value, Raw):
        return value.text
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else "1e999"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=ascii_only)
    if isinstance(value, Pairs):
        items = value.pairs
    elif isinstance(value, dict):
        items = value.items()
    else:
        return "[" + ",".join(to_json(v, ascii_only) for v in value) + "]"
    return "{" + ",".join(to_json(k, ascii_only) + ":" + to_json(v, ascii_only) for k, v in items) + "}"


def utf8(text) -> bytes:
    """Text as bytes; lone surrogates become their (invalid) 3-byte forms, on purpose."""
    return text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")


def b64url(data: bytes, pad: bool = False) -> str:
    text = base64.urlsafe_b64encode(data).decode("ascii")
    return text if pad else text.rstrip("=")


def lenient_b64decode(text: str):
    t = text.replace("+", "-").replace("/", "_").rstrip("=")
    try:
        return base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))
    except (ValueError, binascii.Error):
        return None


# --- a raw HTTP/1.1 client ---------------------------------------------------------------------------
# http.client refuses to send much of what we want to send (control bytes, non-ASCII targets), so
# requests are written byte for byte; one connection per request (`Connection: close`).

class Request:
    __slots__ = ("op", "method", "target", "headers", "body", "chunks", "meta")

    def __init__(self, op, method, target, headers=(), body=None, chunks=None, meta=None):
        self.op = op
        self.method = method
        self.target = target
        self.headers = list(headers)
        self.body = body
        self.chunks = chunks  # chunk sizes: send the body with Transfer-Encoding: chunked
        self.meta = meta or {}


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def json(self):
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None


class TransportError(Exception):
    def __init__(self, kind, detail=""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


TOKEN_BYTES = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def wire_doubts(req: Request):
    """Why this request may not be valid HTTP/1.1 on the wire (a server may refuse it by closing)."""
    doubts = []
    method = utf8(req.method)
    if not method or any(b not in TOKEN_BYTES for b in method):
        doubts.append("method not a token")
    target = utf8(req.target)
    if any(b < 0x21 or b > 0x7E for b in target):
        doubts.append("request-target bytes")
    size = len(target)
    for name, value in req.headers:
        nb, vb = utf8(name), utf8(value)
        if not nb or any(b not in TOKEN_BYTES for b in nb):
            doubts.append("header name")
        if any((b < 0x20 and b != 0x09) or b == 0x7F for b in vb):
            doubts.append("header control bytes")
        size += len(nb) + len(vb) + 4
    if size > 60 * 1024:
        doubts.append("header size")
    if req.body is not None and len(req.body) > MAX_BODY:
        doubts.append("body over the limit")
    return doubts


def wire_bytes(req: Request, host: bytes) -> bytes:
    lines = [utf8(req.method) + b" " + utf8(req.target) + b" HTTP/1.1", b"Host: " + host]
    for name, value in req.headers:
        lines.append(utf8(name) + b": " + utf8(value))
    body = b""
    if req.body is not None:
        if req.chunks:
            lines.append(b"Transfer-Encoding: chunked")
            parts, rest, sizes = [], req.body, list(req.chunks)
            while rest:
                n = max(1, sizes.pop(0) if sizes else len(rest))
                parts.append(b"%x\r\n" % len(rest[:n]) + rest[:n] + b"\r\n")
                rest = rest[n:]
            body = b"".join(parts) + b"0\r\n\r\n"
        else:
            lines.append(b"Content-Length: %d" % len(req.body))
            body = req.body
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class _Reader:
    def __init__(self, sock, deadline):
        self.sock, self.deadline, self.buf = sock, deadline, b""

    def _more(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TransportError("timeout", "no complete response in time")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TransportError("timeout", "no complete response in time") from None
        except ConnectionResetError:
            raise TransportError("reset", "connection reset by the server") from None
        except OSError as error:
            raise TransportError("socket", str(error)) from None
        if not data:
            raise EOFError
        self.buf += data

    def until(self, marker):
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + len(marker):]
                return out
            self._more()

    def exactly(self, n):
        while len(self.buf) < n:
            self._more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def rest(self):
        try:
            while True:
                self._more()
        except EOFError:
            pass
        out, self.buf = self.buf, b""
        return out


def http_exchange(addr, data: bytes, timeout: float, head_only: bool = False) -> Response:
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection(addr, timeout=timeout)
    except ConnectionRefusedError:
        raise TransportError("refused", "connection refused") from None
    except socket.timeout:
        raise TransportError("timeout", "connect timed out") from None
    except OSError as error:
        raise TransportError("socket", str(error)) from None
    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server may answer (413, 400) and close before it read everything: read on
        reader = _Reader(sock, deadline)
        status = None
        try:
            while True:
                head = reader.until(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                parts = lines[0].split(b" ", 2)
                if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
                    raise TransportError("malformed-response", repr(lines[0][:80]))
                status = int(parts[1])
                headers = []
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    headers.append((name.strip().lower().decode("latin-1"), value.strip().decode("latin-1")))
                if 100 <= status < 200 and status != 101:
                    continue  # 100 Continue: the real answer follows
                break
            fields = dict(headers)
            if head_only or status in (204, 304):
                body = b""
            elif status == 200 and fields.get("content-type", "").startswith("text/event-stream"):
                # A live stream that opened: it only ends when the server closes it, so its
                # head is the whole answer judged here.
                body = b""
            elif "chunked" in fields.get("transfer-encoding", "").lower():
                pieces = []
                while True:
                    size_line = reader.until(b"\r\n")
                    size = int(size_line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while reader.until(b"\r\n"):
                            pass
                        break
                    pieces.append(reader.exactly(size))
                    reader.exactly(2)
                body = b"".join(pieces)
            elif "content-length" in fields:
                body = reader.exactly(int(fields["content-length"]))
            else:
                body = reader.rest()
        except EOFError:
            if reader.buf or status is not None:
                raise TransportError("truncated", "the connection closed in the middle of a response") from None
            raise TransportError("closed", "the connection closed without a response") from None
        except ValueError as error:
            raise TransportError("malformed-response", str(error)) from None
        return Response(status, headers, body)


def show_bytes(data, limit=400) -> str:
    data = utf8(data)
    text = data[:limit].decode("utf-8", "backslashreplace")
    text = "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)
    return text + (f"... ({len(data)} bytes)" if len(data) > limit else "")


# --- the hunt ------------------------------------------------------------------------------------------

class SetupError(Exception):
    pass


class SteadyRandom(random.Random):
    """choice and randrange take exactly one draw whatever the size of what they pick from, so that
    two runs with the same seed stay in step although the server's data (ids, cursor bytes, pool
    sizes) differ between runs."""

    def choice(self, seq):
        return seq[int(self.random() * len(seq))]

    def randrange(self, start, stop=None, step=1):
        if stop is None:
            start, stop = 0, start
        return start + step * int(self.random() * max(0, (stop - start + step - 1) // step))

    def randint(self, a, b):
        return self.randrange(a, b + 1)


class Hunt:
    def __init__(self, args):
        self.args = args
        self.rng = SteadyRandom(args.seed)
        self.salt = uuid.uuid4().int  # fresh ids each run (the database is shared); choices stay seeded
        parsed = urllib.parse.urlsplit(args.url)
        self.addr = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.host = f"{self.addr[0]}:{self.addr[1]}".encode()
        self.secret = args.jwt_secret.encode()
        self.lock = threading.Lock()
        self.statuses = collections.Counter()
        self.by_op = collections.Counter()
        self.op_status = collections.defaultdict(collections.Counter)
        self.tolerated = collections.Counter()
        self.transport = collections.Counter()
        self.failures = []
        self.sent = 0
        self.phase_counts = collections.Counter()
        self.dead = False
        self.retried = 0
        # pools of real data
        self.channels = []
        self.messages = {}  # id -> {"channel", "author", "parent", "version", "deleted"}
        self.by_channel = collections.defaultdict(list)
        self.cursors = []  # (channel, scope, value); scope: "timeline" or a root id
        self.inf_cursors = []
        self.timestamps = []
        self.tokens = {}
        self.limits = {"max_content_length": 4000, "max_attachments": 10, "max_page_size": 100,
                       "max_attachment_path_length": 1024, "max_idempotency_key_length": 255}

    # --- ids and identities ------------------------------------------------------------------------

    def fresh_uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128) ^ self.salt, version=4))

    def token(self, user, moderator=False):
        now = int(time.time())
        key = (user, moderator)
        cached = self.tokens.get(key)
        if cached and now - cached[0] < 240:
            return cached[1]
        claims = {"sub": user, "iss": self.args.issuer, "aud": self.args.audience, "iat": now, "nbf": now,
                  "exp": now + 600}
        if moderator:
            claims["roles"] = ["moderator"]
        tok = self.jwt({"alg": "HS256", "typ": "JWT"}, claims)
        self.tokens[key] = (now, tok)
        return tok

    def jwt(self, header, claims, secret=None, signature=None) -> str:
        h = b64url(utf8(header if isinstance(header, (str, bytes)) else to_json(header)))
        p = b64url(utf8(claims if isinstance(claims, (str, bytes)) else to_json(claims)))
        if signature is None:
            signature = b64url(hmac.new(secret or self.secret, (h + "." + p).encode(), hashlib.sha256).digest())
        return h + "." + p + "." + signature

    # --- generic values ---------------------------------------------------------------------------

    def edge_int(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.35:
            return rng.choice(WIDTH_EDGES)
        if r < 0.62:
            return rng.choice(INT_EDGES)
        if r < 0.76:
            value = (1 << rng.randrange(0, 70)) + rng.randint(-2, 2)
            return str(value if rng.random() < 0.7 else -value)
        if r < 0.84:
            return str(rng.randint(-10, 300))
        if r < 0.9:
            return rng.choice("123456789") + "".join(rng.choice("0123456789") for _ in range(rng.randrange(10, 400)))
        return rng.choice(INT_LOOKALIKES)

    def unicode_text(self, n) -> str:
        rng = self.rng
        out = []
        for _ in range(n):
            block = rng.random()
            if block < 0.3:
                cp = rng.randrange(0x20, 0x7F)
            elif block < 0.5:
                cp = rng.randrange(0x80, 0x800)
            elif block < 0.75:
                cp = rng.randrange(0x800, 0xD800)
            elif block < 0.8:
                cp = rng.randrange(0xE000, 0x10000)
            elif block < 0.95:
                cp = rng.randrange(0x10000, 0x110000)
            else:
                cp = rng.randrange(0, 0x20)
            out.append(chr(cp))
        return "".join(out)

    def uuid_variant(self, u: str) -> str:
        rng = self.rng
        k = rng.randrange(34)
        if k == 0:
            return u.upper()
        if k == 1:
            return u.replace("-", "")
        if k == 2:
            return u.replace("-", "").upper()
        if k == 3:
            return "{" + u + "}"
        if k == 4:
            return "urn:uuid:" + u
        if k == 5:
            return NIL_UUID
        if k == 6:
            return MAX_UUID
        if k == 7:
            return u[:-1]
        if k == 8:
            return u + rng.choice("0af-")
        if k == 9:
            return u[:8] + u[9:]
        if k == 10:
            return "".join(c.upper() if rng.random() < 0.5 else c for c in u)
        if k == 11:
            return rng.choice([" ", "\t", "\u00a0", "\u3000"]) + u
        if k == 12:
            return u + rng.choice([" ", "\t", "\n", "\u00a0", "\u200b"])
        if k in (13, 14):
            chars = list(u)
            for i in rng.sample(range(len(chars)), rng.randint(1, 4) if k == 13 else len(chars)):
                if chars[i] in LOOKALIKES:
                    chars[i] = rng.choice(LOOKALIKES[chars[i]])
            return "".join(chars)
        if k == 15:
            return "".join("%%%02X" % ord(c) for c in u)
        if k == 16:
            return u.replace("-", "%2D")
        if k == 17:
            return u[:-1] + rng.choice("gGzZ!\u00e9")
        if k == 18:
            return u + "\u0000"
        if k == 19:
            return u + "%00"
        if k == 20:
            return u + u
        if k == 21:
            return u.replace("-", rng.choice(["_", ":", ".", " ", ""]))
        if k == 22:
            return "0x" + u.replace("-", "")
        if k == 23:
            return str(uuid.UUID(int=self.rng.getrandbits(128)))  # any version and variant nibble
        if k == 24:
            return u[:8] + "-" + u[9:13] + "--" + u[14:]
        if k == 25:
            return u + "/.."
        if k == 26:
            return "../" + u
        if k == 27:
            return u.upper().replace("-", "")[:31]
        if k == 28:
            return "(" + u + ")"
        if k == 29:
            return u.encode().hex()
        if k in (30, 31):
            try:
                raw = uuid.UUID(u)
            except ValueError:
                return u[::-1]
            return str(raw.int) if k == 30 else base64.b64encode(raw.bytes).decode()
        if k == 32:
            return u[:rng.randrange(0, 36)]
        return rng.choice(GARBAGE_IDS)

    def seg(self, text: str) -> str:
        """A path segment: percent-encoded mostly, sometimes leniently, rarely raw."""
        r = self.rng.random()
        if r < 0.8:
            return urllib.parse.quote(text, safe="", errors="surrogatepass")
        if r < 0.93:
            return urllib.parse.quote(text, safe="{}:@!$&'()*+,;=~%", errors="surrogatepass")
        return text

    def query(self, params) -> str:
        """A query string; params are (name, value) with value None for a bare name."""
        if not params:
            return ""
        style = self.rng.choice(["pct", "pct", "pct", "plus", "lenient", "raw"])

        def enc(text):
            if style == "pct":
                return urllib.parse.quote(text, safe="-_.~", errors="surrogatepass")
            if style == "plus":
                return urllib.parse.quote_plus(text, safe="-_.~", errors="surrogatepass")
            if style == "lenient":
                return urllib.parse.quote(text, safe="-_.~:/?@!$'()*,;={}|[]", errors="surrogatepass")
            return text

        return "?" + "&".join(enc(n) if v is None else enc(n) + "=" + enc(v) for n, v in params)

    # --- pools --------------------------------------------------------------------------------------

    def remember(self, obj, channel_hint=None):
        if not isinstance(obj, dict):
            return
        mid = obj.get("id")
        channel = obj.get("channel_id") or obj.get("thread_id") or channel_hint
        author = obj.get("author_id") or obj.get("user_id")
        if not (isinstance(mid, str) and isinstance(channel, str) and isinstance(author, str)):
            return
        known = self.messages.get(mid)
        record = {"channel": channel, "author": author,
                  "parent": obj.get("parent_id") if isinstance(obj.get("parent_id"), str) else None,
                  "version": obj.get("version") if isinstance(obj.get("version"), int) else
                  (known or {}).get("version", 1),
                  "deleted": bool(obj.get("deleted_at")) or (known or {}).get("deleted", False)}
        if known is None:
            self.by_channel[channel].append(mid)
            if channel not in self.channels and len(self.channels) < 40:
                self.channels.append(channel)
        self.messages[mid] = record
        created = obj.get("created_at")
        if isinstance(created, str) and len(self.timestamps) < 300:
            self.timestamps.append(created)

    def add_cursor(self, channel, scope, value):
        if not isinstance(value, str):
            return
        item = (channel, scope, value)
        if len(self.cursors) < 400:
            self.cursors.append(item)
        else:
            self.cursors[self.rng.randrange(len(self.cursors))] = item

    def observe(self, req: Request, res: Response):
        meta = req.meta
        op = req.op
        if res.status == 204 and op in ("v1.delete", "inf.delete") and meta.get("message") in self.messages:
            self.messages[meta["message"]]["deleted"] = True
            return
        if res.status not in (200, 201):
            return
        ctype = res.header("content-type") or ""
        if "json" not in ctype:
            return
        obj = res.json()
        if not isinstance(obj, dict):
            return
        channel = meta.get("channel")
        if isinstance(obj.get("items"), list):
            for item in obj["items"]:
                self.remember(item, channel)
            page = obj.get("page")
            if isinstance(page, dict) and channel:
                for key in ("before", "after"):
                    self.add_cursor(channel, meta.get("scope", "timeline"), page.get(key))
            nxt = obj.get("next_cursor")
            if isinstance(nxt, str):
                if len(self.inf_cursors) < 200:
                    self.inf_cursors.append(nxt)
                else:
                    self.inf_cursors[self.rng.randrange(200)] = nxt
        else:
            self.remember(obj, channel)

    def channel_messages(self, channel):
        return self.by_channel.get(channel) or []

    def pick_message(self, channel, want=None):
        """A message id for a path: mostly real in this channel, sometimes foreign, unknown or malformed."""
        rng = self.rng
        ids = self.channel_messages(channel) if channel else []
        if want == "root-with-replies":
            roots = {self.messages[m]["parent"] for m in ids if self.messages[m]["parent"]}
            if roots and rng.random() < 0.7:
                m = rng.choice(sorted(roots))
                return m, m
        if want == "live-own" and ids and rng.random() < 0.8:
            live = [m for m in ids if not self.messages[m]["deleted"]]
            if live:
                m = rng.choice(live)
                return m, m
        r = rng.random()
        if r < 0.65 and ids:
            m = rng.choice(ids)
            return m, m
        if r < 0.73 and self.messages:
            m = rng.choice(list(self.messages))
            return m, m
        if r < 0.8:
            m = self.fresh_uuid()
            return m, m
        base = rng.choice(ids) if ids else self.fresh_uuid()
        return self.seg(self.uuid_variant(base) if r < 0.93 else rng.choice(GARBAGE_IDS)), None

    def pick_channel(self):
        rng = self.rng
        r = rng.random()
        if r < 0.8 and self.channels:
            c = rng.choice(self.channels)
            return c, c
        if r < 0.88:
            c = self.fresh_uuid()
            return c, c
        c = rng.choice(self.channels) if self.channels else self.fresh_uuid()
        return self.seg(self.uuid_variant(c) if r < 0.96 else rng.choice(GARBAGE_IDS)), c

    # --- cursors -------------------------------------------------------------------------------------

    def b64_any(self, data: bytes) -> str:
        r = self.rng.random()
        if r < 0.6:
            return b64url(data)
        if r < 0.75:
            return b64url(data, pad=True)
        if r < 0.9:
            return base64.b64encode(data).decode()
        return base64.b64encode(data).decode().rstrip("=")

    def mutate_digits(self, text: str) -> str:
        edge, runs = self.edge_int(), list(re.finditer(r"\d+", text))
        m = self.rng.choice(runs or [None])
        return text + edge if m is None else text[:m.start()] + edge + text[m.end():]

    def cursor_plaintext(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.6:
            return "s1:" + self.edge_int()
        if r < 0.75:
            return "s2:" + rng.choice([self.edge_int(), self.edge_int() + ":" + self.edge_int(),
                                       self.fresh_uuid() + ":" + self.edge_int(), "", self.unicode_text(8)])
        return rng.choice([
            "s1:", "s1", "S1:5", "s1:5:", "s1:5:abc", "s1:" + self.edge_int() + "\u0000", "s0:1", "s9:1",
            "s1:s1:1", ":", "s1: 1", "s1:+1", "s1:-0", "s1:" + "9" * 70, "s1:" + self.edge_int() + "|" +
            self.fresh_uuid(), "s2:" + (rng.choice(self.channels) if self.channels else NIL_UUID) + ":" +
            self.edge_int(), "s1:" + self.edge_int() + "." + self.edge_int(), "", "s1:0x10", "s1:1e3",
        ])

    def mutate_cursor(self, text: str) -> str:
        rng = self.rng
        raw = lenient_b64decode(text)
        op = rng.randrange(13)
        if op == 0 and raw:
            data = bytearray(raw)
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(data))
                data[i] ^= 1 << rng.randrange(8)
            return b64url(bytes(data))
        if op == 1 and text:
            i = rng.randrange(len(text))
            return text[:i] + rng.choice("ABCxyz019-_+/=.!~\u00e9 %") + text[i + 1:]
        if op == 2 and text:
            return text[:rng.randrange(len(text))]
        if op == 3:
            return text + "".join(rng.choice("ABCDEFGHabcdefgh0123456789-_") for _ in range(rng.randint(1, 40)))
        if op == 4 and raw is not None:
            return b64url(raw + bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 40))))
        if op == 5:
            return text + "=" * rng.randint(1, 3)
        if op == 6:
            return text.replace("-", "+").replace("_", "/")
        if op == 7:
            return text.swapcase()
        if op == 8:
            return text * rng.randint(2, 8)
        if op == 9 and self.cursors:
            other = rng.choice(self.cursors)[2]
            return text[:rng.randrange(len(text) + 1)] + other[rng.randrange(len(other) + 1):]
        if op == 10 and raw is not None:
            plain = raw.decode("utf-8", "surrogateescape")
            return self.b64_any(self.mutate_digits(plain).encode("utf-8", "surrogateescape"))
        if op == 11 and raw:
            i = rng.randrange(len(raw) + 1)
            return b64url(raw[:i] + bytes([rng.getrandbits(8)]) + raw[i:])
        if op == 12 and raw:
            i = rng.randrange(len(raw))
            return b64url(raw[:i] + raw[i + 1:])
        return text[::-1]

    def anchor_value(self, channel, scope) -> str:
        """A before/after/around value: real, mutated or synthesized cursors, message ids, garbage."""
        rng = self.rng
        r = rng.random()
        same = [c for c in self.cursors if c[0] == channel and c[1] == scope]
        if r < 0.1 and same:
            return rng.choice(same)[2]
        if r < 0.18 and self.cursors:
            return rng.choice(self.cursors)[2]  # another channel's or scope's (swapped)
        if r < 0.36 and self.cursors:
            return self.mutate_cursor(rng.choice(same or self.cursors)[2])
        if r < 0.62:
            return self.b64_any(utf8(self.cursor_plaintext()))
        if r < 0.68:
            return self.b64_any(bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 80))))
        if r < 0.84:
            ids = self.channel_messages(channel)
            rr = rng.random()
            if rr < 0.45 and ids:
                return rng.choice(ids)
            if rr < 0.6 and self.messages:
                return rng.choice(list(self.messages))
            if rr < 0.7:
                return self.fresh_uuid()
            return self.uuid_variant(rng.choice(ids) if ids else self.fresh_uuid())
        if r < 0.91:
            return self.edge_int()
        return rng.choice(GARBAGE_IDS + ["A" * 64, "A" * 65, "A" * 1000, self.unicode_text(20),
                                         rng.choice(self.inf_cursors) if self.inf_cursors else "x|y"])

    def page_params(self, channel, scope):
        rng = self.rng
        params = []
        if rng.random() < 0.5:
            params.append(("limit", str(rng.randint(1, 100)) if rng.random() < 0.5 else self.edge_int()))
        r = rng.random()
        count = 0 if r < 0.15 else 1 if r < 0.9 else rng.randint(2, 3)
        for name in rng.sample(["before", "after", "around"], count):
            params.append((name, self.anchor_value(channel, scope)))
        extra = rng.random()
        if extra < 0.04 and params:
            params.append(rng.choice(params))  # the same parameter twice
        elif extra < 0.07:
            params.append((rng.choice(["before", "after", "around", "limit"]), ""))
        elif extra < 0.09:
            params.append((rng.choice(["before", "after", "around", "limit"]), None))
        elif extra < 0.11:
            params.append((rng.choice(["After", "BEFORE", "after[]", "cursor", "limit ", "\u0000"]), self.edge_int()))
        rng.shuffle(params)
        return params

    def inf_cursor(self) -> str:
        rng = self.rng
        r = rng.random()
        ids = list(self.messages)
        real_id = rng.choice(ids) if ids else self.fresh_uuid()
        real_ts = rng.choice(self.timestamps) if self.timestamps else "2025-01-31T12:34:56.789Z"
        if r < 0.15 and self.inf_cursors:
            return rng.choice(self.inf_cursors)
        if r < 0.3 and self.inf_cursors:
            c = rng.choice(self.inf_cursors)
            op = rng.randrange(4)
            if op == 0:
                return self.mutate_digits(c)
            if op == 1:
                return c[:rng.randrange(len(c))]
            if op == 2:
                return c + rng.choice(["|", "|x", "Z", "\u0000", c])
            i = rng.randrange(len(c))
            return c[:i] + rng.choice("0912-:|TZ.+ \u0663") + c[i + 1:]
        if r < 0.6:
            ts = rng.choice(TS_EDGES) if rng.random() < 0.7 else self.mutate_digits(real_ts)
            return ts + "|" + (real_id if rng.random() < 0.6 else self.fresh_uuid())
        if r < 0.75:
            return real_ts + "|" + self.uuid_variant(real_id)
        if r < 0.87:
            ts, i = rng.choice(TS_EDGES + [real_ts]), real_id
            return rng.choice([ts, "|" + i, ts + "|", "|", "||", ts + "||" + i, ts + "|" + i + "|" + i,
                               i + "|" + ts, ts + "%7C" + i, ts + "|" + i + "\u0000", ts + " | " + i])
        return rng.choice([self.edge_int(), self.unicode_text(rng.randrange(1, 60)), "x" * 5000,
                           self.b64_any(utf8(self.cursor_plaintext())), rng.choice(GARBAGE_IDS)])

    # --- headers ---------------------------------------------------------------------------------

    def hostile_auth(self, kind=None):
        """(kind, Authorization value or None). Tokens are correctly signed unless the kind is
        about the signature, so that their claims reach the decoder."""
        rng = self.rng
        now = int(time.time())
        user = rng.choice(self.user_ids)
        base = {"sub": user, "iss": self.args.issuer, "aud": self.args.audience, "iat": now, "nbf": now,
                "exp": now + 600}
        good = {"alg": "HS256", "typ": "JWT"}
        kind = kind or rng.choice(HOSTILE_TOKEN_KINDS)

        def with_claim(name, value):
            return Pairs([(k, v) for k, v in base.items() if k != name] + [(name, value)])

        def number(edge_list=None):
            return Raw(rng.choice(edge_list or TIME_EDGES))

        tok = None
        if kind == "alg-none":
            tok = self.jwt({"alg": rng.choice(["none", "None", "NONE", "nOnE"]), "typ": "JWT"}, base, signature="")
        elif kind == "alg-none-signed":
            tok = self.jwt({"alg": "none"}, base)
        elif kind == "alg-other":
            tok = self.jwt({"alg": rng.choice(["HS512", "HS384", "RS256", "ES256", "PS256", "EdDSA", "hs256",
                                              "HS256 ", "", "HS256\u0000"])}, base)
        elif kind == "alg-type":
            tok = self.jwt(Pairs([("alg", Raw(rng.choice(["123", "null", "[\"HS256\"]", "{}", "true"])))]), base)
        elif kind == "alg-dup":
            tok = self.jwt(Pairs([("alg", "none"), ("alg", "HS256")]), base)
        elif kind == "header-extra":
            tok = self.jwt({"alg": "HS256", "kid": rng.choice(["../../dev/null", "x" * 5000, "", "\u0000"]),
                            "jku": "http://evil.example/jwks", "crit": ["exp", "x"], "x5u": "file:///etc/passwd",
                            "cty": "JWT", "typ": rng.choice(["JWT", "", "x" * 1000, None])}, base)
        elif kind == "exp":
            tok = self.jwt(good, with_claim("exp", number()))
        elif kind == "nbf":
            tok = self.jwt(good, with_claim("nbf", number()))
        elif kind == "iat":
            tok = self.jwt(good, with_claim("iat", number()))
        elif kind == "times-all":
            tok = self.jwt(good, Pairs([("sub", user), ("iss", self.args.issuer), ("aud", self.args.audience),
                                        ("exp", number()), ("nbf", number()), ("iat", number())]))
        elif kind == "sub":
            tok = self.jwt(good, with_claim("sub", rng.choice([
                "", "admin", user.upper(), "{" + user + "}", "urn:uuid:" + user, user.replace("-", ""),
                NIL_UUID, MAX_UUID, "x" * 20000, Raw("123"), Raw("null"), Raw("[]"), Raw("{}"), user + "\u0000",
                " " + user, self.uuid_variant(user), "\ud800",
            ])))
        elif kind == "aud":
            tok = self.jwt(good, with_claim("aud", rng.choice([
                [], [self.args.audience], ["x"] * 1000 + [self.args.audience], Raw("123"), Raw("null"),
                [Raw("null")], [Raw("123")], [[self.args.audience]], "", self.args.audience.upper(),
                {"aud": self.args.audience},
            ])))
        elif kind == "iss":
            tok = self.jwt(good, with_claim("iss", rng.choice(["", "evil", Raw("1"), Raw("null"), [self.args.issuer],
                                                               self.args.issuer + "\u0000", "x" * 10000])))
        elif kind == "roles":
            tok = self.jwt(good, with_claim("roles", rng.choice([
                "moderator", Raw("1"), [Raw("1")], [["moderator"]], ["moderator"] * 1000, {"moderator": True},
                Raw("null"), [], ["MODERATOR"], ["moderator\u0000"], ["x" * 5000],
            ])))
        elif kind == "missing-claim":
            drop = rng.choice(["sub", "exp", "iss", "aud", "nbf"])
            tok = self.jwt(good, {k: v for k, v in base.items() if k != drop})
        elif kind == "dup-claims":
            tok = self.jwt(good, Pairs(list(base.items()) + [("sub", "not-a-uuid"), ("exp", Raw("0"))]))
        elif kind == "payload-shape":
            tok = self.jwt(good, rng.choice([
                "[]", "null", "1", "\"x\"", "{", "{}", "{\"sub\":", b"\xff\xfe{}", "\u0000",
                "[" * 5000 + "]" * 5000, "{\"a\":" * 3000 + "1" + "}" * 3000,
                to_json(base)[:-1] + ",\"pad\":\"" + "x" * 50000 + "\"}",
            ]))
        elif kind == "header-shape":
            tok = self.jwt(rng.choice(["[]", "null", "{", b"\xff", "{\"alg\":\"HS256\"", "[" * 3000 + "]" * 3000]),
                           base)
        elif kind == "signature":
            t = self.jwt(good, base)
            head, _, sig = t.rpartition(".")
            tok = head + "." + rng.choice([
                "", sig[:-1], sig[:10], sig + "A", sig + "==", sig.replace("-", "+").replace("_", "/"),
                b64url(os.urandom(32)), b64url(os.urandom(rng.choice([1, 31, 33, 64, 4096]))), "!!!!", sig[::-1],
                "A" * 20000,
            ])
        elif kind == "wrong-secret":
            tok = self.jwt(good, base, secret=rng.choice([b"", b"x", self.secret + b"x", self.secret[:-1]]))
        elif kind == "expired":
            tok = self.jwt(good, with_claim("exp", now - rng.choice([61, 3600, 10 ** 9])))
        elif kind == "not-yet":
            tok = self.jwt(good, with_claim("nbf", now + rng.choice([61, 3600, 10 ** 9])))
        elif kind == "structure":
            t = self.jwt(good, base)
            tok = rng.choice([
                "", ".", "..", "...", t + ".", t + ".x", "." + t, t.replace(".", "", 1), t.split(".")[0],
                ".".join(t.split(".")[:2]), t.replace(".", ".."), t + " " + t, t[:len(t) // 2],
                t.replace(".", "\u3002"), "a.b.c", "=.=.=", t + "\u0000", "\u00e9" + t,
            ])
        elif kind == "huge":
            t = self.jwt(good, base)
            tok = t + "A" * rng.choice([5000, 40000, 100000])
        elif kind == "framing":
            t = self.token(user)
            return kind, rng.choice([
                "Bearer", "Bearer ", "Bearer  " + t, "bearer " + t, "BEARER " + t, "Bearer\t" + t, "Bearer " + t + " ",
                "Bearer " + t + " x", "Basic dXNlcjpwYXNz", "Token " + t, t, "Bearer Bearer " + t, "",
                "Bearer " + t + "\u0000", "Bearer\u00a0" + t, "Bearer " + t + "," + t, " Bearer " + t,
            ])
        elif kind == "missing":
            return kind, None
        else:
            raise ValueError(kind)
        return kind, "Bearer " + tok

    def v1_auth(self, user=None, moderator=False):
        """Authorization header pairs for a v1 call: mostly a valid token, sometimes hostile ones."""
        rng = self.rng
        user = user or rng.choice(self.user_ids)
        r = rng.random()
        headers = []
        if r < 0.88:
            headers.append(("Authorization", "Bearer " + self.token(user, moderator)))
        else:
            _, value = self.hostile_auth()
            if value is not None:
                headers.append(("Authorization", value))
        if rng.random() < 0.03:
            headers.append(("Authorization", "Bearer " + self.token(rng.choice(self.user_ids))))
        if rng.random() < 0.04:
            headers.append(("X-User-Id", self.user_id_value(user)))
        return headers

    def user_id_value(self, user):
        rng = self.rng
        r = rng.random()
        if r < 0.5:
            return self.uuid_variant(user)
        if r < 0.8:
            return rng.choice(GARBAGE_IDS)
        return self.unicode_text(rng.randrange(1, 50))

    def inf_identity(self, user, read=False):
        """INF326 identity: a bearer token (INF326_AUTH=jwt, where an X-User-Id sent along must
        agree) and X-User-Id (INF326_AUTH=header); mostly both for the same user."""
        rng = self.rng
        headers = self.v1_auth(user) if rng.random() < 0.9 else []
        if not read or rng.random() < 0.3:
            headers += self.inf_user(user)
        return headers

    def inf_user(self, user):
        rng = self.rng
        r = rng.random()
        if r < 0.78:
            return [("X-User-Id", user)]
        if r < 0.9:
            return [("X-User-Id", self.user_id_value(user))]
        if r < 0.95:
            return []
        return [("X-User-Id", user), ("X-User-Id", rng.choice([user, rng.choice(self.user_ids), "x"]))]

    def misc_headers(self):
        rng = self.rng
        headers = []
        if rng.random() < 0.3:
            headers.append(("X-Request-ID", rng.choice([
                "req-%d" % rng.randrange(10 ** 6), "", " ", "x" * 128, "x" * 129, "x" * 10000, "x" * 70000,
                "a\u0001b", "a\u007fb", "\u00e9", "\U0001f600", "\u0000", "a\tb", "a b", "../../", "%00", "\u2028",
                self.unicode_text(rng.randrange(1, 200)),
            ])))
        if rng.random() < 0.08:
            headers.append(("Last-Event-ID", rng.choice([self.edge_int(), self.fresh_uuid(), "", "\u0000",
                                                        "x" * 5000, self.unicode_text(10)])))
        if rng.random() < 0.06:
            headers.append(("Accept", rng.choice(["*/*", "application/json", "text/event-stream", "", "x" * 3000,
                                                  "application/json;q=2"])))
        if rng.random() < 0.2:
            # Read as the client address when the service trusts a proxy (TRUSTED_PROXY_HOPS).
            headers.append(("X-Forwarded-For", rng.choice([
                "10.0.0.%d" % rng.randrange(256), "2001:db8::%x" % rng.randrange(1 << 16), "::", ":::::::::", "1.2.3.4, ",
                ", , ,", "2001:db8:1:2:3:4:5:6:7", "fe80::1%eth0", "1" * 45, "a" * 46, "::ffff:1.2.3.4", "",
                ", ".join("10.0.%d.%d" % (i, i) for i in range(rng.choice([2, 50, 2000]))),
                self.unicode_text(rng.randrange(1, 40)),
            ])))
        if rng.random() < 0.03:
            headers.append(("Expect", "100-continue"))
        if rng.random() < 0.03:
            headers.append((rng.choice(["X-\u00e9", "X Bad", "", ":", "X-Ok"]), rng.choice(["1", "\u0000", "v"])))
        if rng.random() < 0.02:
            headers.extend(("X-Many-%d" % i, "v") for i in range(rng.choice([100, 1000])))
        return headers

    def content_type(self, default="application/json"):
        rng = self.rng
        r = rng.random()
        if r < 0.75:
            return [("Content-Type", default)]
        if r < 0.85:
            return []
        if r < 0.97:
            return [("Content-Type", rng.choice(CONTENT_TYPES))]
        return [("Content-Type", "application/json"), ("Content-Type", rng.choice(CONTENT_TYPES))]

    def if_match(self, version):
        rng = self.rng
        r = rng.random()
        if r < 0.35:
            return '"%d"' % version
        if r < 0.45:
            return rng.choice(['W/"%d"' % version, str(version), '"%d"' % (version - 1), '"%d"' % (version + 1)])
        if r < 0.75:
            e = self.edge_int()
            return rng.choice(['"%s"' % e, 'W/"%s"' % e, e])
        return rng.choice(['*', '"', '""', 'W/', 'W/""', '"1", "2"', '"%d", *' % version, '"abc"', '"\u0663"',
                           '"' + "9" * 5000 + '"', "W/W/\"1\"", "\"1", "1\"", "\u0000", " ", '"-0"', '"0x1"'])

    def idempotency_key(self):
        rng = self.rng
        r = rng.random()
        if r < 0.6:
            return "k-%d" % rng.getrandbits(48)
        limit = self.limits["max_idempotency_key_length"]
        return rng.choice([
            "", " ", "x" * limit, "x" * (limit + 1), "\U0001f600" * limit, "\U0001f600" * (limit + 1), "x" * 10000,
            "\u0000", "a\u0000", "\t", "\u0001\u0002", "\u007f", "\u00e9", "../", self.edge_int(),
            self.unicode_text(rng.randrange(1, 300)), "k\r\n",
        ])

    # --- bodies -------------------------------------------------------------------------------------

    def content_value(self):
        rng = self.rng
        n = self.limits["max_content_length"]
        r = rng.random()
        if r < 0.35:
            return "hello %d" % rng.randrange(10 ** 6)
        if r < 0.45:
            users = self.user_ids + [self.fresh_uuid()]
            k = rng.choice([1, 2, 10, 100, 200])
            return " ".join("@" + (u if rng.random() < 0.6 else self.uuid_variant(u))
                            for u in (rng.choice(users) for _ in range(k)))
        if r < 0.55:
            return self.unicode_text(rng.randrange(1, 300))
        return rng.choice([
            "", " ", "\n", "\u0000", "a\u0000b", "x" * n, "x" * (n + 1), "\U0001f600" * n, "\U0001f600" * (n + 1),
            "e\u0301" * (n // 2), "e\u0301" * (n // 2 + 1), "\U0001f468\u200d\U0001f469\u200d\U0001f467" * (n // 5),
            "@" * n, "@" + "a" * 36, "@" + "0" * 36, "@" + NIL_UUID, "@{" + self.user_ids[0] + "}",
            "\ud800", "a\udfffb", "\uffff\ufffe", "\U0010ffff" * 100, "\u202e" * 10 + "abc", "\u200b" * n,
            "".join(chr(i) for i in range(1, 32)), "x" * 60000, "\r\n" * (n // 2), "\\u0000", "%00",
            Raw("1"), Raw("null"), Raw("true"), [], {}, Raw("1e400"),
        ])

    def type_value(self):
        return self.rng.choice(["text", "audio", "file", "TEXT", "", "image", "text\u0000", "x" * 1000, Raw("1"),
                                Raw("null"), Raw("true"), [], {}, " text", "\u0074ext", "t\u0435xt"])

    def size_value(self):
        r = self.rng.random()
        if r < 0.3:
            return self.rng.randint(0, 10 ** 6)
        return Raw(self.rng.choice(JSON_NUMBER_EDGES))

    def attachment(self):
        rng = self.rng
        if rng.random() < 0.05:
            return rng.choice(["a.png", Raw("null"), Raw("1"), [], [{"path": "a"}], {}])
        obj = {}
        if rng.random() < 0.95:
            obj["path"] = rng.choice(PATHS) if rng.random() < 0.8 else self.unicode_text(rng.randrange(1, 100))
        if rng.random() < 0.4:
            obj["name"] = rng.choice(["a.png", "", "x" * 255, "x" * 256, "\U0001f600" * 255, "\u0000",
                                      self.unicode_text(20), Raw("1"), Raw("null"), [], "a\nb"])
        if rng.random() < 0.4:
            obj["mime_type"] = rng.choice(MIME_TYPES + [Raw("1"), Raw("null"), []])
        if rng.random() < 0.5:
            obj["size"] = self.size_value()
        if rng.random() < 0.05:
            obj["extra"] = {"nested": [1, 2, {"x": None}]}
        return obj

    def attachments_value(self):
        rng = self.rng
        r = rng.random()
        if r < 0.05:
            return rng.choice([{}, "a.png", Raw("1"), Raw("null"), Raw("true")])
        m = self.limits["max_attachments"]
        count = rng.choice([0, 1, 1, 2, 3, m, m + 1, 100, 1000])
        return [self.attachment() for _ in range(count)]

    def parent_value(self, channel):
        rng = self.rng
        ids = self.channel_messages(channel)
        r = rng.random()
        if r < 0.45 and ids:
            roots = [m for m in ids if not self.messages[m]["parent"] and not self.messages[m]["deleted"]]
            return rng.choice(roots or ids)
        if r < 0.6 and ids:
            return rng.choice(ids)  # a reply or a deleted message: a reply to a reply is refused
        if r < 0.7 and self.messages:
            return rng.choice(list(self.messages))
        if r < 0.78:
            return self.fresh_uuid()
        if r < 0.92:
            return self.uuid_variant(rng.choice(ids) if ids else self.fresh_uuid())
        return rng.choice([Raw("1"), Raw("true"), [], {}, "", Raw("null")])

    def wrong_type(self):
        return self.rng.choice([Raw("1"), Raw("-1"), Raw("1e400"), Raw("true"), Raw("false"), [], {}, [Raw("null")],
                                {"a": "b"}, "", Raw("null")])

    def create_body(self, channel):
        rng = self.rng
        obj = {}
        if rng.random() < 0.9:
            obj["content"] = self.content_value()
        if rng.random() < 0.35:
            obj["type"] = self.type_value() if rng.random() < 0.5 else rng.choice(["text", "audio", "file"])
        if rng.random() < 0.3:
            obj["attachments"] = self.attachments_value()
        if rng.random() < 0.2:
            obj["parent_id"] = self.parent_value(channel)
        if rng.random() < 0.12:
            obj["client_message_id"] = self.idempotency_key() if rng.random() < 0.7 else self.wrong_type()
        if rng.random() < 0.05:
            obj[rng.choice(["unknown", "id", "seq", "author_id", "version", "\u0000", ""])] = self.wrong_type()
        if obj and rng.random() < 0.08:
            obj[rng.choice(sorted(obj))] = self.wrong_type()
        return obj

    def edit_body(self):
        rng = self.rng
        obj = {}
        r = rng.random()
        if r < 0.55:
            obj["content"] = self.content_value()
        elif r < 0.7:
            obj["attachments"] = self.attachments_value()
        elif r < 0.82:
            obj["content"] = self.content_value()
            obj["attachments"] = self.attachments_value()
        elif r < 0.9:
            obj = rng.choice([{}, {"content": Raw("null")}, {"attachments": Raw("null")}, {"other": 1}])
        else:
            obj[rng.choice(["content", "attachments"])] = self.wrong_type()
        return obj

    def inf_body(self, update=False):
        rng = self.rng
        obj = {}
        if rng.random() < (0.6 if update else 0.9):
            obj["content"] = self.content_value()
        if not update and rng.random() < 0.35:
            obj["type"] = self.type_value() if rng.random() < 0.5 else rng.choice(["text", "audio", "file", None])
        if rng.random() < 0.4:
            if rng.random() < 0.85:
                m = self.limits["max_attachments"]
                obj["paths"] = [rng.choice(PATHS) if rng.random() < 0.85 else self.unicode_text(30)
                                for _ in range(rng.choice([0, 1, 2, m, m + 1, 200]))]
            else:
                obj["paths"] = rng.choice([Raw("null"), "a.png", [Raw("1")], [[]], {}, [Raw("null")]])
        if obj and rng.random() < 0.08:
            obj[rng.choice(sorted(obj))] = self.wrong_type()
        return obj

    def encode_body(self, obj):
        """JSON bytes of obj: mostly clean, sometimes hostile (nesting, bad UTF-8, not JSON, sizes)."""
        rng = self.rng
        r = rng.random()
        if r < 0.8:
            text = to_json(obj, ascii_only=rng.random() < 0.5)
            try:
                return text.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate: keep this one valid, escaped
                return to_json(obj, ascii_only=True).encode("ascii")
        kind = rng.randrange(12)
        clean = to_json(obj, ascii_only=False)
        if kind == 0:
            n = rng.choice([64, 256, 513, 1000, 5000, 30000])
            return utf8('{"content":' + "[" * n + "]" * n + "}")
        if kind == 1:
            n = rng.choice([64, 256, 513, 1000, 5000, 10000])
            return utf8('{"content":"x","attachments":' + '{"a":' * n + "1" + "}" * n + "}")
        if kind == 2:
            data = bytearray(utf8(clean))
            bad = rng.choice([b"\xff", b"\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82",
                              b"\x80", b"\xf8\x88\x80\x80\x80", b"\x00"])
            i = rng.randrange(len(data) + 1)
            return bytes(data[:i]) + bad + bytes(data[i:])
        if kind == 3:
            return rng.choice([
                b"content=hello", b"", b"   ", b"null", b"[]", b"1", b'"s"', b"true", b"{", b"}", b'{"content":"a"',
                b'{"content":"a"}}', b'{"content":"a",}', b'{content:"a"}', b"{'content':'a'}",
                b'{"content":"a"} x', b'/*c*/{"content":"a"}', b'{"content":NaN}', b'{"content":"\\u"}',
                b'{"content":"\\ud800"}', b'{"content":"\\udc00\\ud800"}', b"\x00", bytes(rng.getrandbits(8) for _ in
                                                                                         range(rng.randrange(1, 200))),
                b'{"content":"a\\', b'{"content":"\x01"}', b'{"content" "a"}', b'{"content":"a" "b"}',
            ])
        if kind == 4:
            return utf8(to_json([obj] * rng.choice([1, 2, 1000])))[:MAX_BODY + 10]
        if kind == 5:
            return utf8(rng.choice(["1e400", "-0", "18446744073709551616", "0.1", "\"content\"", "false"]))
        if kind == 6 and isinstance(obj, dict) and obj:
            pairs = []
            for k, v in obj.items():
                pairs.append((k, v))
                if rng.random() < 0.6:
                    pairs.append((k, rng.choice([self.wrong_type(), self.content_value(), v])))
            rng.shuffle(pairs)
            return utf8(to_json(Pairs(pairs), ascii_only=False))
        if kind == 7:
            return b"\xef\xbb\xbf" + utf8(clean)
        if kind == 8:
            return clean.encode(rng.choice(["utf-16", "utf-16-le", "utf-16-be", "utf-32"]), "surrogatepass")
        if kind == 9 and isinstance(obj, dict):
            target = rng.choice([MAX_BODY - 1, MAX_BODY, MAX_BODY + 1, MAX_BODY + 1000, 2 * MAX_BODY])
            head = utf8(to_json(obj))[:-1]
            head += (b"" if head == b"{" else b",") + b'"_pad":"'
            return head + b"x" * max(0, target - len(head) - 2) + b'"}'
        if kind == 10:
            target = rng.choice([MAX_BODY, MAX_BODY + 1])
            data = utf8(clean)
            return data + b" " * max(0, target - len(data))
        return utf8(clean) + rng.choice([b"\x00", b"\n\n", b"garbage", b"{}"])

    def body_request(self, op, method, target, headers, obj, meta):
        body = self.encode_body(obj)
        chunks = None
        if self.rng.random() < 0.06:
            chunks = [self.rng.choice([1, 7, 100, 4096, 70000]) for _ in range(8)]
        return Request(op, method, target, headers, body, chunks, meta)

    # --- requests per endpoint ---------------------------------------------------------------------

    def v1_create(self):
        seg, channel = self.pick_channel()
        headers = self.v1_auth() + self.content_type() + self.misc_headers()
        if self.rng.random() < 0.35:
            headers.append(("Idempotency-Key", self.idempotency_key()))
        if self.rng.random() < 0.02:
            headers.append(("Idempotency-Key", self.idempotency_key()))
        return self.body_request("v1.create", "POST", f"/v1/channels/{seg}/messages", headers,
                                 self.create_body(channel), {"channel": channel})

    def v1_list(self):
        seg, channel = self.pick_channel()
        q = self.query(self.page_params(channel, "timeline"))
        return Request("v1.list", "GET", f"/v1/channels/{seg}/messages{q}", self.v1_auth() + self.misc_headers(),
                       meta={"channel": channel, "scope": "timeline"})

    def v1_replies(self):
        seg, channel = self.pick_channel()
        mseg, mid = self.pick_message(channel, want="root-with-replies")
        q = self.query(self.page_params(channel, mid))
        return Request("v1.replies", "GET", f"/v1/channels/{seg}/messages/{mseg}/replies{q}",
                       self.v1_auth() + self.misc_headers(), meta={"channel": channel, "scope": mid})

    def v1_get(self, suffix="", op="v1.get"):
        seg, channel = self.pick_channel()
        mseg, mid = self.pick_message(channel)
        q = self.query([(self.rng.choice(["limit", "x", "after"]), self.edge_int())]) if self.rng.random() < 0.1 else ""
        return Request(op, "GET", f"/v1/channels/{seg}/messages/{mseg}{suffix}{q}",
                       self.v1_auth() + self.misc_headers(),
                       meta={"channel": channel, "message": mid})

    def v1_history(self):
        return self.v1_get("/history", "v1.history")

    def v1_edit(self):
        rng = self.rng
        seg, channel = self.pick_channel()
        mseg, mid = self.pick_message(channel, want="live-own")
        record = self.messages.get(mid) if mid else None
        author = record["author"] if record and rng.random() < 0.75 else rng.choice(self.user_ids)
        headers = self.v1_auth(author) + self.content_type() + self.misc_headers()
        if rng.random() < 0.6:
            headers.append(("If-Match", self.if_match(record["version"] if record else 1)))
        if rng.random() < 0.03:
            headers.append(("If-Match", self.if_match(1)))
        return self.body_request("v1.edit", "PATCH", f"/v1/channels/{seg}/messages/{mseg}", headers,
                                 self.edit_body(), {"channel": channel, "message": mid})

    def v1_delete(self):
        rng = self.rng
        seg, channel = self.pick_channel()
        mseg, mid = self.pick_message(channel)
        record = self.messages.get(mid) if mid else None
        r = rng.random()
        if r < 0.4 and record:
            headers = self.v1_auth(record["author"])
        elif r < 0.7:
            headers = self.v1_auth(self.moderator, moderator=True)
        else:
            headers = self.v1_auth()
        headers += self.misc_headers()
        if rng.random() < 0.1:
            headers.append(("If-Match", self.if_match(record["version"] if record else 1)))
        body = None
        if rng.random() < 0.05:
            body = self.encode_body(self.edit_body())
        return Request("v1.delete", "DELETE", f"/v1/channels/{seg}/messages/{mseg}", headers, body,
                       meta={"channel": channel, "message": mid})

    def v1_react(self):
        """PUT/DELETE/GET of a reaction: real emoji and short codes, sequences, and hostile segments
        (broken escapes, invalid UTF-8, escaped escapes, long clusters)."""
        rng = self.rng
        seg, channel = self.pick_channel()
        mseg, mid = self.pick_message(channel)
        r = rng.random()
        if r < 0.5:
            emoji = self.seg(rng.choice(REACTION_EMOJI))
        elif r < 0.75:
            emoji = self.seg(self.unicode_text(rng.randrange(1, 6)))
        elif r < 0.9:
            emoji = rng.choice(HOSTILE_EMOJI_SEGMENTS)
        else:
            emoji = self.seg(rng.choice(REACTION_EMOJI) * rng.randrange(2, 40))
        method = rng.choice(["PUT", "PUT", "DELETE", "GET"])
        q = ""
        if method == "GET" and rng.random() < 0.5:
            q = self.query([(rng.choice(["limit", "after"]), rng.choice([self.edge_int(), self.fresh_uuid(), "x"]))])
        return Request("v1.react", method, f"/v1/channels/{seg}/messages/{mseg}/reactions/{emoji}{q}",
                       self.v1_auth() + self.misc_headers(), meta={"channel": channel, "message": mid})

    def v1_limits(self):
        q = self.query([("x", self.edge_int())]) if self.rng.random() < 0.2 else ""
        headers = self.misc_headers() + (self.v1_auth() if self.rng.random() < 0.5 else [])
        return Request("v1.limits", "GET", "/v1/limits" + q, headers)

    def inf_create(self):
        seg, channel = self.pick_channel()
        user = self.rng.choice(self.user_ids)
        headers = self.inf_identity(user) + (self.content_type() if self.rng.random() < 0.7 else []) + \
            self.misc_headers()
        return self.body_request("inf.create", "POST", f"/threads/{seg}/messages", headers, self.inf_body(),
                                 {"channel": channel})

    def inf_list(self):
        rng = self.rng
        seg, channel = self.pick_channel()
        params = []
        if rng.random() < 0.5:
            params.append(("limit", str(rng.randint(1, 200)) if rng.random() < 0.4 else self.edge_int()))
        if rng.random() < 0.7:
            params.append(("cursor", self.inf_cursor()))
        if rng.random() < 0.05:
            params.append(("cursor", self.inf_cursor()))
        if rng.random() < 0.03:
            params.append((rng.choice(["cursor", "limit"]), None))
        rng.shuffle(params)
        headers = self.misc_headers() + self.inf_identity(rng.choice(self.user_ids), read=True)
        return Request("inf.list", "GET", f"/threads/{seg}/messages{self.query(params)}", headers,
                       meta={"channel": channel})

    def inf_update(self):
        rng = self.rng
        seg, channel = self.pick_channel()
        mseg, mid = self.pick_message(channel, want="live-own")
        record = self.messages.get(mid) if mid else None
        user = record["author"] if record and rng.random() < 0.75 else rng.choice(self.user_ids)
        headers = self.inf_identity(user) + (self.content_type() if rng.random() < 0.5 else []) + self.misc_headers()
        return self.body_request("inf.update", "PUT", f"/threads/{seg}/messages/{mseg}", headers,
                                 self.inf_body(update=True), {"channel": channel, "message": mid})

    def inf_delete(self):
        rng = self.rng
        seg, channel = self.pick_channel()
        mseg, mid = self.pick_message(channel)
        record = self.messages.get(mid) if mid else None
        user = record["author"] if record and rng.random() < 0.5 else rng.choice(self.user_ids)
        return Request("inf.delete", "DELETE", f"/threads/{seg}/messages/{mseg}",
                       self.inf_identity(user) + self.misc_headers(), meta={"channel": channel, "message": mid})

    def ops(self):
        rng = self.rng
        path = rng.choice(["/health/live", "/health/ready", "/openapi.yaml", "/metrics"])
        method = "HEAD" if rng.random() < 0.1 else "GET"
        q = self.query([(rng.choice(["x", "format", "name[]"]), self.edge_int())]) if rng.random() < 0.2 else ""
        headers = self.misc_headers() + (self.v1_auth() if rng.random() < 0.2 else [])
        return Request("ops" + path.replace("/", "."), method, path + q, headers)

    def misc(self):
        rng = self.rng
        c = rng.choice(self.channels)
        m = rng.choice(self.channel_messages(c) or [self.fresh_uuid()])
        method, path = rng.choice([
            ("GET", "/"), ("GET", "/v1"), ("GET", "/v1/channels"), ("GET", "/v1/channels/"),
            ("GET", "/v1/channels//messages"), ("GET", f"/v1/channels/{c}/messages/"), ("POST", "/v1/limits"),
            ("PUT", f"/v1/channels/{c}/messages"), ("DELETE", f"/v1/channels/{c}/messages"),
            ("PUT", f"/v1/channels/{c}/messages/{m}"), ("POST", f"/v1/channels/{c}/messages/{m}"),
            ("PATCH", f"/threads/{c}/messages/{m}"), ("GET", f"/threads/{c}/messages/{m}"),
            ("POST", f"/threads/{c}/messages/{m}"), ("OPTIONS", f"/v1/channels/{c}/messages"),
            ("TRACE", "/"), ("FOO", "/health/live"), ("get", "/health/live"),
            ("GET", f"/v1/channels/{c}/messages/{m}/replies/x"), ("GET", f"/v1/channels/{c}/messages/{m}/history/"),
            ("GET", f"/v1/channels/{c}/messages/{m}/reactions"), ("GET", f"/v1/channels/{c}/changes"),
            ("GET", f"/v1/channels/{c}/stream"), ("GET", "/docs"), ("GET", "/health"), ("GET", "/metrics/"),
            ("GET", "/../../etc/passwd"), ("GET", "/%2e%2e/%2e%2e/etc/passwd"), ("GET", "/v1/%2e%2e/health/live"),
            ("GET", f"/v1/channels/{c}/messages?" + "a=b&" * 3000), ("GET", "/" + "a" * 70000),
            ("GET", "/" + "a/" * 5000), ("GET", "*"), ("GET", "http://127.0.0.1/health/live"),
            ("GET", f"/v1/channels/{c}/messages#frag"), ("GET", f"/v1/channels/{c}/messages?%zz=%zz"),
            ("GET", f"/threads/{c}/messages?cursor=%"), ("GET", f"/v1/channels/{c}/messages?after=%E0%A4%A"),
            ("GET", f"/v1/channels/{c}/messages?after=%FF%FE"), ("GET", f"/threads/{c}/messages?limit=%00"),
            ("GET", "/v1/channels/%00/messages"), ("GET", "/threads/%ff/messages"),
            ("DELETE", "/threads//messages/"),
        ])
        headers = self.misc_headers() + (self.v1_auth() if rng.random() < 0.7 else [])
        body = self.encode_body(self.create_body(c)) if method in ("POST", "PUT", "PATCH") else None
        return Request("misc", method, path, headers, body)

    def token_focused(self):
        """A v1 call with a hostile token (the JWT decoder is the front door of every v1 call)."""
        req = self.rng.choice([self.v1_list, self.v1_get, self.v1_create, self.v1_edit, self.inf_list,
                               self.inf_create])()
        req.headers = [(n, v) for n, v in req.headers if n != "Authorization"]
        _, value = self.hostile_auth()
        if value is not None:
            req.headers.append(("Authorization", value))
        req.op = "auth." + req.op
        return req

    OPS = [
        ("v1_list", 18), ("v1_replies", 10), ("v1_create", 14), ("v1_get", 5), ("v1_edit", 9), ("v1_delete", 3),
        ("v1_history", 5), ("v1_react", 6), ("v1_limits", 1), ("inf_list", 11), ("inf_create", 8), ("inf_update", 6),
        ("inf_delete", 2), ("ops", 2), ("misc", 3), ("token_focused", 5),
    ]

    def random_request(self):
        names, weights = zip(*self.OPS)
        return getattr(self, self.rng.choices(names, weights)[0])()

    # --- the sweep: every edge value through every slot of its family --------------------------------

    def sweep_requests(self):
        c = self.channels[0]
        ids = self.channel_messages(c)
        root = next((self.messages[m]["parent"] for m in ids if self.messages[m]["parent"]), ids[0])
        author = self.user_ids[0]
        own = next(m for m in ids if self.messages[m]["author"] == author and not self.messages[m]["deleted"]
                   and not self.messages[m]["parent"])
        auth = [("Authorization", "Bearer " + self.token(author))]
        inf = auth + [("X-User-Id", author)]
        q = lambda params: self.query_exact(params)  # noqa: E731
        values = INT_EDGES + INT_LOOKALIKES
        for v in values:
            yield Request("sweep.v1.list", "GET", f"/v1/channels/{c}/messages" + q([("limit", v)]), auth,
                          meta={"channel": c, "scope": "timeline"})
            yield Request("sweep.v1.replies", "GET", f"/v1/channels/{c}/messages/{root}/replies" + q([("limit", v)]),
                          auth, meta={"channel": c, "scope": root})
            yield Request("sweep.inf.list", "GET", f"/threads/{c}/messages" + q([("limit", v)]), auth,
                          meta={"channel": c})
        for prefix, family in (("s1:", values), ("s2:", INT_EDGES[:12] + INT_EDGES[-12:]), ("", INT_EDGES)):
            for v in family:
                anchor = b64url(utf8(prefix + v)) if prefix else v
                for name in ("before", "after", "around"):
                    yield Request("sweep.v1.list", "GET", f"/v1/channels/{c}/messages" + q([(name, anchor)]), auth,
                                  meta={"channel": c, "scope": "timeline"})
                    yield Request("sweep.v1.replies", "GET",
                                  f"/v1/channels/{c}/messages/{root}/replies" + q([(name, anchor)]), auth,
                                  meta={"channel": c, "scope": root})
        edit = utf8(to_json({"content": "sweep edit"}))
        for v in values:
            for tag in ('"%s"', 'W/"%s"', "%s"):
                yield Request("sweep.v1.edit", "PATCH", f"/v1/channels/{c}/messages/{own}",
                              auth + [("Content-Type", "application/json"), ("If-Match", tag % v)], edit,
                              meta={"channel": c, "message": own})
        for v in JSON_NUMBER_EDGES:
            body = '{"content":"sweep size","attachments":[{"path":"a.png","size":%s}]}' % v
            yield Request("sweep.v1.create", "POST", f"/v1/channels/{c}/messages",
                          auth + [("Content-Type", "application/json")], utf8(body), meta={"channel": c})
            yield Request("sweep.v1.edit", "PATCH", f"/v1/channels/{c}/messages/{own}",
                          auth + [("Content-Type", "application/json")],
                          utf8('{"attachments":[{"path":"b.png","size":%s}]}' % v), meta={"channel": c, "message": own})
        for ts in TS_EDGES:
            for mid in (ids[0], self.fresh_uuid()):
                yield Request("sweep.inf.list", "GET", f"/threads/{c}/messages" + q([("cursor", ts + "|" + mid)]),
                              auth, meta={"channel": c})
        for _ in range(24):
            cf = self.seg(self.uuid_variant(c))
            mf = self.seg(self.uuid_variant(own))
            uf = self.uuid_variant(author)
            yield Request("sweep.v1.list", "GET", f"/v1/channels/{cf}/messages", auth)
            yield Request("sweep.v1.get", "GET", f"/v1/channels/{c}/messages/{mf}", auth)
            yield Request("sweep.v1.history", "GET", f"/v1/channels/{c}/messages/{mf}/history", auth)
            yield Request("sweep.v1.replies", "GET", f"/v1/channels/{c}/messages/{mf}/replies", auth)
            yield Request("sweep.inf.list", "GET", f"/threads/{cf}/messages", auth)
            yield Request("sweep.inf.update", "PUT", f"/threads/{c}/messages/{mf}", inf, b"{}")
            yield Request("sweep.inf.create", "POST", f"/threads/{c}/messages", auth + [("X-User-Id", uf)],
                          b'{"content":"sweep user"}')
            yield Request("sweep.auth", "GET", f"/v1/channels/{c}/messages",
                          [("Authorization", "Bearer " + self.jwt({"alg": "HS256"}, {
                              "sub": uf, "iss": self.args.issuer, "aud": self.args.audience,
                              "exp": int(time.time()) + 600}))])
        for kind in HOSTILE_TOKEN_KINDS:
            for _ in range(3):
                _, value = self.hostile_auth(kind)
                yield Request("sweep.auth", "GET", f"/v1/channels/{c}/messages",
                              [("Authorization", value)] if value is not None else [],
                              meta={"channel": c, "scope": "timeline"})
        for edge in TIME_EDGES:
            for claim in ("exp", "nbf", "iat"):
                now = int(time.time())
                claims = Pairs([(k, v) for k, v in {"sub": author, "iss": self.args.issuer, "aud": self.args.audience,
                                                    "iat": now, "nbf": now, "exp": now + 600}.items() if k != claim]
                               + [(claim, Raw(edge))])
                yield Request("sweep.auth", "GET", f"/v1/channels/{c}/messages",
                              [("Authorization", "Bearer " + self.jwt({"alg": "HS256", "typ": "JWT"}, claims))])

    @staticmethod
    def query_exact(params):
        return "?" + "&".join(urllib.parse.quote(n, safe="") + "=" + urllib.parse.quote(v, safe="-_.~",
                                                                                        errors="surrogatepass")
                              for n, v in params)

    # --- sending and judging ---------------------------------------------------------------------------

    def exchange(self, req: Request):
        try:
            return http_exchange(self.addr, wire_bytes(req, self.host), self.args.timeout,
                                 head_only=req.method == "HEAD")
        except TransportError as error:
            return error

    def process_alive(self) -> bool:
        pid = self.args.server_pid
        if not pid:
            return True
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            return state not in ("Z", "X")
        except (OSError, IndexError):
            return False

    def server_alive(self) -> bool:
        if not self.process_alive():
            return False
        for attempt in range(3):
            res = self.exchange(Request("probe", "GET", "/health/live"))
            if isinstance(res, Response) and res.status == 200:
                return True
            time.sleep(0.3 * (attempt + 1))
        return False

    def fail(self, kind, req, detail, res=None, candidates=None):
        with self.lock:
            self.failures.append({"kind": kind, "req": req, "detail": detail, "res": res,
                                  "candidates": candidates or []})

    def judge(self, req, res, candidates=None):
        """Counts one answer; returns False once the process is gone."""
        self.sent += 1
        self.by_op[req.op] += 1
        if isinstance(res, TransportError):
            self.transport[res.kind] += 1
            if not self.server_alive():
                self.dead = True
                if candidates and len(candidates) > 1:
                    self.fail("process died", None, f"{res}; the process is gone. {len(candidates)} requests of a "
                              "concurrent wave were in flight, any of them may be the cause (the service log "
                              "below may name it)", candidates=candidates)
                else:
                    self.fail("process died", req, f"{res} and the process is gone")
                return False
            doubts = wire_doubts(req)
            if doubts:
                self.tolerated[doubts[0]] += 1
                self.statuses["closed (malformed request)"] += 1
                return True
            self.retried += 1
            res = self.exchange(req)
            if isinstance(res, TransportError):
                if not self.server_alive():
                    self.dead = True
                    self.fail("process died", req, f"{res} when sent again alone, and the process is gone")
                    return False
                self.statuses[res.kind] += 1
                self.fail("no response", req, f"{res} (twice, with the server alive)")
                return True
        self.statuses[res.status] += 1
        self.op_status[req.op][res.status] += 1
        if res.status >= 500:
            self.fail("5xx", req, f"status {res.status}", res)
        else:
            self.observe(req, res)
        return True

    def run_wave(self, reqs, concurrent):
        if concurrent:
            results = list(self.pool.map(self.exchange, reqs))
            # In flight when it died: connected, then lost (refused ones came after the death).
            broken = [r for r, res in zip(reqs, results) if isinstance(res, TransportError) and res.kind != "refused"]
            for req, res in zip(reqs, results):
                if not self.judge(req, res, candidates=broken):
                    return False
            return True
        for req in reqs:
            if not self.judge(req, self.exchange(req)):
                return False
        return True

    # --- setup: real data -------------------------------------------------------------------------

    def call(self, req, expect):
        res = self.exchange(req)
        self.phase_counts["setup"] += 1
        if not self.judge(req, res):
            raise SetupError(f"the service died during setup at {req.method} {show_bytes(req.target, 200)}")
        if isinstance(res, TransportError) or res.status not in expect:
            status = res if isinstance(res, TransportError) else res.status
            body = "" if isinstance(res, TransportError) else show_bytes(res.body, 300)
            raise SetupError(f"{req.method} {show_bytes(req.target, 200)} answered {status}, expected {expect}: {body}")
        return res.json() if res.body else None

    def setup(self):
        ready = self.exchange(Request("setup", "GET", "/health/ready"))
        if isinstance(ready, TransportError) or ready.status != 200:
            raise SetupError(f"/health/ready: {ready if isinstance(ready, TransportError) else ready.status}")
        limits = self.call(Request("setup", "GET", "/v1/limits"), (200,))
        for key in self.limits:
            if isinstance(limits, dict) and isinstance(limits.get(key), int):
                self.limits[key] = limits[key]
        self.user_ids = [str(uuid.UUID(int=self.rng.getrandbits(128) ^ self.salt, version=4)) for _ in range(3)]
        self.moderator = self.fresh_uuid()
        json_ct = ("Content-Type", "application/json")

        def auth(user, moderator=False):
            return [("Authorization", "Bearer " + self.token(user, moderator)), json_ct]

        def inf_auth(user):
            return [("Authorization", "Bearer " + self.token(user)), ("X-User-Id", user)]

        for ci in range(3):
            c = self.fresh_uuid()
            self.channels.append(c)
            made = []
            for i in range(8):
                user = self.user_ids[i % 2]
                body = {"content": f"setup {ci}.{i} @{self.user_ids[2]}"}
                if i % 3 == 0:
                    body["attachments"] = [{"path": f"uploads/{i}.png", "name": f"{i}.png", "mime_type": "image/png",
                                            "size": 1000 + i}]
                req = Request("setup", "POST", f"/v1/channels/{c}/messages",
                              auth(user) + [("Idempotency-Key", f"setup-{ci}-{i}")], utf8(to_json(body)),
                              meta={"channel": c})
                made.append(self.call(req, (201,))["id"])
            for root in made[:2]:
                for j in range(3):
                    self.call(Request("setup", "POST", f"/v1/channels/{c}/messages", auth(self.user_ids[j % 3]),
                                      utf8(to_json({"content": f"reply {j}", "parent_id": root})),
                                      meta={"channel": c}), (201,))
            for n in range(2):
                v = self.messages[made[2]]["version"]
                self.call(Request("setup", "PATCH", f"/v1/channels/{c}/messages/{made[2]}",
                                  auth(self.messages[made[2]]["author"]) + [("If-Match", f'"{v}"')],
                                  utf8(to_json({"content": f"edited {n}"})), meta={"channel": c}), (200,))
            self.call(Request("setup", "DELETE", f"/v1/channels/{c}/messages/{made[3]}",
                              auth(self.messages[made[3]]["author"]), meta={"channel": c, "message": made[3]}), (204,))
            self.call(Request("setup", "DELETE", f"/v1/channels/{c}/messages/{made[4]}",
                              auth(self.moderator, True), meta={"channel": c, "message": made[4]}), (204,))
            # real cursors from real pages, both scopes, both directions
            page = self.call(Request("setup", "GET", f"/v1/channels/{c}/messages?limit=2", auth(self.user_ids[0]),
                                     meta={"channel": c, "scope": "timeline"}), (200,))
            for _ in range(2):
                if page["page"]["before"]:
                    page = self.call(Request("setup", "GET", f"/v1/channels/{c}/messages?limit=2&before="
                                             + page["page"]["before"], auth(self.user_ids[0]),
                                             meta={"channel": c, "scope": "timeline"}), (200,))
            if page["page"]["after"]:
                self.call(Request("setup", "GET", f"/v1/channels/{c}/messages?limit=3&after=" + page["page"]["after"],
                                  auth(self.user_ids[1]), meta={"channel": c, "scope": "timeline"}), (200,))
            self.call(Request("setup", "GET", f"/v1/channels/{c}/messages?limit=3&around=" + made[5],
                              auth(self.user_ids[1]), meta={"channel": c, "scope": "timeline"}), (200,))
            for root in made[:2]:
                rp = self.call(Request("setup", "GET", f"/v1/channels/{c}/messages/{root}/replies?limit=1",
                                       auth(self.user_ids[2]), meta={"channel": c, "scope": root}), (200,))
                if rp["page"]["before"]:
                    self.call(Request("setup", "GET", f"/v1/channels/{c}/messages/{root}/replies?limit=1&before="
                                      + rp["page"]["before"], auth(self.user_ids[2]),
                                      meta={"channel": c, "scope": root}), (200,))
            self.call(Request("setup", "GET", f"/v1/channels/{c}/messages/{made[2]}/history", auth(self.user_ids[0]),
                              meta={"channel": c}), (200,))
        # INF326: a thread of its own and the first v1 channel (a thread is a channel)
        thread = self.fresh_uuid()
        self.channels.append(thread)
        for t in (thread, self.channels[0]):
            made = []
            for i in range(5):
                user = self.user_ids[i % 2]
                obj = self.call(Request("setup", "POST", f"/threads/{t}/messages", inf_auth(user),
                                        utf8(to_json({"content": f"inf {i}", "type": "text", "paths": [f"p{i}.png"]})),
                                        meta={"channel": t}), (201,))
                made.append(obj["id"])
            self.call(Request("setup", "PUT", f"/threads/{t}/messages/{made[0]}", inf_auth(self.user_ids[0]),
                              utf8(to_json({"content": "inf edited"})), meta={"channel": t}), (200,))
            page = self.call(Request("setup", "GET", f"/threads/{t}/messages?limit=2", inf_auth(self.user_ids[2]),
                                     meta={"channel": t}), (200,))
            if page.get("next_cursor"):
                self.call(Request("setup", "GET", f"/threads/{t}/messages?limit=2&cursor="
                                  + urllib.parse.quote(page["next_cursor"], safe=""), inf_auth(self.user_ids[2]),
                                  meta={"channel": t}), (200,))
        if not self.cursors or not self.inf_cursors:
            raise SetupError("no cursors were collected from real pages")

    # --- main ---------------------------------------------------------------------------------------

    def run(self):
        started = time.monotonic()
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.args.threads)
        try:
            self.setup()
        except SetupError as error:
            print(f"crash-hunt: setup failed: {error}")
            self.report(started)
            return 1 if self.failures else 2
        print(f"crash-hunt: setup done ({self.phase_counts['setup']} requests: {len(self.channels)} channels, "
              f"{len(self.messages)} messages, {len(self.cursors)} v1 cursors, {len(self.inf_cursors)} INF326 cursors)")
        sys.stdout.flush()
        if not self.args.no_sweep and not self.dead:
            sweep = list(self.sweep_requests())
            for i in range(0, len(sweep), 50):
                if not self.run_wave(sweep[i:i + 50], concurrent=False):
                    break
                self.phase_counts["sweep"] += len(sweep[i:i + 50])
            print(f"crash-hunt: sweep done ({self.phase_counts['sweep']} of {len(sweep)} requests, "
                  f"{time.monotonic() - started:.1f} s)")
            sys.stdout.flush()
        done, next_progress = 0, 1000
        while done < self.args.requests and not self.dead:
            n = min(40, self.args.requests - done)
            wave = [self.random_request() for _ in range(n)]
            concurrent_wave = self.rng.random() < self.args.concurrent_share
            alive = self.run_wave(wave, concurrent_wave)
            done += n
            self.phase_counts["random"] += n
            if not alive:
                break
            if not self.process_alive():
                self.dead = True
                self.fail("process died", wave[-1], "the server process is gone", candidates=wave)
                break
            if done >= next_progress:
                print(f"crash-hunt: {done}/{self.args.requests} random requests, {time.monotonic() - started:.1f} s")
                sys.stdout.flush()
                next_progress += 1000
        if not self.dead:
            if not self.server_alive():
                self.dead = True
                self.fail("process died", Request("probe", "GET", "/health/live"), "not alive after the hunt")
            else:
                ready = self.exchange(Request("probe", "GET", "/health/ready"))
                if isinstance(ready, TransportError) or ready.status != 200:
                    self.fail("not ready", Request("probe", "GET", "/health/ready"),
                              "/health/ready after the hunt: "
                              f"{ready if isinstance(ready, TransportError) else ready.status}")
        self.pool.shutdown(wait=True)
        self.report(started)
        return 1 if self.failures else 0

    def describe(self, req: Request, res=None) -> str:
        lines = [f"  {req.op}: {show_bytes(req.method, 40)} {show_bytes(req.target, 300)}"]
        for name, value in req.headers[:12]:
            lines.append(f"    {show_bytes(name, 60)}: {show_bytes(value, 200)}")
        if len(req.headers) > 12:
            lines.append(f"    ... {len(req.headers) - 12} more headers")
        if req.body is not None:
            lines.append(f"    body{' (chunked)' if req.chunks else ''}: {show_bytes(req.body, 300)}")
        if isinstance(res, Response):
            lines.append(f"  -> {res.status} {show_bytes(res.body, 300)}")
        return "\n".join(lines)

    def report(self, started):
        elapsed = time.monotonic() - started
        print()
        print(f"crash-hunt: seed {self.args.seed}: {self.sent} requests (setup {self.phase_counts['setup']}, sweep "
              f"{self.phase_counts['sweep']}, random {self.phase_counts['random']}) in {elapsed:.1f} s "
              f"({self.sent / max(elapsed, 0.001):.0f}/s)")
        codes = sorted(self.statuses.items(), key=lambda kv: (isinstance(kv[0], str), str(kv[0])))
        print("  status codes: " + ", ".join(f"{k}: {v}" for k, v in codes))
        if self.tolerated:
            print("  closed without an answer, malformed on the wire (tolerated, server alive): "
                  + ", ".join(f"{k}: {v}" for k, v in sorted(self.tolerated.items())))
        if self.transport:
            print("  transport errors seen: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.transport.items())))
        if self.args.verbose:
            for op in sorted(self.op_status):
                print(f"    {op}: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.op_status[op].items())))
        else:
            print("  requests by operation: " + ", ".join(f"{k} {v}" for k, v in sorted(self.by_op.items())))
        if not self.failures:
            print("crash-hunt: PASS: no 5xx, no dropped connection, the process is alive")
            return
        kinds = collections.Counter(f["kind"] for f in self.failures)
        print(f"crash-hunt: FAIL: {len(self.failures)} problems: "
              + ", ".join(f"{k}: {v}" for k, v in kinds.most_common()))
        ops = collections.Counter(f["req"].op if f["req"] else "concurrent wave" for f in self.failures)
        print("  by operation: " + ", ".join(f"{k}: {v}" for k, v in ops.most_common()))
        for n, failure in enumerate(self.failures[:self.args.show], 1):
            print(f"--- {n}. {failure['kind']}: {failure['detail']}")
            if failure["req"] is not None:
                print(self.describe(failure["req"], failure["res"]))
            for other in failure["candidates"][:16]:
                print(self.describe(other))
            if len(failure["candidates"]) > 16:
                print(f"  ... and {len(failure['candidates']) - 16} more in flight")
        if len(self.failures) > self.args.show:
            print(f"--- and {len(self.failures) - self.args.show} more")


HOSTILE_TOKEN_KINDS = [
    "alg-none", "alg-none-signed", "alg-other", "alg-type", "alg-dup", "header-extra", "exp", "nbf", "iat",
    "times-all", "sub", "aud", "iss", "roles", "missing-claim", "dup-claims", "payload-shape", "header-shape",
    "signature", "wrong-secret", "expired", "not-yet", "structure", "huge", "framing", "missing",
]
# NumericDate claims: edges of Int64, UInt64 and Double, and values of the wrong type.
TIME_EDGES = [
    "9223372036854775807", "9223372036854775808", "18446744073709551616", "-9223372036854775808",
    "-9223372036854775809", "1e308", "1.7976931348623157e308", "-1.7976931348623157e308", "1e400", "-1e400",
    "4.9e-324", "-0.0", "0", "-1", "1e15", "1e19", "-1e19", "253402300800", "253402300799.999", "-62135596801",
    "9007199254740993", "1" + "0" * 400, "NaN", "Infinity", "-Infinity", "\"1700000000\"", "null", "true", "[]",
    "{}", "2147483648", "-2147483649", "4294967296", "1.5", "1e-7",
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("CRASH_HUNT_URL", "http://127.0.0.1:18081"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--requests", type=int, default=5000, help="random-phase requests (default 5000)")
    parser.add_argument("--no-sweep", action="store_true", help="skip the deterministic edge-value sweep")
    parser.add_argument("--threads", type=int, default=4, help="threads of the concurrent waves")
    parser.add_argument("--concurrent-share", type=float, default=0.3, help="share of waves sent concurrently")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds for one response")
    parser.add_argument("--jwt-secret", default=os.environ.get("CRASH_HUNT_JWT_SECRET") or os.environ.get("JWT_SECRET"))
    parser.add_argument("--issuer", default=os.environ.get("JWT_ISSUER", "messages-service"))
    parser.add_argument("--audience", default=os.environ.get("JWT_AUDIENCE", "messages-api"))
    parser.add_argument("--server-pid", type=int, default=None, help="fail as soon as this process is gone")
    parser.add_argument("--show", type=int, default=5, help="offending requests to print in full")
    parser.add_argument("--verbose", action="store_true", help="status codes per operation")
    args = parser.parse_args()
    if not args.jwt_secret:
        parser.error("--jwt-secret (or CRASH_HUNT_JWT_SECRET / JWT_SECRET) is required")
    sys.exit(Hunt(args).run())


if __name__ == "__main__":
    main()
