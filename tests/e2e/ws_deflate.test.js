// permessage-deflate on WebSocket (RFC 7692; issue 16): our conformance-engineio
// with --ws-deflate beside the reference Node.js engine.io with
// perMessageDeflate (tests/conformance/reference_engineio.js --ws-deflate),
// spoken to by the `ws` npm client with perMessageDeflate, the way
// engine.io-client in Node does. Also: off by default (no extension in the
// answer), offers we cannot honour declined without failing the handshake,
// RSV1 without negotiation (close 1002), a decompression bomb (close 1009).
//
//   node --test tests/e2e/ws_deflate.test.js
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const http = require("node:http");
const path = require("node:path");
const harness = require("../lib/harness.js");

const WebSocket = require(
  require.resolve("ws", { paths: [path.join(harness.SOURCE_DIR, "tests", "node_modules")] }),
);

const TEST_OPTS = { timeout: 60000 };
const OURS = path.join(harness.BUILD_DIR, "conformance-engineio");
const OURS_SIO = path.join(harness.BUILD_DIR, "conformance-socketio");
const { io } = require(
  require.resolve("socket.io-client", { paths: [path.join(harness.SOURCE_DIR, "tests", "node_modules")] }),
);
const REFERENCE = ["node", path.join(harness.SOURCE_DIR, "tests/conformance/reference_engineio.js")];
const WS_PATH = "/engine.io/?EIO=4&transport=websocket";

const servers = {};

before(async () => {
  const start = (argv) => harness.startServer(argv);
  [servers.ours, servers.oursOff, servers.ref, servers.sio] = await Promise.all([
    start([OURS, "--ws-deflate"]),
    start([OURS]),
    start([...REFERENCE, "--ws-deflate"]),
    start([OURS_SIO, "--ws-deflate"]),
  ]);
});

after(async () => {
  for (const s of Object.values(servers)) if (s) await s.stop();
});

/**
 * An Engine.IO session over WebSocket with the `ws` client: answers pings,
 * queues messages ("4..." packets, without the type) for next(), records the
 * handshake answer's headers and the close code.
 */
