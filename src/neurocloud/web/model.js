// The model page: a client of the server's public routes (card, infer, explain).
"use strict";
const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
const MODEL = parts[1], VERSION_IN_URL = parts[3] || null;
let info = null;      // the card route's answer
let base = "";        // /v2/models/{m}/versions/{v}

function lastActivation(arch) {
  const layers = (arch && arch.layers) || [];
  for (let i = layers.length - 1; i >= 0; i--) {
    const c = layers[i].config || {};
    if (layers[i].class_name === "Dense") return c.activation || "identity";
    if (layers[i].class_name === "Activation") return c.name || c.activation;
  }
  return "identity";
}

function isClassifier() {
  const act = lastActivation(info.architecture);
  return !!info.output_names || act === "softmax" || act === "sigmoid" || info.card.task === "classification";
}

function featureNames() {
  const width = info.inputs[0].shape[1];
  return info.feature_names || Array.from({length: width}, (_, i) => width === 1 ? info.inputs[0].name : `${info.inputs[0].name}${i}`);
}

function drawArchitecture(arch) {
  const box = document.getElementById("architecture");
  const dims = [arch.input_dim], labels = [`input ${arch.input_dim}`];
  const table = el("table", {"aria-label": "Layers"}, el("thead", {}, el("tr", {},
    el("th", {text: "#"}), el("th", {text: "layer"}), el("th", {text: "units"}), el("th", {text: "activation"}))));
  const tbody = el("tbody");
  arch.layers.forEach((layer, i) => {
    const c = layer.config || {};
    let units = dims[dims.length - 1];
    if (layer.class_name === "Dense") {
      units = c.units;
      dims.push(units);
      labels.push(`${units} ${c.activation || "identity"}`);
    }
    tbody.append(el("tr", {class: "layer"}, el("td", {text: String(i)}), el("td", {text: layer.class_name}),
      el("td", {class: "num", text: String(units)}),
      el("td", {text: c.activation || c.name || (layer.class_name === "Dropout" ? `rate ${c.rate}` : "–")})));
  });
  table.append(tbody);
  // Layers as columns of units (no weights here: the page shows the shape, the playground the weights).
  const kernels = dims.slice(1).map((d, l) => Array.from({length: dims[l]}, () => Array(d).fill(0.3)));
  box.replaceChildren(networkGraph(dims, kernels, {labels, height: 200, label: "architecture: layers and units"}), table);
}

function drawCard() {
  const c = info.card, arch = info.architecture;
  document.getElementById("title").textContent = `${info.name}, version ${info.version}`;
  document.title = `${info.name} v${info.version}: neurocloud`;
  const rows = [
    ["name", info.name], ["version", `${info.version} of ${info.versions.join(", ")}`],
    ["inputs", `${info.inputs[0].name}: ${info.inputs[0].datatype} [${info.inputs[0].shape}]`],
    ["outputs", `${info.outputs[0].name}: ${info.outputs[0].datatype} [${info.outputs[0].shape}]`],
    ["parameters", c.parameters], ["dtype", arch && arch.dtype], ["data set", c.dataset || c.data],
    ["created", c.created], ["library", `${c.library || "neurocloud"} ${c.library_version || ""}`],
  ];
  const skip = new Set(["name", "parameters", "created", "library", "library_version", "history", "curves", "dataset", "data", "metrics"]);
  const metrics = {...(c.metrics || {})};
  for (const [k, v] of Object.entries(c)) if (!skip.has(k) && (typeof v !== "object" || v === null)) metrics[k] = v;
  for (const [k, v] of Object.entries(metrics)) rows.push([k, typeof v === "number" ? fmt(v) : String(v)]);
  const h = c.history;
  if (h && typeof h === "object") {
    rows.push(["epochs", h.epochs]);
    for (const [k, v] of Object.entries(h)) if (v && typeof v === "object" && "last" in v)
      rows.push([`${k} (first → last, best)`, `${fmt(v.first)} → ${fmt(v.last)}, ${fmt(v.best)}`]);
  }
  const tbody = document.querySelector("#card tbody");
  tbody.replaceChildren(...rows.filter(r => r[1] !== undefined && r[1] !== null && r[1] !== "")
    .map(([k, v]) => el("tr", {}, el("th", {scope: "row", text: k}), el("td", {text: String(v)}))));
  if (arch) drawArchitecture(arch);
  // Full curves: card["curves"] (the playground writes it), or lists in card["history"].
  const curves = {...c.curves};
  if (!c.curves && h && typeof h === "object") for (const [k, v] of Object.entries(h)) if (Array.isArray(v)) curves[k] = v;
  const series = Object.entries(curves).filter(([, v]) => Array.isArray(v) && v.length)
    .map(([name, values], i) => ({name, values, color: PALETTE[i]}));
  if (series.length) {
    document.getElementById("curves").replaceChildren(lineChart(series, {x0: 1, xlabel: "epoch", logY: series.every(s => s.values.every(v => v > 0)), label: "training curves"}));
  }
}

