// The chat page: ask with fetch(), read the answer's server-sent events from the response body (EventSource cannot
// POST), show the sources as soon as they arrive, stream the answer, then link each [n] to its passage.
// Model and document text only ever reach the page through textContent (see markdown.js).
(function () {
  "use strict";
  const form = document.getElementById("ask-form");
  if (!form || !window.LanternMarkdown) return;

  const NOT_REACHABLE = "The answer model is not reachable right now; the passages below are what the knowledge base found.";
  const UNVERIFIED = "not verified against the passage";
  const urls = document.getElementById("chat-urls").dataset;
  const turns = document.getElementById("turns");
  const question = document.getElementById("question");
  const askButton = document.getElementById("ask-button");
  const stopButton = document.getElementById("stop-button");
  const conversationInput = document.getElementById("conversation-id");
  const csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const storedAnswers = JSON.parse(document.getElementById("answers-data").textContent || "{}");
  let current = null; // the answer being streamed

  function urlWithId(template, id) {
    return template.replace("/0/", "/" + encodeURIComponent(id) + "/");
  }

  function postJson(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify(body),
    });
  }

  // --- answer state and rendering -----------------------------------------------------------------------------

  function newState(data) {
    const state = { text: "", passages: new Map(), unverified: new Set(), status: "streaming" };
    if (data) {
      state.text = data.text || "";
      state.status = data.status;
      (data.passages || []).forEach(function (p) { state.passages.set(p.n, p); });
      (data.citations || []).forEach(function (c) { if (c.verified === false) state.unverified.add(c.n); });
    }
    return state;
  }

  // The same link as chat/views.py passage_link: a merged passage is highlighted through its last chunk.
  function passageUrl(p) {
    if (p.link) return p.link;
    let url = p.url || urlWithId(urls.passage, p.chunk_id);
    const ids = p.chunk_ids || [];
    if (ids.length > 1 && url.indexOf("end=") === -1) url += (url.indexOf("?") === -1 ? "?" : "&") + "end=" + ids[ids.length - 1];
    return url.indexOf("#") === -1 ? url + "#passage" : url;
  }

  function citationLink(state, n) {
    const p = state.passages.get(n);
    if (!p) return null;
    const link = document.createElement("a");
    link.className = "citation";
    link.href = passageUrl(p);
    link.textContent = "[" + n + "]";
    if (state.unverified.has(n)) {
      link.classList.add("unverified");
      link.title = UNVERIFIED;
    } else if (p.title) {
      link.title = "Source " + n + ": " + p.title;
    }
    return link;
  }

  function renderAnswer(turn, state) {
    const box = turn.querySelector(".answer-text");
    box.replaceChildren(window.LanternMarkdown.render(state.text, { citation: function (n) { return citationLink(state, n); } }));
  }

  // Tokens can come faster than the page needs to repaint: render at most once per frame.
  function scheduleRender(turn, state) {
    if (state.renderPending) return;
    state.renderPending = true;
    window.requestAnimationFrame(function () {
      state.renderPending = false;
      renderAnswer(turn, state);
    });
  }

  function renderSources(turn, passages) {
    const section = turn.querySelector(".sources");
    const list = section.querySelector(".source-list");
    const template = document.getElementById("source-template").content.firstElementChild;
    list.replaceChildren();
    passages.forEach(function (p) {
      const card = template.cloneNode(true);
      card.dataset.n = p.n;
      card.querySelector(".source-n").textContent = p.n;
      const link = card.querySelector(".source-link");
      link.href = passageUrl(p);
      link.textContent = p.title || "Untitled document";
      card.querySelector(".source-heading").textContent = (p.heading_path || []).join(" › ");
      card.querySelector(".source-page").textContent = p.page ? "page " + p.page : "";
      card.querySelector(".source-snippet").textContent = snippet(p.text || "");
      list.appendChild(card);
    });
    section.querySelector(".no-sources").hidden = passages.length > 0;
    section.hidden = false;
  }

  function snippet(text) {
    const flat = text.replace(/\s+/g, " ").trim();
    return flat.length > 300 ? flat.slice(0, 299).trimEnd() + "…" : flat;
  }

  function setActivity(turn, text) {
    const status = turn.querySelector(".answer-state");
    status.textContent = text;
    status.classList.toggle("busy", Boolean(text));
  }

  function showNotice(turn, text) {
    const notice = turn.querySelector(".answer-notice");
    notice.textContent = text;
    notice.hidden = false;
  }

  function finish(turn, state) {
    const box = turn.querySelector(".answer-text");
    box.setAttribute("aria-busy", "false");
    setActivity(turn, "");
    renderAnswer(turn, state);
    turn.dataset.status = state.status;
    turn.querySelector(".answer-stopped").hidden = state.status !== "stopped";
    const tools = turn.querySelector(".answer-tools");
    tools.hidden = !turn.dataset.messageId;
    tools.querySelector(".copy-button").hidden = !state.text.trim();
  }

  // --- asking ---------------------------------------------------------------------------------------------------

  function newTurn(text) {
    const turn = document.getElementById("turn-template").content.firstElementChild.cloneNode(true);
    turn.querySelector(".question-text").textContent = text;
    turn.querySelector(".answer-text").setAttribute("aria-busy", "true");
    document.getElementById("chat-empty").hidden = true;
    turns.appendChild(turn);
    turn.scrollIntoView({ block: "start", behavior: "smooth" });
    return turn;
  }

  function setBusy(busy) {
    askButton.disabled = busy;
    stopButton.hidden = !busy;
    if (!busy && document.activeElement === stopButton) question.focus();
  }

  async function ask(text) {
    const turn = newTurn(text);
    const state = newState();
    turn.lanternState = state;
    const controller = new AbortController();
    current = { turn: turn, state: state, controller: controller, messageId: null, stopped: false };
    const answer = current;
    setActivity(turn, "Searching…");
    setBusy(true);
    try {
      const response = await fetch(urls.ask, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream", "X-CSRFToken": csrfToken },
        body: JSON.stringify({ question: text, conversation: conversationInput.value || null }),
        signal: controller.signal,
      });
      if (!response.ok) {
        showNotice(turn, await errorText(response));
        state.status = "failed";
      } else {
        await window.LanternSSE.read(response.body, function (type, data) { handleEvent(answer, type, data); });
      }
    } catch (error) {
      if (answer.stopped) {
        state.status = "stopped";
      } else {
        showNotice(turn, "The connection was lost before the answer was complete. Please try again.");
        state.status = "failed";
      }
    } finally {
      if (state.status === "streaming") state.status = answer.stopped ? "stopped" : "complete";
      finish(turn, state);
      current = null;
      setBusy(false);
    }
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      if (body.error) return body.error;
    } catch (error) {
      // not JSON: fall through to the status
    }
    if (response.status === 403) return "Your session has expired. Reload the page and sign in again.";
    return "The question could not be sent (HTTP " + response.status + "). Please try again.";
  }

  function handleEvent(answer, type, data) {
    const turn = answer.turn;
    const state = answer.state;
    switch (type) {
      case "start":
        answer.messageId = data.message_id;
        adoptMessage(turn, data.message_id);
        adoptConversation(data.conversation_id, turn.querySelector(".question-text").textContent);
        break;
      case "sources":
        (data.passages || []).forEach(function (p) { state.passages.set(p.n, p); });
        renderSources(turn, data.passages || []);
        setActivity(turn, "Writing…");
        break;
      case "token":
        state.text += data.text || "";
        scheduleRender(turn, state);
        break;
      case "error":
        showNotice(turn, data.kind === "llm_unavailable" ? NOT_REACHABLE : data.message || NOT_REACHABLE);
        state.status = "failed";
        break;
      case "citations":
        state.text = data.text || "";
        state.unverified = new Set(data.unverified || []);
        (data.citations || []).forEach(function (c) { if (c.verified === false) state.unverified.add(c.n); });
        renderAnswer(turn, state);
        break;
      case "done":
        if (data.status) state.status = data.status;
        break;
    }
  }

  function adoptMessage(turn, messageId) {
    turn.id = "answer-" + messageId;
    turn.dataset.messageId = messageId;
    turn.querySelector("form.feedback").action = urlWithId(urls.feedback, messageId);
    const label = turn.querySelector(".feedback-comment label");
    const comment = turn.querySelector(".feedback-comment textarea");
    comment.id = "comment-" + messageId;
    label.htmlFor = comment.id;
  }

  // A new chat becomes a conversation with its first question: give it its address and a place in the list.
  function adoptConversation(conversationId, title) {
    if (!conversationId || String(conversationInput.value) === String(conversationId)) return;
    conversationInput.value = conversationId;
    const url = urlWithId(urls.conversation, conversationId);
    window.history.pushState({}, "", url);
    const list = document.getElementById("conversation-list");
    const empty = document.getElementById("no-conversations");
    if (empty) empty.remove();
    list.querySelectorAll("[aria-current]").forEach(function (a) { a.removeAttribute("aria-current"); });
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = url;
    link.textContent = title.length > 80 ? title.slice(0, 79) + "…" : title;
    link.setAttribute("aria-current", "page");
    item.appendChild(link);
    list.prepend(item);
    document.getElementById("chat-title").textContent = link.textContent;
  }

  function stopAnswer() {
    if (!current) return;
    current.stopped = true;
    if (current.messageId) postJson(urlWithId(urls.stop, current.messageId), {}).catch(function () {});
    current.controller.abort();
  }

  // --- copy and feedback ----------------------------------------------------------------------------------------

  function answerText(turn) {
    const id = turn.dataset.messageId;
    const state = turn.lanternState;
    return (state && state.text) || (storedAnswers[id] && storedAnswers[id].text) || turn.querySelector(".answer-text").textContent;
  }

  async function copyAnswer(turn, button) {
    const text = answerText(turn);
    let copied = false;
    try {
      await navigator.clipboard.writeText(text);
      copied = true;
    } catch (error) {
      copied = copyWithSelection(text); // the clipboard API needs https (or localhost)
    }
    button.textContent = copied ? "Copied" : "Copy failed";
    window.setTimeout(function () { button.textContent = "Copy"; }, 2000);
  }

  function copyWithSelection(text) {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (error) {
      ok = false;
    }
    area.remove();
    return ok;
  }

  async function sendFeedback(turn, helpful, withComment) {
    const form = turn.querySelector("form.feedback");
    const status = form.querySelector(".feedback-status");
    const comment = form.querySelector(".feedback-comment textarea");
    const body = { helpful: helpful };
    if (withComment) body.comment = comment.value;
    status.textContent = "Saving…";
    try {
      const response = await postJson(urlWithId(urls.feedback, turn.dataset.messageId), body);
      if (!response.ok) throw new Error(await errorText(response));
      const saved = await response.json();
      form.querySelector(".thumb.up").setAttribute("aria-pressed", String(saved.helpful));
      form.querySelector(".thumb.down").setAttribute("aria-pressed", String(!saved.helpful));
      form.querySelector(".comment-send").value = String(saved.helpful);
      const box = form.querySelector(".feedback-comment");
      const opening = box.hidden;
      box.hidden = false;
      status.textContent = withComment ? "Thank you, your comment was saved." : "Thank you. Add a comment if you like.";
      if (opening) comment.focus();
    } catch (error) {
      status.textContent = "Your feedback could not be saved: " + error.message;
    }
  }

  // --- wiring -----------------------------------------------------------------------------------------------------

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = question.value.trim();
    if (!text || current) return;
    question.value = "";
    ask(text);
  });

  question.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  stopButton.addEventListener("click", stopAnswer);

  turns.addEventListener("click", function (event) {
    const turn = event.target.closest(".turn");
    if (!turn || !turn.dataset.messageId) return;
    const copy = event.target.closest(".copy-button");
    if (copy) {
      copyAnswer(turn, copy);
      return;
    }
    const thumb = event.target.closest(".thumb");
    if (thumb) {
      event.preventDefault();
      sendFeedback(turn, thumb.classList.contains("up"), false);
      return;
    }
    const send = event.target.closest(".comment-send");
    if (send) {
      event.preventDefault();
      sendFeedback(turn, send.value === "true", true);
    }
  });

  // Stored answers get the same rendering as streamed ones: markdown, and citations linked to their passages.
  turns.querySelectorAll(".turn[data-message-id]").forEach(function (turn) {
    const data = storedAnswers[turn.dataset.messageId];
    if (!data) return;
    const state = newState(data);
    turn.lanternState = state;
    renderAnswer(turn, state);
    turn.querySelector(".copy-button").hidden = !state.text.trim();
    if (data.status === "failed") showNotice(turn, NOT_REACHABLE);
  });

  const sidebar = document.getElementById("chat-sidebar");
  const toggle = document.getElementById("sidebar-toggle");
  sidebar.classList.add("collapsible");
  toggle.addEventListener("click", function () {
    const open = sidebar.classList.toggle("open");
    toggle.setAttribute("aria-expanded", String(open));
  });

  question.focus();
})();
