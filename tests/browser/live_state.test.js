// The live state of request cards (issue 14), in Firefox ESR (puppeteer-core,
// WebDriver BiDi; SPACES_LIVE_BROWSER=chromium runs it in Chromium), with the
// original-behaviour tests/clients/mock_app.py (it works one request at a time):
//   - three submissions behind a busy app: their places in line 1, 2, 3, moving
//     up live, then each result;
//   - the estimated wait once the space has a few completions;
//   - the app killed mid-request: the card says so and is back in the queue;
//   - Cancel (queued and running; a late result is ignored) and Retry;
//   - a card looks the same live and after a reload;
//   - the server restarted under an open page: a banner while the page's
//     socket is down, then every card and badge caught up without a reload.
// Screenshots of each state: $SPACES_BUILD_DIR/screenshots/<browser>-live-*.png
//
//   node --test tests/browser/live_state.test.js
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const h = require("../lib/harness.js");
const { chromiumDriver } = require("./seed_plan.test.js");
const { firefoxDriver } = require("./firefox.test.js");
const { Site, Browser, until } = require("./site.js");

const driver = (process.env.SPACES_LIVE_BROWSER || "firefox") === "chromium" ? chromiumDriver() : firefoxDriver();
driver.name = `${driver.name}-live`;
const site = new Site("live");
const br = new Browser(driver, site);

before(async () => {
  await site.start();
  await br.launch();
});

after(async () => {
  await br.close();
  await site.close();
});

// ---------------------------------------------------------------------------
// The cards as the page shows them

function cardsOf(page) {
  return page.evaluate(() => Array.from(document.querySelectorAll("li.req")).map((e) => {
    const t = (s) => {
      const x = e.querySelector(s);
      return x ? x.textContent : null;
    };
    return {
      id: e.getAttribute("data-request-id"),
      status: e.getAttribute("data-status"),
      state: e.getAttribute("data-state"),
      label: t(".req-status"),
      prompt: t(".req-prompt"),
      notice: t(".req-notice"),
      eta: t(".req-eta"),
      msg: t(".req-msg"),
      text: t(".req-text"),
      meta: t(".req-meta"),
      error: t(".req-error"),
      buttons: Array.from(e.querySelectorAll("button")).map((b) => b.textContent),
      // Everything but the ticking waiting time.
      all: Array.from(e.childNodes).filter((c) => !(c.classList && c.classList.contains("req-progress")))
        .map((c) => c.textContent).join("|"),
    };
  }));
}

async function card(page, prompt) {
  const all = (await cardsOf(page)).filter((c) => c.prompt === prompt);
  if (all.length > 1) throw new Error(`${all.length} cards for "${prompt}"`);
  return all[0] || null;
}

async function waitCard(page, prompt, pred, what, timeoutMs = 30000) {
  return until(async () => {
    const c = await card(page, prompt);
    return c && pred(c) ? c : null;
  }, timeoutMs, `the card "${prompt}" ${what}`);
}

const FINAL = new Set(["completed", "failed", "timeout", "cancelled"]);
const final = (page, prompt, t) => waitCard(page, prompt, (c) => FINAL.has(c.state), "to end", t);

async function submit(page, prompt) {
  await driver.fill(page, "textarea[name=prompt]", prompt);
  await page.click("#submit-form button[type=submit]");
  return until(() => card(page, prompt), 15000, `a card for "${prompt}"`);
}

async function openSpace(page, sp) {
  await page.goto(`${site.url}/ai_project/${sp.id}`);
  await until(() => page.evaluate(() => {
    const b = document.querySelector("#space .badge[data-live-space]");
    return b && b.hasAttribute("data-live-ready");
  }), 15000, "the live state of the space");
}

const badge = (page) => page.evaluate(() => document.querySelector("#space .badge[data-live-space]").textContent);
const status = async (id) => (await fetch(`${site.url}/websockets/status?request_id=${id}`)).json();

// ---------------------------------------------------------------------------

