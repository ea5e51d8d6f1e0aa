#!/usr/bin/env python3
"""Renders the JSON results of bench/compare.sh into docs/benchmarks.md.

Usage: render.py RESULTS_DIR OUT.md --command ... --started ... (see compare.sh)

Each run is RESULTS_DIR/<workload>.<server>.<round>.json as written by
`paddock bench --json`; with several rounds the run of highest throughput
is shown (noise from other work on the machine only ever slows a run down),
and every round's throughput is listed. A run without JSON (it could not complete) is shown as failed.
"""

import argparse
import glob
import json
import os
import statistics

SERVERS = [("paddock", "paddock"), ("zookeeper", "ZooKeeper"), ("paddock3", "paddock 3-node"), ("zookeeper3", "ZooKeeper 3-node")]
# (suffix of the server names in the results, heading): single node, then 3-node ensembles.
TOPOLOGIES = [("", "single node"), ("3", "3-node ensemble")]
WORKLOADS = [
    ("create", "unique persistent znodes"),
    ("set", "setData on random keys of a pre-created set"),
    ("get", "getData on random keys of a pre-created set"),
    ("mixed", "90% getData / 10% setData on a pre-created set"),
    ("create-seq-ephemeral", "ephemeral sequential znodes under one parent (the lock recipe's hot path)"),
    ("multi", "transactions of three ops: create, setData, delete of one znode"),
    (
        "watch",
        "one writer, every other session re-arming a one-shot data watch; latency from the write's reply to each "
        "event (0.001 ms: the event arrived before the writer's reply), and from the write's sending",
    ),
    ("lock", "full acquire/release cycles of the sequential-ephemeral lock recipe, all sessions on one lock"),
]
MIB = 1024 * 1024


def load(results):
    """{(workload, server): [report, ...]} and the failed runs' last stderr line."""
    runs, failures = {}, {}
    for path in sorted(glob.glob(os.path.join(results, "*.err"))):
        workload, server, tag = os.path.basename(path)[: -len(".err")].rsplit(".", 2)
        json_path = path[: -len(".err")] + ".json"
        if os.path.exists(json_path):
            with open(json_path) as f:
                runs.setdefault((workload, server), []).append(json.load(f))
        else:
            with open(path) as f:
                lines = [l.strip() for l in f if l.strip()]
            failures[(workload, server)] = lines[-1] if lines else "no output"
    return runs, failures


def best_run(reports):
    if not reports:
        return None
    return max(reports, key=lambda r: r["throughput"])


def num(v, digits=0):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def ms(v):
    if v is None:
        return "–"
    return f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}x"


def errors(r):
    if r is None:
        return "run failed"
    e = r.get("errors") or {}
    return "none" if not e else ", ".join(f"{k} {v}" for k, v in sorted(e.items()))


def get(r, *keys):
    for k in keys:
        if r is None:
            return None
        r = r.get(k)
    return r


def verdict(p, z):
    """The issue's bar: 2x throughput, half the p99, half the server CPU."""
    if p is None or z is None:
        return "no data"
    misses = []
    if p["throughput"] < 2 * z["throughput"]:
        misses.append("throughput")
    if get(p, "latency_ms", "p99") > 0.5 * get(z, "latency_ms", "p99"):
        misses.append("p99")
    pc, zc = p.get("server_cpu_us_per_op"), z.get("server_cpu_us_per_op")
    if pc is None or zc is None or pc > 0.5 * zc:
        misses.append("CPU")
    return "meets the bar" if not misses else "**not yet** (" + ", ".join(misses) + ")"


