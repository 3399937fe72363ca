#!/usr/bin/env node
// Broadcasts between server processes through PostgreSQL (LISTEN/NOTIFY):
// ours (build/release/cluster-node, spaces/cluster.h) against the reference
// (tests/conformance/reference_cluster.js: socket.io 4.8 with
// @socket.io/postgres-adapter), in the same run, on the same throwaway
// PostgreSQL cluster (ci/pg.sh).
//
// For each implementation, two nodes: S (the sender's) and R (the
// receivers'). One socket.io-client connects to S, --receivers clients to R
// (WebSocket transport; the receivers live in a worker thread of this
// process, the sender in its main thread). The sender asks S to broadcast
// ("bcast" event, see the header of tests/conformance/cluster_node.c) to the
// namespace "/" except its own room, so only R's clients receive; each
// message is {seq, ts}, ts the send time in µs of this process's monotonic
// clock, and every receipt is timed on the same clock.
//
// Scenarios:
//   throughput  --messages broadcasts fired as fast as possible, at most
//               --inflight "bcast" acks outstanding; delivered msg/s = messages
//               per receiver / (first send → last receipt at the last
//               receiver); latency of every delivery (send → receipt).
//   latency     --latency-messages broadcasts one at a time (the next once
//               every receiver has the previous one); latency p50/p99.
//
// Every delivery is counted per receiver: lost (never arrived, after
// --stall-timeout without progress), duplicated, reordered (arrived after a
// later message). Each round starts both implementations' nodes afresh (in
// alternating order), runs a warm-up and both scenarios, and stops them;
// --runs rounds, the table shows the median of each figure. CPU of S, R,
// the PostgreSQL server (all its processes) and this client is measured
// from /proc over each scenario, in % of one core.
//
//   node tests/bench/cluster_bench.js [options]   (--help for the list)
//
// Prints one RESULT line per run and a markdown table, and writes the table
// with its context to docs/bench/cluster.md (--out). Exit status 1 when a
// message was lost or duplicated, 2 on a usage error.
"use strict";

const { Worker, isMainThread, parentPort, workerData } = require("node:worker_threads");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "..", "..");
const { io } = require(path.join(ROOT, "tests", "node_modules", "socket.io-client"));

/** This process's monotonic clock in µs (shared by all its threads). */
function nowUs() {
  const [s, ns] = process.hrtime();
  return s * 1e6 + ns / 1e3;
}

// ---------------------------------------------------------------------------
// The receivers (worker thread)
// ---------------------------------------------------------------------------

function receiverWorker() {
  const { url, count, connectTimeoutMs, first } = workerData;
  const sockets = [];
  let run = null; // the current scenario's state
  const probes = new Array(count).fill(null); // last probe tag seen per client
  let progressTimer = null;

  function post(msg, transfer) {
    parentPort.postMessage(msg, transfer);
  }

  function onMessage(i, args) {
    const r = run;
    const m = args[0];
    if (!m || typeof m.seq !== "number") return;
    const t = nowUs();
    const seq = m.seq;
    if (seq < 0 || seq >= r.n) {
      r.bad++;
      return;
    }
    const k = i * r.n + seq;
    if (r.seen[k]) {
      r.dups++;
      return;
    }
    r.seen[k] = 1;
    const l = t - m.ts;
    r.lat[r.nLat++] = l;
    if (l < r.first[seq]) r.first[seq] = l;
    r.count[i]++;
    r.total++;
    if (seq < r.maxSeq[i]) r.reordered++;
    else r.maxSeq[i] = seq;
    if (t > r.last) r.last = t;
    if (r.mode === "latency") {
      if (--r.pending[seq] === 0) post({ type: "got", seq, t });
    } else if (r.total === r.n * count && !r.doneSent) {
      r.doneSent = true;
      post({ type: "done", t: r.last });
    }
  }

  function connect(i) {
    return new Promise((resolve, reject) => {
      const s = io(url + "/", { transports: ["websocket"], forceNew: true, reconnection: false });
      sockets[i] = s;
      const timer = setTimeout(
        () => reject(new Error(`receiver ${first + i}: not connected to ${url} within ${connectTimeoutMs} ms`)),
        connectTimeoutMs,
      );
      s.once("connect", () => {
        clearTimeout(timer);
        resolve();
      });
      s.once("connect_error", (err) => {
        clearTimeout(timer);
        reject(new Error(`receiver ${first + i}: connect_error ${err.message}`));
      });
      s.on("disconnect", (reason) => {
        if (!closing) post({ type: "disconnect", client: first + i, reason });
      });
      s.onAny((event, ...args) => {
        if (event === "probe") probes[i] = args[0];
        else if (run && event === run.event) onMessage(i, args);
      });
    });
  }

  let closing = false;
  parentPort.on("message", async (msg) => {
    try {
      if (msg.type === "connect") {
        // A few at a time: 100 handshakes at once can time out on a busy machine.
        for (let i = 0; i < count; i += 20) {
          const batch = [];
          for (let j = i; j < Math.min(count, i + 20); j++) batch.push(connect(j));
          await Promise.all(batch);
        }
        post({ type: "connected" });
      } else if (msg.type === "probes") {
        post({ type: "probes", heard: probes.filter((p) => p === msg.tag).length });
      } else if (msg.type === "start") {
        const n = msg.n;
        run = {
          event: msg.event,
          mode: msg.mode,
          n,
          seen: new Uint8Array(count * n),
          lat: new Float64Array(count * n),
          first: new Float64Array(n).fill(Infinity), // per message, the first receiver's latency
          nLat: 0,
          count: new Int32Array(count),
          maxSeq: new Int32Array(count).fill(-1),
          pending: msg.mode === "latency" ? new Int32Array(n).fill(count) : null,
          total: 0,
          dups: 0,
          bad: 0,
          reordered: 0,
          last: 0,
          doneSent: false,
        };
        if (progressTimer) clearInterval(progressTimer);
        progressTimer = setInterval(() => post({ type: "progress", total: run.total }), 250);
        post({ type: "started" });
      } else if (msg.type === "finish") {
        if (progressTimer) clearInterval(progressTimer);
        progressTimer = null;
        const r = run;
        run = null;
        const lat = r.lat.slice(0, r.nLat);
        const first = r.first;
        post(
          {
            type: "result",
            total: r.total,
            dups: r.dups,
            bad: r.bad,
            reordered: r.reordered,
            last: r.last,
            minPerClient: Math.min(...r.count),
            connected: sockets.filter((s) => s.connected).length,
            lat,
            first,
          },
          [lat.buffer, first.buffer],
        );
      } else if (msg.type === "close") {
        closing = true;
        if (progressTimer) clearInterval(progressTimer);
        for (const s of sockets) if (s) s.close();
        post({ type: "closed" });
      }
    } catch (err) {
      post({ type: "error", message: err.message });
    }
  });
}

