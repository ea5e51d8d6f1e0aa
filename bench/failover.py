"""Leader failover, side by side: paddock and ZooKeeper 3.8 as 3-node ensembles.

Each round stops the current leader (SIGKILL, a crash, or SIGTERM, a clean
stop) while a kazoo client, connected to a surviving member, writes; the
figure is the time from the signal to the first write that succeeds after it (the client's reconnects included, as a user
sees it). The stopped member is restarted before the next round. Run by
bench/failover.sh, which provides kazoo and the servers; writes a Markdown
report.
"""

import argparse
import datetime
import logging
import os
import signal as signal_module
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from kazoo.client import KazooClient

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def four_letter(port, word):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(word.encode())
            out = b""
            while chunk := s.recv(4096):
                out += chunk
            return out.decode(errors="replace")
    except OSError:
        return ""


class Ensemble:
    """Three members on free 127.0.0.1 ports, zoo.cfg at ZooKeeper's defaults."""

    def __init__(self, kind, work, paddock_bin, tick_ms):
        self.kind, self.work, self.paddock_bin, self.tick_ms = kind, work, paddock_bin, tick_ms
        self.peers = [(free_port(), free_port()) for _ in range(3)]
        self.clients = [free_port() for _ in range(3)]
        self.lines = "".join(f"server.{i + 1}=127.0.0.1:{a}:{b}\n" for i, (a, b) in enumerate(self.peers))
        self.pids = {}

    def start(self, i):
        d = os.path.join(self.work, f"{self.kind}{i}")
        if self.kind == "zookeeper":
            os.makedirs(os.path.join(d, "data"), exist_ok=True)
            with open(os.path.join(d, "data", "myid"), "w") as f:
                f.write(f"{i}\n")
            # compat/zookeeper.sh writes tickTime=2000; a later line wins.
            env = dict(os.environ, ZK_WAIT="0", ZK_EXTRA_CFG=f"tickTime={self.tick_ms}\n{self.lines}")
            subprocess.run([os.path.join(REPO, "compat", "zookeeper.sh"), "start", d, str(self.clients[i - 1])],
                           env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with open(os.path.join(d, "zk.pid")) as f:
                self.pids[i] = int(f.read())
            return
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "myid"), "w") as f:
            f.write(f"{i}\n")
        cfg = os.path.join(d, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write(f"tickTime={self.tick_ms}\ninitLimit=10\nsyncLimit=5\ndataDir={d}\nclientPort={self.clients[i - 1]}\n"
                    f"clientPortAddress=127.0.0.1\nadmin.enableServer=false\n{self.lines}")
        with open(os.path.join(d, "stderr"), "a") as err:
            self.pids[i] = subprocess.Popen([self.paddock_bin, "--config", cfg], stdout=subprocess.DEVNULL,
                                            stderr=err).pid

    def kill(self, i, sig=9):
        pid = self.pids.pop(i)
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        # Reap our own child (paddock); ZooKeeper's JVM is not ours to wait for.
        for _ in range(3000):
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    return
            except ChildProcessError:
                pass
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.01)

    def stop(self):
        for i in list(self.pids):
            self.kill(i)

    def leader(self, within=60):
        deadline = time.time() + within
        while time.time() < deadline:
            for i in self.pids:
                if "Mode: leader" in four_letter(self.clients[i - 1], "srvr"):
                    return i
            time.sleep(0.05)
        raise RuntimeError(f"{self.kind}: no leader within {within} s")

    def all_serving(self, within=60):
        deadline = time.time() + within
        while time.time() < deadline:
            if all("Mode:" in four_letter(self.clients[i - 1], "srvr") for i in self.pids):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind}: members not serving within {within} s")


def failover_round(ens, path, sig):
    """Stops the leader with `sig`; returns seconds from the signal to the next successful write."""
    leader = ens.leader()
    survivor = next(i for i in (1, 2, 3) if i != leader)
    # Reconnect every 20 ms, not with kazoo's default exponential back-off
    # (0.1 s doubling), which would round both servers' figures up to its steps.
    retry = {"max_tries": -1, "delay": 0.02, "backoff": 1, "max_jitter": 0.0}
    zk = KazooClient(hosts=f"127.0.0.1:{ens.clients[survivor - 1]}", timeout=30, connection_retry=retry)
    zk.start(timeout=30)
    try:
        zk.ensure_path(path)
        zk.create(f"{path}/n", b"", sequence=True)
        stopped = time.monotonic()
        ens.kill(leader, sig)
        while True:
            try:
                zk.create(f"{path}/n", b"", sequence=True)
                return time.monotonic() - stopped
            except Exception:  # connection loss, not serving: retry as an application would
                if time.monotonic() - stopped > 60:
                    raise RuntimeError(f"{ens.kind}: no write within 60 s of the leader's death")
                time.sleep(0.01)
    finally:
        zk.stop()
        zk.close()
        ens.start(leader)
        ens.all_serving()


