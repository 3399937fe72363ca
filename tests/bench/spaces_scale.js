#!/usr/bin/env node
// Spaces at scale: several spaces-server processes (--node-id) on one
// throwaway PostgreSQL (ci/pg.sh), browsers on namespace /spaces spread over
// them round robin, following --spaces spaces; --apps apps (one space each,
// on different nodes) serve requests that --users users submit over HTTP to
// a node of their own.
//
// Checked and measured:
//   badges    every browser following a space that gets an app sees a
//             space_state with apps >= 1, whichever node it is on; time from
//             the registrations to the last such badge
//   results   every request completes; every socket of the user (on every
//             node) gets its "completed" request_update exactly once; time
//             from the submit to the first of the user's sockets having it,
//             and to the last
//
//   node tests/bench/spaces_scale.js [--browsers 10000] [--nodes 3]
//        [--spaces 1000] [--apps 50] [--users 200] [--requests 1000]
//        [--concurrency 50] [--server build/release/spaces-server] [--json FILE]
//
// Prints one RESULT line and a table; exit status 0 only when nothing was
// lost or duplicated.
"use strict";

const { spawn, execFileSync, fork } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const ROOT = path.join(__dirname, "..", "..");
const { io } = require(path.join(ROOT, "tests", "node_modules", "socket.io-client"));
const { arg, sleep, freePort, waitUp, form, login } = require("./bench_site.js");

const SERVER = arg("--server", path.join(ROOT, "build", "release", "spaces-server"));
const BROWSERS = Number(arg("--browsers", "10000"));
const NODES = Number(arg("--nodes", "3"));
const SPACES = Number(arg("--spaces", "1000"));
const APPS = Number(arg("--apps", "50"));
const USERS = Number(arg("--users", "200"));
const REQUESTS = Number(arg("--requests", "1000"));
const CONCURRENCY = Number(arg("--concurrency", "10"));
// Browsers per process, below the open-file limit (ulimit -Hn) with a margin.
const PER_PROC = Number(arg("--per-process", "15000"));
const JSON_OUT = arg("--json", "");
// CLOCK_MONOTONIC in ms: the same clock in the browser processes.
const now = () => Number(process.hrtime.bigint()) / 1e6;
const CHILD = process.argv.includes("--child");

const children = [];
let stopping = false;

function log(msg) {
  process.stderr.write(`spaces_scale: ${msg}\n`);
}