if (!isMainThread) {
  receiverWorker();
  return;
}

// ---------------------------------------------------------------------------
// The main thread: options, processes, sender, report
// ---------------------------------------------------------------------------

const { execFile, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const h = require(path.join(ROOT, "tests", "lib", "harness.js"));

const HELP = `usage: node tests/bench/cluster_bench.js [options]

Broadcasts between two server processes through PostgreSQL, ours
(cluster-node) against Node.js socket.io + @socket.io/postgres-adapter.

  --impl LIST             implementations, comma-separated: ours,node (default both)
  --messages N            throughput scenario: broadcasts per run (default 5000)
  --inflight K            throughput: most "bcast" acks outstanding (default 200)
  --latency-messages N    latency scenario: broadcasts, one at a time (default 300)
  --receivers N           clients on the receiving node (default 100)
  --receiver-threads K    worker threads the receivers are spread over (default 1)
  --runs N                rounds; the table shows medians (default 3)
  --warmup N              unmeasured broadcasts after start-up (default 500)
  --scenarios LIST        throughput,latency (default both)
  --cluster-node PATH     our node (default build/release/cluster-node)
  --no-build              do not run 'cmake --build build/release --target cluster-node'
  --node-cpus LIST        taskset CPU list for the two server nodes (default 0)
  --client-cpus LIST      taskset CPU list for this process (default 1)
  --no-pin                no taskset at all (PostgreSQL is never pinned)
  --stall-timeout S       seconds without a delivery before the rest count as lost (default 10)
  --out FILE              markdown report (default docs/bench/cluster.md; '-' for none)
  --verbose               copy the nodes' stderr
  --help                  this text
`;

function parseOptions(argv) {
  const o = {
    impl: ["ours", "node"],
    messages: 5000,
    inflight: 200,
    latencyMessages: 300,
    receivers: 100,
    receiverThreads: 1,
    runs: 3,
    warmup: 500,
    scenarios: ["throughput", "latency"],
    clusterNode: path.join(ROOT, "build", "release", "cluster-node"),
    build: true,
    nodeCpus: "0",
    clientCpus: "1",
    pin: true,
    stallTimeoutS: 10,
    out: path.join(ROOT, "docs", "bench", "cluster.md"),
    verbose: false,
  };
  const usage = (msg) => {
    process.stderr.write(`cluster_bench: ${msg}\n\n${HELP}`);
    process.exit(2);
  };
  const ints = {
    "--messages": "messages",
    "--inflight": "inflight",
    "--latency-messages": "latencyMessages",
    "--receivers": "receivers",
    "--receiver-threads": "receiverThreads",
    "--runs": "runs",
    "--warmup": "warmup",
    "--stall-timeout": "stallTimeoutS",
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let v = null;
    const eq = a.indexOf("=");
    if (a.startsWith("--") && eq > 0) {
      v = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const value = () => {
      if (v !== null) return v;
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--help" || a === "-h") {
      process.stdout.write(HELP);
      process.exit(0);
    } else if (ints[a]) {
      const n = Number(value());
      if (!Number.isInteger(n) || n < (a === "--warmup" ? 0 : 1)) usage(`${a}: not a positive integer`);
      o[ints[a]] = n;
    } else if (a === "--impl") {
      o.impl = value().split(",").filter(Boolean);
      for (const x of o.impl) if (x !== "ours" && x !== "node") usage(`--impl: unknown ${x} (ours, node)`);
      if (o.impl.length === 0) usage("--impl: empty");
    } else if (a === "--scenarios") {
      o.scenarios = value().split(",").filter(Boolean);
      for (const x of o.scenarios) if (x !== "throughput" && x !== "latency") usage(`--scenarios: unknown ${x}`);
      if (o.scenarios.length === 0) usage("--scenarios: empty");
    } else if (a === "--cluster-node") o.clusterNode = path.resolve(value());
    else if (a === "--no-build") o.build = false;
    else if (a === "--node-cpus") o.nodeCpus = value();
    else if (a === "--client-cpus") o.clientCpus = value();
    else if (a === "--no-pin") o.pin = false;
    else if (a === "--out") {
      const f = value();
      o.out = f === "-" ? null : path.resolve(f);
    } else if (a === "--verbose") o.verbose = true;
    else usage(`unknown argument ${JSON.stringify(argv[i])}`);
  }
  if (o.receiverThreads > o.receivers) o.receiverThreads = o.receivers;
  return o;
}

const opt = parseOptions(process.argv.slice(2));
const PG_SH = path.join(ROOT, "ci", "pg.sh");
const REFERENCE = path.join(ROOT, "tests", "conformance", "reference_cluster.js");
const CONNECT_TIMEOUT_MS = 20000;
const ACK_TIMEOUT_MS = 20000;
const READY_TIMEOUT_MS = 20000;
const SENDER_ROOM = "bench-sender";
const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

function log(msg) {
  process.stderr.write(`cluster_bench: ${msg}\n`);
}

function fail(msg) {
  throw new Error(msg);
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function pgSh(...args) {
  return new Promise((resolve, reject) => {
    execFile(PG_SH, args, { timeout: 120000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ci/pg.sh ${args.join(" ")} failed: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

function median(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

// --- CPU from /proc --------------------------------------------------------

/** {ppid, ns}: a process's parent and its CPU time (all its threads), or null. */
function procCpu(pid) {
  let ppid;
  let ticks;
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    // From the state field on: state ppid ... utime(12th) stime(13th).
    ppid = Number(f[1]);
    ticks = Number(f[11]) + Number(f[12]);
  } catch {
    return null;
  }
  // schedstat: nanoseconds on CPU, per thread (stat counts in 1/CLK_TCK s).
  try {
    let ns = 0;
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]);
    }
    if (Number.isFinite(ns)) return { ppid, ns };
  } catch {}
  return { ppid, ns: (ticks * 1e9) / CLK_TCK };
}

/** CPU ns of each process of the PostgreSQL server (the postmaster and its children). */
function pgCpu(postmasterPid) {
  const out = new Map();
  if (!postmasterPid) return out;
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid !== postmasterPid) {
      // Cheap parent check first: most processes are not PostgreSQL's.
      try {
        const st = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        if (Number(st.slice(st.lastIndexOf(")") + 2).split(" ")[1]) !== postmasterPid) continue;
      } catch {
        continue;
      }
    }
    const c = procCpu(pid);
    if (c) out.set(pid, c.ns);
  }
  return out;
}

class CpuMeter {
  constructor(pids, postmasterPid) {
    this.pids = pids; // {name: pid}
    this.postmasterPid = postmasterPid;
    this.t0 = nowUs();
    this.start = {};
    for (const [k, pid] of Object.entries(pids)) this.start[k] = (procCpu(pid) || { ns: NaN }).ns;
    this.pg0 = pgCpu(postmasterPid);
    this.self0 = process.cpuUsage();
  }
  /** CPU seconds (r.sec) and % of one core (r) of each process since construction. */
  stop() {
    const secs = (nowUs() - this.t0) / 1e6;
    const r = { sec: {} };
    for (const [k, pid] of Object.entries(this.pids)) {
      r.sec[k] = ((procCpu(pid) || { ns: NaN }).ns - this.start[k]) / 1e9;
    }
    // A backend that exited during the run is missed; one that started counts from 0.
    let pg = 0;
    for (const [pid, ns] of pgCpu(this.postmasterPid)) pg += ns - (this.pg0.get(pid) || 0);
    r.sec.pg = this.postmasterPid ? pg / 1e9 : NaN;
    const self = process.cpuUsage(this.self0);
    r.sec.client = (self.user + self.system) / 1e6;
    for (const k of Object.keys(r.sec)) r[k] = (100 * r.sec[k]) / secs;
    return r;
  }
}

// --- processes to clean up ---------------------------------------------------

const state = {
  tmp: null,
  pgDir: null,
  pgStarted: false,
  servers: new Set(), // harness ServerProcess
  workers: new Set(),
  sockets: new Set(),
  cleaning: null,
};

async function cleanup() {
  if (state.cleaning) return state.cleaning;
  state.cleaning = (async () => {
    for (const s of state.sockets) s.close();
    for (const w of state.workers) await w.terminate().catch(() => {});
    for (const s of state.servers) {
      if (s.alive()) {
        s.child.kill("SIGTERM");
        if ((await s.waitExit(5000)) === null) {
          s.child.kill("SIGKILL");
          await s.waitExit(5000);
        }
      }
    }
    if (state.pgStarted) {
      try {
        execFileSync(PG_SH, ["stop", state.pgDir], { stdio: "ignore", timeout: 60000 });
      } catch (e) {
        log(`stopping PostgreSQL: ${e.message}`);
      }
      state.pgStarted = false;
    }
    if (state.tmp) fs.rmSync(state.tmp, { recursive: true, force: true });
  })();
  return state.cleaning;
}

for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    log(`${sig}: stopping`);
    cleanup().finally(() => process.exit(130));
  });
}

