// Engine.IO v4 protocol acceptance tests, spoken raw (fetch for HTTP
// long-polling, the `ws` package for WebSocket) against the conformance
// server: path /engine.io/, pingInterval 300, pingTimeout 200, maxPayload
// 1000000, CORS "*", every message echoed back to its socket.
//
// They cover what the official Engine.IO protocol test suite checks, plus the
// error bodies, CORS headers, heartbeat and upgrade corner cases the Node.js
// server has. Timings are lower bounds or generous deadlines only, so a
// loaded machine or a sanitizer build makes them slower, not flaky.
//
// Run against our server (default: $SPACES_BUILD_DIR/conformance-engineio,
// or build/debug/conformance-engineio):
//   node --test tests/e2e/engineio_protocol.test.js
// Run against the reference Node.js server:
//   SPACES_ENGINEIO_SERVER=reference node --test tests/e2e/engineio_protocol.test.js
// Other knobs (see tests/lib/harness.js): SPACES_ENGINEIO_SERVER="<command>",
// SPACES_ENGINEIO_URL=http://127.0.0.1:3000 (a server already running),
// SPACES_TEST_VERBOSE=1 (copy the server's stderr).
"use strict";

const { describe, it: baseIt, before, after } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const WebSocket = require(path.join(__dirname, "..", "node_modules", "ws"));
const harness = require("../lib/harness.js");

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const MAX_PAYLOAD = 1000000;
const SEP = "\x1e";

// Deadlines: how long we wait for something that should happen quickly.
const HTTP_TIMEOUT_MS = 20000;
const WAIT_MS = 10000;
const TEST_OPTS = { timeout: 60000 };

const sleep = harness.sleep;

let server;

before(async () => {
  server = await harness.startEngineioServer();
});

after(async () => {
  if (server) await server.stop();
});

// ---------------------------------------------------------------------------
// HTTP helpers

/** The Engine.IO URL with a raw query string (no EIO added). */
function rawUrl(query) {
  return `${server.url}/engine.io/?${query}`;
}

/** The Engine.IO URL for EIO=4 plus the given parameters. */
function eioUrl(params = {}) {
  const qs = new URLSearchParams({ EIO: "4", ...params });
  return `${server.url}/engine.io/?${qs}`;
}

function wsUrl(params = {}) {
  return eioUrl({ transport: "websocket", ...params }).replace(/^http/, "ws");
}

