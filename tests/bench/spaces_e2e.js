#!/usr/bin/env node
// Spaces end to end: users submit over HTTP, a zero-time app answers over
// Socket.IO, and each user learns that its request is done in one of two
// ways (--follow):
//
//   poll  (default) GET /websockets/status every 50 ms until "completed", as
//         the old site was measured (shared BENCHMARKS.md);
//   push  as the site's own pages do: the user's browser connection on
//         namespace /spaces (its session cookie) gets request_update, and on
//         "completed" the user reads the status once to confirm it.
//
// For each concurrency, a fixed number of requests; every request is counted
// (a request never completed is "lost" and fails the run).
//
//   node tests/bench/spaces_e2e.js [--server build/release/spaces-server]
//        [--levels 1,10,50,500] [--requests 500] [--follow poll|push] [--users 50]
//
// Starts its own PostgreSQL cluster (ci/pg.sh) and server; prints one RESULT
// line per level and a table.
"use strict";

const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const ROOT = path.join(__dirname, "..", "..");
const { io } = require(path.join(ROOT, "tests", "node_modules", "socket.io-client"));
const { arg, sleep, freePort, waitUp, form, login } = require("./bench_site.js");

const SERVER = arg("--server", path.join(ROOT, "build", "release", "spaces-server"));
const LEVELS = arg("--levels", "1,10,50,500").split(",").map(Number);
const REQUESTS = Number(arg("--requests", "500"));
const FOLLOW = arg("--follow", "poll");
const USERS = Number(arg("--users", "50")); // accounts the concurrent users take turns with
if (FOLLOW !== "poll" && FOLLOW !== "push") {
  console.error("spaces_e2e: --follow is poll or push");
  process.exit(2);
}

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/*
 * One user's browser connection on /spaces: request_update events for all
 * of that user's requests. final(id) resolves with the first final status
 * (completed or failed) of that request, also when it came before the
 * submit's answer did.
 */
function pushFollower(base, cookie) {
  // forceNew: its own connection with its own cookie, not a namespace
  // multiplexed over the app's connection to the same server.
  const sock = io(base + "/spaces", { transports: ["websocket"], reconnection: false,
    forceNew: true, extraHeaders: { cookie } });
  const finals = new Map();
  const waiting = new Map();
  sock.on("request_update", (u) => {
    if (u.status !== "completed" && u.status !== "failed") return;
    const wake = waiting.get(u.request_id);
    if (wake) {
      waiting.delete(u.request_id);
      wake(u.status);
    } else {
      finals.set(u.request_id, u.status);
    }
  });
  return {
    ready: new Promise((resolve, reject) => {
      sock.on("connect", resolve);
      sock.on("connect_error", reject);
    }),
    final(id, timeoutMs) {
      const early = finals.get(id);
      if (early) {
        finals.delete(id);
        return Promise.resolve(early);
      }
      return new Promise((resolve) => {
        const t = setTimeout(() => {
          waiting.delete(id);
          resolve("timeout");
        }, timeoutMs);
        waiting.set(id, (st) => {
          clearTimeout(t);
          resolve(st);
        });
      });
    },
    close: () => sock.close(),
  };
}

// CPU seconds the server process has used so far (utime + stime).
function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(rest[11]) + Number(rest[12])) / 100; // fields 14 and 15, at USER_HZ 100
}