// --- build -------------------------------------------------------------------

function ensureBuilt() {
  const releaseDir = path.join(ROOT, "build", "release");
  const defaultBinary = path.join(releaseDir, "cluster-node");
  if (!opt.impl.includes("ours")) return;
  if (opt.build && opt.clusterNode === defaultBinary) {
    const cache = path.join(releaseDir, "CMakeCache.txt");
    if (!fs.existsSync(cache)) {
      log("configuring build/release (Release)");
      execFileSync("cmake", ["-S", ROOT, "-B", releaseDir, "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_TESTING=OFF"], {
        stdio: ["ignore", "ignore", "inherit"],
      });
    } else if (!/^CMAKE_BUILD_TYPE:STRING=Release$/m.test(fs.readFileSync(cache, "utf8"))) {
      fail(`${releaseDir} is not a Release build directory (CMAKE_BUILD_TYPE)`);
    }
    log("cmake --build build/release --target cluster-node");
    try {
      execFileSync("cmake", ["--build", releaseDir, "--target", "cluster-node", "-j", String(os.cpus().length)], {
        stdio: ["ignore", "ignore", "inherit"],
      });
    } catch (e) {
      fail(`building cluster-node failed (run 'make release' to see why, or --no-build): ${e.message}`);
    }
  }
  if (!fs.existsSync(opt.clusterNode)) fail(`${opt.clusterNode} does not exist: run 'make release'`);
}

// --- one implementation's pair of nodes and its clients ----------------------

