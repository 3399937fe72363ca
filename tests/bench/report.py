#!/usr/bin/env python3
"""Turns the RESULT lines of tests/bench/run.sh into tables and plots.

  report.py --mode quick --out DIR ...   prints the ratios (ours against node)
  report.py --mode full --out DIR --doc docs/BENCHMARKS.md --plots docs/bench ...

Every figure is the median over the runs of one scenario against one server,
with the spread (min-max) beside it when there were several runs.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys

SERVER_TITLES = {"ours": "Spaces (C)", "node": "Node.js socket.io", "limit": "bare limit",
                 "floor": "kernel floor (bare sends)"}

# What a scenario tag means, in the order tables list them.
SCENARIOS = [
    ("idle-1k", "idle, 1,000 connections"),
    ("idle-5k", "idle, 5,000 connections"),
    ("idle-10k", "idle, 10,000 connections"),
    ("idle-50k", "idle, 50,000 connections"),
    ("idle-100k", "idle, 100,000 connections"),
    ("connect", "connection setup, 5,000 (200 in flight)"),
    ("connect-up", "setup through HTTP long-polling + upgrade, 5,000 (200 in flight)"),
    ("pingpong", "one client ping-pong, window 1"),
    ("echo", "echo, 100 clients x 10 outstanding"),
    ("echo-deep", "echo, 100 clients x 100 outstanding (throughput ceiling)"),
    ("ack", "ack, 100 clients x 10 outstanding"),
    ("bcast-1k", "broadcast to 1,000 sockets in a room"),
    ("bcast-10k", "broadcast to 10,000 sockets in a room"),
    ("bin-1k", "binary echo, 1 KiB attachment, 100 x 10"),
    ("bin-64k", "binary echo, 64 KiB attachment, 20 x 2"),
]
TITLES = dict(SCENARIOS)


def parse_results(path):
    rows, quiet, skipped = [], {}, {}
    with open(path) as f:
        for line in f:
            kind, _, rest = line.strip().partition(" ")
            fields = dict(kv.split("=", 1) for kv in rest.split() if "=" in kv)
            if kind == "RESULT":
                rows.append(fields)
            elif kind == "QUIET":
                quiet.setdefault(fields.get("tag"), []).append(fields)
            elif kind == "SKIP":
                skipped[fields.get("tag")] = fields.get("reason", "").replace("_", " ")
    return rows, quiet, skipped


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


class Stats:
    """The runs of one tag against one server."""

    def __init__(self, rows):
        good = [r for r in rows if r.get("status") == "ok"]
        self.failed = len(rows) - len(good)
        self.total = len(rows)
        self.ok = self.failed == 0
        # A failed run (lost replies, a connection refused) is no figure.
        self.rows = good or rows

    def status(self):
        if self.ok:
            return "ok"
        return f"**{self.failed} of {self.total} runs failed**"

    def values(self, key):
        return [x for x in (num(r.get(key)) for r in self.rows) if x is not None]

    def median(self, key):
        v = self.values(key)
        return statistics.median(v) if v else None

    def spread(self, key):
        v = self.values(key)
        return (min(v), max(v)) if len(v) > 1 else None

    def median_row(self, key="rate"):
        """The run whose key is the median (for its histogram)."""
        rs = [r for r in self.rows if num(r.get(key)) is not None]
        if not rs:
            return None
        rs.sort(key=lambda r: num(r[key]))
        return rs[(len(rs) - 1) // 2]


def group(rows):
    g = {}
    for r in rows:
        g.setdefault((r.get("tag"), r.get("server")), []).append(r)
    return {k: Stats(v) for k, v in g.items()}


def fmt_rate(v):
    if v is None:
        return "—"
    if v >= 1000000:
        return f"{v / 1000000:.2f}M"
    if v >= 100000:
        return f"{v / 1000:.0f}k"
    if v >= 10000:
        return f"{v / 1000:.1f}k"
    if v >= 1000:
        return f"{v / 1000:.2f}k"
    return f"{v:.0f}"


def fmt_ms(us):
    if us is None:
        return "—"
    ms = us / 1000
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    if ms >= 1:
        return f"{ms:.2f} ms"
    return f"{ms:.3f} ms"


def fmt_bytes(b):
    if b is None:
        return "—"
    if b >= 1024:
        return f"{b / 1024:.1f} KB"
    return f"{b:.0f} B"


def with_spread(stats, key, fmt):
    m = stats.median(key)
    s = stats.spread(key)
    text = fmt(m)
    if s and m is not None:
        text += f" ({fmt(s[0])}–{fmt(s[1])})"
    return text


def ratio(a, b):
    if a is None or b is None or b == 0 or a == 0:
        return None
    return a / b


def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}×"


# ---- The comparisons the targets are written in ----
# (label, tag, key, higher_is_better, target ratio, target text)
TARGETS = [
    ("idle memory per connection, 1k", "idle-1k", "rss_per_conn_b", False, 8,
     "≤ 2 KB and ≥ 8× less than Node"),
    ("idle memory per connection, 10k", "idle-10k", "rss_per_conn_b", False, 8,
     "≤ 2 KB and ≥ 8× less than Node"),
    ("idle memory per connection, 100k", "idle-100k", "rss_per_conn_b", False, 8,
     "100k held; ≥ 8× less"),
    ("connection setup rate", "connect", "rate", True, 8, "≥ 8× Node"),
    ("setup rate, polling + upgrade", "connect-up", "rate", True, 8, "≥ 8× Node"),
    ("echo 100×10 round trips/s", "echo", "rate", True, 8, "≥ 8× Node"),
    ("echo 100×10 p99", "echo", "p99_us", False, 5, "≤ ⅕ of Node's"),
    ("broadcast to 1,000: last receiver p99", "bcast-1k", "p99_us", False, 10,
     "≤ 1 ms, ≥ 10× Node"),
    ("broadcast to 10,000: last receiver p99", "bcast-10k", "p99_us", False, 10,
     "≤ 10 ms, ≥ 10× Node"),
    ("binary echo 1 KiB, round trips/s", "bin-1k", "rate", True, 5, "≥ 5× Node"),
    ("binary echo 64 KiB, round trips/s", "bin-64k", "rate", True, 5, "≥ 5× Node"),
]


def value_text(key, v):
    if key == "rss_per_conn_b":
        return fmt_bytes(v)
    if key.endswith("_us"):
        return fmt_ms(v)
    return fmt_rate(v) + "/s"


def target_rows(stats):
    """(label, ours, node, ratio, target, met, ceiling) for each target."""
    out = []
    for label, tag, key, higher, want, text in TARGETS:
        o, n = stats.get((tag, "ours")), stats.get((tag, "node"))
        if not n:
            continue
        ov = o.median(key) if o else None
        nv = n.median(key)
        r = ratio(ov, nv) if higher else ratio(nv, ov)
        met = "—" if r is None else ("yes" if r >= want else "no")
        out.append((label, value_text(key, ov) if o else "—", value_text(key, nv), r, text, met,
                    ceiling_text(stats, tag, key, higher, want, nv)))
    for tag, n in (("bcast-1k", "1,000"), ("bcast-10k", "10,000")):
        # The same number of bare send()s and nothing else: how far above
        # what the kernel itself takes the server is.
        o, f = stats.get((tag, "ours")), stats.get((tag, "floor"))
        if not f:
            continue
        for key, pct in (("p50_us", "p50"), ("p99_us", "p99")):
            ov, fv = (o.median(key) if o else None), f.median(key)
            r = ratio(fv, ov)
            out.append((f"broadcast to {n}: last receiver {pct}, against the kernel floor",
                        value_text(key, ov) if o else "—", "floor " + value_text(key, fv), r,
                        "floor ÷ ours (1.00 = no cost above the kernel's)", "—", ""))
    o, l = stats.get(("echo", "ours")), stats.get(("echo", "limit"))
    if l:
        r = ratio(o.median("rate"), l.median("rate")) if o else None
        out.append(("echo against the bare limit", value_text("rate", o.median("rate")) if o else "—",
                    "limit " + value_text("rate", l.median("rate")), r, "≥ 80% of the limit",
                    "—" if r is None else ("yes" if r >= 0.8 else "no"), ""))
    return out


def ceiling_text(stats, tag, key, higher, want, nv):
    """What the load generator reached against the limit server, and whether
    that is enough to measure the target (target x Node) at all."""
    l = stats.get((tag, "limit"))
    if not l or key == "rss_per_conn_b" or nv is None:
        return ""
    lv = l.median(key)
    if lv is None:
        return ""
    need = nv * want if higher else nv / want
    enough = lv >= need if higher else lv <= need
    return f"{value_text(key, lv)} ({'enough' if enough else '**below the target**'})"


# ---- Plots ----

def read_hist(path):
    """Percentile spectrum blocks written by bench-loadgen --hist-out."""
    pts = []
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                p, inv, lat = line.split()
                pts.append((float(inv), float(lat) / 1000.0))
    except OSError:
        return []
    return pts


def plot(script, png, gnuplot):
    gp = png[:-4] + ".gp"
    with open(gp, "w") as f:
        f.write(script)
    r = subprocess.run([gnuplot, gp], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"report: gnuplot failed for {png}: {r.stderr.strip()}", file=sys.stderr)
        return False
    return True


def latency_plots(stats, servers, out_dir, plot_dir, gnuplot):
    made = []
    for tag, title in SCENARIOS:
        if tag.startswith("idle") or tag == "connect":
            continue
        series = []
        for s in servers:
            st = stats.get((tag, s))
            if not st:
                continue
            row = st.median_row()
            if not row:
                continue
            pts = read_hist(os.path.join(out_dir, f"hist-{tag}-{s}-{row.get('run', '1')}.dat"))
            if not pts:
                continue
            dat = os.path.join(plot_dir, f"latency-{tag}-{s}.dat")
            with open(dat, "w") as f:
                for inv, ms in pts:
                    f.write(f"{inv} {ms}\n")
            series.append((s, dat))
        if not series:
            continue
        png = os.path.join(plot_dir, f"latency-{tag}.png")
        what = "until the last receiver has it" if tag.startswith("bcast") else "round trip"
        lines = ", ".join(
            f"'{os.path.basename(d)}' using 1:2 with steps lw 2 title '{SERVER_TITLES.get(s, s)}'"
            for s, d in series)
        script = f"""set terminal pngcairo size 900,500 font ',10'
