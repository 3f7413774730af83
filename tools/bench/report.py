#!/usr/bin/env python3
"""Writes the report of a `make bench` run from its raw results.

  report.py bench-results/<run>    reads <run>/raw/, writes <run>/report.md, report.json and
                                   one latency-percentile plot per scenario (latency-*.svg)

Standard library only. The raw files are what tools/bench.sh leaves: meta.txt (key=value),
<scenario>-c<N>.json (wrk's done()), .cpu.txt, .metrics-before/after.txt, pgbench-*.txt and their
per-transaction logs, redis-*.csv, rss.tsv, pages.json, verify-*.json.
"""

import csv
import glob
import json
import math
import os
import re
import sys

SCENARIOS = {
    "health": "GET /health/live: the HTTP ceiling (no I/O behind it)",
    "newest": "GET newest page, limit 50 (Redis timeline cache)",
    "older": "GET older page, limit 50, before=cursor (Postgres)",
    "create": "POST a message to one of many channels (Postgres transaction + outbox)",
    "mix": "90% newest page / 10% create, on the seeded channels",
}
PLOTTED = ["50", "75", "90", "95", "97.5", "99", "99.5", "99.75", "99.9", "99.95", "99.99"]


def read_meta(raw):
    meta = {}
    with open(os.path.join(raw, "meta.txt")) as lines:
        for line in lines:
            key, _, value = line.rstrip("\n").partition("=")
            meta[key] = value
    return meta


def read_metrics(path):
    """Prometheus text: {name: {labels: value}}."""
    metrics = {}
    if not os.path.exists(path):
        return metrics
    with open(path) as lines:
        for line in lines:
            if line.startswith("#") or not line.strip():
                continue
            match = re.match(r"([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)", line)
            if match:
                metrics.setdefault(match.group(1), {})[match.group(2) or ""] = float(match.group(3))
    return metrics


def metric(metrics, name):
    return sum(metrics.get(name, {}).values())


def cpu_by_process(raw, name, seconds):
    """Cores each command used during a run, from /proc/*/stat snapshots taken around it.

    Keyed by pid and start time, so a reused pid is not mistaken for the same process; a process
    that started during the run counts from zero. A process's time includes that of its children
    it reaped (cutime, cstime): wrk and pgbench end before the second snapshot, and show in the
    time of tools/bench.sh, which waited for them; pgbench's Postgres backends show in the
    postmaster's.
    """

    def read_pid(file):
        path = os.path.join(raw, "procs", file)
        return open(path).read().strip() if os.path.exists(path) else None

    names = {read_pid("bench.pid"): "load generator (wrk/pgbench)", read_pid("service.pid"): "messages-service (bench)"}

    def snapshot(path):
        times = {}
        if not os.path.exists(path):
            return times
        for line in open(path, errors="replace"):
            head, _, tail = line.rpartition(")")
            fields = tail.split()
            if not head or len(fields) < 20:
                continue
            pid, _, command = head.partition(" (")
            # Other messages-service processes (a test suite's, say) are not the one measured.
            command = names.get(pid, "other " + command if command == "messages-servic" else command)
            times[(pid, fields[19])] = (command, sum(int(value) for value in fields[11:15]))
        return times

    before = snapshot(os.path.join(raw, "procs", name + ".before"))
    after = snapshot(os.path.join(raw, "procs", name + ".after"))
    if not after or seconds <= 0:
        return {}
    hertz = os.sysconf("SC_CLK_TCK")
    cores = {}
    for key, (command, ticks) in after.items():
        used = ticks - before.get(key, (command, 0))[1]
        if used > 0:
            cores[command] = cores.get(command, 0) + used / hertz / seconds
    return {command: round(value, 2) for command, value in sorted(cores.items(), key=lambda item: -item[1]) if value >= 0.01}


