// The admin UI's protocol (@socket.io/admin-ui 0.5, issue 16) side by side:
// our conformance-socketio with --admin-ui (sio_admin_ui_attach) and the
// reference Node.js socket.io 4.8 with the package's own instrument()
// (tests/conformance/reference_socketio.js --admin-ui), started here with the
// same bcrypt hash. socket.io-client plays the dashboard: it logs in on
// "/admin" as the dashboard does (auth {username, password}, then
// {sessionId}), and every message is compared with the reference's: the
// same events, the same keys, the same kinds of values.
//
//   node --test tests/e2e/admin_ui.test.js
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const h = require("../lib/harness.js");

const modules = path.join(h.SOURCE_DIR, "tests", "node_modules");
const { io } = require(path.join(modules, "socket.io-client"));
const bcrypt = require(path.join(modules, "bcryptjs"));

const TEST_OPTS = { timeout: 60000 };
const USER = "admin";
const PASSWORD = "correct horse";
// Cost 4 keeps the login cheap under the sanitizers; the format is the usual one.
const HASH = bcrypt.hashSync(PASSWORD, 4);
const OURS = path.join(h.BUILD_DIR, "conformance-socketio");
const REFERENCE = [process.execPath, path.join(h.SOURCE_DIR, "tests/conformance/reference_socketio.js")];
const ALL_FEATURES = ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT",
  "AGGREGATED_EVENTS", "ALL_EVENTS"];

const servers = {};
const sockets = [];

before(async () => {
  const start = (argv) => h.startServer(argv);
  const admin = ["--admin-ui", `${USER}:${HASH}`];
  const ro = [...admin, "--admin-ui-readonly", "--admin-ui-mode", "production"];
  [servers.ours, servers.ref, servers.oursRo, servers.refRo, servers.oursOff] = await Promise.all([
    start([OURS, ...admin]),
    start([...REFERENCE, ...admin]),
    start([OURS, ...ro]),
    start([...REFERENCE, ...ro]),
    start([OURS]),
  ]);
});

after(async () => {
  for (const s of sockets) s.close();
  for (const s of Object.values(servers)) if (s) await s.stop();
});

function connect(server, nsp, opts = {}) {
  const s = io(server.url + nsp, { transports: ["websocket"], reconnection: false, forceNew: true, ...opts });
  sockets.push(s);
  return s;
}

function once(socket, event) {
  return new Promise((resolve) => socket.once(event, (...args) => resolve(args)));
}

/** Resolves with the arguments of the first `event` for which pred(args) holds. */
function waitFor(socket, event, pred = () => true) {
  return new Promise((resolve) => {
    const fn = (...args) => {
      if (pred(...args)) {
        socket.off(event, fn);
        resolve(args);
      }
    };
    socket.on(event, fn);
  });
}

/** Connects and resolves with the socket once "connect" or "connect_error" came. */
async function outcome(socket) {
  return new Promise((resolve) => {
    socket.once("connect", () => resolve({ ok: true }));
    socket.once("connect_error", (err) => resolve({ ok: false, message: err.message }));
  });
}

/**
 * The shape of a value: the kind of each leaf, the keys of each object
 * (sorted), the shape of the first element of each array.
 */
function shape(v) {
  if (Array.isArray(v)) return v.length ? [shape(v[0])] : [];
  if (v === null) return "null";
  if (typeof v === "object") {
    const o = {};
    for (const k of Object.keys(v).sort()) o[k] = shape(v[k]);
    return o;
  }
  return typeof v;
}

const ISO_DATE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Logs a dashboard in; resolves {admin, session, config, allSockets}. */
async function login(server, auth = { username: USER, password: PASSWORD }) {
  const admin = connect(server, "/admin", { auth });
  const session = once(admin, "session");
  const config = once(admin, "config");
  const all = once(admin, "all_sockets");
  const r = await outcome(admin);
  assert.ok(r.ok, `login refused: ${r.message}`);
  return { admin, session: (await session)[0], config: (await config)[0], allSockets: (await all)[0] };
}

