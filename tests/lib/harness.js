// Test harness for Node tests: start a server program on a free 127.0.0.1
// port, wait until it accepts connections, and stop it at the end, checking
// that it exited with status 0 and printed no sanitizer report.
//
//   const h = require("../lib/harness.js");
//   const server = await h.startServer(h.engineioServerCommand());
//   ... server.url, server.wsUrl, server.port ...
//   await server.stop();   // throws if the exit was not clean
//
// The program is given `--port P` (appended to its arguments). Which program
// runs comes from the environment, so one test file runs against ours or the
// reference Node.js server:
//
//   SPACES_ENGINEIO_SERVER  unset: $SPACES_BUILD_DIR/conformance-engineio
//                           "reference": node tests/conformance/reference_engineio.js
//                           anything else: a command line (split on spaces)
//   SPACES_ENGINEIO_URL     use a server that is already running at this URL
//                           (nothing is started or stopped)
//   SPACES_BUILD_DIR        build directory (default <source>/build/debug)
//   SPACES_SOURCE_DIR       source directory (default: found from this file)
//   SPACES_TEST_VERBOSE=1   copy the server's stderr to ours as it arrives
//   SPACES_TEST_TIMEOUT_MULTIPLIER  scales every timeout and deadline of the
//                           tests (default 1; e.g. 3 on a loaded or slow
//                           machine): use h.ms(n) for a timeout of n ms
"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const path = require("node:path");

const SOURCE_DIR = process.env.SPACES_SOURCE_DIR || path.resolve(__dirname, "..", "..");
const BUILD_DIR = process.env.SPACES_BUILD_DIR || path.join(SOURCE_DIR, "build", "debug");

const SANITIZER_PATTERNS = [
  /runtime error:/,
  /ERROR: AddressSanitizer/,
  /ERROR: LeakSanitizer/,
  /SUMMARY: (Address|Leak|UndefinedBehavior|Thread|Memory)Sanitizer/,
  /WARNING: ThreadSanitizer/,
];

const OUTPUT_CAP = 8 * 1024 * 1024;

// SPACES_TEST_TIMEOUT_MULTIPLIER (as libuv's UV_TEST_TIMEOUT_MULTIPLIER):
// how much longer than normal every wait may take; never below 1.
const TIMEOUT_MULTIPLIER = Math.max(1, Number(process.env.SPACES_TEST_TIMEOUT_MULTIPLIER) || 1);

