// Upload page: drag and drop of files or folders, a list of what will be sent, and an upload progress bar.
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = document.getElementById("id_files");
  const dropzone = document.getElementById("dropzone");
  const list = document.getElementById("file-list");
  const folderMode = document.getElementById("folder-mode");
  const progress = document.getElementById("upload-progress");
  const errorBox = document.getElementById("upload-error");
  const button = document.getElementById("upload-button");
  let files = []; // [{file, path}]

  function human(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1048576) return (bytes / 1024).toFixed(0) + " KB";
    return (bytes / 1048576).toFixed(1) + " MB";
  }

  function render() {
    list.textContent = "";
    files.slice(0, 200).forEach(({ file, path }) => {
      const li = document.createElement("li");
      li.textContent = path + " (" + human(file.size) + ")";
      list.appendChild(li);
    });
    if (files.length > 200) {
      const li = document.createElement("li");
      li.textContent = "… and " + (files.length - 200) + " more";
      list.appendChild(li);
    }
    button.textContent = files.length ? "Upload " + files.length + " file(s)" : "Upload";
  }

  function addFiles(fileList) {
    Array.from(fileList).forEach((file) => files.push({ file, path: file.webkitRelativePath || file.name }));
    render();
  }

  async function walk(entry, prefix) {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      files.push({ file, path: prefix + file.name });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      let batch;
      do {
        batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        for (const child of batch) await walk(child, prefix + entry.name + "/");
      } while (batch.length);
    }
  }

  input.addEventListener("change", () => { files = []; addFiles(input.files); });
  folderMode.addEventListener("change", () => {
    if (folderMode.checked) input.setAttribute("webkitdirectory", ""); else input.removeAttribute("webkitdirectory");
  });
  dropzone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  ["dragenter", "dragover"].forEach((t) => dropzone.addEventListener(t, (e) => { e.preventDefault(); dropzone.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => dropzone.addEventListener(t, () => dropzone.classList.remove("over")));
  dropzone.addEventListener("drop", async (e) => {
    e.preventDefault();
    const items = Array.from(e.dataTransfer.items || []).map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
    if (items.length) { for (const entry of items) await walk(entry, ""); render(); }
    else addFiles(e.dataTransfer.files);
  });

  form.addEventListener("submit", (e) => {
    if (!files.length) return; // nothing picked through JS: let the browser post the form as is
    e.preventDefault();
    const data = new FormData();
    form.querySelectorAll("input[type=hidden], select, input[type=text], input[type=date]").forEach((el) => { if (el.name) data.append(el.name, el.value); });
    files.forEach(({ file, path }) => data.append("files", file, path));
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (ev) => {
      if (!ev.lengthComputable) return;
      const pct = Math.round((ev.loaded / ev.total) * 100);
      progress.querySelector(".bar").style.width = pct + "%";
      progress.querySelector(".label").textContent = pct < 100 ? "Uploading " + pct + "%" : "Processing…";
    });
    xhr.addEventListener("load", () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = { error: "The server answered " + xhr.status + "." }; }
      if (xhr.status >= 200 && xhr.status < 300 && body.redirect) { window.location.assign(body.redirect); return; }
      errorBox.textContent = body.error || "Upload failed (" + xhr.status + ").";
      errorBox.hidden = false; button.disabled = false; progress.hidden = true;
    });
    xhr.addEventListener("error", () => {
      errorBox.textContent = "The upload was interrupted. Check the connection and try again.";
      errorBox.hidden = false; button.disabled = false; progress.hidden = true;
    });
    errorBox.hidden = true; progress.hidden = false; button.disabled = true;
    xhr.send(data);
  });
})();