class ReceiverPool {
  constructor(url, total, threads) {
    this.workers = [];
    this.handlers = new Set();
    this.errors = [];
    let first = 0;
    for (let t = 0; t < threads; t++) {
      const count = Math.floor(total / threads) + (t < total % threads ? 1 : 0);
      const w = new Worker(__filename, {
        workerData: { url, count, connectTimeoutMs: CONNECT_TIMEOUT_MS, first },
      });
      first += count;
      w.count = count;
      w.progress = 0;
      state.workers.add(w);
      w.on("message", (m) => {
        if (m.type === "progress") w.progress = m.total;
        else if (m.type === "error") this.errors.push(new Error(`receiver thread: ${m.message}`));
        else if (m.type === "disconnect") this.errors.push(new Error(`receiver ${m.client} disconnected: ${m.reason}`));
        for (const fn of this.handlers) fn(w, m);
      });
      w.on("error", (e) => this.errors.push(new Error(`receiver thread died: ${e.stack || e.message}`)));
      this.workers.push(w);
    }
  }

  check() {
    if (this.errors.length > 0) throw this.errors[0];
  }

  /** Sends msg to every worker and resolves with the first reply of type `reply` from each. */
  all(msg, reply, timeoutMs, what) {
    const got = new Map();
    return withTimeout(
      new Promise((resolve, reject) => {
        const fn = (w, m) => {
          if (m.type === "error") {
            this.handlers.delete(fn);
            reject(new Error(`${what}: ${m.message}`));
          } else if (m.type === reply && !got.has(w)) {
            got.set(w, m);
            if (got.size === this.workers.length) {
              this.handlers.delete(fn);
              resolve(this.workers.map((x) => got.get(x)));
            }
          }
        };
        this.handlers.add(fn);
        for (const w of this.workers) w.postMessage(msg);
      }),
      timeoutMs,
      what,
    );
  }

  progress() {
    return this.workers.reduce((a, w) => a + w.progress, 0);
  }

  async close() {
    try {
      await this.all({ type: "close" }, "closed", 5000, "closing the receivers");
    } catch {}
    for (const w of this.workers) {
      await w.terminate().catch(() => {});
      state.workers.delete(w);
    }
  }
}

function ioConnect(url, what) {
  const s = io(url, { transports: ["websocket"], forceNew: true, reconnection: false });
  state.sockets.add(s);
  return withTimeout(
    new Promise((resolve, reject) => {
      s.once("connect", () => resolve(s));
      s.once("connect_error", (e) => reject(new Error(`${what}: connect_error ${e.message}`)));
    }),
    CONNECT_TIMEOUT_MS,
    `${what} connecting to ${url}`,
  );
}

async function call(socket, what, event, ...args) {
  try {
    return await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, ...args);
  } catch (e) {
    throw new Error(`${what}: no ack to "${event}" within ${ACK_TIMEOUT_MS} ms (${e.message})`);
  }
}

/** The figures of one run: n messages, what the receivers collected, secs, CPU. */
function runResult(n, r, secs, cpu) {
  return {
    n,
    expected: n * opt.receivers,
    received: r.total,
    lost: n * opt.receivers - r.total,
    dups: r.dups,
    reordered: r.reordered,
    perReceiver: r.total / opt.receivers / secs,
    deliveries: r.total / secs,
    secs,
    p50: percentile(r.lat, 50) / 1000,
    p99: percentile(r.lat, 99) / 1000,
    max: r.lat.length ? r.lat[r.lat.length - 1] / 1000 : NaN,
    firstP50: percentile(r.firstLat, 50) / 1000,
    firstP99: percentile(r.firstLat, 99) / 1000,
    cpu,
    // CPU of both nodes per delivery to a receiver, in µs.
    serverUs: r.total ? ((cpu.sec.S + cpu.sec.R) / r.total) * 1e6 : NaN,
  };
}

class Pair {
  constructor(impl, dbUrl, postmasterPid) {
    this.impl = impl;
    this.dbUrl = dbUrl;
    this.postmasterPid = postmasterPid;
    this.servers = {};
  }

  command() {
    const base = this.impl === "ours" ? [opt.clusterNode] : [process.execPath, REFERENCE];
    return opt.pin ? ["taskset", "-c", opt.nodeCpus, ...base] : base;
  }

