// The real @socket.io/admin-ui dashboard (issue 16) against our server: the
// package's built UI (node_modules/@socket.io/admin-ui/ui/dist) served by a
// small static server here, opened in headless Chromium (playwright-core),
// logged in to conformance-socketio --admin-ui (sio_admin_ui_attach) as a
// user would, over its default transports (polling, then WebSocket, with
// credentials: the server answers CORS for the dashboard's origin). Three
// socket.io-client sockets are connected, one in room "room-a": the
// dashboard lists the sockets and the room, and its disconnect button
// disconnects one, whose client hears "io server disconnect".
//
// A second test runs two spaces-server processes in cluster mode (--node-id,
// one throwaway PostgreSQL from ci/pg.sh) and logs the dashboard in to the
// first: its Servers page lists both nodes, its Sockets page the socket on
// the second, and its disconnect button disconnects that socket there.
//
// The page's fonts and icons come from CDNs; the test has no network and
// refuses those requests, so the icon buttons are blank in the screenshots
// (${CMAKE_BINARY_DIR}/artifacts/browser/admin-ui-*.png).
//
//   node --test tests/browser/admin_ui.test.js
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const h = require("../lib/harness.js");
const { execFile, spawn } = require("node:child_process");
const os = require("node:os");
const { chromiumDriver } = require("./seed_plan.test.js");

const modules = path.join(h.SOURCE_DIR, "tests", "node_modules");
const { io } = require(path.join(modules, "socket.io-client"));
const bcrypt = require(path.join(modules, "bcryptjs"));

const TEST_OPTS = { timeout: 120000 };
const WAIT = { timeout: 60000 };
const DIST = path.join(modules, "@socket.io", "admin-ui", "ui", "dist");
const SHOTS = path.join(h.BUILD_DIR, "artifacts", "browser");
const PASSWORD = "dashboard pass";
const driver = chromiumDriver();
const t = { console: [] };

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css",
  ".png": "image/png", ".svg": "image/svg+xml", ".map": "application/json" };

function serveDist() {
  return http.createServer((req, res) => {
    let p = decodeURIComponent(new URL(req.url, "http://x").pathname);
    if (p === "/") p = "/index.html";
    const file = path.join(DIST, path.normalize(p));
    if (!file.startsWith(DIST + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { "Content-Type": TYPES[path.extname(file)] || "application/octet-stream" });
    fs.createReadStream(file).pipe(res);
  });
}

function once(socket, event) {
  return new Promise((resolve) => socket.once(event, (...args) => resolve(args)));
}

before(async () => {
  assert.ok(fs.existsSync(path.join(DIST, "index.html")), `${DIST} is missing (run ci/deps.sh)`);
  fs.mkdirSync(SHOTS, { recursive: true });
  const hash = bcrypt.hashSync(PASSWORD, 4);
  // Node's default heartbeat, not the protocol suite's 300/200 ms: the
  // clients share this process with the browser driver.
  t.server = await h.startServer([path.join(h.BUILD_DIR, "conformance-socketio"), "--admin-ui", `ops:${hash}`,
    "--ping-interval", "25000", "--ping-timeout", "20000"]);
  t.static = serveDist();
  await new Promise((resolve) => t.static.listen(0, "127.0.0.1", resolve));
  t.ui = `http://127.0.0.1:${t.static.address().port}`;
  // Three clients: two over WebSocket, one over polling; the first in room-a.
  t.clients = [
    io(t.server.url + "/", { transports: ["websocket"], forceNew: true, reconnection: false }),
    io(t.server.url + "/", { transports: ["websocket"], forceNew: true, reconnection: false }),
    io(t.server.url + "/", { transports: ["polling"], forceNew: true, reconnection: false }),
  ];
  await Promise.all(t.clients.map((c) => once(c, "auth")));
  await t.clients[0].timeout(10000).emitWithAck("join", "room-a");
  t.browser = await driver.launch();
});

after(async () => {
  for (const c of t.clients || []) c.close();
  try {
    if (t.browser) await driver.close(t.browser);
  } catch (_) {}
  if (t.static) t.static.close();
  if (t.server) await t.server.stop();
});

/** Polls fn until it resolves true (a page transition may show two pages for a moment). */
async function until(fn, what) {
  const deadline = Date.now() + WAIT.timeout;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `admin-ui-${name}.png`) });
}