def wrk_runs(raw, meta):
    runs = []
    for path in sorted(glob.glob(os.path.join(raw, "*-c*.json"))):
        name = os.path.basename(path)[: -len(".json")]
        scenario, _, connections = name.rpartition("-c")
        if scenario not in SCENARIOS:
            continue
        with open(path) as source:
            wrk = json.load(source)
        seconds = wrk["duration_us"] / 1e6
        errors = wrk["errors"]
        latency = wrk["latency_us"]
        run = {
            "scenario": scenario,
            "connections": int(connections),
            "requests": wrk["requests"],
            "seconds": round(seconds, 2),
            "requests_per_second": round(wrk["requests"] / seconds, 1),
            "non_2xx": errors["status"],
            "socket_errors": {k: errors[k] for k in ("connect", "read", "write", "timeout")},
            "latency_ms": {p: latency["percentiles"][p] / 1000 for p in PLOTTED},
            "latency_max_ms": latency["max"] / 1000,
            "latency_mean_ms": round(latency["mean"] / 1000, 3),
            "bytes_per_response": round(wrk["bytes"] / max(1, wrk["requests"])),
        }
        run["cpu_by_process"] = cpu_by_process(raw, name, seconds)
        cpu_path = os.path.join(raw, name + ".cpu.txt")
        if os.path.exists(cpu_path):
            service_start, service_end, busy_start, total_start, busy_end, total_end, hertz = map(
                float, open(cpu_path).read().split()
            )
            cores = int(meta.get("nproc", "1"))
            run["service_cpu_cores"] = round((service_end - service_start) / hertz / seconds, 2)
            run["machine_busy_percent"] = round(100 * (busy_end - busy_start) / max(1, total_end - total_start), 1)
            run["cores"] = cores
        before = read_metrics(os.path.join(raw, name + ".metrics-before.txt"))
        after = read_metrics(os.path.join(raw, name + ".metrics-after.txt"))
        if after:
            delta = lambda key: int(metric(after, key) - metric(before, key))  # noqa: E731
            statuses = {}
            for labels, value in after.get("hb_requests", {}).items():
                status = re.search(r'http_response_status_code="(\d+)"', labels)
                route = re.search(r'http_route="([^"]*)"', labels)
                if status and route and route.group(1) != "/metrics":
                    count = value - before.get("hb_requests", {}).get(labels, 0)
                    if count:
                        statuses[status.group(1)] = statuses.get(status.group(1), 0) + int(count)
            run["service"] = {
                "statuses": statuses,
                "cache_hits": delta("messages_cache_hits_total"),
                "cache_hot_hits": delta("messages_cache_hot_hits_total"),
                "cache_misses": delta("messages_cache_misses_total"),
                "cache_bypasses": delta("messages_cache_bypasses_total"),
                "pool_timeouts": delta("messages_postgres_pool_timeouts_total"),
                "events_published": delta("messages_events_published_total"),
                "event_lag_p99_ms": (lambda v: None if v is None else (v * 1000 if v != math.inf else "over the largest bucket"))(
                    histogram_percentile(before, after, "messages_event_lag_seconds", 99)
                ),
                "outbox_backlog_after": int(metric(after, "messages_outbox_backlog")),
            }
        window = os.path.join(raw, name + ".window")
        if os.path.exists(window) and "service" in run:
            bounds = [float(line) for line in open(window) if line.strip()]
            backlog = [
                int(parts[1])
                for parts in (line.split() for line in open(os.path.join(raw, "outbox.tsv")))
                if len(parts) == 2 and parts[1].isdigit() and len(bounds) == 2 and bounds[0] <= float(parts[0]) <= bounds[1]
            ] if os.path.exists(os.path.join(raw, "outbox.tsv")) else []
            run["service"]["outbox_backlog_max"] = max(backlog) if backlog else None
        runs.append(run)
    order = list(SCENARIOS)
    return sorted(runs, key=lambda run: (order.index(run["scenario"]), run["connections"]))


def histogram_percentile(before, after, name, p):
    """The upper bound of the bucket holding the p-th percentile of what a Prometheus histogram
    observed between two scrapes; None when it observed nothing."""
    buckets = []
    for labels, value in after.get(name + "_bucket", {}).items():
        bound = re.search(r'le="([^"]+)"', labels)
        if bound:
            count = value - before.get(name + "_bucket", {}).get(labels, 0)
            buckets.append((math.inf if bound.group(1) == "+Inf" else float(bound.group(1)), count))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0
    if total <= 0:
        return None
    for bound, count in buckets:
        if count >= total * p / 100:
            return bound
    return math.inf


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def pgbench_runs(raw):
    runs = []
    for path in sorted(glob.glob(os.path.join(raw, "pgbench-*-c*.txt"))):
        name = os.path.basename(path)[len("pgbench-") : -len(".txt")]
        script, _, connections = name.rpartition("-c")
        text = open(path).read()
        tps = re.search(r"^tps = ([\d.]+)", text, re.M)
        failed = re.search(r"number of failed transactions: (\d+)", text)
        aborted = "aborted" in text or tps is None
        latencies = []
        for log in glob.glob(os.path.join(raw, f"pgbench-{name}.*")):
            if log.endswith(".txt"):
                continue
            with open(log) as lines:
                latencies.extend(int(line.split()[2]) for line in lines if line.strip())
        latencies.sort()
        duration = re.search(r"^duration: (\d+) s", text, re.M)
        runs.append(
            {
                "script": script,
                "connections": int(connections),
                "tps": float(tps.group(1)) if tps else None,
                "failed": int(failed.group(1)) if failed else None,
                "aborted": aborted,
                "transactions": len(latencies),
                "latency_ms": {p: percentile(latencies, float(p)) / 1000 for p in PLOTTED} if latencies else {},
                "latency_max_ms": latencies[-1] / 1000 if latencies else None,
                "cpu_by_process": cpu_by_process(raw, "pgbench-" + name, int(duration.group(1)) if duration else 0),
            }
        )
    order = ["create-minimal", "create", "older-minimal", "older-page"]
    return sorted(runs, key=lambda run: (order.index(run["script"]) if run["script"] in order else len(order), run["connections"]))


