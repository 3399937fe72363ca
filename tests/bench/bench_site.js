// bench_site.js: the start-up and site helpers shared by the end-to-end
// benchmarks (spaces_e2e.js, spaces_scale.js): command-line options, a free
// port, waiting for a server's /healthz, and a registered, logged-in user.
"use strict";

const net = require("node:net");

/** The value after `name` on the command line, or dflt. */
function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

/** Resolves once url/healthz answers 200; throws after tries * 50 ms. */
async function waitUp(url, tries = 200) {
  for (let i = 0; i < tries; i++) {
    try {
      if ((await fetch(url + "/healthz")).ok) return;
    } catch {}
    await sleep(50);
  }
  throw new Error(`${url} did not come up`);
}

/** The spaces_session cookie a response sets ("spaces_session=..."), or null. */
function cookieOf(res) {
  const c = res.headers.getSetCookie().find((x) => x.startsWith("spaces_session="));
  return c ? c.split(";")[0] : null;
}

/** POSTs a form, not following redirects. */
function form(url, body, cookie) {
  return fetch(url, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", ...(cookie ? { cookie } : {}) },
    body: new URLSearchParams(body).toString(),
  });
}

/** Registers username (if new) and logs in: the session cookie. */
async function login(base, username, password) {
  await form(base + "/register", { username, password, confirm_password: password });
  const res = await form(base + "/login", { username, password });
  const c = cookieOf(res);
  if (!c) throw new Error(`login ${username}: ${res.status}`);
  return c;
}

module.exports = { arg, sleep, freePort, waitUp, cookieOf, form, login };
