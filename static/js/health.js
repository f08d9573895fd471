// Content health charts: drawn with the vendored Chart.js from the numbers the page already lists in tables.
// Without JavaScript (or if Chart.js did not load) the tables stay open and are the whole story.
(function () {
  "use strict";
  const source = document.getElementById("health-chart-data");
  if (!source || typeof window.Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const labels = data.days.map((day) => day.slice(5)); // MM-DD
  const common = {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    plugins: { legend: { position: "bottom" } },
  };

  function draw(name, config) {
    const figure = document.querySelector(`[data-chart="${name}"]`);
    if (!figure) return;
    const box = figure.querySelector(".chart-box");
    box.hidden = false;
    new window.Chart(box.querySelector("canvas"), config);
    figure.querySelector(".chart-table").open = false; // the chart shows it now; the table stays one click away
    figure.dataset.drawn = "true";
  }

  draw("questions", {
    type: "bar",
    data: {
      labels,
      datasets: [
        { label: "Answered", data: data.answered, backgroundColor: "#2f7d4f" },
        { label: "Unanswered", data: data.unanswered, backgroundColor: "#c2410c" },
        {
          label: "Other (model unavailable, stopped)",
          data: data.questions.map((n, i) => Math.max(0, n - data.answered[i] - data.unanswered[i])),
          backgroundColor: "#9ca3af",
        },
      ],
    },
    options: { ...common, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
  });

  draw("helpful", {
    type: "line",
    data: {
      labels,
      datasets: [{ label: "Helpful (% of ratings)", data: data.helpful_percent, borderColor: "#2563eb", backgroundColor: "#2563eb", spanGaps: true }],
    },
    options: { ...common, scales: { y: { min: 0, max: 100, ticks: { callback: (value) => `${value}%` } } } },
  });
})();
