#!/usr/bin/env node
// The seed test plan (tests 1-7), its performance metrics and system
// resources, run for real and recorded for the test-results document
// (tests/report/run.sh; issue 15). Everything is started here: a throwaway
// PostgreSQL (ci/pg.sh), spaces-server, tests/clients/mock_app.py as the
// remote app, and the browsers (Chromium, Firefox ESR, WebKitGTK).
//
//   node tests/report/plan.js --out DIR --json FILE [--quick] [--browsers chromium,firefox,webkit]
//
// Writes FILE (JSON: what render.py turns into Markdown) and screenshots
// DIR/test-results/<browser>-<test>.png. Needs DISPLAY for WebKitGTK (run.sh
// runs it under xvfb-run -a). The server is $SPACES_BUILD_DIR/spaces-server.
//
// Each test records its checks one by one (the seed's "Expected Results",
// keyed as in render.py's EXPECTED): a failed check does not stop the test,
// a failed step does (the checks after it are "not checked").
"use strict";

const { spawn, execFileSync } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const h = require("../lib/harness.js");
const seed = require("../browser/seed_plan.test.js");
const { firefoxDriver } = require("../browser/firefox.test.js");
const { webkitDriver } = require("./webkit.js");

const { MockApp, dom, until, cspRecorder } = seed;

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
}
const QUICK = process.argv.includes("--quick");
const OUT = path.resolve(arg("--out", path.join(h.SOURCE_DIR, "docs")));
const SHOTS = path.join(OUT, "test-results");
const JSON_OUT = path.resolve(arg("--json", path.join(OUT, "plan.json")));
const BROWSERS = arg("--browsers", "chromium,firefox,webkit").split(",").filter(Boolean);
const SERVER_BIN = path.join(h.BUILD_DIR, "spaces-server");
const ADMIN = "admin";
const ADMIN_PASSWORD = "testpass-report-admin";
const PASSWORD = "testpass-report-1";
const RUN = `${process.pid % 100000}`;
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
// Test 7: the real default in the full run; a short space timeout in quick mode.
const TIMEOUT_S = QUICK ? 6 : 120;
const PERF_RUNS = QUICK ? 2 : 5; // single requests timed in the browser
const QUEUE_ROUNDS = QUICK ? 1 : 3; // rounds of the queued cases
const APP_DELAY = 0.5; // the mock app's work per request in the response-time cases
const sleep = h.sleep;

const report = {
  mode: QUICK ? "quick" : "full",
  started: new Date().toISOString(),
  config: {},
  pretest: {},
  browsers: {},
  perf: {},
  resources: {},
  stability: {},
  t7_timeout_s: TIMEOUT_S,
  app_delay_s: APP_DELAY,
  notes: [],
};

// ---------------------------------------------------------------------------
// Processes: killed at exit, even on failure.

const apps = [];
let server = null;
let pgDir = null;
const tmpDirs = []; // removed at exit

function mkTemp(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}

function cleanup() {
  for (const a of apps) {
    try {
      if (!a.exit) a.child.kill("SIGKILL");
    } catch (_) {}
  }
  if (server && !server.exit) server.child.kill("SIGKILL");
  if (pgDir) {
    try {
      execFileSync(path.join(h.SOURCE_DIR, "ci", "pg.sh"), ["stop", pgDir], { stdio: "ignore", timeout: 30000 });
    } catch (_) {}
    pgDir = null;
  }
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}
process.on("exit", cleanup);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    cleanup();
    process.exit(128 + (os.constants.signals[sig] || 0));
  });
}

function startApp(space, opts) {
  const app = new MockApp(site.url, space, opts);
  app.startedAt = Date.now();
  apps.push(app);
  return app;
}

// ---------------------------------------------------------------------------
// The site over HTTP (set-up, the perf cases)

const site = { url: null, pgUrl: null, adminCookie: null, n: 0 };
const unique = (stem) => `${stem}_${RUN}_${++site.n}`;

async function postForm(url, body, cookie) {
  return fetch(url, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", ...(cookie ? { cookie } : {}) },
    body: new URLSearchParams(body).toString(),
  });
}

async function loginCookie(name, password) {
  const r = await postForm(`${site.url}/login`, { username: name, password });
  const c = (r.headers.getSetCookie() || []).find((x) => x.startsWith("spaces_session="));
  if (r.status !== 302 || !c) throw new Error(`login ${name}: HTTP ${r.status}`);
  return c.split(";")[0];
}

/** Six users logged in over HTTP (made once: password hashing is slow on purpose). */
let perfUsers = null;
async function httpUsers() {
  if (!perfUsers) {
    perfUsers = [];
    for (let i = 0; i < 6; i++) {
      const name = unique("perf");
      await postForm(`${site.url}/register`, { username: name, password: PASSWORD, confirm_password: PASSWORD });
      perfUsers.push(await loginCookie(name, PASSWORD));
    }
  }
  return perfUsers;
}

/** A websockets space made by the admin with the form fields of PROTOCOL.md: {id, name}. */
async function addSpace(fields = {}) {
  const name = unique("TestSpace");
  const data = { name, description: "Test-results space", cover: "default.png", cover_type: "image",
    card_type: "websockets", ws_enable_prompt: "on", ws_rate_limit_seconds: "0", ...fields };
  const r = await postForm(`${site.url}/admin/space/add`, data, site.adminCookie);
  const loc = r.headers.get("location") || "";
  if (r.status !== 302 || !loc.includes("/edit/")) {
    throw new Error(`space add answered ${r.status}: ${(await r.text()).slice(0, 300)}`);
  }
  return { id: loc.split("/edit/").pop().replace(/\/$/, ""), name };
}

