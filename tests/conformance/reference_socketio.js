#!/usr/bin/env node
// Reference Socket.IO server: the official Node.js `socket.io` 4.8 package in
// the configuration our C `conformance-socketio` has (issue 3, "Conformance
// example"), so that every Socket.IO acceptance test can be validated against
// it first, and then run unchanged against ours.
//
//   node tests/conformance/reference_socketio.js --port 3000
//   node tests/conformance/reference_socketio.js --port 3000 --parser msgpack
//   node tests/conformance/reference_socketio.js --port 3000 --recovery 120000
//
// Configuration (what the official protocol test suite expects): listens on
// 127.0.0.1:<port>, path /socket.io/, pingInterval 300 ms, pingTimeout 200 ms,
// maxPayload (maxHttpBufferSize) 1000000 bytes, connectTimeout 1000 ms, CORS
// origin "*", both transports with upgrades.
//
//   namespace "/"        on connect emits "auth" with the handshake auth;
//                        "message" -> emits "message-back" with the same
//                        arguments (binary included); "message-with-ack" ->
//                        acks with the same arguments.
//   namespace "/custom"  on connect emits "auth" with the handshake auth.
//
// Options:
//   --port P            TCP port (default 3000)
//   --parser msgpack    use socket.io-msgpack-parser instead of the default
//                       JSON parser (server option `parser`)
//   --admin-ui USER:HASH  instrument() of @socket.io/admin-ui 0.5 on "/admin"
//                       with basic auth (USER, bcrypt HASH), mode
//                       "development"; CORS then reflects the origin with
//                       credentials. --admin-ui-readonly: readonly;
//                       --admin-ui-mode production: mode "production".
//   --allow-eio3        accept Engine.IO 3 clients (socket.io-client 2.x):
//                       server option `allowEIO3: true`
//   --recovery [MS]     enable connection state recovery (server option
//                       `connectionStateRecovery`: maxDisconnectionDuration
//                       MS, default 120000 ms; skipMiddlewares true). The
//                       tests pass "--recovery 120000", as the C server
//                       takes a value. It is server-wide, as in socket.io: CONNECT
//                       replies then carry a "pid" and every event emitted
//                       without an ack carries an offset as its last
//                       argument, so the plain protocol suite cannot run on
//                       a server started with it.
//
// EXTRA behaviour, beyond the official suite, that the acceptance tests use
// (the C conformance server implements the same; each is marked EXTRA below):
//
//   on "/" only:
//   EXTRA join        (rooms: string | string[], [ack])  socket.join(rooms); ack()
//   EXTRA leave       (room: string, [ack])              socket.leave(room); ack()
//   EXTRA broadcast   (opts, ...args, [ack])             emits opts.event with
//                     args to: the namespace "/" (default), or, if opts.others
//                     is true, every socket of "/" but the sender
//                     (socket.broadcast); restricted to opts.to (room or list
//                     of rooms) if given, minus opts.except (room or list) if
//                     given, volatile if opts.volatile is true; then ack().
//   EXTRA request-ack (opts, ack)                        emits opts.event with
//                     opts.args (array, may hold binary) to this socket with an
//                     ack callback, with a timeout of opts.timeout ms if given
//                     (socket.timeout(ms).emit), then acks the request with
//                     {error: null, responses: [...the client's ack args]} or,
//                     on timeout, {error: "operation has timed out",
//                     responses: []}. (Node's message; tests only require a
//                     non-empty string.)
//   EXTRA disconnect-me (close?: boolean)                socket.disconnect(close
//                     === true): the client sees "io server disconnect"; with
//                     true the whole Engine.IO connection closes too.
//   EXTRA disconnect-reason (sid: string, ack)           acks with the reason
//                     the server gave when the socket of "/" with that id
//                     disconnected ("client namespace disconnect", "server
//                     namespace disconnect", "transport close", "ping
//                     timeout", ...), or null if it has not (the last 1000
//                     are kept).
//   EXTRA handshake   (ack)                              acks with {auth,
//                     query, headers, address} of socket.handshake (headers
//                     with lower-case names, query as strings).
//
//   EXTRA namespace "/private": a connect middleware lets a socket in only if
//                     its handshake auth has token "secret"; otherwise
//                     CONNECT_ERROR {"message":"not authorized",
//                     "data":{"code":403}}. On connect emits "auth" like "/".
//   EXTRA namespaces matching /^\/dyn-\d+$/ (dynamic, e.g. "/dyn-42"): on
//                     connect emit "auth" like "/". "/dyn-x" stays unknown.
//
// SIGTERM and SIGINT close the server and exit with status 0.
"use strict";