set output '{os.path.basename(png)}'
set title "{title}: latency by percentile ({what})"
set logscale x
set logscale y
set xrange [1:100000]
set xtics ("0%%" 1, "50%%" 2, "90%%" 10, "99%%" 100, "99.9%%" 1000, "99.99%%" 10000, "99.999%%" 100000)
set xlabel 'percentile'
set ylabel 'latency (ms)'
set grid
set key top left
plot {lines}
"""
        if plot(script, png, gnuplot):
            made.append((tag, os.path.basename(png)))
    return made


def memory_plot(stats, servers, plot_dir, gnuplot):
    series = []
    for s in servers:
        pts = []
        for tag, n in (("idle-1k", 1000), ("idle-5k", 5000), ("idle-10k", 10000),
                       ("idle-50k", 50000), ("idle-100k", 100000)):
            st = stats.get((tag, s))
            v = st.median("rss_per_conn_b") if st else None
            if v is not None and v > 0 and st.ok:
                pts.append((n, v / 1024.0))
        if pts:
            dat = os.path.join(plot_dir, f"memory-{s}.dat")
            with open(dat, "w") as f:
                for n, kb in pts:
                    f.write(f"{n} {kb}\n")
            series.append((s, dat))
    if not series:
        return None
    png = os.path.join(plot_dir, "memory.png")
    lines = ", ".join(
        f"'{os.path.basename(d)}' using 1:2 with linespoints lw 2 pt 7 title '{SERVER_TITLES.get(s, s)}'"
        for s, d in series)
    script = f"""set terminal pngcairo size 900,500 font ',10'
