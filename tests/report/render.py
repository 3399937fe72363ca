#!/usr/bin/env python3
"""Writes the test-results document (issue 15) from one run's records.

    render.py --plan plan.json --load load.txt --security security.txt --out DIR
    render.py --security-tests      prints the pytest ids the security section runs

The document follows the seed test plan (shared seeds/000_…, a manual
test-results template) section by section and heading by heading; SECTIONS
below is the explicit map from each seed heading to the function that fills
it. Writes DIR/TEST_RESULTS.md, DIR/TEST_RESULTS.html (python3-markdown) and
DIR/test-results/load-latency.png (gnuplot).

Every blank of the template is filled from what the run measured: a box is
ticked ([x]) only from a check that passed; an unticked box always says why
("— not met: …", "— not checked: …", "— not chosen").
"""

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys

# ---------------------------------------------------------------------------
# The seed's tests: their expected results, keyed as plan.js records them.

TESTS = {
    1: ("Basic Connection", "Verify mock app can connect to website", [
        ("conn", 'Mock app shows "Socket.IO connection established"'),
        ("registered", 'Mock app shows "Registration successful"'),
        ("connid", "Mock app displays connection ID"),
        ("spaceid", "Mock app displays space ID"),
        ("page_connected", 'Website shows connection status as "Connected"'),
    ]),
    2: ("Single Request Processing", "Verify single inference request is processed correctly", [
        ("within_1s", "Mock app receives request within 1 second"),
        ("req_line", 'Mock app shows "[REQUEST] New inference request received"'),
        ("progress", 'Mock app shows "Progress: 25%", "Progress: 50%", "Progress: 75%"'),
        ("result_sent", 'Mock app shows "[RESULT] Result sent"'),
        ("result_30s", "Result appears on website within 30 seconds"),
        ("text", "Result contains generated text"),
        ("proc_time", "Result shows processing time"),
    ]),
    3: ("Multiple Concurrent Requests", "Verify system handles multiple requests in a queue", [
        ("all3", "All 3 requests received by mock app"),
        ("sequential", "Requests processed sequentially"),
        ("returned", "All 3 results return to respective tabs"),
        ("none_lost", "No requests lost"),
        ("queue", 'Processing shows queue building: "Queue size: 1, 2, 3"'),
    ]),
    4: ("Request with File Input", "Verify system handles file uploads in requests", [
        ("selector", "File selector appears in form"),
        ("selected", "File can be selected"),
        ("includes", "Request includes file data"),
        ("payload", "Mock app receives request with payload"),
        ("result", "Result returns within timeout"),
    ]),
    5: ("Disconnection & Reconnection", "Verify system correctly handles app disconnection", [
        ("not_connected", 'Status immediately changes to "Not Connected" after app stops'),
        ("form_disabled", "Form becomes disabled"),
        ("submit_fails", "Request submission fails with error message"),
        ("connected_again", 'Status immediately shows "Connected" after app restarts'),
        ("form_enabled", "Form becomes enabled"),
        ("new_request", "New request processes successfully"),
    ]),
    6: ("Error Handling", "Verify system handles errors gracefully", [
        ("empty", "Empty prompt shows validation error"),
        ("wrong_space", "Wrong space name shows connection error"),
        ("pre_conn", 'Request before connection shows "Remote app not connected"'),
        ("friendly", "All errors are user-friendly messages"),
    ]),
    7: ("Request Timeout", "Verify requests timeout after 2 minutes", [
        ("processing", 'Request shows "Processing..." for 2 minutes'),
        ("timeout_error", "After 2 minutes, shows timeout error"),
        ("another", "User can submit another request"),
    ]),
}

STEPS = {
    1: ["Start the website: `spaces-server` on a throwaway PostgreSQL (replaces `python run.py`)",
        "Create the test space: the admin's form `POST /admin/space/add` (replaces `test_websockets.py --setup-space`)",
        "Start `tests/clients/mock_app.py --space <name>` (unmodified)",
        "Read the mock app's console and the space page of a logged-in user, who registered through the site's forms"],
    2: ["The mock app is connected (restarted with `--delay 2` so the progress is seen)",
        "Open the space page in the browser", 'Wait for "Connected"', 'Type "Generate a haiku"',
        "Click Submit", "Read the mock app's console", "Wait for the result card"],
    3: ["A mock app with 4 s of work per request (2 s in quick mode)", "Three users, three browser contexts (tabs) on the space",
        'Type "Request 1", "Request 2", "Request 3"', "Click the three Submit buttons at once",
        "Wait for the three results, each in its own tab"],
    4: ["A space with audio and video enabled; its mock app connected", "Open the space page",
        "The report writes test_audio.wav (a real 1 s PCM WAV)", "Select it in the audio file input",
        'Type "Transcribe this audio"', "Submit",
        "Check the file's URL in the app's request payload serves the same bytes"],
    5: ['The mock app is connected ("Connected")', "The form is enabled", "Stop the mock app (SIGTERM, as Ctrl+C)",
        'Wait for "Not connected" on the open page, then refresh', "The form is disabled",
        "Force the form open and submit (a stale page)", "Restart the mock app",
        'Wait for "Connected" on the open page, then refresh', "The form is enabled", "Submit: it completes"],
    6: ["Submit an empty prompt", "Read the message", "Start the mock app with a space name that does not exist",
        "Read its console and exit status", "On a space whose app never connected, force the form open and submit",
        "Read the message"],
    7: ["A mock app that never answers (`mock_app.py --no-answer`)", "Submit a request",
        "Wait: the card is sampled at 25 %, 50 % and 90 % of the timeout", "Read the timeout error",
        "Start an answering app and submit again"],
}