/** fetch with a deadline; resolves { status, headers, text }. */
async function request(url, { method = "GET", body, headers } = {}) {
  const res = await fetch(url, {
    method,
    body,
    headers,
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text };
}

/** Like request(), but a connection the server drops resolves { error }. */
async function requestOrDrop(url, options) {
  try {
    return await request(url, options);
  } catch (error) {
    if (error.name === "TimeoutError") throw error;
    return { status: null, error };
  }
}

/** The error for a session that ended while the test still needed it. */
function sessionLost(what) {
  const e = new Error(`session lost: ${what}`);
  e.sessionLost = true;
  return e;
}

/**
 * Every test runs up to three times while it fails only because a session
 * it still needed was closed under it: with pingInterval 300 and pingTimeout
 * 200, a heavily loaded machine can be late with a pong. Any other failure,
 * and a third lost session, fail the test.
 */
function it(name, options, fn) {
  baseIt(name, options, async (t) => {
    const reasons = [];
    for (let i = 0; i < 3; i++) {
      try {
        return await fn();
      } catch (e) {
        if (!e.sessionLost) throw e;
        reasons.push(e.message);
        t.diagnostic(`attempt ${i + 1}: ${e.message}`);
      }
    }
    throw new Error(`the session was lost in every attempt: ${reasons.join("; ")}`);
  });
}

/** A request on a live session must succeed (200). */
function assertOk(res) {
  if (res.status === 400 && /"code":1\b/.test(res.text)) throw sessionLost(res.text);
  assert.equal(res.status, 200, `expected 200, got ${res.status}: ${res.text}`);
}

/** Checks an Engine.IO error response: 400 and a JSON {code, message}. */
function assertErrorResponse(res, code, message) {
  assert.equal(res.status, 400, `expected 400, got ${res.status}: ${res.text}`);
  let body;
  try {
    body = JSON.parse(res.text);
  } catch (e) {
    assert.fail(`error body is not JSON: ${JSON.stringify(res.text)}`);
  }
  assert.equal(typeof body.code, "number", `no numeric code in ${res.text}`);
  assert.equal(typeof body.message, "string", `no message in ${res.text}`);
  if (code !== undefined) assert.equal(body.code, code, `body ${res.text}`);
  if (message !== undefined) assert.equal(body.message, message, `body ${res.text}`);
}

/** Checks an open packet ("0" + JSON) and returns its parsed value. */
function assertOpenPacket(text, upgrades) {
  assert.equal(typeof text, "string", "open packet must be text");
  assert.equal(text[0], "0", `open packet must start with 0: ${text}`);
  const value = JSON.parse(text.substring(1));
  assert.deepEqual(Object.keys(value).sort(), [
    "maxPayload",
    "pingInterval",
    "pingTimeout",
    "sid",
    "upgrades",
  ]);
  assert.equal(typeof value.sid, "string");
  assert.ok(value.sid.length > 0, "sid must not be empty");
  assert.deepEqual(value.upgrades, upgrades);
  assert.equal(value.pingInterval, PING_INTERVAL);
  assert.equal(value.pingTimeout, PING_TIMEOUT);
  assert.equal(value.maxPayload, MAX_PAYLOAD);
  return value;
}

/**
 * A long-polling session driven by hand. receive() answers the server's
 * pings so that a slow machine does not lose the session between steps.
 */
class PollingSession {
  static async open() {
    const res = await request(eioUrl({ transport: "polling" }));
    assert.equal(res.status, 200, `handshake: ${res.status} ${res.text}`);
    const open = assertOpenPacket(res.text, ["websocket"]);
    return new PollingSession(open.sid, res);
  }

  constructor(sid, handshake) {
    this.sid = sid;
    this.handshake = handshake;
    this.pings = 0;
  }

  url(extra = {}) {
    return eioUrl({ transport: "polling", sid: this.sid, ...extra });
  }

  get(extra) {
    return request(this.url(extra));
  }

  post(body, extra) {
    return request(this.url(extra), { method: "POST", body });
  }

  async pong() {
    const res = await this.post("3");
    assertOk(res);
  }

  /**
   * GETs until `count` packets other than pings have arrived (pings are
   * answered with pongs) and returns those packets in order. Every GET must
   * succeed with 200.
   */
  async receive(count, { deadlineMs = WAIT_MS } = {}) {
    const packets = [];
    const deadline = Date.now() + deadlineMs;
    while (packets.length < count) {
      assert.ok(Date.now() < deadline, `only ${packets.length}/${count} packets arrived`);
      const res = await this.get();
      assertOk(res);
      for (const p of res.text.split(SEP)) {
        if (p === "2") {
          this.pings++;
          await this.pong();
        } else {
          packets.push(p);
        }
      }
    }
    return packets;
  }
}

// ---------------------------------------------------------------------------
// WebSocket helper

/**
 * A raw WebSocket with a message queue. Text frames arrive as strings,
 * binary frames as Buffers. With autoPong, server pings ("2") are answered
 * with "3" and kept out of the queue.
 */
class WsClient {
  constructor(url, { autoPong = true } = {}) {
    this.autoPong = autoPong;
    this.queue = [];
    this.waiters = [];
    this.pings = 0;
    this.httpStatus = null;
    this.messagesSeen = 0;
    this.closeInfo = null;
    this.ws = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", resolve);
      this._rejectOpen = reject;
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      this._resolveClosed = resolve;
    });
    this.ws.once("close", (code, reason) => this._onClosed(code, reason.toString()));
    this.ws.on("unexpected-response", (req, res) => {
      // An HTTP answer instead of 101: the connection attempt is over.
      this.httpStatus = res.statusCode;
      req.destroy();
      this._onClosed(1006, "");
    });
    this.ws.on("error", (err) => {
      this.lastError = err;
    });
    this.ws.on("message", (data, isBinary) => {
      this.messagesSeen++;
      const msg = isBinary ? Buffer.from(data) : data.toString("utf8");
      if (this.autoPong && msg === "2") {
        this.pings++;
        if (this.ws.readyState === WebSocket.OPEN) this.ws.send("3");
        return;
      }
      const w = this.waiters.shift();
      if (w) w.resolve(msg);
      else this.queue.push(msg);
    });
  }

  _onClosed(code, reason) {
    if (this.closeInfo) return;
    this.closeInfo = { code, reason, httpStatus: this.httpStatus };
    this._rejectOpen(new Error(`closed before open (${code}, HTTP ${this.httpStatus})`));
    for (const w of this.waiters.splice(0)) w.reject(sessionLost(`socket closed (${code})`));
    this._resolveClosed(this.closeInfo);
  }

  /** Opens a fresh WebSocket-only session; resolves [client, openValue]. */
  static async session(options) {
    const c = new WsClient(wsUrl(), options);
    const first = await c.next();
    return [c, assertOpenPacket(first, [])];
  }

  send(data) {
    this.ws.send(data);
  }

  /** The next message; rejects if the socket closes or nothing comes. */
  next(timeoutMs = WAIT_MS) {
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift());
    if (this.closeInfo)
      return Promise.reject(sessionLost(`socket closed (${this.closeInfo.code})`));
    return new Promise((resolve, reject) => {
      const w = {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`no message within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Resolves the close info, or rejects if the socket stays open. */
  async waitClose(timeoutMs = WAIT_MS) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`socket still open after ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  close() {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.terminate();
    }
  }
}

/**
 * Asserts that a WebSocket connection attempt is refused: either an HTTP
 * error status instead of 101, or a connection closed before any Engine.IO
 * packet arrived. With `status`, an HTTP response with that status is
 * required.
 */
async function assertWsRefused(url, { status } = {}) {
  const c = new WsClient(url, { autoPong: false });
  try {
    const info = await c.waitClose();
    if (status !== undefined) {
      assert.equal(
        info.httpStatus,
        status,
        `expected HTTP ${status}, close info ${JSON.stringify(info)}`,
      );
    } else if (info.httpStatus === null) {
      assert.equal(c.messagesSeen, 0, `the refused WebSocket received ${JSON.stringify(c.queue)}`);
    } else {
      assert.ok(info.httpStatus >= 400, `HTTP ${info.httpStatus}`);
    }
  } finally {
    c.close();
  }
}

/**
 * Asserts what the reference server does with a WebSocket for a sid that is
 * already upgraded or upgrading: the WebSocket handshake completes (101),
 * then the server closes that socket at once, without an Engine.IO packet.
 */
async function assertWsOpenedThenClosed(url) {
  const c = new WsClient(url, { autoPong: false });
  try {
    let opened = false;
    c.ws.once("open", () => {
      opened = true;
    });
    const info = await c.waitClose();
    assert.equal(info.httpStatus, null, `answered HTTP ${info.httpStatus} instead of 101`);
    assert.ok(opened, `the WebSocket never opened: ${JSON.stringify(info)}`);
    assert.equal(c.messagesSeen, 0, `the closed WebSocket received ${JSON.stringify(c.queue)}`);
  } finally {
    c.close();
  }
}

/** Starts an upgrade of a polling session: probe sent, 3probe received. */
async function startUpgrade(session) {
  const ws = new WsClient(wsUrl({ sid: session.sid }));
  await ws.opened;
  ws.send("2probe");
  assert.equal(await ws.next(), "3probe");
  return ws;
}

/** Upgrades a polling session completely and proves it with an echo. */
async function upgrade(session) {
  const ws = await startUpgrade(session);
  ws.send("5");
  // Frames are ordered: once this echo is back, "5" has been processed.
  ws.send("4upgraded");
  assert.equal(await ws.next(), "4upgraded");
  return ws;
}

// ---------------------------------------------------------------------------

describe("handshake", () => {
  describe("HTTP long-polling", () => {
    it("opens a session with the configured parameters", TEST_OPTS, async () => {
      const res = await request(eioUrl({ transport: "polling" }));
      assert.equal(res.status, 200);
      assertOpenPacket(res.text, ["websocket"]);
    });

    it("gives every session its own sid", TEST_OPTS, async () => {
      const sids = new Set();
      for (let i = 0; i < 10; i++) sids.add((await PollingSession.open()).sid);
      assert.equal(sids.size, 10);
    });

    it("fails with an invalid or unsupported EIO parameter", TEST_OPTS, async () => {
      for (const q of [
        "transport=polling",
        "EIO=abc&transport=polling",
        "EIO=3&transport=polling",
        "EIO=5&transport=polling",
      ]) {
        const res = await request(rawUrl(q));
        assert.equal(res.status, 400, `${q}: ${res.status} ${res.text}`);
        assertErrorResponse(res, 5, "Unsupported protocol version");
      }
    });

    it("fails with a missing or unknown transport", TEST_OPTS, async () => {
      for (const q of ["EIO=4", "EIO=4&transport=abc", "EIO=4&transport=constructor"]) {
        const res = await request(rawUrl(q));
        assertErrorResponse(res, 0, "Transport unknown");
      }
    });

    it("fails with an invalid request method", TEST_OPTS, async () => {
      for (const method of ["POST", "PUT"]) {
        const res = await request(eioUrl({ transport: "polling" }), { method, body: "" });
        assertErrorResponse(res, 2, "Bad handshake method");
      }
    });

    it("fails with an unknown sid", TEST_OPTS, async () => {
      const get = await request(eioUrl({ transport: "polling", sid: "no-such-sid" }));
      assertErrorResponse(get, 1, "Session ID unknown");
      const post = await request(eioUrl({ transport: "polling", sid: "no-such-sid" }), {
        method: "POST",
        body: "4hello",
      });
      assertErrorResponse(post, 1, "Session ID unknown");
    });

    it("refuses a plain HTTP request for the websocket transport", TEST_OPTS, async () => {
      const res = await request(eioUrl({ transport: "websocket" }));
      assertErrorResponse(res, 3, "Bad request");
    });

    it("sends CORS headers allowing any origin", TEST_OPTS, async () => {
      const origin = { Origin: "http://example.com" };
      const hs = await request(eioUrl({ transport: "polling" }), { headers: origin });
      assert.equal(hs.status, 200);
      assert.equal(hs.headers.get("access-control-allow-origin"), "*");
      const sid = JSON.parse(hs.text.substring(1)).sid;

      const post = await request(eioUrl({ transport: "polling", sid }), {
        method: "POST",
        body: "4cors",
        headers: origin,
      });
      assertOk(post);
      assert.equal(post.headers.get("access-control-allow-origin"), "*");

      const bad = await request(eioUrl({ transport: "polling", sid: "nope" }), { headers: origin });
      assert.equal(bad.status, 400);
      assert.equal(bad.headers.get("access-control-allow-origin"), "*");

      const preflight = await request(eioUrl({ transport: "polling", sid }), {
        method: "OPTIONS",
        headers: { ...origin, "Access-Control-Request-Method": "POST" },
      });
      assert.ok([200, 204].includes(preflight.status), `preflight status ${preflight.status}`);
      assert.equal(preflight.headers.get("access-control-allow-origin"), "*");
      const methods = preflight.headers.get("access-control-allow-methods") || "";
      assert.match(methods, /POST/, `allow-methods: ${methods}`);
      assert.match(methods, /GET/, `allow-methods: ${methods}`);
    });
  });

  describe("WebSocket", () => {
    it("opens a session with the configured parameters", TEST_OPTS, async () => {
      const [c] = await WsClient.session();
      c.close();
    });

    it("refuses an invalid or unsupported EIO parameter", TEST_OPTS, async () => {
      for (const q of [
        "transport=websocket",
        "EIO=abc&transport=websocket",
        "EIO=3&transport=websocket",
      ]) {
        await assertWsRefused(rawUrl(q).replace(/^http/, "ws"));
      }
    });

    it("refuses a missing or unknown transport", TEST_OPTS, async () => {
      for (const q of ["EIO=4", "EIO=4&transport=abc"]) {
        await assertWsRefused(rawUrl(q).replace(/^http/, "ws"));
      }
    });

    it("refuses an unknown sid with HTTP 400", TEST_OPTS, async () => {
      await assertWsRefused(wsUrl({ sid: "no-such-sid" }), { status: 400 });
    });
  });
});

describe("message", () => {
  describe("HTTP long-polling", () => {
    it("sends and receives a payload containing one text packet", TEST_OPTS, async () => {
      const s = await PollingSession.open();
      const push = await s.post("4hello");
      assertOk(push);
      assert.equal(push.text, "ok");
      assert.deepEqual(await s.receive(1), ["4hello"]);
    });

    it("sends and receives a payload containing several text packets", TEST_OPTS, async () => {
      const s = await PollingSession.open();
      const push = await s.post(["4test1", "4test2", "4test3"].join(SEP));
      assertOk(push);
      assert.equal(push.text, "ok");
      // Echoes queued while no GET was waiting leave together in one payload.
      const res = await s.get();
      assertOk(res);
      const packets = res.text.split(SEP).filter((p) => p !== "2");
      assert.deepEqual(packets, ["4test1", "4test2", "4test3"]);
    });

    it("answers a poll with at most 16 packets and keeps the rest in order", TEST_OPTS, async () => {
      // python-engineio 4.x refuses payloads of more than 16 packets, so our
      // server splits longer queues over several polls (the reference sends
      // them all at once; only the order is checked against it).
      const ours = !process.env.SPACES_ENGINEIO_SERVER && !process.env.SPACES_ENGINEIO_URL;
      const s = await PollingSession.open();
      const sent = Array.from({ length: 40 }, (_, i) => `4m${i}`);
      assertOk(await s.post(sent.join(SEP)));
      const got = [];
      const deadline = Date.now() + WAIT_MS;
      while (got.length < sent.length) {
        assert.ok(Date.now() < deadline, `only ${got.length}/${sent.length} packets arrived`);
        const res = await s.get();
        assertOk(res);
        const packets = res.text.split(SEP);
        if (ours) assert.ok(packets.length <= 16, `${packets.length} packets in one answer`);
        for (const p of packets) {
          if (p === "2") await s.pong();
          else got.push(p);
        }
      }
      assert.deepEqual(got, sent);
    });

    it("sends and receives text and base64 binary packets", TEST_OPTS, async () => {
      const s = await PollingSession.open();
      const push = await s.post(`4hello${SEP}bAQIDBA==`);
      assertOk(push);
      assert.equal(push.text, "ok");
      assert.deepEqual(await s.receive(2), ["4hello", "bAQIDBA=="]);
    });

    it("keeps UTF-8 text and empty messages intact", TEST_OPTS, async () => {
      const s = await PollingSession.open();
      const text = "4h\u00e9llo w\u00f6rld \u20ac \u{1f600} \u4e2d\u6587";
      const push = await s.post([text, "4", "bAA==", "b"].join(SEP));
      assertOk(push);
      assert.deepEqual(await s.receive(4), [text, "4", "bAA==", "b"]);
    });

    it("answers a waiting GET as soon as a message arrives", TEST_OPTS, async () => {
      const s = await PollingSession.open();
      for (let round = 0; round < 3; round++) {
        const pending = s.get();
        await sleep(50);
        const push = await s.post(`4late${round}`);
        assertOk(push);
        let res = await pending;
        assertOk(res);
        let packets = res.text.split(SEP);
        // A ping may have taken the waiting GET first on a slow machine.
        if (packets.every((p) => p === "2")) {
          await s.pong();
          packets = await s.receive(1);
        } else if (packets.includes("2")) {
          await s.pong();
        }
        assert.deepEqual(
          packets.filter((p) => p !== "2"),
          [`4late${round}`],
        );
      }
    });

    it("closes the session upon an invalid packet", TEST_OPTS, async () => {
      for (const body of ["abc", "4ok\x1exyz"]) {
        const s = await PollingSession.open();
        // The Node.js server answers 200 "ok" and closes the session; 400 or
        // a dropped connection are fine too.
        const push = await requestOrDrop(s.url(), { method: "POST", body });
        if (push.status !== null) {
          assert.ok(
            [200, 400].includes(push.status),
            `POST ${JSON.stringify(body)}: ${push.status}`,
          );
        }
        // The session is gone: the next poll is refused (a poll that was
        // already answered with a close packet is fine as well).
        let res = await s.get();
        if (res.status === 200) {
          assert.equal(res.text.split(SEP).pop(), "1", `poll after invalid packet: ${res.text}`);
          res = await s.get();
        }
        assertErrorResponse(res, 1, "Session ID unknown");
      }
    });

    it("closes the session upon duplicate concurrent poll requests", TEST_OPTS, async () => {
      for (let attempt = 0; ; attempt++) {
        assert.ok(attempt < 5, "could not get two polls to overlap");
        const s = await PollingSession.open();
        let firstDone = false;
        const first = s.get().finally(() => {
          firstDone = true;
        });
        await sleep(50);
        if (firstDone) {
          // A ping answered the first poll before the second was sent.
          await first;
          continue;
        }
        const second = await requestOrDrop(s.url({ t: "burst" }));
        const firstRes = await first;
        if (firstRes.text === "2") continue; // the ping raced us
        assertOk(firstRes);
        assert.equal(firstRes.text.split(SEP).pop(), "1", `first poll: ${firstRes.text}`);
        if (second.status !== null) {
          assert.ok([400, 500].includes(second.status), `second poll: ${second.status}`);
        }
        const after = await s.get();
        assertErrorResponse(after, 1, "Session ID unknown");
        return;
      }
    });
  });

  describe("WebSocket", () => {
    it("sends and receives a text packet", TEST_OPTS, async () => {
      const [c] = await WsClient.session();
      c.send("4hello");
      assert.equal(await c.next(), "4hello");
      c.close();
    });

    it("sends and receives a binary packet", TEST_OPTS, async () => {
      const [c] = await WsClient.session();
      c.send(Uint8Array.from([1, 2, 3, 4]));
      const data = await c.next();
      assert.ok(Buffer.isBuffer(data), `expected a binary frame, got ${JSON.stringify(data)}`);
      assert.deepEqual([...data], [1, 2, 3, 4]);
      c.close();
    });

    it("echoes many text and binary packets in order", TEST_OPTS, async () => {
      const [c] = await WsClient.session();
      const sent = [];
      for (let i = 0; i < 200; i++) {
        if (i % 3 === 0) {
          const b = Buffer.from([i & 0xff, (i >> 8) & 0xff, 0, 255]);
          sent.push(b);
          c.send(b);
        } else {
          const t = `4msg-${i}-\u00e9\u{1f600}`;
          sent.push(t);
          c.send(t);
        }
      }
      c.send("4");
      sent.push("4");
      for (const expected of sent) {
        const got = await c.next();
        if (Buffer.isBuffer(expected)) {
          assert.ok(Buffer.isBuffer(got), `expected binary, got ${JSON.stringify(got)}`);
          assert.deepEqual([...got], [...expected]);
        } else {
          assert.equal(got, expected);
        }
      }
      c.close();
    });

    it("closes the session upon an invalid packet", TEST_OPTS, async () => {
      const [c] = await WsClient.session();
      c.send("abc");
      await c.waitClose();
    });
  });
});

describe("heartbeat", () => {
  describe("HTTP long-polling", () => {
    it("sends pings that the client answers with pongs", TEST_OPTS, async () => {
      const s = await PollingSession.open();
      const start = Date.now();
      for (let i = 0; i < 3; i++) {
        const res = await s.get();
        assertOk(res);
        assert.equal(res.text, "2");
        if (i === 0) {
          const elapsed = Date.now() - start;
          assert.ok(elapsed >= PING_INTERVAL - 100, `first ping after ${elapsed} ms`);
        }
        const push = await s.post("3");
        assertOk(push);
        assert.equal(push.text, "ok");
      }
      const elapsed = Date.now() - start;
      assert.ok(elapsed >= 3 * PING_INTERVAL - 150, `three pings in ${elapsed} ms`);
    });

    it("keeps a session whose pings are answered", TEST_OPTS, async () => {
      const s = await PollingSession.open();
      const end = Date.now() + 6 * PING_INTERVAL;
      while (Date.now() < end) {
        const res = await s.get();
        assertOk(res);
        for (const p of res.text.split(SEP)) if (p === "2") await s.pong();
      }
      const push = await s.post("4still-here");
      assertOk(push);
      assert.deepEqual(await s.receive(1), ["4still-here"]);
    });

    it("closes the session upon ping timeout", TEST_OPTS, async () => {
      const s = await PollingSession.open();
      // Nobody polls, so no pong can come: the session must be gone after
      // pingInterval + pingTimeout (waited for generously).
      await sleep(3 * (PING_INTERVAL + PING_TIMEOUT));
      const res = await s.get();
      if (res.status === 200) {
        assert.equal(res.text.split(SEP).pop(), "1", `poll after timeout: ${res.text}`);
        assertErrorResponse(await s.get(), 1, "Session ID unknown");
      } else {
        assertErrorResponse(res, 1, "Session ID unknown");
      }
    });

    it("answers a waiting poll when the session times out", TEST_OPTS, async () => {
      const s = await PollingSession.open();
      // The first poll returns the ping; the client never answers it and
      // polls again: that poll must not hang past the timeout.
      const first = await s.get();
      assertOk(first);
      assert.equal(first.text, "2");
      const started = Date.now();
      const second = await requestOrDrop(s.url());
      assert.ok(Date.now() - started < HTTP_TIMEOUT_MS);
      if (second.status === 200) {
        assert.equal(second.text.split(SEP).pop(), "1", `waiting poll: ${second.text}`);
      }
      assertErrorResponse(await s.get(), 1, "Session ID unknown");
    });
  });

  describe("WebSocket", () => {
    it("sends pings that the client answers with pongs", TEST_OPTS, async () => {
      const [c] = await WsClient.session({ autoPong: false });
      const start = Date.now();
      for (let i = 0; i < 3; i++) {
        assert.equal(await c.next(), "2");
        if (i === 0) {
          const elapsed = Date.now() - start;
          assert.ok(elapsed >= PING_INTERVAL - 100, `first ping after ${elapsed} ms`);
        }
        c.send("3");
      }
      const elapsed = Date.now() - start;
      assert.ok(elapsed >= 3 * PING_INTERVAL - 150, `three pings in ${elapsed} ms`);
      c.close();
    });

    it("keeps a session whose pings are answered", TEST_OPTS, async () => {
      const [c] = await WsClient.session();
      await sleep(6 * PING_INTERVAL);
      assert.ok(c.pings >= 2, `only ${c.pings} pings in ${6 * PING_INTERVAL} ms`);
      c.send("4still-here");
      assert.equal(await c.next(), "4still-here");
      c.close();
    });

    it("closes the session upon ping timeout", TEST_OPTS, async () => {
      const [c] = await WsClient.session({ autoPong: false });
      assert.equal(await c.next(), "2");
      await c.waitClose();
    });
  });
});

describe("close", () => {
  describe("HTTP long-polling", () => {
    it("forcefully closes the session, releasing the waiting poll", TEST_OPTS, async () => {
      const s = await PollingSession.open();
      let pollDone = false;
      const poll = s.get().finally(() => {
        pollDone = true;
      });
      await sleep(50);
      const push = await s.post("1");
      assertOk(push);
      const res = await poll;
      assertOk(res);
      const packets = res.text.split(SEP).filter((p) => p !== "2");
      // If a ping answered the poll before the close, there is nothing more
      // to check about it; otherwise the close releases it with a noop.
      if (packets.length > 0 || !pollDone) assert.deepEqual(packets, ["6"]);
      assertErrorResponse(await s.get(), 1, "Session ID unknown");
      assertErrorResponse(await s.post("4late"), 1, "Session ID unknown");
    });

    it("closes a session with no waiting poll", TEST_OPTS, async () => {
      const s = await PollingSession.open();
      const push = await s.post("1");
      assertOk(push);
      assertErrorResponse(await s.get(), 1, "Session ID unknown");
    });
  });

  describe("WebSocket", () => {
    it("forcefully closes the session", TEST_OPTS, async () => {
      // Pings are left unanswered, as in the official suite: the Node.js
      // server ignores a close packet over WebSocket and only closes on the
      // ping timeout, while a server that honours "1" closes at once.
      const [c] = await WsClient.session({ autoPong: false });
      c.send("1");
      await c.waitClose();
    });
  });
});

describe("upgrade", () => {
  it("upgrades from HTTP long-polling to WebSocket", TEST_OPTS, async () => {
    const s = await PollingSession.open();
    const ws = new WsClient(wsUrl({ sid: s.sid }));
    await ws.opened;
    ws.send("2probe");
    assert.equal(await ws.next(), "3probe");
    // The poll made during the upgrade is ended with a noop.
    const packets = await s.receive(1);
    assert.deepEqual(packets, ["6"]);
    ws.send("5");
    ws.send("4hello");
    assert.equal(await ws.next(), "4hello");
    ws.send(Buffer.from([9, 8, 7]));
    assert.deepEqual([...(await ws.next())], [9, 8, 7]);
    ws.close();
  });

  it("releases a waiting poll with a noop when the probe arrives", TEST_OPTS, async () => {
    for (let attempt = 0; ; attempt++) {
      assert.ok(attempt < 5, "the waiting poll was always answered by a ping first");
      const s = await PollingSession.open();
      const poll = s.get();
      await sleep(50);
      const ws = new WsClient(wsUrl({ sid: s.sid }));
      await ws.opened;
      ws.send("2probe");
      assert.equal(await ws.next(), "3probe");
      const res = await poll;
      assertOk(res);
      const packets = res.text.split(SEP);
      if (packets.length === 1 && packets[0] === "2") {
        ws.close();
        continue; // a ping took the poll before the probe
      }
      assert.deepEqual(
        packets.filter((p) => p !== "2"),
        ["6"],
      );
      ws.send("5");
      ws.send("4done");
      assert.equal(await ws.next(), "4done");
      ws.close();
      return;
    }
  });

  it("loses no message across the upgrade", TEST_OPTS, async () => {
    const s = await PollingSession.open();
    // The echo of this message is queued on the polling side, not yet read.
    assertOk(await s.post("4before"));
    const ws = new WsClient(wsUrl({ sid: s.sid }));
    await ws.opened;
    ws.send("2probe");
    assert.equal(await ws.next(), "3probe");
    // Poll until the noop: the echo may come before it on the polling side.
    const polled = [];
    while (!polled.includes("6")) polled.push(...(await s.receive(1)));
    ws.send("5");
    ws.send("4after");
    const overWs = [];
    while (!overWs.includes("4after")) overWs.push(await ws.next());
    const all = [...polled, ...overWs].filter((p) => p !== "6");
    assert.deepEqual(all, ["4before", "4after"]);
    ws.close();
  });

  it("refuses HTTP requests with the same sid after the upgrade", TEST_OPTS, async () => {
    const s = await PollingSession.open();
    const ws = await upgrade(s);
    assertErrorResponse(await s.get(), 3, "Bad request");
    assertErrorResponse(await s.post("4polling"), 3, "Bad request");
    ws.send("4hello");
    assert.equal(await ws.next(), "4hello");
    ws.close();
  });

  it("opens and closes a WebSocket with the same sid after the upgrade", TEST_OPTS, async () => {
    const s = await PollingSession.open();
    const ws = await upgrade(s);
    await assertWsOpenedThenClosed(wsUrl({ sid: s.sid }));
    ws.send("4hello");
    assert.equal(await ws.next(), "4hello");
    ws.close();
  });

  it("opens and closes a second WebSocket while an upgrade is in progress", TEST_OPTS, async () => {
    const s = await PollingSession.open();
    const ws = await startUpgrade(s);
    await assertWsOpenedThenClosed(wsUrl({ sid: s.sid }));
    ws.send("5");
    ws.send("4hello");
    assert.equal(await ws.next(), "4hello");
    ws.close();
  });

  it("refuses polling requests for a WebSocket-only sid", TEST_OPTS, async () => {
    const [c, open] = await WsClient.session();
    const poll = await request(eioUrl({ transport: "polling", sid: open.sid }));
    assertErrorResponse(poll, 3, "Bad request");
    const push = await request(eioUrl({ transport: "polling", sid: open.sid }), {
      method: "POST",
      body: "4polling",
    });
    assertErrorResponse(push, 3, "Bad request");
    c.send("4hello");
    assert.equal(await c.next(), "4hello");
    c.close();
  });

  it("refuses an upgrade for an unknown or closed sid", TEST_OPTS, async () => {
    await assertWsRefused(wsUrl({ sid: "no-such-sid" }), { status: 400 });
    const s = await PollingSession.open();
    assertOk(await s.post("1"));
    await assertWsRefused(wsUrl({ sid: s.sid }), { status: 400 });
  });
});

describe("server", () => {
  it("is still running after all of the above", TEST_OPTS, async () => {
    server.assertAlive();
    const s = await PollingSession.open();
    assertOk(await s.post("4bye"));
    assert.deepEqual(await s.receive(1), ["4bye"]);
  });
});