def redis_runs(raw):
    runs = []
    for path in sorted(glob.glob(os.path.join(raw, "redis-*-c*.csv"))):
        kind, _, connections = os.path.basename(path)[len("redis-") : -len(".csv")].rpartition("-c")
        with open(path) as source:
            for row in csv.DictReader(source):
                test = row["test"]
                if kind == "get" and test != "GET":
                    continue
                runs.append(
                    {
                        "test": "GET" if kind == "get" else "ZREVRANGEBYSCORE (a warm timeline, limit + 1 entries)",
                        "connections": int(connections),
                        "rps": float(row["rps"]),
                        "p50_ms": float(row["p50_latency_ms"]),
                        "p99_ms": float(row["p99_latency_ms"]),
                        "max_ms": float(row["max_latency_ms"]),
                    }
                )
    return sorted(runs, key=lambda run: (run["test"] != "GET", run["connections"]))


def memory(raw, meta):
    samples = []
    path = os.path.join(raw, "rss.tsv")
    if os.path.exists(path):
        for line in open(path):
            parts = line.split()
            if len(parts) == 2:
                samples.append(int(parts[1]))
    mib = lambda kb: round(int(kb) / 1024, 1) if kb else None  # noqa: E731
    return {
        "idle_before_load_mib": mib(meta.get("rss_idle_kb")),
        "peak_vmhwm_mib": mib(meta.get("vmhwm_kb")),
        "peak_sampled_mib": mib(max(samples)) if samples else None,
        "after_load_mib": mib(meta.get("rss_end_kb")),
        "samples": len(samples),
    }


# The targets each scenario is held to: its share of the limit (ratio), and its p99 in ms.
TARGETS = {
    "create": {"ratio": 0.8, "p99_ms": 20},
    "newest": {"ratio": 0.7, "p99_ms": 10},
    "older": {"ratio": 0.7, "p99_ms": 25},
    "mix": {"ratio": 0.7, "p99_ms": None},
}
# Past the limits' concurrencies a scenario keeps this share of its 32-connection rate.
HOLD_RATIO = 0.9