SECURITY = [
    ("CSRF protection working", "e2e_web_routes", ["tests/e2e/test_web_routes.py::test_csrf"]),
    ("WebSocket authentication required", "e2e_spaces_protocol / e2e_web_routes",
     ["tests/e2e/test_spaces_protocol.py::test_app_token",
      "tests/e2e/test_web_routes.py::test_submit_and_status_errors"]),
    ("Duplicate space names rejected", "e2e_web_routes", ["tests/e2e/test_web_routes.py::test_duplicate_space_name"]),
    ("Unauthorized access blocked", "e2e_web_routes", ["tests/e2e/test_web_routes.py::test_admin_only"]),
    ("SQL injection attempts blocked", "e2e_web_routes", ["tests/e2e/test_web_routes.py::test_sql_injection"]),
    ("XSS protection active", "e2e_web_routes", ["tests/e2e/test_web_routes.py::test_xss_is_escaped"]),
]
SECURITY_WHAT = {
    "CSRF protection working": "cross-site Origin / Sec-Fetch-Site refused (403), a same-site form without the session's token refused, with it accepted",
    "WebSocket authentication required": "an app without the space's token (or a wrong one) is refused at register; submitting needs a logged-in session (401 without)",
    "Duplicate space names rejected": "a second space with the same name is refused by the admin form",
    "Unauthorized access blocked": "admin pages refuse anonymous visitors and non-admin users",
    "SQL injection attempts blocked": "injection strings in login, filters and space fields are data, not SQL",
    "XSS protection active": "markup in names and descriptions is escaped on every page; a strict Content-Security-Policy",
}

BROWSER_ROWS = [
    ("Chrome", "chromium", "headless Chromium (Chrome's engine, Blink) through playwright-core"),
    ("Firefox", "firefox", "Firefox ESR headless through puppeteer-core over WebDriver BiDi"),
    ("Safari", "webkit", "WebKitGTK MiniBrowser (Safari's engine) through Debian's WebKitWebDriver, under Xvfb"),
    ("Edge", "chromium", "Edge is Chromium: the Chromium run stands for it (no Edge build in Debian)"),
]

# ---------------------------------------------------------------------------


def tick(ok):
    return "[x]" if ok else "[ ]"


def code_block(text):
    text = (text or "").rstrip() or "(nothing was printed)"
    return "```\n" + text.replace("```", "'''") + "\n```"


def fmt_s(x, digits=2):
    return "n/a" if x is None else f"{x:.{digits}f} s"