// A card's button, clicked inside the page in one step: live updates re-render
// a card's buttons, so an element handle taken a moment before may already be
// detached (puppeteer's click scrolls, then clicks, awaiting in between).
async function clickCard(page, selector) {
  await until(() => page.evaluate((sel) => {
    const b = document.querySelector(sel);
    if (!b) return false;
    b.click();
    return true;
  }, selector), 15000, `a button ${selector}`);
}

test("three submissions behind a busy app: places 1, 2, 3 live, moving up, then the results", async () => {
  const sp = await site.addSpace();
  const app = site.startApp(sp.name, { delay: 4 });
  await app.registered();
  const { page, context } = await br.newUser();
  await openSpace(page, sp);
  await submit(page, "Busy");
  await waitCard(page, "Busy", (c) => c.state === "processing", "to be processing");
  const prompts = ["First", "Second", "Third"];
  for (const p of prompts) {
    const c = await submit(page, p);
    // A new card is where the user looks: it has the focus (and was scrolled to).
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute("data-request-id")), c.id);
  }
  // Each one's place: "In queue, position k" (the database's queue) or
  // "Waiting at the app, k ahead" (held by the app behind k others).
  const places = await until(async () => {
    const cs = await Promise.all(prompts.map((p) => card(page, p)));
    const ks = cs.map((c) => {
      const m = /^(?:In queue, position|Waiting at the app,) (\d+)/.exec(c.label);
      return m ? Number(m[1]) : null;
    });
    return ks.every((k, i) => k === i + 1) ? cs : null;
  }, 20000, "places 1, 2, 3 on the three cards");
  for (const c of places) assert.equal(c.buttons.join(), "Cancel", `${c.prompt}: a queued card can be cancelled`);
  const waiting = await page.evaluate(() => document.querySelector("#space [data-live-load]").textContent);
  await br.shot(page, "queue-1-2-3");
  // Places move up as the app works: "First" processes, "Third" reaches place 1.
  await waitCard(page, "Third", (c) => /(position|,) 1\b/.test(c.label), "to reach place 1", 40000);
  await br.shot(page, "queue-moved-up");
  await waitCard(page, "First", (c) => c.state === "processing" && /\d+%/.test(c.msg || ""),
    "to show progress", 30000).catch(() => {}); // progress may pass between two looks
  for (const p of ["Busy", ...prompts]) {
    const c = await final(page, p, 60000);
    assert.equal(c.state, "completed", JSON.stringify(c));
    assert.equal(c.text, `[Mock] Generated response for: ${p}`);
    assert.match(c.meta, /Processing time: [\d.]+ s · Model: mock-model-v1 · \d+ tokens · Confidence: \d+%/);
  }
  await br.shot(page, "queue-done");
  console.log(`# space load while queued: ${waiting}`);
  await app.stop();
  await context.close();
});

test("the estimated wait shows once the space has a few completions", async () => {
  const sp = await site.addSpace();
  const app = site.startApp(sp.name, { delay: 2 });
  await app.registered();
  const { page, context } = await br.newUser();
  await openSpace(page, sp);
  assert.equal(await page.evaluate(() => document.querySelector("#space [data-live-load]").textContent),
    "1 app connected · queue empty", "no estimate without completions");
  for (let i = 1; i <= 3; i++) {
    await submit(page, `Warm-up ${i}`);
    await final(page, `Warm-up ${i}`);
  }
  await submit(page, "Busy again");
  await submit(page, "Also waiting");
  await submit(page, "Waits with an estimate");
  const c = await waitCard(page, "Waits with an estimate", (x) => x.eta, "to show an estimated wait", 20000);
  assert.match(c.eta, /^Estimated wait: (a few seconds|about \d+ (s|min|h))$/);
  await br.shot(page, "eta");
  assert.equal((await final(page, "Waits with an estimate")).state, "completed");
  await app.stop();
  await context.close();
});

