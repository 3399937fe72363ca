// The seed test plan (000_d53b05126cb993dc.txt, summarised at the end of
// PROTOCOL.md) done by a robot in a real browser (issue 6): the pages of the
// real spaces-server, tests/clients/mock_app.py as the remote app, and a
// throwaway PostgreSQL cluster (ci/pg.sh); one cluster, one server and one
// browser for the whole file.
//
//   node --test tests/browser/seed_plan.test.js    headless Chromium (playwright-core)
//   node --test tests/browser/firefox.test.js      Firefox ESR (puppeteer-core, WebDriver BiDi)
//
// This file runs the plan in Chromium when it is the main module; the Firefox
// file requires it and calls defineSeedPlan() with its own browser driver.
//
//   SPACES_BUILD_DIR   build directory holding spaces-server (default build/debug);
//                      screenshots go to $SPACES_BUILD_DIR/artifacts/browser/
//   SPACES_SERVER      a command line to run instead of $SPACES_BUILD_DIR/spaces-server
//   SPACES_CHROMIUM    the browser (default /usr/bin/chromium)
//   SPACES_TEST_VERBOSE=1  copy the server's and the apps' output to stderr
//
// The pages run under their own Content-Security-Policy (no bypassCSP): the
// test reads the DOM with evaluate() and polls from Node, and a CSP violation
// or an uncaught script error on any page fails the test.
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawn, execFileSync } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const h = require("../lib/harness.js");

const PYTHON = "/usr/bin/python3";
const MOCK_APP = path.join(h.SOURCE_DIR, "tests", "clients", "mock_app.py");
const ARTIFACTS = path.join(h.BUILD_DIR, "artifacts", "browser");
const VERBOSE = process.env.SPACES_TEST_VERBOSE === "1";
const PASSWORD = "Browser_Pass_123";
const ADMIN = "admin";
const ADMIN_PASSWORD = "Admin_Pass_123";
const RUN = `${process.pid % 100000}`;
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// ---------------------------------------------------------------------------
// Processes: everything started here is killed at the end, even on failure.

const children = new Set();
const tmpDirs = [];
let pgDir = null;
let pgRunning = false;

function killEverythingNow() {
  for (const c of children) {
    try {
      if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    } catch (_) {}
  }
  children.clear();
  if (pgDir && pgRunning) {
    pgRunning = false;
    try {
      execFileSync(path.join(h.SOURCE_DIR, "ci", "pg.sh"), ["stop", pgDir], { stdio: "ignore", timeout: 30000 });
    } catch (_) {}
  }
}

let exitHooksInstalled = false;
function installExitHooks() {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on("exit", killEverythingNow);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(sig, () => {
      killEverythingNow();
      process.exit(128 + (os.constants.signals[sig] || 0));
    });
  }
}

