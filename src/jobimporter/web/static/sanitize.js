// Defence in depth for job descriptions: the server already sanitized them, but the page treats them
// as untrusted anyway. The HTML is parsed into an inert <template> (nothing runs or loads), reduced to
// an allowlist of tags and attributes, then shown in a sandboxed iframe that may not run scripts.

const TAGS = new Set([
  "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "div", "dl", "dt", "em",
  "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "s", "small", "span",
  "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
]);
const DROP_WITH_CONTENT = new Set(["script", "style", "template", "iframe", "object", "embed", "noscript", "svg", "math"]);
const ATTRS = new Set(["href", "title", "colspan", "rowspan", "scope"]);

// Untrusted HTML → a safe HTML string (allowlisted tags, no event handlers, http(s)/mailto links only).
export function sanitizeHtml(html) {
  const template = document.createElement("template"); // its content is inert: nothing loads or runs
  template.innerHTML = html;
  clean(template.content);
  return template.innerHTML;
}

function clean(parent) {
  for (const node of [...parent.childNodes]) {
    if (node.nodeType === Node.TEXT_NODE) continue;
    if (node.nodeType !== Node.ELEMENT_NODE) {
      node.remove(); // comments, processing instructions
      continue;
    }
    const tag = node.localName;
    if (DROP_WITH_CONTENT.has(tag)) {
      node.remove();
      continue;
    }
    clean(node);
    if (!TAGS.has(tag)) {
      node.replaceWith(...node.childNodes); // unknown wrapper: keep its text
      continue;
    }
    for (const attr of [...node.attributes]) {
      if (!ATTRS.has(attr.name) || (attr.name === "href" && !safeHref(attr.value))) node.removeAttribute(attr.name);
    }
    if (tag === "a") {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
    }
  }
}

function safeHref(value) {
  return /^(https?:|mailto:)/i.test(value.trim());
}

// An iframe showing the sanitized HTML: no scripts (sandbox without allow-scripts, plus a CSP that
// forbids them), no remote loads, links open in a new tab. Same-origin only so the page can size it.
export function descriptionFrame(html, title) {
  const frame = document.createElement("iframe");
  frame.className = "description";
  frame.title = title;
  frame.setAttribute("sandbox", "allow-same-origin allow-popups allow-popups-to-escape-sandbox");
  frame.setAttribute("referrerpolicy", "no-referrer");
  frame.srcdoc = [
    "<!doctype html><html><head><meta charset=\"utf-8\">",
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'self'; img-src data:\">",
    "<link rel=\"stylesheet\" href=\"/static/description.css\"><base target=\"_blank\">",
    `</head><body>${sanitizeHtml(html)}</body></html>`,
  ].join("");
  frame.addEventListener("load", () => {
    const height = frame.contentDocument?.documentElement.scrollHeight;
    if (height) frame.style.height = `${height + 4}px`;
  });
  return frame;
}