def workload_table(o, w, sfx, topo, best, runs, failures):
    """One workload's table for one topology."""
    ps, zs = "paddock" + sfx, "zookeeper" + sfx
    p, z = best.get((w, ps)), best.get((w, zs))
    unit = get(p, "unit") or get(z, "unit") or "ops"
    o.append(f"| {topo} | paddock | ZooKeeper | paddock/ZooKeeper |")
    o.append("|---|---:|---:|---:|")

    def row(label, f, fmt):
        pv, zv = f(p), f(z)
        o.append(f"| {label} | {fmt(pv)} | {fmt(zv)} | {ratio(pv, zv)} |")

    row(f"throughput ({unit}/s)", lambda r: get(r, "throughput"), num)
    for q, label in [("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")]:
        row(f"latency {label} (ms)", lambda r, q=q: get(r, "latency_ms", q), ms)
    if w == "watch":
        row("from the write's sending, p50 (ms)", lambda r: get(r, "watch_from_write_ms", "p50"), ms)
        row("from the write's sending, p99 (ms)", lambda r: get(r, "watch_from_write_ms", "p99"), ms)
    row("server CPU (µs/op)", lambda r: get(r, "server_cpu_us_per_op"), lambda v: num(v, 1))
    row("server CPU (% of a core)", lambda r: get(r, "server_cpu_percent"), num)
    row("server RSS (MiB)", lambda r: None if get(r, "server_rss_bytes") is None else r["server_rss_bytes"] / MIB, lambda v: num(v, 1))
    row("client CPU (µs/op)", lambda r: get(r, "client_cpu_us_per_op"), lambda v: num(v, 1))
    o.append(f"| errors | {errors(p)} | {errors(z)} | |")
    if w == "lock":
        o.append(
            f"| mutual exclusion | {'held' if get(p, 'lock_violations') == 0 else get(p, 'lock_violations')} "
            f"| {'held' if get(z, 'lock_violations') == 0 else get(z, 'lock_violations')} | |"
        )
    o.append("")
    for s, name in SERVERS:
        if s in (ps, zs) and (w, s) in failures:
            o.append(f"- {name}'s run failed: `{failures[(w, s)]}`\n")
    if len(runs.get((w, ps), [])) > 1:
        spread = [num(r["throughput"]) for r in sorted(runs[(w, ps)], key=lambda r: r["throughput"])]
        zspread = [num(r["throughput"]) for r in sorted(runs.get((w, zs), []), key=lambda r: r["throughput"])]
        o.append(f"Every round (throughput, best shown above): paddock {', '.join(spread)}; ZooKeeper {', '.join(zspread)}.\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("out")
    for opt in ["command", "started", "elapsed", "load", "machine", "paddock", "zookeeper", "params", "settle", "quick", "plot"]:
        ap.add_argument("--" + opt, default="")
    a = ap.parse_args()
    runs, failures = load(a.results)
    best = {k: best_run(v) for k, v in runs.items()}

    o = []
    o.append("# Benchmarks: paddock against ZooKeeper 3.8\n")
    o.append("Generated by `bench/compare.sh`; do not edit by hand, run it again.\n")
    if a.quick == "1":
        o.append("> **Smoke run (`--quick`)**: windows of a few seconds, figures are indicative only.\n")
    o.append(f"- command: `{a.command.strip()}`")
    o.append("- each figure is the best of the rounds run (the machine is shared; other work only slows a run down)")
    o.append(f"- date: {a.started} (took {a.elapsed} s)")
    o.append(f"- machine: {a.machine}; load average before -> after: {a.load}")
    o.append(f"- paddock: `{a.paddock}`, release build, data dirs on local disk; single node, and a 3-node ensemble on 127.0.0.1")
    o.append(
        f"- ZooKeeper: {a.zookeeper}, standalone and a 3-node ensemble, `serverCnxnFactory=NettyServerCnxnFactory`, "
        "`forceSync=yes` (fsync on), JVM defaults (compat/zookeeper.sh)"
    )
    o.append("- 3-node runs spread the client's sessions round-robin over the three servers; CPU and RSS are summed over the three processes")
    o.append(
        f"- client: `paddock bench` (the same Rust load generator for both), {a.params}; "
        "servers run alternately, one workload at a time, on one machine with the client; "
        f"each run starts once all servers are idle ({a.settle}), "
        "so that one server's leftover work (snapshots, garbage collection, compaction) is not measured in the other's run"
    )
    o.append(
        "- server CPU is user+system time of the server process over the measured window "
        "(/proc/PID/stat) divided by the operations; RSS is VmRSS at the end of the window\n"
    )

    o.append("## Summary\n")
    o.append(
        "The bar (issue 6): at least 2x ZooKeeper's throughput, at most half its p99 and at "
        "most half its server CPU per operation, on every workload.\n"
    )
    o.append("| workload | servers | paddock ops/s | ZooKeeper ops/s | throughput ratio | p99 ratio | CPU/op ratio | verdict |")
    o.append("|---|---|---:|---:|---:|---:|---:|---|")
    for (w, _), (sfx, topo) in [(w, t) for t in TOPOLOGIES for w in WORKLOADS]:
        p, z = best.get((w, "paddock" + sfx)), best.get((w, "zookeeper" + sfx))
        if p is None and z is None and (w, "paddock" + sfx) not in failures:
            continue
        o.append(
            f"| {w} | {topo} | {num(get(p, 'throughput'))} | {num(get(z, 'throughput'))} "
            f"| {ratio(get(p, 'throughput'), get(z, 'throughput'))} "
            f"| {ratio(get(p, 'latency_ms', 'p99'), get(z, 'latency_ms', 'p99'))} "
            f"| {ratio(get(p, 'server_cpu_us_per_op'), get(z, 'server_cpu_us_per_op'))} "
            f"| {verdict(p, z)} |"
        )
    o.append("")
    o.append("Ratios are paddock / ZooKeeper: above 1 is better for throughput, below 1 is better for latency and CPU.\n")
    if a.plot:
        o.append(f"![Throughput and p99 latency per workload, paddock and ZooKeeper]({a.plot})\n")
        o.append("Drawn by `paddock bench-plot` from the same results.\n")

    o.append("## Memory per znode\n")
    # The measurement at its usual scale, then (unless skipped) at a larger one.
    for key in ("memory", "memory-large"):
        pm, zm = best.get((key, "paddock")), best.get((key, "zookeeper"))
        if pm or zm:
            n = get(pm, "memory", "znodes") or get(zm, "memory", "znodes")
            vs = get(pm, "value_size") or get(zm, "value_size")
            o.append(f"Resident memory of a freshly started server before and after creating {num(n)} znodes of {vs} bytes.\n")
            o.append("| | paddock | ZooKeeper | paddock/ZooKeeper |")
            o.append("|---|---:|---:|---:|")
            rows = [
                ("RSS idle (MiB)", lambda r: get(r, "memory", "rss_idle_bytes"), lambda v: num(v / MIB, 1)),
                ("RSS after (MiB)", lambda r: get(r, "memory", "rss_after_bytes"), lambda v: num(v / MIB, 1)),
                (
                    "growth (MiB)",
                    lambda r: None if r is None else r["memory"]["rss_after_bytes"] - r["memory"]["rss_idle_bytes"],
                    lambda v: num(v / MIB, 1),
                ),
                ("bytes per znode", lambda r: get(r, "memory", "bytes_per_znode"), lambda v: num(v)),
                ("creates/s while filling", lambda r: get(r, "throughput"), lambda v: num(v)),
            ]
            for label, f, fmt in rows:
                pv, zv = f(pm), f(zm)
                o.append(f"| {label} | {'–' if pv is None else fmt(pv)} | {'–' if zv is None else fmt(zv)} | {ratio(pv, zv)} |")
            o.append("")
        memory_failures = [f"- {name}'s memory run ({key}) failed: `{failures[(key, s)]}`" for s, name in SERVERS if (key, s) in failures]
        if memory_failures:
            o.extend(memory_failures + [""])

    o.append("## Per workload\n")
    for w, desc in WORKLOADS:
        present = [(sfx, topo) for sfx, topo in TOPOLOGIES
                   if any((w, srv + sfx) in best or (w, srv + sfx) in failures for srv in ("paddock", "zookeeper"))]
        if not present:
            continue
        o.append(f"### {w}\n")
        o.append(desc[0].upper() + desc[1:] + ".\n")
        for sfx, topo in present:
            workload_table(o, w, sfx, topo, best, runs, failures)

    o.append("## How to reproduce\n")
    o.append("```")
    o.append("bench/compare.sh            # about 18 minutes (single node and 3 nodes); --quick for a smoke run")
    o.append("bench/compare.sh --topologies 1   # single node only, about 10 minutes")
    o.append("paddock bench --help        # the load generator alone, against any ZooKeeper-protocol server")
    o.append("```")
    with open(a.out, "w") as f:
        f.write("\n".join(o).rstrip() + "\n")


if __name__ == "__main__":
    main()
