// Lantern's chat widget for intranet pages, served by the portal at /widget.js:
//
//   <script src="https://lantern.example.com/widget.js" data-key="wk_..." async></script>
//
// Optional attributes:
//   data-token="..."      a sign-in token your backend minted for the employee (see README, "Embedding the chat widget")
//   data-token-url="/..."  a URL on your intranet that returns a fresh token (text, or JSON {"token": ...}); asked
//                          when the panel opens and again when a token expires
//   data-label="Ask HR"    the launcher's text (default "Ask Lantern")
//
// It adds a launcher button and a panel. Both live in a shadow root (the page's CSS cannot reach them) and the
// panel itself is an iframe of the portal, so the page's scripts cannot read the conversation. The portal refuses
// pages whose origin the widget key does not list: this script then adds nothing and says why in the console.
(function () {
  "use strict";
  const script = document.currentScript;
  if (!script || window.LanternWidget || window.lanternWidgetLoading) return; // the line pasted twice adds one widget
  window.lanternWidgetLoading = true;
  const portal = new URL(script.src, document.baseURI).origin;
  const key = script.getAttribute("data-key") || "";
  const label = script.getAttribute("data-label") || "Ask Lantern";
  const tokenUrl = script.getAttribute("data-token-url") || "";
  let token = script.getAttribute("data-token") || "";

  const STYLE = [
    ":host { all: initial; }",
    ".launcher { position: fixed; right: 16px; bottom: 16px; z-index: 2147483000; font: 600 15px/1.2 system-ui, sans-serif;",
    "  color: #fff; background: #2456d6; border: 0; border-radius: 999px; padding: 12px 18px; cursor: pointer;",
    "  box-shadow: 0 4px 14px rgba(0,0,0,.25); }",
    ".launcher:focus-visible { outline: 3px solid #7aa2ff; outline-offset: 2px; }",
    ".panel { position: fixed; right: 16px; bottom: 72px; z-index: 2147483000; width: 400px; height: 600px;",
    "  max-width: calc(100vw - 32px); max-height: calc(100vh - 88px); border: 1px solid #dde1e8; border-radius: 10px;",
    "  box-shadow: 0 8px 30px rgba(0,0,0,.3); background: #fff; overflow: hidden; }",
    ".panel[hidden] { display: none; }",
    ".panel iframe { border: 0; width: 100%; height: 100%; display: block; }",
    "@media (max-width: 480px) { .panel { left: 8px; right: 8px; top: 8px; bottom: 68px; width: auto; height: auto;",
    "  max-width: none; max-height: none; } .launcher { right: 8px; bottom: 8px; } }",
  ].join("\n");

  function warn(message) {
    if (window.console) window.console.warn("Lantern widget: " + message);
  }

  if (!key) {
    warn("the script tag needs a data-key attribute.");
    return;
  }

  async function currentToken(refresh) {
    if (!tokenUrl || (token && !refresh)) return token || null;
    try {
      const response = await fetch(tokenUrl, { credentials: "same-origin", headers: { Accept: "application/json, text/plain" } });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const text = (await response.text()).trim();
      token = text[0] === "{" ? JSON.parse(text).token || "" : text;
    } catch (error) {
      warn("could not get a sign-in token from " + tokenUrl + " (" + error.message + ").");
      token = "";
    }
    return token || null;
  }

  function mount(settings) {
    const host = document.createElement("div");
    host.setAttribute("data-lantern-widget", "");
    const root = host.attachShadow({ mode: "open" });
    if (root.adoptedStyleSheets !== undefined && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(STYLE); // not subject to the page's style-src CSP, unlike a <style> element
      root.adoptedStyleSheets = [sheet];
    } else {
      const style = document.createElement("style");
      style.textContent = STYLE;
      root.appendChild(style);
    }

    const launcher = document.createElement("button");
    launcher.type = "button";
    launcher.className = "launcher";
    launcher.textContent = label;
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-haspopup", "dialog");

    const panel = document.createElement("div");
    panel.className = "panel";
    panel.hidden = true;
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", settings.name || "Chat");
    root.appendChild(panel);
    root.appendChild(launcher);
    document.body.appendChild(host);

    let frame = null;
    let ready = false;

    function post(message) {
      if (frame && frame.contentWindow) frame.contentWindow.postMessage(message, portal);
    }

    function focusPanel() {
      frame.focus();
      post({ type: "lantern:focus" });
    }

    function open() {
      if (!frame) {
        frame = document.createElement("iframe");
        frame.title = settings.name || "Chat";
        frame.src = settings.panel_url;
        frame.allow = "clipboard-write";
        panel.appendChild(frame);
      }
      panel.hidden = false;
      launcher.setAttribute("aria-expanded", "true");
      if (ready) focusPanel();
    }

    function close() {
      if (panel.hidden) return;
      panel.hidden = true;
      launcher.setAttribute("aria-expanded", "false");
      launcher.focus();
    }

    launcher.addEventListener("click", function () {
      if (panel.hidden) open();
      else close();
    });

    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && !panel.hidden) close();
    });

    window.addEventListener("message", async function (event) {
      if (!frame || event.source !== frame.contentWindow || event.origin !== portal) return;
      const data = event.data || {};
      if (data.type === "lantern:ready") {
        post({ type: "lantern:hello", token: await currentToken(false) });
        ready = true;
        if (!panel.hidden) focusPanel();
      } else if (data.type === "lantern:close") {
        close();
      } else if (data.type === "lantern:token-expired") {
        post({ type: "lantern:hello", token: tokenUrl ? await currentToken(true) : null });
      }
    });

    window.LanternWidget = { open: open, close: close };
  }

  function start() {
    fetch(portal + "/widget/config?key=" + encodeURIComponent(key), { mode: "cors", credentials: "omit" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(mount)
      .catch(function (error) {
        warn("not added: the portal refused this page (" + location.origin + ") or key " + key + " (" + error.message + ").");
      });
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
