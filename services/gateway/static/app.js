"use strict";
// The quantops dashboard: plain JavaScript, no build step. Charts are drawn by Chart.js
// (charts.js; performance.js and trials.js draw the model views), served from static/vendor.
// The API key lives in sessionStorage (this tab only) and goes in the Authorization header.
// The live task feed is an EventSource, which cannot send headers: it authenticates with a
// stream token (POST /v1/auth/stream-token, valid 60 s, accepted on event streams only) and asks
// for a fresh one whenever it has to reconnect.
(() => {
  const KEY = "quantops.apiKey";
  const STATUSES = ["queued", "running", "succeeded", "failed", "timed_out", "cancelled", "dead"];
  const MAX_TASKS = 50;
  const TASK_WINDOW_S = 3600;
  // QUANTOPS_GATEWAY_DASHBOARD_REFRESH_S, written into the page by the gateway. Task panels
  // follow the event feed; the timer only refreshes what has no feed (models, state, health),
  // and the task panels too while the feed is down.
  const REFRESH_MS = 1000 * (Number(document.body.dataset.refreshS) || 5);
  const ACTIVITY_MS = 60_000; // one bucket: the activity window slides once a minute
  const tasks = new Map(); // task id -> latest record
  const state = { feed: null, timer: null, model: null, queueTimer: null, events: 0,
                  activityTimer: null, live: false };

  const $ = (sel) => document.querySelector(sel);

  // Every value from the API is rendered as text, never as HTML.
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k === "style") Object.assign(node.style, v); // CSSOM: allowed by the page's CSP
      else if (k.startsWith("data-")) node.setAttribute(k, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node[k] = v;
    }
    for (const c of children) node.append(c instanceof Node ? c : String(c ?? ""));
    return node;
  }

  const fill = (tbody, rows) => tbody.replaceChildren(...rows);
  const when = (t) => (t ? new Date(t * 1000).toLocaleTimeString() : "");
  const date = (iso) => (iso ? new Date(iso).toLocaleString() : "");
  const num = (v) => (v === null || v === undefined ? "–" : Number(v).toPrecision(4));
  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
  }
  function uptime(s) {
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return h ? `${h} h ${m} min` : `${m} min ${Math.floor(s % 60)} s`;
  }

  class ApiError extends Error {
    constructor(status, problem) {
      super(problem.detail || problem.title || `HTTP ${status}`);
      this.status = status;
      this.code = problem.code || "";
    }
  }

  async function api(path, options = {}) {
    const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY)}`,
                      ...(options.headers || {}) };
    const response = await fetch(path, { ...options, headers });
    if (response.status === 401 && path !== "/v1/me") return disconnect("the key was refused");
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      throw new ApiError(response.status, problem);
    }
    return response.status === 204 ? null : response.json();
  }

  // --- connecting ---------------------------------------------------------------------------

  async function connect(key) {
    sessionStorage.setItem(KEY, key);
    try {
      const me = await api("/v1/me");
      $("#whoami").textContent = `${me.name} (${me.role})`;
    } catch (e) {
      sessionStorage.removeItem(KEY);
      $("#login-error").textContent = e.status === 401 ? "This key was refused." : e.message;
      return;
    }
    $("#login").hidden = true;
    $("#app").hidden = false;
    $("#logout").hidden = false;
    await Promise.allSettled([loadTasks(), refresh(), refreshTasks()]);
    openFeed();
    window.qoLive.open();
    state.timer = setInterval(() => { refresh(); if (!state.live) refreshTasks(); },
                              REFRESH_MS);
    state.activityTimer = setInterval(loadActivity, ACTIVITY_MS);
  }

  function disconnect(reason) {
    sessionStorage.removeItem(KEY);
    clearInterval(state.timer);
    clearInterval(state.activityTimer);
    if (state.feed) state.feed.close();
    window.qoLive.close();
    setLive(false);
    $("#app").hidden = true;
    $("#logout").hidden = true;
    $("#login").hidden = false;
    $("#whoami").textContent = "";
    $("#login-error").textContent = reason || "";
    throw new ApiError(401, { detail: reason || "disconnected" });
  }

  function refresh() {
    return Promise.allSettled([loadHealth(), loadModels(), loadNamespaces(),
                               window.qoLive.refresh()]);
  }

  function refreshTasks() {
    return Promise.allSettled([loadQueue(), loadFailed(), loadWorkflows(), loadActivity()]);
  }

  // --- services ------------------------------------------------------------------------------

  async function loadHealth() {
    const response = await fetch("/readyz"); // public: 503 still carries every service
    const ready = await response.json();
    const names = Object.keys(ready.services).sort();
    $("#health").replaceChildren(...names.map((n) => el("span",
      { class: `pill ${ready.services[n].ok ? "ok" : "bad"}`, "data-service": n }, n)));
    fill($("#services tbody"), names.map((n) => {
      const s = ready.services[n], h = s.health || {};
      return el("tr", { "data-service": n }, el("td", {}, n),
        el("td", { class: s.ok ? "ok" : "bad" }, s.status), el("td", {}, h.version || ""),
        el("td", {}, h.uptime_s ? uptime(h.uptime_s) : ""), el("td", {}, h.instance || ""),
        el("td", {}, s.detail || ""));
    }));
  }

  // --- models --------------------------------------------------------------------------------

  async function loadModels() {
    const page = await api("/v1/models?limit=100");
    window.qoTrials.setModels(page.items.map((m) => m.name), state.model);
    fill($("#models tbody"), page.items.map((m) => el("tr",
      { class: m.name === state.model ? "selected" : "", "data-model": m.name,
        onclick: () => selectModel(m.name) },
      el("td", {}, m.name), el("td", {}, m.versions), el("td", {}, m.latest_version ?? ""),
      el("td", {}, ...Object.entries(m.aliases).map(([a, v]) => el("span", { class: "tag" },
        `${a} → ${v}`))),
      el("td", {}, date(m.updated_at)))));
    if (state.model) await loadVersions(state.model, false);
  }

  function selectModel(name) {
    window.qoTrials.load(name).catch((e) => { $("#trials-summary").textContent = e.message; });
    return loadVersions(name);
  }

  async function loadVersions(name, reset = true) {
    if (reset) {
      $("#comparison").replaceChildren();
      window.qoPerformance.hide();
    }
    const checked = new Set([...document.querySelectorAll("#versions input:checked")]
      .map((i) => i.value));
    state.model = name;
    const page = await api(`/v1/models/${encodeURIComponent(name)}/versions?limit=20`);
    const metrics = [...new Set(page.items.flatMap((v) => Object.keys(v.metrics)))].slice(0, 6);
    $("#versions-model").textContent = name;
    $("#versions thead").replaceChildren(el("tr", {}, el("th", {}, ""), el("th", {}, "version"),
      el("th", {}, "aliases"), el("th", {}, "created"), el("th", {}, "by"),
      ...metrics.map((m) => el("th", {}, m))));
    const shown = $("#performance").hidden ? "" : $("#performance").dataset.ref;
    fill($("#versions tbody"), page.items.map((v) => el("tr", { "data-version": v.version,
      class: shown === `${name}@${v.version}` ? "selected" : "",
      title: "show this version's performance", onclick: (e) => {
        if (e.target.tagName !== "INPUT") showPerformance(name, v.version);
      } },
      el("td", {}, el("input", { type: "checkbox", value: String(v.version),
        checked: !reset && checked.has(String(v.version)), onchange: updateCompare })),
      el("td", {}, v.version), el("td", {}, v.aliases.join(", ")), el("td", {}, date(v.created_at)),
      el("td", {}, v.created_by), ...metrics.map((m) => el("td", { class: "num" },
        num(v.metrics[m]))))));
    $("#versions-panel").hidden = false;
    updateCompare();
    if (reset && page.items.length) { // the production version, else the newest
      const first = page.items.find((v) => v.aliases.includes("production")) || page.items[0];
      await showPerformance(name, first.version);
    }
  }

  function showPerformance(name, version) {
    return window.qoPerformance.showPerformance(name, version).catch((e) => {
      $("#performance-summary").textContent = e.message;
    });
  }

  function updateCompare() {
    $("#compare").disabled = document.querySelectorAll("#versions input:checked").length < 2;
  }

  async function compare() {
    const versions = [...document.querySelectorAll("#versions input:checked")].map((i) => i.value);
    const query = versions.map((v) => `versions=${encodeURIComponent(v)}`).join("&");
    const cmp = await api(`/v1/models/${encodeURIComponent(state.model)}/compare?${query}`);
    const short = (ref) => `v${ref.split("@").pop()}`; // the model is in the heading
    const head = el("tr", {}, el("th", {}, "metric"), el("th", {}, "better"),
      ...cmp.refs.map((r) => el("th", { class: "num" }, short(r))), el("th", {}, "winner"));
    const rows = cmp.metrics.map((m) => el("tr", { "data-metric": m.name }, el("td", {}, m.name),
      el("td", {}, m.direction),
      ...m.values.map((v, i) => el("td", { class: cmp.refs[i] === m.winner ? "num win" : "num" },
        num(v), i && m.deltas[i] !== null ? el("small", {}, ` (${m.deltas[i] > 0 ? "+" : ""}` +
        `${num(m.deltas[i])})`) : "")),
      el("td", { "data-winner": m.winner || "" }, m.winner ? short(m.winner) : "–")));
    $("#comparison").replaceChildren(el("table", { id: "comparison-table" },
      el("thead", {}, head), el("tbody", {}, ...rows)));
    await window.qoPerformance.compareCharts(state.model, versions, cmp);
  }

  // --- tasks, live -----------------------------------------------------------------------

  async function loadTasks() {
    // A window, so the cost is what the last hour holds (the live feed adds what follows).
    const since = Date.now() / 1000 - TASK_WINDOW_S;
    const page = await api(`/v1/tasks?limit=${MAX_TASKS}&since=${since}`);
    for (const r of page.items.reverse()) tasks.set(r.id, r);
    renderTasks();
  }

  function onTask(record, via) {
    const known = tasks.get(record.id);
    if (known && known.updated_at > record.updated_at) return; // an older event, late
    tasks.delete(record.id); // re-inserted last: the map stays in update order
    tasks.set(record.id, { ...record, via });
    while (tasks.size > MAX_TASKS) tasks.delete(tasks.keys().next().value);
    state.events++;
    document.body.dataset.events = String(state.events);
    renderTasks();
    clearTimeout(state.queueTimer); // many events at once: one queue refresh after them
    state.queueTimer = setTimeout(refreshTasks, 300);
  }

  function renderTasks() {
    const rows = [...tasks.values()].reverse().map((t) => el("tr",
      { "data-task-id": t.id, "data-status": t.status, "data-via": t.via || "list",
        class: t.via === "sse" ? "fresh" : "" },
      el("td", { class: "mono" }, t.id), el("td", {}, t.type), el("td", {}, t.priority),
      el("td", { class: `status ${t.status}` }, t.status),
      el("td", {}, `${t.attempts}/${t.max_attempts}`), el("td", {}, when(t.updated_at)),
      el("td", { class: "error" }, t.error ? `${t.error.type}: ${t.error.message}` : "")));
    fill($("#tasks tbody"), rows);
  }

  async function openFeed() {
    if (state.feed) state.feed.close();
    let token;
    try {
      token = (await api("/v1/auth/stream-token", { method: "POST" })).token;
    } catch (e) {
      setTimeout(openFeed, 3000);
      return;
    }
    const feed = new EventSource(`/v1/task-events?access_token=${encodeURIComponent(token)}`);
    state.feed = feed;
    // Each status is a named event: onmessage would see none of them.
    for (const s of STATUSES) feed.addEventListener(s, (e) => onTask(JSON.parse(e.data), "sse"));
    feed.onopen = () => setLive(true);
    feed.onerror = () => {
      setLive(false);
      // The browser retries by itself with the same URL; once it gives up (a refused,
      // expired token), open a new feed with a new token.
      if (feed.readyState === EventSource.CLOSED && state.feed === feed) {
        setTimeout(openFeed, 2000);
      }
    };
  }

  function setLive(on) {
    state.live = on;
    document.body.dataset.live = on ? "1" : "0";
    $("#live").textContent = on ? "feed live" : "feed off";
    $("#live").className = `badge ${on ? "on" : "off"}`;
  }

  async function loadQueue() {
    // JetStream's consumer counters: constant cost, however many task records are kept.
    const q = await api("/v1/tasks/queue");
    fill($("#queue tbody"), [...q.priorities.map((d) => el("tr",
      { "data-priority": d.priority }, el("td", {}, d.priority),
      el("td", { class: "num" }, d.queued), el("td", { class: "num" }, d.in_flight),
      el("td", {}, el("span", { class: "bar", style: { width: `${Math.min(100, d.queued * 4)}px` } })))),
      el("tr", {}, el("td", {}, "total"), el("td", { class: "num" }, q.queued),
        el("td", { class: "num" }, q.in_flight), el("td"))]);
  }

  async function loadActivity() {
    const a = await api("/v1/tasks/activity?window_s=3600&bucket_s=60");
    window.qoCharts.queueDepth($("#queue-chart"), a);
    window.qoCharts.throughput($("#throughput-chart"), a);
    const done = a.buckets.reduce((n, b) => n + b.succeeded + b.failed + b.cancelled, 0);
    $("#activity-total").textContent = `${done} finished in the last hour`;
  }

  async function loadFailed() {
    const s = await api("/v1/tasks/failed-summary?window_s=3600");
    const groups = s.groups.slice(0, 8).map((g) => el("tr", {}, el("td", {}, g.type),
      el("td", {}, g.error_type), el("td", { class: "num" }, g.count),
      el("td", { class: "error" }, g.last_message)));
    $("#failed").replaceChildren(el("p", { id: "failed-total" }, `${s.total} failed`),
      groups.length ? el("table", {}, el("tbody", {}, ...groups)) : "");
  }

  async function loadWorkflows() {
    const ids = [...new Set([...tasks.values()].reverse().map((t) => t.workflow_id)
      .filter(Boolean))].slice(0, 5);
    const records = await Promise.all(ids.map((id) =>
      api(`/v1/workflows/${encodeURIComponent(id)}`).catch(() => null)));
    fill($("#workflows tbody"), records.filter(Boolean).map((w) => {
      const done = w.nodes.filter((n) => ["succeeded", "failed", "timed_out", "cancelled",
        "dead"].includes(n.status)).length;
      return el("tr", { "data-workflow": w.id }, el("td", {}, w.name || w.id),
        el("td", {}, `${done}/${w.nodes.length}`),
        el("td", { class: `status ${w.status}` }, w.status));
    }));
  }

  // --- state ---------------------------------------------------------------------------------

  async function loadNamespaces() {
    const reply = await api("/v1/state/_namespaces");
    fill($("#namespaces tbody"), reply.namespaces.map((n) => {
      const pct = n.max_total_bytes ? (100 * n.bytes) / n.max_total_bytes : 0;
      return el("tr", { "data-namespace": n.namespace }, el("td", {}, n.namespace),
        el("td", { class: "num" }, n.keys), el("td", { class: "num" }, bytes(n.bytes)),
        el("td", { title: `${pct.toFixed(2)}% of ${bytes(n.max_total_bytes)}` },
          el("span", { class: "usage" }, el("span", { style: { width: `${Math.max(1, pct)}%` } }))));
    }));
  }

  window.qo = { api, el, $ };

  // --- wiring --------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("#login").addEventListener("submit", (e) => {
      e.preventDefault();
      connect($("#key").value.trim());
      $("#key").value = "";
    });
    $("#logout").addEventListener("click", () => disconnect("").catch(() => {}));
    $("#compare").addEventListener("click", () => compare().catch((e) => {
      $("#comparison").textContent = e.message;
    }));
    const saved = sessionStorage.getItem(KEY);
    if (saved) connect(saved);
  });
})();
