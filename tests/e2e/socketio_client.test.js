// Socket.IO acceptance tests with the official `socket.io-client` 4.8 (npm)
// against the Socket.IO conformance server: events and acks both ways (with
// timeouts), binary arguments nested in objects, namespaces and multiplexing,
// middleware refusal, dynamic namespaces, rooms and broadcast flags (to,
// except, volatile, from one socket to the others), disconnect reasons, the
// msgpack parser, and connection state recovery; over websocket only,
// polling only, and the default (polling, then upgrade to websocket).
//
//   node --test tests/e2e/socketio_client.test.js
//   SPACES_SOCKETIO_SERVER=reference node --test tests/e2e/socketio_client.test.js
//
// Which server runs:
//   SPACES_SOCKETIO_SERVER  unset: $SPACES_BUILD_DIR/conformance-socketio
//                           "reference": node tests/conformance/reference_socketio.js
//                           anything else: a command line (split on spaces)
//   SPACES_BUILD_DIR        build directory (default <source>/build/debug)
// Three servers are started: the plain one, one with "--parser msgpack" and
// one with "--recovery 120000" (each also gets "--port P").
"use strict";

const { describe, it, before, after, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const h = require("../lib/harness.js");
const { io, Manager } = require("socket.io-client");
const msgpackParser = require("socket.io-msgpack-parser");
const WebSocket = require("ws");

const WAIT_MS = 4000;
const TEST_TIMEOUT = { timeout: 20000 };

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
// Client helpers

const MODES = {
  websocket: { transports: ["websocket"] },
  polling: { transports: ["polling"] },
  upgrade: { transports: ["polling", "websocket"], upgrade: true },
};

const sockets = new Set();
const managers = new Set();

function closeAllClients() {
  for (const s of sockets) s.disconnect();
  for (const m of managers) {
    if (m.engine) m.engine.close();
  }
  sockets.clear();
  managers.clear();
}

// Records every event a socket receives (from its creation on), so tests can
// wait for an event that may already have arrived.
function track(socket) {
  socket.inbox = [];
  socket.inboxWaiters = [];
  socket.onAny((event, ...args) => {
    socket.inbox.push({ event, args });
    const w = socket.inboxWaiters;
    socket.inboxWaiters = [];
    for (const f of w) f();
  });
  socket.next = async (event, timeoutMs = WAIT_MS) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = socket.inbox.findIndex((e) => e.event === event);
      if (i >= 0) return socket.inbox.splice(i, 1)[0].args;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `socket ${socket.nsp} (${socket.io.opts.transports}): no "${event}" event within ${timeoutMs} ms; ` +
            `received: ${JSON.stringify(socket.inbox.map((e) => e.event))}`
        );
      }
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        socket.inboxWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  };
  socket.has = (event) => socket.inbox.some((e) => e.event === event);
  sockets.add(socket);
  return socket;
}

function once(emitter, event, timeoutMs = WAIT_MS, what = event) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no "${what}" within ${timeoutMs} ms`)), timeoutMs);
    emitter.once(event, (...args) => {
      clearTimeout(t);
      resolve(args);
    });
  });
}

// A new socket (its own Manager) to nsp; resolves once connected, rejects
// with the connect_error. In "upgrade" mode, waits for the upgrade too.
async function connect(server, nsp = "/", mode = "websocket", opts = {}) {
  const socket = track(
    io(`${server.url}${nsp}`, {
      forceNew: true,
      reconnection: false,
      timeout: WAIT_MS,
      ...MODES[mode],
      ...opts,
    })
  );
  managers.add(socket.io);
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${mode}: no connect to ${nsp} within ${WAIT_MS} ms`)), WAIT_MS);
    socket.once("connect", () => {
      clearTimeout(t);
      resolve();
    });
    socket.once("connect_error", (err) => {
      clearTimeout(t);
      reject(err);
    });
  });
  if (mode === "upgrade") await waitUpgraded(socket);
  return socket;
}

async function waitUpgraded(socket) {
  const engine = socket.io.engine;
  if (engine.transport.name !== "websocket") await once(engine, "upgrade", WAIT_MS, "engine upgrade");
  assert.equal(engine.transport.name, "websocket", "the connection was upgraded to websocket");
}

