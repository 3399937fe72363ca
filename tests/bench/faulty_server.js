#!/usr/bin/env node
// A deliberately broken bench server, to prove that bench-loadgen counts:
// it speaks the same contract as node_bench_server.js but, depending on
// --fault, loses or repeats replies. A load generator run against it must
// fail (exit status not 0).
//
//   node tests/bench/faulty_server.js --port 0 --fault drop [--every 100]
//
//   --fault drop   every Nth reply (message-back, ack, or one receiver's tick)
//                  is never sent
//   --fault dup    the Nth reply is sent twice (once only)
//   --fault none   behaves correctly (a control for the tests)
//   --every N      N (default 100)
//
// Prints "listening 127.0.0.1:<port> pid <pid>" like node_bench_server.js.
"use strict";

const http = require("node:http");
const path = require("node:path");

const modules = path.join(__dirname, "..", "node_modules");
const { Server } = require(require.resolve("socket.io", { paths: [modules] }));

const opts = { port: 3000, fault: "drop", every: 100 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--port" && i + 1 < argv.length) opts.port = Number(argv[++i]);
  else if (argv[i] === "--fault" && i + 1 < argv.length) opts.fault = argv[++i];
  else if (argv[i] === "--every" && i + 1 < argv.length) opts.every = Number(argv[++i]);
  else {
    process.stderr.write("usage: faulty_server.js [--port P] [--fault drop|dup|none] [--every N]\n");
    process.exit(2);
  }
}
if (!["drop", "dup", "none"].includes(opts.fault) || !(opts.every >= 1)) {
  process.stderr.write("faulty_server: bad --fault or --every\n");
  process.exit(2);
}

// How many times to deliver the next reply: 1 normally, 0 or 2 when faulty.
let replies = 0;
function copies() {
  replies++;
  if (opts.fault === "drop" && replies % opts.every === 0) return 0;
  if (opts.fault === "dup" && replies === opts.every) return 2;
  return 1;
}

const httpServer = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
const io = new Server(httpServer, { transports: ["polling", "websocket"], serveClient: false });

io.on("connection", (socket) => {
  // Remember each ack function's packet id, so that a second copy of an ack
  // (which socket.io itself refuses to send) can be written as a raw packet.
  const makeAck = socket.ack.bind(socket);
  socket.ack = (id) => Object.assign(makeAck(id), { packetId: id });

  socket.on("message", (...args) => {
    for (let n = copies(); n > 0; n--) socket.emit("message-back", ...args);
  });
  socket.on("message-with-ack", (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    if (!ack) return;
    const n = copies();
    if (n === 0) return;
    ack(...args);
    if (n === 2) socket.packet({ type: 3, id: ack.packetId, data: args });
  });
  socket.on("join", (room, ack) => {
    socket.join(String(room));
    if (typeof ack === "function") ack();
  });
  socket.on("broadcast-room", (room, ...args) => {
    // One emit per receiver, so that a single delivery can be lost or doubled.
    const members = io.of("/").adapter.rooms.get(String(room)) || new Set();
    for (const id of members) {
      const s = io.of("/").sockets.get(id);
      if (!s) continue;
      for (let n = copies(); n > 0; n--) s.emit("tick", ...args);
    }
  });
});

httpServer.listen(opts.port, "127.0.0.1", () => {
  process.stdout.write(`listening 127.0.0.1:${httpServer.address().port} pid ${process.pid}\n`);
});
function stop() {
  io.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