function buildFields() {
  const box = document.getElementById("fields");
  const names = featureNames();
  if (names.length > 32) {
    document.querySelector("input[value=paste]").checked = true;
    switchMode();
    box.append(el("p", {class: "muted", text: `${names.length} features: paste a row instead.`}));
    document.getElementById("paste-text").value = JSON.stringify([Array(names.length).fill(0)]);
    return;
  }
  names.forEach((name, i) => {
    const id = `feature-${i}`;
    const input = el("input", {type: "text", inputmode: "decimal", id, name, value: "0", "aria-describedby": `${id}-error`, class: "feature"});
    box.append(el("div", {}, el("label", {for: id, text: name}), input, el("span", {id: `${id}-error`, class: "error", "aria-live": "polite"})));
  });
}

function switchMode() {
  const paste = document.querySelector("input[name=mode]:checked").value === "paste";
  document.getElementById("paste").hidden = !paste;
  document.getElementById("fields").hidden = paste;
}

function parseNumber(text) {
  const t = String(text).trim();
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return null;
  return Number(t);
}

// Rows from the fields (one row) or the paste box; throws {field, message}.
function readRows() {
  const width = info.inputs[0].shape[1];
  if (document.querySelector("input[name=mode]:checked").value === "fields") {
    let bad = null;
    const row = [...document.querySelectorAll("#fields input.feature")].map(input => {
      const v = parseNumber(input.value);
      const err = document.getElementById(input.id + "-error");
      if (v === null) {
        err.textContent = `expected a number; received ${JSON.stringify(input.value)}`;
        input.setAttribute("aria-invalid", "true");
        bad = bad || input;
      } else { err.textContent = ""; input.removeAttribute("aria-invalid"); }
      return v;
    });
    if (bad) { bad.focus(); throw {message: "fix the fields marked above"}; }
    return [row];
  }
  const area = document.getElementById("paste-text"), err = document.getElementById("paste-error");
  try {
    const rows = parsePaste(area.value, width);
    err.textContent = ""; area.removeAttribute("aria-invalid");
    return rows;
  } catch (e) {
    err.textContent = e.message; area.setAttribute("aria-invalid", "true"); area.focus();
    throw {message: "fix the rows above"};
  }
}

function parsePaste(text, width) {
  const t = text.trim();
  if (!t) throw new Error(`expected rows of ${width} numbers; received nothing`);
  let rows;
  if (t[0] === "[" || t[0] === "{") {
    let data;
    try { data = JSON.parse(t); } catch (e) { throw new Error(`expected JSON; ${e.message}`); }
    if (!Array.isArray(data)) data = data[info.inputs[0].name] ?? data.instances ?? data.inputs ?? Object.values(data)[0];
    if (!Array.isArray(data)) throw new Error("expected a list of rows in the JSON");
    rows = Array.isArray(data[0]) ? data : (width === 1 ? data.map(v => [v]) : [data]);
  } else {
    const lines = t.split(/\r?\n/).filter(l => l.trim());
    rows = lines.map(l => l.split(/[,;\t]/).map(c => c.trim()));
    if (rows.length > 1 && rows[0].some(c => parseNumber(c) === null)) rows = rows.slice(1);  // a header
    rows = rows.map((r, i) => r.map((c, j) => {
      const v = parseNumber(c);
      if (v === null) throw new Error(`row ${i + 1}, column ${j + 1}: expected a number; received ${JSON.stringify(c)}`);
      return v;
    }));
  }
  rows.forEach((r, i) => {
    if (!Array.isArray(r) || r.length !== width) throw new Error(`row ${i + 1}: expected ${width} numbers; received ${Array.isArray(r) ? r.length : typeof r}`);
    r.forEach((v, j) => { if (typeof v !== "number" || !Number.isFinite(v)) throw new Error(`row ${i + 1}, column ${j + 1}: expected a number; received ${JSON.stringify(v)}`); });
  });
  if (rows.length > 256) throw new Error(`expected at most 256 rows on this page; received ${rows.length}`);
  return rows;
}

function inferBody(rows, extra = {}) {
  const input = info.inputs[0];
  return {inputs: [{name: input.name, shape: [rows.length, input.shape[1]], datatype: input.datatype, data: rows}], ...extra};
}

function outputOf(answer, name) { return answer.outputs.find(o => o.name === name); }

function showPrediction(rows, out) {
  const width = out.shape[1], values = out.data.flat(Infinity);
  const box = document.getElementById("prediction");
  box.replaceChildren();
  const names = info.output_names || Array.from({length: width}, (_, i) => width === 1 ? info.outputs[0].name : `${info.outputs[0].name}${i}`);
  for (let r = 0; r < rows.length; r++) {
    const row = values.slice(r * width, (r + 1) * width);
    const head = el("p", {class: "prediction-row", "data-values": JSON.stringify(row)},
      el("strong", {text: rows.length > 1 ? `row ${r + 1}: ` : ""}), `${names.map((n, i) => `${n} = ${fmt(row[i], 6)}`).join(", ")}`);
    box.append(head);
    if (isClassifier() && r < 8) {
      const items = width === 1 ? [{label: `P(${names[0]} = 1)`, value: row[0]}] : row.map((v, i) => ({label: names[i], value: v}));
      box.append(barChart(items, {max: 1, label: `class probabilities, row ${r + 1}`}));
    }
  }
}