def measure(kinds, work, paddock_bin, tick_ms, rounds, signals):
    """Failover times in seconds, by (signal, server), from fresh ensembles at `tick_ms`."""
    times = {(name, kind): [] for name in signals for kind in kinds}
    ensembles = {kind: Ensemble(kind, os.path.join(work, f"tick{tick_ms}"), paddock_bin, tick_ms) for kind in kinds}
    try:
        for ens in ensembles.values():
            for i in (1, 2, 3):
                ens.start(i)
        for ens in ensembles.values():
            ens.all_serving()
        for r in range(rounds):
            # Alternate, so that machine noise hits both alike.
            for name, sig in signals.items():
                for kind, ens in ensembles.items():
                    t = failover_round(ens, "/failover", sig)
                    times[(name, kind)].append(t)
                    print(f"tickTime={tick_ms} {name} round {r + 1}: {kind:9} {t * 1000:6.0f} ms", file=sys.stderr,
                          flush=True)
    finally:
        for ens in ensembles.values():
            ens.stop()
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tick-times", default="2000 1000", help="tickTimes to measure at, ms (space-separated)")
    ap.add_argument("--signals", default="KILL TERM",
                    help="how the leader is stopped: KILL (a crash), TERM (a clean stop, as in a rolling restart)")
    ap.add_argument("--out", default=os.path.join(REPO, "docs", "failover.md"))
    ap.add_argument("--paddock-bin", required=True)
    args = ap.parse_args()
    ticks = [int(t) for t in args.tick_times.split()]
    signals = {name: getattr(signal_module, f"SIG{name}") for name in args.signals.split()}

    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="paddock-failover-") as work:
        results = {tick: measure(("paddock", "zookeeper"), work, args.paddock_bin, tick, args.rounds, signals) for tick in ticks}

    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    ms = lambda t: f"{t * 1000:,.0f}"
    rows = []
    for tick, times in results.items():
        for name in signals:
            for kind in ("paddock", "zookeeper"):
                ts = times[(name, kind)]
                rows.append(f"| {tick} | SIG{name} | {kind} | {ms(min(ts))} | {ms(statistics.median(ts))} | "
                            f"{ms(max(ts))} | {', '.join(ms(t) for t in ts)} |")
            ratio = statistics.median(times[(name, "paddock")]) / statistics.median(times[(name, "zookeeper")])
            rows.append(f"| {tick} | SIG{name} | paddock/ZooKeeper | | {ratio:.2f}x | | |")
    report = f"""# Leader failover: paddock against ZooKeeper 3.8

Generated by `bench/failover.sh`; do not edit by hand, run it again.

- command: `bench/failover.sh --rounds {args.rounds} --tick-times "{args.tick_times}" --signals "{args.signals}"`
- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M:%S} UTC (took {time.time() - started:.0f} s); paddock `{commit}`
- 3-node ensembles on 127.0.0.1 (zoo.cfg: the tickTime shown, initLimit=10, syncLimit=5), fresh for each tickTime; ZooKeeper set up as for the benchmarks (compat/zookeeper.sh)
- each round: a kazoo client on a surviving member (reconnecting every 20 ms) writes, the leader gets SIGKILL (a crash) or SIGTERM (a clean stop, as in a rolling restart), and the client retries its write until one succeeds; the figure is the time from the signal to that write's success, the client's reconnects included. The stopped member is restarted before the next round; rounds alternate between the servers.

| tickTime (ms) | leader stopped by | server | best (ms) | median (ms) | worst (ms) | every round (ms) |
|---:|---|---|---:|---:|---:|---|
{chr(10).join(rows)}

Below 1, the ratio of the medians says paddock was faster.

A stopped leader's peer port refuses connections, so the paddock survivor
the others would elect (the longest log, then the lowest id) calls an
election as soon as the leader lease (the longest
election timeout, 8 heartbeats of tickTime/20) is out after the leader's
last append, plus a heartbeat: about 0.9 s at tickTime=2000
(src/raft/leader_gone.rs). A leader that is silent but not gone is left to
the timers: the lease plus an election timeout, 1.2-1.6 s at
tickTime=2000. ZooKeeper's followers notice the closed connection, run
their leader election and sync with the new leader.
"""
    with open(args.out, "w") as f:
        f.write(report)
    print(report)


if __name__ == "__main__":
    main()