async function submitHttp(spaceId, cookie, prompt) {
  const r = await fetch(`${site.url}/websockets/submit/${spaceId}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie },
    body: new URLSearchParams({ prompt }).toString(),
  });
  const j = await r.json();
  if (r.status !== 200 || !j.request_id) throw new Error(`submit: HTTP ${r.status} ${JSON.stringify(j)}`);
  return j.request_id;
}

async function statusHttp(id) {
  return (await fetch(`${site.url}/websockets/status?request_id=${id}`)).json();
}

/** Polls a request's status every 50 ms until it is final; returns {status, ms}. */
async function followHttp(id, t0, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await statusHttp(id);
    if (st.status === "completed" || st.status === "failed") return { status: st.status, ms: Date.now() - t0 };
    if (Date.now() > deadline) return { status: "lost", ms: Date.now() - t0 };
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------
// The server process: CPU and memory from /proc

const CLK_TCK = 100;

function procStat(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = Number((/VmRSS:\s+(\d+)/.exec(status) || [0, 0])[1]);
    return { cpuTicks: Number(f[11]) + Number(f[12]), rssKb: rss, t: Date.now() };
  } catch (_) {
    return null;
  }
}

/** Samples the server while fn() runs: {cpuPct, rssMaxMb, rssStartMb, seconds, result}. */
async function measure(fn) {
  const pid = server.child.pid;
  const a = procStat(pid);
  let rssMax = a.rssKb;
  const timer = setInterval(() => {
    const s = procStat(pid);
    if (s) rssMax = Math.max(rssMax, s.rssKb);
  }, 50);
  let result;
  try {
    result = await fn();
  } finally {
    clearInterval(timer);
  }
  const b = procStat(pid);
  rssMax = Math.max(rssMax, b.rssKb);
  const seconds = (b.t - a.t) / 1000;
  return { cpuPct: ((b.cpuTicks - a.cpuTicks) / CLK_TCK / seconds) * 100, rssMaxMb: rssMax / 1024,
    rssStartMb: a.rssKb / 1024, seconds, result };
}

// ---------------------------------------------------------------------------
// Set-up, with the pre-test checklist ticked from what was checked

function version(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", timeout: 30000, stdio: ["ignore", "pipe", "pipe"] })
      .trim().split("\n")[0];
  } catch (e) {
    return null;
  }
}

function pyVersions() {
  const code = "import importlib.metadata as m, json, sys\n" +
    "out = {'python': sys.version.split()[0]}\n" +
    "for p in ('python-socketio', 'python-engineio', 'requests', 'websocket-client', 'aiohttp', 'msgpack'):\n" +
    "    try: out[p] = m.version(p)\n" +
    "    except Exception: out[p] = None\n" +
    "import socketio, engineio, requests\n" +
    "print(json.dumps(out))\n";
  try {
    return JSON.parse(execFileSync("/usr/bin/python3", ["-c", code], { encoding: "utf8", timeout: 30000 }));
  } catch (e) {
    return { error: e.message.split("\n")[0] };
  }
}

function pkgVersion(name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(h.SOURCE_DIR, "tests", "node_modules", name, "package.json"))).version;
  } catch (_) {
    return null;
  }
}

function environment() {
  const osRelease = fs.existsSync("/etc/os-release") ? fs.readFileSync("/etc/os-release", "utf8") : "";
  const pretty = (/PRETTY_NAME="([^"]+)"/.exec(osRelease) || [0, "unknown"])[1];
  const bindir = version("pg_config", ["--bindir"]) || "/usr/lib/postgresql/15/bin";
  const cpu = os.cpus();
  return {
    date: new Date().toISOString().replace("T", " ").replace(/\..*/, " UTC"),
    server: version(SERVER_BIN, ["--version"]),
    server_build: path.relative(h.SOURCE_DIR, h.BUILD_DIR),
    postgresql: version(path.join(bindir, "postgres"), ["--version"]),
    python: pyVersions(),
    node: process.version,
    socketio_client: pkgVersion("socket.io-client"),
    playwright_core: pkgVersion("playwright-core"),
    puppeteer_core: pkgVersion("puppeteer-core"),
    os: `${pretty}, Linux ${os.release()} ${os.arch()}`,
    cpus: `${cpu.length} x ${cpu.length ? cpu[0].model : "?"}`,
    memory_gb: (os.totalmem() / 2 ** 30).toFixed(1),
    load_at_start: os.loadavg().map((x) => x.toFixed(2)).join(" "),
    git: version("git", ["-C", h.SOURCE_DIR, "log", "-1", "--format=%h %cI %s"]),
  };
}

async function setup() {
  const pre = report.pretest;
  report.env = environment();
  const py = report.env.python;
  pre.python_deps = { ok: !py.error && !!py.requests,
    detail: py.error || `/usr/bin/python3 ${py.python}: requests ${py.requests}, websocket-client ${py["websocket-client"]}, aiohttp ${py.aiohttp}, msgpack ${py.msgpack} (Debian packages, ci/deps.sh)` };
  pre.socketio_deps = { ok: !!(py["python-socketio"] && py["python-engineio"] && report.env.socketio_client),
    detail: `python-socketio ${py["python-socketio"]}, python-engineio ${py["python-engineio"]} (import socketio, engineio works); socket.io-client ${report.env.socketio_client} (npm)` };

  if (!fs.existsSync(SERVER_BIN)) throw new Error(`${SERVER_BIN} does not exist: build it first`);
  const help = version(SERVER_BIN, ["--help"]) === null ? "" :
    execFileSync(SERVER_BIN, ["--help"], { encoding: "utf8" });
  const extra = help.includes("--legacy-open-spaces") ? ["--legacy-open-spaces"] : [];
  // Every browser of the plan signs up its users from 127.0.0.1: the
  // per-address registration limit (10 an hour by default) would refuse
  // most of them, as it would a crowd behind one NAT.
  if (help.includes("--register-limit")) extra.push("--register-limit", "0");
  process.env.SPACES_SERVER = [SERVER_BIN, ...extra].join(" ");
  report.config.server_flags = extra;

  pgDir = mkTemp("spaces-report-pg-");
  const t0 = Date.now();
  site.pgUrl = execFileSync(path.join(h.SOURCE_DIR, "ci", "pg.sh"), ["start", pgDir], {
    encoding: "utf8", timeout: 120000,
  }).trim().split("\n").pop();
  const uploads = mkTemp("spaces-report-up-");
  server = await seed.startServer(site.pgUrl, uploads);
  site.url = server.url;
  report.config.website = site.url;
  report.config.setup_s = (Date.now() - t0) / 1000;
  // The migrations ran (the server answers only after them); the admin is made
  // with the server's own command line.
  execFileSync(SERVER_BIN, ["user", "add", ADMIN, "--admin", "--database-url", site.pgUrl],
    { input: `${ADMIN_PASSWORD}\n`, timeout: 60000 });
  const tables = execFileSync("psql", [site.pgUrl, "-Atc",
    "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"], { encoding: "utf8" }).trim();
  pre.database = { ok: Number(tables) > 0,
    detail: `throwaway PostgreSQL cluster (ci/pg.sh), ${tables} tables after the server's migrations` };
  const home = await fetch(`${site.url}/`);
  await home.arrayBuffer();
  pre.website = { ok: home.status === 200,
    detail: `GET ${site.url}/ answered ${home.status} (a free port instead of 5001)` };
  site.adminCookie = await loginCookie(ADMIN, ADMIN_PASSWORD);
  const adm = await fetch(`${site.url}/admin`, { headers: { cookie: site.adminCookie } });
  await adm.arrayBuffer();
  pre.admin = { ok: adm.status === 200,
    detail: `admin made with \`spaces-server user add admin --admin\`, logged in, GET /admin answered ${adm.status}` };
  // Heartbeat: what the server's Engine.IO handshake announces.
  const hs = await (await fetch(`${site.url}/socket.io/?EIO=4&transport=polling`)).text();
  const open = JSON.parse(hs.slice(hs.indexOf("{")));
  report.stability.ping_interval_ms = open.pingInterval;
  report.stability.ping_timeout_ms = open.pingTimeout;
}

// ---------------------------------------------------------------------------
// One browser's pages

class Browser {
  constructor(driver) {
    this.driver = driver;
    this.name = driver.name;
    this.browser = null;
    this.pages = [];
    this.contexts = [];
    this.rec = { name: driver.name, version: null, available: false, error: null, tests: {}, notes: [] };
  }

  async launch() {
    this.browser = await this.driver.launch();
    if (this.name === "chromium") this.rec.version = `Chromium ${this.browser.version()}`;
    else if (this.name === "firefox") this.rec.version = (await this.browser.version()).replace(/^firefox\//i, "Firefox ");
    else this.rec.version = `WebKitGTK ${this.browser.version}`;
    this.rec.available = true;
  }

  async newContext() {
    const c = await this.driver.newContext(this.browser);
    this.contexts.push(c);
    return c;
  }

  async newPage(context, label) {
    const page = await context.newPage();
    await this.driver.preparePage(page, cspRecorder);
    const problems = [];
    page.on("pageerror", (e) => problems.push(`[${label}] page error: ${e && e.message ? e.message : e}`));
    this.pages.push({ page, label, problems });
    return page;
  }

  async clickAndWait(page, selector) {
    await Promise.all([page.waitForNavigation({ timeout: 20000 }), page.click(selector)]);
  }

  async login(page, name, password) {
    await page.goto(`${site.url}/login`);
    await this.driver.fill(page, "input[name=username]", name);
    await this.driver.fill(page, "input[name=password]", password);
    await this.clickAndWait(page, "button[type=submit]");
    if (page.url() !== `${site.url}/`) throw new Error(`${name} was not logged in (at ${page.url()})`);
  }

  /** A new context whose page registered and logged in a new user with the site's forms. */
  async newUser() {
    const name = unique(`${this.name}_user`);
    const context = await this.newContext();
    const page = await this.newPage(context, name);
    await page.goto(`${site.url}/register`);
    await this.driver.fill(page, "input[name=username]", name);
    await this.driver.fill(page, "input[name=password]", PASSWORD);
    await this.driver.fill(page, "input[name=confirm_password]", PASSWORD);
    await this.clickAndWait(page, "button[type=submit]");
    if (page.url() !== `${site.url}/login`) throw new Error(`${name} was not registered (at ${page.url()})`);
    await this.login(page, name, PASSWORD);
    return { context, page, name };
  }

  /** Script errors and CSP violations on this browser's pages so far. */
  async pageProblems() {
    const all = [];
    for (const p of this.pages) {
      all.push(...p.problems);
      if (this.name === "webkit") continue; // no init script through WebDriver classic
      try {
        for (const v of await dom.csp(p.page)) all.push(`[${p.label}] CSP: ${v}`);
      } catch (_) {}
    }
    return all;
  }

  async openSpace(page, id) {
    await page.goto(`${site.url}/ai_project/${id}`);
    if ((await dom.count(page, `#space[data-space-id="${id}"]`)) !== 1) throw new Error(`no space page for ${id}`);
  }

  async waitBadge(page, text, timeoutMs = 10000) {
    await until(async () => (await dom.badge(page)) === text, timeoutMs, `the badge to say "${text}"`);
  }

  async submit(page, prompt) {
    if (prompt !== null) await this.driver.fill(page, "textarea[name=prompt]", prompt);
    const t0 = Date.now();
    await page.click("#submit-form button[type=submit]");
    return t0;
  }

  async waitCard(page, prompt, pred, timeoutMs, what) {
    return until(async () => {
      const cards = await dom.cards(page, prompt);
      if (cards.length > 1) throw new Error(`${cards.length} cards for "${prompt}"`);
      return cards.length === 1 && pred(cards[0]) ? cards[0] : null;
    }, timeoutMs, `the request card for "${prompt}" ${what}`);
  }

  cardFinal(page, prompt, timeoutMs = 30000) {
    return this.waitCard(page, prompt, (c) => c.status === "completed" || c.status === "failed", timeoutMs,
      "to complete or fail");
  }

  async shot(T, page, name, caption) {
    const file = `${this.name}-${name}.png`;
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, file), fullPage: false });
    T.shots.push({ file: `test-results/${file}`, caption });
  }

  async close() {
    for (const c of this.contexts) {
      try {
        await c.close();
      } catch (_) {}
    }
    if (this.browser) await this.driver.close(this.browser);
    this.browser = null;
  }
}