class Doc:
    def __init__(self, plan, load, security, quick, out):
        self.p = plan
        self.load = load
        self.sec = security
        self.quick = quick
        self.out = out
        self.lines = []
        self.primary = next((b for b in ("chromium", "firefox", "webkit")
                             if plan["browsers"].get(b, {}).get("available")), None)
        self.issues = []  # (severity, title, steps, impact)

    def w(self, *lines):
        self.lines.extend(lines)

    def browser(self, name):
        return self.p["browsers"].get(name) or {"available": False, "error": "not run", "tests": {}}

    def test_rec(self, name, n):
        return self.browser(name).get("tests", {}).get(str(n))

    # -- sections, in the seed's order ------------------------------------

    def title(self):
        self.w("# WebSocket Spaces Test Results", "",
               f"Generated by `make report{' QUICK=1' if self.quick else ''}` (tests/report/) from a real run: "
               "every tick below comes from an assertion of that run, every output was captured from it. "
               f"Mode: **{'quick (CI)' if self.quick else 'full'}**.", "")

    def environment(self):
        e = self.p.get("env", {})
        py = e.get("python", {})
        b = {n: self.browser(n) for n in ("chromium", "firefox", "webkit")}

        def bv(n):
            r = b[n]
            return r.get("version") or f"not available ({r.get('error') or 'not run'})"
        self.w("## Test Environment", "",
               f"- **Date**: {e.get('date')}",
               f"- **Python Version**: {py.get('python')} (`/usr/bin/python3`, runs the mock app)",
               f"- **Flask Version**: none — the website is `spaces-server` ({e.get('server')}, C; replaces Flask), "
               f"build `{e.get('server_build')}`",
               f"- **PostgreSQL Version**: {e.get('postgresql')}",
               f"- **Socket.IO Version**: python-socketio {py.get('python-socketio')}, python-engineio "
               f"{py.get('python-engineio')} (mock app); socket.io-client {e.get('socketio_client')} (pages, load generator)",
               f"- **Browser**: {bv('chromium')}; {bv('firefox')}; {bv('webkit')}",
               f"- **OS**: {e.get('os')}",
               f"- **Node.js**: {e.get('node')} (playwright-core {e.get('playwright_core')}, puppeteer-core {e.get('puppeteer_core')})",
               f"- **Source**: {e.get('git')}", "")

    def configuration(self):
        c = self.p.get("config", {})
        self.w("## Test Configuration", "", "```",
               f"Website Host: {c.get('website')}",
               f"Mock App Host: {c.get('website')}",
               f"Test Space Name: {c.get('space_prefix')} (one space per test)",
               "Test User: one user per browser context, registered through /register (password testpass-report-1)",
               "Test Admin: admin (spaces-server user add admin --admin)",
               f"Server flags: {' '.join(c.get('server_flags') or []) or '(none)'}",
               f"Request timeout (test 7): {self.p.get('t7_timeout_s')} s "
               f"({'short space timeout, quick mode' if self.quick else 'the default'})",
               f"Mock app work per request in the timings: {self.p.get('app_delay_s')} s",
               "```", "")

    def pretest(self):
        items = [
            ("python_deps", "Python dependencies installed (`pip install -r requirements.txt`)"),
            ("socketio_deps", "Socket.IO dependencies installed (`pip install python-socketio python-engineio`)"),
            ("database", "Database initialized"),
            ("website", "Website running on port 5001"),
            ("admin", "Admin account accessible"),
        ]
        self.w("## Pre-Test Checklist", "")
        for key, label in items:
            r = self.p.get("pretest", {}).get(key)
            if r is None:
                self.w(f"- [ ] {label} — not checked: the run stopped before")
            elif r["ok"]:
                self.w(f"- [x] {label} — {r['detail']}")
            else:
                self.w(f"- [ ] {label} — not met: {r['detail']}")
        self.w("")

    def expected(self, T, n):
        out = []
        for key, label in TESTS[n][2]:
            c = (T or {}).get("checks", {}).get(key)
            if c is None:
                why = (T or {}).get("error") or "the test did not run"
                out.append(f"- [ ] {label} — not checked: {why}")
            elif c["ok"]:
                out.append(f"- [x] {label}" + (f" — {c['detail']}" if c["detail"] else ""))
            else:
                out.append(f"- [ ] {label} — not met: {c['detail'] or 'failed'}")
        return out

    def tests(self):
        self.w("## Test Execution", "")
        name = self.primary
        for n in range(1, 8):
            title, objective, _ = TESTS[n]
            T = self.test_rec(name, n) if name else None
            self.w(f"### Test {n}: {title}", "", f"**Objective**: {objective}", "")
            if n == 4:
                f = (T or {}).get("fields", {})
                self.w("**Prerequisites**:",
                       f"- {tick(bool(T and T['checks'].get('av_enabled', {}).get('ok')))} Space configured with audio/video enabled"
                       + ("" if T and T["checks"].get("av_enabled", {}).get("ok") else " — not checked: the test did not run"),
                       f"- {tick(bool(f.get('file')))} Test audio file prepared: "
                       + (f.get("file") or "— not checked: the test did not run"), "")
            self.w("**Steps** (as automated):")
            self.w(*[f"{i + 1}. {s}" for i, s in enumerate(STEPS[n])])
            self.w("", f"**Expected Results** ({self.browser(name).get('version') if name else 'no browser'}):")
            self.w(*self.expected(T, n))
            self.w("", "**Actual Results**:", "")
            self.w(*self.actual(T, n))
            verdict = "PASS" if T and T.get("pass") else "FAIL"
            self.w("", f"**Pass/Fail**: {verdict}" + (f" (stopped: {T['error']})" if T and T.get("error") else ""), "")
            t = (T or {}).get("times", {})
            if n == 2:
                self.w(f"**Processing Time**: {fmt_s(t.get('processing_s'))} (click to result on the page; "
                       f"the request reached the app after {t.get('at_app_ms')} ms; the app works 2 s)", "")
            elif n == 3:
                self.w(f"**Total Time**: {fmt_s(t.get('total_s'))} (three clicks to the third result; 3 x 4 s of work)"
                       if not self.quick else
                       f"**Total Time**: {fmt_s(t.get('total_s'))} (three clicks to the third result; 3 x 2 s of work)", "")
            elif n == 5:
                self.w(f"**Reconnection Time**: {fmt_s(t.get('reconnect_s'))} from starting the app to \"Connected\" "
                       f"on the open page ({t.get('connected_shown_ms')} ms after its registration); \"Not connected\" "
                       f"was shown {t.get('disconnect_shown_ms')} ms after the app exited", "")
            elif n == 7:
                self.w(f"**Timeout Duration**: {fmt_s(t.get('timeout_s'), 1)} (space timeout {self.p.get('t7_timeout_s')} s)", "")
            notes = list((T or {}).get("notes", []))
            others = []
            for other in ("chromium", "firefox", "webkit"):
                if other == name:
                    continue
                O = self.test_rec(other, n)
                if O:
                    others.append(f"{self.browser(other).get('version')}: {'PASS' if O.get('pass') else 'FAIL'}")
            if others:
                notes.append("Same test in the other browsers: " + "; ".join(others) + " (see Browser Compatibility).")
            if T:
                notes.append(f"The test took {T.get('seconds', 0):.1f} s.")
            self.w("**Notes**:", code_block("\n".join(notes) or "none"), "")
            for s in (T or {}).get("shots", []):
                self.w(f"![{s['caption']}]({s['file']})", "", f"*{s['caption']}* (`{s['file']}`)", "")
            self.w("---", "")

    def actual(self, T, n):
        if not T:
            return [code_block("the test did not run")]
        f = T.get("fields", {})
        yes = lambda ok: "Yes" if ok else "No"
        if n == 1:
            return [code_block(f"Mock App Output:\n{T.get('app')}\n\nWebsite:\n{T.get('page')}")]
        if n == 2:
            return [code_block(f"Mock App Output:\n{T.get('app')}\n\nWebsite Result:\n{T.get('page')}")]
        if n == 3:
            tabs = f.get("tabs") or [False, False, False]
            return [code_block(f"Mock App Queue Output:\n{T.get('app')}\n\nResults Received:\n"
                               + "\n".join(f"Tab {i + 1}: {yes(ok)}" for i, ok in enumerate(tabs))
                               + f"\n\nWebsite:\n{T.get('page')}")]
        if n == 4:
            c = T["checks"]
            return [code_block(f"File Selected: {f.get('file', '?')}\n"
                               f"Request Sent: {'Success' if f.get('sent') else 'Failure'}\n"
                               f"Mock App Received File: {yes(f.get('app_got_file'))}\n"
                               f"Result Returned: {yes(c.get('result', {}).get('ok'))}\n\n"
                               f"Mock App Output:\n{T.get('app')}\n\nWebsite Result:\n{T.get('page')}")]
        if n == 5:
            a = f.get("after_disconnect", {})
            r = f.get("after_reconnect", {})
            return [code_block(f"After Disconnect:\nStatus: {a.get('status')}\nForm: {a.get('form')}\n"
                               f"Request: {a.get('request')}\n\nAfter Reconnect:\nStatus: {r.get('status')}\n"
                               f"Form: {r.get('form')}\nRequest: {r.get('request')}\n\n"
                               f"Mock App Output:\n{T.get('app')}")]
        if n == 6:
            m = f.get("messages", {})
            return [code_block(f"Empty Prompt Error: {m.get('empty')}\nWrong Space Name Error: {m.get('wrong')}\n"
                               f"Pre-connection Request Error: {m.get('pre')}\n\n"
                               f"Mock App Output (wrong space name):\n{T.get('app')}")]
        if n == 7:
            s = f.get("samples") or []
            desc = "; ".join(f"{x['s']:.0f} s: {x['status']}" + (f" \"{x['msg']}\"" if x.get("msg") else "") for x in s)
            return [code_block(f"Timeout Behavior: the page said the space times out after {f.get('page_timeout')} s; "
                               f"while waiting the card read: {desc}; then:\n{T.get('page')}\n\n"
                               f"Mock App Output:\n{T.get('app')}")]
        return []

    def performance(self):
        perf = self.p.get("perf", {})
        res = self.p.get("resources", {})
        st = self.p.get("stability", {})

        def row(label, s, note):
            if not s or s.get("n") is None:
                return f"| {label} | n/a | n/a | n/a | not measured: {note} |"
            return f"| {label} | {s['min']:.2f} s | {s['max']:.2f} s | {s['avg']:.2f} s | {note} |"
        q12 = perf.get("queue_1_2") or {}
        q35 = perf.get("queue_3_5") or {}
        self.w("## Performance Metrics", "", "### Response Times", "",
               "| Test Case | Min Time | Max Time | Avg Time | Notes |",
               "|-----------|----------|----------|----------|-------|",
               row("Single Request", perf.get("single"),
                   f"{(perf.get('single') or {}).get('n', 0)} runs, {(perf.get('single') or {}).get('via', '')}; "
                   f"the app works {self.p.get('app_delay_s')} s"),
               row("With 1-2 queue", q12, f"{q12.get('n', 0)} requests that had 1-2 ahead of them "
                   f"({q12.get('rounds')} rounds of 3 users submitting at once over HTTP, status polled every 50 ms; "
                   f"{q12.get('lost', 0)} lost)"),
               row("With 3-5 queue", q35, f"{q35.get('n', 0)} requests that had 3-5 ahead of them "
                   f"({q35.get('rounds')} rounds of 6 users at once; {q35.get('lost', 0)} lost)"),
               row("Request timeout", perf.get("timeout"), f"{(perf.get('timeout') or {}).get('via', '')}, "
                   f"space timeout {self.p.get('t7_timeout_s')} s"),
               "", "### System Resources", "",
               "| Metric | Value | Notes |", "|--------|-------|-------|")

        def v(x, fmt):
            return "n/a" if x is None else fmt.format(x)
        self.w(f"| CPU Usage (idle) | {v(res.get('cpu_idle_pct'), '{:.1f}')} % | spaces-server, one core = 100 %, "
               f"over {v(res.get('idle_window_s'), '{:.0f}')} s with one app connected and nothing to do |",
               f"| CPU Usage (processing) | {v(res.get('cpu_processing_pct'), '{:.1f}')} % | while 5 requests "
               f"were in flight ({v(res.get('five_window_s'), '{:.1f}')} s; the app works 2 s each) |",
               f"| Memory (base) | {v(res.get('mem_base_mb'), '{:.1f}')} MB | resident set size (VmRSS) after "
               "start-up, one app connected |",
               f"| Memory (with 5 requests) | {v(res.get('mem_five_mb'), '{:.1f}')} MB | highest VmRSS while the "
               f"5 requests were in flight ({res.get('five_completed')} of 5 completed) |",
               f"| Connection Stability | {v(st.get('pct'), '{:.1f}')} % | one mock app connected through the "
               f"whole run ({v(st.get('seconds'), '{:.0f}')} s): {st.get('connected_samples')} of {st.get('samples')} "
               f"one-second samples of its space page said Connected; {st.get('app_disconnects')} disconnects "
               f"printed by the app; heartbeat: pingInterval {st.get('ping_interval_ms')} ms, pingTimeout "
               f"{st.get('ping_timeout_ms')} ms |", "")
        if self.p.get("env", {}).get("server_build", "").endswith("debug"):
            self.w("The server of this run is a Debug build (AddressSanitizer): CPU and memory are far above a "
                   "Release build's.", "")
        self.w(f"The machine is shared (load average at the start: {self.p.get('env', {}).get('load_at_start')}; "
               f"{self.p.get('env', {}).get('cpus')}): timings are noisy.", "")

    def compatibility(self):
        self.w("## Browser Compatibility", "", "Test in each browser:", "")
        for label, name, how in BROWSER_ROWS:
            r = self.browser(name)
            tests = r.get("tests", {})
            if not r.get("available"):
                self.w(f"- [ ] {label} — not checked: the browser could not run",
                       "  - Version: not available",
                       f"  - Result: FAIL (not run: {r.get('error') or 'not run'})",
                       f"  - Notes: {how}", "")
                continue
            ran = [tests[str(n)] for n in range(1, 8) if str(n) in tests]
            ok = len(ran) == 7 and all(t.get("pass") for t in ran)
            per = ", ".join(f"{n} {'PASS' if tests.get(str(n), {}).get('pass') else 'FAIL'}" for n in range(1, 8))
            fails = []
            for n in range(1, 8):
                t = tests.get(str(n))
                if not t or t.get("pass"):
                    continue
                bad = [f"{k}: {c['detail']}" for k, c in t.get("checks", {}).items() if not c["ok"]]
                fails.append(f"test {n}: " + "; ".join(bad + ([t["error"]] if t.get("error") else [])))
            notes = [how]
            if name == "webkit":
                notes.append("WebDriver classic cannot watch page script errors or CSP violations, so those are not checked in WebKit")
            if fails:
                notes.append("failures: " + " | ".join(fails))
            box = "[x]" if ok else "[ ]"
            self.w(f"- {box} {label}" + ("" if ok else " — not met: not every test passed"),
                   f"  - Version: {r.get('version')}",
                   f"  - Result: {'PASS' if ok else 'FAIL'} (tests {per})",
                   f"  - Notes: {'; '.join(notes)}", "")
        shots = [s for n in ("chromium", "firefox", "webkit")
                 for s in (self.test_rec(n, 2) or {}).get("shots", [])]
        for s in shots[1:] if self.primary == "chromium" else shots:
            self.w(f"![{s['caption']}]({s['file']})", "", f"*{s['file']}*", "")

    def load_section(self):
        L = self.load
        rows = L.get("rows", [])
        self.w("## Load Testing", "", "### Test Configuration",
               f"- Number of concurrent users: {', '.join(str(r['concurrency']) for r in rows) or 'n/a'} "
               f"(one level after the other)",
               f"- Requests per user: {rows[0]['requests']} requests per level shared by its users "
               f"(each user submits, waits for its result, submits again)" if rows else "- Requests per user: n/a",
               f"- Total requests: {sum(int(r['requests']) for r in rows)}",
               f"- Test duration: {sum(float(r.get('secs', 0)) for r in rows):.1f} s of load "
               f"({L.get('seconds', 0):.0f} s with set-up)",
               f"- Tool: `node tests/bench/spaces_e2e.js {L.get('args', '')}` — users submit over HTTP and get "
               "their result pushed on the /spaces namespace (as the pages do), a socket.io-client app answers at once; "
               "its own spaces-server and PostgreSQL on this machine", "")
        self.w("### Results", "",
               "Status thresholds: success rate OK at 99 % or more; average, p95 and p99 OK up to 1 s "
               "(the seed gives a result 30 s); max OK up to 5 s. One table per level:", "")
        if not rows:
            self.w("Not measured: the load generator failed:", code_block(L.get("output", "")[-2000:]), "")
            self.issues.append(("HIGH", "The load generator did not produce results",
                                "make report (see the Load Testing section's output)", "no load figures"))
            return
        for r in rows:
            succ, tot, lost = int(r["completed"]), int(r["requests"]), int(r["lost"])
            rate = 100 * succ / tot if tot else 0

            def ms(key, limit, bad):
                v = float(r.get(key, "nan"))
                return f"{v:.1f} ms", ("OK" if v <= limit else bad)
            rows_out = [
                ("Requests Succeeded", f"{succ} / {tot}", "PASS" if succ == tot else "FAIL"),
                ("Requests Failed", str(lost), "PASS" if lost == 0 else "FAIL"),
                ("Success Rate", f"{rate:.1f} %", "OK" if rate >= 99 else "CONCERN"),
                ("Avg Response Time", *ms("avg_ms", 1000, "SLOW")),
                ("95th Percentile", *ms("p95_ms", 1000, "SLOW")),
                ("99th Percentile", *ms("p99_ms", 1000, "SLOW")),
                ("Max Response Time", *ms("max_ms", 5000, "CONCERN")),
                ("Throughput", f"{float(r['rate']):.0f} requests/s over {float(r.get('secs', 0)):.1f} s", "—"),
            ]
            self.w(f"**{r['concurrency']} concurrent users**", "", "| Metric | Value | Status |",
                   "|--------|-------|--------|", *[f"| {a} | {b} | {c} |" for a, b, c in rows_out], "")
            slow = [a for a, _, c in rows_out if c in ("SLOW", "CONCERN")]
            if slow and not lost:
                self.issues.append(("LOW", f"At {r['concurrency']} concurrent users: {', '.join(slow)} above the "
                                    "thresholds", f"node tests/bench/spaces_e2e.js --levels {r['concurrency']} "
                                    f"--requests {r['requests']} --follow push",
                                    "slower answers under load on this shared 2-core machine (the server, PostgreSQL "
                                    "and the load generator share the cores)"))
        if L.get("plot"):
            self.w(f"![Latency against concurrent users]({L['plot']})", "",
                   f"*Latency (avg, p95, p99, max) against concurrent users* (`{L['plot']}`)", "")
        for r in rows:
            if int(r["lost"]):
                self.issues.append(("HIGH", f"{r['lost']} of {r['requests']} requests lost at {r['concurrency']} users",
                                    f"node tests/bench/spaces_e2e.js --levels {r['concurrency']} --requests {r['requests']} --follow push",
                                    "users would wait for results that never come"))

    def security(self):
        self.w("## Security Testing", "")
        notes = []
        for item, ctest, ids in SECURITY:
            res = [(i, self.sec.get(i, "NOT RUN")) for i in ids]
            ok = all(r == "PASSED" for _, r in res)
            names = ", ".join(f"`{i.split('::')[1]}` {r}" for i, r in res)
            line = f"- {tick(ok)} {item} — " + ("" if ok else "not met: ") + f"ctest `{ctest}`: {names}"
            self.w(line)
            notes.append(f"{item}: {SECURITY_WHAT[item]}")
            if not ok:
                self.issues.append(("CRITICAL", f"Security check failed: {item}",
                                    f"/usr/bin/python3 -m pytest -v {' '.join(ids)}", SECURITY_WHAT[item]))
        self.w("", "**Notes**:", code_block(
            "Run in this report against the same spaces-server build "
            f"(pytest, {self.sec.get('_summary', 'no summary')}):\n" + "\n".join(notes)), "")

    def plan_issues(self):
        for name in ("chromium", "firefox", "webkit"):
            r = self.browser(name)
            if not r.get("available"):
                self.issues.append(("MEDIUM", f"{name} could not run the plan", "make report",
                                    r.get("error") or "not run"))
                continue
            for n in range(1, 8):
                T = r.get("tests", {}).get(str(n))
                if not T or T.get("pass"):
                    continue
                bad = [f"{label}: {T['checks'][k]['detail']}" for k, label in TESTS[n][2]
                       if k in T["checks"] and not T["checks"][k]["ok"]]
                what = "; ".join(bad + ([f"stopped: {T['error']}"] if T.get("error") else []))
                sev = "HIGH" if name == self.primary else "MEDIUM"
                self.issues.append((sev, f"Test {n} ({TESTS[n][0]}) fails in {r.get('version')}: {what}",
                                    f"make report (tests/report/plan.js, test {n}, --browsers {name})",
                                    f"the seed plan's test {n} in {name}"))
        if self.p.get("fatal"):
            self.issues.append(("CRITICAL", f"The plan stopped: {self.p['fatal']}", "make report", "no results"))
        if self.p.get("server_exit") and self.p["server_exit"] != "exited 0":
            self.issues.append(("HIGH", f"spaces-server did not stop cleanly: {self.p['server_exit']}",
                                "make report, then SIGTERM to the server", "shutdown"))
        for note in self.p.get("notes", []):
            self.issues.append(("MEDIUM", note, "make report", "a metric was not measured"))

    def issues_section(self):
        self.w("## Issues Found", "")
        heads = [("CRITICAL", "Critical Issues"), ("HIGH", "High Priority Issues"),
                 ("MEDIUM", "Medium Priority Issues"), ("LOW", "Low Priority Issues")]
        for sev, head in heads:
            found = [i for i in self.issues if i[0] == sev]
            self.w(f"### {head}", "")
            if not found:
                self.w(f"None found in this run.", "")
                continue
            for k, (_, title, steps, impact) in enumerate(found, 1):
                self.w(f"{k}. **Issue**: {title}", f"   - **Severity**: {sev}")
                if sev in ("CRITICAL", "HIGH"):
                    self.w(f"   - **Steps to Reproduce**: {steps}", "   - **Workaround**: none known")
                else:
                    self.w(f"   - **Impact**: {impact}", f"   - **Steps to Reproduce**: {steps}")
                self.w("   - **Status**: OPEN (found by this run)", "")

    def summary(self):
        results = []
        for name in ("chromium", "firefox", "webkit"):
            r = self.browser(name)
            for n in range(1, 8):
                T = r.get("tests", {}).get(str(n))
                results.append(bool(T and T.get("pass")))
        sec = [all(self.sec.get(i) == "PASSED" for i in ids) for _, _, ids in SECURITY]
        load_ok = bool(self.load.get("rows")) and all(int(r["lost"]) == 0 for r in self.load["rows"])
        allr = results + sec + [load_ok]
        passed = sum(allr)
        total = len(allr)
        self.w("## Overall Summary", "",
               f"### Tests Passed: {passed} / {total}", "",
               f"### Tests Failed: {total - passed} / {total}", "",
               f"### Pass Rate: {100 * passed / total:.1f} %", "",
               f"(7 tests x 3 browsers, {len(sec)} security items, the load test.)", "",
               "### Recommendation", "")
        crit = any(i[0] == "CRITICAL" for i in self.issues)
        high = any(i[0] == "HIGH" for i in self.issues)
        medium = any(i[0] == "MEDIUM" for i in self.issues)
        if passed == total and not medium:
            choice = 0
        elif crit:
            choice = 3
        elif high:
            choice = 2
        else:
            choice = 1
        opts = ["APPROVED for production", "NEEDS MINOR FIXES before production",
                "NEEDS MAJOR FIXES before production", "NOT READY - Return to development"]
        for i, o in enumerate(opts):
            self.w(f"- [x] {o} — the automated criterion: "
                   + ["every test passed (low-priority notes do not block)", "medium-priority issues", "high-priority issues",
                      "critical issues"][i]
                   if i == choice else f"- [ ] {o} — not chosen")
        self.w("", "### Comments", "", code_block(
            f"{passed} of {total} checks passed in this run ({self.p.get('mode')} mode, "
            f"{self.p.get('seconds', 0):.0f} s for the plan). "
            + ("Nothing failed." if passed == total else f"{len(self.issues)} issue(s) listed above.")
            + "\nThe recommendation is the machine's rule (all pass: approved; critical: not ready); "
            "a person signs off below."), "")

    def signoff(self):
        d = self.p.get("env", {}).get("date", "")
        self.w("---", "", "## Sign-Off", "", "| Role | Name | Date | Signature |",
               "|------|------|------|-----------|",
               f"| QA Lead | make report (automated) | {d} | generated, not signed |",
               f"| Dev Lead | pending review | {d} | generated, not signed |",
               f"| Product Manager | pending review | {d} | generated, not signed |", "")

    def appendix(self):
        e = self.p.get("env", {})
        self.w("## Appendix", "", "### A. System Configuration", "", code_block(
            f"CPU: {e.get('cpus')}\nMemory: {e.get('memory_gb')} GB\nOS: {e.get('os')}\n"
            f"Load average at start: {e.get('load_at_start')} (machine shared with other work)\n"
            f"Server: {e.get('server')} ({e.get('server_build')})\nPostgreSQL: {e.get('postgresql')} "
            "(throwaway cluster, fsync off)\nNetwork: loopback (127.0.0.1) only\n"
            f"Python packages: {json.dumps(e.get('python'))}\nNode.js: {e.get('node')}"), "")
        self.w("### B. Test Data", "", code_block(
            "Prompts: \"Generate a haiku\", \"Request 1\"..\"Request 3\", \"Transcribe this audio\", "
            "\"While the app is away\", \"After the restart\", \"\" (empty), \"Nobody is there\", "
            "\"Never answered\", \"After the timeout\", \"Timing N\"\n"
            f"File: {((self.test_rec(self.primary, 4) or {}).get('fields') or {}).get('file', 'n/a')}, generated by "
            "tests/report/plan.js at run time\nUsers: <browser>_user_<run>_<n>, perf_<run>_<n>"), "")
        logs = []
        for name in ("chromium", "firefox", "webkit"):
            r = self.browser(name)
            if r.get("error"):
                logs.append(f"{name}: {r['error']}")
            for n in range(1, 8):
                T = r.get("tests", {}).get(str(n))
                if T and T.get("error"):
                    logs.append(f"{name} test {n}: {T['error']}")
        logs.append(f"spaces-server at the end: {self.p.get('server_exit')}")
        self.w("### C. Logs", "", code_block("\n".join(logs)), "")
        self.w("### D. Screenshots/Videos", "")
        k = 0
        for name in ("chromium", "firefox", "webkit"):
            for n in range(1, 8):
                for s in (self.test_rec(name, n) or {}).get("shots", []):
                    k += 1
                    self.w(f"- Screenshot {k}: [{s['file']}]({s['file']}) — {s['caption']} ({name})")
        if self.load.get("plot"):
            self.w(f"- Plot: [{self.load['plot']}]({self.load['plot']}) — load test latency against users")
        self.w("- Video Recording: none (screenshots only)", "")

    def render(self):
        self.title()
        self.environment()
        self.configuration()
        self.pretest()
        self.tests()
        self.performance()
        self.compatibility()
        self.load_section()
        self.security()
        self.plan_issues()
        self.issues_section()
        self.summary()
        self.signoff()
        self.appendix()
        return "\n".join(self.lines).rstrip() + "\n"


