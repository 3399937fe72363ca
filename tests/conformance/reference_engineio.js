#!/usr/bin/env node
// Reference Engine.IO server: the official Node.js `engine.io` package in the
// configuration our C `conformance-engineio` has, so that every Engine.IO test
// can be validated against it first (and benchmarks can compare the two).
//
//   node tests/conformance/reference_engineio.js --port 3000
//
// Configuration: listens on 127.0.0.1:<port>, path /engine.io/, pingInterval
// 300 ms, pingTimeout 200 ms, maxPayload (maxHttpBufferSize) 1000000 bytes,
// CORS origin "*", both transports with upgrades, and every message (text or
// binary) is sent back to the socket it came from. --no-http-compression
// sets httpCompression: false (tests/e2e/engineio_compression.test.js); --ws-deflate
// sets perMessageDeflate with a 1024-byte threshold (tests/e2e/ws_deflate.test.js). SIGTERM and SIGINT close
// the server and exit with status 0.
"use strict";

const http = require("node:http");
const path = require("node:path");

// The npm packages live in tests/node_modules; resolve them from there even
// when this file is started from another working directory.
const modules = path.join(__dirname, "..", "node_modules");
const { Server } = require(require.resolve("engine.io", { paths: [modules] }));

function parsePort(argv) {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--port" && i + 1 < argv.length) return Number(argv[i + 1]);
    if (argv[i].startsWith("--port=")) return Number(argv[i].slice(7));
  }
  return 3000;
}

const port = parsePort(process.argv.slice(2));
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`reference_engineio: bad --port\n`);
  process.exit(2);
}

const httpServer = http.createServer((req, res) => {
  // Requests outside /engine.io/ are not ours.
  res.writeHead(404, { "Content-Type": "text/plain" });
  res.end("not found");
});

const engine = new Server({
  path: "/engine.io/",
  pingInterval: 300,
  pingTimeout: 200,
  maxHttpBufferSize: 1e6,
  cors: { origin: "*" },
  ...(process.argv.includes("--no-http-compression") ? { httpCompression: false } : {}),
  ...(process.argv.includes("--ws-deflate") ? { perMessageDeflate: { threshold: 1024 } } : {}),
});
engine.attach(httpServer);

engine.on("connection", (socket) => {
  socket.on("message", (data) => socket.send(data));
});

httpServer.on("error", (err) => {
  process.stderr.write(`reference_engineio: ${err.message}\n`);
  process.exit(1);
});

httpServer.listen(port, "127.0.0.1", () => {
  process.stdout.write(`reference_engineio listening on 127.0.0.1:${httpServer.address().port}\n`);
});

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  engine.close();
  httpServer.close(() => process.exit(0));
  // Keep-alive and half-open connections would hold close() open; we are done.
  if (typeof httpServer.closeAllConnections === "function") {
    httpServer.closeAllConnections();
  }
  setTimeout(() => process.exit(0), 500).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