test("the app killed mid-request: the card says so, back in the queue, then done by the next app", async () => {
  const sp = await site.addSpace();
  let app = site.startApp(sp.name, { delay: 8 });
  await app.registered();
  const { page, context } = await br.newUser();
  await openSpace(page, sp);
  await submit(page, "Interrupted");
  await waitCard(page, "Interrupted", (c) => c.state === "processing" && /\d+%/.test(c.msg || ""), "to show progress");
  app.child.kill("SIGKILL");
  const c = await waitCard(page, "Interrupted", (x) => x.notice && x.state === "queued", "to be requeued with a notice", 20000);
  assert.match(c.notice, /disconnect/i);
  assert.match(c.label, /^In queue/);
  assert.equal(await badge(page), "Not connected");
  // Said to screen readers, politely, once.
  const said = await page.evaluate(() => {
    const e = document.getElementById("live-announcer");
    return e ? { live: e.getAttribute("aria-live"), text: e.textContent } : null;
  });
  assert.equal(said && said.live, "polite");
  assert.match(said.text, /^“Interrupted”: In queue, position 1\. The app disconnected; back in the queue\.$/);
  await br.shot(page, "requeued");
  app = site.startApp(sp.name, { delay: 0.5 });
  await app.registered();
  const done = await final(page, "Interrupted");
  assert.equal(done.state, "completed", JSON.stringify(done));
  // The notice was about the queue: the finished card no longer says it, as
  // the server's document does not.
  assert.equal(done.notice, null, JSON.stringify(done));
  assert.equal((await status(done.id)).notice, undefined);
  await app.stop();
  await context.close();
});

test("cancel a queued and a running request, retry one; a late result is ignored", async () => {
  const sp = await site.addSpace();
  const app = site.startApp(sp.name, { delay: 5 });
  await app.registered();
  const { page, context } = await br.newUser();
  await openSpace(page, sp);
  await submit(page, "Running");
  await waitCard(page, "Running", (c) => c.state === "processing", "to be processing");
  const queued = await submit(page, "Queued");
  await waitCard(page, "Queued", (c) => c.buttons.includes("Cancel"), "to offer Cancel");

  // The queued one.
  await clickCard(page, `li.req[data-request-id="${queued.id}"] button[data-action=cancel]`);
  let c = await waitCard(page, "Queued", (x) => x.state === "cancelled", "to be cancelled", 15000);
  assert.equal(c.label, "Cancelled");
  assert.deepEqual(c.buttons, ["Retry"]);
  let j = await status(queued.id);
  assert.equal(j.status, "failed");
  assert.equal(j.reason, "cancelled");
  await br.shot(page, "cancelled");

  // The running one: cancelled now, and the app's result later changes nothing.
  const running = await card(page, "Running");
  const from = app.lines.length;
  await clickCard(page, `li.req[data-request-id="${running.id}"] button[data-action=cancel]`);
  await waitCard(page, "Running", (x) => x.state === "cancelled", "to be cancelled", 15000);
  await app.waitLine(/\[RESULT\] Result sent/, 20000, from).catch(() => {}); // an app may stop on cancel_request
  await h.sleep(500);
  assert.equal((await card(page, "Running")).state, "cancelled", "a late result does not revive it");
  j = await status(running.id);
  assert.equal(j.reason, "cancelled", JSON.stringify(j));

  // Retry: a new card with the same prompt, focused, that completes.
  const before = (await cardsOf(page)).length;
  await clickCard(page, `li.req[data-request-id="${queued.id}"] button[data-action=retry]`);
  await until(async () => (await cardsOf(page)).length === before + 1, 15000, "a new card for the retry");
  const fresh = (await cardsOf(page))[0];
  assert.equal(fresh.prompt, "Queued");
  assert.notEqual(fresh.id, queued.id);
  assert.equal(await page.evaluate(() => document.activeElement && document.activeElement.getAttribute("data-request-id")),
    fresh.id, "the new card has the focus");
  const done = await until(async () => {
    const x = (await cardsOf(page)).find((y) => y.id === fresh.id);
    return x && FINAL.has(x.state) ? x : null;
  }, 40000, "the retried request to end");
  assert.equal(done.state, "completed");
  assert.equal(done.text, "[Mock] Generated response for: Queued");
  await br.shot(page, "retried");
  await app.stop();
  await context.close();
});

