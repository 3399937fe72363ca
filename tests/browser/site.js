// A site for the browser tests of issue 14 (screens.test.js, live_state.test.js):
// a throwaway PostgreSQL cluster (ci/pg.sh), the real spaces-server on a port
// it keeps across restarts (same database, same data directory), an admin,
// users made through the site's own forms, and tests/clients/mock_app.py as
// the app. Everything started here is killed by close(), even on failure.
//
//   SPACES_BUILD_DIR   build directory holding spaces-server (default build/debug);
//                      screenshots go to $SPACES_BUILD_DIR/screenshots/
//   SPACES_SERVER      a command line to run instead of $SPACES_BUILD_DIR/spaces-server
//   SPACES_TEST_VERBOSE=1  copy the server's and the apps' output to stderr
"use strict";

const assert = require("node:assert/strict");
const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const h = require("../lib/harness.js");
const { MockApp, until, cspRecorder } = require("./seed_plan.test.js");

const SCREENSHOTS = path.join(h.BUILD_DIR, "screenshots");
const VERBOSE = process.env.SPACES_TEST_VERBOSE === "1";
const ADMIN = "admin";
const ADMIN_PASSWORD = "Admin_Pass_123";
const PASSWORD = "Browser_Pass_123";

function serverArgv() {
  const v = (process.env.SPACES_SERVER || "").trim();
  return v ? v.split(/\s+/) : [path.join(h.BUILD_DIR, "spaces-server")];
}

/** The axe-core script, injected into pages with evaluate() (the pages' CSP allows no inline script). */
function axeSource() {
  return fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
}

/** tests/browser/result_app.py, its output kept line by line. */
class ResultApp {
  constructor(url, space) {
    this.lines = [];
    this.child = spawn("/usr/bin/python3", [path.join(__dirname, "result_app.py"), "--host", url, "--space", space],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PYTHONUNBUFFERED: "1" } });
    this.exit = null;
    this.exited = new Promise((resolve) => this.child.on("exit", (code, signal) => resolve((this.exit = { code, signal }))));
    for (const st of [this.child.stdout, this.child.stderr]) {
      st.setEncoding("utf8");
      st.on("data", (d) => {
        for (const text of d.split("\n")) if (text) this.lines.push(text);
        if (VERBOSE) process.stderr.write(d);
      });
    }
  }

  registered() {
    return until(() => {
      if (this.lines.some((l) => /Registration successful/.test(l))) return true;
      if (this.exit) throw new Error(`result_app exited: ${this.lines.join("\n")}`);
      return false;
    }, 15000, "result_app to register");
  }

  async stop() {
    if (!this.exit) this.child.kill("SIGTERM");
    const st = await Promise.race([this.exited, h.sleep(5000).then(() => null)]);
    if (!st) this.child.kill("SIGKILL");
    return this.exited;
  }
}

