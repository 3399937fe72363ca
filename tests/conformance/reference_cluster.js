#!/usr/bin/env node
// Reference cluster node: the official Node.js `socket.io` 4.8 package with
// the official PostgreSQL adapter (@socket.io/postgres-adapter), the same
// test surface as our C `cluster-node` (spaces/cluster.h), so that C and
// Node.js processes sharing one database can be checked to carry each
// other's broadcasts (tests/e2e/cluster.test.js).
//
//   node tests/conformance/reference_cluster.js --port 3000 \
//       --database-url postgresql://postgres@127.0.0.1:5432/spaces
//
// Listens on 127.0.0.1:<port>, path /socket.io/. The adapter (LISTEN/NOTIFY
// on "socket.io#<namespace>", big or binary messages in the table
// socket_io_attachments, which is created at start-up when missing) serves
// every namespace. Namespaces "/" and "/chat" have the same events, each
// with an ack callback as its last argument:
//
//   join  (room, ack)            socket.join(room); ack("ok")
//   leave (room, ack)            socket.leave(room); ack("ok")
//   bcast (opts, ...args, ack)   emits opts.event (default "msg") with args to
//                                the namespace (the sender included when it
//                                matches), restricted to opts.rooms (list) if
//                                not empty, minus opts.except (list), volatile
//                                if opts.volatile is true; then ack("sent").
//   sjoin (opts, room, ack)      nsp.in(opts.rooms).except(opts.except)
//   sleave (opts, room, ack)     .socketsJoin(room) / .socketsLeave(room) /
//   sdisconnect (opts, close, ack)  .disconnectSockets(close); then ack(null)
//                                (the C node acks how many local sockets)
//   stats (ack)                  ack({}) (the C node acks its counters)
//   broadcast-room (room, ...args)  nsp.to(room).emit("tick", ...args)
//
// Requests across nodes, each acking {err, ...} with err null or "timeout":
//
//   setdata (value, ack)         socket.data = value; ack("ok")
//   fetch (opts, ack)            nsp.in(opts.rooms).except(opts.except).fetchSockets()
//                                as {err, sockets: [{id, handshake, rooms, data}]}
//   sse (event, arg, ack)        nsp.serverSideEmit(event, arg, cb): {err, replies}
//   sse-noack (event, arg, ack)  nsp.serverSideEmit(event, arg); ack("sent")
//   bcastack (opts, event, arg, ack)
//                                nsp.to(opts.rooms).except(opts.except)
//                                .timeout(opts.timeout).emit(event, arg, cb): {err, replies}
//   servercount (ack)            ack(await nsp.adapter.serverCount())
//   notes (ack)                  the serverSideEmit "note" arguments received
//
// Every namespace answers serverSideEmit "whoami"(arg, cb) with
// cb({node: NAME, arg}) and records "note"(arg). --name NAME (default "N").
//
// SIGTERM and SIGINT close the server and the pool and exit with status 0.
"use strict";

const http = require("node:http");
const path = require("node:path");

// The npm packages live in tests/node_modules; resolve them from there even
// when this file is started from another working directory.
const modules = path.join(__dirname, "..", "node_modules");
const load = (name) => require(require.resolve(name, { paths: [modules] }));
const { Server } = load("socket.io");
const { createAdapter } = load("@socket.io/postgres-adapter");
const pg = load("pg");

const NAMESPACES = ["/", "/chat"];
const ATTACHMENTS_TABLE =
  "CREATE TABLE IF NOT EXISTS socket_io_attachments " +
  "(id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)";

