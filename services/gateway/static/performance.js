"use strict";
// Pictures of model versions: one version's walk-forward equity with drawdown, its folds and
// its latest backtests (GET /v1/models/{name}/versions/{ref}/performance), and several
// versions side by side (their curves on one chart, their metrics as bars).
(() => {
  const enc = encodeURIComponent;
  const { api, $ } = window.qo;
  const charts = window.qoCharts;

  const performanceOf = (model, version, query) =>
    api(`/v1/models/${enc(model)}/versions/${enc(version)}/performance?${query}`);

  /** Show a chart box with data, or hide it and say why (unless ``quiet``: said already). */
  function box(id, hasData, why, quiet = false) {
    const node = $(id);
    node.hidden = !hasData;
    const note = $(`${id}-note`);
    if (note) note.textContent = hasData || quiet ? "" : why;
    return hasData;
  }

  function summary(p) {
    const m = p.metrics, fmt = (v, d = 2) => (v === undefined ? "–" : Number(v).toFixed(d));
    return `sharpe ${fmt(m.sharpe)} · total return ${fmt((m.total_return ?? NaN) * 100, 1)}% · ` +
      `max drawdown ${fmt((m.max_drawdown ?? NaN) * 100, 1)}% · ${p.folds.length} folds` +
      (p.backtests.length ? ` · ${p.backtests.length} backtest(s)` : "");
  }

  async function showPerformance(model, version) {
    const p = await performanceOf(model, version, "points=400&backtests=5");
    $("#performance").hidden = false;
    $("#performance-ref").textContent = p.ref;
    $("#performance").dataset.ref = p.ref;
    $("#performance-summary").textContent = p.notes.length ? p.notes.join(" ") : summary(p);
    document.querySelectorAll("#versions tbody tr").forEach((tr) =>
      tr.classList.toggle("selected", tr.dataset.version === String(p.version)));
    const said = p.notes.length > 0; // the summary line already says why there is no curve
    if (box("#equity-box", p.curve.equity.length > 0, "no walk-forward curve", said)) {
      charts.equity($("#equity-chart"), [{ label: `${p.ref} walk-forward, out of sample`,
                                           curve: p.curve }]);
    }
    if (box("#folds-box", p.folds.length > 0, "no folds", said)) {
      charts.folds($("#folds-chart"), p.folds);
    }
    const runs = p.backtests.filter((b) => b.curve.equity.length);
    if (box("#backtests-box", runs.length > 0, "no backtest of this version yet")) {
      charts.equity($("#backtests-chart"), runs.map((b) => ({
        label: `backtest ${b.start.slice(0, 10)}…${b.end.slice(0, 10)}`, curve: b.curve })));
    }
  }

  /** Curves and metrics of the compared versions (``cmp``: the /compare reply). */
  async function compareCharts(model, versions, cmp) {
    const perfs = await Promise.all(versions.map((v) =>
      performanceOf(model, v, "points=300&backtests=0").catch(() => null)));
    const curves = perfs.filter((p) => p && p.curve.equity.length)
      .map((p) => ({ label: p.ref, curve: p.curve }));
    $("#compare-charts").hidden = false;
    if (box("#compare-equity-box", curves.length > 0,
            "none of these versions has a walk-forward curve (not trained by train_model)")) {
      charts.equity($("#compare-equity"), curves, { drawdown: false });
    }
    // Metrics with a known direction (sharpe, rmse...): counts such as n_periods say nothing.
    const numeric = cmp.metrics.filter((m) => m.direction !== "unknown" &&
                                              m.values.some((v) => v !== null)).slice(0, 12);
    if (box("#compare-metrics-box", numeric.length > 0, "no metric in common")) {
      charts.metricBars($("#compare-metrics"), cmp.refs, numeric);
    }
  }

  function hide() {
    $("#performance").hidden = true;
    $("#compare-charts").hidden = true;
  }

  window.qoPerformance = { showPerformance, compareCharts, hide };
})();