# ---------------------------------------------------------------------------


def parse_load(path):
    out = {"rows": [], "output": ""}
    if not path or not os.path.exists(path):
        return out
    text = open(path).read()
    out["output"] = text
    for line in text.splitlines():
        if line.startswith("RESULT "):
            out["rows"].append(dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv))
        m = re.match(r"^LOAD (\w+)=(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    if "seconds" in out:
        out["seconds"] = float(out["seconds"])
    return out


def parse_security(path):
    res = {}
    if not path or not os.path.exists(path):
        return res
    for line in open(path):
        m = re.match(r"^(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED)", line)
        if m:
            res[m.group(1)] = m.group(2)
        m = re.match(r"^=+ (.*(passed|failed|error).*) =+$", line.strip())
        if m:
            res["_summary"] = m.group(1)
    return res


def plot(load, out_dir):
    rows = load.get("rows")
    if not rows or not shutil.which("gnuplot"):
        return None
    rel = "test-results/load-latency.png"
    data = os.path.join(out_dir, "test-results", ".load.dat")
    with open(data, "w") as f:
        for r in rows:
            f.write(f"{r['concurrency']} {r['avg_ms']} {r['p95_ms']} {r['p99_ms']} {r['max_ms']}\n")
    script = f"""set terminal pngcairo size 800,450 font ',10'
set output '{os.path.join(out_dir, rel)}'
set title 'Spaces end to end: latency against concurrent users'
set xlabel 'concurrent users'
set ylabel 'ms'
set logscale x
set logscale y
set key left top
set grid
plot '{data}' using 1:2 with linespoints title 'avg', '' using 1:3 with linespoints title 'p95', \\
     '' using 1:4 with linespoints title 'p99', '' using 1:5 with linespoints title 'max'
"""
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True, timeout=60)
    except Exception as e:
        print(f"render: gnuplot failed: {e}", file=sys.stderr)
        return None
    finally:
        os.remove(data)
    return rel