async function runLevel(base, spaceId, cookies, pushes, concurrency, total, serverPid) {
  let next = 0;
  let httpRequests = 0;
  let completed = 0;
  let lost = 0;
  const lat = [];
  // SPACES_E2E_PERF=FILE: perf record of the server during this level only
  // (the logins before it spend seconds in argon2id and would drown the profile).
  // SPACES_E2E_STRACE=FILE: the server's system calls counted (strace -c) instead.
  const perf = process.env.SPACES_E2E_PERF
    ? spawn("perf", ["record", "-F", "4000", "-g", "-p", String(serverPid), "-o", `${process.env.SPACES_E2E_PERF}.${concurrency}`],
      { stdio: "ignore" })
    : process.env.SPACES_E2E_STRACE
    ? spawn("strace", ["-c", "-f", "-p", String(serverPid), "-o", `${process.env.SPACES_E2E_STRACE}.${concurrency}`], { stdio: "ignore" })
    : null;
  if (perf) await sleep(500);
  const cpu0 = cpuSeconds(serverPid);
  const t0 = performance.now();
  async function worker(w) {
    const cookie = cookies[w % cookies.length];
    for (;;) {
      const n = next++;
      if (n >= total) return;
      const start = performance.now();
      httpRequests++;
      const res = await fetch(`${base}/websockets/submit/${spaceId}`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", cookie },
        body: `prompt=req+${n}`,
      });
      const body = await res.json();
      if (res.status !== 200 || !body.request_id) {
        lost++;
        continue;
      }
      let done = false;
      if (FOLLOW === "push") {
        const status = await pushes[w % pushes.length].final(body.request_id, 30000);
        if (status === "completed") {
          httpRequests++;
          const st = await (await fetch(`${base}/websockets/status?request_id=${body.request_id}`)).json();
          done = st.status === "completed";
        }
      } else {
        const deadline = Date.now() + 30000;
        while (!done && Date.now() < deadline) {
          await sleep(50);
          httpRequests++;
          const st = await (await fetch(`${base}/websockets/status?request_id=${body.request_id}`)).json();
          if (st.status === "completed") done = true;
          else if (st.status === "failed") break;
        }
      }
      if (done) {
        completed++;
        lat.push(performance.now() - start);
      } else {
        lost++;
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(serverPid) - cpu0;
  if (perf) {
    perf.kill("SIGINT");
    await new Promise((r) => perf.on("exit", r));
  }
  lat.sort((a, b) => a - b);
  const avg = lat.length ? lat.reduce((a, b) => a + b, 0) / lat.length : NaN;
  return { concurrency, total, completed, lost, secs, rate: completed / secs, avg, p50: pct(lat, 50), p95: pct(lat, 95),
    p99: pct(lat, 99), max: lat.length ? lat[lat.length - 1] : NaN, httpRequests, cpu,
    usPerHttp: (cpu * 1e6) / httpRequests, usPerRequest: (cpu * 1e6) / total };
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "spaces-e2e-"));
  fs.chmodSync(tmp, 0o755);
  const pgDir = path.join(tmp, "pg");
  const url = execFileSync(path.join(ROOT, "ci", "pg.sh"), ["start", pgDir]).toString().trim();
  // Interrupted (Ctrl-C, timeout): the cluster and the server go too.
  let server;
  for (const sig of ["SIGINT", "SIGTERM"]) {
    process.on(sig, () => {
      if (server) server.kill("SIGKILL");
      try {
        execFileSync(path.join(ROOT, "ci", "pg.sh"), ["stop", pgDir]);
        fs.rmSync(tmp, { recursive: true, force: true });
      } catch {}
      process.exit(130);
    });
  }
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  execFileSync(SERVER, ["user", "add", "admin", "--admin", "--database-url", url], { input: "benchpass123\n" });
  server = spawn(SERVER, ["--listen", `127.0.0.1:${port}`, "--database-url", url,
    "--upload-dir", path.join(tmp, "uploads"), "--data-dir", path.join(tmp, "data"), "--log-level", "warn", "--legacy-open-spaces",
    // Every simulated user comes from 127.0.0.1: no per-address handshake limit.
    "--handshake-rate", "0", "--register-limit", "0"], { stdio: ["ignore", "inherit", "inherit"] });
  let app;
  try {
    await waitUp(base);
    const admin = await login(base, "admin", "benchpass123");
    const add = await form(base + "/admin/space/add", {
      name: "BenchSpace", description: "bench", cover: "", cover_type: "gradient",
      card_type: "websockets", ws_enable_prompt: "on", ws_rate_limit_seconds: "0",
    }, admin);
    const spaceId = (add.headers.get("location") || "").split("/edit/")[1];
    if (!spaceId) throw new Error(`space add: ${add.status}`);

    // The app: answers every request at once.
    app = io(base, { transports: ["websocket"], reconnection: false });
    await new Promise((resolve, reject) => {
      app.on("connect", () => app.emit("register", { space_name: "BenchSpace" }));
      app.on("register_response", (r) => (r.success ? resolve() : reject(new Error(r.message))));
      app.on("connect_error", reject);
    });
    app.on("inference_request", (r) => {
      app.emit("inference_result", { request_id: r.request_id, status: "completed", result: { text_output: "ok" } });
    });

    const cookies = [];
    for (let i = 0; i < USERS; i++) cookies.push(await login(base, `bench_user_${i}`, "benchpass123"));
    const pushes = [];
    if (FOLLOW === "push") {
      for (const c of cookies) pushes.push(pushFollower(base, c));
      await Promise.all(pushes.map((p) => p.ready));
    }
    const results = [];
    for (const level of LEVELS) {
      const r = await runLevel(base, spaceId, cookies, pushes, level, REQUESTS, server.pid);
      results.push(r);
      console.log(`RESULT scenario=spaces_e2e follow=${FOLLOW} concurrency=${r.concurrency} requests=${r.total} completed=${r.completed} ` +
        `lost=${r.lost} rate=${r.rate.toFixed(1)} p50_ms=${r.p50.toFixed(1)} p99_ms=${r.p99.toFixed(1)} ` +
        `avg_ms=${r.avg.toFixed(1)} p95_ms=${r.p95.toFixed(1)} max_ms=${r.max.toFixed(1)} secs=${r.secs.toFixed(2)} ` +
        `http_requests=${r.httpRequests} server_cpu_s=${r.cpu.toFixed(2)} server_us_per_http=${r.usPerHttp.toFixed(0)} ` +
        `server_us_per_request=${r.usPerRequest.toFixed(0)}`);
    }
    console.log("\n| concurrent users | completed / requests | requests/s | p50 | p99 | server CPU per HTTP request | per Spaces request |");
    console.log("| --- | --- | --- | --- | --- | --- | --- |");
    for (const r of results)
      console.log(`| ${r.concurrency} | ${r.completed} / ${r.total} | ${r.rate.toFixed(0)} | ${r.p50.toFixed(1)} ms | ${r.p99.toFixed(1)} ms | ` +
        `${r.usPerHttp.toFixed(0)} µs | ${r.usPerRequest.toFixed(0)} µs |`);
    for (const p of pushes) p.close();
    process.exitCode = results.every((r) => r.lost === 0) ? 0 : 1;
  } finally {
    if (app) app.close();
    server.kill("SIGTERM");
    await new Promise((r) => server.on("exit", r));
    execFileSync(path.join(ROOT, "ci", "pg.sh"), ["stop", pgDir]);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
