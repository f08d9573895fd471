// The chat widget's panel, running on the portal's origin inside an iframe on an intranet page (templates/widget/
// panel.html). It asks through /widget/ask and reads the same server-sent events as the chat page: sources first,
// then the answer's tokens, then the checked citations. Text from documents and the model reaches the page only
// through textContent and LanternMarkdown (DOM nodes, never innerHTML).
//
// Talking to the host page (static/widget.js) with postMessage, only with the key's allowed origins:
//   panel -> host  lantern:ready (send me the token), lantern:close (Escape or ×), lantern:token-expired
//   host -> panel  lantern:hello {token|null}, lantern:focus (the panel was opened)
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("widget-config").textContent);
  const form = document.getElementById("wp-form");
  const question = document.getElementById("wp-question");
  const askButton = document.getElementById("wp-ask");
  const stopButton = document.getElementById("wp-stop");
  const turns = document.getElementById("wp-turns");
  const who = document.getElementById("wp-who");
  const announce = document.getElementById("wp-announce");
  const inFrame = window.parent !== window;
  const NOT_REACHABLE = "The answer model is not reachable right now; the sources below are what the knowledge base found.";

  let token = null; // a sign-in token from the intranet page, if it gave one
  let hostOrigin = null; // the embedding page's origin, once it has said hello
  let conversationId = null;
  let current = null; // the answer being streamed
  let waitingForToken = null; // resolves when the host sends a fresh token
  let turnCount = 0;
  let signingIn = false;

  // --- the host page ------------------------------------------------------------------------------------------

  function toHost(message) {
    if (inFrame && hostOrigin) window.parent.postMessage(message, hostOrigin);
  }

  window.addEventListener("message", function (event) {
    if (!inFrame || event.source !== window.parent || config.origins.indexOf(event.origin) === -1) return;
    const data = event.data || {};
    if (data.type === "lantern:hello") {
      hostOrigin = event.origin;
      document.getElementById("wp-close").hidden = false;
      const given = typeof data.token === "string" && data.token ? data.token : null;
      if (waitingForToken) {
        if (given) token = given; // without a fresh one, the expired token stays and keeps saying so
        waitingForToken(given);
        waitingForToken = null;
      } else {
        token = given;
        identify();
      }
    } else if (data.type === "lantern:focus") {
      question.focus();
    }
  });

  function close() {
    toHost({ type: "lantern:close" });
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && inFrame) {
      event.preventDefault();
      close();
    }
  });
  document.getElementById("wp-close").addEventListener("click", close);

  // --- who is asking ------------------------------------------------------------------------------------------

  function headers(extra) {
    const result = Object.assign({}, extra);
    if (token) result.Authorization = "Bearer " + token;
    else result["X-CSRFToken"] = config.csrf;
    return result;
  }

  function showProblem(text, offerSignIn) {
    document.getElementById("wp-problem-text").textContent = text;
    document.getElementById("wp-sign-in").hidden = !offerSignIn;
    document.getElementById("wp-problem").hidden = !text;
  }

  async function identify(retried) {
    let body = {};
    let response;
    try {
      response = await fetch(config.me_url, { headers: headers({ Accept: "application/json" }), credentials: "same-origin" });
      body = await response.json();
    } catch (error) {
      showProblem("The portal cannot be reached. Try again in a moment.", false);
      return;
    }
    if (!response.ok) {
      // A page open for longer than its token lives: the host fetches a fresh one from its data-token-url, if any.
      if (body.kind === "token_expired" && token && hostOrigin && !retried && (await freshToken())) return identify(true);
      askButton.disabled = true;
      who.textContent = "";
      showProblem(body.error || "The chat is not available here.", body.kind === "sign_in_required");
      return;
    }
    showProblem("", false);
    who.textContent = body.via === "anonymous" ? "Asking as a guest: public documents only." : "Asking as " + body.name + ".";
    askButton.disabled = Boolean(current);
  }

  // After signing in in a tab of its own, the panel reloads to pick up the session (and its new CSRF token).
  document.getElementById("wp-sign-in").addEventListener("click", function () { signingIn = true; });
  document.addEventListener("visibilitychange", function () {
    if (signingIn && document.visibilityState === "visible") window.location.reload();
  });
  window.addEventListener("focus", function () {
    if (signingIn) window.location.reload();
  });

  // --- rendering ----------------------------------------------------------------------------------------------

  function newTurn(text) {
    turnCount += 1;
    const turn = document.getElementById("wp-turn-template").content.firstElementChild.cloneNode(true);
    turn.dataset.turn = turnCount;
    turn.querySelector(".wp-question").textContent = text;
    turn.querySelector(".wp-answer").setAttribute("aria-busy", "true");
    document.getElementById("wp-empty").hidden = true;
    turns.appendChild(turn);
    turn.scrollIntoView({ block: "start" });
    return turn;
  }

  function sourceId(turn, n) {
    return "source-" + turn.dataset.turn + "-" + n;
  }

  function citationLink(answer, n) {
    const p = answer.passages.get(n);
    if (!p) return null;
    const link = document.createElement("a");
    link.className = "citation";
    link.href = "#" + sourceId(answer.turn, n);
    link.textContent = "[" + n + "]";
    if (answer.unverified.has(n)) {
      link.classList.add("unverified");
      link.title = "not verified against the passage";
    } else {
      link.title = "Source " + n + ": " + (p.title || "");
    }
    return link;
  }

  function renderAnswer(answer) {
    const box = answer.turn.querySelector(".wp-answer");
    box.replaceChildren(window.LanternMarkdown.render(answer.text, { citation: function (n) { return citationLink(answer, n); } }));
  }

  function scheduleRender(answer) {
    if (answer.renderPending) return;
    answer.renderPending = true;
    window.requestAnimationFrame(function () {
      answer.renderPending = false;
      renderAnswer(answer);
    });
  }

  function renderSources(answer, passages) {
    const section = answer.turn.querySelector(".wp-sources");
    const list = section.querySelector(".wp-source-list");
    const template = document.getElementById("wp-source-template").content.firstElementChild;
    list.replaceChildren();
    passages.forEach(function (p) {
      const item = template.cloneNode(true);
      item.id = sourceId(answer.turn, p.n);
      item.querySelector(".wp-source-n").textContent = p.n;
      item.querySelector(".wp-source-title").textContent = p.title || "Untitled document";
      const headings = (p.heading_path || []).filter(function (h, i) { return i > 0 || h !== p.title; });
      const meta = headings.join(" › ");
      item.querySelector(".wp-source-meta").textContent = [meta, p.page ? "page " + p.page : ""].filter(Boolean).join(" · ");
      item.querySelector(".wp-source-text").textContent = (p.text || "").trim();
      list.appendChild(item);
    });
    section.hidden = passages.length === 0;
  }

  function setState(answer, text) {
    answer.turn.querySelector(".wp-state").textContent = text;
  }

  function showNotice(answer, text) {
    const notice = answer.turn.querySelector(".wp-notice");
    notice.textContent = text;
    notice.hidden = false;
  }

  // A citation opens its source in the panel (the passage page would need a portal session).
  turns.addEventListener("click", function (event) {
    const link = event.target.closest("a.citation");
    if (!link) return;
    const target = document.getElementById(link.getAttribute("href").slice(1));
    if (!target) return;
    event.preventDefault();
    const details = target.querySelector("details");
    details.open = true;
    target.scrollIntoView({ block: "nearest" });
    details.querySelector("summary").focus();
  });

  // --- asking -------------------------------------------------------------------------------------------------

  function setBusy(busy) {
    askButton.disabled = busy;
    stopButton.hidden = !busy;
    if (!busy && document.activeElement === stopButton) question.focus();
  }

  function freshToken() {
    return new Promise(function (resolve) {
      waitingForToken = resolve;
      toHost({ type: "lantern:token-expired" });
    });
  }

  function send(text, signal) {
    return fetch(config.ask_url, {
      method: "POST",
      credentials: "same-origin",
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify({ question: text, conversation: conversationId }),
      signal: signal,
    });
  }

  async function ask(text) {
    const answer = {
      turn: newTurn(text), text: "", passages: new Map(), unverified: new Set(),
      controller: new AbortController(), stopped: false, failed: false,
    };
    current = answer;
    setBusy(true);
    setState(answer, "Searching…");
    try {
      let response = await send(text, answer.controller.signal);
      if (response.status === 401 && token && hostOrigin) {
        const body = await response.clone().json().catch(function () { return {}; });
        if (body.kind === "token_expired" && (await freshToken())) response = await send(text, answer.controller.signal);
      }
      if (!response.ok) {
        const body = await response.json().catch(function () { return {}; });
        showNotice(answer, body.error || "The question could not be sent (HTTP " + response.status + ").");
        answer.failed = true;
      } else {
        await window.LanternSSE.read(response.body, function (type, data) { handleEvent(answer, type, data); });
      }
    } catch (error) {
      if (!answer.stopped) {
        showNotice(answer, "The connection was lost before the answer was complete. Please try again.");
        answer.failed = true;
      }
    } finally {
      answer.turn.querySelector(".wp-answer").setAttribute("aria-busy", "false");
      renderAnswer(answer);
      setState(answer, answer.stopped ? "Stopped." : "");
      announce.textContent = answer.failed ? "The answer failed." : answer.stopped ? "Answer stopped." : "Answer ready.";
      current = null;
      setBusy(false);
    }
  }

  function handleEvent(answer, type, data) {
    switch (type) {
      case "start":
        conversationId = data.conversation_id;
        break;
      case "sources":
        (data.passages || []).forEach(function (p) { answer.passages.set(p.n, p); });
        renderSources(answer, data.passages || []);
        setState(answer, "Writing…");
        break;
      case "token":
        answer.text += data.text || "";
        scheduleRender(answer);
        break;
      case "error":
        showNotice(answer, data.kind === "llm_unavailable" ? NOT_REACHABLE : data.message || NOT_REACHABLE);
        answer.failed = true;
        break;
      case "citations":
        answer.text = data.text || "";
        answer.unverified = new Set(data.unverified || []);
        (data.citations || []).forEach(function (c) { if (c.verified === false) answer.unverified.add(c.n); });
        renderAnswer(answer);
        break;
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = question.value.trim();
    if (!text || current || askButton.disabled) return;
    question.value = "";
    ask(text);
  });

  question.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  stopButton.addEventListener("click", function () {
    if (!current) return;
    current.stopped = true;
    current.controller.abort(); // the portal saves what was streamed as a stopped answer
  });

  if (inFrame) {
    // Nothing secret in it, and the host's origin is not known yet; the host answers only if it embedded us.
    window.parent.postMessage({ type: "lantern:ready" }, "*");
  } else {
    identify();
    question.focus();
  }
})();
