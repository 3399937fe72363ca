// Every screen at 390 px, in light and dark (issue 14), in headless Chromium:
//   - no page scrolls sideways: document.documentElement.scrollWidth <= innerWidth
//     (a screenshot of each page is saved under $SPACES_BUILD_DIR/screenshots/);
//   - axe-core (npm) finds no serious or critical violation (contrast included);
//   - every control of the space page is reachable with the Tab key.
// Pages: the spaces list, a space page logged out, as a user with request
// cards and as the admin, log in, register, account, admin, admin add, edit
// and delete, and a 404.
//
//   node --test tests/browser/screens.test.js
//   SPACES_CHROMIUM  the browser (default /usr/bin/chromium); see site.js for the rest.
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { chromiumDriver } = require("./seed_plan.test.js");
const { Site, Browser, axeSource, until } = require("./site.js");

function driver390() {
  const d = chromiumDriver();
  return {
    ...d,
    newContext: (browser, opts = {}) => browser.newContext({ viewport: { width: 1000, height: 900 }, ...opts }),
  };
}

const site = new Site("screens");
const br = new Browser(driver390(), site);
const state = {};
const AXE = axeSource();

before(async () => {
  await site.start();
  await br.launch();
  // A space with every input (the widest form), its app, a user with requests.
  state.space = await site.addSpace({ ws_enable_audio: "on", ws_enable_video: "on", ws_enable_file_upload: "on" });
  state.app = site.startApp(state.space.name, { delay: 0.2 });
  await state.app.registered();
  const u = await br.newUser();
  state.user = u;
  await u.page.goto(`${site.url}/ai_project/${state.space.id}`);
  for (const prompt of ["A first request", "A second request with a much longer prompt that wraps over lines"]) {
    await u.page.fill("textarea[name=prompt]", prompt);
    await u.page.click("#submit-form button[type=submit]");
    await until(() => u.page.evaluate((p) => Array.from(document.querySelectorAll("li.req"))
      .some((e) => e.textContent.includes(p) && e.getAttribute("data-status") === "completed"), prompt),
    30000, `"${prompt}" to complete`);
  }
  await u.context.close();
});

after(async () => {
  await br.close();
  await site.close();
});

/** [name, who, path] of every page; who is null (logged out), "user" or "admin". */
function pages() {
  const id = state.space.id;
  return [
    ["index", null, "/"],
    ["index-user", "user", "/"],
    ["space-logged-out", null, `/ai_project/${id}`],
    ["space-user", "user", `/ai_project/${id}`],
    ["space-admin", "admin", `/ai_project/${id}`],
    ["login", null, "/login"],
    ["register", null, "/register"],
    ["account", "user", "/account"],
    ["admin", "admin", "/admin"],
    ["admin-add", "admin", "/admin/space/add"],
    ["admin-edit", "admin", `/admin/space/edit/${id}`],
    ["admin-delete", "admin", `/admin/space/delete/${id}`],
    ["not-found", null, "/ai_project/no_such_space"],
  ];
}

/** Runs axe-core in the page: the serious and critical violations, one line each. */
async function axe(page) {
  await page.evaluate(AXE);
  const v = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((x) => ({ id: x.id, impact: x.impact, help: x.help,
      nodes: x.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary.replace(/\s+/g, " ").slice(0, 200)}`) }));
  });
  return v.filter((x) => x.impact === "serious" || x.impact === "critical");
}

/** The user's and the admin's log-ins of one colour scheme, a logged-out context. */
async function contexts(scheme) {
  const opts = { viewport: { width: 390, height: 844 }, colorScheme: scheme };
  const user = await br.driver.newContext(br.browser, opts);
  const up = await br.newPage(user, `user-${scheme}`);
  await br.login(up, state.user.name, require("./site.js").PASSWORD);
  const admin = await br.driver.newContext(br.browser, opts);
  const ap = await br.newPage(admin, `admin-${scheme}`);
  await br.login(ap, "admin", require("./site.js").ADMIN_PASSWORD);
  const anon = await br.driver.newContext(br.browser, opts);
  const np = await br.newPage(anon, `anon-${scheme}`);
  return { user: up, admin: ap, null: np, close: () => Promise.all([user.close(), admin.close(), anon.close()]) };
}

for (const scheme of ["light", "dark"]) {
  test(`every page at 390 px (${scheme}): no sideways scrolling, no serious axe violation`, async () => {
    const c = await contexts(scheme);
    const overflow = [];
    const violations = [];
    const measured = {};
    for (const [name, who, path] of pages()) {
      const page = c[who];
      await page.goto(`${site.url}${path}`);
      // The live state first (badges replaced, cards caught up), then measure.
      await page.waitForTimeout(300);
      const m = await page.evaluate(() => {
        const iw = window.innerWidth;
        // The outermost elements that stick out, to say what is too wide.
        const wide = Array.from(document.body.querySelectorAll("*"))
          .filter((e) => e.getBoundingClientRect().right > iw + 0.5 && !(e.parentElement &&
            e.parentElement.getBoundingClientRect().right > iw + 0.5))
          .slice(0, 4).map((e) => `${e.tagName.toLowerCase()}${e.className ? "." + e.className : ""}` +
            ` ${Math.round(e.getBoundingClientRect().width)} px`);
        return { sw: document.documentElement.scrollWidth, iw, wide };
      });
      measured[name] = m.sw;
      if (m.sw > m.iw) overflow.push(`${name}: scrollWidth ${m.sw} > innerWidth ${m.iw} (${m.wide.join(", ")})`);
      await br.shot(page, `390-${scheme}-${name}`);
      for (const v of await axe(page)) violations.push(`${name}: [${v.impact}] ${v.id} ${v.help}\n    ${v.nodes.join("\n    ")}`);
    }
    console.log(`# ${scheme} scrollWidth at 390 px: ${JSON.stringify(measured)}`);
    await c.close();
    if (violations.length) console.log(`# ${scheme} axe-core:\n${violations.join("\n")}`);
    assert.deepEqual(overflow, [], "pages wider than the 390 px viewport");
    assert.deepEqual(violations, [], "serious or critical axe-core violations");
  });
}

test("the space page's controls are reachable with the Tab key, each with a name", async () => {
  const c = await contexts("light");
  const page = c.user;
  await page.setViewportSize({ width: 1000, height: 900 });
  await page.goto(`${site.url}/ai_project/${state.space.id}`);
  await until(() => page.evaluate(() => !document.getElementById("submit-fields").disabled), 10000, "the form to open");
  const wanted = await page.evaluate(() => Array.from(document.querySelectorAll(
    "a[href], button, input:not([type=hidden]), textarea, select")).filter((e) => !e.disabled && e.offsetParent)
    .map((e) => e.outerHTML.slice(0, 80)));
  const reached = new Set();
  for (let i = 0; i < wanted.length + 5; i++) {
    await page.keyboard.press("Tab");
    const r = await page.evaluate(() => {
      const e = document.activeElement;
      return e && e !== document.body ? { html: e.outerHTML.slice(0, 80), outline: getComputedStyle(e).outlineStyle } : null;
    });
    if (r) reached.add(r.html);
  }
  const missed = wanted.filter((x) => !reached.has(x));
  assert.deepEqual(missed, [], "controls the Tab key never reached");
  await c.close();
  await br.assertNoPageProblems();
});

test("the server exits cleanly", async () => {
  await br.close();
  await Promise.all(site.apps.map((a) => a.stop()));
  await site.stopServer();
});
