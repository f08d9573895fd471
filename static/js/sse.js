// Server-sent events read from a fetch() body, for the chat page and the widget panel (EventSource cannot POST or
// send a header). Blocks are separated by a blank line; "event:" names the type and "data:" lines carry JSON.
//
//   LanternSSE.read(response.body, (type, data) => ...) -> Promise, resolved when the stream ends
//
// A block without data, or whose data is not JSON, is not ours and is skipped.
(function () {
  "use strict";

  async function read(body, onEvent) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true });
      let boundary;
      while ((boundary = buffer.search(/\r?\n\r?\n/)) !== -1) {
        const block = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary).replace(/^\r?\n\r?\n/, "");
        const event = parse(block);
        if (event) onEvent(event.type, event.data);
      }
    }
  }

  function parse(block) {
    let type = "message";
    const data = [];
    block.split(/\r?\n/).forEach(function (line) {
      if (!line || line[0] === ":") return;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value[0] === " ") value = value.slice(1);
      if (field === "event") type = value;
      else if (field === "data") data.push(value);
    });
    if (!data.length) return null;
    try {
      return { type: type, data: JSON.parse(data.join("\n")) };
    } catch (error) {
      return null;
    }
  }

  window.LanternSSE = { read: read };
})();
