#!/usr/bin/env python3
"""Seeds messages through the HTTP API under load, then verifies what the service promises.

1. Binds a queue of its own (exclusive, auto-delete) to the exchange messages.events with the
   routing key message.created, before the first create, so no event can slip past it.
2. Creates --messages messages over --channels fresh channels (random ids, so earlier data does
   not matter), --concurrency at a time, through POST /v1/channels/{c}/messages. Each create has
   an Idempotency-Key, and a create that failed in transit (lost connection, 5xx, 429) is retried
   with it, as a careful client would: a retry must never duplicate a message.
3. Lists every channel from its newest page back (before=page.before while has_before) and
   checks that the listed ids are exactly the created ones, in seq order 1..n with no gap, each
   at the seq its create answered.
4. Waits up to --timeout for a message.created event of every created message; counts events
   lost, duplicates (an event id delivered again, or several events for one message), events out
   of seq order within a channel, and events whose body disagrees with the create.

Exit status 0 when nothing was lost, out of order or wrong; 1 otherwise; 2 when it could not
run (service or broker unreachable). Duplicates are reported but allowed (delivery is at least
once) unless --fail-on-duplicates. Needs pika (tools/bench.sh installs it into .local/bench-venv);
`make verify` runs it against a fresh service.
"""

import argparse
import http.client
import json
import queue
import sys
import threading
import time
import urllib.parse
import uuid

try:
    import pika
except ImportError:  # pragma: no cover - explained to the user
    sys.exit("seed_verify.py needs pika: run it with .local/bench-venv/bin/python (make verify creates it)")


class Client:
    """One keep-alive HTTP connection, reopened after a failure."""

    def __init__(self, base_url, timeout):
        url = urllib.parse.urlsplit(base_url)
        self.host, self.port, self.timeout = url.hostname, url.port or 80, timeout
        self.connection = None

    def request(self, method, path, body=None, headers=None):
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.connection.request(method, path, body=body, headers=headers or {})
            response = self.connection.getresponse()
            return response.status, response.read()
        except (http.client.HTTPException, OSError):
            self.connection.close()
            self.connection = None
            raise


class EventCollector(threading.Thread):
    """Consumes message.created events on a connection of its own (pika is not thread-safe)."""

    def __init__(self, amqp_url, exchange, routing_key):
        super().__init__(daemon=True)
        self.amqp_url, self.exchange, self.routing_key = amqp_url, exchange, routing_key
        self.ready, self.stopping = threading.Event(), threading.Event()
        self.error = None
        self.lock = threading.Lock()
        self.deliveries = []  # (monotonic arrival, event id, routing key, body)

    def run(self):
        try:
            connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
            channel, queue_name = self.bind(connection)
            channel.basic_consume(queue_name, self.on_message, auto_ack=True)
            self.ready.set()
            while not self.stopping.is_set():
                connection.process_data_events(time_limit=0.2)
            connection.close()
        except Exception as error:  # reported by the main thread
            self.error = error
            self.ready.set()

    def bind(self, connection):
        # The service's relay declares the exchange when it connects: give it a few seconds.
        deadline = time.monotonic() + 15
        while True:
            channel = connection.channel()
            try:
                channel.exchange_declare(self.exchange, passive=True)
                break
            except pika.exceptions.ChannelClosedByBroker:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"exchange {self.exchange} not found: is the service running with this AMQP_URL? "
                        "(its outbox relay declares the exchange)"
                    )
                time.sleep(0.5)
        declared = channel.queue_declare("", exclusive=True, auto_delete=True)
        channel.queue_bind(declared.method.queue, self.exchange, routing_key=self.routing_key)
        return channel, declared.method.queue

    def on_message(self, _channel, method, properties, body):
        try:
            event = json.loads(body)
        except ValueError:
            event = {"unparseable": body[:200].decode("utf-8", "replace")}
        with self.lock:
            self.deliveries.append((time.monotonic(), properties.message_id, method.routing_key, event))

    def snapshot(self):
        with self.lock:
            return list(self.deliveries)


def percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def seed(args, channels, users, run_id):
    """Creates the messages; returns {message id: created message} and the failures."""
    jobs = queue.Queue()
    for index in range(args.messages):
        jobs.put(index)
    created, failures, statuses = {}, [], {}
    lock = threading.Lock()

    def worker():
        client = Client(args.base_url, args.request_timeout)
        while True:
            try:
                index = jobs.get_nowait()
            except queue.Empty:
                return
            channel = channels[index % len(channels)]
            headers = {"Content-Type": "application/json", "Idempotency-Key": f"{run_id}-{index}"}
            if args.bearer:
                headers["Authorization"] = f"Bearer {args.bearer}"
            else:
                headers["X-User-Id"] = users[index % len(users)]
            body = json.dumps({"content": f"seed_verify {run_id} message {index}"})
            outcome = None
            for attempt in range(args.retries + 1):
                try:
                    status, reply = client.request("POST", f"/v1/channels/{channel}/messages", body, headers)
                except (http.client.HTTPException, OSError) as error:
                    outcome = f"transport error: {error}"
                    time.sleep(0.1 * 2**attempt)
                    continue
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1
                if status in (201, 200):
                    message = json.loads(reply)
                    message["_answered_at"] = time.monotonic()
                    with lock:
                        if message["id"] in created:
                            failures.append(f"message {index}: its id {message['id']} was already answered to another create")
                        created[message["id"]] = message
                    outcome = None
                    break
                outcome = f"HTTP {status}: {reply[:200]!r}"
                if status not in (429, 500, 502, 503, 504):
                    break
                time.sleep(0.1 * 2**attempt)
            if outcome:
                with lock:
                    failures.append(f"message {index}: {outcome}")

    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return created, failures, statuses


def list_channel(client, args, channel):
    """Every message of a channel, ascending, walking back from the newest page."""
    headers = {"Authorization": f"Bearer {args.bearer}"} if args.bearer else {"X-User-Id": str(uuid.uuid4())}
    base = f"/v1/channels/{channel}/messages?limit={args.page_limit}"
    pages, path = [], base
    while True:
        status, reply = client.request("GET", path, headers=headers)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status} {reply[:200]!r}")
        page = json.loads(reply)
        pages.append(page["items"])
        if not page["page"]["has_before"]:
            break
        path = f"{base}&before={urllib.parse.quote(page['page']['before'], safe='')}"
    return [item for items in reversed(pages) for item in items]


