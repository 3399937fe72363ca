// permessage-deflate in a real browser (issue 16): headless Chromium
// (playwright-core) runs socket.io-client (its dist bundle) over WebSocket
// only against our conformance-socketio with --ws-deflate, and echoes a
// 100 KB string (compressed both ways: Chromium compresses what it sends
// once the extension is agreed); the handshake answer, as Chromium's
// DevTools protocol reports it, carries the extension. Without the option
// the answer has none and the echo works as before.
//
//   node --test tests/browser/ws_deflate.test.js
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const h = require("../lib/harness.js");
const { chromiumDriver } = require("./seed_plan.test.js");

const TEST_OPTS = { timeout: 120000 };
const OURS = path.join(h.BUILD_DIR, "conformance-socketio");
const BUNDLE = path.join(h.SOURCE_DIR, "tests", "node_modules", "socket.io-client", "dist",
  "socket.io.min.js");
const driver = chromiumDriver();
const ctx = {};

before(async () => {
  [ctx.on, ctx.off] = await Promise.all([
    h.startServer([OURS, "--ws-deflate"]),
    h.startServer([OURS]),
  ]);
  // The page and the client bundle, from an origin of their own.
  ctx.pages = http.createServer((req, res) => {
    if (req.url === "/socket.io.min.js") {
      res.writeHead(200, { "Content-Type": "text/javascript" });
      res.end(fs.readFileSync(BUNDLE));
      return;
    }
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end("<!doctype html><title>deflate</title><p>deflate</p>");
  });
  await new Promise((resolve) => ctx.pages.listen(0, "127.0.0.1", resolve));
  ctx.pageUrl = `http://127.0.0.1:${ctx.pages.address().port}`;
  ctx.browser = await driver.launch();
});

after(async () => {
  try {
    if (ctx.browser) await driver.close(ctx.browser);
  } catch (_) {}
  if (ctx.pages) ctx.pages.close();
  for (const s of [ctx.on, ctx.off]) if (s) await s.stop();
});

/** Echoes a 100 KB string over WebSocket; resolves { ok, length, extensions }. */
async function echo(server) {
  const context = await ctx.browser.newContext();
  try {
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    const answers = [];
    cdp.on("Network.webSocketHandshakeResponseReceived", (e) => answers.push(e.response));
    await cdp.send("Network.enable");
    await page.goto(`${ctx.pageUrl}/`);
    await page.addScriptTag({ url: `${ctx.pageUrl}/socket.io.min.js` });
    const result = await page.evaluate(
      (url) =>
        new Promise((resolve, reject) => {
          // eslint-disable-next-line no-undef
          const socket = io(url, { transports: ["websocket"], reconnection: false });
          const text = "spaces ".repeat(14286).slice(0, 100000);
          socket.on("connect_error", (e) => reject(new Error(`connect_error: ${e.message}`)));
          socket.on("connect", () => socket.emit("message", text));
          socket.on("message-back", (back) => {
            socket.close();
            resolve({ ok: back === text, length: back.length });
          });
        }),
      server.url,
    );
    await h.waitUntil("the handshake answer", () => answers.length > 0, h.ms(10000));
    const headers = answers[0].headers;
    const key = Object.keys(headers).find((k) => k.toLowerCase() === "sec-websocket-extensions");
    return { ...result, status: answers[0].status, extensions: key ? headers[key] : undefined };
  } finally {
    await context.close();
  }
}

test("Chromium: socket.io-client echoes 100 KB with permessage-deflate", TEST_OPTS, async () => {
  const r = await echo(ctx.on);
  assert.equal(r.status, 101);
  assert.match(r.extensions || "", /^permessage-deflate; server_no_context_takeover; client_no_context_takeover/);
  assert.equal(r.length, 100000);
  assert.ok(r.ok);
});

test("Chromium: no extension without --ws-deflate", TEST_OPTS, async () => {
  const r = await echo(ctx.off);
  assert.equal(r.status, 101);
  assert.equal(r.extensions, undefined);
  assert.ok(r.ok);
});
