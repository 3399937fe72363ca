#!/usr/bin/env python3
"""Many connections over a cluster of server processes: ours beside Node's.

`make bench-scale` (100,000 connections) and the CI test bench_scale_small
(10,000 over 3 nodes, correctness only). One throwaway PostgreSQL
(ci/pg.sh); for each server kind in turn, N node processes on their own
ports sharing it:

  ours  build/release/cluster-node (spaces/cluster.c)
  node  tests/conformance/reference_cluster.js (socket.io 4.8 with
        @socket.io/postgres-adapter)

and M bench-loadgen processes (--scenario cluster, the raw client) whose
connections go to the nodes round robin, as an L4 balancer would spread
them. N and M follow from the per-process open-file limit (the hard
RLIMIT_NOFILE, read with getrlimit: each process keeps below it with a
margin; a higher limit means fewer processes). Per round and server kind:

  ramp       connections established per second, all generators at once
  memory     sum of the nodes' RSS per connection after settling (and the
             growth over the nodes' RSS before any connection), the kernel's
             TCP memory from /proc/net/sockstat apart (both ends' sockets)
  idle       the nodes' CPU seconds per minute, all connections quiet
  broadcast  one node (the sender's) broadcasts to room "bench" (every
             receiver) and to room "r1k" (1 in --room-every per node), one
             broadcast at a time: time from the send until the last receiver
             has it (kernel receive timestamps), the nodes' CPU per delivery,
             every delivery counted (lost, duplicated, unexpected)

Then the kernel floor: bench-floor sized to the same socket count (split
over processes, each under the open-file limit, run at once), its time until
the last socket has a round.

Figures are medians over --rounds; a broadcast's are p50/p99 over its
--broadcasts repetitions (pooled over the rounds). Exit status 0 only when
every connection was made and every broadcast reached every receiver
exactly once.
"""
import argparse
import json
import math
import os
import queue
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def log(msg):
    print(f"scale: {msg}", file=sys.stderr, flush=True)


# ---- /proc ----

def proc_cpu(pid):
    """User + system CPU seconds of pid, or 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def proc_kb(pid, name, key):
    """The kB figure after `key` in /proc/PID/name, or 0."""
    try:
        with open(f"/proc/{pid}/{name}") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_rss_kb(pid):
    return proc_kb(pid, "status", "VmRSS:")


def proc_pss_kb(pid):
    """Proportional set size: shared pages (the libraries every node maps)
    divided among the processes sharing them, so a sum over the nodes counts
    them once."""
    return proc_kb(pid, "smaps_rollup", "Pss:")


def sockstat():
    """(TCP sockets in use, TCP memory in bytes) from /proc/net/sockstat."""
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                v = line.split()
                d = dict(zip(v[1::2], v[2::2]))
                return int(d.get("inuse", 0)), int(d.get("mem", 0)) * PAGE
    return 0, 0


def slab_bytes():
    """The kernel's slab memory (SReclaimable + SUnreclaim) from /proc/meminfo."""
    n = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(("SReclaimable:", "SUnreclaim:")):
                n += int(line.split()[1]) * 1024
    return n


def pg_pids(pgdir):
    """The PostgreSQL cluster's processes: the postmaster and its children."""
    try:
        with open(os.path.join(pgdir, "data", "postmaster.pid")) as f:
            master = int(f.readline())
    except (OSError, ValueError):
        return []
    pids = [master]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == master:
                        pids.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return pids


_ports_given = set()


def free_port():
    """A free port, never the same twice in a run, below the ephemeral range.
    The nodes of a round are all started before any of them listens: with
    bind(0) two of them once got the same port ("node on port ... exited":
    the second could not listen), and a port from the ephemeral range may
    also go to a generator's outgoing connection first."""
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    while True:
        p = random.randrange(10000, max(10001, lo - 1))
        if p in _ports_given:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            s.close()
        _ports_given.add(p)
        return p