def ratios(runs, pgbench, redis):
    """Each scenario's rate as a share of the limit of what it needs (see report text).

    A request passes through the HTTP server and then its store, one after the other, so the
    limit of a scenario composes the two rates: 1 / (1 / HTTP ceiling + 1 / store's rate).
    """

    def run_of(scenario, connections):
        return next((r for r in runs if r["scenario"] == scenario and r["connections"] == connections), None)

    def rate(scenario, connections):
        run = run_of(scenario, connections)
        return run["requests_per_second"] if run else None

    def tps(script, connections):
        return next((r["tps"] for r in pgbench if r["script"] == script and r["connections"] == connections), None)

    def redis_get(connections):
        return next((r["rps"] for r in redis if r["test"] == "GET" and r["connections"] == connections), None)

    def composed(*rates):
        return 1 / sum(1 / r for r in rates) if all(rates) else None

    result = []
    limited = {r["connections"] for r in pgbench} | {r["connections"] for r in redis}
    measured_at = sorted({r["connections"] for r in runs})
    base_connections = min(measured_at, default=None)
    for connections in measured_at:
        ceiling = rate("health", connections)
        limits = {}
        if connections in limited:
            create = composed(ceiling, tps("create-minimal", connections))
            newest = composed(ceiling, redis_get(connections))
            limits = {
                "create": (create, "1 / (1 / HTTP ceiling + 1 / pgbench create-minimal)"),
                "newest": (newest, "1 / (1 / HTTP ceiling + 1 / redis GET of one answer)"),
                "older": (composed(ceiling, tps("older-minimal", connections)), "1 / (1 / HTTP ceiling + 1 / pgbench older-minimal)"),
            }
            if newest and create:
                limits["mix"] = (1 / (0.9 / newest + 0.1 / create), "1 / (0.9 / newest limit + 0.1 / create limit)")
        for scenario in TARGETS:
            run = run_of(scenario, connections)
            if run is None:
                continue
            measured = run["requests_per_second"]
            sockets = sum(run["socket_errors"].values())
            entry = {
                "scenario": scenario,
                "connections": connections,
                "requests_per_second": measured,
                "p99_ms": run["latency_ms"]["99"],
                "non_2xx": run["non_2xx"],
                "socket_errors": sockets,
            }
            checks = [run["non_2xx"] == 0, sockets == 0]
            if scenario in limits:
                limit, basis = limits[scenario]
                entry.update(
                    limit=round(limit, 1) if limit else None,
                    basis=basis,
                    ratio=round(measured / limit, 3) if limit else None,
                    target_ratio=TARGETS[scenario]["ratio"],
                    target_p99_ms=TARGETS[scenario]["p99_ms"],
                )
                checks.append(entry["ratio"] is not None and entry["ratio"] >= entry["target_ratio"])
                if entry["target_p99_ms"] is not None:
                    checks.append(entry["p99_ms"] <= entry["target_p99_ms"])
            elif limited and connections > max(limited):
                base = rate(scenario, base_connections)
                entry.update(
                    limit=base,
                    basis=f"its own rate at {base_connections} connections",
                    ratio=round(measured / base, 3) if base else None,
                    target_ratio=HOLD_RATIO,
                    target_p99_ms=None,
                )
                checks.append(entry["ratio"] is not None and entry["ratio"] >= HOLD_RATIO)
            else:
                # No limit measured at this concurrency (BENCH_LIMITS=0, a baseline run): no verdict.
                entry.update(limit=None, basis="no limit measured", ratio=None, target_ratio=None, target_p99_ms=None)
                checks.append(None)
            entry["met"] = None if None in checks else all(checks)
            if scenario == "mix" and rate("newest", connections) and rate("create", connections):
                own = 1 / (0.9 / rate("newest", connections) + 0.1 / rate("create", connections))
                entry["blend_of_own_scenarios"] = round(own, 1)
                entry["ratio_to_own_blend"] = round(measured / own, 3)
            result.append(entry)
    order = list(SCENARIOS)
    return sorted(result, key=lambda entry: (order.index(entry["scenario"]), entry["connections"]))


def baseline_comparison(out, runs):
    """Before/after rows against the baseline run of the same `make bench BASELINE=<rev>`."""
    path = os.path.join(out, "baseline", "report.json")
    if not os.path.exists(path):
        return None
    before = json.load(open(path))
    revision_path = os.path.join(out, "baseline", "revision.txt")
    revision = open(revision_path).read().split() if os.path.exists(revision_path) else ["?", "?"]
    rows = []
    for run in runs:
        old = next(
            (r for r in before["scenarios"] if r["scenario"] == run["scenario"] and r["connections"] == run["connections"]), None
        )
        if old is None:
            continue
        rows.append(
            {
                "scenario": run["scenario"],
                "connections": run["connections"],
                "before_rps": old["requests_per_second"],
                "after_rps": run["requests_per_second"],
                "speedup": round(run["requests_per_second"] / old["requests_per_second"], 2) if old["requests_per_second"] else None,
                "before_p99_ms": old["latency_ms"]["99"],
                "after_p99_ms": run["latency_ms"]["99"],
                "before_failures": old["non_2xx"] + sum(old["socket_errors"].values()),
                "after_failures": run["non_2xx"] + sum(run["socket_errors"].values()),
            }
        )
    return {
        "revision": revision[0],
        "commit": revision[1] if len(revision) > 1 else "?",
        "peak_rss_mib": before.get("memory", {}).get("peak_vmhwm_mib"),
        "rows": rows,
    }


# --- SVG -------------------------------------------------------------------------------------------

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def nines(p):
    """Position of a percentile on a 'nines' axis: 90 -> 1, 99 -> 2, 99.9 -> 3."""
    return -math.log10(1 - float(p) / 100)


