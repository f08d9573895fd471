// Live progress on the documents page: poll the status endpoint while anything is still pending.
(function () {
  "use strict";
  const table = document.getElementById("documents");
  const statusUrl = document.getElementById("status-url");
  if (!table || !statusUrl) return;
  const batchBox = document.getElementById("batch");
  const pending = new Set(["queued", "parsing", "chunking", "embedding"]);

  function formatEta(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 60) return "· about " + Math.max(1, Math.round(seconds)) + " s left";
    if (seconds < 3600) return "· about " + Math.round(seconds / 60) + " min left";
    return "· about " + (seconds / 3600).toFixed(1) + " h left";
  }

  function setBar(container, fraction) {
    const bar = container.querySelector(".bar");
    const pct = Math.round(fraction * 100);
    if (bar) bar.style.width = pct + "%";
    const label = container.querySelector(".label");
    if (label) label.textContent = pct + "%";
    container.setAttribute("aria-valuenow", String(pct));
  }

  // Bars are drawn from aria-valuenow: the page's Content-Security-Policy allows no style attributes in the markup.
  document.querySelectorAll('.progress[aria-valuenow]').forEach((container) => {
    setBar(container, Number(container.getAttribute("aria-valuenow")) / 100);
  });

  function updateRow(doc) {
    const row = table.querySelector('tr[data-id="' + doc.id + '"]');
    if (!row) return;
    const wasPending = pending.has(row.dataset.status);
    row.dataset.status = doc.status;
    const badge = row.querySelector('[data-field="status"]');
    badge.textContent = doc.status_label;
    badge.className = "badge " + doc.status;
    const progress = row.querySelector(".progress");
    progress.hidden = !pending.has(doc.status);
    setBar(progress, doc.progress);
    const error = row.querySelector('[data-field="error"]');
    error.textContent = doc.error;
    error.hidden = !doc.error;
    row.querySelector('[data-field="chunks"]').textContent = doc.chunks;
    // A document that just failed needs its Retry button: the server renders it.
    if (wasPending && doc.status === "failed") needsReload = true;
  }

  let needsReload = false;

  function pendingIds() {
    return Array.from(table.querySelectorAll("tr[data-id]"))
      .filter((row) => pending.has(row.dataset.status))
      .map((row) => row.dataset.id);
  }

  async function poll() {
    const ids = pendingIds();
    const batchId = batchBox ? batchBox.dataset.batch : "";
    if (!ids.length && !batchId) return;
    const url = statusUrl.dataset.url + "?ids=" + ids.join(",") + (batchId ? "&batch=" + batchId : "");
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const data = await response.json();
      data.documents.forEach(updateRow);
      if (data.batch && batchBox) {
        setBar(batchBox.querySelector(".progress"), data.batch.fraction);
        ["indexed", "failed", "pending"].forEach((f) => (batchBox.querySelector('[data-field="' + f + '"]').textContent = data.batch[f]));
        batchBox.querySelector('[data-field="eta"]').textContent = data.batch.done ? "· done" : formatEta(data.batch.eta_seconds);
      }
      if (needsReload && !pendingIds().length) { window.location.reload(); return; }
      if (pendingIds().length || (data.batch && !data.batch.done)) setTimeout(poll, 1500);
    } catch (err) {
      setTimeout(poll, 5000); // the portal may be restarting; keep trying, more slowly
    }
  }

  document.querySelectorAll("form.confirm").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  poll();
})();