test("the dashboard logs in, lists the sockets and the room, and disconnects a socket", TEST_OPTS, async () => {
  const context = await t.browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  // No network here: the page's web fonts and icons (CDNs) are refused at once.
  await page.route((url) => !url.href.startsWith("http://127.0.0.1:"), (route) => route.abort());
  page.on("console", (m) => t.console.push(m.text()));
  try {
    await dashboard(page);
  } catch (e) {
    await shot(page, "failure").catch(() => {});
    e.message += `\npage console:\n${t.console.join("\n")}`;
    throw e;
  } finally {
    await context.close();
  }
});

async function dashboard(page) {
  await page.goto(`${t.ui}/`);

  // A wrong password first: the dashboard says so and stays on the login form.
  await page.getByLabel("Server URL").fill(t.server.url);
  await page.getByLabel("Username").fill("ops");
  await page.getByLabel("Password").fill("not it");
  await page.getByRole("button", { name: "Connect" }).click();
  await page.getByText("Invalid credentials").waitFor(WAIT);
  await shot(page, "login-refused");

  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Connect" }).click();
  await page.getByText(/^connected$/i).first().waitFor(WAIT);
  // server_stats fills the namespaces table: "/" with its three sockets.
  await page.locator("tr", { hasText: "/admin" }).waitFor(WAIT);
  await shot(page, "dashboard");

  const [a, b, c] = t.clients;
  const ids = t.clients.map((s) => s.id);
  await page.getByText("Sockets", { exact: true }).first().click();
  for (const id of ids) await page.locator("tr", { hasText: id }).waitFor(WAIT);
  const pollingRow = page.locator("tr", { hasText: c.id });
  assert.match(await pollingRow.innerText(), /HTTP long-polling/);
  assert.match(await page.locator("tr", { hasText: a.id }).innerText(), /WebSocket/);
  await shot(page, "sockets");

  await page.getByText("Rooms", { exact: true }).first().click();
  const room = page.locator("tr", { hasText: "room-a" });
  await room.waitFor(WAIT);
  assert.match(await room.innerText(), /room-a\s+PUBLIC\s+1/);
  await shot(page, "rooms");

  // The disconnect button of b's row on the Sockets page.
  await page.getByText("Sockets", { exact: true }).first().click();
  const row = page.locator("tr", { hasText: b.id });
  await row.waitFor(WAIT);
  const bId = b.id;
  const gone = once(b, "disconnect");
  await row.locator("button").click();
  const [reason] = await gone;
  assert.equal(reason, "io server disconnect");
  // The click also opened b's details (the row's own click); back to the list,
  // where b's row goes once the dashboard hears socket_disconnected.
  await page.getByText("Sockets", { exact: true }).first().click();
  await page.locator("tr", { hasText: a.id }).waitFor(WAIT);
  await until(async () => (await page.locator("tr", { hasText: bId }).count()) === 0, "b's row gone");
  assert.equal(a.connected, true);
  assert.equal(c.connected, true);
  await shot(page, "after-disconnect");
}

// ---------------------------------------------------------------------------
// Two spaces-server nodes on one database, the dashboard on the first.

function run(file, args, opts = {}) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 120000, ...opts }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(" ")}: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

/** spaces-server --listen 127.0.0.1:P ... once /healthz answers: {url, child, output()}. */
async function spacesNode(args) {
  for (let attempt = 0; ; attempt++) {
    const port = await h.freePort();
    const child = spawn(path.join(h.BUILD_DIR, "spaces-server"), ["--listen", `127.0.0.1:${port}`, ...args],
      { cwd: h.SOURCE_DIR, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let exit = null;
    const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve((exit = { code, signal }))));
    for (const st of [child.stdout, child.stderr]) st.on("data", (d) => { out += d; });
    const node = { url: `http://127.0.0.1:${port}`, child, exited, output: () => out };
    const deadline = Date.now() + 30000;
    while (!exit && Date.now() < deadline) {
      try {
        const r = await fetch(`${node.url}/healthz`);
        await r.arrayBuffer();
        if (r.status < 500) return node;
      } catch (_) {}
      await h.sleep(100);
    }
    child.kill("SIGKILL");
    if (attempt < 2 && /in use/i.test(out)) continue;
    throw new Error(`spaces-server did not start: ${JSON.stringify(exit)}\n${out.slice(-4000)}`);
  }
}

/** The Sockets page's "Select namespace" menu (it shows one namespace at a time). */
async function selectNamespace(page, name) {
  const field = page.locator(".v-select", { hasText: "Select namespace" });
  await field.waitFor(WAIT);
  if ((await field.innerText()).includes(name)) return;
  await field.click();
  await page.getByRole("option", { name, exact: true }).click();
  await until(async () => (await field.innerText()).includes(name), `namespace ${name} selected`);
}