/** The text a page shows about one request: its card, as a reader sees it. */
function cardText(c) {
  if (!c) return "(no request card)";
  const parts = [`status: ${c.status}`];
  if (c.msg && c.msg.trim()) parts.push(`message: ${c.msg.trim()}`);
  if (c.text) parts.push(`result: ${c.text.trim()}`);
  if (c.meta && c.meta.trim()) parts.push(`meta: ${c.meta.trim().replace(/\s+/g, " ")}`);
  if (c.error) parts.push(`error: ${c.error.trim()}`);
  return parts.join("\n");
}

function newTest(b, n) {
  const T = { n, checks: {}, app: "", page: "", shots: [], times: {}, notes: [], error: null, pass: false,
    fields: {} };
  b.rec.tests[n] = T;
  T.check = (key, ok, detail) => {
    T.checks[key] = { ok: !!ok, detail: detail === undefined ? "" : String(detail) };
    return !!ok;
  };
  /** Runs a step; a throw becomes a failed check (and the step's result is null). */
  T.soft = async (key, fn, detail) => {
    try {
      const v = await fn();
      T.check(key, true, typeof detail === "function" ? detail(v) : detail);
      return v;
    } catch (e) {
      T.check(key, false, e.message.split("\n")[0].slice(0, 300));
      return null;
    }
  };
  return T;
}

