// The official `engine.io-client` (npm) against the Engine.IO conformance
// server (which echoes every message): text and binary echo, ordering, large
// messages, heartbeats and clean closes, over transports ['polling'],
// ['websocket'] and the default (polling, then an upgrade to WebSocket).
//
// Run against our server (default: $SPACES_BUILD_DIR/conformance-engineio,
// or build/debug/conformance-engineio):
//   node --test tests/e2e/engineio_client.test.js
// Run against the reference Node.js server:
//   SPACES_ENGINEIO_SERVER=reference node --test tests/e2e/engineio_client.test.js
// Other knobs (see tests/lib/harness.js): SPACES_ENGINEIO_SERVER="<command>",
// SPACES_ENGINEIO_URL=http://127.0.0.1:3000, SPACES_TEST_VERBOSE=1.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { Socket } = require(path.join(__dirname, "..", "node_modules", "engine.io-client"));
const harness = require("../lib/harness.js");

const MAX_PAYLOAD = 1000000;
const WAIT_MS = 20000;
const TEST_OPTS = { timeout: 90000 };

let server;

before(async () => {
  server = await harness.startEngineioServer();
});

after(async () => {
  if (server) await server.stop();
});

/** Bytes of whatever binary type the client hands us. */
function bytesOf(data) {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return null;
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** An engine.io-client socket with a message queue. */
class Client {
  constructor(transports) {
    const opts = { path: "/engine.io/" };
    if (transports) opts.transports = transports;
    this.expectUpgrade = !transports;
    this.socket = new Socket(server.url, opts);
    this.queue = [];
    this.waiters = [];
    this.closeReason = null;
    this.upgraded = false;
    this.errors = [];
    // The client gives up when no ping came within pingInterval +
    // pingTimeout (500 ms here), which a loaded machine can miss while the
    // server did nothing wrong. Only the server's own ping timeout is under
    // test, so the client is made patient.
    this.socket.once("open", () => {
      this.socket._pingTimeout = 10000;
    });
    this.opened = withTimeout(
      new Promise((resolve, reject) => {
        this.socket.once("open", resolve);
        this.socket.once("error", reject);
      }),
      WAIT_MS,
      "open",
    );
    this.upgradedPromise = new Promise((resolve) => {
      this.socket.once("upgrade", (transport) => {
        this.upgraded = true;
        resolve(transport.name);
      });
    });
    this.socket.on("error", (e) => this.errors.push(e));
    this.socket.on("message", (data) => {
      const w = this.waiters.shift();
      if (w) w(data);
      else this.queue.push(data);
    });
    this.closed = new Promise((resolve) => {
      this.socket.once("close", (reason, description) => {
        this.closeReason = reason;
        resolve({ reason, description });
      });
    });
  }

  /** Connects and, in the default mode, waits for the upgrade. */
  static async connect(transports) {
    const c = new Client(transports);
    await c.opened;
    if (c.expectUpgrade) {
      const name = await withTimeout(c.upgradedPromise, WAIT_MS, "upgrade");
      assert.equal(name, "websocket");
    }
    return c;
  }

  transportName() {
    return this.socket.transport && this.socket.transport.name;
  }

  send(data) {
    this.socket.send(data);
  }

  next(ms = WAIT_MS) {
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift());
    if (this.closeReason) return Promise.reject(sessionLost(this.closeReason));
    return withTimeout(
      Promise.race([
        new Promise((resolve) => this.waiters.push(resolve)),
        this.closed.then((c) => {
          throw sessionLost(c.reason);
        }),
      ]),
      ms,
      "message",
    );
  }

  async close() {
    if (this.closeReason) throw sessionLost(this.closeReason);
    this.socket.close();
    const { reason } = await withTimeout(this.closed, WAIT_MS, "close");
    // Anything else means the server had ended the session before.
    if (reason !== "forced close") throw sessionLost(reason);
  }
}

/** The error for a session that ended while the test still needed it. */
function sessionLost(reason) {
  const e = new Error(`session closed: ${reason}`);
  e.sessionLost = true;
  return e;
}

/**
 * Runs `attempt` up to three times while it fails only because the session
 * was closed under it (with pingTimeout 200 ms, a heavily loaded machine
 * moving ~1 MB messages can miss a heartbeat). Any other failure, and a
 * third lost session, fail the test.
 */
async function retryOnLostSession(attempt, t) {
  const reasons = [];
  for (let i = 0; i < 3; i++) {
    try {
      return await attempt();
    } catch (e) {
      if (!e.sessionLost) throw e;
      reasons.push(e.message);
      if (t) t.diagnostic(`attempt ${i + 1}: ${e.message}`);
    }
  }
  throw new Error(`the session was lost in every attempt: ${reasons.join("; ")}`);
}

