"use strict";
// Pictures of a model's trials (GET /v1/trials): the chosen metric of each trial over time with
// the best so far, and each parameter that varied against the metric. A sweep's trials carry
// its task id (``sweep``): the dashboard shows the latest sweep's trials unless told otherwise.
(() => {
  const enc = encodeURIComponent;
  const { api, el, $ } = window.qo;
  const charts = window.qoCharts;
  const MAX_PARAMETERS = 6;
  const state = { reply: null };

  const numeric = (v) => typeof v === "number" && Number.isFinite(v);

  function setOptions(select, values, chosen) {
    const keep = values.includes(chosen) ? chosen : values[0] ?? "";
    select.replaceChildren(...values.map((v) => el("option", { value: v },
      v || "all trials")));
    select.value = keep;
    return keep;
  }

  /** Models that can have trials (evaluation companions are artifacts, not models). */
  function setModels(names, selected) {
    const models = names.filter((n) => !n.endsWith(".evaluation"));
    const current = selected && models.includes(selected) ? selected : $("#trials-group").value;
    setOptions($("#trials-group"), models, current);
  }

  async function load(group) {
    if (group !== undefined) setOptions($("#trials-group"), [...$("#trials-group").options]
      .map((o) => o.value), group);
    const model = $("#trials-group").value;
    if (!model) return;
    const metric = $("#trials-metric").value || "sharpe";
    const reply = await api(`/v1/trials?task_type=train_model&group=${enc(model)}` +
                            `&metric=${enc(metric)}&last=200`);
    state.reply = reply;
    const sweeps = [...new Map(reply.runs.filter((r) => r.sweep)
      .map((r) => [r.sweep, r.at])).entries()].sort((a, b) => b[1] - a[1]).map(([s]) => s);
    setOptions($("#trials-sweep"), [...sweeps, ""], $("#trials-sweep").value || sweeps[0]);
    const metrics = [...new Set(reply.runs.flatMap((r) => Object.keys(r.metrics)))].sort();
    setOptions($("#trials-metric"), metrics.length ? metrics : [metric], metric);
    render();
  }

  function render() {
    const reply = state.reply, sweep = $("#trials-sweep").value, metric = reply.metric;
    const runs = reply.runs.filter((r) => (!sweep || r.sweep === sweep) &&
                                          numeric(r.metrics[metric]));
    $("#trials-card").dataset.runs = String(runs.length);
    $("#trials-summary").textContent = runs.length
      ? `${runs.length} trial(s) of ${reply.group}${sweep ? ` in sweep ${sweep}` : ""}; ` +
        `${metric} ${reply.higher_is_better ? "higher" : "lower"} is better; trend over the ` +
        `model's recent trials: ${reply.trend}`
      : `no trial of ${reply.group} has a ${metric} yet (train_model or sweep tasks make them)`;
    $("#trials-charts").hidden = runs.length === 0;
    if (!runs.length) return;
    charts.trend($("#trials-trend"), metric, runs, reply.higher_is_better);
    const best = runs.reduce((a, b) => ((reply.higher_is_better ? b.metrics[metric] >
      a.metrics[metric] : b.metrics[metric] < a.metrics[metric]) ? b : a));
    const varied = [...new Set(runs.flatMap((r) => Object.keys(r.params)))].filter((p) =>
      runs.every((r) => numeric(r.params[p])) &&
      new Set(runs.map((r) => r.params[p])).size > 1).slice(0, MAX_PARAMETERS);
    $("#trials-params").replaceChildren(...varied.map((p) => el("div", { class: "chart" },
      el("canvas", { id: `trials-param-${p}`, "data-parameter": p }))));
    for (const p of varied) {
      charts.scatter($(`#trials-param-${CSS.escape(p)}`), p, metric, runs, best.task_id);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const id of ["#trials-group", "#trials-metric"]) {
      $(id).addEventListener("change", () => load().catch((e) => {
        $("#trials-summary").textContent = e.message;
      }));
    }
    $("#trials-sweep").addEventListener("change", () => state.reply && render());
  });

  window.qoTrials = { setModels, load };
})();
