// Engine.IO polling answers: HTTP compression (eio_options.http_compression,
// compression_threshold; the reference server's httpCompression) and the
// packet cap of one answer (eio_options.polling_max_packets), side by side on
// our conformance-engineio and the reference Node.js engine.io
// (tests/conformance/reference_engineio.js), both started here.
//
// Spoken raw with node:http (fetch would undo the compression before we see
// it), the way socket.io-client's polling transport (XMLHttpRequest in a
// browser, which sends Accept-Encoding: gzip, deflate) meets the server.
//
//   node --test tests/e2e/engineio_compression.test.js
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const http = require("node:http");
const path = require("node:path");
const zlib = require("node:zlib");
const harness = require("../lib/harness.js");

const SEP = "\x1e";
const TEST_OPTS = { timeout: 60000 };
const OURS = path.join(harness.BUILD_DIR, "conformance-engineio");
const REFERENCE = ["node", path.join(harness.SOURCE_DIR, "tests/conformance/reference_engineio.js")];

const servers = {};

before(async () => {
  const start = (argv) => harness.startServer(argv);
  [servers.ours, servers.oursOff, servers.oursCap, servers.ref, servers.refOff] = await Promise.all([
    start([OURS]),
    start([OURS, "--no-http-compression"]),
    start([OURS, "--polling-max-packets", "1000"]),
    start(REFERENCE),
    start([...REFERENCE, "--no-http-compression"]),
  ]);
});

after(async () => {
  for (const s of Object.values(servers)) if (s) await s.stop();
});

/** One HTTP request; resolves { status, headers, raw (Buffer, as sent) }. */
function request(server, query, { method = "GET", body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: server.port,
        path: `/engine.io/?EIO=4&transport=polling${query}`,
        method,
        headers: { ...headers, ...(body !== undefined ? { "Content-Type": "text/plain" } : {}) },
        timeout: 20000,
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode, headers: res.headers, raw: Buffer.concat(chunks) }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("HTTP request timed out")));
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** The body as text, decompressed per its Content-Encoding. */
function decoded(res) {
  const enc = res.headers["content-encoding"];
  if (enc === "gzip") return zlib.gunzipSync(res.raw).toString();
  if (enc === "deflate") return zlib.inflateSync(res.raw).toString();
  assert.equal(enc, undefined, `unexpected Content-Encoding ${enc}`);
  return res.raw.toString();
}

async function handshake(server) {
  const res = await request(server, "");
  assert.equal(res.status, 200);
  const open = JSON.parse(decoded(res).split(SEP)[0].slice(1));
  return open.sid;
}

/**
 * Sends message (one Engine.IO message packet, echoed back by both servers),
 * then polls with acceptEncoding until the echo comes; resolves the answer
 * that carried it and its decoded payload. Pings are answered on the way.
 */
async function echoOverPolling(server, message, acceptEncoding) {
  const sid = await handshake(server);
  const post = await request(server, `&sid=${sid}`, { method: "POST", body: "4" + message });
  assert.equal(post.status, 200);
  const headers = acceptEncoding === null ? {} : { "Accept-Encoding": acceptEncoding };
  for (let i = 0; i < 20; i++) {
    const res = await request(server, `&sid=${sid}`, { headers });
    assert.equal(res.status, 200, decoded(res));
    const packets = decoded(res).split(SEP);
    if (packets.includes("4" + message)) return { res, packets };
    if (packets.includes("2")) await request(server, `&sid=${sid}`, { method: "POST", body: "3" });
  }
  throw new Error("the echo never came");
}

const BIG = "x".repeat(3000) + "é" + "y".repeat(500);
const SMALL = "z".repeat(900);

for (const name of ["ours", "ref"]) {
  describe(`HTTP compression of polling answers (${name === "ours" ? "ours" : "reference"})`, () => {
    it("an answer of 1 KiB or more is gzip-compressed for Accept-Encoding: gzip", TEST_OPTS, async () => {
      const { res } = await echoOverPolling(servers[name], BIG, "gzip");
      assert.equal(res.headers["content-encoding"], "gzip");
      assert.ok(res.raw.length < BIG.length / 4, `${res.raw.length} bytes`);
    });

    it("deflate when only deflate is accepted", TEST_OPTS, async () => {
      const { res } = await echoOverPolling(servers[name], BIG, "deflate");
      assert.equal(res.headers["content-encoding"], "deflate");
    });

    it("gzip for a browser's gzip, deflate, br", TEST_OPTS, async () => {
      const { res } = await echoOverPolling(servers[name], BIG, "gzip, deflate, br");
      assert.equal(res.headers["content-encoding"], "gzip");
    });

    it("not compressed without Accept-Encoding, or with gzip;q=0", TEST_OPTS, async () => {
      let { res } = await echoOverPolling(servers[name], BIG, null);
      assert.equal(res.headers["content-encoding"], undefined);
      ({ res } = await echoOverPolling(servers[name], BIG, "gzip;q=0, identity"));
      assert.equal(res.headers["content-encoding"], undefined);
    });

    it("an answer under 1 KiB is not compressed", TEST_OPTS, async () => {
      const { res } = await echoOverPolling(servers[name], SMALL, "gzip, deflate");
      assert.equal(res.headers["content-encoding"], undefined);
    });

    it("with compression off, nothing is compressed", TEST_OPTS, async () => {
      const { res } = await echoOverPolling(servers[name + "Off"], BIG, "gzip, deflate");
      assert.equal(res.headers["content-encoding"], undefined);
      assert.ok(res.raw.toString().includes("4" + BIG));
    });
  });
}

/**
 * Has the server echo count messages at once, then polls until all came back;
 * resolves the number of answers it took and the most packets in one.
 */
async function drainBurst(server, count) {
  const sid = await handshake(server);
  const burst = Array.from({ length: count }, (_, i) => `4m${i}`).join(SEP);
  const post = await request(server, `&sid=${sid}`, { method: "POST", body: burst });
  assert.equal(post.status, 200);
  let received = 0, answers = 0, most = 0;
  while (received < count) {
    assert.ok(answers < count + 10, "too many answers");
    const res = await request(server, `&sid=${sid}`, { headers: { "Accept-Encoding": "gzip" } });
    assert.equal(res.status, 200, decoded(res));
    const packets = decoded(res).split(SEP);
    answers++;
    most = Math.max(most, packets.length);
    for (const p of packets) {
      if (p.startsWith("4m")) {
        assert.equal(p, `4m${received}`, "messages in order");
        received++;
      }
    }
    if (packets.includes("2")) await request(server, `&sid=${sid}`, { method: "POST", body: "3" });
  }
  return { answers, most };
}

describe("packets in one polling answer", () => {
  it("ours, by default: at most 16 (python-engineio's limit), 1000 messages in 63 answers or more", TEST_OPTS, async () => {
    const { answers, most } = await drainBurst(servers.ours, 1000);
    assert.ok(most <= 16, `${most} packets in one answer`);
    assert.ok(answers >= 63, `${answers} answers`);
  });

  it("ours, --polling-max-packets 1000: 1000 messages in at most 2 answers", TEST_OPTS, async () => {
    const { answers, most } = await drainBurst(servers.oursCap, 1000);
    assert.ok(answers <= 2, `${answers} answers`);
    assert.ok(most > 16);
  });

  it("reference: 1000 messages in at most 2 answers (no cap)", TEST_OPTS, async () => {
    const { answers } = await drainBurst(servers.ref, 1000);
    assert.ok(answers <= 2, `${answers} answers`);
  });
});
