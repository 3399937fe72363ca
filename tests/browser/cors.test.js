// CORS of the site's Socket.IO endpoint in a real browser (issue 16): a page
// of an origin listed in --allowed-origins connects to the site's /socket.io/
// over HTTP long-polling with socket.io-client (the bundle the site serves,
// withCredentials: true); a page of an unlisted origin cannot (the browser
// refuses the answers: no Access-Control-Allow-Origin for it).
//
// Both pages come from one small HTTP server here, as http://localhost:P/
// (listed) and http://127.0.0.1:P/ (another origin, not listed); the real
// spaces-server, a throwaway PostgreSQL (ci/pg.sh), headless Chromium
// (playwright-core).
//
//   node --test tests/browser/cors.test.js
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const os = require("node:os");
const path = require("node:path");
const h = require("../lib/harness.js");
const { chromiumDriver, startServer } = require("./seed_plan.test.js");

const TEST_OPTS = { timeout: 120000 };
const site = {};
const driver = chromiumDriver();

before(async () => {
  site.tmp = fs.mkdtempSync(path.join(os.tmpdir(), "spaces-cors-"));
  site.pgDir = fs.mkdtempSync(path.join(os.tmpdir(), "spaces-cors-pg-"));
  site.pgUrl = execFileSync(path.join(h.SOURCE_DIR, "ci", "pg.sh"), ["start", site.pgDir], {
    encoding: "utf8", timeout: 120000,
  }).trim().split("\n").pop();
  site.pages = http.createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end("<!doctype html><title>partner</title><p>partner page</p>");
  });
  await new Promise((resolve) => site.pages.listen(0, "127.0.0.1", resolve));
  const port = site.pages.address().port;
  site.listed = `http://localhost:${port}`;
  site.unlisted = `http://127.0.0.1:${port}`;
  // startServer passes our environment on: the option as its variable.
  process.env.SPACES_ALLOWED_ORIGINS = site.listed;
  const uploads = path.join(site.tmp, "uploads");
  fs.mkdirSync(uploads);
  site.server = await startServer(site.pgUrl, uploads);
  site.browser = await driver.launch();
});

after(async () => {
  try {
    if (site.browser) await driver.close(site.browser);
  } catch (_) {}
  if (site.server && !site.server.exit) {
    site.server.child.kill("SIGTERM");
    await site.server.exited;
  }
  if (site.pages) site.pages.close();
  if (site.pgDir) {
    try {
      execFileSync(path.join(h.SOURCE_DIR, "ci", "pg.sh"), ["stop", site.pgDir], {
        stdio: "ignore", timeout: 30000,
      });
    } catch (_) {}
  }
  for (const d of [site.tmp, site.pgDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

/** Opens pageOrigin in a fresh context and connects to the site from there. */
async function connectFrom(pageOrigin) {
  const context = await site.browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${pageOrigin}/`);
    await page.addScriptTag({ url: `${site.server.url}/socket.io/socket.io.js` });
    return await page.evaluate(
      (url) =>
        new Promise((resolve) => {
          // eslint-disable-next-line no-undef
          const socket = io(url, { transports: ["polling"], withCredentials: true, reconnection: false, timeout: 20000 });
          socket.on("connect", () => {
            // A round trip after the connect: POST and GET both pass.
            resolve({ connected: true, transport: socket.io.engine.transport.name });
            socket.close();
          });
          socket.on("connect_error", (e) => {
            resolve({ connected: false, error: String(e && e.message) });
            socket.close();
          });
        }),
      site.server.url,
    );
  } finally {
    await context.close();
  }
}

test("a page of an --allowed-origins origin connects over polling", TEST_OPTS, async () => {
  const r = await connectFrom(site.listed);
  assert.deepEqual(r, { connected: true, transport: "polling" });
});

test("a page of another origin cannot", TEST_OPTS, async () => {
  const r = await connectFrom(site.unlisted);
  assert.equal(r.connected, false, JSON.stringify(r));
});