def nice_ceiling(value):
    if value <= 0:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def svg_plot(title, subtitle, series, path):
    """series: [(label, {percentile: ms}, dashed)]. x: percentile on a nines scale; y: ms, linear."""
    width, height, left, right, top, bottom = 720, 440, 70, 170, 60, 60
    plot_w, plot_h = width - left - right, height - top - bottom
    x_min, x_max = nines(PLOTTED[0]), nines(PLOTTED[-1])
    y_max = nice_ceiling(max((v for _, values, _ in series for v in values.values() if v is not None), default=1) * 1.05)
    x = lambda p: left + plot_w * (nines(p) - x_min) / (x_max - x_min)  # noqa: E731
    y = lambda ms: top + plot_h * (1 - ms / y_max)  # noqa: E731
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
        f'<text x="{left}" y="42" fill="#555">{escape(subtitle)}</text>',
    ]
    for i in range(6):
        ms = y_max * i / 5
        out.append(f'<line x1="{left}" y1="{y(ms):.1f}" x2="{left + plot_w}" y2="{y(ms):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(ms) + 4:.1f}" text-anchor="end">{ms:g}</text>')
    for p in ["50", "90", "99", "99.9", "99.99"]:
        out.append(f'<line x1="{x(p):.1f}" y1="{top}" x2="{x(p):.1f}" y2="{top + plot_h}" stroke="#ddd"/>')
        out.append(f'<text x="{x(p):.1f}" y="{top + plot_h + 18}" text-anchor="middle">p{p}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>')
    out.append(f'<text x="{left + plot_w / 2}" y="{height - 15}" text-anchor="middle">percentile (nines scale)</text>')
    out.append(
        f'<text x="18" y="{top + plot_h / 2}" text-anchor="middle" transform="rotate(-90 18 {top + plot_h / 2})">'
        "latency (ms)</text>"
    )
    connections = sorted({int(label.split()[-2]) for label, _, _ in series})
    for index, (label, values, dashed) in enumerate(series):
        color = COLORS[connections.index(int(label.split()[-2])) % len(COLORS)]
        points = " ".join(f"{x(p):.1f},{y(values[p]):.1f}" for p in PLOTTED if values.get(p) is not None)
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        out.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        for p in PLOTTED:
            if values.get(p) is not None:
                out.append(f'<circle cx="{x(p):.1f}" cy="{y(values[p]):.1f}" r="2.5" fill="{color}"/>')
        legend_y = top + 10 + index * 20
        out.append(
            f'<line x1="{left + plot_w + 12}" y1="{legend_y}" x2="{left + plot_w + 36}" y2="{legend_y}" '
            f'stroke="{color}" stroke-width="2"{dash}/>'
        )
        out.append(f'<text x="{left + plot_w + 42}" y="{legend_y + 4}">{escape(label)}</text>')
    out.append("</svg>")
    with open(path, "w") as svg:
        svg.write("\n".join(out) + "\n")


