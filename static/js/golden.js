// Golden questions: a live document picker for the new-question form, and the progress of a running run.
(function () {
  "use strict";

  const form = document.getElementById("golden-form");
  if (form) {
    const search = document.getElementById("document-search");
    const results = document.getElementById("document-results");
    const passages = document.getElementById("passage-results");
    const pickerUrl = form.dataset.pickerUrl;
    let timer = null;
    let asked = "";

    async function fragment(params) {
      const response = await fetch(`${pickerUrl}?${new URLSearchParams(params)}`, { headers: { Accept: "text/html" } });
      return response.ok ? response.text() : "";
    }

    async function find() {
      const query = search.value.trim();
      if (query === asked) return;
      asked = query;
      const html = await fragment({ q: query });
      if (query === asked) results.innerHTML = html;
    }

    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(find, 200);
    });
    search.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {  // search, do not submit the form
        event.preventDefault();
        clearTimeout(timer);
        find();
      } else if (event.key === "ArrowDown") {  // into the results
        const first = results.querySelector("input[type=radio]:checked") || results.querySelector("input[type=radio]");
        if (first) { event.preventDefault(); first.focus(); }
      }
    });
    results.addEventListener("change", async (event) => {
      if (event.target.name !== "document") return;
      passages.innerHTML = await fragment({ document: event.target.value });
    });
  }

  const progress = document.querySelector(".golden-progress[data-status-url]");
  if (progress) {
    const bar = progress.querySelector("progress");
    const text = progress.querySelector("[data-run-text]");
    const poll = async () => {
      const response = await fetch(progress.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const run = await response.json();
      bar.max = run.total || 1;
      bar.value = run.completed;
      text.textContent = `Run ${run.id}: ${run.status}, ${run.completed} of ${run.total} questions asked.`;
      if (run.status === "done" || run.status === "failed") {
        window.location.reload();
      } else {
        setTimeout(poll, 1500);
      }
    };
    setTimeout(poll, 1500);
  }
})();
