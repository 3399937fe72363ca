// Socket.IO v5 protocol acceptance tests at the wire level (raw HTTP
// long-polling with fetch, raw WebSocket with `ws`), against the Socket.IO
// conformance server: every behaviour the official Socket.IO protocol test
// suite checks (socket.io docs/socket.io-protocol/v5-test-suite), over both
// transports where it applies, plus the extra behaviours of issue 3 (server
// acks with timeout, volatile, disconnect reasons, malformed input, msgpack).
//
//   node --test tests/e2e/socketio_protocol.test.js
//   SPACES_SOCKETIO_SERVER=reference node --test tests/e2e/socketio_protocol.test.js
//
// Which server runs:
//   SPACES_SOCKETIO_SERVER  unset: $SPACES_BUILD_DIR/conformance-socketio
//                           "reference": node tests/conformance/reference_socketio.js
//                           anything else: a command line (split on spaces)
//   SPACES_BUILD_DIR        build directory (default <source>/build/debug)
// The server gets "--port P" (and "--parser msgpack" for the msgpack part).
"use strict";

const { describe, it: baseIt, before, after, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const h = require("../lib/harness.js");
const WebSocket = require("ws");
const notepack = require("notepack.io");

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const CONNECT_TIMEOUT = 1000;
const WAIT_MS = h.ms(3000); // scaled by SPACES_TEST_TIMEOUT_MULTIPLIER

// The raw fetch() calls have no deadline of their own: every test fails
// after 60 s rather than hanging the whole file.
const it = (name, fn) => baseIt(name, { timeout: 60000 }, fn);

// ---------------------------------------------------------------------------
// Server start-up

function socketioServerCommand() {
  return h.serverCommand(
    "SPACES_SOCKETIO_SERVER",
    "conformance-socketio",
    "tests/conformance/reference_socketio.js"
  );
}

async function startSocketioServer(extraArgs = []) {
  const argv = [...socketioServerCommand(), ...extraArgs];
  if (argv[0].includes("/") && !fs.existsSync(argv[0])) {
    throw new Error(
      `the Socket.IO conformance server ${argv[0]} does not exist: build the ` +
        `conformance-socketio target (or set SPACES_BUILD_DIR), or run these ` +
        `tests against the reference Node.js server with SPACES_SOCKETIO_SERVER=reference`
    );
  }
  return h.startServer(argv);
}

// ---------------------------------------------------------------------------
// A raw Engine.IO v4 connection: the same interface over WebSocket and
// HTTP long-polling. Packets are Engine.IO packets as on the wire: strings
// such as '42["auth",{}]' or Buffers for binary messages (base64 "b..." on
// polling is decoded). PING packets ("2") are answered with PONG ("3") unless
// autoPong is false, and never appear in the packet queue.

function describePacket(p) {
  if (Buffer.isBuffer(p)) return `<binary ${p.toString("hex")}>`;
  return JSON.stringify(p.length > 300 ? p.slice(0, 300) + "..." : p);
}

class RawConn {
  constructor(server, transport, opts) {
    this.server = server;
    this.transport = transport;
    this.autoPong = opts.autoPong !== false;
    this.manualPoll = !!opts.manualPoll;
    this.msgpack = !!opts.msgpack;
    this.queue = [];
    this.waiters = [];
    this.closeWaiters = [];
    this.log = [];
    this.pings = 0;
    this.closed = false;
    this.closeReason = null;
    this.handshake = null;
    this.sid = null;
  }

  static async open(server, transport, opts = {}) {
    const c = new RawConn(server, transport, opts);
    all.add(c);
    if (transport === "websocket") await c._openWs();
    else await c._openPolling();
    return c;
  }

  get baseUrl() {
    return `${this.server.url}/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(this.sid)}`;
  }

  async _openWs() {
    const ws = new WebSocket(`${this.server.wsUrl}/socket.io/?EIO=4&transport=websocket`);
    this.ws = ws;
    ws.on("message", (data, isBinary) => {
      this._onPacket(isBinary ? Buffer.from(data) : data.toString("utf8"));
    });
    ws.on("error", () => {});
    ws.on("close", (code) => this._markClosed(`websocket closed (code ${code})`));
    const first = await this.next(WAIT_MS, { raw: true });
    this._onHandshake(first);
  }

  async _openPolling() {
    const res = await fetch(`${this.server.url}/socket.io/?EIO=4&transport=polling`);
    assert.equal(res.status, 200, "polling handshake status");
    const text = await res.text();
    this._onHandshake(text);
    if (!this.manualPoll) this._pollLoop();
  }

  _onHandshake(text) {
    assert.equal(typeof text, "string", "the Engine.IO handshake is a text packet");
    assert.ok(text.startsWith("0"), `Engine.IO handshake packet expected, got ${describePacket(text)}`);
    this.handshake = JSON.parse(text.slice(1));
    this.sid = this.handshake.sid;
  }

  _decodePayload(text) {
    return text
      .split("\x1e")
      .map((p) => (p.startsWith("b") ? Buffer.from(p.slice(1), "base64") : p));
  }

  // One GET; its packets go to the queue. Returns false once closed.
  async poll() {
    let res;
    try {
      res = await fetch(this.baseUrl);
    } catch (e) {
      this._markClosed(`GET failed: ${e.message}`);
      return false;
    }
    const text = await res.text();
    if (res.status !== 200) {
      this._markClosed(`GET answered HTTP ${res.status}`);
      return false;
    }
    for (const p of this._decodePayload(text)) this._onPacket(p);
    return !this.closed;
  }

  async _pollLoop() {
    while (!this.closed && !this.stopPolling) {
      if (!(await this.poll())) break;
    }
  }

  _onPacket(p) {
    if (this.closed) return;
    this.log.push(p);
    if (p === "2") {
      this.pings++;
      if (this.autoPong) this._sendRaw(["3"]).catch(() => {});
      this._wake();
      return;
    }
    if (p === "1") {
      this._markClosed("Engine.IO CLOSE packet");
      return;
    }
    if (p === "6") return; // NOOP
    this.queue.push(p);
    this._wake();
  }

  _wake() {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  _markClosed(reason) {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    this._wake();
    for (const w of this.closeWaiters) w();
    this.closeWaiters = [];
  }

  async _sendRaw(packets) {
    if (this.transport === "websocket") {
      for (const p of packets) {
        if (this.ws.readyState !== WebSocket.OPEN) throw new Error("websocket is not open");
        this.ws.send(p);
      }
      return 200;
    }
    const body = packets
      .map((p) => (Buffer.isBuffer(p) || p instanceof Uint8Array ? "b" + Buffer.from(p).toString("base64") : p))
      .join("\x1e");
    const res = await fetch(this.baseUrl, {
      method: "POST",
      body,
      headers: { "Content-Type": "text/plain;charset=UTF-8" },
    });
    await res.text();
    return res.status;
  }

  // Sends Engine.IO packets (strings, or Buffers/Uint8Arrays as binary
  // messages). On polling they go in one POST, which must answer 200 unless
  // check is false.
  async send(packets, { check = true } = {}) {
    if (!Array.isArray(packets)) packets = [packets];
    const status = await this._sendRaw(packets);
    if (check) assert.equal(status, 200, `POST of ${packets.map(describePacket).join(" ")}`);
    return status;
  }

  // Socket.IO with the msgpack parser: every Socket.IO packet is one binary
  // Engine.IO message holding a msgpack map {type, nsp, data, id}.
  async sendMsgpack(packet, opts) {
    return this.send(Buffer.from(notepack.encode(packet)), opts);
  }

  async nextMsgpack(timeoutMs = WAIT_MS) {
    const p = await this.next(timeoutMs);
    assert.ok(Buffer.isBuffer(p), `a binary (msgpack) packet expected, got ${describePacket(p)}`);
    return notepack.decode(p);
  }

  // The next packet (not a ping); fails after timeoutMs or on close.
  async next(timeoutMs = WAIT_MS, { what = "a packet" } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.queue.length > 0) return this.queue.shift();
      if (this.closed) {
        throw new Error(
          `${this.transport}: connection closed (${this.closeReason}) while waiting for ${what}; ` +
            `received: ${this.log.map(describePacket).join(" ")}`
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `${this.transport}: no ${what} within ${timeoutMs} ms; received: ` +
            (this.log.map(describePacket).join(" ") || "nothing")
        );
      }
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async nextN(n, timeoutMs = WAIT_MS) {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await this.next(timeoutMs, { what: `packet ${i + 1} of ${n}` }));
    return out;
  }

  // Resolves with nothing if no packet arrives within ms; fails otherwise.
  async expectNothing(ms) {
    await h.sleep(ms);
    assert.deepEqual(this.queue.map(describePacket), [], `${this.transport}: no packet expected`);
  }

  // Resolves once the server has closed the connection (websocket closed,
  // or on polling a CLOSE packet / HTTP 400), fails after timeoutMs.
  async expectClosed(timeoutMs = WAIT_MS, what = "the server to close the connection") {
    if (this.transport === "polling" && this.manualPoll && !this.closed) {
      const deadline = Date.now() + timeoutMs;
      while (!this.closed && Date.now() < deadline) await this.poll();
    }
    if (this.closed) return this.closeReason;
    await new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
    if (!this.closed) {
      throw new Error(
        `${this.transport}: expected ${what} within ${timeoutMs} ms, but it is still open; ` +
          `received: ${this.log.map(describePacket).join(" ") || "nothing"}`
      );
    }
    return this.closeReason;
  }

  // Waits for the next PING (the connection must stay open meanwhile).
  async nextPing(timeoutMs = WAIT_MS) {
    const start = this.pings;
    const deadline = Date.now() + timeoutMs;
    while (this.pings === start) {
      if (this.closed) throw new Error(`${this.transport}: closed (${this.closeReason}) while waiting for a PING`);
      if (Date.now() > deadline) throw new Error(`${this.transport}: no PING within ${timeoutMs} ms`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  // Socket.IO CONNECT to nsp and wait for the reply; returns the reply
  // packet (string). Does not consume the "auth" event.
  async sioConnect(nsp = "/", auth) {
    const prefix = nsp === "/" ? "" : `${nsp},`;
    await this.send(`40${prefix}${auth === undefined ? "" : JSON.stringify(auth)}`);
    const reply = await this.next(WAIT_MS, { what: `the CONNECT reply for ${nsp}` });
    assert.equal(typeof reply, "string");
    assert.ok(reply.startsWith(`40${prefix}`), `CONNECT reply for ${nsp} expected, got ${describePacket(reply)}`);
    return reply;
  }

  // CONNECT to "/" and consume the CONNECT reply and the "auth" event.
  async sioInit() {
    await this.sioConnect("/");
    assert.equal(await this.next(), '42["auth",{}]');
    return this;
  }

  close() {
    this.stopPolling = true;
    if (this.closed) return;
    this.closed = true;
    this.closeReason = "closed by the test";
    if (this.ws) this.ws.terminate();
    else if (this.sid) this._sendRaw(["1"]).catch(() => {});
    this._wake();
  }
}

const all = new Set();
function closeAll() {
  for (const c of all) c.close();
  all.clear();
}

// Parses an Engine.IO MESSAGE holding a Socket.IO packet (JSON parser):
// {type, attachments, nsp, id, data}.
function parseSio(p) {
  assert.equal(typeof p, "string", `a text packet expected, got ${describePacket(p)}`);
  const m = /^4([0-6])(?:(\d+)-)?(\/[^,]*,)?(\d+)?(.*)$/s.exec(p);
  assert.ok(m, `not a Socket.IO packet: ${describePacket(p)}`);
  return {
    type: Number(m[1]),
    attachments: m[2] === undefined ? 0 : Number(m[2]),
    nsp: m[3] ? m[3].slice(0, -1) : "/",
    id: m[4] === undefined ? undefined : Number(m[4]),
    data: m[5] === "" ? undefined : JSON.parse(m[5]),
  };
}

const TRANSPORTS = ["websocket", "polling"];

// ---------------------------------------------------------------------------

describe("Socket.IO protocol (raw)", () => {
  let server;

  before(async () => {
    server = await startSocketioServer();
  });

  afterEach(() => closeAll());

  after(async () => {
    closeAll();
    if (server) await server.stop();
  });

  // -------------------------------------------------------------------------
  describe("Engine.IO under /socket.io/", () => {
    it("polling handshake: 200, sid, upgrades [websocket], pingInterval 300, pingTimeout 200, maxPayload 1000000", async () => {
      const res = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`);
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.ok(text.startsWith("0"), `open packet expected, got ${describePacket(text)}`);
      const v = JSON.parse(text.slice(1));
      assert.deepEqual(Object.keys(v).sort(), ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"]);
      assert.equal(typeof v.sid, "string");
      assert.deepEqual(v.upgrades, ["websocket"]);
      assert.equal(v.pingInterval, PING_INTERVAL);
      assert.equal(v.pingTimeout, PING_TIMEOUT);
      assert.equal(v.maxPayload, 1000000);
      assert.equal(res.headers.get("access-control-allow-origin"), "*", "CORS origin *");
    });

    it("websocket handshake: sid, upgrades [], pingInterval 300, pingTimeout 200, maxPayload 1000000", async () => {
      const c = await RawConn.open(server, "websocket");
      const v = c.handshake;
      assert.deepEqual(Object.keys(v).sort(), ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"]);
      assert.equal(typeof v.sid, "string");
      assert.deepEqual(v.upgrades, []);
      assert.equal(v.pingInterval, PING_INTERVAL);
      assert.equal(v.pingTimeout, PING_TIMEOUT);
      assert.equal(v.maxPayload, 1000000);
    });

    it("answers 400 to a bad EIO, a bad transport, and POST/PUT without sid", async () => {
      const bad = [
        ["GET", "transport=polling"],
        ["GET", "EIO=abc&transport=polling"],
        ["GET", "EIO=4"],
        ["GET", "EIO=4&transport=abc"],
        ["POST", "EIO=4&transport=polling"],
        ["PUT", "EIO=4&transport=polling"],
      ];
      for (const [method, query] of bad) {
        const res = await fetch(`${server.url}/socket.io/?${query}`, { method });
        await res.text();
        assert.equal(res.status, 400, `${method} /socket.io/?${query}`);
      }
    });

    it("refuses websocket upgrades with a bad EIO or transport", async () => {
      // Refused: an HTTP error, or a websocket closed without an Engine.IO
      // open packet.
      for (const query of ["transport=websocket", "EIO=abc&transport=websocket", "EIO=4", "EIO=4&transport=abc"]) {
        const ws = new WebSocket(`${server.wsUrl}/socket.io/?${query}`);
        const outcome = await new Promise((resolve) => {
          ws.on("error", () => {});
          ws.on("message", (d) => resolve(`message ${d}`));
          ws.on("close", () => resolve("closed"));
          ws.on("unexpected-response", (req, res) => resolve(`HTTP ${res.statusCode}`));
          setTimeout(() => resolve("no answer"), WAIT_MS);
        });
        ws.terminate();
        assert.ok(outcome === "closed" || outcome.startsWith("HTTP 4"), `websocket /socket.io/?${query} must be refused, got: ${outcome}`);
      }
    });

    it("polling: PING from the server, PONG from the client, three times", async () => {
      const c = await RawConn.open(server, "polling", { manualPoll: true, autoPong: false });
      for (let i = 0; i < 3; i++) {
        const res = await fetch(c.baseUrl);
        assert.equal(res.status, 200);
        assert.equal(await res.text(), "2");
        await c.send("3");
      }
    });

    it("websocket: PING from the server, PONG from the client, three times", async () => {
      const c = await RawConn.open(server, "websocket");
      for (let i = 0; i < 3; i++) await c.nextPing(h.ms(2000));
      assert.equal(c.closed, false);
    });

    for (const transport of TRANSPORTS) {
      it(`${transport}: closes the session upon ping timeout`, async () => {
        const c = await RawConn.open(server, transport, { autoPong: false, manualPoll: transport === "polling" });
        if (transport === "polling") {
          await h.sleep(PING_INTERVAL + PING_TIMEOUT + 100);
          const res = await fetch(c.baseUrl);
          await res.text();
          assert.equal(res.status, 400, "GET after the ping timeout");
        } else {
          const t0 = Date.now();
          await c.expectClosed(2000, "a close on ping timeout");
          assert.ok(Date.now() - t0 >= PING_INTERVAL, "closed before the first ping was due");
        }
      });
    }

    it("polling: a CLOSE packet from the client closes the session (the pending GET ends)", async () => {
      const c = await RawConn.open(server, "polling", { manualPoll: true });
      const [pollRes] = await Promise.all([
        fetch(c.baseUrl),
        // No event tells the client that the server holds the GET: a pause
        // (scaled) so the CLOSE comes while it is pending.
        h.sleep(h.ms(50)).then(() => fetch(c.baseUrl, { method: "POST", body: "1" })),
      ]);
      assert.equal(pollRes.status, 200);
      assert.ok(["6", "1"].includes(await pollRes.text()), "the pending GET ends with NOOP or CLOSE");
      const res2 = await fetch(c.baseUrl);
      await res2.text();
      assert.equal(res2.status, 400);
    });

    it("websocket: a CLOSE packet from the client closes the connection", async () => {
      const c = await RawConn.open(server, "websocket");
      await c.send("1");
      await c.expectClosed();
    });

    it("upgrade from polling to websocket; the old polling sid and a second websocket are refused", async () => {
      const c = await RawConn.open(server, "polling", { manualPoll: true });
      const ws = new WebSocket(`${server.wsUrl}/socket.io/?EIO=4&transport=websocket&sid=${c.sid}`);
      ws.on("error", () => {});
      const msgs = [];
      ws.on("message", (d, bin) => msgs.push(bin ? d : d.toString()));
      await new Promise((resolve, reject) => {
        ws.once("open", resolve);
        ws.once("close", () => reject(new Error("upgrade websocket closed")));
      });
      ws.send("2probe");
      const t0 = Date.now();
      while (!msgs.includes("3probe") && Date.now() - t0 < WAIT_MS) await h.sleep(10);
      assert.ok(msgs.includes("3probe"), `3probe expected, got ${JSON.stringify(msgs)}`);
      ws.send("5");
      // The upgrade is done once the server answers over the websocket:
      // CONNECT (after UPGRADE on the same connection) is answered there.
      ws.send("40");
      await h.waitUntil("CONNECT answered over the upgraded websocket",
        () => msgs.some((m) => typeof m === "string" && m.startsWith("40")), WAIT_MS);
      const res = await fetch(c.baseUrl);
      await res.text();
      assert.equal(res.status, 400, "polling GET after the upgrade");
      const ws2 = new WebSocket(`${server.wsUrl}/socket.io/?EIO=4&transport=websocket&sid=${c.sid}`);
      const outcome = await new Promise((resolve) => {
        ws2.on("error", () => {});
        ws2.on("close", () => resolve("closed"));
        ws2.on("unexpected-response", (req, r) => resolve(`HTTP ${r.statusCode}`));
        setTimeout(() => resolve("still open"), WAIT_MS);
      });
      ws2.terminate();
      assert.notEqual(outcome, "still open", "a second websocket with the same sid must be refused");
      // Socket.IO over the upgraded connection (CONNECT was sent above).
      const t1 = Date.now();
      while (!msgs.some((m) => typeof m === "string" && m.startsWith('42["auth"')) && Date.now() - t1 < WAIT_MS) {
        await h.sleep(10);
      }
      ws.terminate();
      assert.ok(msgs.includes('42["auth",{}]'), `auth event over the upgraded websocket, got ${JSON.stringify(msgs)}`);
    });
  });

  // -------------------------------------------------------------------------
  for (const transport of TRANSPORTS) {
    describe(`connect (${transport})`, () => {
      it("connects to the main namespace: 40{sid} then 42[\"auth\",{}]", async () => {
        const c = await RawConn.open(server, transport);
        await c.send("40");
        const reply = await c.next();
        assert.ok(reply.startsWith("40"), `got ${describePacket(reply)}`);
        const hs = JSON.parse(reply.slice(2));
        assert.deepEqual(Object.keys(hs), ["sid"]);
        assert.equal(typeof hs.sid, "string");
        assert.ok(hs.sid.length > 0);
        assert.notEqual(hs.sid, c.sid, "the Socket.IO id must not be the Engine.IO sid");
        assert.equal(await c.next(), '42["auth",{}]');
      });

      it("connects to the main namespace with an auth payload, echoed by the auth event", async () => {
        const c = await RawConn.open(server, transport);
        await c.send('40{"token":"123"}');
        const reply = await c.next();
        assert.ok(reply.startsWith("40"), `got ${describePacket(reply)}`);
        assert.deepEqual(Object.keys(JSON.parse(reply.slice(2))), ["sid"]);
        assert.equal(await c.next(), '42["auth",{"token":"123"}]');
      });

      it("connects to a custom namespace: 40/custom,{sid} then 42/custom,[\"auth\",{}]", async () => {
        const c = await RawConn.open(server, transport);
        await c.send("40/custom,");
        const reply = await c.next();
        assert.ok(reply.startsWith("40/custom,"), `got ${describePacket(reply)}`);
        const hs = JSON.parse(reply.slice(10));
        assert.deepEqual(Object.keys(hs), ["sid"]);
        assert.equal(typeof hs.sid, "string");
        assert.equal(await c.next(), '42/custom,["auth",{}]');
      });

      it("connects to a custom namespace with an auth payload", async () => {
        const c = await RawConn.open(server, transport);
        await c.send('40/custom,{"token":"abc"}');
        const reply = await c.next();
        assert.ok(reply.startsWith("40/custom,"), `got ${describePacket(reply)}`);
        assert.deepEqual(Object.keys(JSON.parse(reply.slice(10))), ["sid"]);
        assert.equal(await c.next(), '42/custom,["auth",{"token":"abc"}]');
      });

      it("connects to a custom namespace written without the trailing comma", async () => {
        const c = await RawConn.open(server, transport);
        await c.send("40/custom");
        const reply = await c.next();
        assert.ok(reply.startsWith("40/custom,"), `got ${describePacket(reply)}`);
        assert.equal(await c.next(), '42/custom,["auth",{}]');
      });

      it("two namespaces on one connection get different socket ids", async () => {
        const c = await RawConn.open(server, transport);
        const a = JSON.parse((await c.sioConnect("/")).slice(2)).sid;
        assert.equal(await c.next(), '42["auth",{}]');
        const b = JSON.parse((await c.sioConnect("/custom")).slice(10)).sid;
        assert.equal(await c.next(), '42/custom,["auth",{}]');
        assert.notEqual(a, b);
      });

      it("refuses an unknown namespace with 44/random,{\"message\":\"Invalid namespace\"} and stays open", async () => {
        const c = await RawConn.open(server, transport);
        await c.send("40/random");
        assert.equal(await c.next(), '44/random,{"message":"Invalid namespace"}');
        await c.sioInit(); // the connection is still usable
      });

      it("refuses a middleware-refused namespace with CONNECT_ERROR {message, data} (EXTRA /private)", async () => {
        const c = await RawConn.open(server, transport);
        await c.send('40/private,{"token":"wrong"}');
        const p = parseSio(await c.next());
        assert.equal(p.type, 4);
        assert.equal(p.nsp, "/private");
        assert.deepEqual(p.data, { message: "not authorized", data: { code: 403 } });
        await c.send('40/private,{"token":"secret"}');
        const ok = parseSio(await c.next());
        assert.equal(ok.type, 0);
        assert.equal(ok.nsp, "/private");
        assert.deepEqual(Object.keys(ok.data), ["sid"]);
        assert.equal(await c.next(), '42/private,["auth",{"token":"secret"}]');
      });

      it("connects to a dynamic namespace /dyn-<digits> and refuses /dyn-x (EXTRA)", async () => {
        const c = await RawConn.open(server, transport);
        await c.send("40/dyn-42,");
        const p = parseSio(await c.next());
        assert.equal(p.type, 0);
        assert.equal(p.nsp, "/dyn-42");
        assert.equal(typeof p.data.sid, "string");
        assert.equal(await c.next(), '42/dyn-42,["auth",{}]');
        await c.send("40/dyn-x,");
        assert.equal(await c.next(), '44/dyn-x,{"message":"Invalid namespace"}');
      });

      it("closes the connection upon an invalid handshake (4abc)", async () => {
        const c = await RawConn.open(server, transport);
        await c.send("4abc", { check: false });
        await c.expectClosed();
      });

      for (const bad of ['40"not an object"', "40[1,2]", "40true", "40null", '40/custom,"x"']) {
        it(`closes the connection upon a CONNECT with a non-object payload: ${bad}`, async () => {
          const c = await RawConn.open(server, transport);
          await c.send(bad, { check: false });
          await c.expectClosed();
        });
      }

      it("closes the connection if no CONNECT comes within connectTimeout (1000 ms)", async () => {
        const t0 = Date.now();
        const c = await RawConn.open(server, transport); // answers pings
        await c.expectClosed(CONNECT_TIMEOUT + 2000, "a close after connectTimeout");
        const elapsed = Date.now() - t0;
        assert.ok(elapsed >= CONNECT_TIMEOUT - 200, `closed after ${elapsed} ms, before connectTimeout`);
      });

      it("connectTimeout does not apply once a namespace is connected", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        await h.sleep(CONNECT_TIMEOUT + 300);
        assert.equal(c.closed, false, `closed: ${c.closeReason}`);
        await c.send('42["message","still here"]');
        assert.equal(await c.next(), '42["message-back","still here"]');
      });
    });

    // -----------------------------------------------------------------------
    describe(`disconnect (${transport})`, () => {
      it("disconnects from the main namespace (41); the Engine.IO connection stays open", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        await c.send("41");
        await c.nextPing(h.ms(2000));
        await c.expectNothing(100);
        assert.equal(c.closed, false);
      });

      it("after 41 the connection can CONNECT to the main namespace again, even after connectTimeout", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        await c.send("41");
        await h.sleep(CONNECT_TIMEOUT + 300);
        assert.equal(c.closed, false, `closed: ${c.closeReason}`);
        await c.sioInit();
        await c.send('42["message","again"]');
        assert.equal(await c.next(), '42["message-back","again"]');
      });

      it("connects then disconnects from a custom namespace; the main namespace still works", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        await c.send("40/custom");
        await c.next(); // CONNECT reply
        assert.equal(await c.next(), '42/custom,["auth",{}]');
        await c.send("41/custom");
        await c.send('42["message","message to main namespace"]');
        assert.equal(await c.next(), '42["message-back","message to main namespace"]');
      });

      it("an event for / after 41 is not handled: the connection closes", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        await c.send("41");
        await c.nextPing(h.ms(2000)); // let the DISCONNECT be processed first
        await c.send('42["message","gone"]', { check: false });
        await c.expectClosed();
        assert.ok(!c.log.includes('42["message-back","gone"]'), "no message-back after 41");
      });

      it("server-side disconnect sends 41 and keeps the connection (EXTRA disconnect-me)", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        await c.send('42["disconnect-me"]');
        assert.equal(await c.next(), "41");
        await c.nextPing(h.ms(2000));
        assert.equal(c.closed, false);
      });

      it("server-side disconnect(true) sends 41 and closes the connection (EXTRA disconnect-me true)", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        await c.send('42["disconnect-me",true]');
        assert.equal(await c.next(), "41");
        await c.expectClosed();
      });
    });

    // -----------------------------------------------------------------------
    describe(`message (${transport})`, () => {
      it("plain-text event: message -> message-back with the same arguments", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        await c.send('42["message",1,"2",{"3":[true]}]');
        assert.equal(await c.next(), '42["message-back",1,"2",{"3":[true]}]');
      });

      it("event with binary attachments", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        await c.send([
          '452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
          Uint8Array.from([1, 2, 3]),
          Uint8Array.from([4, 5, 6]),
        ]);
        const packets = await c.nextN(3);
        assert.equal(packets[0], '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
        assert.deepEqual(packets[1], Buffer.from([1, 2, 3]));
        assert.deepEqual(packets[2], Buffer.from([4, 5, 6]));
      });

      it("event with an ack: 42456[...] -> 43456[...]", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        await c.send('42456["message-with-ack",1,"2",{"3":[false]}]');
        assert.equal(await c.next(), '43456[1,"2",{"3":[false]}]');
      });

      it("event with binary attachments and an ack: 452-789[...] -> 462-789[...]", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        await c.send([
          '452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
          Uint8Array.from([1, 2, 3]),
          Uint8Array.from([4, 5, 6]),
        ]);
        const packets = await c.nextN(3);
        assert.equal(packets[0], '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
        assert.deepEqual(packets[1], Buffer.from([1, 2, 3]));
        assert.deepEqual(packets[2], Buffer.from([4, 5, 6]));
      });

      it("binary attachment nested in an object, and an empty binary attachment", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        await c.send([
          '452-["message",{"a":{"b":[{"_placeholder":true,"num":0}]}},{"_placeholder":true,"num":1}]',
          Uint8Array.from([0, 255, 128]),
          new Uint8Array(0),
        ]);
        const packets = await c.nextN(3);
        const p = parseSio(packets[0]);
        assert.equal(p.type, 5);
        assert.equal(p.attachments, 2);
        assert.equal(p.data[0], "message-back");
        // The attachment order is the server's choice: map placeholders to buffers.
        const bufs = packets.slice(1);
        const inner = p.data[1].a.b[0];
        assert.equal(inner._placeholder, true);
        assert.deepEqual(bufs[inner.num], Buffer.from([0, 255, 128]));
        assert.equal(p.data[2]._placeholder, true);
        assert.deepEqual(bufs[p.data[2].num], Buffer.alloc(0));
      });

      it("event on a custom namespace with an ack id keeps the namespace (no handler: no answer, stays open)", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        await c.send("40/custom,");
        await c.next();
        await c.next(); // auth
        await c.send('42/custom,12["message","x"]');
        await c.expectNothing(200);
        await c.send('42["message","y"]');
        assert.equal(await c.next(), '42["message-back","y"]');
      });

      it("UTF-8 text survives the round trip (multi-byte characters)", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        const s = "héllo wörld ✓ 日本語 😀";
        await c.send(`42${JSON.stringify(["message", s, { "ключ": s }])}`);
        assert.equal(await c.next(), `42${JSON.stringify(["message-back", s, { "ключ": s }])}`);
      });

      it("a large (500 kB) event round trip", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        const big = "x".repeat(500 * 1024);
        await c.send(`42["message","${big}"]`);
        const back = await c.next(5000);
        assert.equal(back.length, `42["message-back","${big}"]`.length);
        assert.equal(back, `42["message-back","${big}"]`);
      });

      it("several events in a row keep their order", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        const n = 20;
        if (transport === "polling") {
          await c.send(Array.from({ length: n }, (_, i) => `42["message",${i}]`));
        } else {
          for (let i = 0; i < n; i++) await c.send(`42["message",${i}]`);
        }
        const got = await c.nextN(n);
        assert.deepEqual(got, Array.from({ length: n }, (_, i) => `42["message-back",${i}]`));
      });

      it("an ACK with an unknown id is ignored", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        await c.send('43999["nobody asked"]');
        await c.send('42["message","after"]');
        assert.equal(await c.next(), '42["message-back","after"]');
      });

      it("an event for a namespace the client has not joined closes the connection", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        await c.send('42/custom,["message","nope"]', { check: false });
        await c.expectClosed();
      });

      const invalid = [
        ["unknown packet type (4abc)", ["4abc"]],
        ["unknown packet type (47[])", ["47[]"]],
        ["invalid payload format (42{})", ["42{}"]],
        ["invalid payload format (42\"str\")", ['42"str"']],
        ["invalid JSON (42[\"message\",)", ['42["message",']],
        ["invalid ack id (42abc[...])", ['42abc["message-with-ack",1,"2",{"3":[false]}]']],
        ["a reserved event name (42[\"disconnect\"])", ['42["disconnect"]']],
        ["an event without a name (42[{}])", ["42[{}]"]],
        ["a DISCONNECT with a payload (41{})", ["41{}"]],
        ["an ACK whose payload is not an array (43{}) ", ["431{}"]],
        ["a binary attachment count that is not a number (45x-[...])", ['45x-["message"]']],
        ["too many attachments (11)", ['4511-["message"]']],
        ["a binary message while no attachment is expected", [Uint8Array.from([1, 2, 3])]],
        [
          "a text packet while attachments are expected",
          ['452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', Uint8Array.from([1]), '42["message"]'],
        ],
        [
          "a placeholder whose num is out of range",
          ['451-["message",{"_placeholder":true,"num":5}]', Uint8Array.from([1])],
        ],
      ];
      for (const [name, packets] of invalid) {
        it(`closes the connection upon ${name}`, async () => {
          const c = await RawConn.open(server, transport);
          await c.sioInit();
          await c.send(packets, { check: false });
          await c.expectClosed();
          // Nothing but the close may come after the bad packet.
          const echoes = c.queue.filter((p) => typeof p === "string" && p.startsWith("42"));
          assert.deepEqual(echoes, [], "no event may be answered");
        });
      }
    });

    // -----------------------------------------------------------------------
    describe(`server to client acks (${transport}, EXTRA request-ack)`, () => {
      it("the server emits with an ack id and gets the client's ack", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        await c.send('425["request-ack",{"event":"ask","args":[1,"two",{"three":3}]}]');
        const q = parseSio(await c.next());
        assert.equal(q.type, 2);
        assert.equal(typeof q.id, "number", "the server's event carries an ack id");
        assert.deepEqual(q.data, ["ask", 1, "two", { three: 3 }]);
        await c.send(`43${q.id}["answer",42]`);
        const r = parseSio(await c.next());
        assert.equal(r.type, 3);
        assert.equal(r.id, 5);
        assert.deepEqual(r.data, [{ error: null, responses: ["answer", 42] }]);
      });

      it("binary both ways: binary event args and a binary ack reply", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        await c.send([
          '451-6["request-ack",{"event":"ask","args":[{"_placeholder":true,"num":0}]}]',
          Uint8Array.from([9, 8, 7]),
        ]);
        const [head, bin] = await c.nextN(2);
        const q = parseSio(head);
        assert.equal(q.type, 5, `a BINARY_EVENT expected, got ${describePacket(head)}`);
        assert.equal(q.attachments, 1);
        assert.equal(q.data[0], "ask");
        assert.deepEqual(q.data[1], { _placeholder: true, num: 0 });
        assert.deepEqual(bin, Buffer.from([9, 8, 7]));
        await c.send([`461-${q.id}[{"_placeholder":true,"num":0}]`, Uint8Array.from([1, 1, 2, 3, 5])]);
        const [rhead, rbin] = await c.nextN(2);
        const r = parseSio(rhead);
        assert.equal(r.type, 6, `a BINARY_ACK expected, got ${describePacket(rhead)}`);
        assert.equal(r.id, 6);
        assert.equal(r.attachments, 1);
        assert.deepEqual(r.data, [{ error: null, responses: [{ _placeholder: true, num: 0 }] }]);
        assert.deepEqual(rbin, Buffer.from([1, 1, 2, 3, 5]));
      });

      it("with a timeout: the callback is told of the timeout; a late ack is ignored", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        const t0 = Date.now();
        await c.send('427["request-ack",{"event":"ask","args":[],"timeout":200}]');
        const q = parseSio(await c.next());
        assert.equal(typeof q.id, "number");
        const r = parseSio(await c.next(3000));
        const elapsed = Date.now() - t0;
        assert.equal(r.type, 3);
        assert.equal(r.id, 7);
        assert.equal(typeof r.data[0].error, "string", `a timeout error expected, got ${JSON.stringify(r.data)}`);
        assert.ok(r.data[0].error.length > 0);
        assert.deepEqual(r.data[0].responses, []);
        assert.ok(elapsed >= 180, `the timeout fired after ${elapsed} ms, before 200 ms`);
        await c.send(`43${q.id}["too late"]`);
        await c.send('42["message","ok"]');
        assert.equal(await c.next(), '42["message-back","ok"]');
      });

      it("with a timeout, answered in time", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        await c.send('428["request-ack",{"event":"ask","args":["q"],"timeout":2000}]');
        const q = parseSio(await c.next());
        await c.send(`43${q.id}["in time"]`);
        const r = parseSio(await c.next());
        assert.equal(r.id, 8);
        assert.deepEqual(r.data, [{ error: null, responses: ["in time"] }]);
      });

      it("ack ids of successive server emits differ", async () => {
        const c = await RawConn.open(server, transport);
        await c.sioInit();
        await c.send('421["request-ack",{"event":"a"}]');
        await c.send('422["request-ack",{"event":"b"}]');
        const q1 = parseSio(await c.next());
        const q2 = parseSio(await c.next());
        assert.notEqual(q1.id, q2.id);
        await c.send(`43${q2.id}["B"]`);
        await c.send(`43${q1.id}["A"]`);
        const r = [parseSio(await c.next()), parseSio(await c.next())].sort((x, y) => x.id - y.id);
        assert.deepEqual(r.map((x) => [x.id, x.data[0].responses]), [[1, ["A"]], [2, ["B"]]]);
      });
    });
  }

  // -------------------------------------------------------------------------
  describe("volatile (EXTRA broadcast with volatile)", () => {
    it("polling: a volatile event is dropped while no GET is pending; a normal one is queued", async () => {
      const c = await RawConn.open(server, "polling", { manualPoll: true });
      await c.send("40");
      await c.poll(); // CONNECT reply and auth (maybe in two GETs)
      while (c.queue.length < 2) await c.poll();
      const sid = JSON.parse(c.queue[0].slice(2)).sid;
      c.queue.length = 0;
      // No GET is pending now: the volatile one must be dropped.
      await c.send([
        `42${JSON.stringify(["broadcast", { event: "v", to: sid, volatile: true }, 1])}`,
        `42${JSON.stringify(["broadcast", { event: "n", to: sid }, 2])}`,
      ]);
      const deadline = Date.now() + WAIT_MS;
      while (!c.queue.includes('42["n",2]') && Date.now() < deadline) await c.poll();
      assert.ok(c.queue.includes('42["n",2]'), `the normal event must arrive, got ${c.queue.map(describePacket)}`);
      assert.ok(!c.queue.includes('42["v",1]'), "the volatile event must be dropped");
    });

    it("polling: a volatile event is delivered while a GET is pending", async () => {
      const c = await RawConn.open(server, "polling", { manualPoll: true });
      await c.send("40");
      while (c.queue.length < 2) await c.poll();
      const sid = JSON.parse(c.queue[0].slice(2)).sid;
      c.queue.length = 0;
      const pending = c.poll();
      // No event tells the client that the server holds the GET (what makes
      // the socket writable): a pause, scaled.
      await h.sleep(h.ms(100));
      await c.send(`42${JSON.stringify(["broadcast", { event: "v", to: sid, volatile: true }, 1])}`);
      await pending;
      const deadline = Date.now() + h.ms(1000);
      while (!c.queue.includes('42["v",1]') && Date.now() < deadline && c.queue.length === 0) await c.poll();
      assert.ok(c.queue.includes('42["v",1]'), `the volatile event must arrive, got ${c.queue.map(describePacket)}`);
    });

    it("websocket: a volatile event reaches an idle connection", async () => {
      const c = await RawConn.open(server, "websocket");
      const sid = JSON.parse((await c.sioConnect("/")).slice(2)).sid;
      await c.next(); // auth
      // Until the auth event's write has drained the socket is not writable
      // and a volatile event is dropped; nothing tells the client: a scaled pause.
      await h.sleep(h.ms(50));
      await c.send(`42${JSON.stringify(["broadcast", { event: "v", to: sid, volatile: true }, 1])}`);
      assert.equal(await c.next(), '42["v",1]');
    });
  });

  // -------------------------------------------------------------------------
  describe("disconnect reasons seen by the server (EXTRA disconnect-reason)", () => {
    async function reasonOf(sid) {
      const w = await RawConn.open(server, "websocket");
      await w.sioInit();
      const deadline = Date.now() + WAIT_MS;
      for (let i = 1; ; i++) {
        await w.send(`42${i}${JSON.stringify(["disconnect-reason", sid])}`);
        const r = parseSio(await w.next());
        assert.equal(r.type, 3);
        if (r.data[0] !== null || Date.now() > deadline) {
          w.close();
          return r.data[0];
        }
        await h.sleep(50);
      }
    }

    async function connected(transport, opts) {
      const c = await RawConn.open(server, transport, opts);
      const sid = JSON.parse((await c.sioConnect("/")).slice(2)).sid;
      await c.next(); // auth
      return [c, sid];
    }

    it("client namespace disconnect (41)", async () => {
      const [c, sid] = await connected("websocket");
      await c.send("41");
      assert.equal(await reasonOf(sid), "client namespace disconnect");
    });

    it("server namespace disconnect (disconnect-me)", async () => {
      const [c, sid] = await connected("websocket");
      await c.send('42["disconnect-me"]');
      await c.next();
      assert.equal(await reasonOf(sid), "server namespace disconnect");
    });

    it("transport close (the websocket goes away)", async () => {
      const [c, sid] = await connected("websocket");
      c.ws.terminate();
      assert.equal(await reasonOf(sid), "transport close");
    });

    it("client close packet (Engine.IO 1) on polling gives transport close", async () => {
      const [c, sid] = await connected("polling");
      c.stopPolling = true;
      await c.send("1", { check: false });
      assert.equal(await reasonOf(sid), "transport close");
    });

    it("ping timeout", async () => {
      const [c, sid] = await connected("websocket", { autoPong: false });
      await c.expectClosed(2000, "a close on ping timeout");
      assert.equal(await reasonOf(sid), "ping timeout");
    });

    it("parse error closes with a reason the server reports", async () => {
      const [c, sid] = await connected("websocket");
      await c.send("4abc", { check: false });
      await c.expectClosed();
      const reason = await reasonOf(sid);
      assert.equal(typeof reason, "string", "a reason must be recorded");
    });
  });

  // -------------------------------------------------------------------------
  describe("handshake data (EXTRA handshake)", () => {
    for (const transport of TRANSPORTS) {
      it(`${transport}: auth, query (EIO, transport, custom), headers and address`, async () => {
        // A custom query parameter and header need our own handshake request.
        let c;
        if (transport === "websocket") {
          c = new RawConn(server, "websocket", {});
          all.add(c);
          const ws = new WebSocket(`${server.wsUrl}/socket.io/?EIO=4&transport=websocket&foo=bar`, {
            headers: { "X-Test-Header": "hello" },
          });
          c.ws = ws;
          ws.on("message", (d, bin) => c._onPacket(bin ? Buffer.from(d) : d.toString()));
          ws.on("error", () => {});
          ws.on("close", () => c._markClosed("websocket closed"));
          c._onHandshake(await c.next());
        } else {
          c = new RawConn(server, "polling", {});
          all.add(c);
          const res = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling&foo=bar`, {
            headers: { "X-Test-Header": "hello" },
          });
          c._onHandshake(await res.text());
          c._pollLoop();
        }
        await c.send('40{"user":"ann","n":[1,2]}');
        await c.next();
        assert.equal(await c.next(), '42["auth",{"user":"ann","n":[1,2]}]');
        await c.send('423["handshake"]');
        const r = parseSio(await c.next());
        assert.equal(r.id, 3);
        const hs = r.data[0];
        assert.deepEqual(hs.auth, { user: "ann", n: [1, 2] });
        assert.equal(hs.query.EIO, "4");
        assert.equal(hs.query.transport, transport);
        assert.equal(hs.query.foo, "bar");
        assert.equal(hs.headers["x-test-header"], "hello");
        assert.match(String(hs.headers.host), /^127\.0\.0\.1:\d+$/);
        assert.match(String(hs.address), /127\.0\.0\.1/);
      });
    }
  });
});

// ---------------------------------------------------------------------------
// socket.io-msgpack-parser on the wire: each Socket.IO packet is one binary
// Engine.IO message, a msgpack map {type, nsp, data, id}; binary arguments
// are msgpack bin values inside it (no attachments).

describe("Socket.IO protocol with the msgpack parser (raw)", () => {
  let server;

  before(async () => {
    server = await startSocketioServer(["--parser", "msgpack"]);
  });

  afterEach(() => closeAll());

  after(async () => {
    closeAll();
    if (server) await server.stop();
  });

  for (const transport of TRANSPORTS) {
    describe(transport, () => {
      async function init(auth) {
        const c = await RawConn.open(server, transport);
        const connect = { type: 0, nsp: "/" };
        if (auth !== undefined) connect.data = auth;
        await c.sendMsgpack(connect);
        const reply = await c.nextMsgpack();
        assert.equal(reply.type, 0);
        assert.equal(reply.nsp, "/");
        // Node's msgpack encoder also writes the key "pid" with the value
        // undefined (msgpack fixext 0 / nil) when recovery is off.
        assert.deepEqual(Object.keys(reply.data).filter((k) => reply.data[k] != null), ["sid"]);
        assert.equal(typeof reply.data.sid, "string");
        const authEv = await c.nextMsgpack();
        assert.equal(authEv.type, 2);
        assert.equal(authEv.nsp, "/");
        assert.deepEqual(authEv.data, ["auth", auth === undefined ? {} : auth]);
        return c;
      }

      it("connects to / with and without auth", async () => {
        await init();
        await init({ token: "123" });
      });

      it("connects to /custom with auth; refuses an unknown namespace", async () => {
        const c = await RawConn.open(server, transport);
        await c.sendMsgpack({ type: 0, nsp: "/custom", data: { token: "abc" } });
        const reply = await c.nextMsgpack();
        assert.equal(reply.type, 0);
        assert.equal(reply.nsp, "/custom");
        assert.equal(typeof reply.data.sid, "string");
        assert.deepEqual(await c.nextMsgpack(), { type: 2, nsp: "/custom", data: ["auth", { token: "abc" }] });
        await c.sendMsgpack({ type: 0, nsp: "/random" });
        const err = await c.nextMsgpack();
        assert.equal(err.type, 4);
        assert.equal(err.nsp, "/random");
        assert.deepEqual(err.data, { message: "Invalid namespace" });
      });

      it("event, binary event and ack", async () => {
        const c = await init();
        await c.sendMsgpack({ type: 2, nsp: "/", data: ["message", 1, "2", { 3: [true] }] });
        const back = await c.nextMsgpack();
        assert.equal(back.type, 2);
        assert.deepEqual(back.data, ["message-back", 1, "2", { 3: [true] }]);
        await c.sendMsgpack({ type: 2, nsp: "/", data: ["message", Buffer.from([1, 2, 3]), { b: Buffer.from([4]) }] });
        const bback = await c.nextMsgpack();
        assert.equal(bback.data[0], "message-back");
        assert.deepEqual(Buffer.from(bback.data[1]), Buffer.from([1, 2, 3]));
        assert.deepEqual(Buffer.from(bback.data[2].b), Buffer.from([4]));
        await c.sendMsgpack({ type: 2, nsp: "/", id: 456, data: ["message-with-ack", 1, "2", Buffer.from([7])] });
        const ack = await c.nextMsgpack();
        assert.equal(ack.type, 3);
        assert.equal(ack.id, 456);
        assert.equal(ack.nsp, "/");
        assert.equal(ack.data[0], 1);
        assert.equal(ack.data[1], "2");
        assert.deepEqual(Buffer.from(ack.data[2]), Buffer.from([7]));
      });

      it("server to client ack with timeout", async () => {
        const c = await init();
        await c.sendMsgpack({ type: 2, nsp: "/", id: 3, data: ["request-ack", { event: "ask", args: [1], timeout: 200 }] });
        const q = await c.nextMsgpack();
        assert.equal(q.type, 2);
        assert.deepEqual(q.data, ["ask", 1]);
        assert.equal(typeof q.id, "number");
        const r = await c.nextMsgpack();
        assert.equal(r.type, 3);
        assert.equal(r.id, 3);
        assert.equal(typeof r.data[0].error, "string");
        await c.sendMsgpack({ type: 2, nsp: "/", id: 4, data: ["request-ack", { event: "ask", args: [2] }] });
        const q2 = await c.nextMsgpack();
        await c.sendMsgpack({ type: 3, nsp: "/", id: q2.id, data: ["yes"] });
        const r2 = await c.nextMsgpack();
        assert.equal(r2.id, 4);
        assert.deepEqual(r2.data, [{ error: null, responses: ["yes"] }]);
      });

      it("disconnect from / (type 1) keeps the connection; a later event for / closes it", async () => {
        const c = await init();
        await c.sendMsgpack({ type: 1, nsp: "/" });
        await c.nextPing(h.ms(2000));
        assert.deepEqual(c.queue, []);
        await c.sendMsgpack({ type: 2, nsp: "/", data: ["message", "x"] }, { check: false });
        await c.expectClosed();
      });

      const invalid = [
        ["an unknown packet type", { type: 9, nsp: "/", data: [] }],
        ["a missing namespace", { type: 2, data: ["message"] }],
        ["an event whose data is not an array", { type: 2, nsp: "/", data: { a: 1 } }],
        ["a CONNECT whose data is not an object", { type: 0, nsp: "/custom", data: "x" }],
      ];
      for (const [name, packet] of invalid) {
        it(`closes the connection upon ${name}`, async () => {
          const c = await init();
          await c.sendMsgpack(packet, { check: false });
          await c.expectClosed();
        });
      }

      it("closes the connection upon bytes that are not msgpack", async () => {
        const c = await init();
        await c.send(Buffer.from([0xc1, 0xc1, 0xc1]), { check: false });
        await c.expectClosed();
      });
    });
  }
});