def verify_lists(args, channels, created):
    """Compares each channel's listing with what was created in it."""
    by_channel = {channel: {} for channel in channels}
    for message in created.values():
        by_channel[message["channel_id"]][message["id"]] = message
    problems = {"list_missing": 0, "list_unexpected": 0, "order_errors": 0, "seq_mismatches": 0}
    examples = []
    jobs = queue.Queue()
    for channel in channels:
        jobs.put(channel)
    lock = threading.Lock()

    def worker():
        client = Client(args.base_url, args.request_timeout)
        while True:
            try:
                channel = jobs.get_nowait()
            except queue.Empty:
                return
            try:
                listed = list_channel(client, args, channel)
            except (RuntimeError, http.client.HTTPException, OSError) as error:
                with lock:
                    problems["list_missing"] += len(by_channel[channel])
                    examples.append(f"channel {channel}: {error}")
                continue
            expected = by_channel[channel]
            ids = [item["id"] for item in listed]
            counts = {
                "list_missing": len(set(expected) - set(ids)),
                "list_unexpected": len(set(ids) - set(expected)) + (len(ids) - len(set(ids))),
                # seq must be 1, 2, ..., n in listing order: ascending and gap-free.
                "order_errors": sum(1 for position, item in enumerate(listed, 1) if item["seq"] != position),
                "seq_mismatches": sum(1 for item in listed if item["id"] in expected and item["seq"] != expected[item["id"]]["seq"]),
            }
            with lock:
                for key, count in counts.items():
                    problems[key] += count
                    if count:
                        examples.append(f"channel {channel}: {key} {count}")

    threads = [threading.Thread(target=worker) for _ in range(min(args.concurrency, len(channels)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return problems, examples


def verify_events(deliveries, channels, created):
    """Counts losses, duplicates, order and content errors among the events of our channels."""
    ours = set(channels)
    first_by_event, events_by_message = {}, {}
    redelivered, mismatches, unexpected, order_errors = 0, 0, 0, 0
    last_seq = {}
    delays = []
    examples = []
    for arrived, event_id, routing_key, event in deliveries:
        if event.get("channel_id") not in ours:
            continue  # another client's event on the shared exchange
        event_id = event_id or event.get("id")
        if event_id in first_by_event:
            redelivered += 1
            continue
        first_by_event[event_id] = event
        message_id = (event.get("message") or {}).get("id")
        events_by_message.setdefault(message_id, []).append(event_id)
        message = created.get(message_id)
        if message is None:
            unexpected += 1
            examples.append(f"event {event_id} for a message no create answered: {message_id}")
            continue
        if (
            routing_key != "message.created"
            or event.get("type") != "message.created"
            or event.get("seq") != message["seq"]
            or event.get("version") != message["version"]
        ):
            mismatches += 1
            examples.append(f"event {event_id} disagrees with its create: {json.dumps(event)[:300]}")
        channel = event["channel_id"]
        if event.get("seq", 0) <= last_seq.get(channel, 0):
            order_errors += 1
            examples.append(f"channel {channel}: event seq {event.get('seq')} after seq {last_seq[channel]}")
        last_seq[channel] = max(last_seq.get(channel, 0), event.get("seq", 0))
        delays.append(max(0.0, arrived - message["_answered_at"]) * 1000)
    lost = [message_id for message_id in created if message_id not in events_by_message]
    several = sum(len(ids) - 1 for ids in events_by_message.values() if len(ids) > 1)
    return {
        "events_received": len(first_by_event),
        "events_lost": len(lost),
        "event_duplicates": redelivered + several,
        "event_redeliveries": redelivered,
        "events_per_message_over_one": several,
        "event_order_errors": order_errors,
        "event_mismatches": mismatches,
        "events_unexpected": unexpected,
        "event_delay_ms": {
            "p50": percentile(delays, 50),
            "p99": percentile(delays, 99),
            "max": max(delays) if delays else None,
        },
    }, examples + [f"no event for message {message_id}" for message_id in lost[:5]]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--messages", type=int, default=2000, help="messages to create (default %(default)s)")
    parser.add_argument("-c", "--channels", type=int, default=20, help="fresh channels to spread them over (default %(default)s)")
    parser.add_argument("-k", "--concurrency", type=int, default=16, help="requests in flight at once (default %(default)s)")
    parser.add_argument("--base-url", default="http://127.0.0.1:8080", help="the service (default %(default)s)")
    parser.add_argument(
        "--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/%2F", help="the service's broker (default %(default)s)"
    )
    parser.add_argument("--exchange", default="messages.events", help="the topic exchange of message events (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for the last events after seeding (default %(default)s)")
    parser.add_argument("--grace", type=float, default=1.0, help="seconds to keep listening for duplicates once every event arrived (default %(default)s)")
    parser.add_argument("--page-limit", type=int, default=100, help="page size when listing (default %(default)s)")
    parser.add_argument("--retries", type=int, default=3, help="retries of a create that failed in transit, 5xx or 429 (default %(default)s)")
    parser.add_argument("--request-timeout", type=float, default=30, help="seconds per HTTP request (default %(default)s)")
    parser.add_argument("--users", type=int, default=10, help="distinct X-User-Id authors (default %(default)s)")
    parser.add_argument("--bearer", help="a JWT to send instead of X-User-Id (service with AUTH_MODE=jwt)")
    parser.add_argument("--fail-on-duplicates", action="store_true", help="exit 1 on duplicate events too")
    parser.add_argument("--json", help="also write the summary as JSON to this file")
    args = parser.parse_args()
    if args.messages < 1 or args.channels < 1 or args.concurrency < 1:
        parser.error("--messages, --channels and --concurrency must be at least 1")

    run_id = uuid.uuid4().hex[:12]
    channels = [str(uuid.uuid4()) for _ in range(args.channels)]
    users = [str(uuid.uuid4()) for _ in range(args.users)]

    collector = EventCollector(args.amqp_url, args.exchange, "message.created")
    collector.start()
    collector.ready.wait(30)
    if collector.error or not collector.ready.is_set():
        print(f"cannot consume events from {args.amqp_url}: {collector.error or 'timed out'}", file=sys.stderr)
        return 2

    started = time.monotonic()
    created, failures, statuses = seed(args, channels, users, run_id)
    seeded_in = time.monotonic() - started
    if not created and failures:
        collector.stopping.set()
        print(f"no create succeeded, e.g. {failures[0]}", file=sys.stderr)
        return 2
    print(
        f"created {len(created)} of {args.messages} messages over {args.channels} channels at concurrency "
        f"{args.concurrency} in {seeded_in:.1f} s ({len(created) / seeded_in:.0f}/s); statuses {dict(sorted(statuses.items()))}"
    )

    list_problems, list_examples = verify_lists(args, channels, created)
    print(
        f"listed: missing {list_problems['list_missing']}, unexpected {list_problems['list_unexpected']}, "
        f"out of seq order {list_problems['order_errors']}, seq differs from the create {list_problems['seq_mismatches']}"
    )

    deadline = time.monotonic() + args.timeout
    ours = set(channels)
    while time.monotonic() < deadline:
        seen = {
            (event.get("message") or {}).get("id")
            for _, _, _, event in collector.snapshot()
            if event.get("channel_id") in ours
        }
        if all(message_id in seen for message_id in created):
            time.sleep(args.grace)
            break
        time.sleep(0.2)
    drained_in = time.monotonic() - started - seeded_in
    collector.stopping.set()
    collector.join(5)
    events, event_examples = verify_events(collector.snapshot(), channels, created)
    delay = events["event_delay_ms"]
    print(
        f"events: {events['events_received']} received, {events['events_lost']} lost, {events['event_duplicates']} duplicates "
        f"({events['event_redeliveries']} redelivered, {events['events_per_message_over_one']} extra per message), "
        f"{events['event_order_errors']} out of seq order, {events['event_mismatches']} disagreeing, "
        f"{events['events_unexpected']} unexpected; waited {drained_in:.1f} s after seeding"
    )
    if delay["p50"] is not None:
        print(f"event delay after the create's response: p50 {delay['p50']:.1f} ms, p99 {delay['p99']:.1f} ms, max {delay['max']:.1f} ms")
    if collector.error:
        print(f"the event consumer failed: {collector.error}", file=sys.stderr)

    errors = (
        len(failures)
        + sum(list_problems.values())
        + events["events_lost"]
        + events["event_order_errors"]
        + events["event_mismatches"]
        + events["events_unexpected"]
        + (1 if collector.error else 0)
        + (events["event_duplicates"] if args.fail_on_duplicates else 0)
    )
    for example in (failures + list_examples + event_examples)[:10]:
        print(f"  {example}")
    ok = errors == 0
    print("OK" if ok else "FAILED")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(
                {
                    "ok": ok,
                    "requested": args.messages,
                    "created": len(created),
                    "create_failures": len(failures),
                    "channels": args.channels,
                    "concurrency": args.concurrency,
                    "seconds": round(seeded_in, 2),
                    "statuses": {str(k): v for k, v in statuses.items()},
                    **list_problems,
                    **events,
                },
                out,
                indent=2,
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