test("a timed-out request: the card says so, and Retry sends it again", async () => {
  const sp = await site.addSpace({ ws_timeout_seconds: "3" });
  let app = site.startApp(sp.name, { noAnswer: true });
  await app.registered();
  const { page, context } = await br.newUser();
  await openSpace(page, sp);
  const x = await submit(page, "Too slow");
  const c = await final(page, "Too slow", 30000);
  assert.equal(c.state, "timeout", JSON.stringify(c));
  assert.equal(c.label, "Timed out");
  assert.match(c.error || "", /timed out/i);
  assert.deepEqual(c.buttons, ["Retry"]);
  await br.shot(page, "timed-out");
  await app.stop();
  app = site.startApp(sp.name, { delay: 0.3 });
  await app.registered();
  await until(async () => (await badge(page)) === "Connected", 15000, "Connected");
  await clickCard(page, `li.req[data-request-id="${x.id}"] button[data-action=retry]`);
  const done = await until(async () => {
    const all = (await cardsOf(page)).filter((y) => y.prompt === "Too slow" && y.id !== x.id);
    return all.length === 1 && FINAL.has(all[0].state) ? all[0] : null;
  }, 30000, "the retried request to end");
  assert.equal(done.state, "completed");
  assert.equal(done.text, "[Mock] Generated response for: Too slow");
  await app.stop();
  await context.close();
});

test("a card looks the same live and after a reload", async () => {
  const sp = await site.addSpace();
  const app = site.startApp(sp.name, { delay: 3 });
  await app.registered();
  const { page, context } = await br.newUser();
  await openSpace(page, sp);
  await submit(page, "Kept\nwith two lines");
  await final(page, "Kept\nwith two lines");
  const x = await submit(page, "Then cancelled");
  await waitCard(page, "Then cancelled", (c) => c.buttons.includes("Cancel"), "to offer Cancel");
  // Status look-ups answer late (as on a slow network): the card must not
  // show a cancelled state of its own making before the server's document.
  await page.evaluate(() => {
    const f = window.fetch;
    window.fetch = (u, o) => (String(u).includes("/websockets/status")
      ? new Promise((r) => setTimeout(r, 1500)).then(() => f(u, o)) : f(u, o));
  });
  await clickCard(page, `li.req[data-request-id="${x.id}"] button[data-action=cancel]`);
  assert.equal((await final(page, "Then cancelled")).state, "cancelled");
  const live = await cardsOf(page);
  await br.shot(page, "before-reload");
  await page.reload();
  const again = await until(async () => {
    const cs = await cardsOf(page);
    return cs.length === live.length && cs.every((c, i) => c.all === live[i].all) ? cs : null;
  }, 15000, `the reloaded cards to equal the live ones:\n${JSON.stringify(live, null, 1)}\n` +
    `now: ${JSON.stringify(await cardsOf(page), null, 1)}`);
  assert.equal(again.length, 2);
  // Times in the viewer's local time, the UTC instant kept in datetime.
  const times = await page.evaluate(() => Array.from(document.querySelectorAll("li.req time[datetime]"))
    .map((t) => [t.textContent, new Date(t.getAttribute("datetime")).toLocaleString()]));
  assert.ok(times.length >= 2, "each card has its time");
  for (const [shown, local] of times) assert.equal(shown, local);
  assert.equal(await page.evaluate(() => getComputedStyle(document.querySelector(".req-text")).whiteSpace), "pre-wrap");
  await br.shot(page, "after-reload");
  await app.stop();
  await context.close();
});