const MODES = [
  { name: "polling only", transports: ["polling"], final: "polling" },
  { name: "websocket only", transports: ["websocket"], final: "websocket" },
  { name: "default (polling, then upgrade)", transports: undefined, final: "websocket" },
];

/** it(), with the test retried while it only loses its session. */
function itWithRetry(name, fn) {
  it(name, TEST_OPTS, (t) => retryOnLostSession(fn, t));
}

for (const mode of MODES) {
  describe(`engine.io-client, ${mode.name}`, () => {
    const it = itWithRetry;
    it("connects on the expected transport", async () => {
      const c = await Client.connect(mode.transports);
      assert.equal(c.transportName(), mode.final);
      assert.equal(c.upgraded, c.expectUpgrade);
      await c.close();
    });

    it("echoes text messages", async () => {
      const c = await Client.connect(mode.transports);
      for (const text of ["hello", "h\u00e9llo \u20ac \u{1f600} \u4e2d\u6587", '{"a":[1,2]}']) {
        c.send(text);
        assert.equal(await c.next(), text);
      }
      // engine.io-parser hands an empty message ("4") over as undefined.
      c.send("");
      const empty = await c.next();
      assert.ok(
        empty === "" || empty === undefined,
        `empty message came back as ${JSON.stringify(empty)}`,
      );
      assert.equal(c.transportName(), mode.final);
      await c.close();
    });

    it("echoes binary messages (Buffer and ArrayBuffer)", async () => {
      const c = await Client.connect(mode.transports);
      const buf = Buffer.from([0, 1, 2, 3, 250, 255]);
      c.send(buf);
      assert.deepEqual(bytesOf(await c.next()), buf);

      const ab = new Uint8Array([9, 8, 7, 6, 5]).buffer;
      c.send(ab);
      assert.deepEqual(bytesOf(await c.next()), Buffer.from([9, 8, 7, 6, 5]));

      c.send(Buffer.alloc(0));
      const empty = await c.next();
      assert.ok(bytesOf(empty) !== null, `empty binary came back as ${typeof empty}`);
      assert.equal(bytesOf(empty).length, 0);
      await c.close();
    });

    it("echoes many messages in order", async () => {
      const c = await Client.connect(mode.transports);
      const count = 500;
      for (let i = 0; i < count; i++) {
        if (i % 5 === 0) c.send(Buffer.from(`bin-${i}`));
        else c.send(`msg-${i}`);
      }
      for (let i = 0; i < count; i++) {
        const got = await c.next();
        if (i % 5 === 0) {
          const b = bytesOf(got);
          assert.ok(b, `message ${i} should be binary, got ${JSON.stringify(got)}`);
          assert.equal(b.toString(), `bin-${i}`);
        } else {
          assert.equal(got, `msg-${i}`);
        }
      }
      await c.close();
    });

    it("echoes large messages near maxPayload", async () => {
      const c = await Client.connect(mode.transports);
      // Over polling the whole HTTP body must stay within maxPayload, and a
      // binary packet travels in base64 (4/3 larger) there.
      const text = "abcdefghij".repeat(90000); // 900 000 characters
      assert.ok(text.length + 1 < MAX_PAYLOAD && Math.ceil(700000 / 3) * 4 + 1 < MAX_PAYLOAD);
      c.send(text);
      const got = await c.next(60000);
      assert.equal(got.length, text.length);
      assert.ok(got === text, "large text came back different");

      const bin = Buffer.alloc(700000);
      for (let i = 0; i < bin.length; i++) bin[i] = (i * 31 + 7) & 0xff;
      c.send(bin);
      const back = bytesOf(await c.next(60000));
      assert.ok(back, "large binary came back as text");
      assert.equal(back.length, bin.length);
      assert.ok(back.equals(bin), "large binary came back different");
      await c.close();
    });

    it("stays connected across many heartbeats", async () => {
      const c = await Client.connect(mode.transports);
      await harness.sleep(3000); // ten ping intervals
      if (c.closeReason) throw sessionLost(c.closeReason);
      c.send("still here");
      assert.equal(await c.next(), "still here");
      await c.close();
    });

    it("serves several clients at once", async () => {
      const clients = await Promise.all(
        Array.from({ length: 10 }, () => Client.connect(mode.transports)),
      );
      clients.forEach((c, i) => c.send(`client-${i}`));
      for (let i = 0; i < clients.length; i++) {
        assert.equal(await clients[i].next(), `client-${i}`);
      }
      await Promise.all(clients.map((c) => c.close()));
    });
  });
}

describe("server", () => {
  it("is still running after all of the above", TEST_OPTS, async () => {
    server.assertAlive();
    const c = await Client.connect(undefined);
    c.send("bye");
    assert.equal(await c.next(), "bye");
    await c.close();
  });
});
