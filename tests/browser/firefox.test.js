// The seed test plan in Firefox ESR (issue 6): the same tests as
// seed_plan.test.js (which holds the plan and its set-up), with Debian's
// /usr/bin/firefox-esr driven by puppeteer-core over WebDriver BiDi.
//
//   node --test tests/browser/firefox.test.js
//
//   SPACES_FIREFOX     the browser (default /usr/bin/firefox-esr)
//   and the variables seed_plan.test.js lists (SPACES_BUILD_DIR, SPACES_SERVER, ...).
// Screenshots: $SPACES_BUILD_DIR/artifacts/browser/firefox-*.png
"use strict";

const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { defineSeedPlan } = require("./seed_plan.test.js");

function firefoxDriver() {
  const executablePath = process.env.SPACES_FIREFOX || "/usr/bin/firefox-esr";
  let profile = null;
  return {
    name: "firefox",
    async launch() {
      if (!fs.existsSync(executablePath)) {
        throw new Error(`${executablePath} is missing: run ci/deps.sh (Debian package firefox-esr)`);
      }
      let puppeteer;
      try {
        puppeteer = require("puppeteer-core");
      } catch (e) {
        throw new Error(`puppeteer-core is not installed (run ci/deps.sh): ${e.message}`);
      }
      profile = fs.mkdtempSync(path.join(os.tmpdir(), "spaces-browser-firefox-"));
      try {
        return await puppeteer.launch({
          browser: "firefox",
          protocol: "webDriverBiDi",
          executablePath,
          headless: true,
          userDataDir: profile, // a fresh profile
          timeout: 60000,
        });
      } catch (e) {
        let version = "(version unknown)";
        try {
          version = execFileSync(executablePath, ["--version"], { encoding: "utf8", timeout: 20000 }).trim();
        } catch (_) {}
        const pp = require("puppeteer-core/package.json").version;
        throw new Error(
          `puppeteer-core ${pp} could not start ${version} (${executablePath}) headless over ` +
            `WebDriver BiDi: ${e.message}`,
        );
      }
    },
    async newContext(browser) {
      return browser.createBrowserContext();
    },
    async preparePage(page, fn) {
      await page.setViewport({ width: 1000, height: 900 });
      await page.evaluateOnNewDocument(fn);
    },
    async fill(page, sel, text) {
      await page.$eval(sel, (e) => {
        e.value = "";
      });
      if (text) await page.type(sel, text);
    },
    async upload(page, sel, file) {
      const input = await page.$(sel);
      await input.uploadFile(file);
    },
    async close(browser) {
      try {
        await browser.close();
      } finally {
        if (profile) fs.rmSync(profile, { recursive: true, force: true });
        profile = null;
      }
    },
  };
}

module.exports = { firefoxDriver };

if (require.main === module) defineSeedPlan(firefoxDriver());