/** A timeout of n ms, scaled by SPACES_TEST_TIMEOUT_MULTIPLIER. */
function ms(n) {
  return Math.round(n * TIMEOUT_MULTIPLIER);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves once fn() returns a truthy value (polled every intervalMs);
 * rejects after timeoutMs (scaled) saying what was awaited.
 */
async function waitUntil(what, fn, timeoutMs = 5000, intervalMs = 10) {
  const deadline = Date.now() + ms(timeoutMs);
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms(timeoutMs)} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Returns a TCP port that was free on 127.0.0.1 a moment ago. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves true if something accepts a TCP connection on 127.0.0.1:port. */
function canConnect(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    const done = (ok) => {
      sock.removeAllListeners();
      sock.on("error", () => {});
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

/**
 * The command (argv array) of the program a test should run, from an
 * environment variable: unset means the binary `binaryName` in the build
 * directory, "reference" means `node <referenceScript>`, anything else is
 * a command line split on whitespace.
 */
function serverCommand(envVar, binaryName, referenceScript) {
  const value = (process.env[envVar] || "").trim();
  if (value === "reference") {
    return [process.execPath, path.join(SOURCE_DIR, referenceScript)];
  }
  if (value !== "") return value.split(/\s+/);
  return [path.join(BUILD_DIR, binaryName)];
}

/** The Engine.IO conformance server to test (see the header comment). */
function engineioServerCommand() {
  return serverCommand(
    "SPACES_ENGINEIO_SERVER",
    "conformance-engineio",
    "tests/conformance/reference_engineio.js",
  );
}

/** A short human name for a command, for messages. */
function describeCommand(argv) {
  return argv.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(" ");
}

function sanitizerReport(text) {
  for (const re of SANITIZER_PATTERNS) {
    const m = re.exec(text);
    if (m) return text.slice(Math.max(0, m.index - 200), m.index + 4000);
  }
  return null;
}

class ServerProcess {
  constructor(argv, port, child) {
    this.argv = argv;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.wsUrl = `ws://127.0.0.1:${port}`;
    this.child = child;
    this._stderr = "";
    this._stdout = "";
    this.exit = null; // { code, signal } once it has exited
    this._exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
    const verbose = process.env.SPACES_TEST_VERBOSE === "1";
    child.stderr.setEncoding("utf8");
    child.stdout.setEncoding("utf8");
    child.stderr.on("data", (d) => {
      if (this._stderr.length < OUTPUT_CAP) this._stderr += d;
      if (verbose) process.stderr.write(d);
    });
    child.stdout.on("data", (d) => {
      if (this._stdout.length < OUTPUT_CAP) this._stdout += d;
    });
  }

  /** Everything the server wrote to stderr so far. */
  stderr() {
    return this._stderr;
  }

  /** Whether the process is still running. */
  alive() {
    return this.exit === null;
  }

  /** Throws unless the process is still running (with its stderr). */
  assertAlive() {
    if (!this.alive()) {
      throw new Error(
        `server ${describeCommand(this.argv)} died: ${JSON.stringify(
          this.exit,
        )}\n--- stderr ---\n${this._stderr.slice(-8000)}`,
      );
    }
  }

  /** Resolves with the exit status, or null after timeoutMs. */
  waitExit(timeoutMs) {
    timeoutMs = ms(timeoutMs);
    // The timer is cleared once the child exits: a pending one would keep
    // the test process alive for the whole timeout after the last test.
    let timer;
    const expired = new Promise((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
    return Promise.race([this._exited, expired]).finally(() => clearTimeout(timer));
  }

  /**
   * Sends SIGTERM and checks that the server exits with status 0 within
   * timeoutMs and printed no sanitizer report. Throws with details otherwise.
   * Safe to call twice.
   */
  async stop(timeoutMs = 10000) {
    if (this._stopResult) return this._stopResult;
    this._stopResult = this._stop(timeoutMs);
    return this._stopResult;
  }

  async _stop(timeoutMs) {
    const diedEarly = this.exit !== null;
    if (!diedEarly) this.child.kill("SIGTERM");
    let status = await this.waitExit(timeoutMs);
    const problems = [];
    if (diedEarly) {
      problems.push(`the server had already exited before SIGTERM: ${JSON.stringify(this.exit)}`);
    } else if (status === null) {
      this.child.kill("SIGKILL");
      status = await this.waitExit(5000);
      problems.push(`the server did not exit within ${timeoutMs} ms of SIGTERM`);
    } else if (status.code !== 0) {
      problems.push(`the server exited with ${JSON.stringify(status)}`);
    }
    // Let the pipes drain so a report written just before exit is seen.
    await sleep(50);
    const report = sanitizerReport(this._stderr);
    if (report) problems.push(`sanitizer report on stderr:\n${report}`);
    if (problems.length > 0) {
      throw new Error(
        `${describeCommand(this.argv)}: ${problems.join("; ")}\n` +
          `--- stderr (last 8000 bytes) ---\n${this._stderr.slice(-8000)}`,
      );
    }
    return status;
  }
}

/** A stand-in for a server someone else runs (SPACES_ENGINEIO_URL). */
class ExternalServer {
  constructor(url) {
    const u = new URL(url);
    this.argv = ["(external)", url];
    this.port = Number(u.port);
    this.url = `${u.protocol}//${u.host}`;
    this.wsUrl = this.url.replace(/^http/, "ws");
    this.exit = null;
  }
  stderr() {
    return "";
  }
  alive() {
    return true;
  }
  assertAlive() {}
  async stop() {
    return { code: 0, signal: null };
  }
}

/**
 * Starts argv + ["--port", P] on a free port and resolves with a
 * ServerProcess once the port accepts connections. Rejects (with the
 * server's stderr) if the program exits first or is not ready within
 * readyTimeoutMs. A start that fails because the port was taken in the
 * meantime is retried on another port.
 */
async function startServer(argv, { readyTimeoutMs = 30000, env = {}, attempts = 3 } = {}) {
  if (!fs.existsSync(argv[0]) && argv[0].includes("/")) {
    throw new Error(
      `server program ${argv[0]} does not exist (build it, or set ` +
        `SPACES_ENGINEIO_SERVER=reference to test the reference server)`,
    );
  }
  let lastError = null;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = await freePort();
    const child = spawn(argv[0], [...argv.slice(1), "--port", String(port)], {
      cwd: SOURCE_DIR,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const server = new ServerProcess(argv, port, child);
    let spawnError = null;
    child.on("error", (e) => {
      spawnError = e;
    });
    readyTimeoutMs = ms(readyTimeoutMs);
    const deadline = Date.now() + readyTimeoutMs;
    while (Date.now() < deadline) {
      if (spawnError)
        throw new Error(`cannot start ${describeCommand(argv)}: ${spawnError.message}`);
      if (!server.alive()) break;
      if (await canConnect(port)) {
        server.assertAlive();
        return server;
      }
      await sleep(50);
    }
    if (server.alive()) {
      child.kill("SIGKILL");
      await server.waitExit(5000);
      throw new Error(
        `${describeCommand(argv)} did not accept connections on port ${port} ` +
          `within ${readyTimeoutMs} ms\n--- stderr ---\n${server.stderr().slice(-8000)}`,
      );
    }
    lastError = new Error(
      `${describeCommand(argv)} exited before accepting connections: ` +
        `${JSON.stringify(server.exit)}\n--- stderr ---\n${server.stderr().slice(-8000)}`,
    );
    if (!/in use|EADDRINUSE/i.test(server.stderr())) break;
  }
  throw lastError;
}

/** startServer(engineioServerCommand()), or the external server if set. */
async function startEngineioServer(options) {
  if (process.env.SPACES_ENGINEIO_URL) {
    return new ExternalServer(process.env.SPACES_ENGINEIO_URL);
  }
  return startServer(engineioServerCommand(), options);
}

module.exports = {
  SOURCE_DIR,
  BUILD_DIR,
  TIMEOUT_MULTIPLIER,
  ms,
  sleep,
  waitUntil,
  freePort,
  canConnect,
  serverCommand,
  engineioServerCommand,
  describeCommand,
  sanitizerReport,
  startServer,
  startEngineioServer,
};
