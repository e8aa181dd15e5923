// hookrelay console: talks to the public /v2.1 API with the token the user signed in with.
// The token lives in this tab's sessionStorage and travels in the Authorization header only,
// never in a URL. Everything is plain DOM: no framework, no download at run time.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "hookrelay.token";
  const PROJECT_KEY = "hookrelay.project";
  const DEFAULT_PROJECT = "demo";
  const PAGES = ["overview", "webhooks", "deliveries"];
  const REFRESH_MS = 5000;
  const SPARK_SIZE = 20;
  const HEALTHY_SHOWN = 8;
  const LIST_LIMIT = 200; // deliveries listed at once
  const SEVERITY = { disabled: 0, circuit_open: 1, paused: 2, throttled: 3, healthy: 4 };
  const STATE_NAMES = {
    healthy: "Healthy", throttled: "Throttled", circuit_open: "Circuit open", paused: "Paused", disabled: "Disabled",
  };

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || "",
    project: localStorage.getItem(PROJECT_KEY) || DEFAULT_PROJECT,
    page: null,
    webhooks: [],
    recent: new Map(), // webhook name → its latest deliveries (newest first)
    tick: 0,
    timer: null,
    busy: new Set(),
    role: null, // the token's role in the project ("admin", "editor", "viewer"), once known
  };

  // ---------------------------------------------------------------- small helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function setAttrs(node, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.setAttribute("class", v);
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
  }

  function append(node, children) {
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  const plural = (n, one, many) => n + " " + (n === 1 ? one : (many || one + "s"));
  const fmtInt = (n) => Number(n || 0).toLocaleString("en-US");

  function fmtMs(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms < 1) return ms.toFixed(2) + " ms";
    if (ms < 1000) return Math.round(ms) + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
    return (ms / 60000).toFixed(1) + " min";
  }

  function clock(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  /// The time of day for today, the date too for older times.
  function stamp(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (d.toDateString() === new Date().toDateString()) return clock(iso);
    return d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function fullTime(iso) {
    return iso ? new Date(iso).toLocaleString() : "";
  }

  function relative(iso) {
    if (!iso) return "–";
    const s = Math.round((Date.parse(iso) - Date.now()) / 1000);
    const a = Math.abs(s);
    let text;
    if (a < 5) return s >= 0 ? "now" : "just now";
    if (a < 60) text = a + " s";
    else if (a < 3600) text = Math.round(a / 60) + " min";
    else if (a < 86400) text = Math.round(a / 3600) + " h";
    else text = Math.round(a / 86400) + " d";
    return s >= 0 ? "in " + text : text + " ago";
  }

  function timeEl(iso, text) {
    if (!iso) return el("span", { class: "muted" }, "–");
    return el("time", { datetime: iso, title: fullTime(iso) }, text || relative(iso));
  }

  function badge(kind, text) {
    return el("span", { class: "badge " + kind }, text || kind);
  }

  /// Shows a row for each item in `parent`, in the items' order, and removes the rows of
  /// items that are gone. `rows` (key → row) keeps each row between refreshes: `make(key)`
  /// builds a missing one, `update(row, item)` fills it in, and `row.nodes` are its elements.
  /// Rows are updated in place and a row moves only when it is out of place: focus inside
  /// it, open details and the scroll position (the browser anchors it) stay where the user
  /// left them.
  function syncRows(parent, rows, items, key, make, update) {
    const keys = new Set(items.map(key));
    for (const [k, row] of rows) {
      if (!keys.has(k)) { for (const node of row.nodes) node.remove(); rows.delete(k); }
    }
    let prev = null;
    for (const item of items) {
      const k = key(item);
      let row = rows.get(k);
      if (!row) { row = make(k); rows.set(k, row); }
      update(row, item);
      for (const node of row.nodes) {
        const want = prev ? prev.nextSibling : parent.firstChild;
        if (want !== node) parent.insertBefore(node, want);
        prev = node;
      }
    }
  }

  // ---------------------------------------------------------------- page heads and dialogs

  // The ids of a page's or a dialog's parts start like its title's, which aria-labelledby
  // names: "webhooks-title", "webhooks-updated"; "wd-title", "wd-close", "wd-cancel". A
  // button named in a data attribute is written with its id and text: "wd-save:Create".
  const idPrefix = (node) => node.getAttribute("aria-labelledby").replace(/-title$/, "");

  /// Puts a page's head before its content: its title (data-title), when it was last updated
  /// and, with data-action, the button for its main action.
  function pageHead(section) {
    const p = idPrefix(section);
    const action = section.dataset.action && section.dataset.action.split(":");
    section.prepend(el("div", { class: "page-head" },
      el("h1", { id: p + "-title" }, section.dataset.title),
      el("span", { class: "updated muted", id: p + "-updated" }),
      action && el("button", { type: "button", class: "primary write", id: action[0] }, action[1])));
  }

  /// Puts a dialog's head (its title, data-title, and a close button) and foot (Cancel and
  /// the button that submits, data-submit) around the body in its form; data-test-slot adds
  /// a place for a test result before the buttons. A dialog with data-confirm asks a
  /// question: it has no close button, and its buttons close it with the value "cancel"
  /// (which has the focus first) or "ok".
  function dialogFrame(dialog) {
    const d = dialog.dataset;
    const p = idPrefix(dialog);
    const [submitId, submitText] = d.submit.split(":");
    const confirm = "confirm" in d;
    const form = dialog.querySelector("form");
    form.prepend(el("div", { class: "dialog-head" },
      el("h2", { id: p + "-title" }, d.title),
      !confirm && el("button", { type: "button", class: "icon", id: p + "-close", "aria-label": "Close" }, "×")));
    form.append(el("div", { class: "dialog-foot" },
      "testSlot" in d && el("span", { id: p + "-test-slot", class: "test-slot" }),
      el("span", { class: "spacer" }),
      confirm ? el("button", { value: "cancel", id: p + "-cancel", autofocus: true }, "Cancel") :
        el("button", { type: "button", id: p + "-cancel" }, "Cancel"),
      confirm ? el("button", { value: "ok", class: "danger", id: submitId }, submitText) :
        el("button", { type: "submit", class: "primary", id: submitId }, submitText)));
  }

  // Built before the code below looks up their titles and buttons by id.
  for (const p of PAGES) pageHead($("page-" + p));
  for (const dialog of document.querySelectorAll("dialog")) dialogFrame(dialog);

  // ---------------------------------------------------------------- messages

  /// A message stays until the user dismisses it.
  function notify(text, kind, extra) {
    const box = el("div", { class: "message " + (kind || ""), role: kind === "error" ? "alert" : "status" });
    const body = el("div", { class: "text" }, text);
    if (extra) body.append(" ", extra);
    const close = el("button", { type: "button", class: "small", "aria-label": "Dismiss message" }, "Dismiss");
    close.addEventListener("click", () => {
      const next = box.nextElementSibling || box.previousElementSibling;
      box.remove();
      const target = next && next.querySelector("button");
      if (target) target.focus();
      else $("main").focus();
    });
    box.append(body, close);
    $("messages").append(box);
    return box;
  }

  function copyButton(label, text) {
    const b = el("button", { type: "button", class: "small" }, label);
    b.addEventListener("click", async () => {
      const ok = await copyText(typeof text === "function" ? text() : text);
      b.textContent = ok ? "Copied" : "Copy failed";
      setTimeout(() => { b.textContent = label; }, 2000);
    });
    return b;
  }

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try { await navigator.clipboard.writeText(text); return true; } catch (_) { /* fall back below */ }
    }
    // Plain HTTP to another host is not a secure context: the older way still works there.
    const area = el("textarea", { readonly: true, "aria-hidden": "true" });
    area.value = text;
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (_) { ok = false; }
    area.remove();
    return ok;
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path, body) {
    const headers = { "Authorization": "Bearer " + state.token };
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch("/v2.1/projects/" + encodeURIComponent(state.project) + path, init);
    } catch (e) {
      throw new ApiError(0, "The API does not answer (" + e.message + ").");
    }
    const text = await resp.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = text; }
    }
    if (!resp.ok) {
      const msg = data && data.error ? data.error : resp.status + " " + resp.statusText;
      if (resp.status === 401 && state.page !== "signin") {
        signOut("The token is no longer accepted: " + msg);
      }
      throw new ApiError(resp.status, msg);
    }
    return data;
  }

  const enc = encodeURIComponent;

  // ---------------------------------------------------------------- sign-in and pages

  function showSignIn(error) {
    stopRefresh();
    state.page = "signin";
    for (const p of PAGES) $("page-" + p).hidden = true;
    $("page-signin").hidden = false;
    $("nav").hidden = true;
    $("who").hidden = true;
    setRole(null);
    $("signin-project").value = state.project;
    $("signin-error").textContent = error || "";
    $("signin-token").focus();
  }

  function signOut(reason) {
    state.token = "";
    sessionStorage.removeItem(TOKEN_KEY);
    state.webhooks = [];
    state.recent.clear();
    webhookRows.clear();
    deliveryRows.clear();
    attentionRows.clear();
    openDeliveries.clear();
    $("attention").replaceChildren();
    $("f-webhook").replaceChildren(el("option", { value: "" }, "All webhooks"));
    $("webhook-rows").replaceChildren();
    $("delivery-rows").replaceChildren();
    if (location.hash) history.replaceState(null, "", location.pathname);
    showSignIn(reason);
  }

  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = $("signin-token").value.trim();
    const project = $("signin-project").value.trim();
    if (!token || !project) {
      $("signin-error").textContent = !token ? "Enter a token." : "Enter a project.";
      (!token ? $("signin-token") : $("signin-project")).focus();
      return;
    }
    const submit = $("signin-submit");
    submit.disabled = true;
    submit.textContent = "Signing in…";
    state.token = token;
    state.project = project;
    try {
      const caller = await api("GET", "/caller");
      const hooks = await api("GET", "/webhooks");
      setRole(caller.role);
      sessionStorage.setItem(TOKEN_KEY, token);
      localStorage.setItem(PROJECT_KEY, project);
      $("signin-token").value = "";
      state.webhooks = hooks;
      enterApp();
    } catch (e) {
      state.token = "";
      const why = e.status === 401 ? "This token is not accepted." :
        e.status === 404 ? "Project " + project + " cannot be reached with this token (a project token reaches only its own project)." :
          e.message;
      $("signin-error").textContent = why;
      $("signin-token").focus();
    } finally {
      submit.disabled = false;
      submit.textContent = "Sign in";
    }
  });

  $("sign-out").addEventListener("click", () => signOut(""));

  const ROLE_TITLES = {
    admin: "Your token is admin of this project: it may do everything here.",
    editor: "Your token is editor of this project: it may change webhooks, publish, test and redeliver, but not see signing secrets.",
    viewer: "Your token is viewer of this project: it may look but not change anything, so no control that changes something is shown.",
  };

  /// Shows the caller's role and offers only what it may do (CSS hides the rest; see
  /// `.write` and `.admin-only`); `null` while it is not known, which offers nothing.
  function setRole(role) {
    state.role = ROLE_TITLES[role] ? role : null;
    if (state.role) document.body.dataset.role = state.role;
    else delete document.body.dataset.role;
    $("who-role-name").textContent = state.role || "";
    $("who-role").title = state.role ? ROLE_TITLES[state.role] : "";
    $("who-role").hidden = !state.role;
    // A control that has just gone away may have held the focus: keep it on the page.
    const focused = document.activeElement;
    if (focused && focused !== document.body && focused.offsetParent === null && !focused.closest("dialog")) {
      $("main").focus({ preventScroll: true });
    }
  }

  /// Asks the API who the caller is in the current project.
  async function loadRole() {
    if (state.busy.has("role")) return;
    state.busy.add("role");
    try {
      const caller = await api("GET", "/caller");
      setRole(caller.role);
    } catch (e) {
      // Tried again at the next refresh; said once.
      const old = failing.get("role");
      if (e.status !== 401 && !(old && old.isConnected)) {
        failing.set("role", notify("Could not learn this token's role, so nothing that changes anything is offered yet: " + e.message, "error"));
      }
    } finally {
      state.busy.delete("role");
    }
  }

  function enterApp() {
    $("page-signin").hidden = true;
    $("nav").hidden = false;
    $("who").hidden = false;
    $("who-project").textContent = state.project;
    const page = PAGES.includes(location.hash.slice(1)) ? location.hash.slice(1) : "overview";
    if (location.hash.slice(1) !== page) history.replaceState(null, "", "#" + page);
    showPage(page, false);
  }

  function showPage(page, focus) {
    state.page = page;
    for (const p of PAGES) $("page-" + p).hidden = p !== page;
    for (const a of document.querySelectorAll("#nav a")) {
      if (a.dataset.page === page) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    document.title = page[0].toUpperCase() + page.slice(1) + " · hookrelay";
    if (focus) {
      const h = $(page + "-title");
      h.tabIndex = -1;
      h.focus({ preventScroll: true });
      window.scrollTo(0, 0);
    }
    refresh();
    startRefresh();
  }

  window.addEventListener("hashchange", () => {
    if (!state.token) return;
    const page = location.hash.slice(1);
    if (PAGES.includes(page)) showPage(page, true);
  });

  function startRefresh() {
    stopRefresh();
    state.timer = setInterval(() => {
      if (document.hidden) return;
      state.tick += 1;
      refresh(true);
    }, REFRESH_MS);
  }

  function stopRefresh() {
    if (state.timer) clearInterval(state.timer);
    state.timer = null;
  }

  /// Runs one refresh of the current page at a time.
  async function refresh(auto) {
    const page = state.page;
    if (!PAGES.includes(page) || state.busy.has(page)) return;
    if (!state.role) loadRole();
    if (auto && page === "deliveries" && !$("f-auto").checked) return;
    state.busy.add(page);
    try {
      if (page === "overview") await loadOverview();
      else if (page === "webhooks") await loadWebhooks(!auto || state.tick % 2 === 0);
      else await loadDeliveries();
    } catch (e) {
      if (e.status !== 401) reportOnce(page, e.message);
    } finally {
      state.busy.delete(page);
    }
  }

  // One message per failing page until it works again, not one every 5 s.
  const failing = new Map();
  function reportOnce(page, text) {
    const old = failing.get(page);
    if (old && old.isConnected) return;
    failing.set(page, notify("Could not load " + page + ": " + text, "error"));
  }

  async function redisHealth() {
    const box = $("redis");
    try {
      const r = await fetch("/health", { cache: "no-store" });
      const ok = r.ok;
      box.className = "redis " + (ok ? "ok" : "down");
      $("redis-text").textContent = ok ? "Redis up" : "Redis unavailable";
    } catch (_) {
      box.className = "redis down";
      $("redis-text").textContent = "API unreachable";
    }
  }

  // ---------------------------------------------------------------- data shared by pages

  async function fetchWebhooks() {
    state.webhooks = await api("GET", "/webhooks");
    state.webhooks.sort((a, b) => a.name.localeCompare(b.name));
    fillWebhookFilter();
    return state.webhooks;
  }

  /// The latest deliveries of each webhook, for sparklines, last results and "why".
  async function fetchRecent(hooks) {
    const wanted = hooks.slice(0, 60);
    let i = 0;
    const worker = async () => {
      while (i < wanted.length) {
        const w = wanted[i++];
        const list = await api("GET", "/deliveries?webhook=" + enc(w.name) + "&limit=" + SPARK_SIZE);
        state.recent.set(w.name, list);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  }

  function health(w) {
    return w.health || { state: w.enabled ? "healthy" : "disabled" };
  }

  /// Since when, and why, a webhook is in its state.
  function explain(w) {
    const h = health(w);
    const recent = state.recent.get(w.name) || [];
    const lastError = (() => {
      for (const d of recent) {
        const a = d.attempts[d.attempts.length - 1];
        if (a && a.error) return a.error;
      }
      return null;
    })();
    const failingSince = () => {
      // The oldest failed attempt after the last success, among the latest deliveries.
      const okAt = h.last_success_at ? Date.parse(h.last_success_at) : 0;
      let first = null;
      for (const d of recent) {
        for (const a of d.attempts) {
          const t = Date.parse(a.started_at);
          if (a.error && t > okAt && (first === null || t < first)) first = t;
        }
      }
      return first !== null ? new Date(first).toISOString() : h.last_failure_at;
    };
    switch (h.state) {
      case "disabled":
        return { since: w.last_updated, why: h.disabled_reason || "Turned off by a user." };
      case "circuit_open":
        return {
          since: failingSince(),
          why: plural(h.consecutive_failures, "failure") + " in a row" + (lastError ? ", last: " + lastError : "") +
            ". Deliveries wait for a cooldown, then one probe decides. " +
            (h.last_success_at ? "Last success " + relative(h.last_success_at) + "." : "No success yet."),
        };
      case "paused":
        return {
          since: h.last_failure_at,
          why: "The receiver asked to wait (Retry-After)" + (h.paused_until ? " until " + clock(h.paused_until) : "") + ".",
        };
      case "throttled": {
        const caps = [];
        if (w.max_concurrency) caps.push("at most " + w.max_concurrency + " at once");
        if (w.rate_limit) caps.push(w.rate_limit + " per second");
        return {
          since: null,
          why: fmtInt(h.in_flight) + " in flight, " + fmtInt(h.backlog) + " waiting for a slot" + (caps.length ? " (" + caps.join(", ") + ")" : "") + ".",
        };
      }
      default:
        return { since: h.last_success_at, why: "" };
    }
  }

  // ---------------------------------------------------------------- overview

  async function loadOverview() {
    const [stats, hooks] = await Promise.all([api("GET", "/stats"), fetchWebhooks()]);
    const sick = hooks.filter((w) => health(w).state !== "healthy");
    await fetchRecent(sick);
    const minutes = stats.minutes || [];
    const sum = (k) => minutes.reduce((s, m) => s + (m[k] || 0), 0);
    $("t-succeeded").textContent = fmtInt(sum("succeeded"));
    $("t-outcomes").textContent = fmtInt(sum("failed")) + " failed · " + fmtInt(sum("retried")) + " retried";
    const lat = stats.latency_ms || {};
    $("t-p50").textContent = lat.p50 === null || lat.p50 === undefined ? "–" : "p50 " + fmtMs(lat.p50);
    $("t-p99").textContent = lat.p99 === null || lat.p99 === undefined ? "no delivery in the last hour" : "p99 " + fmtMs(lat.p99);
    const q = stats.queue || {};
    $("t-queue").textContent = fmtInt((q.ready || 0) + (q.scheduled || 0) + (q.in_flight || 0));
    $("t-queue-sub").textContent = fmtInt(q.ready) + " ready · " + fmtInt(q.scheduled) + " scheduled · " + fmtInt(q.in_flight) + " in flight";
    $("t-workers").textContent = fmtInt(stats.workers);
    $("t-workers").className = "tile-value" + (stats.workers ? "" : " bad");
    $("t-workers-sub").textContent = stats.workers ? "seen in the last minute" : "none seen in the last minute: nothing is delivered";
    drawChart(minutes);
    drawAttention(hooks, sick);
    $("overview-updated").textContent = "Updated " + clock(new Date().toISOString());
  }

  let lastMinutes = [];
  function drawChart(minutes) {
    lastMinutes = minutes;
    const box = $("chart");
    const W = Math.max(280, Math.round(box.clientWidth || 700));
    const H = 170, left = 34, right = 6, top = 8, bottom = 22;
    const totals = minutes.map((m) => (m.succeeded || 0) + (m.failed || 0) + (m.retried || 0));
    const peak = Math.max(1, ...totals);
    const step = niceStep(peak);
    const max = Math.ceil(peak / step) * step;
    const plotW = W - left - right, plotH = H - top - bottom;
    const slot = plotW / Math.max(1, minutes.length);
    const bar = Math.max(1, slot * 0.72);
    const y = (v) => top + plotH - (v / max) * plotH;
    const total = totals.reduce((a, b) => a + b, 0);
    const labelEvery = W < 520 ? 30 : 15;
    const node = svg("svg", {
      viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img", "aria-labelledby": "chart-title chart-desc",
    });
    node.append(svg("desc", { id: "chart-desc" },
      total === 0 ? "No deliveries finished in the last hour." :
        fmtInt(minutes.reduce((s, m) => s + (m.succeeded || 0), 0)) + " succeeded, " +
        fmtInt(minutes.reduce((s, m) => s + (m.retried || 0), 0)) + " retried and " +
        fmtInt(minutes.reduce((s, m) => s + (m.failed || 0), 0)) + " failed in the last hour; busiest minute " + fmtInt(peak) + "."));
    for (let v = 0; v <= max; v += step) {
      node.append(svg("line", { class: "gridline", x1: left, x2: W - right, y1: y(v), y2: y(v) }),
        svg("text", { class: "axis", x: left - 6, y: y(v) + 4, "text-anchor": "end" }, fmtInt(v)));
    }
    minutes.forEach((m, i) => {
      const x = left + i * slot + (slot - bar) / 2;
      let base = 0;
      const g = svg("g", {});
      for (const k of ["succeeded", "retried", "failed"]) {
        const v = m[k] || 0;
        if (!v) continue;
        g.append(svg("rect", { class: k, x, width: bar, y: y(base + v), height: Math.max(0.5, y(base) - y(base + v)) }));
        base += v;
      }
      const hit = svg("rect", { class: "hit", x: left + i * slot, width: slot, y: top, height: plotH });
      hit.append(svg("title", {}, clock(m.minute).slice(0, 5) + " — " + (m.succeeded || 0) + " succeeded, " + (m.retried || 0) + " retried, " + (m.failed || 0) + " failed"));
      g.append(hit);
      node.append(g);
      const ago = minutes.length - 1 - i;
      if (ago % labelEvery === 0) {
        node.append(svg("text", {
          class: "axis", x: left + i * slot + slot / 2, y: H - 6, "text-anchor": ago === 0 ? "end" : "middle",
        }, ago === 0 ? "now" : "−" + ago + " min"));
      }
    });
    box.replaceChildren(node);
  }

  function niceStep(peak) {
    const raw = peak / 3;
    const mag = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1))));
    for (const f of [1, 2, 5, 10]) if (raw <= f * mag) return Math.max(1, f * mag);
    return 10 * mag;
  }

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (state.page === "overview") drawChart(lastMinutes); }, 150);
  });

  /// "last success 3 min ago", "last attempt failed 10 s ago (3 in a row)" or "no delivery yet".
  function lastOutcome(h) {
    const ok = h.last_success_at ? Date.parse(h.last_success_at) : 0;
    const bad = h.last_failure_at ? Date.parse(h.last_failure_at) : 0;
    if (ok && ok >= bad) return [" last success ", timeEl(h.last_success_at)];
    if (bad) {
      return [" last attempt failed ", timeEl(h.last_failure_at),
        h.consecutive_failures > 1 ? " (" + h.consecutive_failures + " in a row)" : ""];
    }
    return " no delivery yet";
  }

  const attentionRows = new Map(); // webhook name → { li, link, state, why, nodes }

  /// The endpoints that are not healthy, most severe first, updated in place so that a
  /// focused link survives the refresh.
  function drawAttention(hooks, sick) {
    const list = $("attention");
    sick.sort((a, b) => SEVERITY[health(a).state] - SEVERITY[health(b).state] || a.name.localeCompare(b.name));
    const healthy = hooks.length - sick.length;
    $("endpoints-summary").textContent = hooks.length === 0 ? "" :
      plural(healthy, "healthy endpoint") + (sick.length ? " · " + sick.length + " need attention" : "");
    const shown = sick.concat(hooks.filter((w) => health(w).state === "healthy").slice(0, HEALTHY_SHOWN));
    const note = list.querySelector("li.note");
    if (note) note.remove();
    syncRows(list, attentionRows, shown, (w) => w.name, attentionRow, updateAttentionRow);
    const hidden = hooks.length - shown.length;
    if (!hooks.length) list.append(el("li", { class: "note" }, el("span", { class: "empty" }, "No webhooks in this project yet. Create one under Webhooks.")));
    else if (hidden > 0) list.append(el("li", { class: "note" }, el("span", { class: "empty" }, "And " + plural(hidden, "more healthy endpoint") + ": see Webhooks.")));
  }

  function attentionRow(name) {
    const link = el("a", { class: "name", href: "#deliveries", title: "Deliveries of " + name }, name);
    link.addEventListener("click", () => { $("f-webhook").value = name; resetDeliveries(); });
    const row = { link, state: el("span", {}), why: el("span", { class: "why" }) };
    row.li = el("li", { "data-webhook": name }, link, row.state, row.why);
    row.nodes = [row.li];
    return row;
  }

  function updateAttentionRow(row, w) {
    const h = health(w);
    const { since, why } = explain(w);
    row.li.dataset.state = h.state;
    const when = h.state === "healthy" ? el("span", { class: "muted" }, lastOutcome(h)) :
      since ? el("span", { class: "muted" }, " since ", timeEl(since, stamp(since))) : null;
    row.state.replaceChildren(badge(h.state, STATE_NAMES[h.state]), when);
    row.why.textContent = why;
  }

  // ---------------------------------------------------------------- webhooks

  const webhookRows = new Map(); // name → { tr, cells…, test, nodes }

  async function loadWebhooks(withRecent) {
    const hooks = await fetchWebhooks();
    if (withRecent || hooks.some((w) => !state.recent.has(w.name))) await fetchRecent(hooks);
    const body = $("webhook-rows");
    syncRows(body, webhookRows, hooks, (w) => w.name, webhookRow, updateWebhookRow);
    if (!hooks.length) {
      body.replaceChildren(el("tr", {}, el("td", { class: "empty", colspan: 5 }, "No webhooks yet", el("span", { class: "write" }, ". ", el("button", { type: "button", class: "link", onclick: () => openWebhookDialog(null) }, "Create the first one")), ".")));
    } else {
      const empty = body.querySelector("td.empty");
      if (empty) empty.parentElement.remove();
    }
    $("webhooks-updated").textContent = "Updated " + clock(new Date().toISOString());
  }

  function webhookRow(name) {
    const row = {
      name: el("div", { class: "wname" }), url: el("div", { class: "url" }),
      health: el("td", { "data-label": "Health" }), last: el("td", { "data-label": "Last result" }),
      spark: el("td", { "data-label": "Recent" }),
      test: el("button", { type: "button", class: "small write" }, "Test"),
      edit: el("button", { type: "button", class: "small write" }, "Edit"),
      toggle: el("button", { type: "button", class: "small write" }, "Disable"),
      del: el("button", { type: "button", class: "small danger write" }, "Delete"),
      slot: el("span", { class: "test-slot" }),
      webhook: null,
    };
    row.test.setAttribute("aria-label", "Test webhook " + name);
    row.edit.setAttribute("aria-label", "Edit webhook " + name);
    row.del.setAttribute("aria-label", "Delete webhook " + name);
    row.tr = el("tr", { "data-webhook": name },
      el("td", { "data-label": "Webhook" }, row.name, row.url), row.health, row.last, row.spark,
      el("td", {}, el("div", { class: "actions" }, row.slot, row.test, row.edit, row.toggle, row.del)));
    row.nodes = [row.tr];
    row.test.addEventListener("click", () => runTest(row.slot, row.test, () => api("POST", "/webhooks/" + enc(row.webhook.name) + "/test"), row.webhook.name));
    row.edit.addEventListener("click", () => openWebhookDialog(row.webhook, row.edit));
    row.toggle.addEventListener("click", () => toggleWebhook(row.webhook));
    row.del.addEventListener("click", () => deleteWebhook(row.webhook, row.del));
    return row;
  }

  function updateWebhookRow(row, w) {
    row.webhook = w;
    row.name.textContent = w.name;
    row.url.textContent = w.url;
    const h = health(w);
    const { why } = explain(w);
    row.health.replaceChildren(badge(h.state, STATE_NAMES[h.state]));
    row.health.title = why;
    const recent = state.recent.get(w.name) || [];
    const last = recent.find((d) => d.attempts.length);
    if (last) {
      const a = last.attempts[last.attempts.length - 1];
      const ok = !a.error;
      row.last.replaceChildren(
        el("div", {}, badge(ok ? "succeeded" : "failed", a.status_code ? "HTTP " + a.status_code : ok ? "ok" : "failed")),
        el("div", { class: "sub" }, timeEl(a.started_at), a.error ? " · " + truncate(a.error, 60) : ""));
    } else {
      row.last.replaceChildren(el("span", { class: "muted" }, "No delivery yet"));
    }
    row.spark.replaceChildren(sparkline(recent));
    row.toggle.textContent = w.enabled ? "Disable" : "Enable";
    row.toggle.setAttribute("aria-label", (w.enabled ? "Disable" : "Enable") + " webhook " + w.name);
  }

  function truncate(s, n) { return s.length > n ? s.slice(0, n - 1) + "…" : s; }

  function sparkline(recent) {
    const items = recent.slice(0, SPARK_SIZE).reverse();
    const n = SPARK_SIZE, w = 120, h = 22, gap = 1;
    const bw = (w - gap * (n - 1)) / n;
    const counts = { succeeded: 0, failed: 0, retrying: 0, pending: 0 };
    for (const d of items) counts[d.status] = (counts[d.status] || 0) + 1;
    const label = items.length === 0 ? "No deliveries yet" :
      "Latest " + items.length + ": " + Object.entries(counts).filter(([, v]) => v).map(([k, v]) => v + " " + k).join(", ");
    const node = svg("svg", { class: "spark", viewBox: "0 0 " + w + " " + h, role: "img", "aria-label": label });
    node.append(svg("title", {}, label), svg("rect", { class: "track", x: 0, y: h - 1, width: w, height: 1 }));
    items.forEach((d, i) => {
      const x = i * (bw + gap);
      const tall = d.status === "succeeded" ? h * 0.55 : h;
      node.append(svg("rect", { class: d.status, x, y: h - tall, width: bw, height: tall, rx: 1 }));
    });
    return node;
  }

  async function toggleWebhook(w) {
    try {
      const updated = await api("PATCH", "/webhooks/" + enc(w.name), { enabled: !w.enabled });
      notify((updated.enabled ? "Enabled" : "Disabled") + " webhook " + w.name + ".", "ok");
      await loadWebhooks(false);
    } catch (e) {
      notify("Could not " + (w.enabled ? "disable " : "enable ") + w.name + ": " + e.message, "error");
    }
  }

  async function deleteWebhook(w, opener) {
    $("cd-title").textContent = "Delete webhook " + w.name + "?";
    $("cd-text").textContent = "Deliveries still waiting for it will end as failed. Delivery records are kept until they expire. This cannot be undone.";
    const dlg = $("confirm-dialog");
    dlg.returnValue = "";
    dlg.showModal();
    $("cd-cancel").focus();
    const answer = await new Promise((resolve) => dlg.addEventListener("close", () => resolve(dlg.returnValue), { once: true }));
    if (answer !== "ok") { opener.focus(); return; }
    try {
      await api("DELETE", "/webhooks/" + enc(w.name));
      notify("Deleted webhook " + w.name + ".", "ok");
      await loadWebhooks(false);
      $("new-webhook").focus();
    } catch (e) {
      notify("Could not delete " + w.name + ": " + e.message, "error");
      opener.focus();
    }
  }

  // ---------------------------------------------------------------- Test Webhook

  /// Pending → success or failure, with a tooltip (status code, time, error, the answer)
  /// and "Copy full response".
  async function runTest(slot, button, start, name) {
    button.disabled = true;
    slot.replaceChildren(el("span", { class: "test-chip pending", role: "status" }, el("span", { class: "spinner", "aria-hidden": "true" }), "Testing…"));
    let record;
    try {
      record = await start();
      const deadline = Date.now() + 60000;
      while (record.status === "pending" && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 400));
        record = await api("GET", "/webhooks-tests/" + enc(record.id));
      }
    } catch (e) {
      slot.replaceChildren(testChip({ status: "failed", error_message: e.message }, name));
      button.disabled = false;
      return;
    }
    slot.replaceChildren(testChip(record, name));
    button.disabled = false;
    if (state.page === "webhooks" && record.webhook) loadWebhooks(true).catch(() => {});
  }

  function fullResponse(t, name) {
    const r = t.response;
    const lines = [
      "Test " + (t.id || "") + (name ? " of webhook " + name : "") + ": " + (t.status === "completed" ? "succeeded" : t.status),
    ];
    if (t.attempted_at) lines.push("Sent at " + t.attempted_at + (t.duration_ms !== null && t.duration_ms !== undefined ? ", answered in " + t.duration_ms + " ms" : ""));
    if (t.error_message) lines.push("Error: " + t.error_message);
    lines.push("");
    if (r) {
      lines.push("HTTP " + r.status_code);
      for (const [k, v] of Object.entries(r.headers || {})) lines.push(k + ": " + v);
      lines.push("", r.body || "");
      if (r.body_truncated) lines.push("[body cut: only the first part was kept]");
    } else {
      lines.push(t.status_code ? "HTTP " + t.status_code : "No answer from the receiver.");
    }
    return lines.join("\n");
  }

  let tipSeq = 0;
  function testChip(t, name) {
    const ok = t.status === "completed";
    const pending = t.status === "pending";
    const id = "tip-" + (++tipSeq);
    const wrap = el("span", { class: "test-result" });
    const chip = el("button", {
      type: "button", class: "test-chip " + (ok ? "success" : pending ? "pending" : "failure"),
      "aria-describedby": id, "aria-expanded": "false",
    }, ok ? "✓ Test succeeded" : pending ? "Still pending" : "✕ Test failed");
    const facts = el("dl", {},
      el("dt", {}, "Status code"), el("dd", {}, t.status_code ? String(t.status_code) : "no answer"),
      el("dt", {}, "Time"), el("dd", {}, t.duration_ms !== null && t.duration_ms !== undefined ? t.duration_ms + " ms" : "–",
        t.attempted_at ? " at " + clock(t.attempted_at) : ""),
      t.error_message ? [el("dt", {}, "Error"), el("dd", {}, t.error_message)] : null);
    const body = t.response && t.response.body ? el("pre", {}, truncate(t.response.body, 400)) : null;
    const tip = el("div", { class: "tip", id, role: "tooltip" }, facts, body, copyButton("Copy full response", () => fullResponse(t, name)));
    wrap.append(chip, tip);
    const place = () => {
      tip.style.display = "block";
      tip.style.position = "fixed";
      const c = chip.getBoundingClientRect();
      const tw = tip.offsetWidth, th = tip.offsetHeight;
      const vw = document.documentElement.clientWidth, vh = window.innerHeight;
      let left = Math.min(Math.max(8, c.right - tw), vw - tw - 8);
      left = Math.max(8, left);
      let top = c.bottom + 6;
      if (top + th > vh - 8 && c.top - th - 6 > 8) top = c.top - th - 6;
      tip.style.left = left + "px";
      tip.style.top = top + "px";
      tip.style.right = "auto";
      tip.style.bottom = "auto";
    };
    const show = () => { wrap.classList.remove("closed"); place(); };
    const hide = () => { if (!wrap.classList.contains("open")) tip.style.display = ""; };
    wrap.addEventListener("mouseenter", show);
    wrap.addEventListener("mouseleave", () => { if (!wrap.contains(document.activeElement)) hide(); });
    wrap.addEventListener("focusin", show);
    wrap.addEventListener("focusout", (e) => { if (!wrap.contains(e.relatedTarget)) { wrap.classList.remove("open"); chip.setAttribute("aria-expanded", "false"); hide(); } });
    chip.addEventListener("click", () => {
      const open = !wrap.classList.contains("open");
      wrap.classList.toggle("open", open);
      chip.setAttribute("aria-expanded", String(open));
      if (open) show(); else hide();
    });
    wrap.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && tip.style.display === "block") {
        e.stopPropagation();
        e.preventDefault();
        wrap.classList.remove("open");
        chip.setAttribute("aria-expanded", "false");
        tip.style.display = "";
        chip.focus();
      }
    });
    return wrap;
  }

  // ---------------------------------------------------------------- create / edit dialog

  let editing = null; // the webhook being edited, or null when creating
  let dialogOpener = null;

  function openWebhookDialog(w, opener) {
    editing = w;
    dialogOpener = opener || document.activeElement;
    $("wd-title").textContent = w ? "Edit webhook " + w.name : "New webhook";
    $("wd-save").textContent = w ? "Save" : "Create";
    $("wd-error").textContent = "";
    const v = (id, value) => { $(id).value = value === null || value === undefined ? "" : value; };
    v("wd-name", w ? w.name : "");
    v("wd-url", w ? w.url : "");
    v("wd-description", w ? w.description : "");
    v("wd-object-type", w ? w.object_type : "deployment");
    v("wd-object-name", w ? w.object_name : "*");
    v("wd-event", w ? w.event : "deployment_request_finished");
    v("wd-version", w ? w.version : "");
    v("wd-events", w ? (w.events || []).join(", ") : "");
    v("wd-format", w ? w.format : "json");
    v("wd-timeout", w ? w.timeout : 10);
    v("wd-max-concurrency", w ? w.max_concurrency : "");
    v("wd-rate-limit", w ? w.rate_limit : "");
    $("wd-enabled").checked = w ? w.enabled : true;
    $("wd-retry").checked = w ? w.retry : false;
    $("wd-include-result").checked = w ? w.include_result : false;
    $("wd-ordered").checked = w ? w.ordered : false;
    $("wd-github").checked = w ? w.github_actions : false;
    v("wd-labels", w ? Object.entries(w.labels || {}).map(([k, x]) => k + ":" + x).join(", ") : "");
    v("wd-token", "");
    v("wd-secret", "");
    const tokenSet = w && w.token_set;
    $("wd-token-state").textContent = !w ? "(optional)" : tokenSet === undefined ? "(write-only; empty keeps it)" : tokenSet ? "(set; empty keeps it)" : "(not set)";
    $("wd-token").placeholder = w ? (tokenSet ? "set" : tokenSet === false ? "not set" : "") : "";
    $("wd-token-clear-box").hidden = !(w && tokenSet !== false);
    $("wd-token-clear").checked = false;
    $("wd-secret-box").hidden = !!w;
    const rows = $("wd-headers");
    rows.replaceChildren();
    for (const h of (w ? w.headers : [])) rows.append(headerRow(h));
    $("wd-test-slot").replaceChildren();
    const test = el("button", { type: "button", id: "wd-test" }, "Test webhook");
    test.hidden = !!w;
    test.addEventListener("click", () => testFromDialog(test));
    $("wd-test-slot").append(test, el("span", { class: "test-slot", id: "wd-test-result" }));
    $("webhook-dialog").showModal();
    $("wd-name").focus();
  }

  let headerSeq = 0;
  function headerRow(h) {
    const n = ++headerSeq;
    const kept = !!(h && h.protected && (h.value === null || h.value === undefined));
    const key = el("input", { id: "wh-key-" + n, spellcheck: "false", placeholder: "Header name" });
    const value = el("input", { id: "wh-value-" + n, spellcheck: "false", type: kept ? "password" : "text", autocomplete: "new-password" });
    const prot = el("input", { id: "wh-prot-" + n, type: "checkbox" });
    key.value = h ? h.key : "";
    value.value = h && !kept ? h.value || "" : "";
    value.placeholder = kept ? "set — empty keeps it" : "Value";
    prot.checked = !!(h && h.protected);
    const remove = el("button", { type: "button", class: "small", "aria-label": "Remove header " + (h ? h.key : n) }, "Remove");
    const row = el("div", { class: "header-row" },
      el("div", {}, el("label", { for: key.id, class: "sr" }, "Header " + n + " name"), key),
      el("div", {}, el("label", { for: value.id, class: "sr" }, "Header " + n + " value" + (kept ? " (set)" : "")), value),
      el("div", { class: "check" }, prot, el("label", { for: prot.id }, "Protected")),
      remove);
    row.kept = kept;
    row.fields = { key, value, prot };
    remove.addEventListener("click", () => {
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      (next ? next.querySelector("input") : $("wd-add-header")).focus();
    });
    return row;
  }

  $("wd-add-header").addEventListener("click", () => {
    const row = headerRow(null);
    $("wd-headers").append(row);
    row.fields.key.focus();
  });

  function closeWebhookDialog() {
    $("webhook-dialog").close();
  }
  $("wd-close").addEventListener("click", closeWebhookDialog);
  $("wd-cancel").addEventListener("click", closeWebhookDialog);
  $("webhook-dialog").addEventListener("close", () => {
    if (dialogOpener && dialogOpener.isConnected) dialogOpener.focus();
  });

  class FieldError extends Error {
    constructor(id, message) { super(message); this.id = id; }
  }

  function formBody(forTest) {
    const text = (id) => $(id).value.trim();
    const need = (id, what) => {
      const x = text(id);
      if (!x) throw new FieldError(id, what + " is required.");
      return x;
    };
    const number = (id, what) => {
      const x = text(id);
      if (!x) return null;
      const n = Number(x);
      if (!Number.isFinite(n)) throw new FieldError(id, what + " must be a number.");
      return n;
    };
    const body = {
      url: need("wd-url", "URL"),
      object_type: need("wd-object-type", "Object type"),
      object_name: need("wd-object-name", "Object name"),
      event: need("wd-event", "Event"),
      format: $("wd-format").value,
      timeout: number("wd-timeout", "Timeout") ?? 10,
      include_result: $("wd-include-result").checked,
      github_actions: $("wd-github").checked,
    };
    const version = text("wd-version");
    const headers = [];
    for (const row of $("wd-headers").children) {
      const key = row.fields.key.value.trim();
      const value = row.fields.value.value;
      if (!key && !value) continue;
      if (!key) throw new FieldError(row.fields.key.id, "A header needs a name.");
      const h = { key, protected: row.fields.prot.checked };
      // A protected header left empty keeps its stored value (sent as null).
      if (row.kept && value === "") {
        if (forTest) continue;
        h.value = null;
      } else h.value = value;
      headers.push(h);
    }
    body.headers = headers;
    const token = $("wd-token").value;
    if (forTest) {
      if (version) body.version = version;
      if (token) body.token = token;
      return body;
    }
    body.name = need("wd-name", "Name");
    body.description = text("wd-description");
    body.events = text("wd-events").split(",").map((s) => s.trim()).filter(Boolean);
    body.enabled = $("wd-enabled").checked;
    body.retry = $("wd-retry").checked;
    body.ordered = $("wd-ordered").checked;
    body.max_concurrency = number("wd-max-concurrency", "Max concurrency");
    body.rate_limit = number("wd-rate-limit", "Rate limit");
    const labels = {};
    for (const part of text("wd-labels").split(",").map((s) => s.trim()).filter(Boolean)) {
      const at = part.indexOf(":");
      if (at <= 0) throw new FieldError("wd-labels", "Labels are key:value pairs, e.g. team:blue.");
      labels[part.slice(0, at).trim()] = part.slice(at + 1).trim();
    }
    body.labels = labels;
    if (editing) {
      body.version = version || null;
      if ($("wd-token-clear").checked) body.token = null;
      else if (token) body.token = token;
    } else {
      if (version) body.version = version;
      if (token) body.token = token;
      const secret = $("wd-secret").value.trim();
      if (secret) body.signing_secret = secret;
      if (body.max_concurrency === null) delete body.max_concurrency;
      if (body.rate_limit === null) delete body.rate_limit;
    }
    return body;
  }

  function showFieldError(e) {
    $("wd-error").textContent = e.message;
    if (e.id) $(e.id).focus();
  }

  // The API names the field at fault: put the cursor there.
  const FIELD_INPUT = {
    name: "wd-name", url: "wd-url", description: "wd-description", object_type: "wd-object-type", object_name: "wd-object-name",
    event: "wd-event", version: "wd-version", events: "wd-events", format: "wd-format", timeout: "wd-timeout",
    max_concurrency: "wd-max-concurrency", rate_limit: "wd-rate-limit", labels: "wd-labels", token: "wd-token", signing_secret: "wd-secret",
  };

  $("webhook-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("wd-error").textContent = "";
    let body;
    try { body = formBody(false); } catch (e) { showFieldError(e); return; }
    const save = $("wd-save");
    save.disabled = true;
    try {
      if (editing) {
        const w = await api("PATCH", "/webhooks/" + enc(editing.name), body);
        closeWebhookDialog();
        notify("Saved webhook " + w.name + ".", "ok");
      } else {
        const w = await api("POST", "/webhooks", body);
        closeWebhookDialog();
        if (w.signing_secret) {
          notify("Created webhook " + w.name + ". Its signing secret is shown this once: " + w.signing_secret, "ok",
            copyButton("Copy secret", w.signing_secret));
        } else {
          notify("Created webhook " + w.name + ".", "ok");
        }
      }
      if (state.page === "webhooks") await loadWebhooks(true);
      else location.hash = "#webhooks";
    } catch (e) {
      const field = (e.message.match(/^([a-z_]+)[:[]/) || [])[1];
      showFieldError({ message: e.message, id: FIELD_INPUT[field] });
    } finally {
      save.disabled = false;
    }
  });

  /// Test Webhook inside the dialog: the form as it stands, saved or not.
  function testFromDialog(button) {
    let body;
    try { body = formBody(true); } catch (e) { showFieldError(e); return; }
    $("wd-error").textContent = "";
    runTest($("wd-test-result"), button, () => api("POST", "/webhooks-tests", body), $("wd-name").value.trim());
  }

  $("new-webhook").addEventListener("click", (ev) => openWebhookDialog(null, ev.currentTarget));

  // ---------------------------------------------------------------- deliveries

  const deliveryRows = new Map(); // id → row
  const openDeliveries = new Set();

  function fillWebhookFilter() {
    const select = $("f-webhook");
    const chosen = select.value;
    const have = [...select.options].slice(1).map((o) => o.value).join("\n");
    const names = state.webhooks.map((w) => w.name);
    if (chosen && !names.includes(chosen)) names.push(chosen);
    if (have === names.join("\n")) return;
    select.replaceChildren(el("option", { value: "" }, "All webhooks"), ...names.map((n) => el("option", { value: n }, n)));
    select.value = chosen;
  }

  function resetDeliveries() {
    deliveryRows.clear();
    openDeliveries.clear();
    $("delivery-rows").replaceChildren();
    if (state.page === "deliveries") refresh();
  }

  for (const id of ["f-webhook", "f-status", "f-time"]) $(id).addEventListener("change", resetDeliveries);
  $("f-refresh").addEventListener("click", () => refresh());
  $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); refresh(); });

  async function loadDeliveries() {
    if (!state.webhooks.length) await fetchWebhooks();
    const q = new URLSearchParams({ limit: String(LIST_LIMIT) });
    if ($("f-webhook").value) q.set("webhook", $("f-webhook").value);
    if ($("f-status").value) q.set("status", $("f-status").value);
    let list = await api("GET", "/deliveries?" + q.toString());
    const capped = list.length === LIST_LIMIT;
    const secs = Number($("f-time").value);
    if (secs) {
      const since = Date.now() - secs * 1000;
      list = list.filter((d) => Date.parse(d.created_at) >= since);
    }
    const body = $("delivery-rows");
    syncRows(body, deliveryRows, list, (d) => d.id, deliveryRow, updateDeliveryRow);
    const empty = body.querySelector("td.empty");
    if (empty) empty.parentElement.remove();
    if (!list.length) body.append(el("tr", {}, el("td", { class: "empty", colspan: 7 }, "No deliveries match.")));
    $("deliveries-updated").textContent = "Updated " + clock(new Date().toISOString()) + " · " +
      plural(list.length, "delivery", "deliveries") + (capped ? ", among the latest " + LIST_LIMIT : "");
  }

  function deliveryRow(id) {
    const row = {
      created: el("td", { "data-label": "Created", class: "nowrap" }),
      webhook: el("td", { "data-label": "Webhook" }),
      event: el("td", { "data-label": "Event" }),
      status: el("td", { "data-label": "Status" }),
      attempts: el("td", { "data-label": "Attempts" }),
      next: el("td", { "data-label": "Next attempt", class: "nowrap" }),
      toggle: el("button", { type: "button", class: "small", "aria-expanded": "false", "aria-controls": "detail-" + id }, "Details"),
      info: el("div", { class: "detail-grid" }),
      attemptsBox: el("div", {}),
      answer: el("div", {}),
      redeliver: el("button", { type: "button" }, "Redeliver"),
      redeliverNote: el("span", { class: "muted" }),
      sig: "",
      delivery: null,
    };
    row.toggle.setAttribute("aria-label", "Details of delivery " + id);
    row.tr = el("tr", { "data-delivery": id }, row.created, row.webhook, row.event, row.status, row.attempts, row.next,
      el("td", {}, el("div", { class: "actions" }, row.toggle)));
    row.detail = el("tr", { class: "detail", id: "detail-" + id, hidden: true },
      el("td", { colspan: 7 }, row.info, row.attemptsBox, row.answer,
        el("div", { class: "detail-actions write" }, row.redeliver, row.redeliverNote)));
    row.nodes = [row.tr, row.detail];
    const setOpen = (open) => {
      row.detail.hidden = !open;
      row.tr.classList.toggle("open", open);
      row.toggle.setAttribute("aria-expanded", String(open));
      row.toggle.textContent = open ? "Hide" : "Details";
      if (open) openDeliveries.add(id); else openDeliveries.delete(id);
    };
    row.setOpen = setOpen;
    row.toggle.addEventListener("click", () => setOpen(row.detail.hidden));
    row.redeliver.addEventListener("click", () => redeliver(row));
    if (openDeliveries.has(id)) setOpen(true);
    return row;
  }

  function updateDeliveryRow(row, d) {
    row.delivery = d;
    // Relative times change every refresh; the rest only when the record does.
    row.created.replaceChildren(timeEl(d.created_at, stamp(d.created_at)));
    row.next.replaceChildren(d.next_attempt_at ? timeEl(d.next_attempt_at) : el("span", { class: "muted" }, "–"));
    const sig = JSON.stringify([d.status, d.attempts.length, d.updated_at, d.webhook]);
    if (sig === row.sig) return;
    row.sig = sig;
    row.webhook.replaceChildren(d.webhook ? el("span", { class: "wname" }, d.webhook) : el("span", { class: "muted" }, "unsaved test"));
    row.event.replaceChildren(el("span", {}, d.event, d.kind === "test" ? el("span", { class: "muted" }, " (test)") : null));
    row.status.replaceChildren(badge(d.status));
    row.attempts.textContent = d.attempts.length;
    row.info.replaceChildren(
      fact("Delivery id", el("span", { class: "mono" }, d.id)),
      fact("Event id", d.event_id ? el("span", { class: "mono" }, d.event_id) : "–"),
      fact("Created", fullTime(d.created_at)),
      fact("Next attempt", d.next_attempt_at ? fullTime(d.next_attempt_at) + " (" + relative(d.next_attempt_at) + ")" : "none"),
      fact("Last error", d.last_error || "–"));
    const rows = d.attempts.map((a) => el("tr", {},
      el("td", {}, a.attempt), el("td", { class: "nowrap" }, timeEl(a.started_at, stamp(a.started_at))),
      el("td", {}, a.duration_ms + " ms"),
      el("td", {}, a.status_code === null || a.status_code === undefined ? "–" : a.status_code),
      el("td", { class: "err" }, a.error || "–")));
    row.attemptsBox.replaceChildren(d.attempts.length ?
      el("table", { class: "attempts" },
        el("caption", { class: "sr" }, "Attempts of delivery " + d.id),
        el("thead", {}, el("tr", {}, ...["#", "Started", "Took", "Status code", "Error"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, rows)) :
      el("p", { class: "muted" }, "No attempt yet."));
    const r = d.response;
    row.answer.replaceChildren(r ? el("details", {},
      el("summary", {}, "Last answer: HTTP " + r.status_code),
      el("pre", {}, Object.entries(r.headers || {}).map(([k, v]) => k + ": " + v).join("\n") + "\n\n" + (r.body || "") + (r.body_truncated ? "\n[cut]" : ""))) : "");
    const finished = d.status === "succeeded" || d.status === "failed";
    row.redeliver.disabled = !finished;
    row.redeliverNote.textContent = finished ? "" : "Redeliver is possible once this delivery has finished.";
  }

  function fact(k, v) {
    return el("div", {}, el("div", { class: "k" }, k), el("div", { class: "v" }, v));
  }

  async function redeliver(row) {
    const d = row.delivery;
    row.redeliver.disabled = true;
    try {
      const r = await api("POST", "/deliveries/" + enc(d.id) + "/redeliver");
      notify("Redelivery of " + d.id + " queued as attempt " + r.attempt + ".", "ok");
      await loadDeliveries();
    } catch (e) {
      notify("Could not redeliver " + d.id + ": " + e.message, "error");
      row.redeliver.disabled = false;
    }
  }

  // ---------------------------------------------------------------- publish an event

  let publishOpener = null;
  $("publish-event").addEventListener("click", (ev) => {
    publishOpener = ev.currentTarget;
    $("pd-error").textContent = "";
    $("publish-dialog").showModal();
    $("pd-event").focus();
  });
  const closePublish = () => $("publish-dialog").close();
  $("pd-close").addEventListener("click", closePublish);
  $("pd-cancel").addEventListener("click", closePublish);
  $("publish-dialog").addEventListener("close", () => { if (publishOpener) publishOpener.focus(); });

  function jsonField(id, what, fallback) {
    const raw = $(id).value.trim();
    if (!raw) return fallback;
    try { return JSON.parse(raw); } catch (e) { throw new FieldError(id, what + " is not valid JSON: " + e.message); }
  }

  $("publish-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("pd-error").textContent = "";
    const body = {
      event: $("pd-event").value.trim(),
      object_type: $("pd-object-type").value.trim(),
      object_name: $("pd-object-name").value.trim(),
    };
    try {
      if (!body.event) throw new FieldError("pd-event", "Event is required.");
      body.data = jsonField("pd-data", "Data", {});
      const result = jsonField("pd-result", "Result", undefined);
      if (result !== undefined) body.result = result;
    } catch (e) {
      $("pd-error").textContent = e.message;
      $(e.id).focus();
      return;
    }
    if ($("pd-version").value.trim()) body.version = $("pd-version").value.trim();
    if ($("pd-id").value.trim()) body.id = $("pd-id").value.trim();
    const submit = $("pd-submit");
    submit.disabled = true;
    try {
      const a = await api("POST", "/events", body);
      closePublish();
      const n = a.deliveries.length;
      notify("Event " + a.id + " published: " + (n === 0 ? "no webhook matches it." : plural(n, "delivery", "deliveries") + " queued."), n ? "ok" : "");
      await loadDeliveries();
    } catch (e) {
      $("pd-error").textContent = e.message;
    } finally {
      submit.disabled = false;
    }
  });

  // ---------------------------------------------------------------- start

  redisHealth();
  setInterval(redisHealth, 15000);
  if (state.token) enterApp();
  else showSignIn("");
})();
