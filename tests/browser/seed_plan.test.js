// The seed test plan (000_d53b05126cb993dc.txt, summarised at the end of
// PROTOCOL.md) done by a robot in headless Chromium (issue 6): the space page
// /ai_project/<id> of the real spaces-server, with tests/clients/mock_app.py
// as the remote app and a throwaway PostgreSQL cluster (ci/pg.sh).
//
//   node --test tests/browser/seed_plan.test.js
//
//   SPACES_BUILD_DIR   build directory holding spaces-server (default build/debug);
//                      screenshots go to $SPACES_BUILD_DIR/artifacts/browser/
//   SPACES_SERVER      a command line to run instead of $SPACES_BUILD_DIR/spaces-server
//   SPACES_CHROMIUM    the browser (default /usr/bin/chromium)
//   SPACES_TEST_VERBOSE=1  copy the server's and the apps' output to stderr
//
// The pages run under their own Content-Security-Policy (no bypassCSP): every
// wait polls the DOM from the test, and a CSP violation or a script error on a
// page fails the test.
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawn, execFileSync } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const h = require("../lib/harness.js");

let chromium;
try {
  ({ chromium } = require("playwright-core"));
} catch (e) {
  throw new Error(`playwright-core is not installed (run ci/deps.sh): ${e.message}`);
}

const BROWSER = "chromium";
const CHROMIUM = process.env.SPACES_CHROMIUM || "/usr/bin/chromium";
const PYTHON = "/usr/bin/python3";
const MOCK_APP = path.join(h.SOURCE_DIR, "tests", "clients", "mock_app.py");
const ARTIFACTS = path.join(h.BUILD_DIR, "artifacts", "browser");
const VERBOSE = process.env.SPACES_TEST_VERBOSE === "1";
const PASSWORD = "Browser_Pass_123";
const ADMIN = "admin";
const ADMIN_PASSWORD = "Admin_Pass_123";
const RUN = `${process.pid % 100000}`;

// ---------------------------------------------------------------------------
// Processes: everything started here is killed at the end, even on failure.

const children = new Set();
let tmpRoot = null;
let pgDir = null;
let pgStopped = true;

function killEverythingNow() {
  for (const c of children) {
    try {
      if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    } catch (_) {}
  }
  children.clear();
  if (pgDir && !pgStopped) {
    try {
      execFileSync(path.join(h.SOURCE_DIR, "ci", "pg.sh"), ["stop", pgDir], { stdio: "ignore" });
    } catch (_) {}
    pgStopped = true;
  }
}
process.on("exit", killEverythingNow);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    killEverythingNow();
    process.exit(128 + (os.constants.signals[sig] || 0));
  });
}

function track(child) {
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

/** Polls fn() until it returns a truthy value; throws with `what` after timeoutMs. */
async function until(fn, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = `(threw: ${e.message})`;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    }
    await h.sleep(100);
  }
}

// ---------------------------------------------------------------------------
// The server

class Server {
  constructor(argv, port, child) {
    this.argv = argv;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.child = child;
    this.output = "";
    this.exit = null;
    this.exited = new Promise((resolve) =>
      child.on("exit", (code, signal) => resolve((this.exit = { code, signal }))),
    );
    for (const s of [child.stdout, child.stderr]) {
      s.setEncoding("utf8");
      s.on("data", (d) => {
        if (this.output.length < 8 << 20) this.output += d;
        if (VERBOSE) process.stderr.write(d);
      });
    }
  }

  tail() {
    return this.output.slice(-6000);
  }

  assertAlive() {
    if (this.exit) throw new Error(`spaces-server died: ${JSON.stringify(this.exit)}\n${this.tail()}`);
  }

  /** SIGTERM; throws unless it exits 0 within 10 s with no sanitizer report. */
  async stop() {
    if (this.exit) throw new Error(`spaces-server had already exited: ${JSON.stringify(this.exit)}\n${this.tail()}`);
    this.child.kill("SIGTERM");
    const st = await Promise.race([this.exited, h.sleep(10000).then(() => null)]);
    if (!st) {
      this.child.kill("SIGKILL");
      throw new Error(`spaces-server did not exit within 10 s of SIGTERM\n${this.tail()}`);
    }
    await h.sleep(50);
    const report = h.sanitizerReport(this.output);
    if (report) throw new Error(`sanitizer report from spaces-server:\n${report}`);
    if (st.code !== 0) throw new Error(`spaces-server exited with ${JSON.stringify(st)}\n${this.tail()}`);
  }
}

