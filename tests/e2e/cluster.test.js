// Broadcasts between server processes sharing one PostgreSQL database
// (spaces/cluster.h): two C nodes (cluster-node, C1 and C2) and one Node.js
// socket.io server with @socket.io/postgres-adapter (N1,
// tests/conformance/reference_cluster.js) carry each other's broadcasts, with
// the official socket.io-client connected to every node and namespace; and
// answer each other's requests (fetchSockets, serverSideEmit with and without
// acks, broadcasts with acks), count each other (heartbeats: serverCount),
// and take what @socket.io/postgres-emitter publishes.
//
// A throwaway PostgreSQL cluster is started with ci/pg.sh in a temporary
// directory. Which program the C nodes run:
//
//   SPACES_CLUSTER_NODE  unset: $SPACES_BUILD_DIR/cluster-node
//                        "reference": the Node.js reference_cluster.js (all
//                        three nodes Node.js: checks the test itself; the
//                        C-only checks are skipped)
//                        anything else: a command line (split on spaces)
//   SPACES_TEST_VERBOSE=1  copy the servers' stderr, print the C nodes' stats
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { execFile } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const h = require("../lib/harness.js");
const { io } = require(path.join(h.SOURCE_DIR, "tests", "node_modules", "socket.io-client"));

const PG_SH = path.join(h.SOURCE_DIR, "ci", "pg.sh");
const NODE_REFERENCE = [process.execPath, path.join(h.SOURCE_DIR, "tests", "conformance", "reference_cluster.js")];
const C_NODE = h.serverCommand("SPACES_CLUSTER_NODE", "cluster-node", "tests/conformance/reference_cluster.js");
const C_IS_REFERENCE = (process.env.SPACES_CLUSTER_NODE || "").trim() === "reference";

const WAIT_MS = 10000; // for an event that should come
const QUIET_MS = 300; // after the expected events: time for a duplicate to show
const NAMESPACES = ["/", "/chat"];