class Site {
  constructor(tag) {
    this.tag = tag;
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `spaces-${tag}-`));
    this.pgDir = fs.mkdtempSync(path.join(os.tmpdir(), `spaces-${tag}-pg-`));
    this.pgUrl = null;
    this.port = 0;
    this.url = null;
    this.child = null;
    this.output = "";
    this.exited = null;
    this.apps = [];
    this.n = 0;
    this.adminCookie = null;
    this.run = `${process.pid % 100000}`;
  }

  unique(stem) {
    return `${stem}_${this.run}_${++this.n}`;
  }

  async start() {
    this.pgUrl = execFileSync(path.join(h.SOURCE_DIR, "ci", "pg.sh"), ["start", this.pgDir], {
      encoding: "utf8", timeout: 120000,
    }).trim().split("\n").pop();
    fs.mkdirSync(path.join(this.tmp, "uploads"));
    for (let attempt = 0; attempt < 3; attempt++) {
      this.port = await h.freePort();
      if (await this.startServer()) break;
      if (attempt === 2) throw new Error(`spaces-server did not start\n${this.output.slice(-4000)}`);
    }
    execFileSync(serverArgv()[0], [...serverArgv().slice(1), "user", "add", ADMIN, "--admin",
      "--database-url", this.pgUrl], { input: `${ADMIN_PASSWORD}\n`, timeout: 60000 });
    const r = await fetch(`${this.url}/login`, {
      method: "POST", redirect: "manual",
      body: new URLSearchParams({ username: ADMIN, password: ADMIN_PASSWORD }),
    });
    assert.equal(r.status, 302, `admin login answered ${r.status}`);
    this.adminCookie = (r.headers.get("set-cookie") || "").split(";")[0];
  }

  /** Starts spaces-server on this.port; resolves false when the port was taken. */
  async startServer() {
    const argv = serverArgv();
    const uploads = path.join(this.tmp, "uploads");
    const args = [...argv.slice(1), "--listen", `127.0.0.1:${this.port}`, "--database-url", this.pgUrl,
      "--upload-dir", uploads, "--data-dir", `${uploads}-data`, "--legacy-open-spaces",
      "--handshake-rate", "0"];
    this.output = "";
    const child = spawn(argv[0], args, { cwd: h.SOURCE_DIR, stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    let exit = null;
    this.exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve((exit = { code, signal }))));
    for (const s of [child.stdout, child.stderr]) {
      s.setEncoding("utf8");
      s.on("data", (d) => {
        if (this.output.length < 8 << 20) this.output += d;
        if (VERBOSE) process.stderr.write(d);
      });
    }
    this.url = `http://127.0.0.1:${this.port}`;
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline && !exit) {
      try {
        const r = await fetch(`${this.url}/socket.io/?EIO=4&transport=polling`);
        await r.arrayBuffer();
        if (r.status === 200) return true;
      } catch (_) {}
      await h.sleep(100);
    }
    if (!exit) {
      child.kill("SIGKILL");
      throw new Error(`spaces-server was not ready within 30 s\n${this.output.slice(-4000)}`);
    }
    if (/in use/i.test(this.output)) return false;
    throw new Error(`spaces-server exited at start: ${JSON.stringify(exit)}\n${this.output.slice(-4000)}`);
  }

  /** SIGTERM; throws unless it exits 0 with no sanitizer report. */
  async stopServer() {
    const child = this.child;
    child.kill("SIGTERM");
    const st = await Promise.race([this.exited, h.sleep(15000).then(() => null)]);
    if (!st) {
      child.kill("SIGKILL");
      throw new Error(`spaces-server did not exit within 15 s of SIGTERM\n${this.output.slice(-4000)}`);
    }
    const report = h.sanitizerReport(this.output);
    if (report) throw new Error(`sanitizer report from spaces-server:\n${report}`);
    assert.equal(st.code, 0, `spaces-server exited with ${JSON.stringify(st)}\n${this.output.slice(-4000)}`);
  }

  /** Restarts the server on the same port, same database and data directory. */
  async restartServer() {
    await this.stopServer();
    for (let i = 0; i < 50; i++) {
      try {
        if (await this.startServer()) return;
      } catch (e) {
        if (i === 49) throw e;
      }
      await h.sleep(200);
    }
    throw new Error(`spaces-server could not listen on ${this.port} again`);
  }

  /** Creates a websockets space as admin: {id, name}. */
  async addSpace(fields = {}) {
    const name = this.unique("Space");
    const data = { name, description: "Browser test space", cover: "default.png", cover_type: "image",
      card_type: "websockets", ws_enable_prompt: "on", ws_rate_limit_seconds: "0", ...fields };
    const r = await fetch(`${this.url}/admin/space/add`, {
      method: "POST", body: new URLSearchParams(data), redirect: "manual",
      headers: { cookie: this.adminCookie },
    });
    assert.equal(r.status, 302, `space add answered ${r.status}`);
    const loc = r.headers.get("location");
    return { id: loc.split("/edit/").pop().replace(/\/$/, ""), name };
  }

  startApp(space, opts) {
    const app = new MockApp(this.url, space, opts);
    this.apps.push(app);
    return app;
  }

  /** tests/browser/result_app.py: answers every request with a result of every kind. */
  startResultApp(space) {
    const app = new ResultApp(this.url, space);
    this.apps.push(app);
    return app;
  }

  async close() {
    await Promise.all(this.apps.map((a) => a.stop().catch(() => {})));
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGKILL");
      await this.exited;
    }
    try {
      execFileSync(path.join(h.SOURCE_DIR, "ci", "pg.sh"), ["stop", this.pgDir], { stdio: "ignore", timeout: 30000 });
    } catch (_) {}
    for (const d of [this.tmp, this.pgDir]) fs.rmSync(d, { recursive: true, force: true });
  }
}

/**
 * Pages of one browser: each page records CSP violations and script errors.
 * `driver` is chromiumDriver() or firefoxDriver() from the seed plan files.
 */
class Browser {
  constructor(driver, site) {
    this.driver = driver;
    this.site = site;
    this.browser = null;
    this.pages = [];
  }

  async launch() {
    this.browser = await this.driver.launch();
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
    await page.goto(`${this.site.url}/login`);
    await this.driver.fill(page, "input[name=username]", name);
    await this.driver.fill(page, "input[name=password]", password);
    await this.clickAndWait(page, "button[type=submit]");
    assert.equal(page.url(), `${this.site.url}/`, `${name} is logged in`);
  }

  /** A new context whose page registered and logged in a new user through the forms. */
  async newUser(contextOptions) {
    const name = this.site.unique("user");
    const context = await this.driver.newContext(this.browser, contextOptions);
    const page = await this.newPage(context, name);
    await page.goto(`${this.site.url}/register`);
    await this.driver.fill(page, "input[name=username]", name);
    await this.driver.fill(page, "input[name=password]", PASSWORD);
    await this.driver.fill(page, "input[name=confirm_password]", PASSWORD);
    await this.clickAndWait(page, "button[type=submit]");
    await this.login(page, name, PASSWORD);
    return { context, page, name };
  }

  async admin(contextOptions) {
    const context = await this.driver.newContext(this.browser, contextOptions);
    const page = await this.newPage(context, "admin");
    await this.login(page, ADMIN, ADMIN_PASSWORD);
    return { context, page, name: ADMIN };
  }

  /** No script error and no CSP violation on any page so far. */
  async assertNoPageProblems() {
    const all = [];
    for (const p of this.pages) {
      all.push(...p.problems);
      try {
        const v = await p.page.evaluate(() => window.__cspViolations || []);
        for (const x of v) all.push(`[${p.label}] CSP: ${x}`);
      } catch (_) {} // a closed page
    }
    assert.deepEqual(all, [], "script errors or CSP violations on the pages");
  }

  async shot(page, name) {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    const file = path.join(SCREENSHOTS, `${this.driver.name}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  }

  async close() {
    if (this.browser) await this.driver.close(this.browser).catch(() => {});
    this.browser = null;
  }
}

module.exports = { Site, Browser, axeSource, until, SCREENSHOTS, PASSWORD, ADMIN, ADMIN_PASSWORD };
