// A small, safe markdown renderer for answers: paragraphs, headings, bold, italic, inline code, code blocks, lists,
// links (http, https and relative only) and [n] citation markers.
//
// It builds DOM nodes with createElement and textContent and never assigns text to innerHTML, so HTML or script
// in a document or in the model's output is shown as text and never runs.
//
//   LanternMarkdown.render(text, { citation: (n) => Node | null }) -> DocumentFragment
//
// `citation` turns a marker [n] into a node (a link to passage n); null leaves the marker as text.
(function () {
  "use strict";

  const FENCE = /^\s{0,3}(`{3,}|~{3,})(.*)$/;
  const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  const LIST_ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
  const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;

  function el(tag, text) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- links ---------------------------------------------------------------------------------------------------

  // The URL to use, or null when it is not http(s) once resolved (javascript:, data:, vbscript:, … in any disguise:
  // the URL parser strips the tabs and newlines a browser would, so "java\tscript:" is caught too).
  function safeUrl(raw) {
    let url;
    try {
      url = new URL(raw, document.baseURI);
    } catch (error) {
      return null;
    }
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  }

  // --- inline --------------------------------------------------------------------------------------------------

  const INLINE_RULES = [
    { name: "escape", re: /\\([\\`*_[\]()#+\-.!>~|])/y },
    { name: "code", re: /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/y },
    { name: "strong", re: /\*\*(?=\S)([\s\S]*?\S)\*\*/y },
    { name: "strong", re: /__(?=\S)([\s\S]*?\S)__(?!\w)/y, wordStart: true },
    { name: "em", re: /\*(?=[^\s*])([\s\S]*?[^\s*])\*(?!\*)/y },
    { name: "em", re: /_(?=[^\s_])([\s\S]*?[^\s_])_(?!\w)/y, wordStart: true },
    { name: "link", re: /\[([^\]\n]+)\]\(\s*<?([^\s<>()]+)>?(?:\s+"[^"\n]*")?\s*\)/y },
    // [1]  [1, 2]  [Passage 3]: the forms chat/citations.py recognises
    { name: "citation", re: /\[(?:passages?\s*)?(\d{1,3}(?:\s*,\s*\d{1,3})*)\](?!\()/iy },
  ];
  const SPECIAL = /[\\`*_[]/;

  function inline(text, parent, options, depth) {
    let plain = "";
    const flush = function () {
      if (plain) parent.appendChild(document.createTextNode(plain));
      plain = "";
    };
    let i = 0;
    while (i < text.length) {
      const ch = text[i];
      let matched = null;
      if (SPECIAL.test(ch) && depth < 8) {
        for (const rule of INLINE_RULES) {
          if (rule.wordStart && i > 0 && /\w/.test(text[i - 1])) continue; // snake_case stays as it is
          if (rule.name === "link" && options.inLink) continue;
          rule.re.lastIndex = i;
          const m = rule.re.exec(text);
          if (m) {
            matched = { rule: rule, m: m };
            break;
          }
        }
      }
      if (!matched) {
        plain += ch;
        i += 1;
        continue;
      }
      const m = matched.m;
      switch (matched.rule.name) {
        case "escape":
          plain += m[1];
          break;
        case "code":
          flush();
          parent.appendChild(el("code", m[2].replace(/^ (.*) $/, "$1")));
          break;
        case "strong":
        case "em": {
          flush();
          const node = el(matched.rule.name);
          inline(m[1], node, options, depth + 1);
          parent.appendChild(node);
          break;
        }
        case "link": {
          const href = safeUrl(m[2]);
          flush();
          const node = href ? el("a") : el("span");
          if (href) {
            node.href = href;
            node.rel = "noopener noreferrer nofollow";
          }
          inline(m[1], node, Object.assign({}, options, { inLink: true }), depth + 1);
          parent.appendChild(node);
          break;
        }
        case "citation": {
          const numbers = m[1].split(",").map(function (s) { return parseInt(s.trim(), 10); });
          const nodes = numbers.map(function (n) { return options.citation && !options.inLink ? options.citation(n) : null; });
          if (nodes.some(function (node) { return !node; })) {
            plain += m[0]; // a marker to no passage stays as the text it was
            break;
          }
          flush();
          nodes.forEach(function (node) { parent.appendChild(node); });
          break;
        }
      }
      i += m[0].length;
    }
    flush();
  }

  // --- blocks --------------------------------------------------------------------------------------------------

  function paragraph(lines, parent, options) {
    const p = el("p");
    lines.forEach(function (line, index) {
      if (index) p.appendChild(el("br")); // a chat answer's single newlines are meant as line breaks
      inline(line.trim(), p, options, 0);
    });
    parent.appendChild(p);
  }

  function codeBlock(lines, start, parent) {
    const open = FENCE.exec(lines[start]);
    const fence = open[1];
    const body = [];
    let i = start + 1;
    while (i < lines.length) {
      const close = /^\s{0,3}(`{3,}|~{3,})\s*$/.exec(lines[i]);
      if (close && close[1][0] === fence[0] && close[1].length >= fence.length) {
        i += 1;
        break;
      }
      body.push(lines[i]);
      i += 1;
    }
    const pre = el("pre");
    pre.appendChild(el("code", body.join("\n"))); // an unclosed fence (still streaming) shows what came so far
    parent.appendChild(pre);
    return i;
  }

  // Lists nest by indentation; a line indented under an item without a marker continues that item.
  function list(lines, start, parent, options) {
    const stack = []; // [{indent, list, item}]
    let i = start;
    for (; i < lines.length; i += 1) {
      const line = lines[i];
      if (!line.trim()) {
        const next = lines[i + 1];
        if (next !== undefined && (LIST_ITEM.test(next) || /^\s{2,}\S/.test(next))) continue;
        break;
      }
      const m = LIST_ITEM.exec(line);
      if (!m) {
        // An indented line continues the item above; anything else ends the list.
        if (!/^\s/.test(line) || !stack.length || FENCE.test(line)) break;
        const item = stack[stack.length - 1].item;
        item.appendChild(el("br"));
        inline(line.trim(), item, options, 0);
        continue;
      }
      const indent = m[1].replace(/\t/g, "    ").length;
      const ordered = /\d/.test(m[2]);
      while (stack.length && indent < stack[stack.length - 1].indent) stack.pop();
      let top = stack[stack.length - 1];
      if (top && indent === top.indent && top.ordered !== ordered) {
        stack.pop(); // "1." after "-" at the same depth starts a list of the other kind
        top = stack[stack.length - 1];
      }
      if (!top || indent > top.indent) {
        const node = el(ordered ? "ol" : "ul");
        if (ordered && parseInt(m[2], 10) !== 1) node.start = parseInt(m[2], 10);
        (top ? top.item : parent).appendChild(node);
        top = { indent: indent, ordered: ordered, list: node, item: null };
        stack.push(top);
      }
      const item = el("li");
      inline(m[3], item, options, 0);
      top.list.appendChild(item);
      top.item = item;
    }
    return i;
  }

  function render(text, options) {
    options = options || {};
    const fragment = document.createDocumentFragment();
    const lines = String(text || "").replace(/\r\n?/g, "\n").split("\n");
    let para = [];
    const endParagraph = function () {
      if (para.length) paragraph(para, fragment, options);
      para = [];
    };
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      if (!line.trim()) {
        endParagraph();
        i += 1;
      } else if (FENCE.test(line)) {
        endParagraph();
        i = codeBlock(lines, i, fragment);
      } else if (HEADING.test(line)) {
        endParagraph();
        const m = HEADING.exec(line);
        // Answer headings sit below the page's own: # becomes h3, ## h4, and so on.
        const heading = el("h" + Math.min(6, m[1].length + 2));
        inline(m[2], heading, options, 0);
        fragment.appendChild(heading);
        i += 1;
      } else if (RULE.test(line) && !para.length) {
        fragment.appendChild(el("hr"));
        i += 1;
      } else if (LIST_ITEM.test(line) && (!para.length || !/^\s/.test(line))) {
        endParagraph();
        i = list(lines, i, fragment, options);
      } else {
        para.push(line);
        i += 1;
      }
    }
    endParagraph();
    return fragment;
  }

  window.LanternMarkdown = { render: render, safeUrl: safeUrl };
})();
