// Our Socket.IO C API beyond what the reference suites can see, through
// conformance-socketio's "OURS" hooks (see the top of
// tests/conformance/socketio_server.c), with the official socket.io-client:
// catch-all listeners both ways, dynamic namespaces by pattern, and the
// adapter interface (broadcasts handed to other nodes, and fed in from them).
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const h = require("../lib/harness.js");
const { io } = require(path.join(h.SOURCE_DIR, "tests", "node_modules", "socket.io-client"));

let server;
before(async () => {
  server = await h.startServer([path.join(h.BUILD_DIR, "conformance-socketio")]);
});
after(async () => {
  await server.stop();
});

function connect(nsp, opts = {}) {
  return io(server.url + nsp, { transports: ["websocket"], reconnection: false, forceNew: true, ...opts });
}

function once(socket, event) {
  return new Promise((resolve) => socket.once(event, (...args) => resolve(args)));
}

test("catch-all listeners see incoming and outgoing events", { timeout: 20000 }, async () => {
  const s = connect("/any");
  await once(s, "hello-any");
  const echoed = once(s, "echoed");
  s.emit("echo", { x: 1 });
  assert.deepEqual(await echoed, [{ x: 1 }]);
  s.emit("something-else", 42);
  const log = await s.timeout(5000).emitWithAck("any-log");
  assert.deepEqual(log.in.slice(0, 3), ["echo", "something-else", "any-log"]);
  assert.deepEqual(log.out.slice(0, 2), ["hello-any", "echoed"]);
  s.close();
});

test("a dynamic namespace by pattern is created on first connect; others stay unknown", { timeout: 20000 }, async () => {
  const ok = connect("/pat-hello");
  const [auth] = await once(ok, "auth");
  assert.deepEqual(auth, {});
  ok.close();
  const bad = connect("/nopat-x");
  const [err] = await once(bad, "connect_error");
  assert.equal(err.message, "Invalid namespace");
  bad.close();
});

test("the adapter sees each broadcast once, and delivers packets from other nodes locally", { timeout: 20000 }, async () => {
  const a = connect("/");
  const b = connect("/");
  await Promise.all([once(a, "auth"), once(b, "auth")]);
  await a.timeout(5000).emitWithAck("join", "room-x");
  await b.timeout(5000).emitWithAck("join", "room-x");

  // A broadcast from this node: local sockets get it, and the adapter is handed
  // the event's data (name and arguments) to send to the other nodes.
  const got = Promise.all([once(a, "news"), once(b, "news")]);
  await a.timeout(5000).emitWithAck("broadcast", { event: "news", to: "room-x" }, "hi", 2);
  assert.deepEqual(await got, [["hi", 2], ["hi", 2]]);
  const log = await a.timeout(5000).emitWithAck("adapter-log");
  const mine = log.filter((e) => e.data.includes('"news"'));
  assert.equal(mine.length, 1, JSON.stringify(log));
  assert.equal(mine[0].data, '["news","hi",2]');
  assert.deepEqual(mine[0].rooms, ["room-x"]);

  // An event from "another node": delivered to the local members of the room,
  // and not handed back to the adapter.
  const remote = Promise.all([once(a, "remote"), once(b, "remote")]);
  const n = await a.timeout(5000).emitWithAck("adapter-deliver", "room-x", '["remote",{"from":"node-2"}]');
  assert.equal(n, 2);
  assert.deepEqual(await remote, [[{ from: "node-2" }], [{ from: "node-2" }]]);
  const after = await a.timeout(5000).emitWithAck("adapter-log");
  assert.equal(after.filter((e) => e.data.includes('"remote"')).length, 0);

  // Data that is not an event (an array starting with a name) is refused.
  for (const bad of ["{}", "[1]", "[]", '["disconnect"]', "not json"])
    assert.ok((await a.timeout(5000).emitWithAck("adapter-deliver", "room-x", bad)) < 0, bad);
  a.close();
  b.close();
});
