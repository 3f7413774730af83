#!/usr/bin/env python3
"""Prepares the data the read scenarios of `make bench` need, through the service's HTTP API.

  prepare.py seed  --channels 100 --messages 300   creates the messages of the read channels
  prepare.py paths --out older-paths.txt           writes the paths of pages older than the cache

Channel and user ids follow the scheme of tools/bench/wrk.lua:
<8 hex digit prefix>-0000-4000-8000-<index as 12 hex digits>, index from 1.
Standard library only: tools/bench.sh runs it with the system python3.
"""

import argparse
import http.client
import json
import queue
import sys
import threading
import time
import urllib.parse


def bench_id(prefix, index):
    return f"{prefix}-0000-4000-8000-{index:012x}"


class Client:
    """One keep-alive HTTP connection; reconnects once when the server closed it."""

    def __init__(self, base_url, timeout=30):
        url = urllib.parse.urlsplit(base_url)
        self.host, self.port, self.timeout = url.hostname, url.port or 80, timeout
        self.connection = None

    def request(self, method, path, body=None, headers=None):
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.connection.request(method, path, body=body, headers=headers or {})
                response = self.connection.getresponse()
                return response.status, dict(response.getheaders()), response.read()
            except (http.client.HTTPException, ConnectionError):
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def seed(args):
    """Creates --messages messages in each of --channels channels, --concurrency at a time.

    Messages are handed out round-robin over the channels, so concurrent requests mostly hit
    different channels, as the users of a chat service do.
    """
    jobs = queue.Queue()
    for n in range(args.messages):
        for channel in range(1, args.channels + 1):
            jobs.put((channel, n))
    failures = []
    lock = threading.Lock()

    def worker(worker_index):
        client = Client(args.base_url)
        while True:
            try:
                channel, n = jobs.get_nowait()
            except queue.Empty:
                return
            user = bench_id(args.user_prefix, 1 + (channel * 31 + n) % args.users)
            text = f"seeded message {n} of channel {channel}, "
            body = json.dumps({"content": text + "x" * max(0, args.content_bytes - len(text))})
            path = f"/v1/channels/{bench_id(args.channel_prefix, channel)}/messages"
            status, _, reply = client.request(
                "POST", path, body, {"Content-Type": "application/json", "X-User-Id": user}
            )
            if status != 201:
                with lock:
                    failures.append(f"{status} {reply[:200]!r}")

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    total = args.messages * args.channels
    print(f"seeded {total - len(failures)} of {total} messages in {elapsed:.1f} s ({total / elapsed:.0f}/s)")
    if failures:
        print(f"{len(failures)} creates failed, e.g. {failures[0]}", file=sys.stderr)
        return 1
    return 0


def paths(args):
    """Writes the paths of pages older than the newest --skip messages of each read channel.

    Such a page lies outside the Redis timeline (which holds the newest 200), so the service reads
    it from Postgres. Walks back from the newest page with `before=page.before`, as a client
    scrolling up does; also reports the size of a newest-page response (it reads each one twice,
    so the second read comes from the warm cache).
    """
    client = Client(args.base_url)
    headers = {"X-User-Id": bench_id(args.user_prefix, 1)}
    found, cache_statuses, newest_sizes = [], {}, []
    for channel in range(1, args.channels + 1):
        base = f"/v1/channels/{bench_id(args.channel_prefix, channel)}/messages?limit={args.limit}"
        client.request("GET", base, headers=headers)
        status, reply_headers, body = client.request("GET", base, headers=headers)
        if status != 200:
            print(f"GET {base}: {status} {body[:200]!r}", file=sys.stderr)
            return 1
        cache = reply_headers.get("X-Cache", reply_headers.get("x-cache", "?"))
        cache_statuses[cache] = cache_statuses.get(cache, 0) + 1
        newest_sizes.append(len(body))
        page = json.loads(body)
        seen = len(page["items"])
        while page["page"]["has_before"]:
            path = f"{base}&before={urllib.parse.quote(page['page']['before'], safe='')}"
            if seen >= args.skip:
                found.append(path)
            status, _, body = client.request("GET", path, headers=headers)
            if status != 200:
                print(f"GET {path}: {status} {body[:200]!r}", file=sys.stderr)
                return 1
            page = json.loads(body)
            seen += len(page["items"])
    if not found:
        print(f"no page older than the newest {args.skip} messages: seed more", file=sys.stderr)
        return 1
    with open(args.out, "w") as out:
        out.write("\n".join(found) + "\n")
    summary = {
        "older_paths": len(found),
        "newest_page_bytes": round(sum(newest_sizes) / len(newest_sizes)),
        "newest_page_x_cache": cache_statuses,
    }
    if args.summary:
        with open(args.summary, "w") as out:
            json.dump(summary, out)
    print(f"{len(found)} older-page paths; newest page {summary['newest_page_bytes']} bytes, X-Cache {cache_statuses}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default="http://127.0.0.1:18090", help="the service (default %(default)s)")
    parser.add_argument("--channel-prefix", default="5eed0000", help="first 8 hex digits of the channel ids")
    parser.add_argument("--channels", type=int, default=100, help="how many channels (default %(default)s)")
    parser.add_argument("--user-prefix", default="05e70000", help="first 8 hex digits of the user ids")
    parser.add_argument("--users", type=int, default=1000, help="how many users write (default %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)
    seeding = commands.add_parser("seed", help="create the messages of the read channels")
    seeding.add_argument("--messages", type=int, default=300, help="messages per channel (default %(default)s)")
    seeding.add_argument("--concurrency", type=int, default=16, help="requests at once (default %(default)s)")
    seeding.add_argument("--content-bytes", type=int, default=80, help="characters of content (default %(default)s)")
    walking = commands.add_parser("paths", help="write the paths of pages older than the cached ones")
    walking.add_argument("--limit", type=int, default=50, help="page size (default %(default)s)")
    walking.add_argument("--skip", type=int, default=200, help="newest messages to skip: the cache size (default %(default)s)")
    walking.add_argument("--out", required=True, help="file of paths, one a line")
    walking.add_argument("--summary", help="also write a JSON summary (paths, newest page size) here")
    args = parser.parse_args()
    return seed(args) if args.command == "seed" else paths(args)


if __name__ == "__main__":
    sys.exit(main())