async function runTest(b, n, fn) {
  const T = newTest(b, n);
  const t0 = Date.now();
  process.stderr.write(`report: ${b.name} test ${n}...\n`);
  try {
    await fn(T);
  } catch (e) {
    T.error = e.message.split("\n").slice(0, 3).join(" ").slice(0, 500);
  }
  try {
    const problems = await b.pageProblems();
    if (problems.length) T.notes.push(`Script errors or CSP violations on the pages: ${problems.join("; ")}`);
  } catch (_) {}
  T.seconds = (Date.now() - t0) / 1000;
  T.pass = !T.error && Object.values(T.checks).every((c) => c.ok) && Object.keys(T.checks).length > 0;
  process.stderr.write(`report: ${b.name} test ${n}: ${T.pass ? "PASS" : "FAIL"}${T.error ? ` (${T.error})` : ""}\n`);
  return T;
}

function appLines(app, from = 0, re = null) {
  return app.lines.slice(from).map((l) => l.text).filter((t) => !re || re.test(t)).join("\n").trim();
}

/** A small real WAV: 16-bit mono PCM, 8 kHz, a 440 Hz tone. */
function writeWav(file, seconds = 1) {
  const rate = 8000;
  const n = rate * seconds;
  const b = Buffer.alloc(44 + n * 2);
  b.write("RIFF", 0);
  b.writeUInt32LE(36 + n * 2, 4);
  b.write("WAVEfmt ", 8);
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20); // PCM
  b.writeUInt16LE(1, 22); // mono
  b.writeUInt32LE(rate, 24);
  b.writeUInt32LE(rate * 2, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write("data", 36);
  b.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(12000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + i * 2);
  fs.writeFileSync(file, b);
  return b;
}

// ---------------------------------------------------------------------------
// Tests 1-6 in one browser