async function stopNode(node) {
  node.child.kill("SIGTERM");
  const st = await Promise.race([node.exited, h.sleep(15000).then(() => null)]);
  if (!st) node.child.kill("SIGKILL");
  const report = h.sanitizerReport(node.output());
  assert.ok(!report, `sanitizer report from spaces-server:\n${report}`);
  assert.equal(st && st.code, 0, `spaces-server exited with ${JSON.stringify(st)}\n${node.output().slice(-3000)}`);
}

test("two nodes: the dashboard on one lists both servers and the other's socket, and disconnects it there",
  TEST_OPTS, async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "spaces-admin-cluster-"));
    // Its own directory: ci/pg.sh hands it to the postgres user (tmp is 0700).
    const pgDir = fs.mkdtempSync(path.join(os.tmpdir(), "spaces-admin-cluster-pg-"));
    const nodes = [];
    let client = null;
    let context = null;
    let failure = null;
    try {
      const dbUrl = (await run(path.join(h.SOURCE_DIR, "ci", "pg.sh"), ["start", pgDir])).split("\n").pop();
      const hash = bcrypt.hashSync(PASSWORD, 4);
      const ids = [`admin-a-${process.pid}`, `admin-b-${process.pid}`];
      for (const id of ids) {
        nodes.push(await spacesNode(["--database-url", dbUrl, "--node-id", id, "--admin-ui", `ops:${hash}`,
          "--allowed-origins", t.ui, "--data-dir", path.join(tmp, `${id}-data`),
          "--upload-dir", path.join(tmp, `${id}-uploads`)]));
      }
      const [a, b] = nodes;
      client = io(b.url + "/spaces", { transports: ["websocket"], forceNew: true, reconnection: false });
      await once(client, "connect");

      context = await t.browser.newContext({ viewport: { width: 1280, height: 720 } });
      const page = await context.newPage();
      await page.route((url) => !url.href.startsWith("http://127.0.0.1:"), (route) => route.abort());
      page.on("console", (m) => t.console.push(m.text()));
      try {
        await page.goto(`${t.ui}/`);
        await page.getByLabel("Server URL").fill(a.url);
        await page.getByLabel("Username").fill("ops");
        await page.getByLabel("Password").fill(PASSWORD);
        await page.getByRole("button", { name: "Connect" }).click();
        await page.getByText(/^connected$/i).first().waitFor(WAIT);

        // Both nodes report to the dashboard on A, each by its node id.
        await page.getByText("Servers", { exact: true }).first().click();
        for (const id of ids) await page.locator("tr", { hasText: id }).waitFor(WAIT);
        await shot(page, "cluster-servers");

        // B's socket is listed (all_sockets gathered over the cluster, or
        // socket_connected from B); a fresh login shows it as well.
        await page.getByText("Sockets", { exact: true }).first().click();
        await selectNamespace(page, "/spaces");
        const row = page.locator("tr", { hasText: client.id });
        await row.waitFor(WAIT);
        assert.match(await row.innerText(), /WebSocket/);
        await shot(page, "cluster-sockets");

        // Its disconnect button: A passes the command on; B disconnects it.
        const id = client.id; // undefined once disconnected
        const gone = once(client, "disconnect");
        await row.locator("button").click();
        const [reason] = await gone;
        assert.equal(reason, "io server disconnect");
        await page.getByText("Sockets", { exact: true }).first().click();
        await selectNamespace(page, "/spaces");
        await until(async () => (await page.locator("tr", { hasText: id }).count()) === 0,
          "the disconnected socket's row gone");
      } catch (e) {
        await shot(page, "cluster-failure").catch(() => {});
        e.message += `\npage console:\n${t.console.join("\n")}`;
        failure = e;
        throw e;
      }
    } finally {
      if (client) client.close();
      if (context) await context.close().catch(() => {});
      const errors = [];
      for (const n of nodes) await stopNode(n).catch((e) => errors.push(e));
      // The servers' logs come out as they stop (stderr is a pipe here).
      if (failure) failure.message += nodes.map((n, i) => `\n--- node ${i} ---\n${n.output().slice(-3000)}`).join("");
      await run(path.join(h.SOURCE_DIR, "ci", "pg.sh"), ["stop", pgDir]).catch((e) => errors.push(e));
      for (const d of [tmp, pgDir]) fs.rmSync(d, { recursive: true, force: true });
      if (errors.length) throw errors[0];
    }
  });
