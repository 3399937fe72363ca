#!/usr/bin/env node
// Reference bench server: the official Node.js socket.io 4.8 server answering
// the bench contract every server under test implements (see
// tests/bench/README.md):
//
//   message(...args)              -> emit "message-back" with the same args
//   message-with-ack(...args, cb) -> cb(...args)
//   join(room, cb)                -> join the room, then cb()
//   broadcast-room(room, ...args) -> io.to(room).emit("tick", ...args)
//
//   node tests/bench/node_bench_server.js --port 3000
//
// Listens on 127.0.0.1:<port> (0 picks a free port), namespace "/", WebSocket
// and HTTP long-polling both enabled, socket.io defaults otherwise. Prints
// "listening 127.0.0.1:<port> pid <pid>" on stdout once it accepts
// connections. SIGTERM and SIGINT close the server and exit with status 0.
"use strict";

const http = require("node:http");
const path = require("node:path");

// The npm packages live in tests/node_modules; resolve them from there even
// when this file is started from another working directory.
const modules = path.join(__dirname, "..", "node_modules");
const { Server } = require(require.resolve("socket.io", { paths: [modules] }));

function parseArgs(argv) {
  const opts = { port: 3000 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--port" && i + 1 < argv.length) opts.port = Number(argv[++i]);
    else if (argv[i].startsWith("--port=")) opts.port = Number(argv[i].slice(7));
    else if (argv[i] === "--ws-deflate") opts.wsDeflate = true;
    else {
      process.stderr.write(`usage: node_bench_server.js [--port PORT] [--ws-deflate]\n`);
      process.exit(2);
    }
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    process.stderr.write(`node_bench_server: bad --port\n`);
    process.exit(2);
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

const httpServer = http.createServer((req, res) => {
  res.writeHead(404, { "Content-Type": "text/plain" });
  res.end("not found");
});

const io = new Server(httpServer, {
  transports: ["polling", "websocket"],
  cors: { origin: "*" },
  serveClient: false,
  ...(opts.wsDeflate ? { perMessageDeflate: true } : {}),
});

io.on("connection", (socket) => {
  socket.on("message", (...args) => {
    socket.emit("message-back", ...args);
  });
  socket.on("message-with-ack", (...args) => {
    const ack = args.length && typeof args[args.length - 1] === "function" ? args.pop() : null;
    if (ack) ack(...args);
  });
  socket.on("join", (room, ack) => {
    socket.join(String(room));
    if (typeof ack === "function") ack();
  });
  socket.on("broadcast-room", (room, ...args) => {
    if (args.length && typeof args[args.length - 1] === "function") args.pop();
    io.to(String(room)).emit("tick", ...args);
  });
});

httpServer.listen(opts.port, "127.0.0.1", () => {
  const { port } = httpServer.address();
  process.stdout.write(`listening 127.0.0.1:${port} pid ${process.pid}\n`);
});

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  io.close(() => process.exit(0));
  // Connections that do not close promptly must not hold the exit up.
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
