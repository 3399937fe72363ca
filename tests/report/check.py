#!/usr/bin/env python3
"""Checks a test-results document made by tests/report/run.sh (issue 15).

    check.py DIR     (DIR/TEST_RESULTS.md, its screenshots under DIR/test-results/)

Fails (exit 1, one line per problem) when a heading of the seed template is
missing or has nothing under it, when a blank of the template is left (its
"___" and its bracketed placeholders), when an unticked box does not say why,
when a Pass/Fail line is not PASS or FAIL, or when a linked picture is missing.
"""

import os
import re
import sys

# The seed template's headings, in order (the "___" of three become numbers).
HEADINGS = [
    "# WebSocket Spaces Test Results", "## Test Environment", "## Test Configuration",
    "## Pre-Test Checklist", "## Test Execution", "### Test 1: Basic Connection",
    "### Test 2: Single Request Processing", "### Test 3: Multiple Concurrent Requests",
    "### Test 4: Request with File Input", "### Test 5: Disconnection & Reconnection",
    "### Test 6: Error Handling", "### Test 7: Request Timeout", "## Performance Metrics",
    "### Response Times", "### System Resources", "## Browser Compatibility", "## Load Testing",
    "### Test Configuration", "### Results", "## Security Testing", "## Issues Found",
    "### Critical Issues", "### High Priority Issues", "### Medium Priority Issues",
    "### Low Priority Issues", "## Overall Summary", "### Tests Passed:", "### Tests Failed:",
    "### Pass Rate:", "### Recommendation", "### Comments", "## Sign-Off", "## Appendix",
    "### A. System Configuration", "### B. Test Data", "### C. Logs", "### D. Screenshots/Videos",
]
# Headings whose content is the heading line itself (a figure).
SELF_FILLED = ("### Tests Passed:", "### Tests Failed:", "### Pass Rate:")
# Every bracketed placeholder of the seed template.
PLACEHOLDERS = [
    "[Add any observations", "[Add security findings]", "[Any issues]", "[Browser Name]",
    "[Describe ", "[Description]", "[Flask Version]", "[If available]", "[Include ",
    "[Location/Link]", "[Operating System]", "[Overall assessment", "[Paste ", "[Python Version]",
    "[Socket.IO Version]", "[Steps]", "[Test Date]", "[What's affected]", "[describe what happened]",
    "[filename]", "[message]", "[timestamp]", "[ ] PASS", "[ ] OK [ ] CONCERN", "[ ] Yes [ ] No",
]


def check(directory):
    path = os.path.join(directory, "TEST_RESULTS.md")
    problems = []
    if not os.path.exists(path):
        return [f"{path} does not exist"]
    text = open(path, encoding="utf-8").read()
    lines = text.splitlines()
    # Headings, in order, each with something under it.
    pos = 0
    heads = [i for i, l in enumerate(lines) if l.startswith("#")]
    for want in HEADINGS:
        found = next((i for i in heads if i >= pos and (lines[i] == want or
                      (want.endswith(":") and lines[i].startswith(want)))), None)
        if found is None:
            problems.append(f"heading missing or out of order: {want}")
            continue
        pos = found + 1
        if want in SELF_FILLED:
            if not re.search(r"\d", lines[found]):
                problems.append(f"no figure in: {lines[found]}")
            continue
        body = []
        for l in lines[found + 1:]:
            if l.startswith("#"):
                break
            if l.strip() and l.strip() != "---":
                body.append(l)
        sub = next((l for l in lines[found + 1:] if l.startswith("#")), "")
        deeper = sub.startswith(want.split(" ")[0] + "#")
        if not body and not deeper:
            problems.append(f"nothing under: {want}")
    for n, l in enumerate(lines, 1):
        if "___" in l:
            problems.append(f"line {n}: a template blank (___): {l.strip()[:100]}")
        for p in PLACEHOLDERS:
            if p in l:
                problems.append(f"line {n}: a template placeholder {p!r}: {l.strip()[:100]}")
        if re.match(r"^\s*- \[ \]", l) and not re.search(r" — \S", l):
            problems.append(f"line {n}: an unticked box that does not say why: {l.strip()[:100]}")
        if l.startswith("**Pass/Fail**") and not re.match(r"^\*\*Pass/Fail\*\*: (PASS|FAIL)", l):
            problems.append(f"line {n}: no verdict: {l.strip()[:100]}")
    for m in re.finditer(r"!\[[^\]]*\]\(([^)]+)\)", text):
        f = os.path.join(directory, m.group(1))
        if not os.path.exists(f) or os.path.getsize(f) == 0:
            problems.append(f"picture missing: {m.group(1)}")
    if text.count("**Pass/Fail**") != 7:
        problems.append(f"{text.count('**Pass/Fail**')} Pass/Fail lines, not 7")
    return problems


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    problems = check(sys.argv[1])
    for p in problems:
        print(f"check: {p}")
    if problems:
        return 1
    print(f"check: {os.path.join(sys.argv[1], 'TEST_RESULTS.md')}: every section filled, no template blank left")
    return 0


if __name__ == "__main__":
    sys.exit(main())