async function tests1to6(b) {
  const s1 = {};

  await runTest(b, 1, async (T) => {
    Object.assign(s1, await addSpace());
    s1.user = await b.newUser();
    const page = s1.user.page;
    await b.openSpace(page, s1.id);
    T.fields.before = await dom.badge(page);
    s1.app = startApp(s1.name, { delay: APP_DELAY });
    await T.soft("conn", () => s1.app.waitLine(/Socket\.IO connection established/, 20000));
    const reg = await T.soft("registered", () => s1.app.registered(20000));
    T.check("connid", reg && UUID4.test(reg.connectionId), reg ? `Connection ID: ${reg.connectionId}` : "no registration");
    T.check("spaceid", reg && reg.spaceId === s1.id, reg ? `Space ID: ${reg.spaceId} (the space is ${s1.id})` : "");
    const t0 = Date.now();
    await T.soft("page_connected", () => b.waitBadge(page, "Connected", 10000),
      () => `the open page changed from "${T.fields.before}" to "Connected" without a reload, ${Date.now() - t0} ms after the registration`);
    T.times.connected_shown_ms = Date.now() - t0;
    T.app = appLines(s1.app);
    T.page = `Status badge: ${await dom.badge(page)}\nForm: ${(await dom.formDisabled(page)) ? "disabled" : "enabled"}`;
    await b.shot(T, page, "01-connected", "Test 1: the space page shows Connected once the mock app registered");
  });

  await runTest(b, 2, async (T) => {
    if (!s1.app) throw new Error("test 1 did not set up the space");
    const page = s1.user.page;
    // A slower app (2 s of work) so that the progress can be seen.
    await s1.app.stop();
    await b.waitBadge(page, "Not connected");
    s1.app = startApp(s1.name, { delay: 2 });
    await s1.app.registered(20000);
    await b.waitBadge(page, "Connected");
    await b.openSpace(page, s1.id);
    await b.waitBadge(page, "Connected");
    const prompt = "Generate a haiku";
    const from = s1.app.lines.length;
    const t0 = await b.submit(page, prompt);
    const got = await T.soft("req_line", () => s1.app.waitLine(/\[REQUEST\] New inference request received/, 10000, from));
    T.times.at_app_ms = got ? got.t - t0 : null;
    T.check("within_1s", got && got.t - t0 <= 1000, got ? `the app printed it ${got.t - t0} ms after the click` : "never");
    await T.soft("progress", async () => {
      for (const p of [25, 50, 75]) await s1.app.waitLine(new RegExp(`Progress: ${p}%`), 15000, from);
    }, "Progress: 25%, 50%, 75% printed in order");
    const st = await T.soft("result_30s", () => b.cardFinal(page, prompt, 30000));
    T.times.processing_s = (Date.now() - t0) / 1000;
    if (st) T.checks.result_30s.detail = `the result was on the page ${T.times.processing_s.toFixed(2)} s after the click`;
    await T.soft("result_sent", () => s1.app.waitLine(/\[RESULT\] Result sent/, 5000, from));
    T.check("text", st && st.status === "completed" && st.text === `[Mock] Generated response for: ${prompt}`,
      st ? `"${st.text}"` : "no result");
    T.check("proc_time", st && /Processing time: \d+(\.\d+)? s/.test(st.meta || ""), st ? (st.meta || "").trim() : "");
    T.app = appLines(s1.app, from);
    T.page = cardText(st);
    await b.shot(T, page, "02-result", "Test 2: the result of \"Generate a haiku\" with its processing time");
  });

  await runTest(b, 3, async (T) => {
    const sp = await addSpace();
    const delay = 4; // the seed_plan test's: long enough for the three to arrive before the first is answered
    const app = startApp(sp.name, { delay });
    await app.registered(20000);
    const tabs = [];
    for (let i = 0; i < 3; i++) tabs.push(await b.newUser()); // three users, three tabs
    for (const t of tabs) {
      await b.openSpace(t.page, sp.id);
      await b.waitBadge(t.page, "Connected");
    }
    const prompts = tabs.map((_, i) => `Request ${i + 1}`);
    for (let i = 0; i < 3; i++) await b.driver.fill(tabs[i].page, "textarea[name=prompt]", prompts[i]);
    // "Simultaneously": the three pages click at one instant (a driver round
    // trip per click once spread them over seconds in a loaded CI run, and
    // the app answered the first before the third arrived: "1, 2, 1").
    const t0 = await seed.clickAllAt(tabs.map((t) => t.page), "#submit-form button[type=submit]");
    const seen = await T.soft("all3", () => until(() => {
      const r = app.requests();
      return r.length >= 3 ? r : null;
    }, 15000, "three requests at the app"), (r) => `${r.length} requests at the app`);
    const finals = [];
    for (let i = 0; i < 3; i++) {
      try {
        finals.push(await b.cardFinal(tabs[i].page, prompts[i], 60000));
      } catch (e) {
        finals.push(null);
      }
    }
    T.times.total_s = (Date.now() - t0) / 1000;
    const own = finals.map((st, i) => !!st && st.status === "completed" && st.text === `[Mock] Generated response for: ${prompts[i]}`);
    T.fields.tabs = own;
    T.check("returned", own.every(Boolean), own.map((ok, i) => `tab ${i + 1}: ${ok ? "its own result" : "no result"}`).join(", "));
    // Sequential: the app's results come one after another, in arrival order.
    const order = app.lines.map((l) => (/Result sent for request (\w+)/.exec(l.text) || [])[1]).filter(Boolean);
    const arrivals = (seen || []).map((r) => (r.id || "").slice(0, 8));
    T.check("sequential", seen && order.length >= 3 && order.slice(0, 3).join() === arrivals.slice(0, 3).join(),
      `arrived ${arrivals.join(", ")}; answered ${order.join(", ")} (one worker)`);
    const statuses = [];
    for (const st of finals) if (st) statuses.push((await statusHttp(st.id)).status);
    T.check("none_lost", seen && seen.length === 3 && statuses.length === 3 && statuses.every((s) => s === "completed"),
      `3 submitted, ${seen ? seen.length : 0} at the app, ${statuses.filter((s) => s === "completed").length} completed in the database`);
    const queues = (seen || []).map((r) => r.queue);
    T.check("queue", queues.join() === "1,2,3",
      `Queue size: ${queues.join(", ")} (the app printed them ${(seen || []).map((r) => r.t - t0).join(", ")} ms after the clicks)`);
    T.app = appLines(app, 0, /REQUEST|Queue size|RESULT|PROCESSING/);
    T.page = finals.map((st, i) => `Tab ${i + 1}: ${cardText(st).replace(/\n/g, "; ")}`).join("\n");
    await b.shot(T, tabs[2].page, "03-tab3-result", "Test 3: tab 3 shows only its own request, completed");
    await app.stop();
  });

  await runTest(b, 4, async (T) => {
    const sp = await addSpace({ ws_enable_audio: "on", ws_enable_video: "on" });
    T.check("av_enabled", true, "space made with ws_enable_audio and ws_enable_video on");
    const wavDir = mkTemp(`spaces-report-${b.name}-`); // the browsers may run at once
    const wavPath = path.join(wavDir, "test_audio.wav");
    const wav = writeWav(wavPath);
    T.check("file_prepared", wav.subarray(0, 4).toString() === "RIFF",
      `test_audio.wav written by the report: 1 s, 440 Hz, 8 kHz 16-bit mono PCM, ${wav.length} bytes`);
    T.fields.file = `test_audio.wav (${wav.length} bytes, sha256 ${crypto.createHash("sha256").update(wav).digest("hex").slice(0, 16)}…)`;
    const app = startApp(sp.name, { delay: APP_DELAY });
    await app.registered(20000);
    const { page } = await b.newUser();
    await b.openSpace(page, sp.id);
    await b.waitBadge(page, "Connected");
    T.check("selector", (await dom.count(page, "input[type=file][name=audio_file]")) === 1,
      "input[type=file][name=audio_file] is on the form");
    await b.driver.upload(page, "input[name=audio_file]", wavPath);
    T.check("selected", (await dom.fileCount(page, "input[name=audio_file]")) === 1, "the input holds one file");
    const prompt = "Transcribe this audio";
    const t0 = await b.submit(page, prompt);
    T.fields.sent = true;
    const st = await T.soft("result", () => b.cardFinal(page, prompt, 60000));
    T.times.result_s = (Date.now() - t0) / 1000;
    if (st) T.checks.result.detail = `${st.status} ${T.times.result_s.toFixed(2)} s after the click`;
    if (st && st.status !== "completed") T.check("result", false, cardText(st));
    const rq = st ? app.requests().find((r) => r.id === st.id) : null;
    const upload = rq ? rq.inputs.upload || "" : "";
    const url = (/'audio_file': \{'url': '([^']+)'/.exec(upload) || [])[1];
    T.check("includes", !!url, url ? `payload.upload.audio_file.url = ${url}` : `payload at the app: ${JSON.stringify(rq && rq.inputs)}`);
    let same = false;
    let got = 0;
    if (url) {
      const body = Buffer.from(await (await fetch(url)).arrayBuffer());
      got = body.length;
      same = body.equals(wav);
    }
    T.fields.app_got_file = same;
    T.check("payload", rq && same, rq ? `the app's URL serves ${got} bytes, ${same ? "identical to" : "NOT the"} file that was selected` : "the app got no request");
    T.app = appLines(app, 0, /REQUEST|Full ID|Prompt|Input|Upload|PROCESSING|RESULT/);
    T.page = cardText(st);
    await b.shot(T, page, "04-file-result", "Test 4: the request with test_audio.wav, completed");
    fs.rmSync(wavPath, { force: true });
    await app.stop();
  });

  await runTest(b, 5, async (T) => {
    if (!s1.app) throw new Error("test 1 did not set up the space");
    const page = s1.user.page;
    await b.openSpace(page, s1.id);
    await b.waitBadge(page, "Connected");
    T.fields.before_form = (await dom.formDisabled(page)) ? "disabled" : "enabled";
    const from = s1.app.lines.length;
    const oldApp = s1.app;
    await s1.app.stop(); // Ctrl+C
    let t0 = Date.now();
    await T.soft("not_connected", () => b.waitBadge(page, "Not connected", 10000),
      () => `"Not connected" on the open page ${Date.now() - t0} ms after the app exited, without a reload`);
    T.times.disconnect_shown_ms = Date.now() - t0;
    await page.reload();
    const afterBadge = await dom.badge(page);
    const afterForm = await dom.formDisabled(page);
    T.check("form_disabled", afterForm === true, `after a refresh: status "${afterBadge}", form ${afterForm ? "disabled" : "enabled"}`);
    // A page that still shows the form open (stale page, race): the server refuses.
    await until(async () => (await dom.count(page, "#space .badge[data-live-ready]")) === 1, 10000, "live state");
    await dom.enableForm(page);
    await b.submit(page, "While the app is away");
    const err = await T.soft("submit_fails", async () => {
      const e = await until(() => dom.formError(page), 5000, "an error under the form");
      if (e !== "Remote app not connected") throw new Error(`the page said "${e}"`);
      return e;
    }, (e) => `the page said "${e}"`);
    T.fields.after_disconnect = { status: afterBadge, form: afterForm ? "Disabled" : "Enabled", request: err ? `Fails with message "${err}"` : "?" };
    await b.shot(T, page, "05-not-connected", "Test 5: the app stopped: Not connected, submit refused");

    const tStart = Date.now();
    s1.app = startApp(s1.name, { delay: APP_DELAY });
    await s1.app.registered(20000);
    t0 = Date.now();
    await T.soft("connected_again", () => b.waitBadge(page, "Connected", 10000),
      () => `"Connected" on the open page ${Date.now() - t0} ms after the registration (${((Date.now() - tStart) / 1000).toFixed(2)} s after the app was started)`);
    T.times.reconnect_s = (Date.now() - tStart) / 1000;
    T.times.connected_shown_ms = Date.now() - t0;
    await page.reload();
    const b2 = await dom.badge(page);
    const f2 = await dom.formDisabled(page);
    T.check("form_enabled", b2 === "Connected" && f2 === false, `after a refresh: status "${b2}", form ${f2 ? "disabled" : "enabled"}`);
    const prompt = "After the restart";
    await b.submit(page, prompt);
    const done = await T.soft("new_request", () => b.cardFinal(page, prompt));
    if (done && done.status !== "completed") T.check("new_request", false, cardText(done));
    T.fields.after_reconnect = { status: b2, form: f2 ? "Disabled" : "Enabled", request: done && done.status === "completed" ? "Succeeds" : "Fails" };
    T.app = `--- the app, stopped with SIGTERM (Ctrl+C) ---\n${appLines(oldApp, from)}\n` +
      `--- the app, started again ---\n${appLines(s1.app)}`;
    T.fields.app_stop = "mock_app stopped with SIGTERM (Ctrl+C) and started again";
    T.page = `After disconnect: status ${afterBadge}, form ${T.fields.after_disconnect.form}, submit: ${err || "?"}\n` +
      `After reconnect: status ${b2}, form ${T.fields.after_reconnect.form}\n${cardText(done)}`;
    await b.shot(T, page, "05-reconnected", "Test 5: the app restarted: Connected, the next request completed");
  });

  await runTest(b, 6, async (T) => {
    if (!s1.app) throw new Error("test 1 did not set up the space");
    const page = s1.user.page;
    await b.openSpace(page, s1.id);
    await b.waitBadge(page, "Connected");
    const cardsBefore = await dom.count(page, "li.req");
    await b.submit(page, "");
    const e1 = await T.soft("empty", async () => {
      const e = await until(() => dom.formError(page), 5000, "an error for the empty prompt");
      if (!/prompt/i.test(e)) throw new Error(`the page said "${e}"`);
      if ((await dom.count(page, "li.req")) !== cardsBefore) throw new Error("a request was made");
      return e;
    }, (e) => `the page said "${e}"; no request was made`);
    await b.shot(T, page, "06-empty-prompt", "Test 6: an empty prompt is refused with a message");

    const bad = `No_such_space_${RUN}`;
    const app = startApp(bad);
    const line = await T.soft("wrong_space", async () => {
      const l = await app.waitLine(/Registration failed: (.*)$/, 20000);
      const st = await Promise.race([app.exited, sleep(20000).then(() => null)]);
      if (!st || st.code !== 1) throw new Error(`mock_app did not exit 1: ${JSON.stringify(st)}`);
      return l.m[1];
    }, (m) => `mock_app printed "Registration failed: ${m}" and exited 1`);

    const sp = await addSpace();
    const { page: p2 } = await b.newUser();
    await b.openSpace(p2, sp.id);
    await until(async () => (await dom.count(p2, "#space .badge[data-live-ready]")) === 1, 10000, "live state");
    const b2 = await dom.badge(p2);
    await dom.enableForm(p2);
    await b.submit(p2, "Nobody is there");
    const e3 = await T.soft("pre_conn", async () => {
      const e = await until(() => dom.formError(p2), 5000, "an error for a submit with no app");
      if (e !== "Remote app not connected") throw new Error(`the page said "${e}"`);
      return e;
    }, (e) => `status "${b2}", form forced open, the page said "${e}"`);
    const msgs = [e1, line, e3].filter(Boolean);
    const friendly = msgs.length === 3 && msgs.every((m) => m.length < 200 && !/[<>{}]|Traceback|Exception|HTTP \d{3}|errno/i.test(m));
    T.check("friendly", friendly, msgs.length === 3 ? "short sentences, no markup, codes or stack traces" : "not every message was seen");
    T.fields.messages = { empty: e1, wrong: line, pre: e3 };
    T.app = appLines(app);
    T.page = `Empty prompt: ${e1}\nNo app connected: ${e3}`;
    await b.shot(T, p2, "06-no-app", "Test 6: a submit while no app is connected: Remote app not connected");
  });

  return s1;
}