function usage(msg) {
  process.stderr.write(
    `reference_cluster: ${msg}\n` +
      "usage: reference_cluster.js --port P --database-url URL\n"
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { port: 3000, databaseUrl: "", name: "N" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--port" && i + 1 < argv.length) opts.port = Number(argv[++i]);
    else if (a.startsWith("--port=")) opts.port = Number(a.slice(7));
    else if (a === "--database-url" && i + 1 < argv.length) opts.databaseUrl = argv[++i];
    else if (a.startsWith("--database-url=")) opts.databaseUrl = a.slice(15);
    else if (a === "--name" && i + 1 < argv.length) opts.name = argv[++i];
    else usage(`unknown argument ${JSON.stringify(a)}`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) usage("bad --port");
  if (opts.databaseUrl === "") usage("--database-url is required");
  return opts;
}

function log(msg) {
  process.stderr.write(`reference_cluster: ${msg}\n`);
}

function lastIsAck(list) {
  return list.length > 0 && typeof list[list.length - 1] === "function";
}

function roomList(value) {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.filter((r) => typeof r === "string");
  return [];
}

let stopping = false;
const notes = [];

function errText(err) {
  if (!err) return null;
  return /timeout|timed out/.test(err.message) ? "timeout" : err.message;
}

function attachEvents(nsp, name) {
  // The other nodes' serverSideEmit.
  nsp.on("whoami", (arg, cb) => {
    if (typeof cb === "function") cb({ node: name, arg });
  });
  nsp.on("note", (arg) => notes.push(arg));

  nsp.on("connection", (socket) => {
    socket.on("setdata", (value, ack) => {
      socket.data = value;
      if (typeof ack === "function") ack("ok");
    });

    socket.on("fetch", async (opts, ack) => {
      const o = opts && typeof opts === "object" ? opts : {};
      let result;
      try {
        const sockets = await nsp.in(roomList(o.rooms)).except(roomList(o.except)).fetchSockets();
        result = {
          err: null,
          sockets: sockets.map((s) => ({ id: s.id, handshake: s.handshake, rooms: [...s.rooms], data: s.data })),
        };
      } catch (err) {
        result = { err: errText(err), sockets: [] };
      }
      if (typeof ack === "function") ack(result);
    });

    socket.on("sse", (event, arg, ack) => {
      nsp.serverSideEmit(event, arg, (err, replies) => {
        if (typeof ack === "function") ack({ err: errText(err), replies: replies || [] });
      });
    });

    socket.on("sse-noack", (event, arg, ack) => {
      nsp.serverSideEmit(event, arg);
      if (typeof ack === "function") ack("sent");
    });

    socket.on("bcastack", (opts, event, arg, ack) => {
      const o = opts && typeof opts === "object" ? opts : {};
      nsp
        .to(roomList(o.rooms))
        .except(roomList(o.except))
        .timeout(typeof o.timeout === "number" ? o.timeout : 5000)
        .emit(event, arg, (err, replies) => {
          if (typeof ack === "function") ack({ err: errText(err), replies: replies || [] });
        });
    });

    socket.on("servercount", async (ack) => {
      const n = await nsp.adapter.serverCount();
      if (typeof ack === "function") ack(n);
    });

    socket.on("notes", (ack) => {
      if (typeof ack === "function") ack(notes);
    });

    socket.on("join", (room, ack) => {
      if (typeof room === "string" || Array.isArray(room)) socket.join(room);
      if (typeof ack === "function") ack("ok");
    });

    socket.on("leave", (room, ack) => {
      if (typeof room === "string") socket.leave(room);
      if (typeof ack === "function") ack("ok");
    });

    socket.on("bcast", (opts, ...list) => {
      const ack = lastIsAck(list) ? list.pop() : null;
      const o = opts && typeof opts === "object" ? opts : {};
      const event = typeof o.event === "string" ? o.event : "msg";
      let op = nsp.to(roomList(o.rooms)).except(roomList(o.except));
      if (o.volatile === true) op = op.volatile;
      op.emit(event, ...list);
      if (ack) ack("sent");
    });

    for (const [name, fn] of [
      ["sjoin", (op, arg) => op.socketsJoin(arg)],
      ["sleave", (op, arg) => op.socketsLeave(arg)],
      ["sdisconnect", (op, arg) => op.disconnectSockets(arg === true)],
    ]) {
      socket.on(name, (opts, arg, ack) => {
        const o = opts && typeof opts === "object" ? opts : {};
        fn(nsp.in(roomList(o.rooms)).except(roomList(o.except)), arg);
        if (typeof ack === "function") ack(null);
      });
    }

    // The bench contract's broadcast (tests/bench/README.md), for tests/bench/scale.py.
    socket.on("broadcast-room", (room, ...args) => {
      if (lastIsAck(args)) args.pop();
      nsp.to(String(room)).emit("tick", ...args);
    });

    socket.on("stats", (ack) => {
      if (typeof ack === "function") ack({});
    });
  });
}

// CREATE TABLE IF NOT EXISTS can still fail when another node creates the
// table at the same moment (a unique violation in the catalog): try again.
async function createTable(pool) {
  for (let attempt = 1; ; attempt++) {
    try {
      await pool.query(ATTACHMENTS_TABLE);
      return;
    } catch (err) {
      if (attempt >= 5 || (err.code !== "23505" && err.code !== "42P07")) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const pool = new pg.Pool({ connectionString: args.databaseUrl });
  // An idle client that loses its connection emits "error" on the pool;
  // unhandled, that would end the process.
  pool.on("error", (err) => {
    if (!stopping) log(`pool: ${err.message}`);
  });
  let io = null;
  let httpServer = null;
  async function stop() {
    if (stopping) return;
    stopping = true;
    // Whatever hangs, we are done: exit 0 shortly anyway.
    setTimeout(() => process.exit(0), 3000).unref();
    try {
      if (io) {
        // Closes the adapters (releasing the LISTEN connection) and the server.
        const closed = io.close();
        if (typeof httpServer.closeAllConnections === "function") httpServer.closeAllConnections();
        await closed;
      }
      await pool.end();
    } catch (err) {
      log(`stop: ${err.message}`);
    }
    process.exit(0);
  }
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);

  await createTable(pool);
  if (stopping) return;

  httpServer = http.createServer((req, res) => {
    res.writeHead(404, { "Content-Type": "text/plain" });
    res.end("not found");
  });
  io = new Server(httpServer, {
    path: "/socket.io/",
    serveClient: false,
    cors: { origin: "*" },
    adapter: createAdapter(pool, {
      errorHandler: (err) => {
        if (!stopping) log(`adapter: ${err && err.message ? err.message : err}`);
      },
    }),
  });
  for (const name of NAMESPACES) attachEvents(io.of(name), args.name);

  httpServer.on("error", (err) => {
    log(err.message);
    process.exit(1);
  });
  httpServer.listen(args.port, "127.0.0.1", () => {
    process.stdout.write(`reference_cluster listening on 127.0.0.1:${httpServer.address().port}\n`);
  });
}

main().catch((err) => {
  log(err.stack || String(err));
  process.exit(1);
});