def wait_port(port, proc, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"node on port {port} exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


# ---- The load generators ----

class Gen:
    """One bench-loadgen --scenario cluster process and its answer lines."""

    def __init__(self, idx, argv, errpath):
        self.idx = idx
        self.err = open(errpath, "w")
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err, text=True, bufsize=1)
        self.q = queue.Queue()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            self.q.put(line.split())
        self.q.put(None)

    def send(self, line):
        try:
            self.p.stdin.write(line + "\n")
            self.p.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def wait(self, word, timeout, key=None):
        """The next line starting with word (and key as its 2nd field)."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            try:
                v = self.q.get(timeout=left)
            except queue.Empty:
                return None
            if v is None:
                raise RuntimeError(f"load generator {self.idx} exited "
                                   f"(status {self.p.wait()}); see {self.err.name}")
            if v and v[0] == "ERROR":
                raise RuntimeError(f"load generator {self.idx}: {' '.join(v)}")
            if v and v[0] == word and (key is None or (len(v) > 1 and v[1] == key)):
                return v

    def stop(self):
        """Its STATS line (after "quit", sent to every generator first)."""
        v = None
        try:
            v = self.wait("STATS", 20)
        except RuntimeError:
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.err.close()
        return v


def all_wait(gens, word, timeout, key=None):
    """One answer from every generator; raises when one does not come."""
    out = []
    end = time.monotonic() + timeout
    for g in gens:
        v = g.wait(word, max(0.1, end - time.monotonic()), key)
        if v is None:
            raise RuntimeError(f"load generator {g.idx}: no {word} {key or ''} "
                               f"within {timeout} s")
        out.append(v)
    return out


# ---- One round against one server kind ----

def start_nodes(kind, n, url, a, workdir):
    procs, ports = [], []
    for i in range(n):
        port = free_port()
        if kind == "ours":
            argv = [a.cluster_node, "--port", str(port), "--database-url", url]
        elif kind.startswith("faulty-"):
            # --selftest: one server that loses or repeats a tick (no cluster).
            argv = ["node", os.path.join(ROOT, "tests", "bench", "faulty_server.js"),
                    "--port", str(port), "--fault", kind[7:], "--every", "37"]
        else:
            argv = ["node", os.path.join(ROOT, "tests", "conformance", "reference_cluster.js"),
                    "--port", str(port), "--database-url", url]
        if a.taskset:
            argv = ["taskset", "-c", a.taskset] + argv
        err = open(os.path.join(workdir, f"{kind}-node{i}.log"), "w")
        procs.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err))
        ports.append(port)
    try:
        for p, port in zip(procs, ports):
            wait_port(port, p, 60)
    except Exception:
        stop_procs(procs)  # the others of the round would be left running
        raise
    # The LISTEN of each node is in place shortly after it accepts.
    time.sleep(2)
    return procs, ports


def stop_procs(procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_round(kind, a, plan, url, pgdir, workdir, rnd, r=None):
    """One round; its figures go into r (kept also when it fails part way)."""
    r = {} if r is None else r
    r.update(kind=kind, round=rnd, ok=False)
    nodes, ports = start_nodes(kind, plan["nodes"], url, a, workdir)
    pids = [p.pid for p in nodes]
    gens = []
    try:
        rss0 = sum(proc_rss_kb(p) for p in pids)
        inuse0, mem0 = sockstat()
        slab0 = slab_bytes()
        per = plan["per_gen"]
        base = 0
        for i in range(plan["gens"]):
            k = min(per, a.conns - base)
            argv = [a.loadgen, "--scenario", "cluster", "--client", "raw",
                    "--ports", ",".join(map(str, ports)), "--conns", str(k),
                    "--id-base", str(base), "--room-every", str(a.room_every),
                    "--inflight", str(a.inflight), "--timeout", "7200",
                    "--sources", plan["sources"]]
            if i == 0:
                argv.append("--sender")
            if a.taskset:
                argv = ["taskset", "-c", a.taskset] + argv
            gens.append(Gen(i, argv, os.path.join(workdir, f"{kind}-r{rnd}-gen{i}.log")))
            base += k
        # Ramp: every generator at once. Meanwhile, once a second, the
        # nodes' RSS against the connections open so far (both ends of each
        # are TCP sockets in use), for the plot.
        samples = [(0, rss0)]
        stop = threading.Event()

        def sample():
            while not stop.wait(1.0):
                samples.append((max(0, (sockstat()[0] - inuse0) // 2),
                                sum(proc_rss_kb(p) for p in pids)))
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t_ramp = time.monotonic()
        try:
            conn = all_wait(gens, "CONNECTED", min(a.connect_timeout, left(a)))
        except RuntimeError:
            n = samples[-1][0]
            r["ramp_rate"] = n / (time.monotonic() - t_ramp)
            r["ramp_incomplete"] = n
            raise RuntimeError(f"ramp not finished in time: about {n} of {a.conns} connected "
                               f"({r['ramp_rate']:.0f}/s)")
        finally:
            stop.set()
            sampler.join()
        r["ramp_samples"] = samples
        ready = sum(int(v[1]) for v in conn)
        failed = sum(int(v[2]) for v in conn)
        t0 = min(int(v[3]) for v in conn)
        t1 = max(int(v[4]) for v in conn)
        r["ready"], r["failed"] = ready, failed
        r["ramp_s"] = (t1 - t0) / 1e9
        r["ramp_rate"] = ready / r["ramp_s"] if t1 > t0 else 0
        log(f"{kind} round {rnd}: {ready} connected ({failed} failed) in {r['ramp_s']:.1f} s")
        # Connections that failed fail the round (ok stays false), but the
        # figures are still taken over those that are up.
        # Memory, after the settling.
        time.sleep(a.settle)
        rss1 = sum(proc_rss_kb(p) for p in pids)
        r["pss_per_conn_b"] = sum(proc_pss_kb(p) for p in pids) * 1024 / ready
        inuse1, mem1 = sockstat()
        slab1 = slab_bytes()
        r["slab_per_conn_b"] = (slab1 - slab0) / ready
        r["rss_total_kb"] = rss1
        r["ramp_samples"].append((ready, rss1))
        r["rss_per_conn_b"] = rss1 * 1024 / ready
        r["rss_growth_per_conn_b"] = (rss1 - rss0) * 1024 / ready
        r["sock_mem_per_conn_b"] = (mem1 - mem0) / ready
        r["tcp_inuse_added"] = inuse1 - inuse0
        # Idle: the heartbeat alone.
        c0 = sum(proc_cpu(p) for p in pids)
        t = time.monotonic()
        time.sleep(a.idle)
        c1 = sum(proc_cpu(p) for p in pids)
        r["idle_cpu_s_per_min"] = (c1 - c0) * 60 / (time.monotonic() - t)
        log(f"{kind} round {rnd}: RSS {r['rss_per_conn_b']:.0f} B/conn, idle "
            f"{r['idle_cpu_s_per_min']:.2f} CPU s/min")
        # Rooms.
        for g in gens:
            g.send("join")
        joined = sum(int(v[1]) for v in all_wait(gens, "JOINED", a.connect_timeout))
        r["joined"] = joined
        # Broadcasts, one at a time.
        pgp = pg_pids(pgdir)
        b = 0
        lost_total = 0
        for room in ("bench", "r1k"):
            lat, deliv, cpu, pgcpu, expect = [], 0, 0.0, 0.0, 0
            for _ in range(a.broadcasts):
                if left(a) < 60:
                    log(f"{kind}: broadcasts to {room} cut short by --deadline-min")
                    break
                b += 1
                for g in gens:
                    g.send(f"expect {b} {room}")
                expect = sum(int(v[2]) for v in all_wait(gens, "ARMED", 60, str(b)))
                s0 = sum(proc_cpu(p) for p in pids)
                q0 = sum(proc_cpu(p) for p in pgp)
                gens[0].send(f"send {b} {room}")
                sent = gens[0].wait("SENT", 60, str(b))
                if sent is None:
                    raise RuntimeError(f"broadcast {b} not sent")
                t_send = int(sent[2])
                got, last = 0, 0
                missing = []
                for g in gens:
                    v = g.wait("GOT", a.bcast_timeout, str(b))
                    if v is None:
                        missing.append(g)
                        continue
                    got += int(v[2])
                    last = max(last, int(v[4]))
                for g in missing:
                    g.send("status")
                    v = g.wait("STATUS", 10)
                    if v and int(v[1]) == b:
                        got += int(v[2])
                cpu += sum(proc_cpu(p) for p in pids) - s0
                pgcpu += sum(proc_cpu(p) for p in pgp) - q0
                deliv += got
                if got < expect:
                    lost_total += expect - got
                    log(f"{kind}: broadcast {b} to {room}: {expect - got} of {expect} lost")
                else:
                    lat.append((last - t_send) / 1e6)
            r[f"{room}_receivers"] = expect
            r[f"{room}_lat_ms"] = lat
            r[f"{room}_cpu_per_delivery_us"] = cpu * 1e6 / deliv if deliv else 0
            r[f"{room}_pg_cpu_s"] = pgcpu
            if lat:
                log(f"{kind} round {rnd}: {room} ({expect} receivers) p50 "
                    f"{pct(lat, 50):.1f} ms p99 {pct(lat, 99):.1f} ms")
        r["lost"] = lost_total
    finally:
        for g in gens:
            g.send("quit")
        stats = [g.stop() for g in gens]
        stop_procs(nodes)
    dup = sum(int(v[2]) for v in stats if v)
    bad = sum(int(v[3]) for v in stats if v)
    dropped = sum(int(v[4]) for v in stats if v)
    r.update(dup=dup, bad=bad, dropped=dropped)
    r["ok"] = (r.get("lost", 1) == 0 and dup == 0 and bad == 0 and dropped == 0 and
               r.get("failed", 1) == 0 and None not in stats and
               r.get("joined", 0) == a.conns + plan["members"])
    if not r["ok"]:
        log(f"{kind} round {rnd}: FAILED lost={r.get('lost')} dup={dup} bad={bad} "
            f"dropped={dropped} failed={r.get('failed')} joined={r.get('joined')} "
            f"(want {a.conns + plan['members']})")
    return r


def selftest(a, url, pgdir, workdir):
    """A lost tick and a repeated one must each fail a round."""
    b = argparse.Namespace(**vars(a))
    b.conns, b.nodes, b.gens, b.broadcasts = 300, 1, 2, 3
    b.idle, b.settle, b.bcast_timeout = 0, 0, 3
    plan = make_plan(b)
    good = True
    for kind, field in (("faulty-drop", "lost"), ("faulty-dup", "dup")):
        try:
            r = run_round(kind, b, plan, url, pgdir, workdir, 0)
        except RuntimeError as e:
            r = {"ok": False, "error": str(e)}
        caught = not r["ok"] and (r.get(field) or 0) > 0
        print(f"selftest {kind}: {field}={r.get(field)} "
              f"{'caught' if caught else 'NOT CAUGHT'} {r.get('error', '')}")
        good = good and caught
    return good


T_START = time.monotonic()


def left(a):
    """Seconds until --deadline-min (from the start of the run)."""
    return max(1.0, a.deadline_min * 60 - (time.monotonic() - T_START))


def pct(v, p):
    s = sorted(v)
    if not s:
        return 0.0
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


# ---- The kernel floor ----

def floor(a, plan, conns):
    k = plan["floor_procs"]
    each = math.ceil(conns / k)
    procs = []
    for i in range(k):
        argv = [a.floor, "--conns", str(min(each, conns - i * each)),
                "--rounds", str(a.broadcasts), "--size", "34",
                "--sender-cpu", "-1", "--receiver-cpu", "-1", "--tag", f"scale{i}"]
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    p50, p99 = [], []
    for p in procs:
        out, err = p.communicate(timeout=600)
        line = next((x for x in out.splitlines() if x.startswith("RESULT")), "")
        f = dict(x.split("=", 1) for x in line.split()[1:] if "=" in x)
        if p.returncode != 0 or "p50_us" not in f:
            log(f"bench-floor failed: {err.strip()[-300:]}")
            return None
        p50.append(float(f["p50_us"]) / 1000)
        p99.append(float(f["p99_us"]) / 1000)
    return {"procs": k, "p50_ms": max(p50), "p99_ms": max(p99)}


# ---- Spaces at scale ----

def spaces_at_scale(a, plan, workdir):
    """tests/bench/spaces_scale.js over as many spaces-server nodes."""
    server = os.path.join(a.build_dir, "spaces-server")
    if not os.access(server, os.X_OK):
        log(f"{server} is missing: no Spaces at scale")
        return None
    nodes = max(plan["nodes"], math.ceil(a.spaces_browsers / (plan["per_proc"] - 1000)))
    out = os.path.join(workdir, "spaces.json")
    argv = ["node", os.path.join(ROOT, "tests", "bench", "spaces_scale.js"),
            "--server", server, "--browsers", str(a.spaces_browsers), "--nodes", str(nodes),
            "--users", str(a.spaces_users), "--requests", str(a.spaces_requests),
            "--per-process", str(plan["per_proc"] - 1000), "--json", out]
    log(f"Spaces at scale: {a.spaces_browsers} browsers over {nodes} nodes")
    budget = a.total_min * 60 - (time.monotonic() - T_START)
    with open(os.path.join(workdir, "spaces_scale.log"), "w") as err:
        r = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            out_text, _ = r.communicate(timeout=max(60, budget))
        except subprocess.TimeoutExpired:
            # SIGTERM: it stops its servers and its PostgreSQL itself.
            r.terminate()
            try:
                r.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                r.kill()
                r.communicate()
            log(f"Spaces at scale stopped after {budget:.0f} s (--total-min)")
            return None
    table = out_text[out_text.find("| Spaces at scale"):].strip()
    try:
        with open(out) as f:
            res = json.load(f)
    except (OSError, ValueError):
        log(f"spaces_scale.js failed (status {r.returncode}): {out_text[-500:]}")
        return None
    res["table"] = table
    res["ok"] = res.get("ok") and r.returncode == 0
    return res


# ---- Output ----

def median_of(rounds, key):
    v = [r[key] for r in rounds if key in r]
    return statistics.median(v) if v else 0


def summary(results, floors):
    s = {}
    for kind, rounds in results.items():
        d = {}
        for key in ("ramp_rate", "rss_per_conn_b", "rss_growth_per_conn_b", "pss_per_conn_b",
                    "sock_mem_per_conn_b", "slab_per_conn_b", "idle_cpu_s_per_min",
                    "bench_cpu_per_delivery_us", "r1k_cpu_per_delivery_us",
                    "bench_receivers", "r1k_receivers", "rss_total_kb"):
            d[key] = median_of(rounds, key)
        for room in ("bench", "r1k"):
            lat = [x for r in rounds for x in r.get(f"{room}_lat_ms", [])]
            d[f"{room}_p50_ms"] = pct(lat, 50)
            d[f"{room}_p99_ms"] = pct(lat, 99)
        d["lost"] = sum(r.get("lost", 0) for r in rounds)
        d["dup"] = sum(r.get("dup", 0) for r in rounds)
        d["ok"] = all(r["ok"] for r in rounds)
        d["rounds"] = len(rounds)
        s[kind] = d
    s["floor"] = floors
    return s


def table(s, a, plan):
    kinds = [k for k in ("ours", "node") if k in s]
    fl = s.get("floor") or {}
    rows = [
        ("connections established per second (ramp)", "ramp_rate", "{:.0f}"),
        ("server RSS per connection, all nodes (bytes)", "rss_per_conn_b", "{:.0f}"),
        ("  growth over the idle nodes' RSS (bytes)", "rss_growth_per_conn_b", "{:.0f}"),
        ("  PSS in all: shared library pages counted once, not per node (bytes)", "pss_per_conn_b", "{:.0f}"),
        ("kernel TCP buffer memory per connection, both ends (sockstat, bytes)", "sock_mem_per_conn_b", "{:.0f}"),
        ("kernel slab growth per connection, both ends (meminfo, bytes)", "slab_per_conn_b", "{:.0f}"),
        ("heartbeat CPU at idle (CPU s per minute, all nodes)", "idle_cpu_s_per_min", "{:.2f}"),
        ("broadcast to all: last receiver p50 (ms)", "bench_p50_ms", "{:.1f}"),
        ("broadcast to all: last receiver p99 (ms)", "bench_p99_ms", "{:.1f}"),
        ("broadcast to all: nodes' CPU per delivery (µs)", "bench_cpu_per_delivery_us", "{:.2f}"),
        ("broadcast to r1k: last receiver p50 (ms)", "r1k_p50_ms", "{:.1f}"),
        ("broadcast to r1k: last receiver p99 (ms)", "r1k_p99_ms", "{:.1f}"),
        ("broadcast to r1k: nodes' CPU per delivery (µs)", "r1k_cpu_per_delivery_us", "{:.2f}"),
        ("lost / duplicated deliveries", None, None),
    ]
    head = "| figure | " + " | ".join(kinds) + (" | ours vs node |" if len(kinds) == 2 else " |")
    lines = [head, "|" + " --- |" * (len(kinds) + 1 + (len(kinds) == 2))]
    for label, key, fmt in rows:
        if key is None:
            cells = [f"{s[k]['lost']} / {s[k]['dup']}" for k in kinds]
            ratio = ""
        else:
            cells = [fmt.format(s[k][key]) for k in kinds]
            ratio = ""
            if len(kinds) == 2 and s["node"][key] and s["ours"][key]:
                x = s["ours"][key] / s["node"][key]
                ratio = f"{x:.2f}×" if key == "ramp_rate" else f"{1 / x:.1f}× less" if x < 1 else f"{x:.2f}×"
        lines.append(f"| {label} | " + " | ".join(cells) + (f" | {ratio} |" if len(kinds) == 2 else " |"))
    if fl:
        lines.append(f"| kernel floor, {a.conns} sockets in {fl['procs']} processes: p50 / p99 (ms) | "
                     + " | ".join(f"{fl['p50_ms']:.1f} / {fl['p99_ms']:.1f}" for _ in kinds)
                     + (" | |" if len(kinds) == 2 else " |"))
        if fl["p50_ms"]:
            lines.append("| broadcast to all p50 / kernel floor p50 | "
                         + " | ".join(f"{s[k]['bench_p50_ms'] / fl['p50_ms']:.2f}×" for k in kinds)
                         + (" | |" if len(kinds) == 2 else " |"))
    return "\n".join(lines)


def plot(results, outdir):
    gp = shutil.which("gnuplot")
    if not gp:
        return []
    made = []
    data = os.path.join(outdir, "scale-plot.dat")
    with open(data, "w") as f:
        for kind in ("ours", "node"):
            f.write(f"# {kind}\n")
            for r in results.get(kind, [])[:1]:
                for n, kb in sorted(r.get("ramp_samples", [])):
                    f.write(f"{n} {kb / 1024:.1f}\n")
            f.write("\n\n")
        for kind in ("ours", "node"):
            f.write(f"# {kind} latency\n")
            for room in ("r1k", "bench"):
                lat = [x for r in results.get(kind, []) for x in r.get(f"{room}_lat_ms", [])]
                n = max([r.get(f"{room}_receivers", 0) for r in results.get(kind, [])] or [0])
                if lat:
                    f.write(f"{n} {pct(lat, 50):.2f} {pct(lat, 99):.2f}\n")
            f.write("\n\n")
    png1 = os.path.join(ROOT, "docs", "bench", "scale-rss.png")
    png2 = os.path.join(ROOT, "docs", "bench", "scale-broadcast.png")
    script = f"""set terminal pngcairo size 800,480
