// The tutorial program socketio/examples/chat.c does what its comments say:
// the middleware refuses clients without a name, "chat" reaches the other
// sockets of the lobby (not the sender), "ping" is acknowledged with "pong",
// and the server asks for an acknowledgement with "are-you-there".
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const h = require("../lib/harness.js");
const { io } = require(path.join(h.SOURCE_DIR, "tests", "node_modules", "socket.io-client"));

let server;
before(async () => {
  server = await h.startServer([path.join(h.BUILD_DIR, "example-chat")]);
});
after(async () => {
  await server.stop();
});

function connect(auth) {
  return io(server.url, { auth, transports: ["websocket"], reconnection: false, forceNew: true });
}

function once(socket, event) {
  return new Promise((resolve) => socket.once(event, (...args) => resolve(args)));
}

test("a client without a name is refused by the middleware", { timeout: 20000 }, async () => {
  const s = connect({});
  const [err] = await once(s, "connect_error");
  assert.equal(err.message, "a name is required");
  assert.deepEqual(err.data, { hint: "auth: {name: ...}" });
  s.close();
});

test("chat goes to the others in the lobby, ping is acked, the server asks for an ack", { timeout: 20000 }, async () => {
  const ada = connect({ name: "ada" });
  const bob = connect({ name: "bob" });
  // Both listeners go on before either is awaited: bob's welcome may come
  // first, and a listener added after it would wait for ever.
  const welcomes = Promise.all([once(ada, "welcome"), once(bob, "welcome")]);
  assert.deepEqual(await welcomes, [["you are in the lobby"], ["you are in the lobby"]]);

  let adaGotOwn = false;
  ada.on("chat", () => (adaGotOwn = true));
  const got = once(bob, "chat");
  ada.emit("chat", "hello", { n: 1 });
  assert.deepEqual(await got, ["hello", { n: 1 }]);
  await h.sleep(100);
  assert.equal(adaGotOwn, false, "the sender must not get its own chat");

  assert.equal(await ada.timeout(5000).emitWithAck("ping"), "pong");

  const asked = new Promise((resolve) =>
    bob.on("are-you-there", (ack) => {
      ack("yes");
      resolve();
    })
  );
  bob.emit("poke");
  await asked;
  ada.close();
  bob.close();
});