function serverArgv() {
  const v = (process.env.SPACES_SERVER || "").trim();
  return v ? v.split(/\s+/) : [path.join(h.BUILD_DIR, "spaces-server")];
}

async function startServer(databaseUrl, uploadDir) {
  const argv = serverArgv();
  if (argv[0].includes("/") && !fs.existsSync(argv[0])) {
    throw new Error(`${argv[0]} does not exist: build it first (make build)`);
  }
  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await h.freePort();
    const child = track(
      spawn(
        argv[0],
        [...argv.slice(1), "--listen", `127.0.0.1:${port}`, "--database-url", databaseUrl,
          "--upload-dir", uploadDir],
        { cwd: h.SOURCE_DIR, stdio: ["ignore", "pipe", "pipe"] },
      ),
    );
    const server = new Server(argv, port, child);
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline && !server.exit) {
      try {
        const r = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`);
        await r.arrayBuffer();
        if (r.status === 200) return server;
      } catch (_) {}
      await h.sleep(100);
    }
    if (!server.exit) {
      child.kill("SIGKILL");
      throw new Error(`spaces-server was not ready within 30 s\n${server.tail()}`);
    }
    lastError = new Error(`spaces-server exited at start: ${JSON.stringify(server.exit)}\n${server.tail()}`);
    if (!/in use/i.test(server.output)) break;
  }
  throw lastError;
}

// ---------------------------------------------------------------------------
// The app side: tests/clients/mock_app.py

class MockApp {
  constructor(space, { delay = 0.5, noAnswer = false } = {}) {
    const args = [MOCK_APP, "--host", site.url, "--space", space, "--delay", String(delay)];
    if (noAnswer) args.push("--no-answer");
    this.space = space;
    this.lines = []; // {t, text}
    this.child = track(spawn(PYTHON, args, { stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, PYTHONUNBUFFERED: "1" } }));
    this.exit = null;
    this.exited = new Promise((resolve) =>
      this.child.on("exit", (code, signal) => resolve((this.exit = { code, signal }))),
    );
    let partial = "";
    const onData = (d) => {
      const t = Date.now();
      partial += d;
      const parts = partial.split("\n");
      partial = parts.pop();
      for (const text of parts) {
        this.lines.push({ t, text });
        if (VERBOSE) process.stderr.write(`[app ${space}] ${text}\n`);
      }
    };
    this.child.stdout.setEncoding("utf8");
    this.child.stderr.setEncoding("utf8");
    this.child.stdout.on("data", onData);
    this.child.stderr.on("data", onData);
  }

  output() {
    return this.lines.map((l) => l.text).join("\n");
  }

  /** The first line at or after index `from` matching re: {t, text, m, index}. */
  async waitLine(re, timeoutMs = 15000, from = 0) {
    return until(() => {
      for (let i = from; i < this.lines.length; i++) {
        const m = re.exec(this.lines[i].text);
        if (m) return { ...this.lines[i], m, index: i };
      }
      if (this.exit) throw new Error(`mock_app exited ${JSON.stringify(this.exit)}:\n${this.output()}`);
      return null;
    }, timeoutMs, `mock_app output ${re}\n--- mock_app output ---\n${this.output()}\n---`);
  }

  /** Waits for the registration; returns {connectionId, spaceId}. */
  async registered(timeoutMs = 15000) {
    await this.waitLine(/Registration successful/, timeoutMs);
    const c = await this.waitLine(/Connection ID: (\S+)/);
    const s = await this.waitLine(/Space ID: (\S+)/);
    return { connectionId: c.m[1], spaceId: s.m[1] };
  }

  /** The requests the app received, in order, from its console output. */
  requests() {
    const out = [];
    let cur = null;
    for (const { t, text } of this.lines) {
      if (/\[REQUEST\] New inference request received/.test(text)) {
        cur = { t, inputs: {} };
        out.push(cur);
        continue;
      }
      if (!cur) continue;
      let m;
      if ((m = /^ {2}Full ID: (\S+)/.exec(text))) cur.id = m[1];
      else if ((m = /^ {2}User: (.*)$/.exec(text))) cur.user = m[1];
      else if ((m = /^ {2}Prompt: (.*)$/.exec(text))) cur.prompt = m[1];
      else if ((m = /^ {2}Input (\w+): (.*)$/.exec(text))) cur.inputs[m[1]] = m[2];
      else if ((m = /^ {2}Queue size: (\d+)/.exec(text))) {
        cur.queue = Number(m[1]);
        cur = null;
      }
    }
    return out;
  }

  /** SIGTERM (Ctrl+C in the plan); SIGKILL after 10 s. Resolves with the exit status. */
  async stop() {
    if (!this.exit) {
      this.child.kill("SIGTERM");
      const st = await Promise.race([this.exited, h.sleep(10000).then(() => null)]);
      if (!st) this.child.kill("SIGKILL");
    }
    return this.exited;
  }
}

// ---------------------------------------------------------------------------
// The site: users, spaces, pages

const site = {
  url: null,
  server: null,
  pgUrl: null,
  uploadDir: null,
  browser: null,
  adminCookie: null,
  n: 0,
  apps: [],
  pages: [],
  unique(stem) {
    this.n += 1;
    return `${stem}_${RUN}_${this.n}`;
  },
};

function startApp(space, opts) {
  const app = new MockApp(space, opts);
  site.apps.push(app);
  return app;
}

async function adminLogin() {
  const r = await fetch(`${site.url}/login`, {
    method: "POST",
    body: new URLSearchParams({ username: ADMIN, password: ADMIN_PASSWORD }),
    redirect: "manual",
  });
  assert.equal(r.status, 302, `admin login: ${r.status}`);
  const cookie = (r.headers.get("set-cookie") || "").split(";")[0];
  assert.match(cookie, /^spaces_session=/);
  site.adminCookie = cookie;
}

/** Creates a websockets space as admin with the PROTOCOL.md form fields; returns {id, name}. */
async function addSpace(fields = {}) {
  const name = fields.name || site.unique("Space");
  const data = {
    name, description: "Browser test space", cover: "default.png", cover_type: "image",
    card_type: "websockets", ws_enable_prompt: "on", ws_rate_limit_seconds: "0", ...fields,
  };
  const r = await fetch(`${site.url}/admin/space/add`, {
    method: "POST", body: new URLSearchParams(data), redirect: "manual",
    headers: { cookie: site.adminCookie },
  });
  assert.equal(r.status, 302, `space add answered ${r.status}: ${(await r.text()).slice(0, 300)}`);
  const loc = r.headers.get("location");
  assert.match(loc, /\/admin\/space\/edit\//);
  return { id: loc.split("/edit/").pop().replace(/\/$/, ""), name };
}

/** A fresh browser context; the page registered and logged in as a new user
 *  through the site's own forms. */
async function newUserPage(username) {
  const name = username || site.unique("user");
  const context = await site.browser.newContext({ viewport: { width: 1000, height: 900 } });
  const page = await context.newPage();
  watchPage(page, name);
  await page.goto(`${site.url}/register`);
  await page.fill("input[name=username]", name);
  await page.fill("input[name=password]", PASSWORD);
  await page.fill("input[name=confirm_password]", PASSWORD);
  await Promise.all([page.waitForURL(/\/login$/), page.click("button[type=submit]")]);
  await loginPage(page, name, PASSWORD);
  return { context, page, name };
}

async function loginPage(page, name, password) {
  await page.goto(`${site.url}/login`);
  await page.fill("input[name=username]", name);
  await page.fill("input[name=password]", password);
  await Promise.all([page.waitForURL(`${site.url}/`), page.click("button[type=submit]")]);
}

/** Records script errors and CSP violations of a page. */
function watchPage(page, label) {
  const problems = [];
  page.on("pageerror", (e) => problems.push(`[${label}] page error: ${e.message}`));
  page.on("console", (m) => {
    const text = m.text();
    if (/Content Security Policy|Refused to/i.test(text)) problems.push(`[${label}] CSP: ${text}`);
  });
  site.pages.push({ page, label, problems });
  return problems;
}

function assertNoPageProblems() {
  const all = site.pages.flatMap((p) => p.problems);
  assert.deepEqual(all, [], "script errors or CSP violations on the pages");
}

async function openSpace(page, spaceId) {
  await page.goto(`${site.url}/ai_project/${spaceId}`);
  assert.equal(await page.locator(`#space[data-space-id="${spaceId}"]`).count(), 1);
}

const badge = (page) => page.locator("#space .badge[data-live-space]");

async function badgeText(page) {
  return ((await badge(page).textContent()) || "").trim();
}

/** Waits (without reloading) until the page's status badge says `text`. */
async function waitBadge(page, text, timeoutMs = 10000) {
  await until(async () => (await badgeText(page)) === text, timeoutMs, `badge "${text}"`);
}

async function formDisabled(page) {
  return page.locator("#submit-fields").evaluate((f) => f.disabled);
}

async function formError(page) {
  const e = page.locator("#form-error");
  if (await e.evaluate((x) => x.hidden)) return "";
  return ((await e.textContent()) || "").trim();
}

/** Types the prompt and clicks Submit; resolves with the time of the click. */
async function submit(page, prompt) {
  if (prompt !== null) await page.fill("textarea[name=prompt]", prompt);
  const t0 = Date.now();
  await page.click("#submit-form button[type=submit]");
  return t0;
}

/** The request card of this page whose prompt is `prompt` (waits for it). */
async function cardFor(page, prompt, timeoutMs = 10000) {
  const card = page.locator("li.req").filter({ has: page.locator(".req-prompt", { hasText: prompt }) });
  await until(async () => (await card.count()) === 1, timeoutMs, `a request card for "${prompt}"`);
  return card;
}

async function cardState(card) {
  return card.evaluate((e) => ({
    id: e.getAttribute("data-request-id"),
    status: e.getAttribute("data-status"),
    text: (e.querySelector(".req-text") || {}).textContent || null,
    meta: (e.querySelector(".req-meta") || {}).textContent || null,
    error: (e.querySelector(".req-error") || {}).textContent || null,
    msg: (e.querySelector(".req-msg") || {}).textContent || null,
    all: e.textContent,
  }));
}

async function waitCardStatus(card, statuses, timeoutMs) {
  return until(async () => {
    const st = await cardState(card);
    return statuses.includes(st.status) ? st : null;
  }, timeoutMs, `request card status ${statuses.join("|")}`);
}

async function shot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${BROWSER}-${name}.png`), fullPage: true });
}

function sha256(buf) {
  return crypto.createHash("sha256").update(buf).digest("hex");
}

// ---------------------------------------------------------------------------
// Set-up and tear-down: one PostgreSQL cluster, one server, one browser.

before(async () => {
  tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "spaces-browser-"));
  pgDir = path.join(tmpRoot, "pg");
  pgStopped = false;
  site.pgUrl = execFileSync(path.join(h.SOURCE_DIR, "ci", "pg.sh"), ["start", pgDir], {
    encoding: "utf8", timeout: 120000,
  }).trim().split("\n").pop();
  site.uploadDir = path.join(tmpRoot, "uploads");
  fs.mkdirSync(site.uploadDir);
  site.server = await startServer(site.pgUrl, site.uploadDir);
  site.url = site.server.url;
  execFileSync(serverArgv()[0], [...serverArgv().slice(1), "user", "add", ADMIN, "--admin",
    "--database-url", site.pgUrl], { input: `${ADMIN_PASSWORD}\n`, timeout: 60000 });
  await adminLogin();
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run ci/deps.sh (package chromium)`);
  // playwright-core gives the browser a fresh temporary --user-data-dir and
  // removes it on close; newContext() gives each user its own cookie jar.
  site.browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
});