set output '{png1}'
set title 'Server RSS (all nodes) against connections, while ramping (first round)'
set xlabel 'connections'; set ylabel 'RSS of all nodes (MiB)'; set key left top; set grid
plot '{data}' index 0 using 1:2 with linespoints title 'ours (cluster-node)', \\
     '{data}' index 1 using 1:2 with linespoints title 'Node.js socket.io + postgres-adapter'
set output '{png2}'
set title 'Broadcast from one node: until the last receiver'
set xlabel 'receivers'; set ylabel 'ms'; set logscale xy; set key left top
plot '{data}' index 2 using 1:2 with linespoints title 'ours p50', \\
     '{data}' index 2 using 1:3 with linespoints title 'ours p99', \\
     '{data}' index 3 using 1:2 with linespoints title 'Node p50', \\
     '{data}' index 3 using 1:3 with linespoints title 'Node p99'
"""
    r = subprocess.run([gp], input=script, capture_output=True, text=True)
    if r.returncode == 0:
        made = [png1, png2]
    else:
        log(f"gnuplot: {r.stderr.strip()}")
    return made


# ---- Main ----

def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--conns", type=int, default=100000)
    p.add_argument("--nodes", type=int, default=0, help="server processes (0: from the fd limit)")
    p.add_argument("--gens", type=int, default=0, help="load generators (0: from the fd limit)")
    p.add_argument("--servers", default="ours,node")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--idle", type=float, default=60)
    p.add_argument("--settle", type=float, default=5)
    p.add_argument("--broadcasts", type=int, default=20)
    p.add_argument("--room-every", type=int, default=100)
    p.add_argument("--inflight", type=int, default=200, help="connection attempts per generator")
    p.add_argument("--connect-timeout", type=float, default=1200)
    p.add_argument("--bcast-timeout", type=float, default=120,
                   help="a broadcast not complete after this long counts what is missing as lost")
    p.add_argument("--no-floor", action="store_true")
    p.add_argument("--spaces-browsers", type=int, default=100000,
                   help="Spaces at scale (tests/bench/spaces_scale.js): browser sockets, 0: skip")
    p.add_argument("--spaces-users", type=int, default=200)
    p.add_argument("--spaces-requests", type=int, default=300)
    p.add_argument("--total-min", type=float, default=29.5,
                   help="Spaces at scale is stopped to end the whole run by then")
    p.add_argument("--deadline-min", type=float, default=23,
                   help="hard limit: waits and broadcasts are cut to end the rounds by then")
    p.add_argument("--budget-min", type=float, default=20,
                   help="no further round once the next would end past this (minutes)")
    p.add_argument("--check", action="store_true",
                   help="correctness only (the CI test): no figures printed")
    p.add_argument("--selftest", action="store_true",
                   help="first check that a lost and a repeated delivery are caught "
                   "(tests/bench/faulty_server.js)")
    p.add_argument("--build-dir", default=os.path.join(ROOT, "build", "release"))
    p.add_argument("--taskset", default="", help="CPU list for every process (default: none)")
    p.add_argument("--write-docs", action="store_true",
                   help="write docs/bench/scale.md and the plots")
    p.add_argument("--out", default=os.path.join(ROOT, "build", "bench-results"))
    a = p.parse_args()
    a.cluster_node = os.path.join(a.build_dir, "cluster-node")
    a.loadgen = os.path.join(a.build_dir, "bench-loadgen")
    a.floor = os.path.join(a.build_dir, "bench-floor")
    return a


def make_plan(a):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Every child inherits the raised soft limit.
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    limit = min(hard, 1 << 20)
    # A node holds its connections plus the listener, its database and log
    # descriptors, and Node.js a few dozen of its own: keep 1,000 spare.
    per_proc = max(1000, limit - 1000)
    nodes = a.nodes or max(2, math.ceil(a.conns / per_proc))
    gens = a.gens or max(2, math.ceil((a.conns + 1) / per_proc))
    if math.ceil(a.conns / nodes) > per_proc or math.ceil(a.conns / gens) + 1 > per_proc:
        raise SystemExit(f"scale: {a.conns} connections over {nodes} nodes and {gens} "
                         f"generators pass the open-file limit {hard}")
    # A floor process holds the sending ends (its receiver child the others).
    floor_procs = max(1, math.ceil(a.conns / per_proc))
    # Sixteen loopback source addresses from 5,000 connections a node on.
    # One address gives about 28k ephemeral ports per destination port, but
    # long before they run short the kernel's search for a free one is the
    # ramp's cost: connect() walks the ports in use towards the same
    # destination one by one (__inet_check_established was 67% of the whole
    # machine's CPU, the generators 88%, the nodes 8%, ramping 100,000 from
    # 127.0.0.1 alone). Real clients come from many addresses.
    lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    sources = "127.0.0.2-127.0.0.17" if math.ceil(a.conns / nodes) >= 5000 else "none"
    per_gen = math.ceil(a.conns / gens)
    members = 0
    for gid in range(a.conns):
        if (gid // nodes) % a.room_every == 0:
            members += 1
    return {"nofile_soft": soft, "nofile_hard": hard, "per_proc": per_proc, "nodes": nodes,
            "gens": gens,
            "per_gen": per_gen, "floor_procs": floor_procs, "sources": sources,
            "members": members, "ports_per_source": hi - lo}


def main():
    a = parse()
    for path in (a.cluster_node, a.loadgen):
        if not os.access(path, os.X_OK):
            raise SystemExit(f"scale: {path} is missing (make release)")
    plan = make_plan(a)
    kinds = [k for k in a.servers.split(",") if k]
    log(f"{a.conns} connections, {plan['nodes']} nodes, {plan['gens']} generators "
        f"(open-file limit: soft {plan['nofile_soft']}, hard {plan['nofile_hard']}), "
        f"servers {kinds}, {a.rounds} round(s)")
    os.makedirs(a.out, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="scale-", dir=a.out)
    os.chmod(workdir, 0o755)
    pgdir = os.path.join(workdir, "pg")
    url = subprocess.run([os.path.join(ROOT, "ci", "pg.sh"), "start", pgdir], check=True,
                         capture_output=True, text=True).stdout.strip()
    results = {k: [] for k in kinds}
    t_start = time.monotonic()
    ok = True
    try:
        if a.selftest and not selftest(a, url, pgdir, workdir):
            ok = False
        for rnd in range(a.rounds):
            spent = time.monotonic() - t_start
            if rnd and spent / rnd * (rnd + 1) + 90 > a.budget_min * 60:
                log(f"round {rnd}: skipped, it would end past --budget-min {a.budget_min}")
                break
            order = kinds if rnd % 2 == 0 else list(reversed(kinds))
            for kind in order:
                r = {}
                try:
                    run_round(kind, a, plan, url, pgdir, workdir, rnd, r)
                except RuntimeError as e:
                    log(f"{kind} round {rnd}: {e}")
                    r.update(ok=False, error=str(e))
                results[kind].append(r)
                ok = ok and r["ok"]
        floors = None
        if not a.no_floor and not a.check and os.access(a.floor, os.X_OK):
            floors = floor(a, plan, a.conns)
        spaces = None
        if a.spaces_browsers and not a.check:
            if time.monotonic() - T_START > (a.total_min - 3) * 60:
                log("Spaces at scale skipped: past the time budget")
            else:
                spaces = spaces_at_scale(a, plan, workdir)
                ok = ok and bool(spaces and spaces.get("ok"))
    finally:
        subprocess.run([os.path.join(ROOT, "ci", "pg.sh"), "stop", pgdir],
                       capture_output=True)
    elapsed = time.monotonic() - t_start
    s = summary(results, floors)
    with open(os.path.join(a.out, "scale.json"), "w") as f:
        json.dump({"plan": plan, "conns": a.conns, "rounds": results, "summary": s,
                   "spaces": spaces, "elapsed_s": elapsed}, f, indent=1)
    if a.check:
        for kind in kinds:
            for r in results[kind]:
                print(f"{kind} round {r['round']}: {'ok' if r['ok'] else 'FAIL'} "
                      f"ready={r.get('ready')} joined={r.get('joined')} lost={r.get('lost')} "
                      f"dup={r.get('dup')} bad={r.get('bad')} dropped={r.get('dropped')} "
                      f"{r.get('error', '')}")
    else:
        t = table(s, a, plan)
        notes = [f"- {k} round {r['round']}: {r['error']}" for k in kinds for r in results[k]
                 if r.get("error")]
        if notes:
            t += "\n\nRounds that did not complete:\n\n" + "\n".join(notes)
        print(f"\n{a.conns} connections over {plan['nodes']} nodes, {plan['gens']} load "
              f"generators, {s[kinds[0]]['rounds']} round(s), {elapsed / 60:.1f} min\n")
        print(t)
        if spaces:
            print("\n" + spaces["table"])
        if a.write_docs:
            made = plot(results, a.out)
            write_doc(a, plan, s, t + ("\n\n" + spaces["table"] if spaces else ""), made,
                      elapsed)
    if ok:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        log(f"logs kept in {workdir}")
    return 0 if ok else 1


BEGIN = "<!-- bench-scale: begin (tests/bench/scale.py writes this part) -->"
END = "<!-- bench-scale: end -->"


def write_doc(a, plan, s, t, made, elapsed):
    """docs/bench/scale-table.md, and the same in docs/BENCHMARKS.md between markers."""
    path = os.path.join(ROOT, "docs", "bench", "scale-table.md")
    rounds = s[next(k for k in s if k != "floor")]["rounds"]
    body = (f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {a.conns} connections "
            f"over {plan['nodes']} nodes and {plan['gens']} load generators (open-file limit "
            f"{plan['nofile_hard']} per process), {rounds} round(s) per server, "
            f"{a.broadcasts} broadcasts per room and round, {elapsed / 60:.1f} min in all "
            f"(`make bench-scale`; method and causes: [docs/bench/scale.md](bench/scale.md)).\n\n"
            + t + "\n")
    with open(path, "w") as f:
        f.write(body)
    doc = os.path.join(ROOT, "docs", "BENCHMARKS.md")
    section = (f"{BEGIN}\n## 100,000 connections over a cluster of processes\n\n{body}\n"
               "![server RSS against connections](bench/scale-rss.png)\n"
               "![broadcast latency against receivers](bench/scale-broadcast.png)\n"
               f"{END}")
    try:
        with open(doc) as f:
            text = f.read()
    except OSError:
        text = ""
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(doc, "w") as f:
        f.write(text)
    log(f"wrote {path} and its section of {doc}" + (f", {', '.join(made)}" if made else ""))


if __name__ == "__main__":
    sys.exit(main())
