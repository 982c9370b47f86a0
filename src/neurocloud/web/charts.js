// Hand-written SVG drawing shared by the model page and the playground (no library).
"use strict";
const NS = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, ...kids) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v);
  }
  for (const kid of kids) node.append(kid);
  return node;
}

function svg(tag, attrs = {}, ...kids) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const kid of kids) node.append(kid);
  return node;
}

function fmt(v, digits = 4) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(digits - 1);
  return Number(v.toPrecision(digits)).toString();
}

function niceRange(lo, hi) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (lo === hi) { const d = Math.abs(lo) * 0.1 || 1; return [lo - d, hi + d]; }
  return [lo, hi];
}

// A line chart: series = [{name, values (y per index) or points [[x, y]], color, dash}].
function lineChart(series, opts = {}) {
  const W = opts.width || 460, H = opts.height || 220, L = 54, R = 18, T = 10, B = 30;
  const logY = !!opts.logY;
  const pts = series.map(s => (s.points || s.values.map((y, i) => [i + (opts.x0 || 0), y]))
    .filter(p => Number.isFinite(p[1]) && (!logY || p[1] > 0)));
  const all = pts.flat();
  const ty = y => (logY ? Math.log10(y) : y);
  let [x0, x1] = niceRange(Math.min(...all.map(p => p[0])), Math.max(...all.map(p => p[0])));
  let [y0, y1] = niceRange(Math.min(...all.map(p => ty(p[1]))), Math.max(...all.map(p => ty(p[1]))));
  if (opts.xRange) [x0, x1] = opts.xRange;
  if (opts.yRange) [y0, y1] = opts.yRange.map(ty);
  const sx = x => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = y => T + (1 - (ty(y) - y0) / (y1 - y0)) * (H - T - B);
  const root = svg("svg", {viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label || "chart"});
  root.append(svg("rect", {x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fbfcfd", stroke: "#d5dbe1"}));
  for (let i = 0; i <= 4; i++) {
    const yv = y0 + (i / 4) * (y1 - y0), py = T + (1 - i / 4) * (H - T - B);
    root.append(svg("line", {x1: L, x2: W - R, y1: py, y2: py, stroke: "#eceff2"}));
    root.append(svg("text", {x: L - 4, y: py + 4, "text-anchor": "end", text: fmt(logY ? 10 ** yv : yv, 3)}));
    const xv = x0 + (i / 4) * (x1 - x0), px = L + (i / 4) * (W - L - R);
    root.append(svg("text", {x: px, y: H - B + 14, "text-anchor": "middle", text: fmt(xv, 3)}));
  }
  if (opts.xlabel) root.append(svg("text", {x: (L + W - R) / 2, y: H - 3, "text-anchor": "middle", text: opts.xlabel}));
  if (opts.shade) {
    const [a, b] = opts.shade;
    root.append(svg("rect", {x: sx(a), y: T, width: Math.max(0, sx(b) - sx(a)), height: H - T - B, fill: "#e8f0fb"}));
  }
  series.forEach((s, k) => {
    const p = pts[k];
    if (!p.length) return;
    if (s.dots) {
      for (const [x, y] of p) root.append(svg("circle", {cx: sx(x), cy: sy(y), r: 4, fill: s.color || "#333"}));
    } else {
      const d = p.map(([x, y], i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join("");
      root.append(svg("path", {d, fill: "none", stroke: s.color || "#333", "stroke-width": 2,
        "stroke-dasharray": s.dash || "", class: "series", "data-name": s.name}));
    }
  });
  let lx = L + 8;
  for (const s of series) {
    root.append(svg("rect", {x: lx, y: T + 6, width: 10, height: 10, fill: s.color || "#333"}));
    root.append(svg("text", {x: lx + 14, y: T + 15, text: s.name}));
    lx += 20 + 7 * s.name.length;
  }
  return root;
}

// Horizontal bars: items = [{label, value}]; signed bars grow from the middle.
function barChart(items, opts = {}) {
  const box = el("div", {class: "bars", role: "list", "aria-label": opts.label || "bars"});
  const signed = items.some(i => i.value < 0);
  const scale = Math.max(1e-12, ...items.map(i => Math.abs(i.value)), opts.max || 0);
  for (const item of items) {
    const track = el("div", {class: "bar-track"});
    const frac = Math.abs(item.value) / scale;
    const bar = el("div", {class: "bar " + (item.value < 0 ? "neg" : "pos")});
    if (signed) {
      track.append(el("div", {class: "bar-mid"}));
      bar.style.width = (50 * frac) + "%";
      bar.style.left = item.value < 0 ? (50 - 50 * frac) + "%" : "50%";
    } else {
      bar.style.width = (100 * frac) + "%";
      bar.style.left = "0";
    }
    track.append(bar);
    const row = [el("span", {text: item.label}), track, el("span", {class: "num", text: fmt(item.value)})];
    const wrap = el("div", {role: "listitem", class: "bar-item", "data-value": String(item.value),
      "aria-label": `${item.label}: ${fmt(item.value)}`, style: "display:contents"}, ...row);
    box.append(wrap);
  }
  return box;
}

// An 8x8 (or n x n) heat map of signed values.
function heatMap(values, side, opts = {}) {
  const cell = opts.cell || 22, scale = Math.max(1e-12, ...values.map(Math.abs));
  const root = svg("svg", {viewBox: `0 0 ${side * cell} ${side * cell}`, width: side * cell,
    role: "img", "aria-label": opts.label || "heat map"});
  values.forEach((v, i) => {
    const a = Math.min(1, Math.abs(v) / scale);
    const color = v >= 0 ? `rgba(31,111,178,${a})` : `rgba(196,69,45,${a})`;
    root.append(svg("rect", {x: (i % side) * cell, y: Math.floor(i / side) * cell, width: cell, height: cell,
      fill: color, stroke: "#eee", class: "heat-cell"}));
  });
  return root;
}

// The network as a graph: dims = units per layer (input first), kernels[l][i][j] = weight
// from unit i of layer l to unit j of layer l+1; edges' width and colour follow the weight.
function networkGraph(dims, kernels, opts = {}) {
  const shown = dims.map(d => Math.min(d, 12));
  const W = opts.width || 460, H = opts.height || 240, pad = 24;
  const colX = i => pad + (i / Math.max(1, dims.length - 1)) * (W - 2 * pad);
  const rowY = (n, j) => (H / (n + 1)) * (j + 1);
  const root = svg("svg", {viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label || "network graph"});
  let wmax = 1e-12;
  for (const k of kernels) for (const r of k) for (const w of r) wmax = Math.max(wmax, Math.abs(w));
  kernels.forEach((k, l) => {
    for (let i = 0; i < shown[l]; i++) for (let j = 0; j < shown[l + 1]; j++) {
      const w = k[i][j];
      root.append(svg("line", {x1: colX(l), y1: rowY(shown[l], i), x2: colX(l + 1), y2: rowY(shown[l + 1], j),
        stroke: w >= 0 ? "#1f6fb2" : "#c4452d", "stroke-width": (0.4 + 4 * Math.abs(w) / wmax).toFixed(2),
        "stroke-opacity": 0.75, class: "edge"}, svg("title", {text: `w[${l}][${i}→${j}] = ${fmt(w)}`})));
    }
  });
  dims.forEach((d, l) => {
    for (let j = 0; j < shown[l]; j++) {
      root.append(svg("circle", {cx: colX(l), cy: rowY(shown[l], j), r: 8, fill: "#fff", stroke: "#333", class: "unit"}));
    }
    const label = (opts.labels && opts.labels[l]) || String(d);
    const anchor = l === 0 ? "start" : l === dims.length - 1 ? "end" : "middle";
    const x = l === 0 ? 2 : l === dims.length - 1 ? W - 2 : colX(l);
    root.append(svg("text", {x, y: H - 4, "text-anchor": anchor, text: label + (d > shown[l] ? " (12 shown)" : "")}));
  });
  return root;
}

// A 2-D decision surface: grid.values[r][c] in [0, 1] (or a class index with grid.classes),
// over grid.x (columns) and grid.y (rows), with the data points on top.
const PALETTE = ["#1f6fb2", "#c4452d", "#2e9d5b", "#8e5cc4", "#d18f00", "#3a9fb0", "#b0486b", "#6b7a1f"];
function boundaryChart(grid, points, opts = {}) {
  const W = opts.width || 400, H = opts.height || 400;
  const [x0, x1] = [grid.x[0], grid.x[grid.x.length - 1]];
  const [y0, y1] = [grid.y[0], grid.y[grid.y.length - 1]];
  const sx = x => ((x - x0) / (x1 - x0)) * W, sy = y => (1 - (y - y0) / (y1 - y0)) * H;
  const cw = W / grid.x.length + 0.5, ch = H / grid.y.length + 0.5;
  const root = svg("svg", {viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label || "decision boundary"});
  grid.values.forEach((row, r) => row.forEach((v, c) => {
    let fill;
    if (grid.classes > 2) fill = PALETTE[v % PALETTE.length];
    else fill = v >= 0.5 ? PALETTE[1] : PALETTE[0];
    const a = grid.classes > 2 ? 0.35 : Math.min(0.6, Math.abs(v - 0.5) * 1.2);
    root.append(svg("rect", {x: sx(grid.x[c]) - cw / 2, y: sy(grid.y[r]) - ch / 2, width: cw, height: ch,
      fill, "fill-opacity": a.toFixed(3)}));
  }));
  root.append(svg("g", {class: "grid-cells", "data-count": String(grid.x.length * grid.y.length)}));
  for (const [x, y, label] of points) {
    root.append(svg("circle", {cx: sx(x), cy: sy(y), r: 3.2, fill: PALETTE[label % PALETTE.length],
      stroke: "#fff", "stroke-width": 0.8, class: "point"}));
  }
  return root;
}

// The error a JSON API answer carries, as text.
async function apiError(response) {
  try {
    const body = await response.json();
    return body.error || body.message || JSON.stringify(body);
  } catch (e) {
    return `${response.status} ${response.statusText}`;
  }
}