  async start() {
    for (const name of ["S", "R"]) {
      const argv = [...this.command(), "--database-url", this.dbUrl];
      const server = await h.startServer(argv, { env: opt.verbose ? { SPACES_TEST_VERBOSE: "1" } : {} });
      state.servers.add(server);
      this.servers[name] = server;
    }
    const S = this.servers.S;
    const R = this.servers.R;
    this.sender = await ioConnect(`${S.url}/`, `${this.impl} sender`);
    this.sender.on("disconnect", (reason) => {
      if (!this.closing) this.senderLost = reason;
    });
    // The control connections are on /chat: they hear nothing of the broadcasts on /.
    this.ctlS = await ioConnect(`${S.url}/chat`, `${this.impl} control (S)`);
    this.ctlR = await ioConnect(`${R.url}/chat`, `${this.impl} control (R)`);
    if ((await call(this.sender, "sender", "join", SENDER_ROOM)) !== "ok") fail("sender: join not acked ok");
    this.receivers = new ReceiverPool(R.url, opt.receivers, opt.receiverThreads);
    await this.receivers.all({ type: "connect" }, "connected", CONNECT_TIMEOUT_MS * 6, `${this.impl}: connecting ${opt.receivers} receivers`);

    // Ours says when its LISTENs are in place; the Node adapter LISTENs
    // asynchronously and has no such event: probe until every receiver hears.
    if (this.impl === "ours") {
      const deadline = Date.now() + READY_TIMEOUT_MS;
      for (const ctl of [this.ctlS, this.ctlR]) {
        while ((await call(ctl, "control", "ready")) !== true) {
          this.assertAlive();
          if (Date.now() > deadline) fail(`${this.impl}: node not ready within ${READY_TIMEOUT_MS} ms`);
          await h.sleep(100);
        }
      }
    }
    const tag = `probe-${this.impl}-${Date.now()}`;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      this.assertAlive();
      await this.bcastAck({ event: "probe", except: [SENDER_ROOM] }, tag);
      await h.sleep(200);
      const replies = await this.receivers.all({ type: "probes", tag }, "probes", 10000, "probe count");
      const heard = replies.reduce((a, r) => a + r.heard, 0);
      if (heard === opt.receivers) break;
      if (Date.now() > deadline) {
        fail(`${this.impl}: after ${READY_TIMEOUT_MS} ms only ${heard} of ${opt.receivers} receivers hear S's broadcasts`);
      }
    }
  }

  assertAlive() {
    for (const s of Object.values(this.servers)) s.assertAlive();
    if (this.senderLost) fail(`${this.impl}: the sender was disconnected (${this.senderLost})`);
    if (this.receivers) this.receivers.check();
  }

  async bcastAck(opts, ...args) {
    const r = await call(this.sender, "sender", "bcast", opts, ...args);
    if (r !== "sent") fail(`sender: bcast acked ${JSON.stringify(r)}`);
  }

  async stats() {
    if (this.impl !== "ours") return null;
    return { S: await call(this.ctlS, "control", "stats"), R: await call(this.ctlR, "control", "stats") };
  }

  meter() {
    return new CpuMeter({ S: this.servers.S.child.pid, R: this.servers.R.child.pid }, this.postmasterPid);
  }

  /** Fires n broadcasts, at most `inflight` unacknowledged; resolves when all are acked. */
  fire(event, n, inflight, t0) {
    return new Promise((resolve, reject) => {
      let sent = 0;
      let acked = 0;
      let failed = false;
      const pump = () => {
        while (!failed && sent < n && sent - acked < inflight) {
          const seq = sent++;
          this.sender.timeout(ACK_TIMEOUT_MS).emit(
            "bcast",
            { event, except: [SENDER_ROOM] },
            { seq, ts: Math.round(nowUs()) },
            (err, r) => {
              if (failed) return;
              if (err || r !== "sent") {
                failed = true;
                reject(new Error(`sender: broadcast ${seq}: ${err ? `no ack within ${ACK_TIMEOUT_MS} ms` : `acked ${JSON.stringify(r)}`}`));
                return;
              }
              if (++acked === n) resolve(nowUs());
              else pump();
            },
          );
        }
      };
      t0.t = nowUs();
      pump();
    });
  }

  /**
   * Waits until every receiver has everything, or nothing arrived for
   * --stall-timeout. cancel.fn() stops waiting.
   */
  waitDelivered(expected, cancel) {
    return new Promise((resolve, reject) => {
      let done = 0;
      let lastProgress = -1;
      let lastChange = Date.now();
      const fn = (w, m) => {
        if (m.type === "done" && ++done === this.receivers.workers.length) finish(true);
      };
      const timer = setInterval(() => {
        try {
          this.assertAlive();
        } catch (e) {
          clearInterval(timer);
          this.receivers.handlers.delete(fn);
          reject(e);
          return;
        }
        const p = this.receivers.progress();
        if (p !== lastProgress) {
          lastProgress = p;
          lastChange = Date.now();
        } else if (Date.now() - lastChange > opt.stallTimeoutS * 1000) {
          log(`${this.impl}: no delivery for ${opt.stallTimeoutS} s, ${p} of ${expected}: counting the rest as lost`);
          finish(false);
        }
      }, 250);
      const finish = (complete) => {
        clearInterval(timer);
        this.receivers.handlers.delete(fn);
        resolve(complete);
      };
      cancel.fn = () => finish(false);
      this.receivers.handlers.add(fn);
    });
  }

  async collect() {
    const res = await this.receivers.all({ type: "finish" }, "result", 30000, "collecting results");
    const total = res.reduce((a, r) => a + r.total, 0);
    let n = 0;
    for (const r of res) n += r.lat.length;
    const lat = new Float64Array(n);
    let off = 0;
    for (const r of res) {
      lat.set(r.lat, off);
      off += r.lat.length;
    }
    lat.sort();
    // Per message, the first receiver's latency: the path through the
    // servers and PostgreSQL without the receivers' queue behind it.
    const first = new Float64Array(res[0].first.length).fill(Infinity);
    for (const r of res) for (let i = 0; i < first.length; i++) if (r.first[i] < first[i]) first[i] = r.first[i];
    const firstLat = first.filter(Number.isFinite).sort();
    return {
      firstLat,
      total,
      dups: res.reduce((a, r) => a + r.dups + r.bad, 0),
      reordered: res.reduce((a, r) => a + r.reordered, 0),
      last: Math.max(...res.map((r) => r.last)),
      minPerClient: Math.min(...res.map((r) => r.minPerClient)),
      connected: res.reduce((a, r) => a + r.connected, 0),
      lat,
    };
  }

  async throughput(event, n) {
    await this.receivers.all({ type: "start", event, n, mode: "throughput" }, "started", 10000, "starting a run");
    const meter = this.meter();
    const t0 = {};
    const cancel = {};
    const fired = this.fire(event, n, opt.inflight, t0);
    const delivered = this.waitDelivered(n * opt.receivers, cancel);
    // Either may fail first (a lost ack, a node that died): the other one is
    // then abandoned, its rejection handled here.
    fired.catch(() => {});
    delivered.catch(() => {});
    try {
      await Promise.all([fired, delivered]);
    } finally {
      if (cancel.fn) cancel.fn();
    }
    const cpu = meter.stop();
    const ackedSecs = ((await fired) - t0.t) / 1e6;
    const r = await this.collect();
    return { ...runResult(n, r, (r.last - t0.t) / 1e6, cpu), ackedSecs };
  }

  async latency(event, n) {
    await this.receivers.all({ type: "start", event, n, mode: "latency" }, "started", 10000, "starting a run");
    const meter = this.meter();
    const nw = this.receivers.workers.length;
    const t0 = nowUs();
    let timeouts = 0;
    for (let seq = 0; seq < n; seq++) {
      let got = 0;
      let fn;
      const all = new Promise((resolve) => {
        fn = (w, m) => {
          if (m.type === "got" && m.seq === seq && ++got === nw) resolve(true);
        };
        this.receivers.handlers.add(fn);
      });
      try {
        await this.bcastAck({ event, except: [SENDER_ROOM] }, { seq, ts: Math.round(nowUs()) });
        const ok = await Promise.race([all, h.sleep(opt.stallTimeoutS * 1000).then(() => false)]);
        if (!ok) {
          timeouts++;
          log(`${this.impl}: message ${seq} not at every receiver within ${opt.stallTimeoutS} s`);
          this.assertAlive();
          if (timeouts >= 3) {
            log(`${this.impl}: giving up this run`);
            break;
          }
        }
      } finally {
        this.receivers.handlers.delete(fn);
      }
    }
    const secs = (nowUs() - t0) / 1e6;
    const cpu = meter.stop();
    await h.sleep(200); // a late straggler is still counted
    const r = await this.collect();
    return runResult(n, r, secs, cpu);
  }

  async stop() {
    this.closing = true;
    const errors = [];
    for (const s of [this.sender, this.ctlS, this.ctlR]) {
      if (s) {
        s.close();
        state.sockets.delete(s);
      }
    }
    if (this.receivers) await this.receivers.close();
    for (const s of Object.values(this.servers)) {
      try {
        await s.stop();
      } catch (e) {
        errors.push(e);
      }
      state.servers.delete(s);
    }
    if (errors.length) log(`${this.impl}: ${errors.map((e) => e.message.split("\n")[0]).join("; ")}`);
  }
}