// ---------------------------------------------------------------------------
// Test 7, started in every browser at once (the real timeout is 2 minutes)

async function test7(b) {
  return runTest(b, 7, async (T) => {
    const sp = await addSpace(QUICK ? { ws_timeout_seconds: String(TIMEOUT_S) } : {});
    let app = startApp(sp.name, { noAnswer: true });
    await app.registered(20000);
    const { page } = await b.newUser();
    await b.openSpace(page, sp.id);
    await b.waitBadge(page, "Connected");
    const said = /time out after (\d+) seconds/.exec((await dom.text(page, "#space")) || "");
    T.fields.page_timeout = said ? Number(said[1]) : null;
    const prompt = "Never answered";
    const t0 = await b.submit(page, prompt);
    await app.waitLine(/will not be answered/, 20000);
    // Sampled through the wait: the card must stay in progress until the timeout.
    const samples = [];
    for (const frac of [0.25, 0.5, 0.9]) {
      const at = t0 + frac * TIMEOUT_S * 1000;
      if (at > Date.now()) await sleep(at - Date.now());
      const c = (await dom.cards(page, prompt))[0];
      samples.push({ s: (Date.now() - t0) / 1000, status: c ? c.status : "none", msg: c ? (c.msg || "").trim() : "" });
      if (frac === 0.5) await b.shot(T, page, "07-waiting", `Test 7: ${Math.round(frac * TIMEOUT_S)} s after the submit, still waiting`);
    }
    T.fields.samples = samples;
    T.check("processing", samples.every((x) => x.status === "queued" || x.status === "processing"),
      samples.map((x) => `${x.s.toFixed(0)} s: ${x.status}${x.msg ? ` "${x.msg}"` : ""}`).join("; "));
    const st = await T.soft("timeout_error", async () => {
      const c = await b.cardFinal(page, prompt, TIMEOUT_S * 1000 + 60000);
      if (c.status !== "failed" || !/timed out/i.test(c.error || "")) throw new Error(cardText(c).replace(/\n/g, "; "));
      return c;
    }, (c) => `failed with "${(c.error || "").trim()}"`);
    T.times.timeout_s = (Date.now() - t0) / 1000;
    if (st) {
      T.checks.timeout_error.detail += ` after ${T.times.timeout_s.toFixed(1)} s (space timeout ${TIMEOUT_S} s)`;
      if (T.times.timeout_s < TIMEOUT_S - 1) T.check("timeout_error", false, `too early: ${T.times.timeout_s} s`);
    }
    await b.shot(T, page, "07-timed-out", "Test 7: the request failed with a timeout error");
    T.page = cardText(st);
    const formOpen = (await dom.formDisabled(page)) === false;
    await app.stop();
    T.app = appLines(app);
    app = startApp(sp.name, { delay: APP_DELAY });
    await app.registered(20000);
    await b.waitBadge(page, "Connected");
    const next = "After the timeout";
    await b.submit(page, next);
    const done = await T.soft("another", async () => {
      const c = await b.cardFinal(page, next);
      if (c.status !== "completed") throw new Error(cardText(c));
      return c;
    }, () => `the form stayed ${formOpen ? "open" : "CLOSED"}; "${next}" completed (with an answering app)`);
    if (done && !formOpen) T.check("another", false, "the form was closed after the timeout");
    await app.stop();
  });
}

