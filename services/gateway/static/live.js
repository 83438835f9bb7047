"use strict";
// The live trading loop (GET /v1/strategies): for each strategy, its P&L and drawdown as they
// move, its positions, and its risk state. Fills and risk breaches arrive on the event stream
// (/v1/strategy-events, an EventSource with a stream token like the task feed); each event
// re-reads that strategy, and the page's refresh timer marks the books to market in between.
// The P&L curve is what this page has seen since it opened: the status holds the present only.
(() => {
  const enc = encodeURIComponent;
  const { api, el, $ } = window.qo;
  const charts = window.qoCharts;
  const MAX_POINTS = 2000;
  const state = { feed: null, history: new Map(), timers: new Map(), available: true };

  const money = (v) => Number(v).toLocaleString(undefined, { maximumFractionDigits: 0 });
  const pct = (v) => `${(Number(v) * 100).toFixed(2)}%`;

  /** Remember one point per bar (the latest status of a bar wins). */
  function remember(s) {
    const points = state.history.get(s.name) || [];
    const at = Date.parse(s.last_timestamp || "") || Date.now();
    const point = { at, pnl: s.pnl, drawdown: -Math.abs(s.drawdown) };
    if (points.length && points[points.length - 1].at === at) points[points.length - 1] = point;
    else points.push(point);
    if (points.length > MAX_POINTS) points.shift();
    state.history.set(s.name, points);
    return points;
  }

  function risk(s) {
    const limits = s.spec.limits || {};
    const facts = [s.killed ? `KILLED: ${s.kill_reason}` : s.desired,
      `drawdown ${pct(s.drawdown)}${limits.max_drawdown ? ` of ${pct(limits.max_drawdown)}` : ""}`,
      `day ${money(s.daily_pnl)}${limits.max_daily_loss ?
        ` (limit -${pct(limits.max_daily_loss)})` : ""}`,
      `${s.breaches} breach(es)`, `${s.orders} orders, ${s.refused} refused`];
    return el("p", { class: `risk ${s.killed ? "bad" : s.breaches ? "warn" : "ok"}`,
                     "data-risk": s.killed ? "killed" : s.breaches ? "breached" : "ok" },
              facts.join(" · "));
  }

  function card(s) {
    const id = (kind) => `live-${kind}-${s.name}`;
    $("#live-summary").textContent = "";
    let node = document.querySelector(`[data-strategy="${CSS.escape(s.name)}"]`);
    if (!node) {
      node = el("div", { class: "strategy", "data-strategy": s.name },
        el("h3", {}, s.name, " ", el("small", {})), el("div", { class: "risk-line" }),
        el("div", { class: "chart-grid" },
          el("figure", {}, el("figcaption", {}, "P&L and drawdown, since this page opened"),
            el("div", { class: "chart" }, el("canvas", { id: id("pnl") }))),
          el("figure", {}, el("figcaption", {}, "positions (market value by symbol)"),
            el("div", { class: "chart" }, el("canvas", { id: id("positions") })))));
      $("#strategies").append(node);
    }
    node.querySelector("h3 small").textContent = `${s.model} · equity ${money(s.equity)} · ` +
      `P&L ${money(s.pnl)} · ${s.bars} bars, last ${s.last_timestamp.slice(0, 10)}`;
    node.querySelector(".risk-line").replaceChildren(risk(s));
    node.dataset.bars = String(s.bars);
    charts.pnl(document.getElementById(id("pnl")), remember(s));
    charts.positions(document.getElementById(id("positions")), s.positions);
  }

  async function refresh() {
    if (!state.available) return;
    let list;
    try {
      list = await api("/v1/strategies");
    } catch (e) {
      if (e.status === 404 || e.status === 405) { // a gateway without the live loop
        state.available = false;
        $("#live-card").hidden = true;
        return;
      }
      throw e;
    }
    $("#live-card").hidden = false;
    $("#live-summary").textContent = list.strategies.length ? "" :
      "no strategy yet: start one with `quantops live start` or POST /v1/strategies";
    list.strategies.forEach(card);
  }

  function onEvent(kind, event) {
    const { strategy } = JSON.parse(event.data);
    $("#live-card").dataset.events = String(Number($("#live-card").dataset.events || 0) + 1);
    clearTimeout(state.timers.get(strategy)); // a burst of fills: one read after it
    state.timers.set(strategy, setTimeout(() => api(`/v1/strategies/${enc(strategy)}`)
      .then(card).catch(() => {}), 100));
  }

  async function open() {
    close();
    if (!state.available) return;
    let token;
    try {
      token = (await api("/v1/auth/stream-token", { method: "POST" })).token;
    } catch (e) {
      setTimeout(open, 3000);
      return;
    }
    const feed = new EventSource(`/v1/strategy-events?access_token=${enc(token)}`);
    state.feed = feed;
    for (const kind of ["fill", "risk"]) feed.addEventListener(kind, (e) => onEvent(kind, e));
    feed.onopen = () => { $("#live-card").dataset.live = "1"; };
    feed.onerror = () => {
      $("#live-card").dataset.live = "0";
      if (feed.readyState === EventSource.CLOSED && state.feed === feed) setTimeout(open, 2000);
    };
  }

  function close() {
    if (state.feed) state.feed.close();
    state.feed = null;
  }

  window.qoLive = { refresh, open, close };
})();