// --- report ------------------------------------------------------------------

const IMPL_NAME = {
  ours: "ours (cluster-node)",
  node: "Node.js socket.io 4.8 + postgres-adapter",
};

function fmt(x, digits = 0) {
  if (!Number.isFinite(x)) return "—";
  return x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function fmtMs(x) {
  if (!Number.isFinite(x)) return "—";
  return x < 10 ? `${x.toFixed(2)} ms` : x < 100 ? `${x.toFixed(1)} ms` : `${x.toFixed(0)} ms`;
}

function resultLine(impl, scenario, run, r) {
  const c = r.cpu;
  return (
    `RESULT bench=cluster impl=${impl} scenario=${scenario} run=${run} receivers=${opt.receivers} ` +
    `messages=${r.n} expected=${r.expected} received=${r.received} lost=${r.lost} dup=${r.dups} ` +
    `reordered=${r.reordered} secs=${r.secs.toFixed(3)} per_receiver_rate=${r.perReceiver.toFixed(1)} ` +
    `delivery_rate=${r.deliveries.toFixed(0)} p50_ms=${r.p50.toFixed(3)} p99_ms=${r.p99.toFixed(3)} ` +
    `max_ms=${r.max.toFixed(3)} first_p50_ms=${r.firstP50.toFixed(3)} first_p99_ms=${r.firstP99.toFixed(3)} cpu_s_pct=${c.S.toFixed(0)} cpu_r_pct=${c.R.toFixed(0)} ` +
    `cpu_pg_pct=${c.pg.toFixed(0)} cpu_client_pct=${c.client.toFixed(0)} ` +
    `server_cpu_us_per_delivery=${r.serverUs.toFixed(3)}` +
    (r.ackedSecs !== undefined ? ` acked_secs=${r.ackedSecs.toFixed(3)}` : "") +
    (r.stats ? ` dropped_s=${r.stats.S.dropped} dropped_r=${r.stats.R.dropped}` : "")
  );
}

function summarise(results) {
  // results[impl][scenario] = [run results]
  const rows = [];
  for (const impl of opt.impl) {
    for (const scenario of opt.scenarios) {
      const runs = (results[impl] && results[impl][scenario]) || [];
      if (runs.length === 0) continue;
      const m = (f) => median(runs.map(f));
      const lo = (f) => Math.min(...runs.map(f));
      const hi = (f) => Math.max(...runs.map(f));
      rows.push({
        impl,
        scenario,
        runs: runs.length,
        perReceiver: m((r) => r.perReceiver),
        perReceiverLo: lo((r) => r.perReceiver),
        perReceiverHi: hi((r) => r.perReceiver),
        deliveries: m((r) => r.deliveries),
        p50: m((r) => r.p50),
        p99: m((r) => r.p99),
        p99Lo: lo((r) => r.p99),
        p99Hi: hi((r) => r.p99),
        lost: runs.reduce((a, r) => a + r.lost, 0),
        expected: runs.reduce((a, r) => a + r.expected, 0),
        dups: runs.reduce((a, r) => a + r.dups, 0),
        reordered: m((r) => r.reordered),
        reorderedRuns: runs.map((r) => r.reordered),
        cpuS: m((r) => r.cpu.S),
        cpuR: m((r) => r.cpu.R),
        cpuPg: m((r) => r.cpu.pg),
        cpuClient: m((r) => r.cpu.client),
        serverUs: m((r) => r.serverUs),
        firstP50: m((r) => r.firstP50),
        firstP99: m((r) => r.firstP99),
      });
    }
  }
  return rows;
}

function table(rows) {
  const out = [];
  out.push(
    "| implementation | scenario | msg/s per receiver (min–max) | deliveries/s | p50 | p99 (min–max) | lost | reordered | CPU S / R / PostgreSQL / client | S+R CPU per delivery |",
  );
  out.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const r of rows) {
    out.push(
      `| ${IMPL_NAME[r.impl]} | ${r.scenario} | ${fmt(r.perReceiver)} (${fmt(r.perReceiverLo)}–${fmt(r.perReceiverHi)}) | ` +
        `${fmt(r.deliveries)} | ${fmtMs(r.p50)} | ${fmtMs(r.p99)} (${fmtMs(r.p99Lo)}–${fmtMs(r.p99Hi)}) | ` +
        `${r.lost} / ${fmt(r.expected)}${r.dups ? `, ${r.dups} dup` : ""} | ${r.reorderedRuns.map((x) => fmt(x)).join(", ")} | ` +
        `${fmt(r.cpuS)}% / ${fmt(r.cpuR)}% / ${fmt(r.cpuPg)}% / ${fmt(r.cpuClient)}% | ` +
        `${Number.isFinite(r.serverUs) ? `${r.serverUs.toFixed(2)} µs` : "—"} |`,
    );
  }
  return out.join("\n");
}