// ---------------------------------------------------------------------------
// Performance metrics and resources (Chromium page and HTTP users)

function stats(xs) {
  if (!xs.length) return null;
  return { n: xs.length, min: Math.min(...xs), max: Math.max(...xs), avg: xs.reduce((a, b) => a + b, 0) / xs.length };
}

async function perfSingle(b, s1) {
  const page = s1.user.page;
  await b.openSpace(page, s1.id);
  await b.waitBadge(page, "Connected");
  const times = [];
  for (let i = 0; i < PERF_RUNS; i++) {
    const prompt = `Timing ${i + 1}`;
    const t0 = await b.submit(page, prompt);
    const st = await b.cardFinal(page, prompt);
    if (st.status === "completed") times.push((Date.now() - t0) / 1000);
  }
  report.perf.single = { ...stats(times), runs: PERF_RUNS, via: `${b.rec.version} page, click to result shown` };
}

/** k requests submitted at once by k users; the times of those with `ahead` requests before them. */
async function perfQueued(k, ahead, rounds) {
  const sp = await addSpace();
  const app = startApp(sp.name, { delay: APP_DELAY });
  await app.registered(20000);
  const cookies = (await httpUsers()).slice(0, k);
  const times = [];
  let lost = 0;
  let rss = 0;
  let cpu = [];
  for (let r = 0; r < rounds; r++) {
    const m = await measure(async () => {
      const t0 = Date.now();
      const ids = await Promise.all(cookies.map((c, i) => submitHttp(sp.id, c, `q${r}-${i}`)));
      return Promise.all(ids.map(async (id) => ({ id, ...(await followHttp(id, t0)) })));
    });
    rss = Math.max(rss, m.rssMaxMb);
    cpu.push(m.cpuPct);
    const seen = app.requests();
    for (const x of m.result) {
      const q = (seen.find((s) => s.id === x.id) || {}).queue;
      if (x.status !== "completed") lost++;
      else if (q !== undefined && q - 1 >= ahead[0] && q - 1 <= ahead[1]) times.push(x.ms / 1000);
    }
  }
  await app.stop();
  return { ...stats(times), rounds, k, ahead, lost, rssMaxMb: rss, cpuPct: cpu };
}