function pct(v, p) {
  const s = [...v].sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

function connect(url, opts) {
  return new Promise((resolve, reject) => {
    const s = io(url, { transports: ["websocket"], reconnection: false, forceNew: true, ...opts });
    const t = setTimeout(() => reject(new Error(`connect ${url}: timeout`)), 120000);
    s.once("connect", () => {
      clearTimeout(t);
      resolve(s);
    });
    s.once("connect_error", (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "spaces-scale-"));
  fs.chmodSync(tmp, 0o755);
  const pgDir = path.join(tmp, "pg");
  const url = execFileSync(path.join(ROOT, "ci", "pg.sh"), ["start", pgDir]).toString().trim();
  const servers = [];
  const sockets = [];
  const cleanup = () => {
    stopping = true;
    for (const k of children) k.kill("SIGKILL");
    for (const s of sockets) s.close();
    for (const s of servers) s.kill("SIGTERM");
  };
  for (const sig of ["SIGINT", "SIGTERM"]) {
    process.on(sig, () => {
      for (const s of servers) s.kill("SIGKILL");
      try {
        execFileSync(path.join(ROOT, "ci", "pg.sh"), ["stop", pgDir]);
      } catch {}
      process.exit(130);
    });
  }
  const result = { browsers: BROWSERS, nodes: NODES, spaces: SPACES, apps: APPS, users: USERS };
  let ok = false;
  try {
    // The schema first (the first node migrates), then the others.
    execFileSync(SERVER, ["user", "add", "admin", "--admin", "--database-url", url], { input: "benchpass123\n" });
    const bases = [];
    for (let i = 0; i < NODES; i++) {
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      servers.push(spawn(SERVER, ["--listen", `127.0.0.1:${port}`, "--database-url", url,
        "--node-id", `bench:${port}`, "--upload-dir", path.join(tmp, `uploads${i}`),
        "--data-dir", path.join(tmp, `data${i}`), "--legacy-open-spaces",
        // Every simulated browser and user comes from 127.0.0.1: no
        // per-address handshake or registration limit.
        "--handshake-rate", "0", "--register-limit", "0", "--log-level", "warn"], { stdio: ["ignore", "inherit", "inherit"] }));
      bases.push(base);
    }
    for (const b of bases) await waitUp(b, 600); // several nodes start at once
    const admin = await login(bases[0], "admin", "benchpass123");
    const tSetup = now();
    const spaceIds = [];
    const names = [];
    // 8 at a time over the nodes.
    async function addSpace(i) {
      const name = `Scale${i}`;
      const add = await form(bases[i % NODES] + "/admin/space/add", {
        name, description: "scale", cover: "", cover_type: "gradient",
        card_type: "websockets", ws_enable_prompt: "on", ws_rate_limit_seconds: "0",
      }, admin);
      const id = (add.headers.get("location") || "").split("/edit/")[1];
      if (!id) throw new Error(`space add ${name}: ${add.status}`);
      spaceIds[i] = id;
      names[i] = name;
    }
    let nextSpace = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (nextSpace < SPACES) await addSpace(nextSpace++);
    }));
    log(`${SPACES} spaces created in ${((now() - tSetup) / 1000).toFixed(1)} s`);
    // One login at a time per node: a node hashes at most one password per
    // client address and queues three more (web/pwhash.c), and every user
    // logs in from 127.0.0.1.
    const cookies = new Array(USERS);
    await Promise.all(bases.map(async (base, n) => {
      for (let u = n; u < USERS; u += NODES) cookies[u] = await login(base, `scale_user_${u}`, "benchpass123");
    }));
    log(`${USERS} users logged in`);

    // Browsers: socket j is user j % USERS's, on node j % NODES, following space j % SPACES.
    const appSpace = new Set();
    for (let k = 0; k < APPS; k++) appSpace.add(Math.floor((k * SPACES) / APPS));
    const badgeWant = new Map(); // space index -> followers
    let badges = 0;
    let badgeLast = 0;
    let badgeBad = 0;
    const done = new Map(); // request_id -> {user, t0, first, last, n}
    let dupResults = 0;
    let strayResults = 0;
    const t0 = now();
    const procs = Math.max(1, Math.ceil(BROWSERS / PER_PROC));
    let opened = 0;
    let readyKids = 0;
    for (let c = 0; c < procs; c++) {
      const kid = fork(__filename, ["--child"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
      children.push(kid);
      kid.on("message", (m) => {
        if (m.type === "ready") {
          opened += m.opened;
          readyKids++;
        } else if (m.type === "badges") {
          badges += m.n;
          badgeBad += m.bad;
          if (m.last > badgeLast) badgeLast = m.last;
        } else if (m.type === "arr") {
          // An update may come before the answer to the submit: kept, judged at the end.
          for (const [rid, user, t] of m.list) {
            let d = done.get(rid);
            if (!d) done.set(rid, (d = { user: -1, t0: 0, arrivals: [] }));
            d.arrivals.push({ user, t });
          }
          dupResults += m.dup;
        }
      });
      kid.on("exit", (code) => {
        if (code && !stopping) log(`browser process ${c} exited with status ${code}`);
      });
      kid.send({ type: "start", first: c, step: procs, browsers: BROWSERS, bases, cookies, spaceIds,
        users: USERS, spaces: SPACES, appSpace: [...appSpace] });
    }
    for (let j = 0; j < BROWSERS; j++) {
      const sp = j % SPACES;
      if (appSpace.has(sp)) badgeWant.set(sp, (badgeWant.get(sp) || 0) + 1);
    }
    while (readyKids < procs) {
      if (children.some((k) => k.exitCode !== null)) throw new Error("a browser process exited");
      await sleep(50);
    }
    result.connect_s = (now() - t0) / 1000;
    if (opened !== BROWSERS) throw new Error(`only ${opened} of ${BROWSERS} browsers connected`);
    log(`${opened} browsers connected and following in ${result.connect_s.toFixed(1)} s`);
    const perUser = new Array(USERS).fill(0);
    for (let j = 0; j < BROWSERS; j++) perUser[j % USERS]++;

    // Apps: app k serves space appSpace[k] from node k % NODES.
    const wantBadges = [...badgeWant.values()].reduce((a, b) => a + b, 0);
    const tApps = now();
    const apps = [];
    let k = 0;
    for (const sp of appSpace) {
      const a = await connect(bases[k % NODES]);
      sockets.push(a);
      await new Promise((resolve, reject) => {
        a.once("register_response", (r) => (r.success ? resolve() : reject(new Error(r.message))));
        a.emit("register", { space_name: names[sp] });
      });
      a.on("inference_request", (r) => {
        a.emit("inference_result", { request_id: r.request_id, status: "completed", result: { text_output: "ok" } });
      });
      apps.push(sp);
      k++;
    }
    for (let i = 0; i < 600 && badges < wantBadges; i++) await sleep(100);
    result.badges = badges;
    result.badges_want = wantBadges;
    result.badge_last_ms = badges ? badgeLast - tApps : NaN;
    log(`badges ${badges}/${wantBadges}, the last ${result.badge_last_ms.toFixed(0)} ms after the first registration began`);

    // Requests: user u submits to app space (n % APPS) on node u % NODES.
    let next = 0;
    let failed = 0;
    const tReq = now();
    async function worker() {
      for (;;) {
        const n = next++;
        if (n >= REQUESTS) return;
        const user = n % USERS;
        const sp = apps[n % apps.length];
        const start = now();
        const res = await fetch(`${bases[user % NODES]}/websockets/submit/${spaceIds[sp]}`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", cookie: cookies[user] },
          body: `prompt=req+${n}`,
        });
        const body = await res.json().catch(() => ({}));
        if (res.status !== 200 || !body.request_id) {
          failed++;
          continue;
        }
        let d = done.get(body.request_id);
        if (!d) done.set(body.request_id, (d = { user, t0: start, arrivals: [] }));
        d.user = user;
        d.t0 = start;
        for (let i = 0; i < 3000 && d.arrivals.length < perUser[user]; i++) await sleep(10);
        if (d.arrivals.length < perUser[user])
          log(`request ${n} (${body.request_id}, user ${user}, space ${sp}): ${d.arrivals.length} of ${perUser[user]} sockets got it`);
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    await sleep(500);
    result.requests_s = (now() - tReq) / 1000;
    const first = [];
    const last = [];
    let lost = 0;
    let submitted = 0;
    for (const d of done.values()) {
      if (d.user < 0) {
        strayResults += d.arrivals.length; // never submitted by us
        continue;
      }
      submitted++;
      const mine = d.arrivals.filter((a) => a.user === d.user).map((a) => a.t - d.t0);
      strayResults += d.arrivals.length - mine.length;
      if (mine.length < perUser[d.user]) lost += perUser[d.user] - mine.length;
      if (mine.length) first.push(Math.min(...mine));
      if (mine.length === perUser[d.user]) last.push(Math.max(...mine));
    }
    Object.assign(result, {
      requests: REQUESTS, submitted, submit_failed: failed,
      deliveries_lost: lost, deliveries_dup: dupResults, stray: strayResults, badge_bad: badgeBad,
      sockets_per_user: perUser[0],
      first_p50_ms: pct(first, 50), first_p99_ms: pct(first, 99),
      last_p50_ms: pct(last, 50), last_p99_ms: pct(last, 99),
    });
    ok = failed === 0 && lost === 0 && dupResults === 0 && strayResults === 0 &&
      submitted === REQUESTS && badges === wantBadges;
    result.ok = ok;
    console.log("RESULT scenario=spaces_scale " + Object.entries(result)
      .map(([k, v]) => `${k}=${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(1) : v}`).join(" "));
    console.log(`
| Spaces at scale: ${BROWSERS} browser sockets over ${NODES} spaces-server nodes, ${SPACES} spaces followed, ${APPS} apps, ${USERS} users (${perUser[0]} sockets each) | |
| --- | --- |
| browsers connected and following | ${opened} in ${result.connect_s.toFixed(1)} s |
| badges updated (space_state apps ≥ 1, every follower on every node) | ${badges} / ${wantBadges}, the last ${result.badge_last_ms.toFixed(0)} ms after the apps started registering |
| requests completed | ${submitted} / ${REQUESTS} (${CONCURRENCY} at once) in ${result.requests_s.toFixed(1)} s |
| result to the user's first socket: p50 / p99 | ${result.first_p50_ms.toFixed(1)} / ${result.first_p99_ms.toFixed(1)} ms |
| result to all the user's sockets (every node): p50 / p99 | ${result.last_p50_ms.toFixed(1)} / ${result.last_p99_ms.toFixed(1)} ms |
| deliveries lost / duplicated / to a wrong user | ${lost} / ${dupResults} / ${strayResults} |
| status | ${ok ? "ok" : "FAIL"} |`);
    if (JSON_OUT) fs.writeFileSync(JSON_OUT, JSON.stringify(result, null, 1));
  } finally {
    cleanup();
    await Promise.all(servers.map((s) => new Promise((r) => (s.exitCode !== null ? r() : s.on("exit", r)))));
    execFileSync(path.join(ROOT, "ci", "pg.sh"), ["stop", pgDir]);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  process.exitCode = ok ? 0 : 1;
}

// A browser process: browsers first, first + step, ... of the run, each on
// node j % nodes as user j % users following space j % spaces; reports
// badges and "completed" updates to the parent, batched every 20 ms.
function child() {
  process.on("disconnect", () => process.exit(0));
  process.on("message", async (m) => {
    if (m.type !== "start") return;
    const appSpace = new Set(m.appSpace);
    let arr = [];
    let dup = 0;
    let badges = 0;
    let bad = 0;
    let last = 0;
    setInterval(() => {
      if (badges || bad) process.send({ type: "badges", n: badges, bad, last });
      if (arr.length || dup) process.send({ type: "arr", list: arr, dup });
      arr = [];
      dup = badges = bad = 0;
    }, 20);
    let opened = 0;
    async function open(j) {
      const user = j % m.users;
      const sp = j % m.spaces;
      const s = await connect(m.bases[j % m.bases.length] + "/spaces", { extraHeaders: { cookie: m.cookies[user] } });
      const seen = new Set();
      let badge = false;
      await new Promise((resolve) => {
        s.once("space_state", resolve);
        s.emit("follow_space", m.spaceIds[sp]);
      });
      s.on("space_state", (st) => {
        if (!st || st.space_id !== m.spaceIds[sp]) return void bad++;
        if (st.apps >= 1 && !badge && appSpace.has(sp)) {
          badge = true;
          badges++;
          last = now();
        }
      });
      s.on("request_update", (u) => {
        if (!u || u.status !== "completed") return;
        if (seen.has(u.request_id)) return void dup++;
        seen.add(u.request_id);
        arr.push([u.request_id, user, now()]);
      });
      opened++;
    }
    const mine = [];
    for (let j = m.first; j < m.browsers; j += m.step) mine.push(j);
    for (let i = 0; i < mine.length; i += 200) await Promise.all(mine.slice(i, i + 200).map(open));
    process.send({ type: "ready", opened });
  });
}

if (CHILD) child();
else
  main().catch((e) => {
    console.error(e);
    for (const k of children) k.kill("SIGKILL");
    process.exitCode = 1;
  });