/** An app socket of "/" in room "room-a". */
async function appSocket(server) {
  const s = connect(server, "/");
  await once(s, "auth");
  await s.timeout(10000).emitWithAck("join", "room-a");
  return s;
}

describe("the admin namespace", () => {
  it("is not there unless asked for", TEST_OPTS, async () => {
    const r = await outcome(connect(servers.oursOff, "/admin", { auth: { username: USER, password: PASSWORD } }));
    assert.deepEqual(r, { ok: false, message: "Invalid namespace" });
  });

  for (const side of ["ours", "ref"]) {
    it(`refuses a wrong password, a wrong name, no credentials, an unknown session (${side})`, TEST_OPTS, async () => {
      const server = servers[side];
      for (const auth of [
        { username: USER, password: "wrong" },
        { username: "root", password: PASSWORD },
        {},
        { sessionId: "0123456789abcdef" },
      ]) {
        const r = await outcome(connect(server, "/admin", { auth }));
        assert.deepEqual(r, { ok: false, message: "invalid credentials" }, JSON.stringify(auth));
      }
    });
  }
});

describe("what a dashboard hears", () => {
  const seen = {};

  before(async () => {
    for (const side of ["ours", "ref"]) {
      const server = servers[side];
      const app = await appSocket(server);
      const logged = await login(server);
      seen[side] = { app, ...logged };
    }
  });

  it("a session id, then config with every feature (development mode)", TEST_OPTS, () => {
    for (const side of ["ours", "ref"]) {
      assert.match(seen[side].session, /^[0-9a-f]{16}$/, side);
      assert.deepEqual(seen[side].config, { supportedFeatures: ALL_FEATURES }, side);
    }
  });

  it("all_sockets: every socket, with the reference's shape", TEST_OPTS, () => {
    const shapes = {};
    for (const side of ["ours", "ref"]) {
      const { app, admin, allSockets } = seen[side];
      const mine = allSockets.find((s) => s.id === app.id);
      assert.ok(mine, `${side}: the app socket is listed`);
      assert.equal(mine.nsp, "/");
      assert.deepEqual(mine.rooms.sort(), [app.id, "room-a"].sort());
      assert.equal(mine.clientId, app.io.engine.id.slice(0, 12));
      assert.equal(mine.transport, "websocket");
      assert.deepEqual(mine.data, {});
      assert.equal(mine.handshake.query.EIO, "4");
      assert.equal(mine.handshake.secure, false);
      assert.equal(typeof mine.handshake.headers.host, "string");
      assert.ok(allSockets.some((s) => s.id === admin.id && s.nsp === "/admin"), `${side}: the dashboard is listed`);
      // Header names and query keys differ between two servers; the rest must not.
      shapes[side] = shape({ ...mine, handshake: { ...mine.handshake, headers: {}, query: {} } });
    }
    assert.deepEqual(shapes.ours, shapes.ref);
  });

  it("server_stats with the reference's shape", TEST_OPTS, async () => {
    const stats = {};
    for (const side of ["ours", "ref"]) {
      // One that counts events: a message in and out first.
      const { app, admin } = seen[side];
      await app.timeout(10000).emitWithAck("message-with-ack", 1);
      const [s] = await waitFor(admin, "server_stats", (st) => st.aggregatedEvents.length > 0);
      assert.equal(s.pid > 0, true);
      assert.equal(typeof s.serverId, "string");
      assert.ok(s.clientsCount >= 2, `${side}: ${s.clientsCount}`);
      assert.equal(s.pollingClientsCount, 0);
      const root = s.namespaces.find((n) => n.name === "/");
      assert.ok(root && root.socketsCount >= 1, JSON.stringify(s.namespaces));
      assert.ok(s.namespaces.find((n) => n.name === "/admin" && n.socketsCount >= 1));
      const types = new Set(s.aggregatedEvents.map((e) => e.type));
      for (const e of s.aggregatedEvents) {
        assert.equal(e.timestamp % 1000, 0);
        assert.ok(e.count > 0);
      }
      stats[side] = { s, types };
    }
    const strip = (s) => shape({ ...s, aggregatedEvents: [s.aggregatedEvents.find((e) => !e.subType)] });
    assert.deepEqual(strip(stats.ours.s), strip(stats.ref.s));
    for (const side of ["ours", "ref"])
      for (const t of stats[side].types)
        assert.ok(["rawConnection", "rawDisconnection", "packetsIn", "packetsOut", "bytesIn", "bytesOut"].includes(t), t);
  });

  it("socket_connected, room_joined, event_received, event_sent, room_left, socket_disconnected", TEST_OPTS, async () => {
    const got = {};
    for (const side of ["ours", "ref"]) {
      const server = servers[side];
      const { admin } = seen[side];
      const events = [];
      const record = (name, ...args) => {
        if (name !== "server_stats") events.push([name, ...args]);
      };
      admin.onAny(record);
      const s = connect(server, "/");
      await once(s, "auth");
      const id = s.id; // socket.io-client forgets it on disconnect
      await s.timeout(10000).emitWithAck("join", "room-b");
      const back = once(s, "message-back");
      s.emit("message", "hi", { n: 2 });
      await back;
      await s.timeout(10000).emitWithAck("leave", "room-b");
      const gone = waitFor(admin, "socket_disconnected", (nsp, who) => who === id);
      s.disconnect();
      await gone;
      // room_left comes on the next tick in Node: wait for the one of the own room.
      await new Promise((resolve) => {
        if (events.some((e) => e[0] === "room_left" && e[2] === id && e[3] === id)) return resolve();
        waitFor(admin, "room_left", (nsp, room, who) => room === id && who === id).then(resolve);
      });
      admin.offAny(record);
      const mine = events.filter((e) => e.includes(id) || (e[0] === "socket_connected" && e[1].id === id));
      const find = (name, pred = () => true) => mine.find((e) => e[0] === name && pred(e));
      const connected = find("socket_connected");
      assert.ok(connected, `${side}: ${JSON.stringify(events).slice(0, 2000)}`);
      assert.equal(connected[1].nsp, "/");
      assert.match(connected[2], ISO_DATE);
      assert.deepEqual(find("room_joined", (e) => e[2] === "room-b").slice(1, 4), ["/", "room-b", id]);
      const received = find("event_received", (e) => e[3][0] === "message");
      assert.deepEqual(received.slice(1, 4), ["/", id, ["message", "hi", { n: 2 }]]);
      assert.match(received[4], ISO_DATE);
      const sent = find("event_sent", (e) => e[3][0] === "message-back");
      assert.deepEqual(sent.slice(1, 4), ["/", id, ["message-back", "hi", { n: 2 }]]);
      assert.deepEqual(find("room_left", (e) => e[2] === "room-b").slice(1, 4), ["/", "room-b", id]);
      const disc = find("socket_disconnected");
      assert.deepEqual(disc.slice(1, 4), ["/", id, "client namespace disconnect"]);
      got[side] = {
        names: [...new Set(mine.map((e) => e[0]))].sort(),
        connected: shape({ ...connected[1], handshake: { ...connected[1].handshake, headers: {}, query: {} } }),
      };
    }
    assert.deepEqual(got.ours.names, got.ref.names);
    assert.deepEqual(got.ours.connected, got.ref.connected);
  });

  it("a socket that upgrades: socket_connected on polling, then socket_updated", TEST_OPTS, async () => {
    for (const side of ["ours", "ref"]) {
      const { admin } = seen[side];
      // The dashboard may hear of the socket before the socket knows its id.
      const heard = [];
      const record = (name, arg) => {
        if (name === "socket_connected" || name === "socket_updated") heard.push([name, arg]);
      };
      admin.onAny(record);
      const s = connect(servers[side], "/", { transports: ["polling", "websocket"] });
      await once(s, "auth");
      const id = s.id;
      const isUpdate = ([n, a]) => n === "socket_updated" && a.id === id && a.transport;
      while (!heard.some(isUpdate)) await h.sleep(50);
      admin.offAny(record);
      const connected = heard.find(([n, a]) => n === "socket_connected" && a.id === id);
      assert.ok(connected, `${side}: ${JSON.stringify(heard)}`);
      assert.equal(connected[1].transport, "polling", side);
      const updated = heard.find(isUpdate);
      assert.deepEqual(updated[1], { id, nsp: "/", transport: "websocket" }, side);
    }
  });

  it("the session id logs in again without the password", TEST_OPTS, async () => {
    for (const side of ["ours", "ref"]) {
      const again = connect(servers[side], "/admin", { auth: { sessionId: seen[side].session } });
      const config = once(again, "config");
      assert.deepEqual(await outcome(again), { ok: true }, side);
      assert.deepEqual((await config)[0], { supportedFeatures: ALL_FEATURES });
      again.close();
    }
  });

  it("commands: join, emit to a room, leave, _disconnect", TEST_OPTS, async () => {
    for (const side of ["ours", "ref"]) {
      const server = servers[side];
      const { admin } = seen[side];
      const s = connect(server, "/");
      await once(s, "auth");
      // join (filter: the socket's id, as the dashboard sends it)
      let joined = waitFor(admin, "room_joined", (nsp, room, id) => room === "room-c" && id === s.id);
      admin.emit("join", "/", "room-c", s.id);
      await joined;
      // emit to the room, with several arguments
      const news = once(s, "news");
      admin.emit("emit", "/", "room-c", "news", "hello", { a: [1, 2] });
      assert.deepEqual(await news, ["hello", { a: [1, 2] }], side);
      // leave
      const left = waitFor(admin, "room_left", (nsp, room, id) => room === "room-c" && id === s.id);
      admin.emit("leave", "/", "room-c", s.id);
      await left;
      // _disconnect of this one socket: the others stay
      const other = await appSocket(server);
      const reason = once(s, "disconnect");
      admin.emit("_disconnect", "/", false, s.id);
      assert.equal((await reason)[0], "io server disconnect", side);
      assert.equal(other.connected, true);
      // A command for a namespace that does not exist: Node creates it
      // (io.of), ours ignores the command and creates none.
      admin.emit("join", "/nowhere", "x");
      const [st] = await waitFor(admin, "server_stats");
      const created = st.namespaces.some((n) => n.name === "/nowhere");
      assert.equal(created, side === "ref", JSON.stringify(st.namespaces));
    }
  });
});

describe("read-only, production mode", () => {
  for (const side of ["oursRo", "refRo"]) {
    it(`config has no commands and no per-socket events; commands are ignored (${side})`, TEST_OPTS, async () => {
      const server = servers[side];
      const app = await appSocket(server);
      const admin = connect(server, "/admin", { auth: { username: USER, password: PASSWORD } });
      let allSockets = false;
      admin.on("all_sockets", () => (allSockets = true));
      const config = once(admin, "config");
      assert.deepEqual(await outcome(admin), { ok: true });
      assert.deepEqual((await config)[0], { supportedFeatures: ["AGGREGATED_EVENTS"] });
      // The command goes first, then a CONNECT on the same connection: when
      // that is answered, the command has been read, and did nothing.
      admin.emit("_disconnect", "/", true);
      const same = admin.io.socket("/"); // opens at once (autoConnect)
      sockets.push(same);
      await once(same, "auth");
      assert.equal(app.connected, true);
      assert.equal(admin.connected, true);
      const [st] = await once(admin, "server_stats");
      assert.ok(st.namespaces.find((n) => n.name === "/").socketsCount >= 2);
      assert.equal(allSockets, false);
    });
  }
});