def to_html(md_text):
    try:
        import markdown
    except ImportError:
        return None
    body = markdown.markdown(md_text, extensions=["tables", "fenced_code"])
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>WebSocket Spaces Test Results</title><style>"
            "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;line-height:1.4}"
            "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2em .5em}"
            "pre{background:#f4f4f4;padding:.5em;overflow-x:auto;white-space:pre-wrap}"
            "img{max-width:100%;border:1px solid #ccc}</style></head><body>\n"
            + body + "\n</body></html>\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plan")
    ap.add_argument("--load")
    ap.add_argument("--security")
    ap.add_argument("--out")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--security-tests", action="store_true")
    a = ap.parse_args()
    if a.security_tests:
        print(" ".join(sorted({i for _, _, ids in SECURITY for i in ids})))
        return 0
    plan = {}
    if a.plan and os.path.exists(a.plan):
        plan = json.load(open(a.plan))
    plan.setdefault("browsers", {})
    if not plan.get("env"):
        plan["fatal"] = plan.get("fatal") or "the plan produced no record"
    load = parse_load(a.load)
    os.makedirs(os.path.join(a.out, "test-results"), exist_ok=True)
    load["plot"] = plot(load, a.out)
    doc = Doc(plan, load, parse_security(a.security), a.quick, a.out)
    md = doc.render()
    with open(os.path.join(a.out, "TEST_RESULTS.md"), "w") as f:
        f.write(md)
    page = to_html(md)
    if page:
        with open(os.path.join(a.out, "TEST_RESULTS.html"), "w") as f:
            f.write(page)
    else:
        print("render: python3-markdown is missing: no HTML", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