function ratios(rows) {
  const lines = [];
  for (const scenario of opt.scenarios) {
    const o = rows.find((r) => r.impl === "ours" && r.scenario === scenario);
    const n = rows.find((r) => r.impl === "node" && r.scenario === scenario);
    if (!o || !n) continue;
    lines.push(
      `- ${scenario}: msg/s ours/Node ${(o.perReceiver / n.perReceiver).toFixed(2)}×; ` +
        `p50 Node/ours ${(n.p50 / o.p50).toFixed(2)}×; p99 Node/ours ${(n.p99 / o.p99).toFixed(2)}×; ` +
        `server CPU per delivery Node/ours ${(n.serverUs / o.serverUs).toFixed(1)}× (above 1: ours is better)`,
    );
  }
  return lines.join("\n");
}

/** What the figures of this run say, in a few generated lines. */
function notes(rows) {
  const out = [];
  for (const r of rows) {
    const who = `${r.impl === "ours" ? "ours" : "Node.js"}, ${r.scenario}`;
    if (r.lost > 0 || r.dups > 0) {
      out.push(`- **${who}: ${r.lost} of ${fmt(r.expected)} deliveries lost${r.dups ? `, ${r.dups} duplicated` : ""}.**`);
    }
    if (r.cpuClient >= 85 && r.scenario === "latency") {
      out.push(
        `- ${who}: the benchmark process (the ${opt.receivers} receivers and the sender) was busy ` +
          `${fmt(r.cpuClient)}% of the time: much of this latency is the receivers' own processing.`,
      );
    } else if (r.cpuClient >= 85) {
      out.push(
        `- ${who}: the benchmark process (the ${opt.receivers} receivers and the sender) used ` +
          `${fmt(r.cpuClient)}% of ${opt.pin ? `its core` : "a core"}: it was the limit, so the rate is a ` +
          `lower bound for the servers; their own cost is the S+R CPU per delivery.`,
      );
    }
    if (opt.pin && r.cpuS + r.cpuR >= 85) {
      out.push(`- ${who}: S and R together used ${fmt(r.cpuS + r.cpuR)}% of CPU ${opt.nodeCpus}: the servers were the limit.`);
    }
    if (r.scenario === "throughput" && r.reorderedRuns.some((x) => x > 0)) {
      out.push(
        `- ${who}: ${r.reorderedRuns.map((x) => fmt(x)).join(", ")} deliveries (per run, of ` +
          `${fmt(r.expected / r.runs)}) arrived after a later message.`,
      );
    }
    if (r.scenario === "latency") {
      out.push(
        `- ${who}: the first receiver of each message had it after p50 ${fmtMs(r.firstP50)}, ` +
          `p99 ${fmtMs(r.firstP99)}; the rest of the latency above is the receivers' queue in one thread.`,
      );
    }
  }
  return out.join("\n");
}

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
  } catch {
    return "?";
  }
}

function writeDoc(rows, allLines, context) {
  const cmd = ["node", "tests/bench/cluster_bench.js", ...process.argv.slice(2)].join(" ");
  const doc = `# Broadcasts between processes through PostgreSQL

\`${cmd}\`

Two server processes of one implementation share a throwaway PostgreSQL
cluster (\`ci/pg.sh\`: fsync off, on this machine): the sender's node S and
the receivers' node R. One socket.io-client on S asks it (\`bcast\` event) to
broadcast a small object \`{seq, ts}\` to namespace \`/\` except the sender's
own room; ${opt.receivers} socket.io-clients (WebSocket) on R receive it.
Ours is \`build/release/cluster-node\` (Release, \`spaces/cluster.c\`); the
reference is \`tests/conformance/reference_cluster.js\` (socket.io 4.8.4 with
@socket.io/postgres-adapter and pg). Both publish with \`NOTIFY\` on
\`socket.io#/\` in the same JSON format and LISTEN on it.

- **throughput**: ${fmt(opt.messages)} broadcasts fired as fast as the
  sender can, at most ${opt.inflight} \`bcast\` acks outstanding. msg/s per
  receiver = messages / (first send → last receipt at the last receiver);
  deliveries/s = that × receivers. Latency = send timestamp → receipt, for
  every delivery (one machine, one monotonic clock).
- **latency**: ${opt.latencyMessages} broadcasts one at a time, the next
  once every receiver has the previous one; msg/s is that loop's rate.
- **lost**: deliveries that never came (of all runs); **reordered**: per
  run, deliveries that arrived after a later message of the same sender, at
  the same receiver.
- **CPU**: % of one core over the scenario, from \`/proc\`: S, R, every
  process of the PostgreSQL server, and the benchmark process (sender,
  receivers in a worker thread).

Median of ${opt.runs} run${opt.runs > 1 ? "s" : ""}; each run starts both implementations' nodes
afresh (in alternating order), warms up with ${opt.warmup} unmeasured
broadcasts, then runs the scenarios. ${
    opt.pin
      ? `The two nodes are pinned to CPU ${opt.nodeCpus} and the benchmark process to CPU ${opt.clientCpus} (\`taskset\`); PostgreSQL is not pinned.`
      : "Nothing is pinned."
  }

**Caveat**: PostgreSQL \`NOTIFY\`/\`LISTEN\` is the shared path: both
implementations go through the same database server on the same two cores,
and every broadcast is a transaction there (ours batches the broadcasts that
queue up while one is in flight into one transaction, up to 32; the Node
adapter sends one \`SELECT pg_notify(...)\` query per broadcast on whichever
connection of its pool is free, up to 10 at once, which is also why it does
not keep their order). On a machine
with ${context.nproc} cores, the nodes, PostgreSQL and the
${opt.receivers + 1} Node.js clients compete for CPU, so the figures are
those of the whole machine, not of one server.

Machine: ${context.nproc} cores, Linux ${context.kernel}, ${context.cpuModel}; ${context.node}; PostgreSQL ${context.pg}.
Date: ${context.date}. Load before: \`${context.uptimeBefore}\`; after: \`${context.uptimeAfter}\`.

${table(rows)}

${ratios(rows)}

${notes(rows)}

How to read it: the throughput rate is that of the slowest link, which may
be the benchmark process itself (its CPU is in the table: near 100% of its
core means the receivers were the limit, not the servers). The CPU of S and
R per delivery to a receiver compares the two servers' own costs whatever
the limit was. In the throughput scenario, latency is mostly queueing: the
sender fires faster than the messages can be delivered. In the latency
scenario, one message at a time, it is the path sender → S → PostgreSQL
(a transaction with \`NOTIFY\`) → R's \`LISTEN\` connection → R → the
receivers, the last of which are served after the others by one thread.

<details><summary>Every run</summary>

\`\`\`
${allLines.join("\n")}
\`\`\`

</details>
`;
  fs.mkdirSync(path.dirname(opt.out), { recursive: true });
  fs.writeFileSync(opt.out, doc);
  log(`wrote ${path.relative(ROOT, opt.out)}`);
}

