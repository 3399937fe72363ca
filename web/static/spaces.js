/*
 * spaces.js: live pages over Socket.IO (namespace "/spaces").
 *
 * - Every element with data-live-space="<id>" is a badge kept at
 *   "Connected" / "Not connected" (follow_space, space_state).
 * - Buttons with data-copy="<id>" copy that element's text (the command
 *   line that connects an app, on the admin pages).
 * - On a space page, the submit form is sent with fetch, disabled while no
 *   app is connected, and each request this tab submitted is followed
 *   (follow_request, request_update) until it completes or fails.
 *
 * Everything the server or an app sends is written with textContent, never
 * as HTML.
 */
(function () {
  "use strict";

  var FINAL = { completed: true, failed: true };
  var LABELS = { queued: "Queued", processing: "Processing", completed: "Completed", failed: "Failed" };

  var form = document.getElementById("submit-form");
  var fields = document.getElementById("submit-fields");
  var note = document.getElementById("form-note");
  var formError = document.getElementById("form-error");
  var list = document.getElementById("requests");
  var spaceEl = document.getElementById("space");
  var pageSpace = spaceEl ? spaceEl.getAttribute("data-space-id") : null;

  var socket = null;
  var cards = {};      /* request id -> {el, state, since} of this page */
  var early = {};      /* updates that came before their submit answer */
  var connected = {};  /* space id -> bool */

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function duration(s) {
    if (typeof s !== "number" || !isFinite(s) || s < 0) return null;
    if (s < 10) return s.toFixed(2) + " s";
    if (s < 60) return s.toFixed(1) + " s";
    return Math.floor(s / 60) + " min " + Math.floor(s % 60) + " s";
  }

  /* ---- space state ------------------------------------------------------- */

  function setSpaceState(id, isConnected) {
    connected[id] = isConnected;
    var badges = document.querySelectorAll("[data-live-space]");
    for (var i = 0; i < badges.length; i++) {
      if (badges[i].getAttribute("data-live-space") !== id) continue;
      badges[i].textContent = isConnected ? "Connected" : "Not connected";
      badges[i].className = "badge " + (isConnected ? "on" : "off");
      /* Live from here on: the server-rendered state has been replaced. */
      badges[i].setAttribute("data-live-ready", "1");
    }
    if (id === pageSpace && fields) {
      fields.disabled = !isConnected;
      if (note) {
        note.textContent = isConnected ? "" :
          "The app of this space is offline: the form opens when it is back.";
      }
    }
  }

  function followedSpaces() {
    var ids = {};
    var badges = document.querySelectorAll("[data-live-space]");
    for (var i = 0; i < badges.length; i++) ids[badges[i].getAttribute("data-live-space")] = true;
    if (pageSpace) ids[pageSpace] = true;
    return Object.keys(ids);
  }

  /* ---- request cards ----------------------------------------------------- */

  function render(card) {
    var st = card.state, e = card.el;
    var status = st.status || "queued";
    e.setAttribute("data-status", status);
    while (e.firstChild) e.removeChild(e.firstChild);

    var head = el("div", "req-head");
    head.appendChild(el("span", "req-status s-" + status, LABELS[status] || status));
    var code = el("code", null, st.request_id);
    code.title = st.request_id;
    head.appendChild(code);
    if (st.created) head.appendChild(el("time", "muted", st.created));
    e.appendChild(head);
    if (st.prompt) e.appendChild(el("p", "req-prompt", st.prompt));

    if (!FINAL[status]) {
      var prog = el("div", "req-progress");
      var bar = el("progress");
      bar.max = 100;
      bar.value = typeof st.progress === "number" ? st.progress : 0;
      prog.appendChild(bar);
      var msg = st.message ? st.message : (status === "queued" ? "Waiting for the app…" : "Working…");
      if (typeof st.progress === "number" && st.progress > 0) msg = st.progress + "% · " + msg;
      prog.appendChild(el("span", "req-msg", msg));
      var waited = Math.round((Date.now() - card.since) / 1000);
      prog.appendChild(el("span", "muted req-elapsed", waited + " s"));
      e.appendChild(prog);
    }

    var r = st.result;
    var shown = false;
    if (r && typeof r === "object") {
      if (typeof r.text_output === "string") {
        e.appendChild(el("pre", "req-text", r.text_output));
        shown = true;
      }
      var meta = [];
      var d = duration(r.processing_time_seconds);
      if (d) meta.push("Processing time: " + d);
      if (r.model_used) meta.push("Model: " + r.model_used);
      if (typeof r.tokens_used === "number") meta.push(r.tokens_used + " tokens");
      if (typeof r.confidence === "number") meta.push("Confidence: " + Math.round(r.confidence * 100) + "%");
      if (meta.length) e.appendChild(el("p", "req-meta", meta.join(" · ")));
      if (typeof r.error === "string") {
        e.appendChild(el("p", "req-error", (r.reason === "timeout" ? "Timed out: " : "Error: ") + r.error));
        shown = true;
      }
    }
    if (status === "failed" && !shown) e.appendChild(el("p", "req-error", "The request failed."));
    if (status === "completed" && !shown && r !== undefined && r !== null) {
      e.appendChild(el("pre", "req-json", JSON.stringify(r, null, 2)));
    }
  }

  function apply(id, u) {
    var card = cards[id];
    if (!card) return false;
    var st = card.state;
    if (u.status) st.status = u.status;
    if (typeof u.progress === "number") st.progress = u.progress;
    if (u.message !== undefined) st.message = u.message;
    if (u.result !== undefined) st.result = u.result;
    render(card);
    return true;
  }

  function addCard(id, prompt, el0) {
    if (cards[id]) return cards[id];
    var e = el0 || el("li", "req");
    if (!el0) {
      e.setAttribute("data-request-id", id);
      if (list) list.insertBefore(e, list.firstChild);
    }
    var card = { el: e, since: Date.now(),
                 state: { request_id: id, status: e.getAttribute("data-status") || "queued",
                          prompt: prompt, created: new Date().toLocaleTimeString() } };
    cards[id] = card;
    return card;
  }

  function refresh(id) {
    fetch("/websockets/status?request_id=" + encodeURIComponent(id), { credentials: "same-origin" })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (j) {
        if (!j || !cards[id]) return;
        /* A live update may be newer than this answer: never go backwards. */
        if (FINAL[cards[id].state.status] && !FINAL[j.status]) return;
        apply(id, { status: j.status, progress: j.progress, message: j.message, result: j.result });
      })
      .catch(function () {});
  }

  function openIds() {
    return Object.keys(cards).filter(function (id) { return !FINAL[cards[id].state.status]; });
  }

  /* ---- the socket -------------------------------------------------------- */

  function connect() {
    if (typeof io !== "function") return null;
    var s = io("/spaces");
    s.on("connect", function () {
      followedSpaces().forEach(function (id) { s.emit("follow_space", id); });
      openIds().forEach(function (id) { s.emit("follow_request", id); refresh(id); });
    });
    s.on("space_state", function (st) {
      if (st && typeof st.space_id === "string") setSpaceState(st.space_id, !!st.connected);
    });
    s.on("request_update", function (u) {
      if (!u || typeof u.request_id !== "string") return;
      if (!apply(u.request_id, u)) early[u.request_id] = { u: u, at: Date.now() };
    });
    return s;
  }

  /* ---- the form ---------------------------------------------------------- */

  function showError(text) {
    if (!formError) return;
    formError.textContent = text || "";
    formError.hidden = !text;
  }

  function submit(ev) {
    ev.preventDefault();
    showError("");
    var data = new FormData(form);
    var tokenInput = form.querySelector("input[name=csrf_token]");
    var headers = tokenInput ? { "X-CSRF-Token": tokenInput.value } : {};
    var prompt = data.get("prompt");
    var button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    fetch(form.action, { method: "POST", body: data, headers: headers, credentials: "same-origin" })
      .then(function (res) {
        return res.json().catch(function () {
          return { success: false, error: "The server answered " + res.status };
        });
      })
      .then(function (j) {
        if (!j.success) {
          var msg = j.error || "The request was not accepted";
          if (j.retry_after) msg += " (try again in " + j.retry_after + " s)";
          showError(msg);
          return;
        }
        var card = addCard(j.request_id, typeof prompt === "string" ? prompt : "");
        render(card);
        var e = early[j.request_id];
        if (e) { delete early[j.request_id]; apply(j.request_id, e.u); }
        if (socket && socket.connected) socket.emit("follow_request", j.request_id);
        refresh(j.request_id); /* its real status (it may be with the app already) */
        var files = form.querySelectorAll("input[type=file]");
        for (var i = 0; i < files.length; i++) files[i].value = "";
      })
      .catch(function () { showError("The server could not be reached. Please try again."); })
      .then(function () { if (button) button.disabled = false; });
  }

  /* ---- copy buttons -------------------------------------------------------- */

  /* <button data-copy="ID"> copies the text of the element ID (the command
   * line that connects an app); a .copy-note beside it says how it went. */
  function copyText(ev) {
    var btn = ev.currentTarget;
    var src = document.getElementById(btn.getAttribute("data-copy"));
    var note = btn.parentNode ? btn.parentNode.querySelector(".copy-note") : null;
    var text = src ? src.textContent : "";
    function done(ok) {
      btn.setAttribute("data-copied", ok ? "1" : "0");
      if (note) note.textContent = ok ? "Copied." : "Select the command and copy it by hand.";
    }
    function fallback() {
      var ok = false;
      if (src && window.getSelection) {
        var range = document.createRange();
        range.selectNodeContents(src);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      }
      done(ok);
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, fallback);
    } else {
      fallback();
    }
  }
  var copyButtons = document.querySelectorAll("button[data-copy]");
  for (var k = 0; k < copyButtons.length; k++) copyButtons[k].addEventListener("click", copyText);

  /* ---- start --------------------------------------------------------------- */

  if (list) {
    var existing = list.querySelectorAll("li.req[data-request-id]");
    for (var i = 0; i < existing.length; i++) {
      var p = existing[i].querySelector(".req-prompt");
      var card = addCard(existing[i].getAttribute("data-request-id"), p ? p.textContent : "", existing[i]);
      var t = existing[i].querySelector("time");
      card.state.created = t ? t.textContent : "";
    }
  }
  if (form) form.addEventListener("submit", submit);
  socket = connect();

  /* Ticks the waiting time; polls open requests while live updates are down. */
  var ticks = 0;
  setInterval(function () {
    ticks++;
    var open = openIds();
    open.forEach(function (id) { render(cards[id]); });
    if ((!socket || !socket.connected) && ticks % 3 === 0) open.forEach(refresh);
    var now = Date.now();
    Object.keys(early).forEach(function (id) { if (now - early[id].at > 60000) delete early[id]; });
  }, 1000);
})();
