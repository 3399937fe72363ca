#!/usr/bin/env node
// Socket.IO over HTTP long-polling only: C clients, each sends "message"
// with a payload of --size bytes and waits for "message-back" (one POST,
// then GETs until it arrives), for --seconds, against ours (bench-server)
// and the reference (node_bench_server.js) in the same run, with HTTP
// compression as each server does it by default (gzip when the answer is
// 1 KiB or more and the request accepts it) and, with --no-gzip, a client
// that does not accept it.
//
//   node tests/bench/polling_bench.js [--bench-server build/release/bench-server]
//        [-c 50] [--size 4096] [--seconds 8] [--no-gzip]
//
// Prints one RESULT line per server: round trips/s, bytes read off the
// sockets per round trip (compressed size), and the server's CPU.
"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const net = require("node:net");
const path = require("node:path");
const zlib = require("node:zlib");

const ROOT = path.join(__dirname, "..", "..");
function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
}
const OURS = arg("--bench-server", path.join(ROOT, "build", "release", "bench-server"));
const C = Number(arg("-c", "50"));
const SIZE = Number(arg("--size", "4096"));
const SECONDS = Number(arg("--seconds", "8"));
const GZIP = !process.argv.includes("--no-gzip");

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 * C });

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

let wireBytes = 0;
function request(port, method, query, body) {
  return new Promise((resolve, reject) => {
    const headers = { "content-type": "text/plain;charset=UTF-8" };
    if (GZIP) headers["accept-encoding"] = "gzip, deflate";
    const req = http.request({ host: "127.0.0.1", port, method, path: `/socket.io/?EIO=4&transport=polling${query}`,
      headers, agent }, (res) => {
      const parts = [];
      res.on("data", (d) => {
        wireBytes += d.length;
        parts.push(d);
      });
      res.on("end", () => {
        let buf = Buffer.concat(parts);
        const enc = res.headers["content-encoding"];
        if (enc === "gzip") buf = zlib.gunzipSync(buf);
        else if (enc === "deflate") buf = zlib.inflateSync(buf);
        if (res.statusCode !== 200) reject(new Error(`${method} ${res.statusCode} ${buf}`));
        else resolve(buf.toString());
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function client(port, stopAt, counts) {
  const open = await request(port, "GET", "");
  const sid = JSON.parse(open.slice(1)).sid;
  const q = `&sid=${sid}`;
  await request(port, "POST", q, "40");
  let got = await request(port, "GET", q);
  while (!got.includes("40")) got = await request(port, "GET", q);
  const packet = "42" + JSON.stringify(["message", "x".repeat(SIZE)]);
  while (Date.now() < stopAt) {
    await request(port, "POST", q, packet);
    for (;;) {
      const answer = await request(port, "GET", q);
      if (answer.includes("message-back")) break;
    }
    counts.n++;
  }
}

function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(rest[11]) + Number(rest[12])) / 100;
}

async function run(name, cmd, args) {
  const port = await freePort();
  const srv = spawn(cmd, [...args, "--port", String(port)], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise((resolve, reject) => {
    srv.stdout.on("data", (d) => d.toString().includes("listening") && resolve());
    srv.on("exit", (code) => reject(new Error(`${name} exited ${code}`)));
  });
  const counts = { n: 0 };
  wireBytes = 0;
  const cpu0 = cpuSeconds(srv.pid);
  const t0 = Date.now();
  await Promise.all(Array.from({ length: C }, () => client(port, t0 + SECONDS * 1000, counts)));
  const secs = (Date.now() - t0) / 1000;
  const cpu = cpuSeconds(srv.pid) - cpu0;
  srv.kill("SIGTERM");
  const rate = counts.n / secs;
  console.log(`RESULT server=${name} gzip=${GZIP ? 1 : 0} clients=${C} size=${SIZE} round_trips=${counts.n} ` +
    `rate=${rate.toFixed(0)} wire_bytes_per_round_trip=${(wireBytes / Math.max(1, counts.n)).toFixed(0)} ` +
    `server_cpu_pct=${((100 * cpu) / secs).toFixed(1)} server_us_per_round_trip=${((cpu * 1e6) / Math.max(1, counts.n)).toFixed(0)}`);
}

(async () => {
  await run("ours", OURS, []);
  await run("node", process.execPath, [path.join(__dirname, "node_bench_server.js")]);
  agent.destroy();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