function track(child) {
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

function mkTemp(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
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

function sha256(buf) {
  return crypto.createHash("sha256").update(buf).digest("hex");
}

// ---------------------------------------------------------------------------
// The server

class Server {
  constructor(port, child) {
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
    this.assertAlive();
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
    // The seed plan's apps register by name alone (mock_app.py --spaces NAME), as
    // the old site allowed: its spaces are open, as under `make run`.
    const args = [...argv.slice(1), "--listen", `127.0.0.1:${port}`, "--database-url", databaseUrl,
      "--upload-dir", uploadDir, "--data-dir", `${uploadDir}-data`, "--legacy-open-spaces"];
    const child = track(spawn(argv[0], args, { cwd: h.SOURCE_DIR, stdio: ["ignore", "pipe", "pipe"] }));
    const server = new Server(port, child);
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline && !server.exit) {
      try {
        // Ready once an Engine.IO handshake works (migrations are applied first).
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
// The app side: tests/clients/mock_app.py, its console output read line by line

class MockApp {
  constructor(url, space, { delay = 0.5, noAnswer = false } = {}) {
    const args = [MOCK_APP, "--host", url, "--space", space, "--delay", String(delay)];
    if (noAnswer) args.push("--no-answer");
    this.space = space;
    this.lines = []; // {t, text}: t is when the line reached us
    this.child = track(spawn(PYTHON, args, {
      stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PYTHONUNBUFFERED: "1" },
    }));
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
    for (const s of [this.child.stdout, this.child.stderr]) {
      s.setEncoding("utf8");
      s.on("data", onData);
    }
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
      if (this.exit) throw new Error(`mock_app exited ${JSON.stringify(this.exit)}`);
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

  /** The requests the app received, in order: {t, id, user, prompt, inputs, queue}. */
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
    return out.filter((r) => r.queue !== undefined);
  }

  /** SIGTERM (Ctrl+C in the plan), SIGKILL after 10 s; resolves with the exit status. */
  async stop() {
    if (!this.exit) {
      this.child.kill("SIGTERM");
      const st = await Promise.race([this.exited, h.sleep(10000).then(() => null)]);
      if (!st) this.child.kill("SIGKILL");
    }
    return this.exited;
  }
}

/** "Submit from all tabs simultaneously": each page is armed with a timer
 *  that clicks `selector` at one common instant (this machine's clock),
 *  so a loaded browser driver cannot spread the clicks over seconds the way
 *  one driver round trip per click does. Resolves with that instant. */
async function clickAllAt(pages, selector, marginMs = 1500) {
  const at = Date.now() + marginMs;
  for (const page of pages) {
    await page.evaluate(({ sel, at }) => {
      setTimeout(() => document.querySelector(sel).click(), Math.max(0, at - Date.now()));
      return 1;
    }, { sel: selector, at });
  }
  const late = Date.now() - at;
  if (late > 0) throw new Error(`arming the ${pages.length} pages took ${late} ms past the instant`);
  await h.sleep(at - Date.now());
  return at;
}

// ---------------------------------------------------------------------------
// Pages. Everything is read with page.evaluate(fn, arg), which Playwright and
// Puppeteer share and which page CSP does not block.

/** Runs in every page before its scripts: records CSP violations. */
function cspRecorder() {
  window.__cspViolations = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
  });
}

const dom = {
  badge: (page) =>
    page.evaluate(() => {
      const b = document.querySelector("#space .badge[data-live-space]");
      return b ? b.textContent.trim() : null;
    }),
  formDisabled: (page) => page.evaluate(() => document.getElementById("submit-fields").disabled),
  buttonDisabled: (page) =>
    page.evaluate(() => document.querySelector("#submit-form button[type=submit]").matches(":disabled")),
  enableForm: (page) => page.evaluate(() => { document.getElementById("submit-fields").disabled = false; }),
  formError: (page) =>
    page.evaluate(() => {
      const e = document.getElementById("form-error");
      return e.hidden ? "" : e.textContent.trim();
    }),
  text: (page, sel) =>
    page.evaluate((s) => {
      const e = document.querySelector(s);
      return e ? e.textContent : null;
    }, sel),
  count: (page, sel) => page.evaluate((s) => document.querySelectorAll(s).length, sel),
  value: (page, sel) => page.evaluate((s) => document.querySelector(s).value, sel),
  fileCount: (page, sel) => page.evaluate((s) => document.querySelector(s).files.length, sel),
  /** The request cards whose prompt is `prompt`. */
  cards: (page, prompt) =>
    page.evaluate((p) => {
      const t = (e, s) => {
        const x = e.querySelector(s);
        return x ? x.textContent : null;
      };
      return Array.from(document.querySelectorAll("li.req"))
        .filter((e) => t(e, ".req-prompt") === p)
        .map((e) => ({
          id: e.getAttribute("data-request-id"),
          status: e.getAttribute("data-status"),
          text: t(e, ".req-text"),
          meta: t(e, ".req-meta"),
          error: t(e, ".req-error"),
          msg: t(e, ".req-msg"),
          all: e.textContent,
        }));
    }, prompt),
  csp: (page) => page.evaluate(() => window.__cspViolations || ["(CSP recorder missing)"]),
};

/**
 * Defines the seed plan's tests for one browser. `driver`:
 *   name                         used in screenshot names ("chromium", "firefox")
 *   launch()                     -> browser
 *   newContext(browser)          -> context with its own cookies: newPage(), close()
 *   preparePage(page, initFn)    run initFn in every document before its scripts
 *   fill(page, selector, text)   replace an input's value ("" empties it)
 *   upload(page, selector, file) put a file (path on disk) into an <input type=file>
 *   close(browser)
 * Pages must offer goto(url), reload(), click(selector), url(), evaluate(fn, arg),
 * screenshot({path, fullPage}), waitForNavigation() and on("pageerror").
 */
function defineSeedPlan(driver) {
  installExitHooks();
  const site = { url: null, server: null, pgUrl: null, browser: null, adminCookie: null,
    n: 0, apps: [], pages: [], tmp: null };
  const s1 = {}; // the space of tests 1, 2, 5 and 6
  const facts = {}; // measurements, printed at the end

  const unique = (stem) => `${stem}_${RUN}_${++site.n}`;

  function startApp(space, opts) {
    const app = new MockApp(site.url, space, opts);
    site.apps.push(app);
    return app;
  }

  async function adminLogin() {
    const r = await fetch(`${site.url}/login`, {
      method: "POST", redirect: "manual",
      body: new URLSearchParams({ username: ADMIN, password: ADMIN_PASSWORD }),
    });
    assert.equal(r.status, 302, `admin login answered ${r.status}`);
    const cookie = (r.headers.get("set-cookie") || "").split(";")[0];
    assert.match(cookie, /^spaces_session=/);
    site.adminCookie = cookie;
  }

  /** Creates a websockets space as admin with the PROTOCOL.md form fields: {id, name}. */
  async function addSpace(fields = {}) {
    const name = unique("Space");
    const data = { name, description: "Browser test space", cover: "default.png", cover_type: "image",
      card_type: "websockets", ws_enable_prompt: "on", ws_rate_limit_seconds: "0", ...fields };
    const r = await fetch(`${site.url}/admin/space/add`, {
      method: "POST", body: new URLSearchParams(data), redirect: "manual",
      headers: { cookie: site.adminCookie },
    });
    assert.equal(r.status, 302, `space add answered ${r.status}: ${(await r.text()).slice(0, 300)}`);
    const loc = r.headers.get("location");
    assert.match(loc, /\/admin\/space\/edit\//);
    return { id: loc.split("/edit/").pop().replace(/\/$/, ""), name };
  }

  async function newPage(context, label) {
    const page = await context.newPage();
    await driver.preparePage(page, cspRecorder);
    const problems = [];
    page.on("pageerror", (e) => problems.push(`[${label}] page error: ${e && e.message ? e.message : e}`));
    site.pages.push({ page, label, problems });
    return page;
  }

  async function clickAndWait(page, selector) {
    await Promise.all([page.waitForNavigation({ timeout: 15000 }), page.click(selector)]);
  }

  async function login(page, name, password) {
    await page.goto(`${site.url}/login`);
    await driver.fill(page, "input[name=username]", name);
    await driver.fill(page, "input[name=password]", password);
    await clickAndWait(page, "button[type=submit]");
    assert.equal(page.url(), `${site.url}/`, `${name} is logged in`);
  }

  /** A fresh browser context whose page registered and logged in a new user
   *  through the site's own forms. */
  async function newUser() {
    const name = unique("user");
    const context = await driver.newContext(site.browser);
    const page = await newPage(context, name);
    await page.goto(`${site.url}/register`);
    await driver.fill(page, "input[name=username]", name);
    await driver.fill(page, "input[name=password]", PASSWORD);
    await driver.fill(page, "input[name=confirm_password]", PASSWORD);
    await clickAndWait(page, "button[type=submit]");
    assert.equal(page.url(), `${site.url}/login`, `${name} is registered`);
    await login(page, name, PASSWORD);
    return { context, page, name };
  }

  /** No script error and no CSP violation on any page so far. */
  async function assertNoPageProblems() {
    const all = [];
    for (const p of site.pages) {
      all.push(...p.problems);
      try {
        for (const v of await dom.csp(p.page)) all.push(`[${p.label}] CSP: ${v}`);
      } catch (_) {} // a closed page
    }
    assert.deepEqual(all, [], "script errors or CSP violations on the pages");
  }

  async function openSpace(page, spaceId) {
    await page.goto(`${site.url}/ai_project/${spaceId}`);
    assert.equal(await dom.count(page, `#space[data-space-id="${spaceId}"]`), 1, "the space page");
  }

  /** Waits, without reloading, until the page's status badge says `text`. */
  async function waitBadge(page, text, timeoutMs = 10000) {
    await until(async () => (await dom.badge(page)) === text, timeoutMs, `the badge to say "${text}"`);
  }

  /** Waits until the page's live connection has replaced the server-rendered badge state. */
  async function waitLive(page, timeoutMs = 10000) {
    await until(async () => (await dom.count(page, "#space .badge[data-live-ready]")) === 1,
      timeoutMs, "the live state of the space");
  }

  /** Types the prompt (unless null) and clicks Submit; resolves with the time of the click. */
  async function submit(page, prompt) {
    if (prompt !== null) await driver.fill(page, "textarea[name=prompt]", prompt);
    const t0 = Date.now();
    await page.click("#submit-form button[type=submit]");
    return t0;
  }

  /** Waits for this page's one request card for `prompt` to satisfy pred. */
  async function waitCard(page, prompt, pred, timeoutMs, what) {
    return until(async () => {
      const cards = await dom.cards(page, prompt);
      if (cards.length > 1) throw new Error(`${cards.length} cards for "${prompt}"`);
      return cards.length === 1 && pred(cards[0]) ? cards[0] : null;
    }, timeoutMs, `the request card for "${prompt}" ${what}`);
  }

  const cardShown = (page, prompt) => waitCard(page, prompt, () => true, 10000, "to appear");
  const cardFinal = (page, prompt, timeoutMs = 30000) =>
    waitCard(page, prompt, (c) => c.status === "completed" || c.status === "failed", timeoutMs,
      "to complete or fail");

  async function shot(page, name) {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, `${driver.name}-${name}.png`), fullPage: true });
  }

  // -------------------------------------------------------------------------
  // Set-up and tear-down

  before(async () => {
    const t0 = Date.now();
    site.tmp = mkTemp("spaces-browser-");
    // Its own directory: ci/pg.sh hands it to the postgres user when run as root.
    pgDir = mkTemp("spaces-browser-pg-");
    pgRunning = true;
    site.pgUrl = execFileSync(path.join(h.SOURCE_DIR, "ci", "pg.sh"), ["start", pgDir], {
      encoding: "utf8", timeout: 120000,
    }).trim().split("\n").pop();
    const uploads = path.join(site.tmp, "uploads");
    fs.mkdirSync(uploads);
    site.server = await startServer(site.pgUrl, uploads);
    site.url = site.server.url;
    execFileSync(serverArgv()[0], [...serverArgv().slice(1), "user", "add", ADMIN, "--admin",
      "--database-url", site.pgUrl], { input: `${ADMIN_PASSWORD}\n`, timeout: 60000 });
    await adminLogin();
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    facts.setupMs = Date.now() - t0;
    site.browser = await driver.launch();
    facts.browserStartMs = Date.now() - t0 - facts.setupMs;
  });

  after(async () => {
    try {
      if (site.browser) await driver.close(site.browser);
    } catch (_) {}
    site.browser = null;
    await Promise.all(site.apps.map((a) => a.stop().catch(() => {})));
    if (site.server && !site.server.exit) {
      site.server.child.kill("SIGKILL");
      await site.server.exited;
    }
    killEverythingNow();
    for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
  });

  // -------------------------------------------------------------------------
  // The plan

  test("1 connection: the app registers and the open page shows Connected live", async () => {
    Object.assign(s1, await addSpace());
    s1.user = await newUser();
    const page = s1.user.page;
    await openSpace(page, s1.id);
    assert.equal(await dom.badge(page), "Not connected");
    assert.equal(await dom.formDisabled(page), true, "the form is disabled while no app is connected");
    assert.equal(await dom.count(page, "textarea[name=prompt]"), 1, "the prompt input");
    assert.equal(await dom.count(page, "input[type=file]"), 0, "no file inputs on a prompt-only space");
    await shot(page, "01-not-connected");

    s1.app = startApp(s1.name);
    await s1.app.waitLine(/Socket\.IO connection established/);
    const reg = await s1.app.registered();
    assert.match(reg.connectionId, UUID4, "mock_app prints a uuid4 connection id");
    assert.equal(reg.spaceId, s1.id, "mock_app prints the space id");
    const t0 = Date.now();
    await waitBadge(page, "Connected", 5000); // live, no reload
    facts.connectedShownAfterMs = Date.now() - t0;
    assert.equal(await dom.formDisabled(page), false, "the form opens once the app is connected");
    assert.equal(await dom.text(page, "#form-note"), "", "no offline note");
    await shot(page, "01-connected");

    // A fresh load says Connected too; an anonymous visitor gets a log-in link.
    const ctx = await driver.newContext(site.browser);
    const anon = await newPage(ctx, "anonymous");
    await openSpace(anon, s1.id);
    assert.equal(await dom.badge(anon), "Connected");
    assert.equal(await dom.count(anon, "#submit-form"), 0, "anonymous visitors see no form");
    assert.equal(await dom.count(anon, `a[href="/login?next=/ai_project/${s1.id}"]`), 1);
    await assertNoPageProblems();
    await ctx.close();
  });

  test("2 single request: reaches the app within 1 s, result and processing time on the page", async () => {
    assert.ok(s1.app, "test 1 must have passed");
    const page = s1.user.page;
    // A slower app (2 s of work) so the live progress can be seen.
    await s1.app.stop();
    await waitBadge(page, "Not connected");
    s1.app = startApp(s1.name, { delay: 2 });
    await s1.app.registered();
    await waitBadge(page, "Connected");

    const prompt = "Generate a haiku";
    const from = s1.app.lines.length;
    const t0 = await submit(page, prompt);
    const got = await s1.app.waitLine(/\[REQUEST\] New inference request received/, 5000, from);
    facts.requestAtAppAfterMs = got.t - t0;
    assert.ok(got.t - t0 <= 1000, `the app got the request ${got.t - t0} ms after the click (limit 1000 ms)`);
    const rq = await until(() => s1.app.requests().find((r) => r.prompt === prompt), 5000, "the request at the app");
    assert.equal(rq.user, s1.user.name, "the app sees who submitted");

    // Live progress (inference_progress) before the result.
    const prog = await waitCard(page, prompt,
      (c) => c.status === "completed" || /\d+%/.test(c.msg || ""), 10000, "to show progress");
    assert.notEqual(prog.status, "completed", "no live progress (NN%) was shown before the result");
    assert.equal(prog.status, "processing");
    await shot(page, "02-progress");

    const st = await cardFinal(page, prompt);
    facts.resultOnPageAfterMs = Date.now() - t0;
    assert.equal(st.status, "completed", JSON.stringify(st));
    assert.equal(st.id, rq.id, "the card is the request the app got");
    assert.equal(st.text, `[Mock] Generated response for: ${prompt}`, "the generated text");
    assert.match(st.meta || "", /Processing time: \d+(\.\d+)? s/, "the processing time");
    await s1.app.waitLine(/Progress: 75%/, 5000, from);
    await s1.app.waitLine(/\[RESULT\] Result sent/, 5000, from);
    await shot(page, "02-result");
    const j = await (await fetch(`${site.url}/websockets/status?request_id=${st.id}`)).json();
    assert.equal(j.status, "completed");
    assert.equal(j.result.text_output, st.text, "the status route agrees with the page");
    await assertNoPageProblems();
  });

  test("3 three tabs submit at once: each gets its own result, the app sees all three", async () => {
    const sp = await addSpace();
    // Long enough that the three arrive while the first is still worked on,
    // even when a loaded browser spreads the three clicks over seconds.
    const app = startApp(sp.name, { delay: 4 });
    await app.registered();
    const tabs = [];
    for (let i = 0; i < 3; i++) tabs.push(await newUser()); // three users, three tabs
    for (const t of tabs) {
      await openSpace(t.page, sp.id);
      await waitBadge(t.page, "Connected");
    }
    const prompts = tabs.map((_, i) => `Request ${i + 1}`);
    for (let i = 0; i < 3; i++) await driver.fill(tabs[i].page, "textarea[name=prompt]", prompts[i]);
    const t0 = await clickAllAt(tabs.map((t) => t.page), "#submit-form button[type=submit]");

    const seen = await until(() => {
      const r = app.requests();
      return r.length >= 3 ? r : null;
    }, 10000, "three requests at the app");
    assert.equal(seen.length, 3, `the app saw ${seen.length} requests`);
    assert.deepEqual(seen.map((r) => r.queue), [1, 2, 3],
      `the app's queue grows 1, 2, 3 (arrivals after ${seen.map((r) => r.t - t0).join(", ")} ms)`);
    facts.threeAtAppAfterMs = seen[2].t - t0;
    await shot(tabs[0].page, "03-tab1-waiting");

    for (let i = 0; i < 3; i++) {
      const { page, name } = tabs[i];
      const st = await cardFinal(page, prompts[i]);
      assert.equal(st.status, "completed", `tab ${i + 1}: ${JSON.stringify(st)}`);
      assert.equal(st.text, `[Mock] Generated response for: ${prompts[i]}`, `tab ${i + 1} got its own result`);
      assert.equal(await dom.count(page, "li.req"), 1, `tab ${i + 1} shows only its own request`);
      const r = seen.find((x) => x.id === st.id);
      assert.ok(r, `tab ${i + 1}: request ${st.id} was seen by the app`);
      assert.equal(r.user, name);
      assert.equal(r.prompt, prompts[i]);
      await shot(page, `03-tab${i + 1}-result`);
    }
    facts.threeTabsDoneAfterMs = Date.now() - t0;
    await app.waitLine(/Queue size: 0/, 5000);
    await assertNoPageProblems();
    await app.stop();
    for (const t of tabs) await t.context.close();
  });

  test("4 a request with files: the app gets URLs it can download, the result returns", async () => {
    const sp = await addSpace({ ws_enable_audio: "on", ws_enable_video: "on", ws_enable_file_upload: "on" });
    const app = startApp(sp.name, { delay: 0.4 });
    await app.registered();
    const { page, context } = await newUser();
    await openSpace(page, sp.id);
    await waitBadge(page, "Connected");
    for (const sel of ["input[name=audio_url]", "input[type=file][name=audio_file]",
      "input[type=file][name=video_file]", "input[type=file][name=other_file]"]) {
      assert.equal(await dom.count(page, sel), 1, `${sel} is on the form`);
    }
    const files = {
      other_file: { path: path.join(site.tmp, "notes.bin"), bytes: crypto.randomBytes(20000) },
      audio_file: { path: path.join(site.tmp, "test_audio.wav"), bytes: crypto.randomBytes(3000) },
    };
    for (const [field, f] of Object.entries(files)) {
      fs.writeFileSync(f.path, f.bytes);
      await driver.upload(page, `input[name=${field}]`, f.path);
    }
    const prompt = "Transcribe this file";
    await submit(page, prompt);
    const st = await cardFinal(page, prompt);
    assert.equal(st.status, "completed", JSON.stringify(st));
    assert.equal(st.text, `[Mock] Generated response for: ${prompt}`);
    await shot(page, "04-file-result");

    const rq = app.requests().find((r) => r.id === st.id);
    assert.ok(rq, `the app got request ${st.id}:\n${app.output()}`);
    const upload = rq.inputs.upload || "";
    const urls = {};
    for (const m of upload.matchAll(/'(\w+)': \{'url': '([^']+)'/g)) urls[m[1]] = m[2];
    assert.deepEqual(Object.keys(urls).sort(), ["audio_file", "other_file"], `payload.upload at the app: ${upload}`);
    assert.equal(rq.inputs.audio, urls.audio_file, "payload.audio is the audio file's URL");
    for (const [field, f] of Object.entries(files)) {
      const r = await fetch(urls[field]);
      assert.equal(r.status, 200, `GET ${urls[field]}`);
      const body = Buffer.from(await r.arrayBuffer());
      assert.equal(body.length, f.bytes.length, `${field}: size`);
      assert.equal(sha256(body), sha256(f.bytes), `${field}: the app downloads the bytes that were uploaded`);
    }
    assert.equal(await dom.fileCount(page, "input[name=other_file]"), 0, "the file input is cleared");
    await assertNoPageProblems();
    await app.stop();
    await context.close();
  });

  test("5 stop the app: Not connected live, form disabled, submit refused; restart: Connected, requests work", async () => {
    assert.ok(s1.app, "test 1 must have passed");
    const page = s1.user.page;
    await openSpace(page, s1.id);
    await waitBadge(page, "Connected");
    assert.equal(await dom.formDisabled(page), false);

    const st = await s1.app.stop(); // Ctrl+C
    assert.equal(st.code, 0, "mock_app exits 0 after Ctrl+C / SIGTERM");
    let t0 = Date.now(); // the app's process is gone
    await waitBadge(page, "Not connected", 10000); // live, without a refresh
    facts.notConnectedShownAfterMs = Date.now() - t0;
    assert.equal(await dom.formDisabled(page), true, "the form is disabled");
    assert.equal(await dom.buttonDisabled(page), true, "Submit cannot be clicked");
    assert.match((await dom.text(page, "#form-note")) || "", /offline/, "the page says the app is offline");
    await shot(page, "05-not-connected");

    // A page that still shows the form open (a stale page, a race): the
    // server refuses and the page says why, without a request card.
    await dom.enableForm(page);
    const cardsBefore = await dom.count(page, "li.req");
    await submit(page, "While the app is away");
    const err = await until(() => dom.formError(page), 5000, "an error under the form");
    assert.equal(err, "Remote app not connected");
    assert.equal(await dom.count(page, "li.req"), cardsBefore, "no request card for a refused submit");
    await shot(page, "05-submit-refused");
    await page.reload();
    assert.equal(await dom.badge(page), "Not connected", "after a reload too");
    assert.equal(await dom.formDisabled(page), true);

    s1.app = startApp(s1.name, { delay: 0.5 });
    await s1.app.registered();
    t0 = Date.now();
    await waitBadge(page, "Connected", 10000); // live again
    facts.connectedAgainShownAfterMs = Date.now() - t0;
    assert.equal(await dom.formDisabled(page), false, "the form is enabled again");
    await shot(page, "05-reconnected");
    const prompt = "After the restart";
    await submit(page, prompt);
    const done = await cardFinal(page, prompt);
    assert.equal(done.status, "completed", JSON.stringify(done));
    assert.equal(done.text, `[Mock] Generated response for: ${prompt}`);
    await assertNoPageProblems();
  });

  test("6 error messages: empty prompt, wrong space name, submit with no app", async () => {
    assert.ok(s1.app, "test 1 must have passed");
    const page = s1.user.page;
    await openSpace(page, s1.id);
    await waitBadge(page, "Connected");
    const cardsBefore = await dom.count(page, "li.req");
    await submit(page, "");
    const err = await until(() => dom.formError(page), 5000, "an error for the empty prompt");
    assert.match(err, /prompt/i, `empty prompt error: "${err}"`);
    facts.emptyPromptError = err;
    assert.equal(await dom.count(page, "li.req"), cardsBefore, "no request for an empty prompt");
    await shot(page, "06-empty-prompt");

    // Wrong space name on register: mock_app prints why and exits 1.
    const bad = `No_such_space_${RUN}`;
    const app = startApp(bad);
    const line = await app.waitLine(/Registration failed: (.*)$/, 15000);
    assert.equal(line.m[1], `Space "${bad}" not found or is not a WebSocket space`);
    facts.wrongSpaceError = line.m[1];
    const st = await Promise.race([app.exited, h.sleep(15000).then(() => null)]);
    assert.ok(st, "mock_app exits after a refused registration");
    assert.equal(st.code, 1);

    // Submit on a space whose app never connected.
    const sp = await addSpace();
    const { page: p2, context } = await newUser();
    await openSpace(p2, sp.id);
    assert.equal(await dom.badge(p2), "Not connected");
    assert.equal(await dom.formDisabled(p2), true);
    // The live state first: it would close the form again after we open it.
    await waitLive(p2);
    assert.equal(await dom.badge(p2), "Not connected");
    await dom.enableForm(p2);
    await submit(p2, "Nobody is there");
    const err2 = await until(() => dom.formError(p2), 5000, "an error for a submit with no app");
    assert.equal(err2, "Remote app not connected");
    await shot(p2, "06-no-app");
    await assertNoPageProblems();
    await context.close();
  });

  test("7 timeout: an unanswered request fails with a timeout on the page, the next one works", async () => {
    const sp = await addSpace();
    // The admin shortens the space's timeout to 3 s with the edit form.
    const adminCtx = await driver.newContext(site.browser);
    const admin = await newPage(adminCtx, "admin");
    await login(admin, ADMIN, ADMIN_PASSWORD);
    await admin.goto(`${site.url}/admin/space/edit/${sp.id}`);
    await driver.fill(admin, "input[name=ws_timeout_seconds]", "3");
    await clickAndWait(admin, `form[action="/admin/space/edit/${sp.id}"] button[type=submit]`);
    await admin.goto(`${site.url}/admin/space/edit/${sp.id}`);
    assert.equal(await dom.value(admin, "input[name=ws_timeout_seconds]"), "3", "the timeout was saved");
    await adminCtx.close();

    let app = startApp(sp.name, { noAnswer: true });
    await app.registered();
    const { page, context } = await newUser();
    await openSpace(page, sp.id);
    await waitBadge(page, "Connected");
    assert.match(await dom.text(page, "#space"), /time out after 3 seconds/);
    const prompt = "Never answered";
    const t0 = await submit(page, prompt);
    await app.waitLine(/will not be answered/, 5000);
    const mid = await cardShown(page, prompt);
    assert.ok(["queued", "processing"].includes(mid.status), JSON.stringify(mid));
    await shot(page, "07-waiting");
    const st = await cardFinal(page, prompt, 20000);
    const waited = Date.now() - t0;
    facts.timedOutAfterMs = waited;
    facts.timeoutText = st.error;
    assert.equal(st.status, "failed", JSON.stringify(st));
    assert.match(st.error || "", /timed out/i, `the page shows a timeout error: ${JSON.stringify(st)}`);
    assert.ok(waited >= 2500, `failed after ${waited} ms, before the 3 s timeout`);
    assert.ok(waited <= 15000, `the 3 s timeout took ${waited} ms`);
    await shot(page, "07-timed-out");
    const j = await (await fetch(`${site.url}/websockets/status?request_id=${st.id}`)).json();
    assert.equal(j.status, "failed");
    assert.match(j.result.error, /timed out/i);

    // The user can submit another one; with an app that answers, it completes.
    assert.equal(await dom.formDisabled(page), false, "the form stays open after a timeout");
    await app.stop();
    app = startApp(sp.name, { delay: 0.3 });
    await app.registered();
    await waitBadge(page, "Connected");
    const next = "After the timeout";
    await submit(page, next);
    const done = await cardFinal(page, next);
    assert.equal(done.status, "completed", JSON.stringify(done));
    await shot(page, "07-next-request");
    await assertNoPageProblems();
    await app.stop();
    await context.close();
  });

  test("the server exits cleanly (status 0, no sanitizer report)", async () => {
    console.log(`# ${driver.name} measurements: ${JSON.stringify(facts)}`);
    if (site.browser) await driver.close(site.browser);
    site.browser = null;
    await Promise.all(site.apps.map((a) => a.stop()));
    await site.server.stop();
  });
}

// ---------------------------------------------------------------------------
// Chromium through playwright-core

function chromiumDriver() {
  const executablePath = process.env.SPACES_CHROMIUM || "/usr/bin/chromium";
  return {
    name: "chromium",
    async launch() {
      if (!fs.existsSync(executablePath)) {
        throw new Error(`${executablePath} is missing: run ci/deps.sh (Debian package chromium)`);
      }
      let chromium;
      try {
        ({ chromium } = require("playwright-core"));
      } catch (e) {
        throw new Error(`playwright-core is not installed (run ci/deps.sh): ${e.message}`);
      }
      // playwright-core starts the browser with a fresh temporary
      // --user-data-dir (removed on close); each newContext() is a separate
      // cookie jar, i.e. another user.
      return chromium.launch({
        executablePath,
        headless: true,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--no-first-run"],
      });
    },
    newContext: (browser) => browser.newContext({ viewport: { width: 1000, height: 900 } }),
    preparePage: (page, fn) => page.addInitScript(fn),
    fill: (page, sel, text) => page.fill(sel, text),
    upload: (page, sel, file) => page.setInputFiles(sel, file),
    close: (browser) => browser.close(),
  };
}

// The report (tests/report/plan.js) reuses the pieces.
module.exports = { defineSeedPlan, chromiumDriver, MockApp, startServer, dom, until, cspRecorder, clickAllAt };

if (require.main === module) defineSeedPlan(chromiumDriver());