function pgSh(...args) {
  return new Promise((resolve, reject) => {
    execFile(PG_SH, args, { timeout: 120000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ci/pg.sh ${args.join(" ")} failed: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

// A short, readable form of received arguments for failure messages.
function preview(value) {
  let s;
  try {
    s = JSON.stringify(value, (k, v) => {
      if (v && v.type === "Buffer" && Array.isArray(v.data)) return `<Buffer ${v.data.length} bytes>`;
      if (v instanceof ArrayBuffer) return `<ArrayBuffer ${v.byteLength} bytes>`;
      if (typeof v === "string" && v.length > 80) return `${v.slice(0, 40)}...(${v.length} chars)`;
      return v;
    });
  } catch (e) {
    s = String(value);
  }
  return s && s.length > 300 ? `${s.slice(0, 300)}...` : s;
}

// Binary as it arrives (Buffer, ArrayBuffer or a typed array) as a Buffer.
function asBuffer(v) {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof ArrayBuffer) return Buffer.from(v);
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return null;
}

/** One socket.io-client connection that records the events it receives. */
class Client {
  // opts: query and auth for the handshake; silent: never acks "ask".
  constructor(node, nsp, name, opts = {}) {
    this.node = node;
    this.nsp = nsp;
    this.name = `${name} (${node.name} ${nsp})`;
    this.events = []; // {event, args} but "probe"
    this.probesFrom = new Set(); // node names whose probes arrived
    this.waiters = new Set();
    this.socket = io(node.server.url + nsp, {
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      query: opts.query,
      auth: opts.auth,
    });
    // A broadcast with acks asks the clients "ask": each answers with its name.
    if (!opts.silent) this.socket.on("ask", (arg, cb) => cb({ client: this.name, arg }));
    this.socket.onAny((event, ...args) => {
      if (event === "probe") this.probesFrom.add(args[0]);
      else this.events.push({ event, args });
      for (const w of this.waiters) w();
    });
  }

  connected() {
    return new Promise((resolve, reject) => {
      if (this.socket.connected) return resolve();
      const timer = setTimeout(() => reject(new Error(`${this.name}: not connected within ${WAIT_MS} ms`)), WAIT_MS);
      this.socket.once("connect", () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.once("connect_error", (err) => {
        clearTimeout(timer);
        reject(new Error(`${this.name}: connect_error ${err.message}`));
      });
    });
  }

  /** The argument lists of the received events named event, in order. */
  got(event) {
    return this.events.filter((e) => e.event === event).map((e) => e.args);
  }

  summary() {
    const list = this.events.slice(-10).map((e) => `${e.event}${preview(e.args)}`);
    return `${this.events.length} events${list.length ? `, last: ${list.join(" ")}` : ""}`;
  }

  /** Resolves once cond() is true; rejects after timeoutMs saying what was awaited. */
  waitUntil(cond, what, timeoutMs = WAIT_MS) {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!cond()) return false;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new Error(
            `${this.name}: timed out after ${timeoutMs} ms waiting for ${what}; ` +
              `received ${this.summary()}${this.socket.connected ? "" : " (disconnected)"}`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Waits until n events named event arrived. */
  waitEvents(event, n = 1, timeoutMs = WAIT_MS) {
    return this.waitUntil(() => this.got(event).length >= n, `${n} "${event}" event(s)`, timeoutMs);
  }

  /** Emits with an ack and resolves with the ack's (first) argument. */
  async call(event, ...args) {
    try {
      return await this.socket.timeout(WAIT_MS).emitWithAck(event, ...args);
    } catch (e) {
      throw new Error(`${this.name}: no ack to "${event}" within ${WAIT_MS} ms (${e.message})`);
    }
  }

  /** Broadcast from this client's node; checks the ack. */
  async bcast(opts, ...args) {
    assert.equal(await this.call("bcast", opts, ...args), "sent", `${this.name}: bcast ack`);
  }
}

const pgDir = fs.mkdtempSync(path.join(os.tmpdir(), "spaces-cluster-pg-"));
let pgStarted = false;
let dbUrl = null;
const nodes = []; // {name, isC, server}
const byName = {};
const clients = []; // every Client
// Per node: on "/": a (joins r1), b (joins r1 and r2), c (no room);
// on "/chat": d, e.
const cl = {}; // cl[node][letter]

function nodeClients(node, nsp) {
  return clients.filter((c) => c.node === node && c.nsp === nsp);
}

function allOn(nsp) {
  return clients.filter((c) => c.nsp === nsp);
}

/**
 * Expects the clients in `receivers` to get event exactly once each (with
 * args checked by check(args, client)) and every other client none, QUIET_MS
 * after the last one arrived.
 */
async function expectExactlyOnce(event, receivers, check) {
  await Promise.all(receivers.map((c) => c.waitEvents(event)));
  await h.sleep(QUIET_MS);
  for (const c of clients) {
    const got = c.got(event);
    if (receivers.includes(c)) {
      assert.equal(got.length, 1, `${c.name}: "${event}" ${got.length} times, expected once: ${preview(got)}`);
      if (check) check(got[0], c);
    } else {
      assert.equal(got.length, 0, `${c.name}: got "${event}" it should not have: ${preview(got)}`);
    }
  }
}

async function stopAll() {
  const errors = [];
  for (const c of clients) c.socket.close();
  await Promise.all(
    nodes.map((n) =>
      n.server.stop().catch((e) => {
        errors.push(e);
      }),
    ),
  );
  return errors;
}

before(
  async () => {
    const out = await pgSh("start", pgDir);
    pgStarted = true;
    dbUrl = out.split("\n").pop();
    assert.match(dbUrl, /^postgres(ql)?:\/\//, `ci/pg.sh start printed no URL: ${out}`);

    for (const [name, isC] of [
      ["C1", true],
      ["C2", true],
      ["N1", false],
    ]) {
      const argv = [...(isC ? C_NODE : NODE_REFERENCE), "--database-url", dbUrl, "--name", name];
      const node = { name, isC: isC && !C_IS_REFERENCE, server: await h.startServer(argv) };
      nodes.push(node);
      byName[name] = node;
    }

    for (const node of nodes) {
      cl[node.name] = {};
      for (const [letter, nsp] of [
        ["a", "/"],
        ["b", "/"],
        ["c", "/"],
        ["d", "/chat"],
        ["e", "/chat"],
      ]) {
        const c = new Client(node, nsp, letter);
        cl[node.name][letter] = c;
        clients.push(c);
      }
    }
    await Promise.all(clients.map((c) => c.connected()));

    // The C nodes say when their LISTENs are in place.
    const deadline = Date.now() + 15000;
    for (const node of nodes.filter((n) => n.isC)) {
      for (const letter of ["a", "d"]) {
        const c = cl[node.name][letter];
        for (;;) {
          node.server.assertAlive();
          if ((await c.call("ready")) === true) break;
          if (Date.now() > deadline) throw new Error(`${node.name} not ready within 15 s:\n${node.server.stderr()}`);
          await h.sleep(100);
        }
      }
    }

    // The Node adapter LISTENs asynchronously too: probe every node and
    // namespace until the clients of every other node hear it.
    const probeDeadline = Date.now() + 15000;
    const pending = () => {
      const list = [];
      for (const sender of nodes) {
        for (const nsp of NAMESPACES) {
          const deaf = allOn(nsp).filter((c) => c.node !== sender && !c.probesFrom.has(sender.name));
          if (deaf.length > 0) list.push({ sender, nsp, deaf });
        }
      }
      return list;
    };
    for (;;) {
      const left = pending();
      if (left.length === 0) break;
      if (Date.now() > probeDeadline) {
        throw new Error(
          "probes still not heard after 15 s: " +
            left.map((p) => `from ${p.sender.name} on ${p.nsp} by ${p.deaf.map((c) => c.name).join(", ")}`).join("; "),
        );
      }
      for (const node of nodes) node.server.assertAlive();
      await Promise.all(
        left.map((p) =>
          nodeClients(p.sender, p.nsp)[0].bcast({ event: "probe" }, p.sender.name),
        ),
      );
      await h.sleep(200);
    }
  },
  { timeout: 120000 },
);

after(
  async () => {
    let errors = [];
    try {
      errors = await stopAll();
    } finally {
      if (pgStarted) await pgSh("stop", pgDir).catch((e) => errors.push(e));
      fs.rmSync(pgDir, { recursive: true, force: true });
    }
    if (errors.length > 0) throw errors[0];
  },
  { timeout: 60000 },
);

test("a broadcast to everyone from a C node reaches every node once", { timeout: 30000 }, async () => {
  await cl.C1.a.bcast({ event: "t-a" }, "hello", 1, { from: "C1" });
  await expectExactlyOnce("t-a", allOn("/"), (args, c) =>
    assert.deepEqual(args, ["hello", 1, { from: "C1" }], `${c.name}: arguments`),
  );
});

test("a broadcast to everyone from the Node.js node reaches the C nodes once", { timeout: 30000 }, async () => {
  await cl.N1.a.bcast({ event: "t-b" }, "from node", [1, 2, 3], null, true);
  await expectExactlyOnce("t-b", allOn("/"), (args, c) =>
    assert.deepEqual(args, ["from node", [1, 2, 3], null, true], `${c.name}: arguments`),
  );
});

test("rooms and except rooms are honoured on every node", { timeout: 30000 }, async () => {
  for (const node of nodes) {
    assert.equal(await cl[node.name].a.call("join", "r1"), "ok");
    assert.equal(await cl[node.name].b.call("join", "r1"), "ok");
    assert.equal(await cl[node.name].b.call("join", "r2"), "ok");
  }
  await cl.C2.c.bcast({ event: "t-c", rooms: ["r1"], except: ["r2"] }, "r1 not r2");
  await expectExactlyOnce(
    "t-c",
    nodes.map((n) => cl[n.name].a),
    (args, c) => assert.deepEqual(args, ["r1 not r2"], `${c.name}: arguments`),
  );

  // And from the Node.js node, to r2 only.
  await cl.N1.c.bcast({ event: "t-c2", rooms: ["r2"] }, "r2");
  await expectExactlyOnce(
    "t-c2",
    nodes.map((n) => cl[n.name].b),
    (args, c) => assert.deepEqual(args, ["r2"], `${c.name}: arguments`),
  );
});

test("a broadcast on /chat reaches /chat on every node and nothing on /", { timeout: 30000 }, async () => {
  await cl.C1.d.bcast({ event: "t-d" }, "chat");
  await expectExactlyOnce("t-d", allOn("/chat"), (args, c) => assert.deepEqual(args, ["chat"], `${c.name}: arguments`));
  await cl.N1.e.bcast({ event: "t-d2" }, "chat from node");
  await expectExactlyOnce("t-d2", allOn("/chat"), (args, c) =>
    assert.deepEqual(args, ["chat from node"], `${c.name}: arguments`),
  );
});

// Over PostgreSQL's 8000-byte notification limit: goes through the table.
function largeString(seed) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789 "\\/\n\té€ü';
  const bytes = crypto.createHash("sha256").update(seed).digest();
  let s = `${seed}:`;
  for (let i = 0; s.length < 20000; i++) {
    s += alphabet[(bytes[i % bytes.length] + i * 7) % alphabet.length];
  }
  return s;
}

test("a message over 8000 bytes crosses both ways intact", { timeout: 30000 }, async () => {
  const fromC = largeString("from-C1");
  await cl.C1.a.bcast({ event: "t-e" }, fromC, { n: fromC.length });
  await expectExactlyOnce("t-e", allOn("/"), (args, c) => {
    assert.equal(args.length, 2, `${c.name}: argument count`);
    assert.equal(typeof args[0], "string", `${c.name}: a string`);
    assert.equal(args[0].length, fromC.length, `${c.name}: length`);
    assert.ok(args[0] === fromC, `${c.name}: the 20,000-character string differs`);
    assert.deepEqual(args[1], { n: fromC.length });
  });

  const fromN = largeString("from-N1");
  await cl.N1.a.bcast({ event: "t-e2" }, fromN);
  await expectExactlyOnce("t-e2", allOn("/"), (args, c) => {
    assert.equal(args.length, 1, `${c.name}: argument count`);
    assert.equal(typeof args[0], "string", `${c.name}: a string`);
    assert.equal(args[0].length, fromN.length, `${c.name}: length`);
    assert.ok(args[0] === fromN, `${c.name}: the 20,000-character string differs`);
  });
});

function checkBinary(args, c, big, small) {
  assert.equal(args.length, 3, `${c.name}: argument count: ${preview(args)}`);
  const b0 = asBuffer(args[0]);
  assert.ok(b0, `${c.name}: first argument is not binary: ${preview(args[0])}`);
  assert.ok(b0.equals(big), `${c.name}: first argument: ${b0.length} bytes, differ from the ${big.length} sent`);
  const obj = args[1];
  assert.equal(typeof obj, "object", `${c.name}: second argument: ${preview(obj)}`);
  assert.equal(obj.label, "nested", `${c.name}: nested label`);
  assert.deepEqual(obj.list, [1, "two", null], `${c.name}: nested list`);
  const b1 = asBuffer(obj.inner && obj.inner.bin);
  assert.ok(b1, `${c.name}: nested binary missing: ${preview(obj)}`);
  assert.ok(b1.equals(small), `${c.name}: nested binary: ${b1.length} bytes, differ from the ${small.length} sent`);
  assert.equal(args[2], "tail", `${c.name}: third argument`);
}

test("binary arguments cross both ways intact", { timeout: 30000 }, async () => {
  const big = crypto.randomBytes(3000);
  const small = crypto.randomBytes(64);
  await cl.C1.a.bcast({ event: "t-f" }, big, { label: "nested", inner: { bin: small }, list: [1, "two", null] }, "tail");
  await expectExactlyOnce("t-f", allOn("/"), (args, c) => checkBinary(args, c, big, small));

  const big2 = crypto.randomBytes(3000);
  const small2 = crypto.randomBytes(64);
  await cl.N1.a.bcast({ event: "t-f2" }, big2, { label: "nested", inner: { bin: small2 }, list: [1, "two", null] }, "tail");
  await expectExactlyOnce("t-f2", allOn("/"), (args, c) => checkBinary(args, c, big2, small2));
});

test("200 broadcasts sent back to back arrive in order on the other nodes", { timeout: 30000 }, async (t) => {
  // The Node.js adapter publishes each broadcast on its own pool connection:
  // it keeps no order. Only a C sender does.
  if (C_IS_REFERENCE) return t.skip("the sender is not a C node (SPACES_CLUSTER_NODE=reference)");
  const N = 200;
  const acks = [];
  for (let i = 0; i < N; i++) acks.push(cl.C1.a.bcast({ event: "t-g" }, i));
  await Promise.all(acks);
  const watchers = [cl.C1.c, cl.C2.c, cl.N1.c];
  await Promise.all(watchers.map((c) => c.waitEvents("t-g", N, 20000)));
  await h.sleep(QUIET_MS);
  for (const c of watchers) {
    const seq = c.got("t-g").map((args) => args[0]);
    const expected = Array.from({ length: N }, (_, i) => i);
    if (JSON.stringify(seq) !== JSON.stringify(expected)) {
      const firstBad = seq.findIndex((v, i) => v !== i);
      assert.fail(`${c.name}: ${seq.length} events, first out of place at index ${firstBad}: ${preview(seq)}`);
    }
  }
});

test("a volatile broadcast reaches idle clients on the other nodes", { timeout: 30000 }, async () => {
  await cl.C1.a.bcast({ event: "t-h", volatile: true }, "volatile");
  const receivers = [cl.C2.a, cl.C2.b, cl.C2.c, cl.N1.a, cl.N1.b, cl.N1.c];
  await Promise.all(receivers.map((c) => c.waitEvents("t-h")));
  await h.sleep(QUIET_MS);
  for (const c of receivers) assert.deepEqual(c.got("t-h"), [["volatile"]], `${c.name}: "t-h"`);
  for (const c of allOn("/chat")) assert.equal(c.got("t-h").length, 0, `${c.name}: got "t-h"`);
});

/**
 * Broadcasts `event` from sender to room until every client in receivers got
 * one: another node's socketsJoin may still be on its way (publishers are
 * not ordered with each other, and the Node adapter does not keep its own
 * order).
 */
async function untilHeard(sender, room, event, receivers) {
  const deadline = Date.now() + WAIT_MS;
  while (!receivers.every((c) => c.got(event).length > 0)) {
    if (Date.now() > deadline) {
      const deaf = receivers.filter((c) => c.got(event).length === 0).map((c) => c.name);
      throw new Error(`"${event}" to ${room} never reached ${deaf.join(", ")}`);
    }
    await sender.bcast({ event, rooms: [room] });
    await h.sleep(100);
  }
}

test("socketsJoin and socketsLeave from any node apply on every node", { timeout: 30000 }, async () => {
  const members = nodes.map((n) => cl[n.name].a);
  for (const c of members) assert.equal(await c.call("join", "j1"), "ok");

  // From a C node: the sockets of j1 everywhere join j9.
  const n = await cl.C1.c.call("sjoin", { rooms: ["j1"] }, "j9");
  if (byName.C1.isC) assert.equal(n, 1, "C1 counts its own socket of j1");
  await untilHeard(cl.N1.c, "j9", "j9-probe", members);
  await cl.N1.c.bcast({ event: "t-j9", rooms: ["j9"] }, "j9");
  await expectExactlyOnce("t-j9", members, (args, c) => assert.deepEqual(args, ["j9"], `${c.name}`));

  // From the Node.js node: they join j10, and a C node reaches them there.
  await cl.N1.c.call("sjoin", { rooms: ["j1"] }, "j10");
  await untilHeard(cl.C2.c, "j10", "j10-probe", members);
  await cl.C2.c.bcast({ event: "t-j10", rooms: ["j10"] }, "j10");
  await expectExactlyOnce("t-j10", members, (args, c) => assert.deepEqual(args, ["j10"], `${c.name}`));

  // socketsLeave from C2, then C2's broadcast to j9: its messages keep
  // their order, so every node has applied the leave first. Nobody hears.
  await cl.C2.c.call("sleave", { rooms: ["j1"] }, "j9");
  await cl.C2.c.bcast({ event: "t-j9-left", rooms: ["j9"] }, "nobody");
  await expectExactlyOnce("t-j9-left", []);
  // except: the leave did not touch j10.
  await cl.C2.c.bcast({ event: "t-j10-still", rooms: ["j10"] }, "still");
  await expectExactlyOnce("t-j10-still", members);

  // A join whose message passes 8000 bytes (a long room name) goes through
  // socket_io_attachments like a big broadcast.
  const long = "L".repeat(9000);
  for (const c of members) assert.equal(await c.call("join", long), "ok");
  await cl.C1.c.call("sjoin", { rooms: [long] }, "j-long");
  await untilHeard(cl.N1.c, "j-long", "j-long-probe", members);
});

function disconnected(c) {
  return new Promise((resolve, reject) => {
    if (!c.socket.connected) return resolve("already");
    const timer = setTimeout(() => reject(new Error(`${c.name}: not disconnected within ${WAIT_MS} ms`)), WAIT_MS);
    c.socket.once("disconnect", (reason) => {
      clearTimeout(timer);
      resolve(reason);
    });
  });
}

test("disconnectSockets from any node disconnects the targeted sockets on every node", { timeout: 30000 }, async () => {
  const extra = (letter) =>
    nodes.map((node) => {
      const c = new Client(node, "/", letter);
      clients.push(c);
      return c;
    });
  for (const [sender, letter, close] of [
    [() => cl.N1.c, "x", false],
    [() => cl.C1.c, "y", true],
  ]) {
    const victims = extra(letter);
    await Promise.all(victims.map((c) => c.connected()));
    for (const c of victims) assert.equal(await c.call("join", `d-${letter}`), "ok");
    // Wait until the room is known everywhere (joins are local: nothing to wait for),
    // then disconnect it from one node.
    const gone = victims.map(disconnected);
    await sender().call("sdisconnect", { rooms: [`d-${letter}`] }, close);
    const reasons = await Promise.all(gone);
    for (const r of reasons) assert.match(String(r), /io server disconnect|transport close/);
    // The others are still there.
    for (const node of nodes) assert.ok(cl[node.name].a.socket.connected, `${node.name} a still connected`);
  }
});

// ---- requests across nodes --------------------------------------------------

const fx = []; // one client per node on "/" in room f-room, with query, auth and data

async function fetchClients() {
  if (fx.length > 0) return fx;
  for (const node of nodes) {
    const c = new Client(node, "/", "f", { query: { tag: `q-${node.name}` }, auth: { who: `a-${node.name}` } });
    clients.push(c);
    fx.push(c);
  }
  await Promise.all(fx.map((c) => c.connected()));
  for (const c of fx) {
    assert.equal(await c.call("join", "f-room"), "ok");
    assert.equal(await c.call("setdata", { n: c.node.name, list: [1, "two"] }), "ok");
  }
  return fx;
}

test("fetchSockets from every node returns every socket with its rooms, handshake and data", { timeout: 60000 }, async () => {
  const fs_ = await fetchClients();
  for (const asker of nodes) {
    const res = await cl[asker.name].c.call("fetch", { rooms: ["f-room"] });
    assert.equal(res.err, null, `${asker.name}: fetch error ${preview(res)}`);
    assert.equal(res.sockets.length, fs_.length, `${asker.name}: sockets ${preview(res.sockets.map((s) => s.id))}`);
    for (const f of fs_) {
      const d = res.sockets.find((s) => s.id === f.socket.id);
      assert.ok(d, `${asker.name}: ${f.name} (${f.socket.id}) missing from ${preview(res.sockets.map((s) => s.id))}`);
      assert.ok(d.rooms.includes("f-room"), `${asker.name}: ${f.name} rooms ${preview(d.rooms)}`);
      assert.ok(d.rooms.includes(f.socket.id), `${asker.name}: ${f.name} rooms lack its own id: ${preview(d.rooms)}`);
      assert.deepEqual(d.data, { n: f.node.name, list: [1, "two"] }, `${asker.name}: ${f.name} data`);
      const hs = d.handshake;
      assert.equal(typeof hs, "object", `${asker.name}: ${f.name} handshake ${preview(hs)}`);
      assert.deepEqual(hs.auth, { who: `a-${f.node.name}` }, `${asker.name}: ${f.name} handshake.auth`);
      assert.equal(hs.query.tag, `q-${f.node.name}`, `${asker.name}: ${f.name} handshake.query ${preview(hs.query)}`);
      assert.equal(hs.query.EIO, "4", `${asker.name}: ${f.name} handshake.query ${preview(hs.query)}`);
      assert.equal(typeof hs.headers, "object", `${asker.name}: ${f.name} handshake.headers`);
      assert.match(String(hs.headers.host), /^127\.0\.0\.1:\d+$/, `${asker.name}: ${f.name} host header`);
      assert.equal(typeof hs.issued, "number", `${asker.name}: ${f.name} handshake.issued`);
      assert.match(String(hs.address), /127\.0\.0\.1/, `${asker.name}: ${f.name} handshake.address`);
      assert.match(String(hs.url), /^\/socket\.io\/\?/, `${asker.name}: ${f.name} handshake.url`);
    }
    // The whole namespace /chat: the d and e clients of every node.
    const chat = await cl[asker.name].d.call("fetch", {});
    assert.equal(chat.err, null);
    const want = allOn("/chat").filter((c) => c.socket.connected).map((c) => c.socket.id).sort();
    assert.deepEqual(chat.sockets.map((s) => s.id).sort(), want, `${asker.name}: /chat sockets`);
    // except
    const ex = await cl[asker.name].c.call("fetch", { rooms: ["f-room"], except: [fs_[0].socket.id] });
    assert.equal(ex.sockets.length, fs_.length - 1, `${asker.name}: except`);
  }
});

test("fetchSockets answers over 8000 bytes cross through the attachments table", { timeout: 60000 }, async () => {
  const bigs = [];
  for (const node of nodes) {
    const c = new Client(node, "/", "big");
    clients.push(c);
    bigs.push(c);
  }
  await Promise.all(bigs.map((c) => c.connected()));
  for (const c of bigs) {
    assert.equal(await c.call("join", "big-room"), "ok");
    assert.equal(await c.call("setdata", { big: largeString(`data-${c.node.name}`) }), "ok");
  }
  for (const asker of nodes) {
    const res = await cl[asker.name].c.call("fetch", { rooms: ["big-room"] });
    assert.equal(res.err, null, `${asker.name}: ${preview(res)}`);
    assert.equal(res.sockets.length, bigs.length, `${asker.name}: ${preview(res.sockets.map((s) => s.id))}`);
    for (const c of bigs) {
      const d = res.sockets.find((s) => s.id === c.socket.id);
      assert.ok(d, `${asker.name}: ${c.name} missing`);
      assert.ok(d.data.big === largeString(`data-${c.node.name}`), `${asker.name}: ${c.name} data differs`);
    }
  }
  for (const c of bigs) c.socket.close();
});

test("serverSideEmit with acks collects one answer from every other node", { timeout: 60000 }, async () => {
  for (const asker of nodes) {
    for (const nsp of NAMESPACES) {
      const c = nodeClients(asker, nsp)[0];
      const res = await c.call("sse", "whoami", `from-${asker.name}`);
      assert.equal(res.err, null, `${asker.name} ${nsp}: ${preview(res)}`);
      const others = nodes.filter((n) => n !== asker).map((n) => n.name).sort();
      assert.deepEqual(res.replies.map((r) => r.node).sort(), others, `${asker.name} ${nsp}: replies ${preview(res.replies)}`);
      for (const r of res.replies) assert.equal(r.arg, `from-${asker.name}`);
    }
    // Over 8000 bytes both ways (the request and the answers through the table).
    const big = largeString(`sse-${asker.name}`);
    const res = await cl[asker.name].c.call("sse", "whoami", big);
    assert.equal(res.err, null, `${asker.name} big: ${preview(res)}`);
    assert.equal(res.replies.length, nodes.length - 1, `${asker.name} big: ${preview(res.replies)}`);
    for (const r of res.replies) assert.ok(r.arg === big, `${asker.name} big: the answer of ${r.node} differs`);
  }
});

async function notesOf(node) {
  return cl[node.name].a.call("notes");
}

// A reply's binary argument: a Buffer from the Node node; from a C node, the
// placeholder in the reply and the bytes in hex beside it (cluster-node's bins).
function replyBinary(res, i, arg) {
  if (arg && arg._placeholder === true) {
    if (!res.bins[i] || res.bins[i][arg.num] === undefined) throw new Error(`reply ${i}: no attachment ${arg.num}: ${preview(res)}`);
    return Buffer.from(res.bins[i][arg.num], "hex");
  }
  return asBuffer(arg);
}

test("binary arguments and answers cross nodes in serverSideEmit and broadcasts with acks", { timeout: 60000 }, async () => {
  const fs_ = await fetchClients();
  for (const asker of nodes) {
    const bin = crypto.randomBytes(300);
    const res = await cl[asker.name].c.call("sse", "whoami", bin);
    assert.equal(res.err, null, `${asker.name}: ${preview(res)}`);
    assert.equal(res.replies.length, nodes.length - 1, `${asker.name}: ${preview(res.replies)}`);
    res.replies.forEach((r, i) => {
      const b = replyBinary(res, i, r.arg);
      assert.ok(b && b.equals(bin), `${asker.name}: the answer of ${r.node}: ${preview(r)} ${preview(res.bins)}`);
    });

    const bin2 = crypto.randomBytes(200);
    const res2 = await cl[asker.name].c.call("bcastack", { rooms: ["f-room"], timeout: 5000 }, "ask", bin2);
    assert.equal(res2.err, null, `${asker.name}: ${preview(res2)}`);
    assert.deepEqual(res2.replies.map((r) => r.client).sort(), fs_.map((c) => c.name).sort());
    res2.replies.forEach((r, i) => {
      const b = replyBinary(res2, i, r.arg);
      assert.ok(b && b.equals(bin2), `${asker.name}: the ack of ${r.client}: ${preview(r)}`);
    });
  }
});

test("serverSideEmit without acks reaches every other node's handler", { timeout: 60000 }, async () => {
  for (const asker of nodes) {
    assert.equal(await cl[asker.name].c.call("sse-noack", "note", `note-${asker.name}`), "sent");
  }
  for (const node of nodes) {
    const want = nodes.filter((n) => n !== node).map((n) => `note-${n.name}`);
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const got = await notesOf(node);
      if (want.every((w) => got.includes(w))) {
        assert.ok(!got.includes(`note-${node.name}`), `${node.name} heard its own serverSideEmit: ${preview(got)}`);
        break;
      }
      if (Date.now() > deadline) assert.fail(`${node.name}: notes ${preview(got)}, expected ${preview(want)}`);
      await h.sleep(100);
    }
  }
});

test("a broadcast with acks collects one answer per client across nodes", { timeout: 60000 }, async () => {
  const fs_ = await fetchClients();
  for (const asker of nodes) {
    const res = await cl[asker.name].c.call("bcastack", { rooms: ["f-room"], timeout: 5000 }, "ask", `b-${asker.name}`);
    assert.equal(res.err, null, `${asker.name}: ${preview(res)}`);
    assert.deepEqual(
      res.replies.map((r) => r.client).sort(),
      fs_.map((c) => c.name).sort(),
      `${asker.name}: replies ${preview(res.replies)}`,
    );
    for (const r of res.replies) assert.equal(r.arg, `b-${asker.name}`);
  }
});

test("a broadcast with acks to a client that never answers ends with a timeout and the others' answers", { timeout: 60000 }, async () => {
  const fs_ = await fetchClients();
  const mute = new Client(byName.C2, "/", "mute", { silent: true });
  clients.push(mute);
  await mute.connected();
  assert.equal(await mute.call("join", "g-room"), "ok");
  for (const asker of [byName.C1, byName.N1]) {
    const res = await cl[asker.name].c.call("bcastack", { rooms: ["f-room", "g-room"], timeout: 3000 }, "ask", "t");
    assert.equal(res.err, "timeout", `${asker.name}: ${preview(res)}`);
    assert.deepEqual(res.replies.map((r) => r.client).sort(), fs_.map((c) => c.name).sort(), `${asker.name}: replies`);
  }
  mute.socket.close();
});

test("every node counts the others (serverCount), also after 11 s of nothing but heartbeats", { timeout: 60000 }, async () => {
  for (const round of [0, 1]) {
    if (round === 1) await h.sleep(11000); // past the adapter's 10 s heartbeat timeout
    for (const node of nodes) {
      for (const nsp of NAMESPACES) {
        const n = await nodeClients(node, nsp)[0].call("servercount");
        assert.equal(n, nodes.length, `${node.name} ${nsp}${round ? " after 11 s" : ""}: serverCount ${n}`);
      }
    }
  }
});

test("what @socket.io/postgres-emitter publishes reaches the clients of our nodes", { timeout: 60000 }, async (t) => {
  const { Emitter } = require(path.join(h.SOURCE_DIR, "tests", "node_modules", "@socket.io", "postgres-emitter"));
  const pg = require(path.join(h.SOURCE_DIR, "tests", "node_modules", "pg"));
  const pool = new pg.Pool({ connectionString: dbUrl });
  // The Node adapter 0.5.0 drops the emitter's messages (they name no
  // namespace, and it routes by msg.nsp): only our nodes are checked.
  const ours = nodes.filter((n) => n.isC);
  if (ours.length === 0) return t.skip("no C node (SPACES_CLUSTER_NODE=reference)");
  try {
    const emitter = new Emitter(pool);
    const big = largeString("emitter");
    const bin = crypto.randomBytes(2000);
    emitter.emit("em-all", "hello", { n: 1 });
    emitter.to("f-room").emit("em-room", "r");
    emitter.of("/chat").emit("em-chat", "c");
    emitter.emit("em-big", big);
    emitter.emit("em-bin", bin, "tail");
    emitter.serverSideEmit("note", "from-emitter");
    const fs_ = await fetchClients();
    const on = (nsp) => allOn(nsp).filter((c) => c.node.isC && c.socket.connected);
    await Promise.all(on("/").map((c) => c.waitEvents("em-all")));
    await Promise.all(on("/").map((c) => c.waitEvents("em-big")));
    await Promise.all(on("/").map((c) => c.waitEvents("em-bin")));
    await Promise.all(on("/chat").map((c) => c.waitEvents("em-chat")));
    await Promise.all(fs_.filter((c) => c.node.isC).map((c) => c.waitEvents("em-room")));
    await h.sleep(QUIET_MS);
    for (const c of on("/")) {
      assert.deepEqual(c.got("em-all"), [["hello", { n: 1 }]], `${c.name}: em-all`);
      assert.equal(c.got("em-big").length, 1, `${c.name}: em-big`);
      assert.ok(c.got("em-big")[0][0] === big, `${c.name}: the big string differs`);
      const b = c.got("em-bin");
      assert.equal(b.length, 1, `${c.name}: em-bin`);
      assert.ok(asBuffer(b[0][0]) && asBuffer(b[0][0]).equals(bin), `${c.name}: em-bin bytes`);
      assert.equal(b[0][1], "tail");
      assert.equal(c.got("em-room").length, fs_.includes(c) ? 1 : 0, `${c.name}: em-room`);
      assert.equal(c.got("em-chat").length, 0, `${c.name}: em-chat on /`);
    }
    for (const c of on("/chat")) assert.deepEqual(c.got("em-chat"), [["c"]], `${c.name}: em-chat`);
    // What the README says of the reference: its adapter drops them.
    for (const c of allOn("/").filter((x) => !x.node.isC && x.socket.connected)) {
      assert.equal(c.got("em-all").length, 0, `${c.name}: the Node adapter 0.5.0 delivered an emitter message`);
    }
    for (const node of ours) {
      const deadline = Date.now() + WAIT_MS;
      while (!(await notesOf(node)).includes("from-emitter")) {
        if (Date.now() > deadline) assert.fail(`${node.name}: the emitter's serverSideEmit never came`);
        await h.sleep(100);
      }
    }
  } finally {
    await pool.end();
  }
});

test("the C nodes count what they published and delivered, and dropped nothing", { timeout: 30000 }, async (t) => {
  const cNodes = nodes.filter((n) => n.isC);
  if (cNodes.length === 0) return t.skip("no C node (SPACES_CLUSTER_NODE=reference)");
  for (const node of cNodes) {
    const st = await cl[node.name].a.call("stats");
    if (process.env.SPACES_TEST_VERBOSE === "1") console.log(node.name, "stats", st);
    assert.equal(typeof st, "object", `${node.name}: stats ${preview(st)}`);
    for (const k of ["published", "delivered", "ignored", "dropped"]) {
      assert.equal(typeof st[k], "number", `${node.name}: stats.${k} in ${preview(st)}`);
    }
    assert.ok(st.published > 0, `${node.name}: published ${st.published}`);
    assert.ok(st.delivered > 0, `${node.name}: delivered ${st.delivered}`);
    assert.equal(st.dropped, 0, `${node.name}: dropped ${st.dropped} (stats ${preview(st)})`);
    // Requests across nodes were made and answered.
    assert.ok(st.requests > 0, `${node.name}: requests ${st.requests}`);
    assert.ok(st.answered > 0, `${node.name}: answered ${st.answered}`);
  }
  for (const node of nodes) node.server.assertAlive();
});
