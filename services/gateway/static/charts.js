"use strict";
// The dashboard's charts, drawn by Chart.js (static/vendor/chartjs: the pinned, minified UMD
// build from the npm registry with its MIT licence; served by the gateway, no CDN).
// Each function takes a <canvas> and plain data, and draws or redraws in place: a live chart
// keeps its Chart object and only swaps data, so a feed update does not flicker.
// Time axes are linear in epoch milliseconds (Chart.js's "time" scale needs a date adapter,
// one more dependency for nothing a tick callback cannot do).
(() => {
  const COLORS = ["#2f5fd0", "#1f8a4c", "#c0392b", "#b7791f", "#7b3fb5", "#0f8a8a", "#d0527a",
                  "#5a6b7d"];
  const BAD = "#c0392b", GOOD = "#1f8a4c", MUTED = "#a9b4c8";

  Chart.defaults.animation = false; // live data: an animation would trail the feed
  Chart.defaults.maintainAspectRatio = false; // the .chart box sets the height
  Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;
  Chart.defaults.plugins.legend.labels.boxWidth = 12;

  const color = (i) => COLORS[i % COLORS.length];
  const day = (ms) => new Date(ms).toISOString().slice(0, 10);
  const minute = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit",
                                                               minute: "2-digit" });
  const pct = (v) => `${(v * 100).toFixed(1)}%`;
  const points = (xs, ys) => xs.map((x, i) => ({ x, y: ys[i] }));
  const ms = (isoList) => isoList.map((t) => Date.parse(t));

  function timeAxis(format, datasets = []) {
    const xs = datasets.flatMap((d) => d.data.map((p) => p.x));
    const bounds = xs.length ? { min: Math.min(...xs), max: Math.max(...xs) } : {};
    return { type: "linear", ...bounds, ticks: { maxTicksLimit: 7, callback: (v) => format(v) } };
  }

  function tooltipTime(format) {
    return { callbacks: { title: (items) => (items.length ? format(items[0].parsed.x) : "") } };
  }

  /** Draw, or redraw in place when the canvas already holds a chart of the same type. */
  function draw(canvas, config) {
    const chart = Chart.getChart(canvas);
    if (chart && chart.config.type === config.type) {
      chart.data = config.data;
      chart.options = config.options || {};
      chart.update("none");
    } else {
      if (chart) chart.destroy();
      new Chart(canvas, config); // eslint-disable-line no-new
    }
    const n = config.data.datasets.reduce((sum, d) => sum + d.data.length, 0);
    canvas.dataset.points = String(n);
    return n;
  }

  /** Equity curves (left axis) and, for one curve, its drawdown as a shaded area (right). */
  function equity(canvas, series, { drawdown = series.length === 1 } = {}) {
    const datasets = series.map((s, i) => ({
      label: s.label, data: points(ms(s.curve.timestamps), s.curve.equity), parsing: false,
      borderColor: color(i), backgroundColor: color(i), borderWidth: 1.5, pointRadius: 0,
      yAxisID: "y" }));
    if (drawdown && series.length) {
      const c = series[0].curve;
      datasets.push({ label: "drawdown", data: points(ms(c.timestamps), c.drawdown),
        parsing: false, borderColor: BAD, backgroundColor: "rgba(192,57,43,.18)", fill: true,
        borderWidth: 1, pointRadius: 0, yAxisID: "dd" });
    }
    const scales = { x: timeAxis(day, datasets),
                     y: { title: { display: true, text: "equity" } } };
    if (drawdown) {
      scales.dd = { position: "right", max: 0, grid: { drawOnChartArea: false },
                    ticks: { callback: pct }, title: { display: true, text: "drawdown" } };
    }
    return draw(canvas, { type: "line", data: { datasets }, options: {
      scales, interaction: { mode: "nearest", axis: "x", intersect: false },
      plugins: { tooltip: tooltipTime(day) } } });
  }

  /** Walk-forward folds: Sharpe (bars, left) and information coefficient (bars, right). */
  function folds(canvas, list) {
    const labels = list.map((f) => `fold ${f.fold + 1}: ${f.test_start.slice(0, 10)}…` +
                                   `${f.test_end.slice(0, 10)}`);
    const bar = (metric, i, axis) => ({ label: metric, yAxisID: axis, backgroundColor: color(i),
      data: list.map((f) => f.metrics[metric] ?? null) });
    return draw(canvas, { type: "bar", data: { labels, datasets: [bar("sharpe", 0, "y"),
      bar("ic", 1, "ic")] }, options: { scales: {
        y: { title: { display: true, text: "sharpe" } },
        ic: { position: "right", grid: { drawOnChartArea: false },
              title: { display: true, text: "ic" } } } } });
  }

  /** Metrics of several versions side by side. Scales differ (sharpe ~1, rmse ~0.01), so
   * each metric is drawn relative to its largest magnitude; tooltips give the raw value. */
  function metricBars(canvas, refs, metrics) {
    const labels = metrics.map((m) => m.name);
    const datasets = refs.map((ref, i) => ({
      label: ref, backgroundColor: color(i),
      data: metrics.map((m) => {
        const top = Math.max(...m.values.map((v) => Math.abs(v ?? 0))) || 1;
        return m.values[i] === null ? null : m.values[i] / top;
      }),
      raw: metrics.map((m) => m.values[i]) }));
    return draw(canvas, { type: "bar", data: { labels, datasets }, options: {
      scales: { y: { min: -1, max: 1, title: { display: true,
                                                text: "relative to the largest |value|" } } },
      plugins: { tooltip: { callbacks: { label: (item) =>
        `${item.dataset.label}: ${Number(item.dataset.raw[item.dataIndex]).toPrecision(4)}` } } },
    } });
  }

  /** A parameter against the metric, one dot per trial; the best trial in green. */
  function scatter(canvas, parameter, metric, trials, bestId) {
    const data = trials.map((t) => ({ x: Number(t.params[parameter]), y: t.metrics[metric],
                                      id: t.task_id }));
    return draw(canvas, { type: "scatter", data: { datasets: [{ label: `${metric} by ${parameter}`,
      data, pointRadius: 4, pointBackgroundColor: data.map((p) => (p.id === bestId ? GOOD :
        color(0))) }] }, options: { scales: {
        x: { type: data.every((p) => p.x > 0) && Math.max(...data.map((p) => p.x)) /
             Math.min(...data.map((p) => p.x)) >= 100 ? "logarithmic" : "linear",
             title: { display: true, text: parameter } },
        y: { title: { display: true, text: metric } } },
      plugins: { legend: { display: false } } } });
  }

  /** The metric of each trial in the order they finished, with the best so far. Trials of a
   * sweep finish seconds apart, then hours apart between sweeps: the axis is their order. */
  function trend(canvas, metric, trials, higherIsBetter) {
    const ordered = [...trials].sort((a, b) => a.at - b.at);
    const xs = ordered.map((_, i) => i + 1);
    const ys = ordered.map((t) => t.metrics[metric]);
    let best = null;
    const running = ys.map((v) => {
      if (v !== undefined && (best === null || (higherIsBetter ? v > best : v < best))) best = v;
      return best;
    });
    const when = (i) => `trial ${i}, ${new Date(ordered[i - 1].at * 1000).toLocaleString()}`;
    return draw(canvas, { type: "line", data: { datasets: [
      { label: metric, data: points(xs, ys), parsing: false, borderColor: color(0),
        backgroundColor: color(0), showLine: false, pointRadius: 3 },
      { label: "best so far", data: points(xs, running), parsing: false, borderColor: GOOD,
        backgroundColor: GOOD, stepped: true, pointRadius: 0, borderWidth: 1.5 }] },
      options: { scales: { x: { type: "linear", min: 1, max: Math.max(2, xs.length),
                                ticks: { precision: 0 },
                                title: { display: true, text: "trial, in the order finished" } },
                           y: { title: { display: true, text: metric } } },
                 plugins: { tooltip: tooltipTime(when) } } });
  }

  /** Queue depth and running tasks at the end of each bucket (lines). */
  function queueDepth(canvas, activity) {
    const xs = activity.buckets.map((b) => (b.start + activity.bucket_s) * 1000);
    const line = (key, label, c) => ({ label, data: points(xs, activity.buckets.map((b) => b[key])),
      parsing: false, borderColor: c, backgroundColor: c, pointRadius: 0, borderWidth: 1.5,
      stepped: true });
    const datasets = [line("queued", "queued", color(3)), line("running", "running", color(0))];
    return draw(canvas, { type: "line", data: { datasets }, options: { scales: {
        x: timeAxis(minute, datasets),
        y: { beginAtZero: true, ticks: { precision: 0 } } },
      plugins: { tooltip: tooltipTime(minute) } } });
  }

  /** Tasks finished per bucket, stacked by outcome. */
  function throughput(canvas, activity) {
    const labels = activity.buckets.map((b) => minute(b.start * 1000));
    const bars = (key, c) => ({ label: key, backgroundColor: c,
                                data: activity.buckets.map((b) => b[key]) });
    return draw(canvas, { type: "bar", data: { labels, datasets: [bars("succeeded", GOOD),
      bars("failed", BAD), bars("cancelled", MUTED)] }, options: { scales: {
        x: { stacked: true, ticks: { maxTicksLimit: 7 } },
        y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } } });
  }

  /** A live strategy's P&L (left) and drawdown (right, shaded) at each bar seen. */
  function pnl(canvas, history) {
    const xs = history.map((p) => p.at);
    const datasets = [
      { label: "P&L", data: points(xs, history.map((p) => p.pnl)), parsing: false,
        borderColor: color(0), backgroundColor: color(0), pointRadius: history.length > 1 ? 0 : 3,
        borderWidth: 1.5, yAxisID: "y" },
      { label: "drawdown", data: points(xs, history.map((p) => p.drawdown)), parsing: false,
        borderColor: BAD, backgroundColor: "rgba(192,57,43,.18)", fill: true, borderWidth: 1,
        pointRadius: history.length > 1 ? 0 : 3, yAxisID: "dd" }];
    return draw(canvas, { type: "line", data: { datasets }, options: { scales: {
      x: timeAxis(day, datasets), y: { title: { display: true, text: "P&L" } },
      dd: { position: "right", max: 0, grid: { drawOnChartArea: false },
            ticks: { callback: pct } } }, plugins: { tooltip: tooltipTime(day) } } });
  }

  /** Positions of a live strategy: market value by symbol, long above zero, short below. */
  function positions(canvas, list) {
    const values = list.map((p) => p.market_value);
    return draw(canvas, { type: "bar", data: { labels: list.map((p) => p.symbol), datasets: [{
      label: "market value", data: values,
      backgroundColor: values.map((v) => (v >= 0 ? GOOD : BAD)) }] },
      options: { plugins: { legend: { display: false } } } });
  }

  /** Every chart on the page: its canvas id, the points it holds and whether it drew any
   * pixel (what the browser test asserts: no empty canvas). */
  function inventory() {
    return [...document.querySelectorAll("canvas")].filter((c) => c.offsetParent !== null)
      .map((c) => {
        const ctx = c.getContext("2d");
        const pixels = ctx.getImageData(0, 0, c.width, c.height).data;
        let inked = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) inked++;
        return { id: c.id, chart: !!Chart.getChart(c), points: Number(c.dataset.points || 0),
                 inked };
      });
  }

  window.qoCharts = { equity, folds, metricBars, scatter, trend, queueDepth, throughput, pnl,
                      positions, inventory, color };
})();
