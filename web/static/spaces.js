/*
 * spaces.js: live pages over Socket.IO (namespace "/spaces").
 *
 * - Every element with data-live-space="<id>" is a badge kept at
 *   "Connected" / "Not connected" (follow_space, space_state); beside it the
 *   apps connected and the queue length, live.
 * - Buttons with data-copy="<id>" copy that element's text (the command
 *   line that connects an app, on the admin pages).
 * - Every <time datetime="ISO"> is shown in the viewer's local time.
 * - On a space page, the submit form is sent with fetch, disabled while no
 *   app is connected, and each request card of this page is followed
 *   (follow_request, request_update) until it ends: its true state (in the
 *   queue at position N, waiting at the app behind N others, processing with
 *   progress), the estimated wait when the server has one, notices of what
 *   happened to it (requeued, timed out), Cancel while it is open, Retry when
 *   it failed, timed out or was cancelled. Cards are rendered here from the
 *   same fields live and after a reload, so both look the same.
 * - A banner says when the page's own connection is lost; on reconnecting the
 *   page follows everything again and catches up every card and badge.
 *
 * Everything the server or an app sends is written with textContent or DOM
 * properties, never as HTML; links and media only for http(s) and /uploads/
 * URLs.
 */
(function () {
  "use strict";

  /* Final states: nothing changes them any more. */
  var FINAL = { completed: true, failed: true, timeout: true, cancelled: true };
  var LABELS = { queued: "In queue", waiting: "Waiting at the app", processing: "Processing",
                 completed: "Completed", failed: "Failed", timeout: "Timed out",
                 cancelled: "Cancelled" };
  /* Result fields shown as the card's meta line rather than as data. */
  var META = { confidence: "number", model_used: "string", processing_time_seconds: "number",
               tokens_used: "number", timestamp: "string" };

  var form = document.getElementById("submit-form");
  var fields = document.getElementById("submit-fields");
  var note = document.getElementById("form-note");
  var formError = document.getElementById("form-error");
  var list = document.getElementById("requests");
  var spaceEl = document.getElementById("space");
  var pageSpace = spaceEl ? spaceEl.getAttribute("data-space-id") : null;

  var socket = null;
  var cards = {};      /* request id -> {el, state, since, said} of this page */
  var early = {};      /* updates that came before their submit answer */
  var connected = {};  /* space id -> bool */
  var everConnected = false;
  var banner = null, announcer = null;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function num(v) {
    return typeof v === "number" && isFinite(v) ? v : null;
  }

  function duration(s) {
    if (num(s) === null || s < 0) return null;
    if (s < 10) return s.toFixed(2) + " s";
    if (s < 60) return s.toFixed(1) + " s";
    return Math.floor(s / 60) + " min " + Math.floor(s % 60) + " s";
  }

  /* An estimate as people say it: never more precise than it is. */
  function about(s) {
    if (num(s) === null || s < 0) return null;
    if (s < 5) return "a few seconds";
    if (s < 60) return "about " + Math.max(5, Math.round(s / 5) * 5) + " s";
    if (s < 90 * 60) return "about " + Math.max(1, Math.round(s / 60)) + " min";
    return "about " + Math.round(s / 3600) + " h";
  }

  function plural(n, one, many) {
    return n + " " + (n === 1 ? one : many);
  }

  /* A <time> in the viewer's local time; iso is kept in datetime. */
  function timeEl(iso, cls) {
    var t = el("time", cls);
    var d = iso ? new Date(iso) : null;
    if (d && !isNaN(d.getTime())) {
      t.dateTime = d.toISOString();
      t.textContent = d.toLocaleString();
    } else if (iso) {
      t.textContent = iso;
    }
    return t;
  }

  function localizeTimes(root) {
    var ts = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < ts.length; i++) {
      var d = new Date(ts[i].getAttribute("datetime"));
      if (!isNaN(d.getTime())) {
        ts[i].textContent = d.toLocaleString();
        ts[i].title = d.toISOString();
      }
    }
  }

  /* One polite live region for the whole page: state changes, read once. */
  function announce(text) {
    if (!announcer) {
      announcer = el("div", "sr-only");
      announcer.id = "live-announcer";
      announcer.setAttribute("aria-live", "polite");
      announcer.setAttribute("role", "status");
      document.body.appendChild(announcer);
    }
    announcer.textContent = text;
  }

  /* ---- the page's own connection ------------------------------------------ */

  function setBanner(text) {
    if (!banner) {
      banner = el("div", "conn-banner");
      banner.id = "conn-banner";
      banner.setAttribute("role", "status");
      banner.setAttribute("aria-live", "assertive");
      banner.hidden = true;
      document.body.insertBefore(banner, document.body.firstChild);
    }
    banner.textContent = text || "";
    banner.hidden = !text;
  }

  /* ---- space state ------------------------------------------------------- */

  function loadText(st) {
    var parts = [];
    if (num(st.apps) !== null) parts.push(plural(st.apps, "app", "apps") + " connected");
    if (num(st.queued) !== null) parts.push(st.queued ? st.queued + " in queue" : "queue empty");
    if (num(st.processing) !== null && st.processing) parts.push(st.processing + " at the app");
    var eta = about(st.eta_seconds);
    if (eta && st.queued) parts.push("wait " + eta);
    return parts.join(" · ");
  }

  function setSpaceState(st) {
    var id = st.space_id, isConnected = !!st.connected;
    connected[id] = isConnected;
    var badges = document.querySelectorAll("[data-live-space]");
    for (var i = 0; i < badges.length; i++) {
      var b = badges[i];
      if (b.getAttribute("data-live-space") !== id) continue;
      b.textContent = isConnected ? "Connected" : "Not connected";
      b.className = "badge " + (isConnected ? "on" : "off");
      /* Live from here on: the server-rendered state has been replaced. */
      b.setAttribute("data-live-ready", "1");
      var load = b.nextElementSibling;
      if (!load || !load.hasAttribute("data-live-load")) {
        load = el("span", "space-load");
        load.setAttribute("data-live-load", id);
        b.parentNode.insertBefore(load, b.nextSibling);
      }
      load.textContent = loadText(st);
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

  /* What the card shows: the server's state, or one made from the status of
   * a server that does not send it. */
  function stateOf(st) {
    if (st.state && LABELS[st.state]) return st.state;
    var r = st.result && typeof st.result === "object" ? st.result : {};
    var reason = st.reason || r.reason;
    if (st.status === "cancelled" || (st.status === "failed" && reason === "cancelled")) return "cancelled";
    if (st.status === "timeout" || (st.status === "failed" && reason === "timeout")) return "timeout";
    if (st.status === "processing") {
      return (num(st.progress) || st.message) ? "processing" : "waiting";
    }
    return LABELS[st.status] ? st.status : "queued";
  }

  function label(st, state) {
    if (state === "queued" && num(st.position) !== null) return "In queue, position " + st.position;
    if (state === "waiting" && num(st.ahead)) return "Waiting at the app, " + st.ahead + " ahead";
    return LABELS[state];
  }

  /* A URL an app returned that the page may link to: http(s) or this site's /uploads/. */
  function safeUrl(v) {
    if (typeof v !== "string" || v.length > 4096) return null;
    if (/^\/uploads\/[^\s\\]*$/.test(v)) return { href: v, embed: true };
    var u;
    try { u = new URL(v); } catch (e) { return null; }
    if (u.protocol !== "https:" && u.protocol !== "http:") return null;
    /* The pages' CSP loads media from this site and https: only. */
    return { href: u.href, embed: u.protocol === "https:" };
  }

  function mediaKind(key, href) {
    var path = href.split(/[?#]/)[0].toLowerCase();
    if (/\.(png|jpe?g|gif|webp|avif|bmp)$/.test(path) || /image|img|picture|photo/i.test(key)) return "img";
    if (/\.(wav|mp3|ogg|oga|flac|m4a|aac|opus)$/.test(path) || /audio|sound|speech|voice/i.test(key)) return "audio";
    if (/\.(mp4|webm|ogv|mov)$/.test(path) || /video/i.test(key)) return "video";
    return "link";
  }

  function humanKey(key) {
    var k = String(key).replace(/_/g, " ");
    return k.charAt(0).toUpperCase() + k.slice(1);
  }

  function mediaItem(key, u) {
    var item = el("div", "req-media-item");
    var kind = u.embed ? mediaKind(key, u.href) : "link";
    var name = humanKey(key);
    if (kind === "img") {
      var img = el("img");
      img.src = u.href;
      img.alt = name + " from the app";
      img.loading = "lazy";
      item.appendChild(img);
    } else if (kind === "audio" || kind === "video") {
      var m = el(kind);
      m.controls = true;
      m.preload = "none";
      m.src = u.href;
      m.setAttribute("aria-label", name);
      item.appendChild(m);
    }
    var a = el("a", null, name + ": " + u.href);
    a.href = u.href;
    a.rel = "noopener noreferrer nofollow";
    a.target = "_blank";
    item.appendChild(a);
    return item;
  }

  function renderResult(e, st, state) {
    var r = st.result;
    var shown = false;
    if (typeof r === "string") {
      e.appendChild(el("pre", "req-text", r));
      return true;
    }
    if (r === null || r === undefined) return false;
    if (typeof r !== "object" || Array.isArray(r)) {
      e.appendChild(el("pre", "req-json", JSON.stringify(r, null, 2)));
      return true;
    }
    if (typeof r.text_output === "string") {
      e.appendChild(el("pre", "req-text", r.text_output));
      shown = true;
    }
    var media = el("div", "req-media"), extra = {}, nExtra = 0;
    Object.keys(r).forEach(function (k) {
      if (k === "text_output" && typeof r[k] === "string") return;
      if (k === "error" && typeof r[k] === "string") return;
      if (k === "reason" && typeof r[k] === "string") return;
      if (META[k] && typeof r[k] === META[k]) return;
      var u = safeUrl(r[k]);
      if (u) media.appendChild(mediaItem(k, u));
      else { extra[k] = r[k]; nExtra++; }
    });
    if (media.firstChild) { e.appendChild(media); shown = true; }
    if (nExtra) { e.appendChild(el("pre", "req-json", JSON.stringify(extra, null, 2))); shown = true; }

    var meta = [];
    /* The server's measure (from the last dispatch to the end) says nothing
     * useful about a cancelled request. */
    var d = duration(num(r.processing_time_seconds) !== null ? r.processing_time_seconds :
                     state === "cancelled" ? null : st.processing_time_seconds);
    if (d) meta.push("Processing time: " + d);
    if (typeof r.model_used === "string") meta.push("Model: " + r.model_used);
    if (num(r.tokens_used) !== null) meta.push(plural(r.tokens_used, "token", "tokens"));
    if (num(r.confidence) !== null) meta.push("Confidence: " + Math.round(r.confidence * 100) + "%");
    if (meta.length || typeof r.timestamp === "string") {
      var p = el("p", "req-meta", meta.join(" · "));
      if (typeof r.timestamp === "string") {
        p.appendChild(document.createTextNode((meta.length ? " · " : "") + "Finished "));
        p.appendChild(timeEl(r.timestamp));
      }
      e.appendChild(p);
    }
    if (typeof r.error === "string" && state === "cancelled") {
      e.appendChild(el("p", "req-note", r.error));
      shown = true;
    } else if (typeof r.error === "string") {
      e.appendChild(el("p", "req-error", (state === "timeout" ? "Timed out: " : "Error: ") + r.error));
      shown = true;
    }
    return shown;
  }

  function elapsedText(card) {
    var t0 = Date.parse(card.state.created_at || "");
    if (isNaN(t0)) t0 = card.since;
    return Math.max(0, Math.round((Date.now() - t0) / 1000)) + " s";
  }

  function render(card) {
    var st = card.state, e = card.el;
    var state = stateOf(st);
    var status = st.status || "queued";
    var focused = document.activeElement && e.contains(document.activeElement) ?
      (document.activeElement.getAttribute("data-action") || "card") : null;
    e.setAttribute("data-status", status);
    e.setAttribute("data-state", state);
    while (e.firstChild) e.removeChild(e.firstChild);

    var head = el("div", "req-head");
    var text = label(st, state);
    if (state === "processing" && num(st.progress)) text += " " + st.progress + "%";
    head.appendChild(el("span", "req-status s-" + state, text));
    var code = el("code", null, st.request_id);
    code.title = st.request_id;
    head.appendChild(code);
    if (st.created_at) head.appendChild(timeEl(st.created_at, "muted"));
    e.appendChild(head);
    if (st.prompt) e.appendChild(el("p", "req-prompt", st.prompt));
    if (st.notice) e.appendChild(el("p", "req-notice", st.notice));

    if (!FINAL[state]) {
      var prog = el("div", "req-progress");
      var bar = el("progress");
      bar.max = 100;
      if (state === "processing") bar.value = num(st.progress) || 0;
      else bar.removeAttribute("value"); /* indeterminate: nothing to measure yet */
      bar.setAttribute("aria-label", "Progress");
      prog.appendChild(bar);
      var msg = "";
      if (state === "processing") {
        msg = st.message ? st.message : "Working…";
        if (num(st.progress) && msg.indexOf(st.progress + "%") < 0) msg = st.progress + "% · " + msg;
      }
      prog.appendChild(el("span", "req-msg", msg));
      prog.appendChild(el("span", "muted req-elapsed", elapsedText(card)));
      e.appendChild(prog);
      var eta = about(st.eta_seconds);
      if (eta) e.appendChild(el("p", "req-eta", "Estimated wait: " + eta));
    }

    var shown = renderResult(e, st, state);
    if ((state === "failed" || state === "timeout") && !shown) {
      e.appendChild(el("p", "req-error", state === "timeout" ? "The request timed out." : "The request failed."));
    }

    var actions = el("div", "req-actions");
    if (!FINAL[state] && csrfToken()) {
      actions.appendChild(actionButton("cancel", "Cancel", card));
    } else if ((state === "failed" || state === "timeout" || state === "cancelled") && csrfToken() && form) {
      actions.appendChild(actionButton("retry", "Retry", card));
    }
    if (card.actionError) actions.appendChild(el("span", "req-action-error error", card.actionError));
    if (actions.firstChild) e.appendChild(actions);

    if (focused) {
      var again = focused === "card" ? null : e.querySelector("[data-action=" + focused + "]");
      if (!again) e.tabIndex = -1;
      (again || e).focus({ preventScroll: true });
    }

    /* Said once per change of what the card says, not per progress step. */
    var said = text.replace(/ \d+%$/, "") + (st.notice ? ". " + st.notice : "");
    if (card.said !== undefined && card.said !== said) {
      var who = st.prompt ? "“" + st.prompt.slice(0, 40) + "”" : "Request " + st.request_id.slice(0, 8);
      announce(who + ": " + said);
    }
    card.said = said;
  }

  function actionButton(action, text, card) {
    var b = el("button", "small secondary", text);
    b.type = "button";
    b.setAttribute("data-action", action);
    b.setAttribute("aria-label", text + " request " + card.state.request_id.slice(0, 8) +
                   (card.state.prompt ? " (" + card.state.prompt.slice(0, 40) + ")" : ""));
    b.addEventListener("click", function () {
      b.disabled = true;
      (action === "cancel" ? cancel : retry)(card);
    });
    return b;
  }

  var DOC_FIELDS = ["status", "state", "reason", "message", "notice", "created_at", "progress",
                    "position", "ahead", "eta_seconds", "processing_time_seconds", "result"];

  function apply(id, u) {
    var card = cards[id];
    if (!card) return false;
    var st = card.state;
    /* Never back from a final state (a late or reordered update). */
    if (FINAL[stateOf(st)] && !FINAL[stateOf(u.state || u.status ? u : st)]) return true;
    if (typeof u.state === "string") {
      /* A whole request document (request_update, status, the list): the
       * card says what it says, nothing more, so live equals reloaded. */
      DOC_FIELDS.forEach(function (k) {
        if (u[k] === undefined || u[k] === null) {
          if (k !== "created_at" && k !== "result") delete st[k];
          else if (k === "result") st.result = null;
        } else {
          st[k] = u[k];
        }
      });
    } else {
      /* An older server's partial update: merged, the state made from the status. */
      if (typeof u.status === "string") delete st.state;
      DOC_FIELDS.forEach(function (k) {
        if (u[k] !== undefined && u[k] !== null) st[k] = u[k];
      });
      if (stateOf(st) !== "queued") delete st.position;
    }
    card.actionError = "";
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
                          prompt: prompt } };
    cards[id] = card;
    return card;
  }

  /* Brings a card to the server's view (after a submit, a reconnect, a reload). */
  function refresh(id) {
    return fetch("/websockets/status?request_id=" + encodeURIComponent(id), { credentials: "same-origin" })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (j) {
        if (!j || !cards[id]) return;
        apply(id, j);
      })
      .catch(function () {});
  }

  /* Every card of the page brought to the server's view, rendered here from
   * the same document as a live card: one list of the user's requests of the
   * space, a status look-up for any card not in it (or from an older server). */
  function catchUp(all) {
    var ids = all ? Object.keys(cards) : openIds();
    if (!ids.length) return;
    var done = function (docs) {
      ids.forEach(function (id) {
        if (docs && docs[id]) apply(id, docs[id]);
        else refresh(id);
      });
    };
    if (!pageSpace) { done(null); return; }
    fetch("/api/requests?space_id=" + encodeURIComponent(pageSpace), { credentials: "same-origin" })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (j) {
        var docs = null;
        if (j && Array.isArray(j.requests)) {
          docs = {};
          j.requests.forEach(function (d) { if (d && typeof d.request_id === "string") docs[d.request_id] = d; });
        }
        done(docs);
      }, function () { done(null); });
  }

  function openIds() {
    return Object.keys(cards).filter(function (id) { return !FINAL[stateOf(cards[id].state)]; });
  }

  /* A new card where the user is looking. */
  function focusCard(card) {
    card.el.tabIndex = -1;
    if (card.el.scrollIntoView) card.el.scrollIntoView({ block: "nearest" });
    card.el.focus({ preventScroll: true });
  }

  /* ---- cancel and retry ----------------------------------------------------- */

  function csrfToken() {
    var t = document.querySelector("#submit-form input[name=csrf_token]");
    return t ? t.value : null;
  }

  function post(url) {
    var token = csrfToken();
    var body = new URLSearchParams();
    if (token) body.set("csrf_token", token);
    return fetch(url, { method: "POST", body: body, credentials: "same-origin",
                        headers: token ? { "X-CSRF-Token": token } : {} })
      .then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (j) {
          if (!j || typeof j !== "object") j = {};
          if (j.success === undefined) j.success = false;
          if (!j.success && !j.error) j.error = "The server answered " + res.status;
          return j;
        });
      }, function () { return { success: false, error: "The server could not be reached." }; });
  }

  function cancel(card) {
    var id = card.state.request_id;
    post("/websockets/cancel/" + encodeURIComponent(id)).then(function (j) {
      /* The card takes the server's document (request_update or the status
       * look-up), never one made up here: it would lack the server's message
       * until the next update, and a reload would show more than the live card. */
      if (!j.success) { card.actionError = j.error; render(card); }
      refresh(id);
    });
  }

  function retry(card) {
    var id = card.state.request_id;
    post("/websockets/retry/" + encodeURIComponent(id)).then(function (j) {
      if (!j.success || typeof j.request_id !== "string") {
        var msg = j.error || "The request was not accepted";
        if (j.retry_after) msg += " (try again in " + j.retry_after + " s)";
        card.actionError = msg;
        render(card);
        return;
      }
      var c = addCard(j.request_id, card.state.prompt);
      c.state.created_at = new Date().toISOString();
      render(c);
      started(j.request_id);
      focusCard(c);
    });
  }

  /* A request this page just started: early updates, live updates, its status. */
  function started(id) {
    var e = early[id];
    if (e) { delete early[id]; apply(id, e.u); }
    if (socket && socket.connected) socket.emit("follow_request", id);
    refresh(id); /* its real state (it may be with the app already) */
  }

  /* ---- the socket -------------------------------------------------------- */

  function connect() {
    if (typeof io !== "function") return null;
    var s = io("/spaces");
    s.on("connect", function () {
      everConnected = true;
      setBanner("");
      followedSpaces().forEach(function (id) { s.emit("follow_space", id); });
      openIds().forEach(function (id) { s.emit("follow_request", id); });
      catchUp(false);
    });
    s.on("disconnect", function () {
      if (everConnected) setBanner("Connection lost — reconnecting…");
    });
    s.on("connect_error", function () {
      setBanner(everConnected ? "Connection lost — reconnecting…" :
                "Cannot reach the server — retrying…");
    });
    if (s.io && s.io.on) {
      s.io.on("reconnect_failed", function () {
        setBanner("Connection lost. Reload the page to try again.");
      });
    }
    s.on("space_state", function (st) {
      if (st && typeof st.space_id === "string") setSpaceState(st);
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
    var token = csrfToken();
    var headers = token ? { "X-CSRF-Token": token } : {};
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
        card.state.created_at = new Date().toISOString();
        render(card);
        started(j.request_id);
        focusCard(card);
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

  localizeTimes(document);
  if (list) {
    var existing = list.querySelectorAll("li.req[data-request-id]");
    for (var i = 0; i < existing.length; i++) {
      var p = existing[i].querySelector(".req-prompt");
      var id = existing[i].getAttribute("data-request-id");
      var card = addCard(id, p ? p.textContent : "", existing[i]);
      var t = existing[i].querySelector("time[datetime]");
      if (t) card.state.created_at = t.getAttribute("datetime");
      card.said = "";
    }
    catchUp(true);
  }
  if (form) form.addEventListener("submit", submit);
  socket = connect();

  /* Ticks the waiting time; polls open requests while live updates are down. */
  var ticks = 0;
  setInterval(function () {
    ticks++;
    var open = openIds();
    open.forEach(function (id) {
      var x = cards[id].el.querySelector(".req-elapsed");
      if (x) x.textContent = elapsedText(cards[id]);
    });
    if ((!socket || !socket.connected) && ticks % 3 === 0) open.forEach(refresh);
    var now = Date.now();
    Object.keys(early).forEach(function (id) { if (now - early[id].at > 60000) delete early[id]; });
  }, 1000);
})();