after(async () => {
  try {
    if (site.browser) await site.browser.close();
  } catch (_) {}
  await Promise.all(site.apps.map((a) => a.stop().catch(() => {})));
  if (site.server && !site.server.exit) {
    site.server.child.kill("SIGKILL");
    await site.server.exited;
  }
  killEverythingNow();
  if (tmpRoot) fs.rmSync(tmpRoot, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------
// The seed plan

const s1 = {}; // the space of tests 1, 2, 5 and 6: {id, name, app, user}

test("1 connection: the app registers and the open page shows Connected live", async () => {
  Object.assign(s1, await addSpace());
  s1.user = await newUserPage();
  const page = s1.user.page;
  await openSpace(page, s1.id);
  assert.equal(await badgeText(page), "Not connected");
  assert.equal(await formDisabled(page), true, "the form is disabled while no app is connected");
  // Only the inputs the space enables.
  assert.equal(await page.locator("textarea[name=prompt]").count(), 1);
  assert.equal(await page.locator("input[type=file]").count(), 0);
  await shot(page, "01-not-connected");

  s1.app = startApp(s1.name);
  const reg = await s1.app.registered();
  await s1.app.waitLine(/Socket\.IO connection established/);
  assert.match(reg.connectionId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(reg.spaceId, s1.id, "mock_app prints the space id");
  const t0 = Date.now();
  await waitBadge(page, "Connected", 5000); // live, no reload
  s1.connectLatency = Date.now() - t0;
  assert.equal(await formDisabled(page), false, "the form opens once the app is connected");
  assert.equal(await page.locator("#form-note").textContent(), "");
  await shot(page, "01-connected");
  // A fresh load says Connected too (server-rendered).
  const other = await site.browser.newContext();
  const p2 = await other.newPage();
  watchPage(p2, "anonymous");
  await openSpace(p2, s1.id);
  assert.equal(await badgeText(p2), "Connected");
  assert.equal(await p2.locator("#submit-form").count(), 0, "anonymous visitors see no form");
  assert.equal(await p2.locator(`a[href="/login?next=/ai_project/${s1.id}"]`).count(), 1);
  await other.close();
  assertNoPageProblems();
});

test("2 single request: reaches the app within 1 s, result and processing time on the page", async () => {
  assert.ok(s1.app, "test 1 must have run");
  const page = s1.user.page;
  // A slower app so the live progress can be seen.
  await s1.app.stop();
  await waitBadge(page, "Not connected");
  s1.app = startApp(s1.name, { delay: 2 });
  await s1.app.registered();
  await waitBadge(page, "Connected");

  const prompt = "Generate a haiku";
  const from = s1.app.lines.length;
  const t0 = await submit(page, prompt);
  const got = await s1.app.waitLine(/\[REQUEST\] New inference request received/, 5000, from);
  const latency = got.t - t0;
  assert.ok(latency <= 1000, `the app got the request ${latency} ms after the click (limit 1000 ms)`);
  const rq = await until(() => s1.app.requests().find((r) => r.prompt === prompt && r.queue), 5000, "request parsed");
  assert.equal(rq.user, s1.user.name);

  const card = await cardFor(page, prompt);
  // Live progress from the app (inference_progress), before the result.
  const prog = await until(async () => {
    const st = await cardState(card);
    return st.status === "completed" ? "completed-before-progress" : /\d+%/.test(st.msg || "") ? st : null;
  }, 10000, "live progress on the card");
  assert.notEqual(prog, "completed-before-progress", "no live progress (NN%) was shown before the result");
  assert.equal(prog.status, "processing");
  await shot(page, "02-progress");

  const st = await waitCardStatus(card, ["completed", "failed"], 30000);
  const total = Date.now() - t0;
  assert.equal(st.status, "completed", JSON.stringify(st));
  assert.equal(st.id, rq.id, "the card is the request the app got");
  assert.equal(st.text, `[Mock] Generated response for: ${prompt}`);
  assert.match(st.meta, /Processing time: \d+(\.\d+)? s/);
  await s1.app.waitLine(/Progress: 75%/, 5000, from);
  await s1.app.waitLine(/\[RESULT\] Result sent/, 5000, from);
  await shot(page, "02-result");
  s1.single = { latency, total };
  // The status route agrees with the page.
  const j = await (await fetch(`${site.url}/websockets/status?request_id=${st.id}`)).json();
  assert.equal(j.status, "completed");
  assert.equal(j.result.text_output, st.text);
  assertNoPageProblems();
});

test("3 three tabs submit at once: each gets its own result, the app sees all three", async () => {
  const sp = await addSpace();
  const app = startApp(sp.name, { delay: 1 });
  await app.registered();
  const tabs = [];
  for (let i = 1; i <= 3; i++) tabs.push(await newUserPage());
  await Promise.all(tabs.map((t) => openSpace(t.page, sp.id)));
  for (const t of tabs) await waitBadge(t.page, "Connected");
  await Promise.all(tabs.map((t, i) => t.page.fill("textarea[name=prompt]", `Request ${i + 1}`)));
  const t0 = Date.now();
  await Promise.all(tabs.map((t) => t.page.click("#submit-form button[type=submit]")));

  const seen = await until(() => {
    const r = app.requests().filter((x) => x.queue);
    return r.length >= 3 ? r : null;
  }, 10000, "three requests at the app");
  assert.equal(seen.length, 3, `the app saw ${seen.length} requests`);
  assert.deepEqual(seen.map((r) => r.queue), [1, 2, 3], "the app's queue grows 1, 2, 3");
  assert.ok(seen[2].t - t0 <= 1000, `the third request reached the app ${seen[2].t - t0} ms after the clicks`);
  await shot(tabs[0].page, "03-tab1-queued");

  for (let i = 0; i < 3; i++) {
    const { page, name } = tabs[i];
    const prompt = `Request ${i + 1}`;
    const card = await cardFor(page, prompt);
    const st = await waitCardStatus(card, ["completed", "failed"], 30000);
    assert.equal(st.status, "completed", `tab ${i + 1}: ${JSON.stringify(st)}`);
    assert.equal(st.text, `[Mock] Generated response for: ${prompt}`, `tab ${i + 1} got its own result`);
    assert.equal(await page.locator("li.req").count(), 1, `tab ${i + 1} shows only its own request`);
    const r = seen.find((x) => x.id === st.id);
    assert.ok(r, `tab ${i + 1}: request ${st.id} was seen by the app`);
    assert.equal(r.user, name);
    assert.equal(r.prompt, prompt);
    await shot(page, `03-tab${i + 1}-result`);
  }
  s1.threeTabs = Date.now() - t0;
  await app.waitLine(/Queue size: 0/, 5000);
  await app.stop();
  await Promise.all(tabs.map((t) => t.context.close()));
  assertNoPageProblems();
});

test("4 a request with files: the app gets URLs it can download, the result returns", async () => {
  const sp = await addSpace({ ws_enable_audio: "on", ws_enable_video: "on", ws_enable_file_upload: "on" });
  const app = startApp(sp.name, { delay: 0.4 });
  await app.registered();
  const { page, context } = await newUserPage();
  await openSpace(page, sp.id);
  await waitBadge(page, "Connected");
  for (const sel of ["input[name=audio_url]", "input[type=file][name=audio_file]",
    "input[type=file][name=video_file]", "input[type=file][name=other_file]"]) {
    assert.equal(await page.locator(sel).count(), 1, `${sel} is on the form`);
  }
  const other = crypto.randomBytes(20000);
  const audio = crypto.randomBytes(3000);
  await page.setInputFiles("input[name=other_file]", { name: "notes.bin", mimeType: "application/octet-stream", buffer: other });
  await page.setInputFiles("input[name=audio_file]", { name: "test_audio.wav", mimeType: "audio/wav", buffer: audio });
  const prompt = "Transcribe this file";
  await submit(page, prompt);
  const card = await cardFor(page, prompt);
  const st = await waitCardStatus(card, ["completed", "failed"], 30000);
  assert.equal(st.status, "completed", JSON.stringify(st));
  assert.equal(st.text, `[Mock] Generated response for: ${prompt}`);
  await shot(page, "04-file-result");

  const rq = app.requests().find((r) => r.id === st.id);
  assert.ok(rq, `the app got request ${st.id}:\n${app.output()}`);
  const upload = rq.inputs.upload || "";
  const urls = {};
  for (const m of upload.matchAll(/'(\w+)': \{'url': '([^']+)'/g)) urls[m[1]] = m[2];
  assert.deepEqual(Object.keys(urls).sort(), ["audio_file", "other_file"], `upload seen by the app: ${upload}`);
  assert.equal(rq.inputs.audio, urls.audio_file, "payload.audio is the audio file's URL");
  for (const [field, bytes] of [["other_file", other], ["audio_file", audio]]) {
    const r = await fetch(urls[field]);
    assert.equal(r.status, 200, `GET ${urls[field]}`);
    const body = Buffer.from(await r.arrayBuffer());
    assert.equal(body.length, bytes.length, `${field}: size`);
    assert.equal(sha256(body), sha256(bytes), `${field}: the bytes the app can download are the uploaded ones`);
  }
  // The file inputs are cleared for the next request.
  assert.equal(await page.locator("input[name=other_file]").evaluate((e) => e.files.length), 0);
  await app.stop();
  await context.close();
  assertNoPageProblems();
});

test("5 stop the app: Not connected live, form disabled, submit refused; restart: Connected, requests work", async () => {
  assert.ok(s1.app, "test 1 must have run");
  const page = s1.user.page;
  await openSpace(page, s1.id);
  await waitBadge(page, "Connected");
  assert.equal(await formDisabled(page), false);

  let t0 = Date.now();
  const st = await s1.app.stop();
  assert.equal(st.code, 0, "mock_app exits 0 after Ctrl+C / SIGTERM");
  await waitBadge(page, "Not connected", 10000); // live, without a refresh
  s1.disconnectLatency = Date.now() - t0;
  assert.equal(await formDisabled(page), true, "the form is disabled");
  assert.equal(await page.locator("#submit-form button[type=submit]").isDisabled(), true);
  assert.match((await page.locator("#form-note").textContent()) || "", /offline/);
  await shot(page, "05-not-connected");

  // A page that still had the form open (e.g. it lost the live update): the
  // server refuses and the page says why.
  await page.locator("#submit-fields").evaluate((f) => { f.disabled = false; });
  const before = await page.locator("li.req").count();
  await submit(page, "While the app is away");
  const err = await until(() => formError(page), 5000, "an error under the form");
  assert.match(err, /Remote app not connected/);
  assert.equal(await page.locator("li.req").count(), before, "no request card for a refused submit");
  await shot(page, "05-submit-refused");
  await page.reload(); // back to the page as served
  assert.equal(await badgeText(page), "Not connected");
  assert.equal(await formDisabled(page), true);

  s1.app = startApp(s1.name, { delay: 0.5 });
  await s1.app.registered();
  t0 = Date.now();
  await waitBadge(page, "Connected", 10000);
  s1.reconnectLatency = Date.now() - t0;
  assert.equal(await formDisabled(page), false, "the form is enabled again");
  await shot(page, "05-reconnected");
  const prompt = "After the restart";
  await submit(page, prompt);
  const done = await waitCardStatus(await cardFor(page, prompt), ["completed", "failed"], 30000);
  assert.equal(done.status, "completed", JSON.stringify(done));
  assert.equal(done.text, `[Mock] Generated response for: ${prompt}`);
  assertNoPageProblems();
});

test("6 error messages: empty prompt, wrong space name, submit with no app", async () => {
  assert.ok(s1.app, "test 1 must have run");
  // Empty prompt, app connected.
  const page = s1.user.page;
  await openSpace(page, s1.id);
  await waitBadge(page, "Connected");
  const before = await page.locator("li.req").count();
  await submit(page, "");
  const err = await until(() => formError(page), 5000, "an error for the empty prompt");
  assert.match(err, /prompt/i, `empty prompt error: "${err}"`);
  assert.equal(await page.locator("li.req").count(), before, "no request for an empty prompt");
  await shot(page, "06-empty-prompt");
  s1.emptyPromptError = err;

  // Wrong space name on register: mock_app prints why and exits 1.
  const bad = `No_such_space_${RUN}`;
  const app = startApp(bad);
  const line = await app.waitLine(/Registration failed: (.*)$/, 15000);
  assert.equal(line.m[1], `Space "${bad}" not found or is not a WebSocket space`);
  const st = await Promise.race([app.exited, h.sleep(15000).then(() => null)]);
  assert.ok(st, "mock_app exits after a refused registration");
  assert.equal(st.code, 1);
  s1.wrongSpaceError = line.m[1];

  // Submit before any app connected.
  const sp = await addSpace();
  const { page: p2, context } = await newUserPage();
  await openSpace(p2, sp.id);
  assert.equal(await badgeText(p2), "Not connected");
  assert.equal(await formDisabled(p2), true);
  await p2.locator("#submit-fields").evaluate((f) => { f.disabled = false; });
  await submit(p2, "Nobody is there");
  const err2 = await until(() => formError(p2), 5000, "an error for a submit with no app");
  assert.equal(err2, "Remote app not connected");
  await shot(p2, "06-no-app");
  await context.close();
  assertNoPageProblems();
});

test("7 timeout: an unanswered request fails with a timeout on the page, the next one works", async () => {
  const sp = await addSpace();
  // The admin shortens the space's timeout to 3 s with the edit form.
  const adminCtx = await site.browser.newContext();
  const admin = await adminCtx.newPage();
  watchPage(admin, "admin");
  await loginPage(admin, ADMIN, ADMIN_PASSWORD);
  await admin.goto(`${site.url}/admin/space/edit/${sp.id}`);
  await admin.fill("input[name=ws_timeout_seconds]", "3");
  const saved = admin.waitForResponse((r) => r.request().method() === "POST" &&
    r.url().includes(`/admin/space/edit/${sp.id}`));
  await admin.click("form[action^='/admin/space/edit/'] button[type=submit]");
  assert.equal((await saved).status(), 302, "the edit form is accepted");
  await admin.goto(`${site.url}/admin/space/edit/${sp.id}`);
  assert.equal(await admin.locator("input[name=ws_timeout_seconds]").inputValue(), "3", "the timeout was saved");
  await adminCtx.close();

  let app = startApp(sp.name, { noAnswer: true });
  await app.registered();
  const { page, context } = await newUserPage();
  await openSpace(page, sp.id);
  await waitBadge(page, "Connected");
  assert.match(await page.locator("#space").textContent(), /time out after 3 seconds/);
  const prompt = "Never answered";
  const t0 = await submit(page, prompt);
  await app.waitLine(/will not be answered/, 5000);
  const card = await cardFor(page, prompt);
  const mid = await cardState(card);
  assert.ok(["queued", "processing"].includes(mid.status), JSON.stringify(mid));
  await shot(page, "07-waiting");
  const st = await waitCardStatus(card, ["completed", "failed"], 20000);
  const waited = Date.now() - t0;
  assert.equal(st.status, "failed", JSON.stringify(st));
  assert.match(st.error || "", /timed out/i, `the page shows a timeout error: ${JSON.stringify(st)}`);
  assert.ok(waited >= 2500, `failed after ${waited} ms, before the 3 s timeout`);
  assert.ok(waited <= 15000, `the timeout took ${waited} ms (3 s configured)`);
  s1.timeoutAfter = waited;
  s1.timeoutText = st.error;
  await shot(page, "07-timed-out");
  const j = await (await fetch(`${site.url}/websockets/status?request_id=${st.id}`)).json();
  assert.equal(j.status, "failed");
  assert.match(j.result.error, /timed out/i);

  // The user can submit another one: with an app that answers, it completes.
  assert.equal(await formDisabled(page), false);
  await app.stop();
  app = startApp(sp.name, { delay: 0.3 });
  await app.registered();
  await waitBadge(page, "Connected");
  const next = "After the timeout";
  await submit(page, next);
  const done = await waitCardStatus(await cardFor(page, next), ["completed", "failed"], 30000);
  assert.equal(done.status, "completed", JSON.stringify(done));
  await shot(page, "07-next-request");
  await app.stop();
  await context.close();
  assertNoPageProblems();
});

test("the server exits cleanly (status 0, no sanitizer report)", async () => {
  const facts = { ...s1 };
  delete facts.user;
  delete facts.app;
  console.log(`# ${BROWSER} measurements: ${JSON.stringify(facts)}`);
  if (site.browser) await site.browser.close();
  site.browser = null;
  await Promise.all(site.apps.map((a) => a.stop()));
  site.server.assertAlive();
  await site.server.stop();
});
