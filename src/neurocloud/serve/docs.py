"""Interactive API documentation as one self-contained HTML page (no CDN, works offline):
it reads ``/openapi.json``, lists every operation and sends requests from the browser.
"""

from __future__ import annotations

__all__ = ["DOCS_HTML"]

DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>neurocloud inference server</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:980px;padding:1rem;color:#222}
h1{font-size:1.5rem;margin:.2rem 0} h2{font-size:1.1rem;margin:1.6rem 0 .4rem;color:#555}
details{border:1px solid #ddd;border-radius:6px;margin:.35rem 0;background:#fafafa}
summary{cursor:pointer;padding:.45rem .6rem;display:flex;gap:.6rem;align-items:baseline}
.m{font:600 12px monospace;padding:.15rem .45rem;border-radius:4px;color:#fff;min-width:3.2rem;
text-align:center} .get{background:#2f7ed8} .post{background:#2e9d5b}
code,textarea,pre,input,select{font:13px ui-monospace,monospace}
.body{padding:.3rem .8rem .8rem} textarea{width:100%;min-height:6rem;box-sizing:border-box}
pre{background:#1e1e1e;color:#ddd;padding:.6rem;border-radius:4px;overflow:auto;max-height:22rem}
label{display:block;margin:.3rem 0} input{width:18rem} button{margin-top:.4rem;padding:.3rem 1rem}
.s{color:#777;font-size:.9em}
</style></head><body>
<h1 id="title">neurocloud inference server</h1><p id="desc" class="s"></p>
<div id="ops">Loading <code>/openapi.json</code>...</div>
<script>
"use strict";
const el = (tag, attrs = {}, ...kids) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const kid of kids) node.append(kid);
  return node;
};
function exampleOf(media) {
  if (!media) return "";
  const example = media.example;
  if (example !== undefined) return typeof example === "string" ? example : JSON.stringify(example);
  const first = media.examples && Object.values(media.examples)[0];
  return first ? JSON.stringify(first.value) : "";
}
function operation(path, method, op) {
  const box = el("div", {class: "body"});
  box.append(el("p", {text: op.summary || ""}));
  const inputs = {};
  for (const p of op.parameters || []) {
    const input = el("input");
    if (p.schema && p.schema.enum) input.value = p.schema.enum[0];
    if (p.example) input.value = p.example;
    inputs[p.name] = [p, input];
    box.append(el("label", {}, el("code", {text: p.name + " (" + p.in + ")"}), " ", input));
  }
  let area = null, type = null;
  if (op.requestBody) {
    const content = op.requestBody.content;
    type = el("select");
    for (const t of Object.keys(content)) type.append(el("option", {value: t, text: t}));
    area = el("textarea");
    area.value = exampleOf(content[type.value]);
    type.onchange = () => { area.value = exampleOf(content[type.value]); };
    box.append(el("label", {}, "Content-Type ", type), area);
  }
  const out = el("pre", {text: ""});
  const send = el("button", {text: "Send"});
  send.onclick = async () => {
    let url = path;
    const headers = {};
    for (const [name, [p, input]] of Object.entries(inputs)) {
      if (p.in === "path") url = url.replace("{" + name + "}", encodeURIComponent(input.value));
      else if (p.in === "header" && input.value) headers[name] = input.value;
    }
    const init = {method: method.toUpperCase(), headers};
    if (area) { headers["Content-Type"] = type.value; init.body = area.value; }
    out.textContent = "...";
    try {
      const started = performance.now();
      const response = await fetch(url, init);
      const text = await response.text();
      out.textContent = response.status + " " + response.statusText + "  (" +
        Math.round(performance.now() - started) + " ms)\\ncontent-type: " +
        (response.headers.get("content-type") || "") + "\\n\\n" + text;
    } catch (err) { out.textContent = String(err); }
  };
  box.append(send, out);
  const badge = el("span", {class: "m " + method, text: method.toUpperCase()});
  const title = el("summary", {}, badge, el("code", {text: path}),
    el("span", {class: "s", text: op.summary || ""}));
  return el("details", {}, title, box);
}
fetch("/openapi.json").then(r => r.json()).then(doc => {
  document.getElementById("title").textContent = doc.info.title + " " + doc.info.version;
  document.getElementById("desc").textContent = doc.info.description || "";
  const groups = {};
  for (const [path, item] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags || ["Other"])[0];
      (groups[tag] = groups[tag] || []).push(operation(path, method, op));
    }
  const root = document.getElementById("ops");
  root.textContent = "";
  for (const [tag, ops] of Object.entries(groups)) root.append(el("h2", {text: tag}), ...ops);
}).catch(err => {
  document.getElementById("ops").textContent = "Cannot load /openapi.json: " + err;
});
</script></body></html>
"""