// --- main --------------------------------------------------------------------

async function main() {
  ensureBuilt();
  if (opt.pin) {
    try {
      execFileSync("taskset", ["-a", "-p", "-c", opt.clientCpus, String(process.pid)], { stdio: "ignore" });
    } catch (e) {
      fail(`taskset -c ${opt.clientCpus} failed (--no-pin to run unpinned): ${e.message}`);
    }
  }
  const context = {
    nproc: os.cpus().length,
    kernel: sh("uname", ["-r"]),
    cpuModel: (os.cpus()[0] || {}).model || "?",
    node: `Node.js ${process.version}`,
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    uptimeBefore: sh("uptime", []),
  };
  log(`load: ${context.uptimeBefore}`);

  state.tmp = fs.mkdtempSync(path.join(os.tmpdir(), "spaces-cluster-bench-"));
  fs.chmodSync(state.tmp, 0o755); // ci/pg.sh runs PostgreSQL as 'postgres' when we are root
  state.pgDir = path.join(state.tmp, "pg");
  state.pgStarted = true; // from here on, stop it whatever happens
  const out = await pgSh("start", state.pgDir);
  const dbUrl = out.split("\n").pop();
  if (!/^postgres(ql)?:\/\//.test(dbUrl)) fail(`ci/pg.sh start printed no URL: ${out}`);
  let postmasterPid = null;
  try {
    postmasterPid = Number(fs.readFileSync(path.join(state.pgDir, "data", "postmaster.pid"), "utf8").split("\n")[0]);
  } catch {
    log("no postmaster.pid: PostgreSQL's CPU is not measured");
  }
  try {
    context.pg = fs.readFileSync(path.join(state.pgDir, "data", "PG_VERSION"), "utf8").trim();
  } catch {
    context.pg = "?";
  }
  log(`PostgreSQL ${context.pg} at ${dbUrl} (pid ${postmasterPid})`);

  const results = {};
  const lines = [];
  let anyLoss = false;
  for (let run = 1; run <= opt.runs; run++) {
    const order = run % 2 ? opt.impl : [...opt.impl].reverse();
    for (const impl of order) {
      const pair = new Pair(impl, dbUrl, postmasterPid);
      try {
        log(`run ${run}/${opt.runs}: ${impl}: starting S and R, ${opt.receivers} receivers`);
        await pair.start();
        if (opt.warmup > 0) {
          const w = await pair.throughput(`warm${run}`, opt.warmup);
          if (w.lost) log(`${impl}: warm-up lost ${w.lost}`);
        }
        for (const scenario of opt.scenarios) {
          await h.sleep(500);
          const event = `${scenario.slice(0, 1)}${run}`;
          const r =
            scenario === "throughput"
              ? await pair.throughput(event, opt.messages)
              : await pair.latency(event, opt.latencyMessages);
          r.stats = await pair.stats();
          if (r.stats && (r.stats.S.dropped || r.stats.R.dropped)) {
            log(`${impl}: the nodes dropped messages: S ${JSON.stringify(r.stats.S)} R ${JSON.stringify(r.stats.R)}`);
          }
          if (r.lost || r.dups) anyLoss = true;
          ((results[impl] ||= {})[scenario] ||= []).push(r);
          const line = resultLine(impl, scenario, run, r);
          lines.push(line);
          console.log(line);
        }
      } finally {
        await pair.stop();
      }
    }
  }
  context.uptimeAfter = sh("uptime", []);

  const rows = summarise(results);
  console.log("");
  console.log(table(rows));
  console.log("");
  console.log(ratios(rows));
  console.log(notes(rows));
  if (opt.out) writeDoc(rows, lines, context);
  if (anyLoss) log("messages were lost or duplicated: see the lost column");
  return anyLoss ? 1 : 0;
}

main()
  .then(async (code) => {
    await cleanup();
    process.exit(code);
  })
  .catch(async (err) => {
    log(`error: ${opt.verbose ? err.stack || err.message : err.message}`);
    await cleanup();
    process.exit(1);
  });