set output 'memory.png'
set title 'Server memory per idle Socket.IO WebSocket connection'
set logscale x
set xlabel 'connections'
set ylabel 'RSS per connection (KB)'
set yrange [0:*]
set grid
set key top right
plot {lines}
"""
    return "memory.png" if plot(script, png, gnuplot) else None


# ---- Machine and versions ----

def sh(cmd, cwd=None):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, cwd=cwd,
                              timeout=20).stdout.strip()
    except Exception:
        return ""


def machine(root):
    cpu = sh("lscpu | sed -n 's/^Model name: *//p' | head -1") or platform.processor()
    mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    sio = ""
    try:
        with open(os.path.join(root, "tests/node_modules/socket.io/package.json")) as f:
            sio = json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        pass
    commit = sh("git rev-parse --short HEAD", cwd=root)
    dirty = sh("git status --porcelain --untracked-files=no | head -1", cwd=root)
    return [
        ("CPU", f"{cpu}, {os.cpu_count()} cores (server pinned to core 0, load generator to core 1)"),
        ("memory", mem),
        ("kernel", platform.release()),
        ("OS", sh(". /etc/os-release && echo $PRETTY_NAME")),
        ("compiler", sh("cc --version | head -1")),
        ("Node.js", sh("node --version")),
        ("socket.io (reference)", sio),
        ("libwebsockets (load generator)", sh("pkg-config --modversion libwebsockets").rstrip("-")),
        ("libuv", sh("pkg-config --modversion libuv")),
        ("commit", commit + (" (with uncommitted changes)" if dirty else "")),
    ]


def read_meta(out):
    meta = {}
    try:
        with open(os.path.join(out, "meta.txt")) as f:
            for line in f:
                k, _, v = line.strip().partition(" ")
                meta[k] = v
    except OSError:
        pass
    return meta


# ---- Output ----

def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)


def scenario_rows(stats, servers):
    rows = []
    for tag, title in SCENARIOS:
        if tag.startswith("idle"):
            continue
        first = True
        for s in servers:
            st = stats.get((tag, s))
            if not st:
                continue
            bc = tag.startswith("bcast")
            unit = "broadcasts/s" if bc else (
                "connections/s" if tag.startswith("connect") else "round trips/s")
            if first and st.rows and st.rows[0].get("client") == "raw":
                title += " [raw client]"
            rows.append([
                title if first else "",
                SERVER_TITLES.get(s, s),
                f"{with_spread(st, 'rate', fmt_rate)} {unit}",
                with_spread(st, "p50_us", fmt_ms),
                with_spread(st, "p99_us", fmt_ms),
                fmt_ms(st.median("p999_us")),
                f"{st.median('cpu_client_pct'):.0f}%" if st.median("cpu_client_pct") is not None else "—",
                f"{st.median('cpu_server_pct'):.0f}%" if (st.median("cpu_server_pct") or -1) >= 0 else "—",
                fmt_cores(st),
                fmt_noise(st),
                st.status(),
            ])
            first = False
    return rows


def memory_rows(stats, servers):
    rows = []
    for tag, title in SCENARIOS:
        if not tag.startswith("idle"):
            continue
        for s in servers:
            st = stats.get((tag, s))
            if not st:
                continue
            b, a = st.median("rss_before_kb"), st.median("rss_after_kb")
            rows.append([
                title, SERVER_TITLES.get(s, s),
                f"{b / 1024:.1f} MB" if b else "—", f"{a / 1024:.1f} MB" if a else "—",
                fmt_bytes(st.median("rss_per_conn_b")),
                f"{fmt_rate(st.median('connect_rate'))}/s",
                fmt_noise(st),
                st.status(),
            ])
    return rows


def fmt_cores(st):
    a, b = st.median("core0_pct"), st.median("core1_pct")
    if a is None or b is None:
        return "—"
    return f"{a:.0f}% / {b:.0f}%"


def fmt_noise(st):
    v = st.median("noise_pct")
    if v is None:
        return "—"
    return f"**{v:.0f}%**" if v > 10 else f"{v:.0f}%"


def ratio_rows(stats):
    return [[label, ours, node, fmt_ratio(r), text, met, ceil]
            for label, ours, node, r, text, met, ceil in target_rows(stats)]


def print_quick(stats, servers):
    plain = lambda rows: [[str(c).replace("**", "") for c in r] for r in rows]
    print()
    print("bench-quick: ours against node, same run (ratio: how many times better ours is)")
    rows = plain(ratio_rows(stats))
    hdr = ["", "ours", "node", "ratio", "target", "met", "generator ceiling"]
    w = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]
    print("  " + "  ".join(h.ljust(w[i]) for i, h in enumerate(hdr)))
    for r in rows:
        print("  " + "  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)))
    print()
    for r in plain(scenario_rows(stats, servers)) + plain(memory_rows(stats, servers)):
        print("  " + " | ".join(r))


def write_doc(args, stats, servers, quiet, skipped, plots, mem_png):
    meta = read_meta(args.out)
    lines = []
    add = lines.append
    add("# Benchmarks")
    add("")
    add("Generated by `make bench` (`tests/bench/run.sh full`) from a real run; do not edit by")
    add("hand. Every scenario ran against every server in the same run, servers interleaved,")
    add("each server pinned to core 0 and the load generator (`bench-loadgen`, C, libuv +")
    add("libwebsockets, one thread) to core 1, over WebSocket on 127.0.0.1. Figures are the")
    runs = meta.get("RUNS", "?")
    add(f"median of {runs} run{'' if runs == '1' else 's'} (spread min–max in brackets; idle runs once). "
        "Every reply was")
    add("counted: a lost, repeated or malformed message fails the run (status column).")
    add("")
    add(f"Run: {meta.get('START', '?')} to {meta.get('END', '?')}. Servers: "
        + ", ".join(f"**{s}** = {SERVER_TITLES.get(s, s)}" for s in servers) + ".")
    if "ours" not in servers:
        add("")
        add("> Our C `bench-server` did not exist yet at this run, so the tables show the")
        add("> reference server and the bare limit only; the ratio columns fill in once")
        add("> `build/release/bench-server` builds.")
    add("")
    add("## Against the targets")
    add("")
    add("Ratios are how many times better ours is than Node (higher is better). Targets from")
    add("`BENCHMARKS.md` of the project brief.")
    add("")
    add(md_table(["figure", "ours", "Node", "ratio", "target", "met", "generator ceiling"],
                 ratio_rows(stats)))
    add("")
    add("Generator ceiling: the same figure against `bench-limit` (below), and whether that")
    add("is past the target (target × Node), i.e. whether this load generator on this")
    add("machine can show the target being met at all. Where the limit server's own core is")
    add("the busy one (broadcasts: one `send()` per receiving socket), that figure is the")
    add("machine's floor rather than the generator's. The kernel floor rows compare ours with")
    add("`bench-floor`: the same number of loopback TCP sockets, one bare `write()` of a")
    add("24-byte frame to each, pinned the same way, no server at all; no server on this")
    add("machine can get its last receiver the frame sooner than that.")
    add("")
    add("## Throughput and latency")
    add("")
    add("Latency is the round trip of one request (for broadcasts: from the send until the last")
    add("receiver has it).")
    add("")
    add(md_table(["scenario", "server", "rate", "p50", "p99", "p99.9", "generator CPU",
                  "server CPU", "cores busy (server / generator)", "noise", "status"], scenario_rows(stats, servers)))
    add("")
    add("Generator and server CPU: each process's own user + system time over the measured")
    add("part, in % of one core. Cores busy: everything that ran on core 0 (the server's) and")
    add("core 1 (the generator's), interrupts and softirq included, over the whole run; a")
    add("core near 100% is the bottleneck. Noise: CPU that other processes used meanwhile, in")
    add("% of one core (median over the runs); above 10% the figures are less trustworthy.")
    add("")
    for tag, png in plots:
        add(f"![{TITLES.get(tag, tag)}](bench/{png})")
        add("")
    add("## Memory per idle connection")
    add("")
    add("(server RSS after N connections, settled − RSS before) / N, from `/proc/PID/status`.")
    add("")
    add(md_table(["connections", "server", "RSS before", "RSS after", "per connection",
                  "connect rate", "noise", "status"], memory_rows(stats, servers)))
    add("")
    if skipped:
        add("Not run on this machine: " + "; ".join(
            f"{TITLES.get(t, t)} ({why})" for t, why in skipped.items())
            + ". Each side holds one descriptor per connection, and the hard")
        add("`RLIMIT_NOFILE` here cannot be raised (no `CAP_SYS_RESOURCE`).")
        add("")
    if mem_png:
        add(f"![memory per connection](bench/{mem_png})")
        add("")
    add("## The load generator's own ceiling")
    add("")
    add("`bench-limit` answers the bench contract with as little work as a server can do (our")
    add("WebSocket framing code, fixed Engine.IO/Socket.IO replies, no sessions), so what the")
    add("load generator reaches against it is the most this machine can measure; a server")
    add("that comes close to it is measured by the generator, not the other way round.")
    add("Generator CPU near 100% there means the generator is the limit.")
    add("")
    lim = [r for r in scenario_rows(stats, ["limit"])]
    if lim:
        add(md_table(["scenario", "server", "rate", "p50", "p99", "p99.9", "generator CPU",
                      "server CPU", "cores busy (server / generator)", "noise", "status"], lim))
    else:
        add("(the limit server was not part of this run)")
    add("")
    add("## Machine and versions")
    add("")
    add(md_table(["", ""], machine(args.root)))
    add("")
    checks = [q for qs in quiet.values() for q in qs]
    waited = sum(int(q.get("waited_s", 0)) for q in checks)
    noisy = sorted({t for t, qs in quiet.items() for q in qs
                    if int(q.get("busy_pct", 0)) > 10})
    add(f"Before each round of runs the script waited for the machine to be quiet (all cores")
    add(f"under 10% busy over 1 s, for up to {os.environ.get('SPACES_BENCH_QUIET_MAX', '120')} s): "
        f"{len(checks)} checks, {waited} s waited in all.")
    if noisy:
        add(f"**Not quiet** before some runs of: {', '.join(noisy)} (other work on this shared")
        add("machine); see the noise column.")
    add("")
    add("## Commands")
    add("")
    add("```")
    add("make bench            # tests/bench/run.sh full (this page)")
    add("make bench-quick      # tests/bench/run.sh quick: 1k idle, echo, broadcast to 1k, ratios")
    add("make bench-scale      # tests/bench/scale.py: 100k connections over a cluster of processes")
    add("```")
    add("")
    add("Each run (the server is started fresh, pinned with `taskset -c 0`, on a free port):")
    add("")
    add("```")
    seen = set()
    try:
        with open(os.path.join(args.out, "commands.txt")) as f:
            for line in f:
                # One line per scenario and server is enough.
                m = re.search(r"--server-name (\S+) --tag (\S+)", line)
                key = m.groups() if m else line
                if key in seen:
                    continue
                seen.add(key)
                line = re.sub(r"--port \d+ --server-pid \d+", "--port P --server-pid PID",
                              line.strip().replace(args.root + "/", ""))
                add(re.sub(r"--hist-out \S+", "--hist-out FILE", line))
    except OSError:
        pass
    add("```")
    add("")
    add("Servers: `node tests/bench/node_bench_server.js --port P`, `build/release/bench-limit "
        "--port P`, `build/release/bench-server --port P`; the floor is `build/release/bench-floor`, "
        "which needs no server. Raw results: `"
        + os.path.relpath(args.out, args.root) + "/results.txt` (not committed).")
    add("")
    # make bench-scale's section (tests/bench/scale.py), kept across regenerations.
    try:
        with open(args.doc) as f:
            old = f.read()
        b = old.index("<!-- bench-scale: begin")
        e = old.index("<!-- bench-scale: end -->", b) + len("<!-- bench-scale: end -->")
        add(old[b:e])
        add("")
    except (OSError, ValueError):
        pass
    # Hand-written companions of this report, kept across regenerations.
    for name, text in (("spaces_e2e.md", "End to end through the Spaces site (HTTP submit, app "
                        "over Socket.IO, status polling)"),
                       ("cluster.md", "Broadcasts between server processes through PostgreSQL "
                        "(ours and the Node.js postgres-adapter, `tests/bench/cluster_bench.js`)"),
                       ("profiles.md", "Profiles of the targets missed")):
        if os.path.exists(os.path.join(os.path.dirname(args.doc), "bench", name)):
            add(f"{text}: [docs/bench/{name}](bench/{name}).")
            add("")
    with open(args.doc, "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["full", "quick"], required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--doc")
    ap.add_argument("--plots")
    ap.add_argument("--root", default=".")
    ap.add_argument("--loadgen")
    args = ap.parse_args()
    rows, quiet, skipped = parse_results(os.path.join(args.out, "results.txt"))
    stats = group(rows)
    order = ["ours", "node", "limit", "floor"]
    servers = [s for s in order if any(k[1] == s for k in stats)]
    servers += sorted({k[1] for k in stats} - set(order))
    if args.mode == "quick":
        print_quick(stats, servers)
        return 0
    plots, mem_png = [], None
    gnuplot = shutil.which("gnuplot")
    if args.plots and gnuplot:
        os.makedirs(args.plots, exist_ok=True)
        cwd = os.getcwd()
        os.chdir(args.plots)
        try:
            plots = latency_plots(stats, servers, args.out, ".", gnuplot)
            mem_png = memory_plot(stats, servers, ".", gnuplot)
        finally:
            os.chdir(cwd)
        # Data and scripts only feed gnuplot; the PNGs stay.
        for f in os.listdir(args.plots):
            if f.endswith(".dat") or f.endswith(".gp"):
                os.remove(os.path.join(args.plots, f))
    elif args.plots:
        print("report: gnuplot not found (package gnuplot-nox): no plots", file=sys.stderr)
    write_doc(args, stats, servers, quiet, skipped, plots, mem_png)
    print_quick(stats, servers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