test("the server restarts under an open page: a banner, then every card and badge caught up, no reload", async () => {
  const sp = await site.addSpace();
  let app = site.startApp(sp.name, { delay: 20 });
  await app.registered();
  const { page, context } = await br.newUser();
  await openSpace(page, sp);
  assert.equal(await page.evaluate(() => !!document.getElementById("conn-banner") &&
    !document.getElementById("conn-banner").hidden), false, "no banner while connected");
  await submit(page, "Across a restart");
  await waitCard(page, "Across a restart", (c) => c.state === "processing" || c.state === "waiting", "to be at the app");
  await page.evaluate(() => { window.__samePage = true; });

  await app.stop(); // the app is gone while the server is down: the badge must catch up
  await site.stopServer();
  const shown = await until(() => page.evaluate(() => {
    const b = document.getElementById("conn-banner");
    return b && !b.hidden && getComputedStyle(b).display !== "none" ? b.textContent : null;
  }), 20000, "the connection banner");
  assert.match(shown, /Connection lost/);
  await br.shot(page, "server-down");

  await site.startServer();
  await until(() => page.evaluate(() => {
    const b = document.getElementById("conn-banner");
    return b && b.hidden;
  }), 30000, "the banner to go once reconnected");
  assert.equal(await page.evaluate(() => window.__samePage), true, "the page was not reloaded");
  await until(async () => (await badge(page)) === "Not connected", 15000, "the badge to catch up");
  // The card shows what the server says about it now.
  const c = await until(async () => {
    const x = await card(page, "Across a restart");
    const j = await status(x.id);
    const want = j.state || j.status;
    return x.state === want || x.status === j.status && FINAL.has(x.state) ? { x, j } : null;
  }, 20000, "the card to catch up with the server");
  await br.shot(page, "server-back");
  // The app comes back: the request ends live on the same page.
  app = site.startApp(sp.name, { delay: 0.5 });
  await app.registered();
  await until(async () => (await badge(page)) === "Connected", 15000, "Connected again");
  if (!FINAL.has(c.x.state)) {
    const done = await final(page, "Across a restart", 40000);
    assert.equal(done.state, "completed", JSON.stringify(done));
  }
  assert.equal(await page.evaluate(() => window.__samePage), true, "still the same page");
  await br.assertNoPageProblems();
  await app.stop();
  await context.close();
});

test("results are shown safely: text with its line breaks, never as HTML; links and media for http(s) URLs only", async () => {
  const sp = await site.addSpace();
  const app = site.startResultApp(sp.name);
  await app.registered();
  const { page, context } = await br.newUser();
  await openSpace(page, sp);
  const c = await submit(page, "Show me everything");
  await final(page, "Show me everything");
  const sel = `li.req[data-request-id="${c.id}"]`;
  const r = await page.evaluate((s) => {
    const e = document.querySelector(s);
    const text = e.querySelector(".req-text");
    return {
      text: text.textContent,
      textChildren: text.children.length,
      whiteSpace: getComputedStyle(text).whiteSpace,
      imgs: Array.from(e.querySelectorAll("img")).map((x) => x.getAttribute("src")),
      audios: Array.from(e.querySelectorAll("audio")).map((x) => x.getAttribute("src")),
      links: Array.from(e.querySelectorAll("a")).map((x) => x.getAttribute("href")),
      scripts: e.querySelectorAll("script, b, [onerror]").length,
      json: (e.querySelector(".req-json") || {}).textContent,
      meta: (e.querySelector(".req-meta") || {}).textContent,
      pwned: window.__pwned === 1,
    };
  }, sel);
  assert.equal(r.text, "<img src=x onerror=\"window.__pwned=1\">line one\nline two\n<b>bold?</b>");
  assert.equal(r.textChildren, 0, "the app's HTML stays text");
  assert.equal(r.whiteSpace, "pre-wrap", "line breaks are kept");
  assert.deepEqual(r.imgs.sort(), ["/uploads/abc/picture.png", "https://example.invalid/picture.png"]);
  assert.deepEqual(r.audios, ["https://example.invalid/speech.wav"]);
  assert.deepEqual(r.links.sort(), ["/uploads/abc/picture.png", "http://example.invalid/page",
    "https://example.invalid/picture.png", "https://example.invalid/speech.wav"]);
  assert.equal(r.scripts, 0, "no element made from app-supplied HTML");
  assert.equal(r.pwned, false);
  assert.deepEqual(JSON.parse(r.json), { bad_link: "javascript:window.__pwned=1",
    html_field: "<script>window.__pwned=1</script>", scores: { a: 1, b: [1, 2] } });
  assert.match(r.json, /\n  "scores": \{\n    "a": 1,/, "JSON is pretty-printed");
  assert.match(r.meta, /^Processing time: 0\.25 s · Model: result-app-1 · 7 tokens$/);
  await br.shot(page, "safe-result");
  await app.stop();
  await context.close();
});

test("the server exits cleanly", async () => {
  await br.close();
  await Promise.all(site.apps.map((a) => a.stop()));
  await site.stopServer();
});