function showAttributions(answer, method) {
  const attr = outputOf(answer, "attributions"), target = outputOf(answer, "target");
  const width = attr.shape[attr.shape.length - 1], first = attr.data.flat(Infinity).slice(0, width);
  document.getElementById("attr-method").textContent = `(${method}, first row, output ${target ? target.data[0] : 0})`;
  const names = featureNames();
  const box = document.getElementById("attributions");
  const side = Math.round(Math.sqrt(width));
  if (width === 64 && side * side === width) {
    box.replaceChildren(heatMap(first, side, {label: "attributions as an 8x8 heat map"}));
  } else {
    box.replaceChildren(barChart(first.map((v, i) => ({label: names[i], value: v})), {label: "attributions"}));
  }
}

function showCode(rows, method) {
  const origin = location.origin, input = info.inputs[0];
  const body = JSON.stringify(inferBody(rows));
  const explainBody = JSON.stringify(inferBody(rows, {parameters: {method}}));
  document.getElementById("code-curl").textContent =
    `curl -s -X POST ${origin}${base}/infer -H 'Content-Type: application/json' \\\n  -d '${body}'\n` +
    `curl -s -X POST ${origin}${base}/explain -H 'Content-Type: application/json' \\\n  -d '${explainBody}'`;
  document.getElementById("code-predictor").textContent =
    `from neurocloud.serve import Predictor\n` +
    `Predictor("${origin}", model="${info.name}/${info.version}").predict({"${input.name}": ${JSON.stringify(rows)}})`;
  const dtype = {FP32: "float32", FP64: "float64"}[input.datatype] || "float32";
  document.getElementById("code-triton").textContent =
    `import numpy as np\nimport tritonclient.http as httpclient\n\n` +
    `client = httpclient.InferenceServerClient("${location.host}")\n` +
    `x = httpclient.InferInput("${input.name}", [${rows.length}, ${input.shape[1]}], "${input.datatype}")\n` +
    `x.set_data_from_numpy(np.array(${JSON.stringify(rows)}, dtype=np.${dtype}))\n` +
    `result = client.infer("${info.name}", [x], model_version="${info.version}")\n` +
    `print(result.as_numpy("${info.outputs[0].name}"))`;
}

async function submit(event) {
  event.preventDefault();
  const formError = document.getElementById("form-error");
  formError.textContent = "";
  let rows;
  try { rows = readRows(); } catch (e) { formError.textContent = e.message; return; }
  const method = document.getElementById("method").value;
  const button = document.getElementById("predict");
  button.disabled = true;
  try {
    const post = (route, body) => fetch(base + route,
      {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    const response = await post("/infer", inferBody(rows));
    if (!response.ok) { formError.textContent = `the server says: ${await apiError(response)}`; return; }
    showPrediction(rows, outputOf(await response.json(), info.outputs[0].name));
    showCode(rows, method);
    const explained = await post("/explain", inferBody(rows.slice(0, 16), {parameters: {method}}));
    if (!explained.ok) { formError.textContent = `explain: ${await apiError(explained)}`; return; }
    showAttributions(await explained.json(), method);
    document.getElementById("try").dataset.done = String(Number(document.getElementById("try").dataset.done || 0) + 1);
  } finally { button.disabled = false; }
}

(async () => {
  {
    const link = document.getElementById("playground-link");
    link.href = `${location.protocol}//${location.hostname}:8090/`;
  }
  const path = `/models/${encodeURIComponent(MODEL)}` + (VERSION_IN_URL ? `/versions/${encodeURIComponent(VERSION_IN_URL)}` : "");
  const response = await fetch(`${path}/card`);
  if (!response.ok) { document.getElementById("load-error").textContent = await apiError(response); return; }
  info = await response.json();
  base = `/v2/models/${encodeURIComponent(info.name)}/versions/${encodeURIComponent(info.version)}`;
  drawCard();
  buildFields();
  for (const radio of document.querySelectorAll("input[name=mode]")) radio.addEventListener("change", switchMode);
  document.getElementById("paste-file").addEventListener("change", async e => {
    const file = e.target.files[0];
    if (!file) return;
    if (file.size > 1 << 20) { document.getElementById("paste-error").textContent = `expected a file up to 1 MiB; received ${file.size} bytes`; return; }
    document.getElementById("paste-text").value = await file.text();
  });
  document.getElementById("try").addEventListener("submit", submit);
  document.body.dataset.ready = "1";
})();
