// The playground page: one session per tab, views streamed over Server-Sent Events.
"use strict";
const ACTIVATIONS = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu", "identity"];
const FIELDS = ["data", "target", "points", "noise", "validation", "layers", "initializer", "loss",
  "optimizer", "lr", "batch_size", "epochs", "l2", "dropout", "seed"];
let session = null, data = null, presets = null, stream = null, csvText = "";
const $ = id => document.getElementById(id);

async function api(method, path, body) {
  const init = {method, headers: {}};
  if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  const response = await fetch(path, init);
  if (!response.ok) {
    let error = {error: `${response.status} ${response.statusText}`, field: ""};
    try { error = await response.json(); } catch (e) { /* not JSON */ }
    throw error;
  }
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

function clearErrors() {
  for (const node of document.querySelectorAll(".error")) node.textContent = "";
  for (const node of document.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

// A server error goes beside the field it names, else to the given fallback.
function showError(error, fallback = "status-error") {
  const field = error.field && $(`${error.field}-error`) ? error.field : null;
  const target = field ? $(`${field}-error`) : $(fallback);
  target.textContent = error.error || String(error);
  if (field && $(field)) { $(field).setAttribute("aria-invalid", "true"); }
}

function activationSelects(count, values) {
  const box = $("activation-box");
  const old = [...box.querySelectorAll("select")].map(s => s.value);
  box.replaceChildren();
  for (let i = 0; i < count; i++) {
    const id = `activation-${i}`;
    const select = el("select", {id, "aria-describedby": "activations-error"});
    for (const a of ACTIVATIONS) select.append(el("option", {value: a, text: a}));
    select.value = (values && values[i]) || old[i] || old[old.length - 1] || "sigmoid";
    box.append(el("label", {for: id, class: "inline", text: `Activation, hidden layer ${i + 1} `}), select);
  }
}

function fillForm(settings) {
  for (const name of FIELDS) if ($(name)) $(name).value = Array.isArray(settings[name]) ? settings[name].join(",") : settings[name];
  $("standardize").checked = settings.standardize;
  activationSelects(settings.layers.length, settings.activations);
  $("upload-box").hidden = settings.data !== "upload";
}

// The server checks every setting too; checking here first keeps a typo off the network.
const NUMBERS = {points: [10, 2000, true], noise: [0, 2], validation: [0, 0.5], lr: [0, 10, false, true],
  batch_size: [0, 100000, true], epochs: [1, 20000, true], l2: [0, 10], dropout: [0, 0.9], seed: [0, 2147483647, true]};
function checkForm(body) {
  const errors = {};
  for (const [name, [low, high, integer, openLow]] of Object.entries(NUMBERS)) {
    const text = String(body[name]).trim(), v = Number(text);
    const ok = text !== "" && Number.isFinite(v) && v <= high && (openLow ? v > low : v >= low) && (!integer || Number.isInteger(v));
    if (!ok) errors[name] = `${name}: expected ${integer ? "an integer" : "a number"} ${openLow ? "> " + low : `in [${low}, ${high}]`}; received ${JSON.stringify(body[name])}`;
  }
  const units = String(body.layers).split(",").map(v => v.trim()).filter(v => v);
  if (units.length > 6 || units.some(u => !/^\d+$/.test(u) || Number(u) < 1 || Number(u) > 64))
    errors.layers = `layers: expected up to 6 comma-separated unit counts in [1, 64]; received ${JSON.stringify(body.layers)}`;
  if (body.data === "upload" && !body.csv) errors.csv = "csv: expected a CSV file for data 'upload'; received none";
  for (const [name, message] of Object.entries(errors)) {
    $(`${name}-error`).textContent = message;
    if ($(name)) $(name).setAttribute("aria-invalid", "true");
  }
  return Object.keys(errors).length === 0;
}

function readForm() {
  const body = {};
  for (const name of FIELDS) body[name] = $(name).value;
  body.standardize = $("standardize").checked;
  body.activations = [...$("activation-box").querySelectorAll("select")].map(s => s.value);
  if (body.data === "upload") body.csv = csvText;
  return body;
}

function setState(state) {
  session = state.id ? state : {...session, ...state};
  data = state.data || data;
  fillForm(state.settings);
  $("explain-x").value = Array(data.features).fill(data.features === 1 ? "4.5" : "0").join(",");
  draw(state.view);
  openStream();
}

function openStream() {
  if (stream) stream.close();
  stream = new EventSource(`/api/sessions/${session.id}/events`);
  stream.onmessage = event => draw(JSON.parse(event.data));
  stream.onerror = () => {
    if (stream.readyState === EventSource.CLOSED) $("status-error").textContent = "The live view stopped: this session has ended; reload the page.";
  };
}

function status(view) {
  const parts = [`epoch ${view.epoch} of ${view.epochs}`, `batch ${view.batch} of ${view.batches_per_epoch}`, `${view.steps} steps`, view.state];
  if (view.last_loss !== null) parts.push(`loss ${fmt(view.last_loss, 5)}`);
  if (view.accuracy !== undefined) parts.push(`accuracy ${fmt(view.accuracy, 3)}`);
  const node = $("status");
  node.textContent = parts.join(" · ");
  node.dataset.epoch = view.epoch; node.dataset.state = view.state; node.dataset.steps = view.steps;
  node.dataset.loss = JSON.stringify(view.loss.map(p => p[1]));
  $("train").disabled = view.state === "running" || view.state === "diverged" || view.epoch >= view.epochs;
  if (view.error) $("status-error").textContent = view.error;
  $("pause").disabled = view.state !== "running";
}

function meanNote(view) {
  if (data.name !== "seed" || !view.curve) { $("mean-note").textContent = ""; return; }
  const mean = data.y.reduce((a, b) => a + b, 0) / data.y.length;
  const at = x => { const i = view.curve.x.reduce((b, v, k) => Math.abs(v - x) < Math.abs(view.curve.x[b] - x) ? k : b, 0); return view.curve.y[i]; };
  const spread = Math.max(...data.X.map(r => at(r[0]))) - Math.min(...data.X.map(r => at(r[0])));
  $("mean-note").textContent = `The targets' mean is ${fmt(mean)}; the network's outputs at the four points span ${fmt(spread, 3)}. ` +
    "Mean squared error falls fastest by moving the output bias towards that mean; bending the curve needs the sigmoids' small gradients, " +
    "which gradient descent at lr 0.01 follows too slowly for 1000 epochs, so the fit ends close to a flat line at the mean. Adam scales each step by the gradient's size and fits.";
}

function draw(view) {
  if (!view || !data) return;
  status(view);
  const series = [{name: "training", points: view.loss, color: PALETTE[0]}];
  if (view.val_loss.length) series.push({name: "validation", points: view.val_loss, color: PALETTE[1], dash: "5 3"});
  $("loss-chart").replaceChildren(view.loss.length ? lineChart(series, {xlabel: "epoch", logY: view.loss.every(p => p[1] > 0), label: "loss per epoch"})
    : el("p", {class: "muted", text: "No epoch yet."}));
  if (view.curve) {
    const c = view.curve;
    const pts = data.X.map((r, i) => [r[0], data.y[i]]);
    $("fit-chart").replaceChildren(lineChart([
      {name: "prediction", points: c.x.map((x, i) => [x, c.y[i]]), color: PALETTE[0]},
      {name: "data", points: pts, color: PALETTE[1], dots: true}],
      {xlabel: "x (shaded: where the data are; outside it the network extrapolates)", shade: c.data_range, label: "fitted curve and data"}));
  } else if (view.grid) {
    $("fit-chart").replaceChildren(boundaryChart(view.grid, data.X.map((r, i) => [r[0], r[1], data.y[i]]), {label: "decision boundary and data"}));
  } else {
    $("fit-chart").replaceChildren(el("p", {class: "muted", text: `${data.features} features: the fitted curve is drawn for 1 input, the decision boundary for 2.`}));
  }
  const labels = view.dims.map((d, i) => i === 0 ? `input ${d}` : `${d} ${view.activations[i - 1]}`);
  $("net-chart").replaceChildren(networkGraph(view.dims, view.kernels, {labels, label: "network graph by weight"}));
  meanNote(view);
}

async function act(name) {
  clearErrors();
  const body = name === "train" ? {pace: Number($("pace").value)} : undefined;
  try { draw((await api("POST", `/api/sessions/${session.id}/${name}`, body)).view); } catch (e) { showError(e); }
}

async function applySettings(body) {
  clearErrors();
  if (!checkForm(body)) return;
  document.body.dataset.busy = "1";  // until the new settings are in place
  try {
    if (stream) stream.close();
    setState(await api("PUT", `/api/sessions/${session.id}/settings`, body));
  } catch (e) { showError(e, "settings-error"); openStream(); }
  finally { delete document.body.dataset.busy; }
}

function cell(text, cls) { return el("td", {class: cls || "num", text}); }

async function showBackward() {
  clearErrors();
  let view;
  try { view = await api("GET", `/api/sessions/${session.id}/backward?row=${encodeURIComponent($("row").value)}`); }
  catch (e) { showError(e, "row-error"); return; }
  const box = $("backward");
  const head = el("p", {}, `Row ${view.row}: x = [${view.x.map(v => fmt(v)).join(", ")}], target ${JSON.stringify(view.y)}; ` +
    `${view.loss_name} = ${fmt(view.loss, 6)}. ` + (view.fused ? "The output's δ is the fused loss's gradient with respect to the logits." : "δ = dL/da × f′(z) at every unit."));
  const units = el("table", {id: "units", "aria-label": "Forward values and deltas per unit"},
    el("thead", {}, el("tr", {}, ...["layer", "unit", "activation", "z = a_prev·W + b", "a = f(z)", "dL/da", "f′(z)", "δ = dL/dz"].map(t => el("th", {scope: "col", text: t})))));
  const ub = el("tbody");
  for (const layer of view.layers) layer.z.forEach((z, j) => ub.append(el("tr", {},
    cell(String(layer.layer)), cell(String(j)), cell(layer.activation, ""), cell(fmt(z, 5)), cell(fmt(layer.a[j], 5)),
    cell(layer.dL_da ? fmt(layer.dL_da[j], 5) : "–"), cell(layer.f_prime ? fmt(layer.f_prime[j], 5) : "–"), cell(fmt(layer.delta[j], 5)))));
  units.append(ub);
  const weights = el("table", {id: "weights", "aria-label": "Gradient of every weight"},
    el("thead", {}, el("tr", {}, ...["weight", "w", "chain rule: a_prev × δ", "= dL/dw", "model.backward", `w − lr·grad (lr ${view.lr})`].map(t => el("th", {scope: "col", text: t})))));
  const wb = el("tbody");
  for (const w of view.weights) wb.append(el("tr", {class: "weight-row", "data-name": w.name, "data-grad": String(w.grad), "data-engine": String(w.engine)},
    cell(w.name, ""), cell(fmt(w.w, 6)), cell(`${w.factor === "1" ? "1" : fmt(w.a_prev, 5)} × ${fmt(w.delta, 5)}`), cell(fmt(w.grad, 6)),
    cell(w.engine === null ? "(dropout on)" : fmt(w.engine, 6)), cell(fmt(w.updated, 6))));
  weights.append(wb);
  const more = view.weights_total > view.weights.length ? el("p", {class: "muted", text: `First ${view.weights.length} of ${view.weights_total} weights.`}) : "";
  box.replaceChildren(head, el("div", {class: "scroll"}, units), el("div", {class: "scroll", tabindex: "0"}, weights), more);
}

async function gradcheck() {
  const node = $("gradcheck-verdict");
  node.textContent = "Checking…";
  try {
    const r = await api("POST", `/api/sessions/${session.id}/gradcheck`);
    node.className = r.passed ? "ok" : "bad";
    node.dataset.passed = String(r.passed);
    node.textContent = `${r.verdict} (on ${r.rows} rows of a float64 copy${r.dropout_left_out ? ", dropout left out" : ""})`;
  } catch (e) { node.textContent = ""; showError(e); }
}

function modelName() { return $("model-name").value.trim(); }

async function save(serve) {
  clearErrors();
  $("out-status").textContent = serve ? "Starting neurocloud serve…" : "Saving…";
  try {
    const r = await api("POST", `/api/sessions/${session.id}/${serve ? "serve" : "save"}`, {name: modelName()});
    const out = $("out-status");
    out.replaceChildren(`Saved to ${r.path}.`);
    if (r.url) out.append(" Served: ", el("a", {href: r.url, id: "served-link", target: "_blank", rel: "noopener", text: "open its model page"}));
  } catch (e) { $("out-status").textContent = ""; showError(e, "model-name-error"); }
}

async function showCode() {
  try {
    const text = await api("GET", `/api/sessions/${session.id}/code`);
    $("code").textContent = text; $("code").hidden = false;
  } catch (e) { showError(e); }
}

async function explainPoint() {
  clearErrors();
  const values = $("explain-x").value.split(",").map(v => v.trim());
  const x = values.map(Number);
  if (values.some(v => v === "" || !Number.isFinite(Number(v))) || x.length !== data.features) {
    $("explain-x-error").textContent = `expected ${data.features} comma-separated numbers; received ${JSON.stringify($("explain-x").value)}`;
    $("explain-x").setAttribute("aria-invalid", "true");
    return;
  }
  try {
    const r = await api("POST", `/api/sessions/${session.id}/explain`, {x, method: $("explain-method").value});
    $("explanation").replaceChildren(el("p", {text: `prediction ${fmt(r.prediction[0], 5)} (output ${r.target[0]}), baseline ${fmt(r.base_value[0], 5)}`}),
      barChart(r.attributions[0].map((v, i) => ({label: r.feature_names[i], value: v})), {label: "attributions of the point"}));
  } catch (e) { showError(e, "explain-x-error"); }
}

(async () => {
  presets = await api("GET", "/api/presets");
  try { setState(await api("POST", "/api/sessions", {})); }
  catch (e) { showError(e); return; }
  $("settings").addEventListener("submit", e => { e.preventDefault(); applySettings(readForm()); });
  $("preset-article").addEventListener("click", () => applySettings(presets.article));
  $("preset-fits").addEventListener("click", () => applySettings(presets.fits));
  $("data").addEventListener("change", () => { $("upload-box").hidden = $("data").value !== "upload"; });
  $("layers").addEventListener("input", () => {
    const n = $("layers").value.split(",").filter(v => v.trim()).length;
    if (n <= 6) activationSelects(n);
  });
  $("csv").addEventListener("change", async e => {
    const file = e.target.files[0];
    $("csv-error").textContent = "";
    if (!file) return;
    if (file.size > 1 << 20) { $("csv-error").textContent = `expected a file up to 1 MiB; received ${file.size} bytes`; csvText = ""; return; }
    csvText = await file.text();
  });
  for (const name of ["train", "pause", "step-epoch", "step-batch", "reset"]) $(name).addEventListener("click", () => act(name));
  $("show-backward").addEventListener("click", showBackward);
  $("gradcheck").addEventListener("click", gradcheck);
  $("save").addEventListener("click", () => save(false));
  $("serve").addEventListener("click", () => save(true));
  $("download").addEventListener("click", e => {
    e.preventDefault();
    if (!/^[a-z0-9][a-z0-9_-]{0,39}$/.test(modelName())) {
      $("model-name-error").textContent = `model-name: expected lower-case letters, digits, - or _ (up to 40); received ${JSON.stringify(modelName())}`;
      return;
    }
    location.href = `/api/sessions/${session.id}/download?name=${encodeURIComponent(modelName())}`; });
  $("show-code").addEventListener("click", showCode);
  $("explain").addEventListener("click", explainPoint);
  addEventListener("pagehide", () => fetch(`/api/sessions/${session.id}`, {method: "DELETE", keepalive: true}));
  document.body.dataset.ready = "1";
})();
