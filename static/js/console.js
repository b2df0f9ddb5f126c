// The console's charts (Chart.js, vendored): each <canvas data-chart="kind" data-src="url"> reads its
// JSON from the server; one with data-live="1" reads it again every few seconds until the JSON says the
// job has finished. Canvases that htmx swaps in are picked up after each swap; swapped-out ones are freed.
(function () {
  "use strict";

  const POLL_MS = 2500;
  const RETRY_MS = 5000;
  const COLOURS = ["#2458b3", "#c2410c", "#1f7a3a", "#7c3aed", "#a32020", "#0e7490", "#a16207", "#be185d"];
  const entries = new Map(); // canvas -> {chart, timer}

  const pct = (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%");
  const colour = (i, alpha) => {
    const hex = COLOURS[i % COLOURS.length];
    if (alpha === undefined) return hex;
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
  };
  const rateAxis = {
    min: 0,
    max: 1,
    ticks: { callback: (v) => Math.round(v * 100) + "%" },
  };
  const base = (extra) => ({
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    interaction: { mode: "nearest", intersect: false },
    ...extra,
  });

  function lossChart(data) {
    const names = Object.keys(data.series || {});
    const losses = names.filter((n) => n !== "lr");
    if (!losses.some((n) => data.series[n].length)) {
      const why = data.finished ? "The job logged no loss." : "No steps logged yet: the curve appears as the job trains.";
      return { empty: why };
    }
    const datasets = losses.map((name, i) => ({
      label: name,
      data: data.series[name].map(([x, y]) => ({ x, y })),
      borderColor: colour(i),
      backgroundColor: colour(i),
      pointRadius: data.series[name].length > 60 ? 0 : 2,
      borderWidth: 2,
      yAxisID: "y",
    }));
    if (data.series.lr && data.series.lr.length) {
      datasets.push({
        label: "learning rate",
        data: data.series.lr.map(([x, y]) => ({ x, y })),
        borderColor: "#9aa3ad",
        borderDash: [4, 3],
        pointRadius: 0,
        borderWidth: 1,
        yAxisID: "lr",
      });
    }
    return {
      config: {
        type: "line",
        data: { datasets },
        options: base({
          parsing: false,
          plugins: { title: { display: true, text: `Training loss · job #${data.job} (${data.status})` } },
          scales: {
            x: { type: "linear", title: { display: true, text: "step" }, ticks: { precision: 0 } },
            y: { title: { display: true, text: "loss" } },
            lr: { position: "right", grid: { drawOnChartArea: false }, title: { display: true, text: "lr" } },
          },
        }),
      },
    };
  }

  function winRateChart(data) {
    const rounds = data.rounds || [];
    const rated = rounds.some((r) => r.win_rate !== null);
    const scored = rounds.some((r) => r.accuracy !== null);
    if (!rounds.length) return { empty: "No evaluation yet." };
    if (!rated && !scored) return { empty: "Nothing measured: no judge and no gold labels." };
    const labels = rounds.map((r) => `round ${r.round}`);
    const datasets = [];
    if (rated) {
      datasets.push(
        {
          label: "95% interval",
          data: rounds.map((r) => (r.ci ? r.ci[0] : null)),
          borderWidth: 0,
          pointRadius: 0,
          fill: false,
          backgroundColor: colour(0, 0.15),
        },
        {
          label: "95% interval (high)",
          data: rounds.map((r) => (r.ci ? r.ci[1] : null)),
          borderWidth: 0,
          pointRadius: 0,
          fill: "-1",
          backgroundColor: colour(0, 0.15),
        },
        { label: "win rate", data: rounds.map((r) => r.win_rate), borderColor: colour(0), backgroundColor: colour(0) },
        {
          label: "length-controlled",
          data: rounds.map((r) => r.lc_win_rate),
          borderColor: colour(1),
          backgroundColor: colour(1),
          borderDash: [5, 4],
        },
      );
    }
    if (scored) {
      datasets.push({ label: "accuracy", data: rounds.map((r) => r.accuracy), borderColor: colour(2), backgroundColor: colour(2) });
    }
    return {
      config: {
        type: "line",
        data: { labels, datasets },
        options: base({
          plugins: {
            title: { display: true, text: rated ? "Win rate against the teacher (ties count half)" : "Accuracy" },
            legend: { labels: { usePointStyle: true, filter: (item) => item.text !== "95% interval (high)" } },
            tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${pct(c.parsed.y)}` } },
          },
          scales: { y: rateAxis },
        }),
      },
    };
  }

  function categoryChart(data) {
    const rounds = (data.rounds || []).filter((r) => (r.categories || []).length);
    if (!rounds.length) return { empty: "No per-category figures." };
    const last = rounds[rounds.length - 1];
    const rows = last.categories;
    const byRate = rows.some((c) => c.win_rate !== null);
    const value = (c) => (byRate ? c.win_rate : c.accuracy);
    const datasets = [
      {
        type: "line",
        label: byRate ? "win rate" : "accuracy",
        data: rows.map(value),
        showLine: false,
        pointRadius: 5,
        borderColor: colour(0),
        backgroundColor: colour(0),
      },
    ];
    if (byRate) {
      datasets.push({
        type: "bar",
        label: "95% interval",
        data: rows.map((c) => (c.ci ? [c.ci[0], c.ci[1]] : null)),
        backgroundColor: rows.map((c) => (c.regressed ? "rgba(163, 32, 32, 0.3)" : colour(0, 0.2))),
        borderWidth: 0,
        barPercentage: 0.5,
      });
    }
    return {
      config: {
        type: "bar",
        data: { labels: rows.map((c) => `${c.category} (${c.n})`), datasets },
        options: base({
          plugins: {
            title: { display: true, text: `Per category · round ${last.round}` },
            tooltip: {
              callbacks: {
                label: (c) =>
                  Array.isArray(c.raw) ? `95% interval: ${pct(c.raw[0])} – ${pct(c.raw[1])}` : `${c.dataset.label}: ${pct(c.raw)}`,
              },
            },
          },
          scales: { y: rateAxis },
        }),
      },
    };
  }

  function categoryRoundsChart(data) {
    const names = data.categories || [];
    const indexes = [...new Set((data.rounds || []).map((r) => r.round))].sort((a, b) => a - b);
    if (indexes.length < 2) return { empty: "Per category across rounds: shown once a second round is evaluated." };
    const byRate = names.some((n) => data.by_category[n].some((row) => row.win_rate !== null));
    const datasets = names.map((name, i) => {
      const at = new Map(data.by_category[name].map((row) => [row.round, byRate ? row.win_rate : row.accuracy]));
      return { label: name, data: indexes.map((r) => (at.has(r) ? at.get(r) : null)), borderColor: colour(i), backgroundColor: colour(i) };
    });
    return {
      config: {
        type: "line",
        data: { labels: indexes.map((r) => `round ${r}`), datasets },
        options: base({
          plugins: {
            title: { display: true, text: `${byRate ? "Win rate" : "Accuracy"} per category across rounds` },
            tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${pct(c.parsed.y)}` } },
          },
          scales: { y: rateAxis },
        }),
      },
    };
  }

  const BUILDERS = { loss: lossChart, winrate: winRateChart, categories: categoryChart, "category-rounds": categoryRoundsChart };

  function say(canvas, text) {
    const note = canvas.parentElement && canvas.parentElement.querySelector("[data-chart-state]");
    if (note) {
      note.textContent = text;
      note.hidden = !text;
    }
    canvas.dataset.state = text ? "empty" : "drawn";
  }

  function free(canvas) {
    const entry = entries.get(canvas);
    if (!entry) return;
    clearTimeout(entry.timer);
    if (entry.chart) entry.chart.destroy();
    entries.delete(canvas);
  }

  function draw(canvas, config) {
    const entry = entries.get(canvas);
    canvas.hidden = false;
    if (entry.chart) {
      entry.chart.data = config.data;
      entry.chart.options = config.options;
      entry.chart.update("none");
    } else {
      entry.chart = new window.Chart(canvas, config);
    }
  }

  async function refresh(canvas) {
    const entry = entries.get(canvas);
    if (!entry) return;
    if (!canvas.isConnected) return free(canvas);
    let data;
    try {
      const response = await fetch(canvas.dataset.src, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error(`the server answered ${response.status}`);
      data = await response.json();
    } catch (error) {
      say(canvas, `Could not load the chart's data (${error.message}); trying again.`);
      canvas.dataset.state = "error";
      entry.timer = setTimeout(() => refresh(canvas), RETRY_MS);
      return;
    }
    if (!canvas.isConnected) return free(canvas);
    const built = BUILDERS[canvas.dataset.chart](data);
    if (built.empty) {
      if (entry.chart) {
        entry.chart.destroy();
        entry.chart = null;
      }
      canvas.hidden = true;
      say(canvas, built.empty);
    } else {
      say(canvas, "");
      draw(canvas, built.config);
      canvas.dataset.points = String(
        built.config.data.datasets.reduce((sum, d) => sum + d.data.filter((v) => v !== null).length, 0),
      );
    }
    if (canvas.dataset.live === "1" && data.finished === false) {
      entry.timer = setTimeout(() => refresh(canvas), POLL_MS);
    }
  }

  function start() {
    for (const canvas of [...entries.keys()]) if (!canvas.isConnected) free(canvas);
    if (!window.Chart) {
      document.querySelectorAll("canvas[data-chart]").forEach((c) => say(c, "The chart library did not load; the tables hold every figure."));
      return;
    }
    document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
      if (entries.has(canvas) || !BUILDERS[canvas.dataset.chart]) return;
      entries.set(canvas, { chart: null, timer: null });
      refresh(canvas);
    });
  }

  document.addEventListener("htmx:afterSettle", start);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
