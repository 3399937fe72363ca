// WebKitGTK (Safari's engine) for the browser tests, through Debian's
// webkit2gtk-driver: /usr/bin/WebKitWebDriver speaks W3C WebDriver over HTTP
// and starts MiniBrowser. No npm package: the few commands the tests need are
// plain fetch() calls.
//
// WebKitWebDriver holds one session at a time, so each browser context (one
// user's cookies) is its own WebKitWebDriver process with its own MiniBrowser.
// MiniBrowser needs an X display: run under `xvfb-run -a` (DISPLAY set).
//
// The driver has the shape defineSeedPlan() (tests/browser/seed_plan.test.js)
// expects. What WebDriver classic cannot do: run a script before a page's own
// scripts (preparePage is a no-op, so no CSP recorder) and report uncaught
// page errors (on("pageerror") never fires); screenshots are of the viewport.
"use strict";

const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const h = require("../lib/harness.js");

const DRIVER = process.env.SPACES_WEBKIT_DRIVER || "/usr/bin/WebKitWebDriver";

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** The WebKitGTK version of the installed library (dpkg), or null. */
function webkitVersion() {
  for (const pkg of ["libwebkit2gtk-4.1-0", "libwebkit2gtk-4.0-37", "libwebkitgtk-6.0-4"]) {
    try {
      const v = execFileSync("dpkg-query", ["-W", "-f=${Version}", pkg], { encoding: "utf8" }).trim();
      if (v) return v;
    } catch (_) {}
  }
  return null;
}

class WebDriverSession {
  constructor(base, id, child) {
    this.base = base;
    this.id = id;
    this.child = child;
    this.chain = Promise.resolve();
  }

  /** Sends one command; commands run in the order they were called. */
  cmd(method, path, body) {
    const run = async () => {
      const r = await fetch(`${this.base}/session/${this.id}${path}`, {
        method,
        headers: { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const j = await r.json();
      if (j && j.value && j.value.error) throw new Error(`WebDriver ${method} ${path}: ${j.value.error}: ${j.value.message}`);
      return j.value;
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => {});
    return p;
  }
}

async function startSession(capabilities) {
  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await h.freePort();
    const child = spawn(DRIVER, [`--port=${port}`], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d) => (stderr += d.slice(0, 4000)));
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        const r = await fetch(`${base}/status`);
        if (r.ok) break;
      } catch (_) {}
      await sleep(100);
    }
    try {
      const r = await fetch(`${base}/session`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ capabilities: { alwaysMatch: capabilities } }),
        signal: AbortSignal.timeout(90000),
      });
      const j = await r.json();
      if (j.value && j.value.sessionId) {
        return { session: new WebDriverSession(base, j.value.sessionId, child), caps: j.value.capabilities };
      }
      lastError = new Error(`WebKitWebDriver: no session: ${JSON.stringify(j).slice(0, 500)} ${stderr}`);
    } catch (e) {
      lastError = new Error(`WebKitWebDriver on port ${port}: ${e.message} ${stderr}`);
    }
    child.kill("SIGKILL");
  }
  throw lastError;
}

class WebKitPage {
  constructor(session) {
    this.s = session;
    this.currentUrl = "about:blank";
  }

  on() {} // no page errors through WebDriver classic

  async goto(url) {
    await this.s.cmd("POST", "/url", { url });
    this.currentUrl = await this.s.cmd("GET", "/url");
  }

  async reload() {
    await this.s.cmd("POST", "/refresh", {});
  }

  url() {
    return this.currentUrl;
  }

  async find(sel) {
    const v = await this.s.cmd("POST", "/element", { using: "css selector", value: sel });
    return Object.values(v)[0];
  }

  async click(sel) {
    const el = await this.find(sel);
    await this.s.cmd("POST", `/element/${el}/click`, {});
    this.currentUrl = await this.s.cmd("GET", "/url");
  }

  /** Resolves once the document that was current when it was called is gone
   *  and the new one has loaded. Call it before the click (Promise.all). */
  waitForNavigation({ timeout = 15000 } = {}) {
    const mark = `m${Math.random().toString(36).slice(2)}`;
    const set = this.s.cmd("POST", "/execute/sync", { script: `window.__navMark = "${mark}"; return 1;`, args: [] });
    return (async () => {
      await set;
      const deadline = Date.now() + timeout;
      for (;;) {
        await sleep(100);
        try {
          const st = await this.s.cmd("POST", "/execute/sync", {
            script: "return [window.__navMark || null, document.readyState];", args: [],
          });
          if (st[0] !== mark && st[1] === "complete") break;
        } catch (_) {} // between documents
        if (Date.now() > deadline) throw new Error(`no navigation within ${timeout} ms`);
      }
      this.currentUrl = await this.s.cmd("GET", "/url");
    })();
  }

  async evaluate(fn, arg) {
    return this.s.cmd("POST", "/execute/sync", {
      script: `return (${fn.toString()}).apply(null, arguments);`,
      args: arg === undefined ? [] : [arg],
    });
  }

  async screenshot({ path }) {
    const b64 = await this.s.cmd("GET", "/screenshot");
    fs.writeFileSync(path, Buffer.from(b64, "base64"));
  }

  async fill(sel, text) {
    const el = await this.find(sel);
    await this.s.cmd("POST", `/element/${el}/clear`, {});
    if (text) await this.s.cmd("POST", `/element/${el}/value`, { text });
  }

  async upload(sel, file) {
    const el = await this.find(sel);
    await this.s.cmd("POST", `/element/${el}/value`, { text: file });
  }
}

class WebKitContext {
  constructor(browser) {
    this.browser = browser;
    this.session = null;
  }

  async newPage() {
    if (this.session) throw new Error("one page per WebKit context");
    const { session, caps } = await startSession(this.browser.capabilities);
    this.browser.version = caps.browserVersion || this.browser.version;
    this.session = session;
    this.browser.contexts.add(this);
    await session.cmd("POST", "/window/rect", { width: 1000, height: 900 }).catch(() => {});
    return new WebKitPage(session);
  }

  async close() {
    const s = this.session;
    this.session = null;
    this.browser.contexts.delete(this);
    if (!s) return;
    try {
      await fetch(`${s.base}/session/${s.id}`, { method: "DELETE", signal: AbortSignal.timeout(15000) });
    } catch (_) {}
    s.child.kill("SIGTERM");
    await Promise.race([new Promise((r) => s.child.once("exit", r)), sleep(5000)]);
    if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGKILL");
  }
}

function webkitDriver() {
  return {
    name: "webkit",
    async launch() {
      if (!fs.existsSync(DRIVER)) throw new Error(`${DRIVER} is missing: run ci/deps.sh (Debian package webkit2gtk-driver)`);
      if (!process.env.DISPLAY) throw new Error("WebKitGTK needs an X display: run under xvfb-run -a (Debian package xvfb)");
      return {
        capabilities: { browserName: "MiniBrowser", "webkitgtk:browserOptions": { args: ["--automation"] } },
        contexts: new Set(),
        version: webkitVersion(),
      };
    },
    newContext: async (browser) => new WebKitContext(browser),
    preparePage: async () => {},
    fill: (page, sel, text) => page.fill(sel, text),
    upload: (page, sel, file) => page.upload(sel, file),
    async close(browser) {
      await Promise.all([...browser.contexts].map((c) => c.close()));
    },
  };
}

module.exports = { webkitDriver, webkitVersion };