def escape(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- Markdown ------------------------------------------------------------------------------------


def fmt(value, digits=1):
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


# The processes of the benchmark itself; anything else on the machine competed with it.
BENCH_PROCESSES = (
    "messages-service (bench)", "load generator", "postgres", "redis-server", "beam.smp", "erl_child_setup",
    "epmd", "inet_gethost", "kworker", "kdamond", "ksoftirqd", "jbd2", "rcu_",
)


def cpu_list(cores, top=6):
    if not cores:
        return "–"
    return ", ".join(f"{command} {value:.2f}" for command, value in list(cores.items())[:top])


def markdown(report):
    meta, lines = report["machine"], []
    add = lines.append
    add(f"# messages-service benchmark, {meta['started_at']}")
    add("")
    add(
        f"Machine: {meta['nproc']} cores ({meta['cpu_model']}), {int(meta['memory_kb']) // 1024} MiB, Linux {meta['kernel']}; "
        f"load average at start {meta['loadavg_start']}, at end {meta.get('loadavg_end', '?')}. "
        f"Commit `{meta['commit'][:12]}`"
        + (f" ({meta['dirty']} changed files under Sources/ or Package.swift not committed)" if meta.get("dirty", "0") != "0" else "")
        + f"; binary `{meta['binary']}`, built {meta.get('binary_built', '?')}."
    )
    add("")
    add(
        f"**Everything shares the {meta['nproc']} cores**: the service, Postgres {meta['postgres']} "
        f"({meta['postgres_settings']}), Redis {meta['redis']}, RabbitMQ, and the load generator "
        f"({meta['wrk']}, pgbench, redis-benchmark). The service ran with `AUTH_MODE=header`, "
        f"`RATE_LIMIT_RPS=0` (per-user rate limit off), `PG_POOL_SIZE` {meta['pg_pool_size']}, "
        f"`REDIS_POOL_SIZE` {meta['redis_pool_size']}, other settings at their defaults. Each run: "
        f"{meta['warmup']} s warm-up (not reported), then {meta['duration']} s measured, `wrk -t2 --timeout 10s`."
    )
    add("")
    add(
        f"Data: {meta['read_channels']} read channels seeded with {meta['seed_messages']} messages each through the API "
        f"({report.get('seeding', '')}); creates go to {meta['write_channels']} channels, from {meta['users']} users; "
        f"content {meta['content_bytes']} characters; pages of {meta['page_limit']}."
    )
    add("")
    add("## Scenarios")
    add("")
    add("| scenario | conns | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | non-2xx | socket errors | service CPU (cores) | machine busy | notes |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for run in report["scenarios"]:
        service = run.get("service", {})
        notes = []
        if run["scenario"] in ("newest", "older", "mix") and service:
            looked = service["cache_hits"] + service["cache_misses"] + service["cache_bypasses"]
            if looked:
                notes.append(f"cache hits {100 * service['cache_hits'] / looked:.1f}%")
            if service.get("cache_hits"):
                notes.append(f"of which pages kept in the pod {100 * service.get('cache_hot_hits', 0) / service['cache_hits']:.1f}%")
        if service.get("pool_timeouts"):
            notes.append(f"{service['pool_timeouts']} shed (pool timeout)")
        if run["scenario"] in ("create", "mix") and service:
            notes.append(
                f"outbox backlog at most {fmt(service.get('outbox_backlog_max'))} (sampled every second), "
                f"{service['outbox_backlog_after']} after"
            )
            lag = service.get("event_lag_p99_ms")
            if lag is not None:
                notes.append(f"event lag p99 ≤ {fmt(lag) if not isinstance(lag, str) else lag} ms (outbox write to broker confirm)")
        other = {s: n for s, n in service.get("statuses", {}).items() if not s.startswith("2")}
        if other:
            notes.append("statuses " + ", ".join(f"{s}: {n}" for s, n in sorted(other.items())))
        sockets = sum(run["socket_errors"].values())
        add(
            f"| {run['scenario']} | {run['connections']} | {fmt(run['requests_per_second'])} | "
            + " | ".join(fmt(run["latency_ms"][p], 2) for p in ("50", "90", "99", "99.9"))
            + f" | {fmt(run['latency_max_ms'], 1)} | {run['non_2xx']} | {sockets}"
            + (f" ({', '.join(f'{k} {v}' for k, v in run['socket_errors'].items() if v)})" if sockets else "")
            + f" | {fmt(run.get('service_cpu_cores'), 2)} | {fmt(run.get('machine_busy_percent'))}% | {'; '.join(notes)} |"
        )
    add("")
    for scenario, what in SCENARIOS.items():
        add(f"- **{scenario}**: {what}.")
    add(
        "- req/s counts every completed response; non-2xx are responses with status ≥ 400 (wrk's count); "
        "socket errors are connect/read/write errors and timeouts (10 s). Latency percentiles are wrk's, "
        "from send to response of each request (closed loop: not corrected for coordinated omission). Service CPU: the service's CPU seconds per second of the run "
        "(out of the machine's cores); machine busy: all cores, everything on the machine."
    )
    add("")
    add("## Raw limits of the same servers")
    add("")
    add("Measured with the service stopped, against the same database and Redis.")
    add("")
    add("| limit | conns | rate/s | p50 ms | p99 ms | p99.9 ms | failed |")
    add("|---|---:|---:|---:|---:|---:|---:|")
    for run in report["scenarios"]:
        if run["scenario"] == "health":
            add(
                f"| HTTP ceiling (wrk GET /health/live) | {run['connections']} | {fmt(run['requests_per_second'])} | "
                f"{fmt(run['latency_ms']['50'], 2)} | {fmt(run['latency_ms']['99'], 2)} | {fmt(run['latency_ms']['99.9'], 2)} | {run['non_2xx']} |"
            )
    for run in report["pgbench"]:
        latency = run["latency_ms"]
        add(
            f"| pgbench {run['script']} transaction | {run['connections']} | {fmt(run['tps'])} | "
            f"{fmt(latency.get('50'), 2)} | {fmt(latency.get('99'), 2)} | {fmt(latency.get('99.9'), 2)} | "
            f"{run['failed']}{' (aborted)' if run['aborted'] else ''} |"
        )
    for run in report["redis"]:
        add(
            f"| redis-benchmark {run['test']} | {run['connections']} | {fmt(run['rps'])} | {fmt(run['p50_ms'], 2)} | "
            f"{fmt(run['p99_ms'], 2)} | – | – |"
        )
    add("")
    pages = report.get("pages", {})
    add(
        "- pgbench **create-minimal** (`tools/bench/create-minimal.pgbench`), the limit of a create: the least a "
        "durable create costs, one statement in one transaction: bump the channel's counters, insert the message "
        "row, insert an outbox row with an event JSON of the service's size."
    )
    add(
        "- pgbench **create** (`tools/bench/create.pgbench`): the service's own create, one call of `create_message` "
        "(idempotency look-up, counters, message, event JSON built in SQL, outbox). No relay publishes or deletes "
        "the outbox rows of either."
    )
    add(
        "- pgbench **older-minimal** (`tools/bench/older-minimal.pgbench`), the limit of an older page: the same 51 "
        "rows read by (channel_id, seq); **older-page** (`tools/bench/older-page.pgbench`): the service's own statement "
        "(channel counters, 51 messages before the cursor, has_after). All pgbench runs use `-M prepared`, as the "
        "service prepares each statement once per connection."
    )
    add(
        f"- redis-benchmark **GET** of a {fmt(pages.get('answer_bytes'))}-byte value, the limit of a newest page: "
        f"the size of one answer (the newest page's body). A cache hit whose page the pod does not keep reads "
        f"{fmt(pages.get('cache_hit_bytes'))} bytes (the meta member and the newest {int(meta['page_limit']) + 1} "
        f"entries, each with its v1 and INF326 JSON); one it keeps, the 73-byte meta member. A whole timeline key "
        f"holds {pages.get('timeline_entries', '?')} members (including the meta) in "
        f"{fmt(pages.get('timeline_memory_usage'))} bytes (MEMORY USAGE)."
    )
    add("")
    add("## Ratios to the limits")
    add("")
    add(
        "A request goes through the HTTP server, then its store: a scenario's limit composes the two, "
        "1 / (1 / HTTP ceiling + 1 / the store's rate for the least work the request needs). Past "
        f"{max((e['connections'] for e in report['ratios'] if 'HTTP' in (e.get('basis') or '')), default='?')} connections "
        f"a scenario is held to {HOLD_RATIO} of its own rate at the lowest concurrency. Every run must have 0 non-2xx and 0 socket errors."
    )
    add("")
    add("| scenario | conns | service req/s | limit/s | limit | ratio | target | p99 ms | p99 target | met |")
    add("|---|---:|---:|---:|---|---:|---:|---:|---:|---|")
    for entry in report["ratios"]:
        add(
            f"| {entry['scenario']} | {entry['connections']} | {fmt(entry['requests_per_second'])} | {fmt(entry['limit'])} | "
            f"{entry['basis']} | {fmt(entry['ratio'], 2)} | "
            f"{'≥ ' + str(entry['target_ratio']) if entry['target_ratio'] is not None else '–'} | {fmt(entry['p99_ms'], 2)} | "
            f"{'≤ ' + str(entry['target_p99_ms']) if entry['target_p99_ms'] is not None else '–'} | "
            f"{'–' if entry['met'] is None else 'yes' if entry['met'] else '**no**'} |"
        )
    add("")
    mixes = [e for e in report["ratios"] if "ratio_to_own_blend" in e]
    if mixes:
        add(
            "Mix: its limit is the rate the two limits allow at 90/10, 1 / (0.9 / newest limit + 0.1 / create limit). "
            "Against the service's own pure scenarios blended the same way: "
            + "; ".join(
                f"{e['connections']} conns {fmt(e['blend_of_own_scenarios'])}/s → {fmt(e['ratio_to_own_blend'], 2)}" for e in mixes
            )
            + " (above 1: mixing costs nothing extra)."
        )
        add("")
    comparison = report.get("baseline")
    if comparison:
        add(f"## Before/after: baseline `{comparison['revision']}` ({comparison['commit'][:12]}), same run")
        add("")
        add(
            "The baseline's release binary, run through the same scenarios on the same servers just before this "
            f"one (its report: `baseline/report.md`; peak RSS {fmt(comparison['peak_rss_mib'])} MiB)."
        )
        add("")
        add("| scenario | conns | before req/s | after req/s | × | before p99 ms | after p99 ms | failures before → after |")
        add("|---|---:|---:|---:|---:|---:|---:|---|")
        for row in comparison["rows"]:
            add(
                f"| {row['scenario']} | {row['connections']} | {fmt(row['before_rps'])} | {fmt(row['after_rps'])} | "
                f"{fmt(row['speedup'], 2)} | {fmt(row['before_p99_ms'], 2)} | {fmt(row['after_p99_ms'], 2)} | "
                f"{row['before_failures']} → {row['after_failures']} |"
            )
        add("")
    add("## Who used the CPU")
    add("")
    add(
        "Cores used per command during each measured run (from /proc/*/stat before and after; "
        "`beam.smp` is RabbitMQ). Anything but the service, the load generator, postgres, redis-server "
        "and beam.smp shared the machine with the benchmark."
    )
    add("")
    add("| run | cores by command |")
    add("|---|---|")
    shared = []
    labelled = [(f"{run['scenario']} c{run['connections']}", run) for run in report["scenarios"]]
    labelled += [(f"pgbench {run['script']} c{run['connections']}", run) for run in report["pgbench"]]
    for label, run in labelled:
        cores = run.get("cpu_by_process") or {}
        add(f"| {label} | {cpu_list(cores)} |")
        others = {command: value for command, value in cores.items() if not command.startswith(BENCH_PROCESSES)}
        if sum(others.values()) >= 0.1:
            shared.append(f"{label} ({sum(others.values()):.2f} cores: {cpu_list(others, 3)})")
    add("")
    add(
        "A shell's figure includes the children it waited for during the run (a compiler a shell "
        "started, say); a process that ended without being waited for by a surviving process is missed."
    )
    add("")
    if shared:
        add("**Runs that shared the machine with other work** (≥ 0.1 core used by other processes): " + "; ".join(shared) + ".")
    else:
        add("No run shared the machine with other work (< 0.1 core used by other processes in each).")
    add("")
    add("## Memory (service RSS)")
    add("")
    mem = report["memory"]
    add(
        f"Idle before load {fmt(mem['idle_before_load_mib'])} MiB; peak {fmt(mem['peak_vmhwm_mib'])} MiB (VmHWM), "
        f"{fmt(mem['peak_sampled_mib'])} MiB max of {mem['samples']} VmRSS samples every 0.5 s; "
        f"{fmt(mem['after_load_mib'])} MiB after the load."
    )
    add("")
    verify = report.get("verify")
    if verify:
        add("## Correctness after the load (tools/seed_verify.py)")
        add("")
        add(
            f"{verify.get('created', '?')} messages over {verify.get('channels', '?')} channels at concurrency "
            f"{verify.get('concurrency', '?')}: listed in seq order {'yes' if verify.get('order_errors') == 0 and verify.get('list_missing') == 0 else 'NO'}; "
            f"events {verify.get('events_received', '?')} received, {verify.get('events_lost', '?')} lost, "
            f"{verify.get('event_duplicates', '?')} duplicates, {verify.get('event_order_errors', '?')} out of order; "
            f"event delay p50 {fmt(verify.get('event_delay_ms', {}).get('p50'))} ms, p99 {fmt(verify.get('event_delay_ms', {}).get('p99'))} ms; "
            f"**{'ok' if verify.get('ok') else 'FAILED'}**."
        )
        add("")
    add("## Latency percentiles")
    add("")
    for scenario in report["plots"]:
        add(f"![{scenario}](latency-{scenario}.svg)")
    add("")
    return "\n".join(lines)


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(sys.argv) == 2 else 2
    out = sys.argv[1]
    raw = os.path.join(out, "raw")
    meta = read_meta(raw)
    runs = wrk_runs(raw, meta)
    pgbench = pgbench_runs(raw)
    redis = redis_runs(raw)
    pages = {}
    if os.path.exists(os.path.join(raw, "pages.json")):
        pages.update(json.load(open(os.path.join(raw, "pages.json"))))
    for key in ("cache_hit_bytes", "answer_bytes", "timeline_memory_usage", "timeline_entries"):
        if meta.get(key, "").isdigit():
            pages[key] = int(meta[key])
    report = {
        "machine": meta,
        "scenarios": runs,
        "pgbench": pgbench,
        "redis": redis,
        "ratios": ratios(runs, pgbench, redis),
        "baseline": baseline_comparison(out, runs),
        "memory": memory(raw, meta),
        "pages": pages,
        "plots": [],
    }
    seed_path = os.path.join(raw, "seed.txt")
    if os.path.exists(seed_path):
        report["seeding"] = open(seed_path).read().strip().splitlines()[-1]
    verify_path = os.path.join(raw, "verify-after-load.json")
    if os.path.exists(verify_path):
        report["verify"] = json.load(open(verify_path))
    for scenario in SCENARIOS:
        series = [
            (f"{r['connections']} conns", r["latency_ms"], False) for r in runs if r["scenario"] == scenario
        ]
        # A limit's line is dashed, in the colour of the service's line at the same concurrency.
        limit_script = {"create": "create-minimal", "older": "older-minimal"}.get(scenario)
        series += [
            (f"pgbench {limit_script} {r['connections']} conns", r["latency_ms"], True)
            for r in pgbench
            if r["script"] == limit_script and r["latency_ms"]
        ]
        if series:
            title = f"{scenario}: latency by percentile"
            svg_plot(title, SCENARIOS[scenario], series, os.path.join(out, f"latency-{scenario}.svg"))
            report["plots"].append(scenario)
    with open(os.path.join(out, "report.json"), "w") as target:
        json.dump(report, target, indent=2)
    with open(os.path.join(out, "report.md"), "w") as target:
        target.write(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