function open(server, wsOptions = { perMessageDeflate: true }) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}${WS_PATH}`, wsOptions);
    const s = { ws, messages: [], waiters: [], headers: null, closed: null };
    s.closedPromise = new Promise((r) => ws.on("close", (code) => r((s.closed = code))));
    ws.on("upgrade", (res) => (s.headers = res.headers));
    ws.on("error", () => {});
    ws.on("message", (data) => {
      const text = data.toString();
      if (text[0] === "0") return resolve(s);
      if (text === "2") return ws.send("3");
      if (text[0] === "4") {
        s.messages.push(text.slice(1));
        while (s.waiters.length && s.messages.length) s.waiters.shift()(s.messages.shift());
      }
    });
    s.next = () =>
      new Promise((r, j) => {
        if (s.messages.length) return r(s.messages.shift());
        const t = setTimeout(() => j(new Error("no message")), harness.ms(20000));
        s.waiters.push((m) => {
          clearTimeout(t);
          r(m);
        });
      });
    setTimeout(() => reject(new Error("no open packet")), harness.ms(20000));
  });
}

/** Bytes read off the socket so far (frames as they came, compressed or not). */
function bytesRead(s) {
  return s.ws._socket.bytesRead;
}

/** A raw handshake with a given Sec-WebSocket-Extensions; resolves the 101's headers. */
function rawUpgrade(server, ext) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port: server.port,
      path: WS_PATH,
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": crypto.randomBytes(16).toString("base64"),
        ...(ext !== undefined ? { "Sec-WebSocket-Extensions": ext } : {}),
      },
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve(res.headers);
    });
    req.on("response", (res) => reject(new Error(`status ${res.statusCode}`)));
    req.on("error", reject);
    req.end();
  });
}

const big = (n) => "spaces ".repeat(Math.ceil(n / 7)).slice(0, n);

for (const name of ["ours", "ref"]) {
  describe(`${name}: permessage-deflate on`, () => {
    it("negotiates the extension and echoes large and small messages both ways", TEST_OPTS, async () => {
      const s = await open(servers[name]);
      assert.match(s.headers["sec-websocket-extensions"], /^permessage-deflate/);
      assert.match(s.ws.extensions, /permessage-deflate/);
      const large = big(200000);
      const before = bytesRead(s);
      s.ws.send("4" + large);
      assert.equal(await s.next(), large);
      // Compressed on the way back: far fewer bytes than the message.
      assert.ok(bytesRead(s) - before < 20000, `read ${bytesRead(s) - before} bytes`);
      const small = "hello";
      s.ws.send("4" + small);
      assert.equal(await s.next(), small);
      const binary = crypto.randomBytes(50000);
      s.ws.send(binary);
      await new Promise((r) => s.ws.once("message", (d, isBinary) => {
        assert.ok(isBinary);
        assert.deepEqual(Buffer.from(d), binary);
        r();
      }));
      s.ws.close();
      await s.closedPromise;
    });

    it("inflates a fragmented compressed message", TEST_OPTS, async () => {
      const s = await open(servers[name]);
      const part = big(30000);
      s.ws.send("4" + part, { fin: false });
      s.ws.send(part, { fin: false });
      s.ws.send("end", { fin: true });
      assert.equal(await s.next(), part + part + "end");
      s.ws.close();
      await s.closedPromise;
    });
  });
}

describe("ours: limits and refusals", () => {
  it("closes a decompression bomb with 1009", TEST_OPTS, async () => {
    const s = await open(servers.ours);
    // 2 MB of one letter is a few KB compressed, over the 1 MB message limit inflated.
    s.ws.send("4" + "a".repeat(2000000));
    assert.equal(await s.closedPromise, 1009);
  });

  it("is off by default: no extension, and RSV1 is a protocol error (1002)", TEST_OPTS, async () => {
    const s = await open(servers.oursOff);
    assert.equal(s.headers["sec-websocket-extensions"], undefined);
    assert.equal(s.ws.extensions, "");
    // A masked text frame "4hi" with RSV1 set.
    const mask = crypto.randomBytes(4);
    const payload = Buffer.from("4hi");
    for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
    s.ws._socket.write(Buffer.concat([Buffer.from([0xc1, 0x80 | payload.length]), mask, payload]));
    assert.equal(await s.closedPromise, 1002);
  });

  it("takes the first offer it can honour and declines the others", TEST_OPTS, async () => {
    const ours = servers.ours;
    const h1 = await rawUpgrade(ours, "permessage-deflate; client_max_window_bits");
    assert.equal(
      h1["sec-websocket-extensions"],
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    );
    // A smaller server window than ours, an unknown parameter, a repeated one,
    // a bad value: declined; the handshake still succeeds.
    for (const bad of [
      "permessage-deflate; server_max_window_bits=10",
      "permessage-deflate; foo",
      "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
      "permessage-deflate; client_max_window_bits=16",
      "x-webkit-deflate-frame",
    ]) {
      const h = await rawUpgrade(ours, bad);
      assert.equal(h["sec-websocket-extensions"], undefined, bad);
    }
    const h2 = await rawUpgrade(
      ours,
      "permessage-deflate; server_max_window_bits=9, permessage-deflate; server_max_window_bits=15",
    );
    assert.equal(
      h2["sec-websocket-extensions"],
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover; " +
        "server_max_window_bits=15",
    );
    const off = await rawUpgrade(servers.oursOff, "permessage-deflate");
    assert.equal(off["sec-websocket-extensions"], undefined);
  });

  it("sends small messages uncompressed under the threshold", TEST_OPTS, async () => {
    const s = await open(servers.ours);
    const msg = "x".repeat(500);
    const before = bytesRead(s);
    s.ws.send("4" + msg);
    assert.equal(await s.next(), msg);
    assert.ok(bytesRead(s) - before >= 501);
    s.ws.close();
    await s.closedPromise;
  });
});

describe("ours: Socket.IO broadcasts with permessage-deflate", () => {
  it("a large broadcast reaches every receiver, compressed, over WebSocket and after an upgrade", TEST_OPTS, async () => {
    // socket.io-client in Node offers permessage-deflate (its ws transport's default).
    const url = servers.sio.url;
    const clients = [
      io(url, { transports: ["websocket"], forceNew: true, reconnection: false }),
      io(url, { transports: ["websocket"], forceNew: true, reconnection: false }),
      io(url, { transports: ["polling", "websocket"], forceNew: true, reconnection: false }),
    ];
    try {
      await Promise.all(clients.map((c) => new Promise((r, j) => {
        c.on("connect", r);
        c.on("connect_error", j);
      })));
      await harness.waitUntil(
        "the upgrade",
        () => clients[2].io.engine.transport.name === "websocket",
        harness.ms(20000),
      );
      for (const c of clients) assert.match(c.io.engine.transport.ws.extensions, /permessage-deflate/);
      const text = big(300000);
      const before = clients[0].io.engine.transport.ws._socket.bytesRead;
      const got = clients.map((c) => new Promise((r) => c.once("big", r)));
      clients[1].emit("broadcast", { event: "big" }, text);
      const received = await Promise.all(got);
      for (const r of received) assert.equal(r, text);
      const read = clients[0].io.engine.transport.ws._socket.bytesRead - before;
      assert.ok(read < 30000, `read ${read} bytes for a 300 KB broadcast`);
    } finally {
      for (const c of clients) c.close();
    }
  });
});