// Resolves with the connect_error of a socket that must be refused.
async function connectError(server, nsp, mode, opts = {}) {
  const socket = track(io(`${server.url}${nsp}`, { forceNew: true, reconnection: false, ...MODES[mode], ...opts }));
  managers.add(socket.io);
  const [err] = await Promise.race([
    once(socket, "connect_error"),
    once(socket, "connect").then(() => {
      throw new Error(`${nsp} must be refused, but the socket connected`);
    }),
  ]);
  return err;
}

// All args of an ack (emit with a callback), with an optional timeout.
function ack(socket, ...args) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ack for ${JSON.stringify(args[0])} within ${WAIT_MS} ms`)), WAIT_MS);
    socket.emit(...args, (...resp) => {
      clearTimeout(t);
      resolve(resp);
    });
  });
}

// emitWithAck that fails after WAIT_MS instead of hanging, naming the event.
async function call(socket, event, ...args) {
  try {
    return await socket.timeout(WAIT_MS).emitWithAck(event, ...args);
  } catch (e) {
    throw new Error(`no ack for "${event}" within ${WAIT_MS} ms (${e.message})`);
  }
}

// Waits until every socket in `sockets` has received `sentinel` (a
// namespace-wide broadcast sent after the event under test): since a
// connection keeps packets in order, what has not arrived by then never will.
async function barrier(sender, receivers, sentinel) {
  await ack(sender, "broadcast", { event: sentinel });
  for (const s of receivers) await s.next(sentinel);
}

function buf(...bytes) {
  return Buffer.from(bytes);
}

// ---------------------------------------------------------------------------

describe("socket.io-client against the conformance server", () => {
  let server;

  before(async () => {
    server = await startSocketioServer();
  });

  afterEach(() => closeAllClients());

  after(async () => {
    closeAllClients();
    if (server) await server.stop();
  });

  for (const mode of Object.keys(MODES)) {
    describe(`transport: ${mode}`, () => {
      it("connects to / and gets the auth event (empty auth)", TEST_TIMEOUT, async () => {
        const s = await connect(server, "/", mode);
        assert.equal(typeof s.id, "string");
        assert.deepEqual(await s.next("auth"), [{}]);
      });

      it("connects to / with an auth payload, echoed by the auth event", TEST_TIMEOUT, async () => {
        const auth = { token: "123", nested: { list: [1, "two", null, true] } };
        const s = await connect(server, "/", mode, { auth });
        assert.deepEqual(await s.next("auth"), [auth]);
      });

      it("connects to /custom with auth", TEST_TIMEOUT, async () => {
        const s = await connect(server, "/custom", mode, { auth: { token: "abc" } });
        assert.deepEqual(await s.next("auth"), [{ token: "abc" }]);
      });

      it("emits message and receives message-back with the same arguments", TEST_TIMEOUT, async () => {
        const s = await connect(server, "/", mode);
        const args = [1, "2", { 3: [true, false, null] }, [], {}, -1.5, "é✓😀"];
        s.emit("message", ...args);
        assert.deepEqual(await s.next("message-back"), args);
      });

      it("binary arguments (Buffers) nested in objects and arrays, both ways", TEST_TIMEOUT, async () => {
        const s = await connect(server, "/", mode);
        const args = [
          buf(1, 2, 3),
          { a: buf(4), b: [buf(5, 6), "text", { c: buf() }] },
          "plain",
          buf(...Array.from({ length: 256 }, (_, i) => i)),
        ];
        s.emit("message", ...args);
        assert.deepEqual(await s.next("message-back"), args);
      });

      it("a large binary argument (300 kB) round trip", TEST_TIMEOUT, async () => {
        const s = await connect(server, "/", mode);
        const big = Buffer.alloc(300 * 1024);
        for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
        s.emit("message", { big });
        const [back] = await s.next("message-back");
        assert.ok(Buffer.isBuffer(back.big));
        assert.equal(Buffer.compare(back.big, big), 0);
      });

      it("100 events come back in order", TEST_TIMEOUT, async () => {
        const s = await connect(server, "/", mode);
        for (let i = 0; i < 100; i++) s.emit("message", i);
        const got = [];
        for (let i = 0; i < 100; i++) got.push((await s.next("message-back"))[0]);
        assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => i));
      });

      it("client to server ack with the same arguments (plain and binary)", TEST_TIMEOUT, async () => {
        const s = await connect(server, "/", mode);
        assert.deepEqual(await ack(s, "message-with-ack", 1, "2", { 3: [false] }), [1, "2", { 3: [false] }]);
        assert.deepEqual(await ack(s, "message-with-ack", { x: buf(9, 9) }, buf(1)), [{ x: buf(9, 9) }, buf(1)]);
        assert.deepEqual(await call(s, "message-with-ack", "only"), "only");
      });

      it("client to server ack with a timeout: answered in time", TEST_TIMEOUT, async () => {
        const s = await connect(server, "/", mode);
        assert.equal(await s.timeout(2000).emitWithAck("message-with-ack", "fast"), "fast");
      });

      it("client to server ack with a timeout: the callback gets the timeout error", TEST_TIMEOUT, async () => {
        const s = await connect(server, "/", mode);
        const t0 = Date.now();
        const [err] = await new Promise((resolve) => s.timeout(300).emit("no-such-event", 1, (...a) => resolve(a)));
        assert.ok(err instanceof Error, "the callback gets an error");
        assert.ok(Date.now() - t0 >= 250);
      });

      it("server to client ack (EXTRA request-ack): the server gets the client's answer", TEST_TIMEOUT, async () => {
        const s = await connect(server, "/", mode);
        let received;
        s.on("ask", (...args) => {
          const cb = args.pop();
          received = args;
          cb("answer", { bin: buf(7, 7) }, 3);
        });
        const res = await call(s, "request-ack", { event: "ask", args: [1, { b: buf(1, 2) }] });
        assert.deepEqual(received, [1, { b: buf(1, 2) }]);
        assert.deepEqual(res, { error: null, responses: ["answer", { bin: buf(7, 7) }, 3] });
      });

      it("server to client ack with a timeout: answered in time (EXTRA request-ack)", TEST_TIMEOUT, async () => {
        const s = await connect(server, "/", mode);
        s.on("ask", (x, cb) => cb(x * 2));
        const res = await call(s, "request-ack", { event: "ask", args: [21], timeout: 2000 });
        assert.deepEqual(res, { error: null, responses: [42] });
      });

      it("server to client ack with a timeout: the server callback is told of the timeout (EXTRA request-ack)", TEST_TIMEOUT, async () => {
        const s = await connect(server, "/", mode);
        let late;
        s.on("ask", (x, cb) => {
          late = cb;
        });
        const t0 = Date.now();
        const res = await call(s, "request-ack", { event: "ask", args: [1], timeout: 300 });
        assert.ok(Date.now() - t0 >= 250, "the timeout fired too early");
        assert.equal(typeof res.error, "string");
        assert.ok(res.error.length > 0);
        assert.deepEqual(res.responses, []);
        assert.equal(typeof late, "function", "the client got the event with an ack callback");
        late("too late"); // must be ignored by the server
        assert.equal(await call(s, "message-with-ack", "still fine"), "still fine");
      });

      it("volatile event (EXTRA broadcast volatile) reaches an idle client", TEST_TIMEOUT, async () => {
        const s = await connect(server, "/", mode);
        await s.next("auth");
        await h.sleep(100);
        await ack(s, "broadcast", { event: "vol", to: s.id, volatile: true }, "v");
        if (mode === "polling") {
          // A volatile packet may be dropped while no GET is pending; the
          // client polls again at once, so retry a few times.
          for (let i = 0; i < 10 && !s.has("vol"); i++) {
            await h.sleep(100);
            await ack(s, "broadcast", { event: "vol", to: s.id, volatile: true }, "v");
          }
        }
        assert.deepEqual(await s.next("vol"), ["v"]);
      });

      it("handshake data: auth, query and extra headers (EXTRA handshake)", TEST_TIMEOUT, async () => {
        const s = await connect(server, "/", mode, {
          auth: { a: 1 },
          query: { foo: "bar" },
          extraHeaders: { "x-test-header": "hello" },
        });
        const hs = await call(s, "handshake");
        assert.deepEqual(hs.auth, { a: 1 });
        assert.equal(hs.query.foo, "bar");
        assert.equal(hs.query.EIO, "4");
        assert.equal(hs.headers["x-test-header"], "hello");
        assert.match(String(hs.address), /127\.0\.0\.1/);
      });

      it("refuses an unknown namespace: connect_error Invalid namespace", TEST_TIMEOUT, async () => {
        const err = await connectError(server, "/random", mode);
        assert.equal(err.message, "Invalid namespace");
      });

      it("middleware refusal (EXTRA /private): connect_error with message and data; accepted with the token", TEST_TIMEOUT, async () => {
        const err = await connectError(server, "/private", mode, { auth: { token: "nope" } });
        assert.equal(err.message, "not authorized");
        assert.deepEqual(err.data, { code: 403 });
        const ok = await connect(server, "/private", mode, { auth: { token: "secret" } });
        assert.deepEqual(await ok.next("auth"), [{ token: "secret" }]);
      });

      it("dynamic namespace /dyn-<digits> (EXTRA)", TEST_TIMEOUT, async () => {
        const s = await connect(server, "/dyn-123", mode, { auth: { d: 1 } });
        assert.deepEqual(await s.next("auth"), [{ d: 1 }]);
        const err = await connectError(server, "/dyn-abc", mode);
        assert.equal(err.message, "Invalid namespace");
      });

      it("multiplexing: / and /custom on one Manager share one Engine.IO connection", TEST_TIMEOUT, async () => {
        const manager = new Manager(server.url, { reconnection: false, ...MODES[mode] });
        managers.add(manager);
        const a = track(manager.socket("/", { auth: { who: "main" } }));
        const b = track(manager.socket("/custom", { auth: { who: "custom" } }));
        a.connect();
        b.connect();
        assert.deepEqual(await a.next("auth"), [{ who: "main" }]);
        assert.deepEqual(await b.next("auth"), [{ who: "custom" }]);
        assert.ok(a.connected && b.connected);
        assert.notEqual(a.id, b.id);
        assert.equal(a.io, b.io);
        assert.equal(a.io.engine, b.io.engine);
        a.emit("message", "to main");
        assert.deepEqual(await a.next("message-back"), ["to main"]);
        // Leaving /custom keeps / working on the same connection.
        const engineId = a.io.engine.id;
        b.disconnect();
        a.emit("message", "still");
        assert.deepEqual(await a.next("message-back"), ["still"]);
        assert.equal(a.io.engine.id, engineId);
        // Joining /custom again.
        b.connect();
        assert.deepEqual(await b.next("auth"), [{ who: "custom" }]);
        assert.equal(b.io.engine.id, engineId);
      });

      it("disconnect reasons: io client disconnect, seen by the server as client namespace disconnect (EXTRA disconnect-reason)", TEST_TIMEOUT, async () => {
        const s = await connect(server, "/", mode);
        const id = s.id;
        const reason = once(s, "disconnect");
        s.disconnect();
        assert.equal((await reason)[0], "io client disconnect");
        const w = await connect(server, "/", "websocket");
        assert.equal(await serverReason(w, id), "client namespace disconnect");
      });

      it("disconnect reasons: io server disconnect, server: server namespace disconnect (EXTRA disconnect-me, disconnect-reason)", TEST_TIMEOUT, async () => {
        const s = await connect(server, "/", mode);
        const id = s.id;
        const reason = once(s, "disconnect");
        s.emit("disconnect-me");
        assert.equal((await reason)[0], "io server disconnect");
        assert.equal(s.connected, false);
        const w = await connect(server, "/", "websocket");
        assert.equal(await serverReason(w, id), "server namespace disconnect");
      });

      it("disconnect reasons: disconnect-me true closes every namespace of the connection (EXTRA disconnect-me)", TEST_TIMEOUT, async () => {
        const manager = new Manager(server.url, { reconnection: false, ...MODES[mode] });
        managers.add(manager);
        const a = track(manager.socket("/"));
        const b = track(manager.socket("/custom"));
        a.connect();
        b.connect();
        await a.next("auth");
        await b.next("auth");
        const ra = once(a, "disconnect");
        const rb = once(b, "disconnect");
        a.emit("disconnect-me", true);
        assert.equal((await ra)[0], "io server disconnect");
        assert.ok(["io server disconnect", "transport close"].includes((await rb)[0]));
      });

      it("disconnect reasons: transport close when the client's connection goes away (EXTRA disconnect-reason)", TEST_TIMEOUT, async () => {
        const s = await connect(server, "/", mode);
        const id = s.id;
        s.io.engine.close();
        const w = await connect(server, "/", "websocket");
        assert.equal(await serverReason(w, id), "transport close");
      });
    });
  }

  async function serverReason(watcher, id) {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const r = await call(watcher, "disconnect-reason", id);
      if (r !== null || Date.now() > deadline) return r;
      await h.sleep(50);
    }
  }

  it("events emitted right after connect survive the upgrade to websocket, in order", TEST_TIMEOUT, async () => {
    const s = track(io(server.url, { forceNew: true, reconnection: false, transports: ["polling", "websocket"] }));
    managers.add(s.io);
    await once(s, "connect");
    for (let i = 0; i < 50; i++) s.emit("message", i, buf(i));
    const got = [];
    for (let i = 0; i < 50; i++) got.push(await s.next("message-back"));
    assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => [i, buf(i)]));
    await waitUpgraded(s);
    s.emit("message", "after");
    assert.deepEqual(await s.next("message-back"), ["after"]);
  });

  describe("rooms and broadcast (EXTRA join, leave, broadcast), mixed transports", () => {
    let a, b, c, d;

    async function setup() {
      a = await connect(server, "/", "websocket");
      b = await connect(server, "/", "polling");
      c = await connect(server, "/", "upgrade");
      d = await connect(server, "/custom", "websocket");
      await ack(a, "join", "r1");
      await ack(b, "join", ["r1", "r2"]);
      await ack(c, "join", "r2");
    }

    it("to one room: members only", TEST_TIMEOUT, async () => {
      await setup();
      await ack(a, "broadcast", { event: "hello", to: "r1" }, "x", buf(1));
      assert.deepEqual(await a.next("hello"), ["x", buf(1)]);
      assert.deepEqual(await b.next("hello"), ["x", buf(1)]);
      await barrier(a, [a, b, c], "sentinel");
      assert.equal(c.has("hello"), false, "c is not in r1");
    });

    it("to several rooms: each member once", TEST_TIMEOUT, async () => {
      await setup();
      await ack(a, "broadcast", { event: "hi", to: ["r1", "r2"] }, 1);
      await barrier(a, [a, b, c], "sentinel");
      for (const s of [a, b, c]) {
        assert.equal(s.inbox.filter((e) => e.event === "hi").length, 1, "exactly one copy per socket");
      }
    });

    it("to the whole namespace; other namespaces get nothing", TEST_TIMEOUT, async () => {
      await setup();
      await ack(b, "broadcast", { event: "all" }, { n: 1 });
      for (const s of [a, b, c]) assert.deepEqual(await s.next("all"), [{ n: 1 }]);
      await h.sleep(200);
      assert.equal(d.has("all"), false, "a socket of /custom must not get a broadcast to /");
    });

    it("except a room", TEST_TIMEOUT, async () => {
      await setup();
      await ack(a, "broadcast", { event: "ex", except: "r1" });
      assert.deepEqual(await c.next("ex"), []);
      await barrier(a, [a, b, c], "sentinel");
      assert.equal(a.has("ex"), false);
      assert.equal(b.has("ex"), false);
      await ack(a, "broadcast", { event: "ex2", to: "r2", except: ["r1"] });
      assert.deepEqual(await c.next("ex2"), []);
      await barrier(a, [a, b, c], "sentinel2");
      assert.equal(b.has("ex2"), false, "b is in r2 but also in r1");
    });

    it("from one socket to all the others (socket.broadcast)", TEST_TIMEOUT, async () => {
      await setup();
      await ack(a, "broadcast", { event: "others", others: true }, "from a");
      assert.deepEqual(await b.next("others"), ["from a"]);
      assert.deepEqual(await c.next("others"), ["from a"]);
      await barrier(a, [a, b, c], "sentinel");
      assert.equal(a.has("others"), false, "the sender is left out");
      await ack(b, "broadcast", { event: "others-r1", others: true, to: "r1" });
      assert.deepEqual(await a.next("others-r1"), []);
      await barrier(a, [a, b, c], "sentinel2");
      assert.equal(b.has("others-r1"), false);
      assert.equal(c.has("others-r1"), false);
    });

    it("to a socket id (each socket is in the room of its own id)", TEST_TIMEOUT, async () => {
      await setup();
      await ack(a, "broadcast", { event: "direct", to: c.id }, "for c");
      assert.deepEqual(await c.next("direct"), ["for c"]);
      await barrier(a, [a, b, c], "sentinel");
      assert.equal(a.has("direct"), false);
      assert.equal(b.has("direct"), false);
    });

    it("leave: a socket that left a room gets nothing from it", TEST_TIMEOUT, async () => {
      await setup();
      await ack(b, "leave", "r1");
      await ack(c, "broadcast", { event: "after-leave", to: "r1" });
      assert.deepEqual(await a.next("after-leave"), []);
      await barrier(a, [a, b, c], "sentinel");
      assert.equal(b.has("after-leave"), false);
    });

    it("a disconnected socket leaves its rooms", TEST_TIMEOUT, async () => {
      await setup();
      a.disconnect();
      await h.sleep(100);
      await ack(b, "broadcast", { event: "r1-again", to: "r1" });
      assert.deepEqual(await b.next("r1-again"), []);
      assert.equal(a.has("r1-again"), false);
    });

    it("volatile broadcast to a room reaches idle members", TEST_TIMEOUT, async () => {
      await setup();
      await h.sleep(100);
      await ack(c, "broadcast", { event: "vol", to: "r1", volatile: true }, buf(3));
      assert.deepEqual(await a.next("vol"), [buf(3)]);
    });
  });
});

// ---------------------------------------------------------------------------

describe("socket.io-client with socket.io-msgpack-parser (server --parser msgpack)", () => {
  let server;

  before(async () => {
    server = await startSocketioServer(["--parser", "msgpack"]);
  });

  afterEach(() => closeAllClients());

  after(async () => {
    closeAllClients();
    if (server) await server.stop();
  });

  for (const mode of Object.keys(MODES)) {
    describe(`transport: ${mode}`, () => {
      const opts = { parser: msgpackParser };

      it("auth, events with binary, client to server acks", TEST_TIMEOUT, async () => {
        const s = await connect(server, "/", mode, { ...opts, auth: { token: "m" } });
        assert.deepEqual(await s.next("auth"), [{ token: "m" }]);
        const args = [1, "2", { 3: [true], bin: buf(1, 2, 3) }, buf(4, 5)];
        s.emit("message", ...args);
        const back = await s.next("message-back");
        assert.equal(back[0], 1);
        assert.equal(back[1], "2");
        assert.deepEqual(back[2][3], [true]);
        assert.deepEqual(Buffer.from(back[2].bin), buf(1, 2, 3));
        assert.deepEqual(Buffer.from(back[3]), buf(4, 5));
        const acked = await ack(s, "message-with-ack", "x", { y: [1, 2] }, buf(6));
        assert.deepEqual(acked.slice(0, 2), ["x", { y: [1, 2] }]);
        assert.deepEqual(Buffer.from(acked[2]), buf(6));
        const [err] = await new Promise((resolve) => s.timeout(300).emit("no-such-event", (...a) => resolve(a)));
        assert.ok(err instanceof Error, "client-side ack timeout");
      });

      it("server to client acks, with and without timeout (EXTRA request-ack)", TEST_TIMEOUT, async () => {
        const s = await connect(server, "/", mode, opts);
        s.on("ask", (x, cb) => cb(x + 1, buf(8)));
        const res = await call(s, "request-ack", { event: "ask", args: [41] });
        assert.equal(res.error, null);
        assert.equal(res.responses[0], 42);
        assert.deepEqual(Buffer.from(res.responses[1]), buf(8));
        const late = await call(s, "request-ack", { event: "silent", args: [], timeout: 200 });
        assert.equal(typeof late.error, "string");
      });

      it("namespaces: /custom with auth, multiplexed with /; unknown namespace refused", TEST_TIMEOUT, async () => {
        const manager = new Manager(server.url, { reconnection: false, ...MODES[mode], ...opts });
        managers.add(manager);
        const a = track(manager.socket("/", { auth: { n: 0 } }));
        const c1 = track(manager.socket("/custom", { auth: { n: 1 } }));
        a.connect();
        c1.connect();
        assert.deepEqual(await a.next("auth"), [{ n: 0 }]);
        assert.deepEqual(await c1.next("auth"), [{ n: 1 }]);
        assert.equal(a.io.engine, c1.io.engine);
        const err = await connectError(server, "/random", mode, opts);
        assert.equal(err.message, "Invalid namespace");
      });

      it("middleware refusal, rooms and server disconnect (EXTRA /private, join, broadcast, disconnect-me)", TEST_TIMEOUT, async () => {
        const err = await connectError(server, "/private", mode, opts);
        assert.equal(err.message, "not authorized");
        assert.deepEqual(err.data, { code: 403 });
        const a = await connect(server, "/", mode, opts);
        const b = await connect(server, "/", "websocket", opts);
        await ack(b, "join", "room");
        await ack(a, "broadcast", { event: "to-room", to: "room" }, buf(1));
        assert.deepEqual((await b.next("to-room")).map((x) => Buffer.from(x)), [buf(1)]);
        const reason = once(a, "disconnect");
        a.emit("disconnect-me");
        assert.equal((await reason)[0], "io server disconnect");
      });
    });
  }
});

// ---------------------------------------------------------------------------

describe("connection state recovery (server --recovery 120000)", () => {
  let server;

  before(async () => {
    server = await startSocketioServer(["--recovery", "120000"]);
  });

  afterEach(() => closeAllClients());

  after(async () => {
    closeAllClients();
    if (server) await server.stop();
  });

  // On a recovery server every event without an ack carries its offset as
  // the last argument; socket.io-client keeps it there.
  function withoutOffset(args) {
    assert.equal(typeof args[args.length - 1], "string", "the last argument is the offset");
    return args.slice(0, -1);
  }

  async function serverReason(watcher, id) {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const r = await call(watcher, "disconnect-reason", id);
      if (r !== null || Date.now() > deadline) return r;
      await h.sleep(50);
    }
  }

  for (const mode of Object.keys(MODES)) {
    it(`${mode}: recovered after a forced transport close (same id, offsets on events)`, TEST_TIMEOUT, async () => {
      const a = await connect(server, "/", mode);
      assert.equal(a.recovered, false);
      assert.deepEqual(withoutOffset(await a.next("auth")), [{}]);
      a.emit("message", "m1", buf(1));
      assert.deepEqual(withoutOffset(await a.next("message-back")), ["m1", buf(1)]);
      assert.deepEqual(await ack(a, "message-with-ack", "no offset on acks"), ["no offset on acks"]);
      const id = a.id;
      const gone = once(a, "disconnect");
      a.io.engine.close();
      await gone;
      await h.sleep(300); // let the server see the transport close first
      a.connect();
      await once(a, "connect");
      assert.equal(a.recovered, true, "socket.recovered");
      assert.equal(a.id, id, "the recovered socket keeps its id");
      a.emit("message", "m2");
      assert.deepEqual(withoutOffset(await a.next("message-back")), ["m2"]);
    });

    it(`${mode}: recovered after a forced transport close; rooms and missed events restored (EXTRA join, broadcast, disconnect-reason)`, TEST_TIMEOUT, async () => {
      const a = await connect(server, "/", mode, { auth: { me: "a" } });
      assert.equal(a.recovered, false);
      assert.deepEqual(withoutOffset(await a.next("auth")), [{ me: "a" }]);
      await ack(a, "join", "r");
      // Something arrives, so the client has an offset.
      const b = await connect(server, "/", "websocket");
      await ack(b, "broadcast", { event: "before", to: "r" }, 0);
      assert.deepEqual(withoutOffset(await a.next("before")), [0]);
      const id = a.id;

      const gone = once(a, "disconnect");
      a.io.engine.close(); // the transport goes away (no Socket.IO DISCONNECT)
      await gone;
      assert.equal(await serverReason(b, id), "transport close");

      await ack(b, "broadcast", { event: "missed", to: "r" }, 1, { bin: buf(1, 2) });
      await ack(b, "broadcast", { event: "missed-all" }, 2);
      a.connect();
      await once(a, "connect");
      assert.equal(a.recovered, true, "socket.recovered");
      assert.equal(a.id, id, "the recovered socket keeps its id");
      assert.deepEqual(withoutOffset(await a.next("missed")), [1, { bin: buf(1, 2) }]);
      assert.deepEqual(withoutOffset(await a.next("missed-all")), [2]);
      // Its rooms are back.
      await ack(b, "broadcast", { event: "after", to: "r" }, 3);
      assert.deepEqual(withoutOffset(await a.next("after")), [3]);
      // And it works as before.
      assert.deepEqual(await ack(a, "message-with-ack", "ok"), ["ok"]);
    });
  }

  it("not recovered after a client namespace disconnect (not a recoverable reason)", TEST_TIMEOUT, async () => {
    const a = await connect(server, "/", "websocket");
    await a.next("auth");
    const id = a.id;
    a.disconnect();
    a.connect();
    await once(a, "connect");
    assert.equal(a.recovered, false);
    assert.notEqual(a.id, id);
  });

  it("not recovered after a server namespace disconnect (EXTRA disconnect-me)", TEST_TIMEOUT, async () => {
    const a = await connect(server, "/", "websocket");
    await a.next("auth");
    const gone = once(a, "disconnect");
    a.emit("disconnect-me");
    await gone;
    a.connect();
    await once(a, "connect");
    assert.equal(a.recovered, false);
  });

  it("raw: the CONNECT reply carries sid and pid; an unknown pid/offset gets a fresh session", TEST_TIMEOUT, async () => {
    const ws = new WebSocket(`${server.wsUrl}/socket.io/?EIO=4&transport=websocket`);
    const msgs = [];
    ws.on("message", (d) => {
      const s = d.toString();
      if (s === "2") ws.send("3");
      else msgs.push(s);
    });
    ws.on("error", () => {});
    try {
      await once(ws, "open");
      const waitMsgs = async (n) => {
        const t0 = Date.now();
        while (msgs.length < n && Date.now() - t0 < WAIT_MS) await h.sleep(10);
        assert.ok(msgs.length >= n, `expected ${n} messages, got ${JSON.stringify(msgs)}`);
      };
      await waitMsgs(1); // Engine.IO open
      ws.send('40{"pid":"unknown-pid","offset":"unknown-offset"}');
      await waitMsgs(3);
      assert.ok(msgs[1].startsWith("40{"), `CONNECT reply expected, got ${msgs[1]}`);
      const reply = JSON.parse(msgs[1].slice(2));
      assert.deepEqual(Object.keys(reply).sort(), ["pid", "sid"]);
      assert.equal(typeof reply.pid, "string");
      assert.notEqual(reply.pid, "unknown-pid");
      // The auth event holds the auth as sent, then the offset.
      const ev = JSON.parse(msgs[2].slice(2));
      assert.equal(ev[0], "auth");
      assert.deepEqual(ev[1], { pid: "unknown-pid", offset: "unknown-offset" });
      assert.equal(typeof ev[2], "string");
      // An ack carries no offset.
      ws.send('427["message-with-ack","x"]');
      await waitMsgs(4);
      assert.equal(msgs[3], '437["x"]');
    } finally {
      ws.terminate();
    }
  });
});