async function resourcesIdle() {
  const secs = QUICK ? 2 : 5;
  const m = await measure(() => sleep(secs * 1000));
  report.resources.cpu_idle_pct = m.cpuPct;
  report.resources.mem_base_mb = m.rssStartMb;
  report.resources.idle_window_s = m.seconds;
}

async function resourcesFive() {
  const sp = await addSpace();
  const app = startApp(sp.name, { delay: 2 });
  await app.registered(20000);
  const cookies = (await httpUsers()).slice(0, 5);
  const m = await measure(async () => {
    const t0 = Date.now();
    const ids = await Promise.all(cookies.map((c, i) => submitHttp(sp.id, c, `five-${i}`)));
    return Promise.all(ids.map((id) => followHttp(id, t0)));
  });
  report.resources.cpu_processing_pct = m.cpuPct;
  report.resources.mem_five_mb = m.rssMaxMb;
  report.resources.five_window_s = m.seconds;
  report.resources.five_completed = m.result.filter((x) => x.status === "completed").length;
  await app.stop();
}

// ---------------------------------------------------------------------------
// Connection stability: one app connected through the whole run

async function startStability() {
  const sp = await addSpace();
  const app = startApp(sp.name, { delay: 0.2 });
  await app.registered(20000);
  const st = { samples: 0, connected: 0, started: Date.now(), app, sp, stop: false };
  st.loop = (async () => {
    while (!st.stop) {
      try {
        const html = await (await fetch(`${site.url}/ai_project/${sp.id}`, { signal: AbortSignal.timeout(10000) })).text();
        st.samples++;
        if (/data-live-space[^>]*>\s*Connected\s*</.test(html)) st.connected++;
      } catch (_) {
        st.samples++;
      }
      await sleep(1000);
    }
  })();
  return st;
}

async function stopStability(st) {
  st.stop = true;
  await st.loop;
  const out = st.app.output();
  Object.assign(report.stability, {
    seconds: (Date.now() - st.started) / 1000,
    samples: st.samples,
    connected_samples: st.connected,
    pct: st.samples ? (100 * st.connected) / st.samples : 0,
    app_disconnects: (out.match(/Disconnected|disconnected/g) || []).length,
    app_alive: !st.app.exit,
  });
  await st.app.stop();
}

// ---------------------------------------------------------------------------

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const t0 = Date.now();
  await setup();
  report.config.quick = QUICK;
  report.config.space_prefix = `TestSpace_${RUN}_<n>`;
  const stab = await startStability();
  await resourcesIdle();

  const drivers = { chromium: seed.chromiumDriver, firefox: firefoxDriver, webkit: webkitDriver };
  const browsers = [];
  for (const name of BROWSERS) {
    const b = new Browser(drivers[name]());
    report.browsers[name] = b.rec;
    try {
      await b.launch();
      browsers.push(b);
    } catch (e) {
      b.rec.error = e.message.split("\n").slice(0, 2).join(" ");
      process.stderr.write(`report: ${name} cannot run: ${b.rec.error}\n`);
    }
  }
  // Tests 1-6: one browser after the other; in quick mode the browsers at
  // once (each has its own spaces, apps and users), to fit CI's time.
  const closeContexts = async (b) => {
    for (const c of b.contexts.splice(0)) await c.close().catch(() => {});
  };
  if (QUICK) {
    await Promise.all(browsers.map(async (b) => (b.s1 = await tests1to6(b))));
  } else {
    for (const b of browsers) {
      b.s1 = await tests1to6(b);
      if (b !== browsers[0]) await closeContexts(b);
    }
  }
  report.config.browsers_at_once = QUICK;
  const primary = browsers.find((b) => b.s1 && b.s1.app);
  if (primary) {
    try {
      await perfSingle(primary, primary.s1);
    } catch (e) {
      report.notes.push(`Single-request timing in ${primary.name} failed: ${e.message.split("\n")[0]}`);
    }
  }
  for (const b of browsers) await closeContexts(b);

  // Test 7 in every browser at once, the queued cases and the 5-request
  // window meanwhile (other spaces, other apps).
  const t7 = Promise.all(browsers.map((b) => test7(b)));
  try {
    await resourcesFive();
    report.perf.queue_1_2 = await perfQueued(3, [1, 2], QUEUE_ROUNDS);
    report.perf.queue_3_5 = await perfQueued(6, [3, 5], QUEUE_ROUNDS);
  } catch (e) {
    report.notes.push(`Queued timings failed: ${e.message.split("\n")[0]}`);
  }
  await t7;
  const tos = browsers.map((b) => b.rec.tests[7] && b.rec.tests[7].times.timeout_s).filter((x) => x);
  report.perf.timeout = { ...stats(tos), via: `test 7 in ${browsers.length} browser(s) at once` };
  for (const b of browsers) await b.close().catch(() => {});
  await stopStability(stab);

  const st = await server.stop().then(() => "exited 0", (e) => `FAILED: ${e.message.split("\n")[0]}`);
  report.server_exit = st;
  server = null;
  execFileSync(path.join(h.SOURCE_DIR, "ci", "pg.sh"), ["stop", pgDir], { stdio: "ignore", timeout: 60000 });
  pgDir = null;
  for (const a of apps) if (!a.exit) await a.stop();
  report.seconds = (Date.now() - t0) / 1000;
  fs.writeFileSync(JSON_OUT, JSON.stringify(report, null, 1));
  process.stderr.write(`report: plan done in ${report.seconds.toFixed(0)} s\n`);
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`report: plan failed: ${e.stack}\n`);
  try {
    report.fatal = e.message;
    fs.writeFileSync(JSON_OUT, JSON.stringify(report, null, 1));
  } catch (_) {}
  process.exit(1);
});
