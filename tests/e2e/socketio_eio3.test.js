// Engine.IO protocol 3 (issue 16): the official socket.io-client 2.5 (npm,
// installed as "socket.io-client-v2") against our conformance-socketio
// started with --allow-eio3 AND the reference Node.js socket.io 4.8 with
// allowEIO3: true, in the same run. Over polling only, websocket only, and
// polling then upgrade: connected to "/" without a CONNECT, events with acks
// both ways, binary both ways, a namespace other than "/", the v3 heartbeat
// (the client pings: an idle client stays, a client that stops pinging is
// dropped). Without the option both servers refuse EIO=3 with HTTP 400,
// over polling and before any WebSocket upgrade.
//
//   node --test tests/e2e/socketio_eio3.test.js
//
// SPACES_BUILD_DIR: build directory holding conformance-socketio
// (default <source>/build/debug).
"use strict";

const { describe, it, before, after, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const http = require("node:http");
const path = require("node:path");
const h = require("../lib/harness.js");
const ioV2 = require("socket.io-client-v2");
const WebSocket = require("ws");

const WAIT_MS = h.ms(5000);
const TEST_TIMEOUT = { timeout: h.ms(30000) };
const PING_INTERVAL_MS = 300; // both conformance servers: pingInterval 300, pingTimeout 200

const SERVERS = {
  ours: (extra) => [path.join(h.BUILD_DIR, "conformance-socketio"), ...extra],
  reference: (extra) => [
    process.execPath,
    path.join(h.SOURCE_DIR, "tests/conformance/reference_socketio.js"),
    ...extra,
  ],
};

const MODES = {
  polling: { transports: ["polling"] },
  websocket: { transports: ["websocket"] },
  upgrade: { transports: ["polling", "websocket"], upgrade: true },
  // A client that forces base64 (b64=1): binary as "b4" + base64 text, on
  // both transports.
  "upgrade+b64": { transports: ["polling", "websocket"], upgrade: true, forceBase64: true },
};

const open = new Set();

function connect(url, opts = {}) {
  const s = ioV2(url, { forceNew: true, reconnection: false, timeout: WAIT_MS, ...opts });
  open.add(s);
  return s;
}

function once(emitter, event, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no "${event}" within ${ms} ms`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(t);
      resolve(args);
    });
  });
}

function emitAck(socket, ...args) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("no ack")), WAIT_MS);
    socket.emit(...args, (...res) => {
      clearTimeout(t);
      resolve(res);
    });
  });
}

async function connected(socket, mode) {
  if (!socket.connected) {
    const err = once(socket, "connect_error").then(([e]) => {
      throw e;
    });
    await Promise.race([once(socket, "connect"), err]);
  }
  if (mode.startsWith("upgrade")) {
    const engine = socket.io.engine;
    if (engine.transport.name !== "websocket") await once(engine, "upgrade");
    assert.equal(engine.transport.name, "websocket");
  } else {
    assert.equal(socket.io.engine.transport.name, mode);
  }
}

function raw(url, pathAndQuery) {
  return new Promise((resolve, reject) => {
    http
      .get(url + pathAndQuery, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode, body }));
      })
      .on("error", reject);
  });
}

for (const [name, command] of Object.entries(SERVERS)) {
  describe(`socket.io-client 2.5 against ${name} with allowEIO3`, () => {
    let server;
    before(async () => {
      server = await h.startServer(command(["--allow-eio3"]));
    });
    after(async () => {
      if (server) await server.stop();
    });
    afterEach(() => {
      for (const s of open) s.close();
      open.clear();
    });

    for (const [mode, opts] of Object.entries(MODES)) {
      it(`${mode}: connected to "/" without CONNECT, acks both ways`, TEST_TIMEOUT, async () => {
        const s = connect(server.url, opts);
        const auth = once(s, "auth");
        await connected(s, mode);
        // The server's on-connection handler ran for "/" (no CONNECT sent by v2).
        assert.deepEqual((await auth)[0], {});
        assert.deepEqual(await emitAck(s, "message-with-ack", 1, "two", { three: [3] }), [
          1,
          "two",
          { three: [3] },
        ]);
        // Server to client, with an ack.
        s.on("server-asks", (a, b, ack) => ack(a + 1, `${b}!`));
        const [res] = await emitAck(s, "request-ack", { event: "server-asks", args: [41, "hi"] });
        assert.equal(res.error, null);
        assert.deepEqual(res.responses, [42, "hi!"]);
        // Non-ASCII text crosses the v3 length prefixes intact.
        const text = "h\u00e9llo \u{1F600} \u4e16\u754c";
        assert.deepEqual(await emitAck(s, "message-with-ack", text), [text]);
      });

      it(`${mode}: binary both ways`, TEST_TIMEOUT, async () => {
        const s = connect(server.url, opts);
        await connected(s, mode);
        const bin = Buffer.from([0, 1, 2, 253, 254, 255]);
        const back = once(s, "message-back");
        s.emit("message", "bin", bin, { nested: Buffer.from("xyz") });
        const got = await back;
        assert.equal(got[0], "bin");
        assert.ok(Buffer.from(got[1]).equals(bin));
        assert.ok(Buffer.from(got[2].nested).equals(Buffer.from("xyz")));
        const acked = await emitAck(s, "message-with-ack", bin);
        assert.ok(Buffer.from(acked[0]).equals(bin));
        // Binary from the server with an ack answered by the client with binary.
        s.on("bin-ask", (b, ack) => ack(Buffer.concat([Buffer.from(b), Buffer.from([9])])));
        const [res] = await emitAck(s, "request-ack", { event: "bin-ask", args: [bin] });
        assert.equal(res.error, null);
        assert.ok(Buffer.from(res.responses[0]).equals(Buffer.concat([bin, Buffer.from([9])])));
      });

      it(`${mode}: a namespace other than "/"`, TEST_TIMEOUT, async () => {
        const s = connect(server.url + "/custom", opts);
        const auth = once(s, "auth");
        await connected(s, mode);
        assert.deepEqual((await auth)[0], {});
        const bad = connect(server.url + "/nope", opts);
        const [err] = await once(bad, "error");
        assert.match(String(err && err.message !== undefined ? err.message : err), /Invalid namespace/);
      });

      it(`${mode}: a middleware: the query is the auth, a refusal sends its data`, TEST_TIMEOUT, async () => {
        const refused = connect(server.url + "/private", opts);
        const [err] = await once(refused, "error");
        assert.deepEqual(err, { code: 403 });
        const s = connect(server.url + "/private", { ...opts, query: { token: "secret", x: "a b&c" } });
        const auth = once(s, "auth");
        await connected(s, mode);
        const [got] = await auth;
        assert.equal(got.token, "secret");
        assert.equal(got.x, "a b&c");
      });

      it(`${mode}: heartbeat: an idle client stays, one that stops pinging is dropped`, TEST_TIMEOUT, async () => {
        const s = connect(server.url, opts);
        await connected(s, mode);
        let gone = null;
        s.on("disconnect", (r) => (gone = r));
        let pongs = 0;
        s.io.engine.on("pong", () => pongs++);
        await h.sleep(4 * PING_INTERVAL_MS);
        assert.equal(gone, null, "an idle v2 client stays connected past 2 x pingInterval");
        assert.ok(pongs >= 2, `the server answered the client's pings (${pongs} pongs)`);
        assert.deepEqual(await emitAck(s, "message-with-ack", "still"), ["still"]);

        // A client that no longer pings (nor times out on its side) is dropped
        // by the server. Not by the reference after an upgrade: its
        // clearTransport() clears the v3 ping timeout timer, and the later
        // pings' refresh() does not rearm a cleared timer, so it never drops
        // an upgraded v3 client (engine.io 6.6); ours does.
        if (name === "reference" && mode.startsWith("upgrade")) return;
        const q = connect(server.url, opts);
        const engine = q.io.engine;
        engine.setPing = () => {};
        engine.onHeartbeat = () => {};
        await connected(q, mode);
        clearTimeout(engine.pingIntervalTimer);
        clearTimeout(engine.pingTimeoutTimer);
        const [reason] = await once(q, "disconnect", h.ms(10000));
        assert.equal(reason, "transport close");
      });
    }
  });

  describe(`EIO=3 against ${name} without allowEIO3`, () => {
    let server;
    before(async () => {
      server = await h.startServer(command([]));
    });
    after(async () => {
      if (server) await server.stop();
    });

    it("refuses polling with HTTP 400", TEST_TIMEOUT, async () => {
      const r = await raw(server.url, "/socket.io/?EIO=3&transport=polling");
      assert.equal(r.status, 400);
      assert.deepEqual(JSON.parse(r.body), { code: 5, message: "Unsupported protocol version" });
    });

    // Ours answers 400 before the upgrade; the reference accepts the
    // WebSocket and closes it at once, with no open packet.
    it("refuses a WebSocket (ours: HTTP 400 before the upgrade)", TEST_TIMEOUT, async () => {
      const ws = new WebSocket(`${server.url.replace("http", "ws")}/socket.io/?EIO=3&transport=websocket`);
      const messages = [];
      ws.on("message", (m) => messages.push(String(m)));
      const outcome = await new Promise((resolve) => {
        ws.on("unexpected-response", (_req, res) => resolve({ status: res.statusCode }));
        ws.on("close", () => resolve({ upgraded: true }));
        ws.on("error", () => {});
      });
      ws.terminate();
      if (name === "ours") {
        assert.deepEqual(outcome, { status: 400 });
      } else {
        assert.ok(outcome.status === 400 || outcome.upgraded);
        assert.deepEqual(messages, []);
      }
    });

    it("socket.io-client 2.5 gets a connect_error", TEST_TIMEOUT, async () => {
      const s = connect(server.url, { transports: ["polling"] });
      await once(s, "connect_error");
      assert.equal(s.connected, false);
      s.close();
    });
  });
}