const http = require("node:http");
const path = require("node:path");

// The npm packages live in tests/node_modules; resolve them from there even
// when this file is started from another working directory.
const modules = path.join(__dirname, "..", "node_modules");
const load = (name) => require(require.resolve(name, { paths: [modules] }));
const { Server } = load("socket.io");

function usage(msg) {
  process.stderr.write(
    `reference_socketio: ${msg}\n` +
      "usage: reference_socketio.js [--port P] [--parser json|msgpack] [--recovery [MS]] [--allow-eio3]\n" +
      "       [--admin-ui USER:HASH [--admin-ui-readonly] [--admin-ui-mode production]]\n"
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { port: 3000, parser: "json", recovery: 0, allowEIO3: false, adminUi: null, adminReadonly: false, adminMode: "development" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--port" && i + 1 < argv.length) opts.port = Number(argv[++i]);
    else if (a.startsWith("--port=")) opts.port = Number(a.slice(7));
    else if (a === "--parser" && i + 1 < argv.length) opts.parser = argv[++i];
    else if (a.startsWith("--parser=")) opts.parser = a.slice(9);
    else if (a === "--allow-eio3") opts.allowEIO3 = true;
    else if (a === "--recovery") {
      opts.recovery = 120000;
      if (i + 1 < argv.length && /^\d+$/.test(argv[i + 1])) opts.recovery = Number(argv[++i]);
    } else if (a.startsWith("--recovery=")) opts.recovery = Number(a.slice(11));
    else if (a === "--admin-ui" && i + 1 < argv.length) opts.adminUi = argv[++i];
    else if (a === "--admin-ui-readonly") opts.adminReadonly = true;
    else if (a === "--admin-ui-mode" && i + 1 < argv.length) opts.adminMode = argv[++i];
    else usage(`unknown argument ${JSON.stringify(a)}`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) usage("bad --port");
  if (opts.parser !== "json" && opts.parser !== "msgpack") usage("bad --parser");
  if (!Number.isInteger(opts.recovery) || opts.recovery < 0) usage("bad --recovery");
  return opts;
}

const args = parseArgs(process.argv.slice(2));

const httpServer = http.createServer((req, res) => {
  // Requests outside /socket.io/ are not ours.
  res.writeHead(404, { "Content-Type": "text/plain" });
  res.end("not found");
});

const serverOptions = {
  path: "/socket.io/",
  serveClient: false,
  pingInterval: 300,
  pingTimeout: 200,
  maxHttpBufferSize: 1e6,
  connectTimeout: 1000,
  cors: { origin: "*" },
};
if (args.allowEIO3) serverOptions.allowEIO3 = true;
if (args.parser === "msgpack") serverOptions.parser = load("socket.io-msgpack-parser");
if (args.recovery) {
  serverOptions.connectionStateRecovery = {
    maxDisconnectionDuration: args.recovery,
    skipMiddlewares: true,
  };
}

if (args.adminUi) serverOptions.cors = { origin: true, credentials: true };

const io = new Server(httpServer, serverOptions);

if (args.adminUi) {
  const colon = args.adminUi.indexOf(":");
  if (colon < 0) usage("bad --admin-ui (USER:HASH)");
  load("@socket.io/admin-ui").instrument(io, {
    auth: { type: "basic", username: args.adminUi.slice(0, colon), password: args.adminUi.slice(colon + 1) },
    readonly: args.adminReadonly,
    mode: args.adminMode,
  });
}

// Reasons of the last sockets of "/" that disconnected (EXTRA disconnect-reason).
const reasons = new Map();
const MAX_REASONS = 1000;

function lastIsAck(list) {
  return list.length > 0 && typeof list[list.length - 1] === "function";
}

io.on("connection", (socket) => {
  socket.emit("auth", socket.handshake.auth);

  socket.on("message", (...list) => {
    socket.emit("message-back", ...list);
  });

  socket.on("message-with-ack", (...list) => {
    if (!lastIsAck(list)) return;
    const ack = list.pop();
    ack(...list);
  });

  // EXTRA join
  socket.on("join", (rooms, ack) => {
    if (typeof rooms === "string" || Array.isArray(rooms)) socket.join(rooms);
    if (typeof ack === "function") ack();
  });

  // EXTRA leave
  socket.on("leave", (room, ack) => {
    if (typeof room === "string") socket.leave(room);
    if (typeof ack === "function") ack();
  });

  // EXTRA broadcast
  socket.on("broadcast", (opts, ...list) => {
    const ack = lastIsAck(list) ? list.pop() : null;
    if (opts && typeof opts.event === "string") {
      let op = opts.others === true ? socket.broadcast : io.of(socket.nsp.name);
      if (opts.to !== undefined) op = op.to(opts.to);
      if (opts.except !== undefined) op = op.except(opts.except);
      if (opts.volatile === true) op = op.volatile;
      op.emit(opts.event, ...list);
    }
    if (ack) ack();
  });

  // EXTRA request-ack
  socket.on("request-ack", (opts, ack) => {
    if (!opts || typeof opts.event !== "string" || typeof ack !== "function") return;
    const list = Array.isArray(opts.args) ? opts.args : [];
    if (typeof opts.timeout === "number") {
      socket.timeout(opts.timeout).emit(opts.event, ...list, (err, ...responses) => {
        if (err) ack({ error: err.message || String(err), responses: [] });
        else ack({ error: null, responses });
      });
    } else {
      socket.emit(opts.event, ...list, (...responses) => {
        ack({ error: null, responses });
      });
    }
  });

  // EXTRA disconnect-me
  socket.on("disconnect-me", (close) => {
    socket.disconnect(close === true);
  });

  // EXTRA disconnect-reason
  socket.on("disconnect-reason", (sid, ack) => {
    if (typeof ack !== "function") return;
    ack(reasons.has(sid) ? reasons.get(sid) : null);
  });

  // EXTRA handshake
  socket.on("handshake", (ack) => {
    if (typeof ack !== "function") return;
    const h = socket.handshake;
    ack({ auth: h.auth, query: h.query, headers: h.headers, address: h.address });
  });

  socket.on("disconnect", (reason) => {
    reasons.set(socket.id, reason);
    if (reasons.size > MAX_REASONS) reasons.delete(reasons.keys().next().value);
  });
});

io.of("/custom").on("connection", (socket) => {
  socket.emit("auth", socket.handshake.auth);
});

// EXTRA namespace /private: a connect middleware that refuses without auth.
const priv = io.of("/private");
priv.use((socket, next) => {
  const auth = socket.handshake.auth;
  if (auth && auth.token === "secret") return next();
  const err = new Error("not authorized");
  err.data = { code: 403 };
  next(err);
});
priv.on("connection", (socket) => {
  socket.emit("auth", socket.handshake.auth);
});

// EXTRA dynamic namespaces /dyn-<digits>.
io.of(/^\/dyn-\d+$/).on("connection", (socket) => {
  socket.emit("auth", socket.handshake.auth);
});

httpServer.on("error", (err) => {
  process.stderr.write(`reference_socketio: ${err.message}\n`);
  process.exit(1);
});

httpServer.listen(args.port, "127.0.0.1", () => {
  process.stdout.write(
    `reference_socketio listening on 127.0.0.1:${httpServer.address().port}` +
      ` (parser ${args.parser}${args.recovery ? ", recovery" : ""})\n`
  );
});

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  io.close();
  httpServer.close(() => process.exit(0));
  // Keep-alive and half-open connections would hold close() open; we are done.
  if (typeof httpServer.closeAllConnections === "function") {
    httpServer.closeAllConnections();
  }
  setTimeout(() => process.exit(0), 500).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
