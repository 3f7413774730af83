#!/usr/bin/env python3
"""Measures how fast a write through one instance reaches a live stream held by another.

    python3 tools/stream_latency.py --writer http://127.0.0.1:18081 --reader http://127.0.0.1:18082 \
        [--rate 100] [--seconds 20] [--token TOKEN | --user UUID]

Opens GET /v1/channels/{c}/stream on the reader, then creates messages through the writer at
--rate per second for --seconds, each carrying its send time in its content, and records for each
the time from the create's request to its event on the stream. Prints the count, lost and
duplicated events, and the latency percentiles; exits 1 when an event is missing or repeated.
Standard library only.
"""

import argparse
import http.client
import json
import socket
import sys
import threading
import time
import uuid
from urllib.parse import urlparse


def headers_for(args):
    if args.token:
        return {"Authorization": "Bearer " + args.token}
    return {"X-User-Id": args.user}


def read_stream(url, path, headers, received, ready, stop):
    target = urlparse(url)
    sock = socket.create_connection((target.hostname, target.port or 80))
    lines = ["GET %s HTTP/1.1" % path, "Host: %s" % target.netloc, "Accept: text/event-stream"]
    lines += ["%s: %s" % item for item in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    sock.settimeout(1.0)
    buffer = b""
    while not stop.is_set():
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        now = time.monotonic()
        buffer += chunk
        if not ready.is_set() and b"\r\n\r\n" in buffer:
            ready.set()
        # Chunked framing is skipped over: only data lines are looked at.
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            for line in block.split(b"\n"):
                if line.startswith(b"data: "):
                    try:
                        change = json.loads(line[6:])
                    except ValueError:
                        continue
                    content = change.get("message", {}).get("content", "")
                    if content.startswith("latency "):
                        received.append((content, now))
    sock.close()


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--writer", required=True)
    parser.add_argument("--reader", required=True)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--token")
    parser.add_argument("--user", default=str(uuid.uuid4()))
    args = parser.parse_args()

    channel = str(uuid.uuid4())
    headers = headers_for(args)
    received, ready, stop = [], threading.Event(), threading.Event()
    reader = threading.Thread(
        target=read_stream, args=(args.reader, "/v1/channels/%s/stream" % channel, headers, received, ready, stop))
    reader.start()
    if not ready.wait(10):
        print("the stream did not open", file=sys.stderr)
        stop.set()
        return 1

    writer = urlparse(args.writer)
    connection = http.client.HTTPConnection(writer.hostname, writer.port or 80, timeout=10)
    sent = {}
    interval = 1.0 / args.rate
    start = time.monotonic()
    count = int(args.rate * args.seconds)
    for index in range(count):
        due = start + index * interval
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        content = "latency %d" % index
        sent[content] = time.monotonic()
        body = json.dumps({"content": content})
        connection.request("POST", "/v1/channels/%s/messages" % channel, body=body,
                           headers=dict(headers, **{"Content-Type": "application/json"}))
        response = connection.getresponse()
        response.read()
        if response.status != 201:
            print("create answered %d" % response.status, file=sys.stderr)
            stop.set()
            return 1
    achieved = count / (time.monotonic() - start)
    deadline = time.monotonic() + 10
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    reader.join()

    seen = [content for content, _ in received]
    lost = len(set(sent) - set(seen))
    duplicated = len(seen) - len(set(seen))
    latencies = [(at - sent[content]) * 1000 for content, at in received if content in sent]
    print("writes: %d at %.1f/s; events: %d; lost: %d; duplicated: %d" % (count, achieved, len(seen), lost, duplicated))
    if latencies:
        print("write -> other instance's stream, ms: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f" % (
            percentile(latencies, 0.5), percentile(latencies, 0.9), percentile(latencies, 0.99), max(latencies)))
    return 1 if lost or duplicated else 0


if __name__ == "__main__":
    sys.exit(main())
