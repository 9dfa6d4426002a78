// Robustness Playground — the page. Hand-written, no dependencies: it draws what the server streams (every number
// comes from the toolkit's TorchSharp code) and sends what the user changes. The whole setup lives in the URL hash.
"use strict";
window.playgroundErrors = [];
window.addEventListener("error", e => window.playgroundErrors.push(String(e.message) + " @" + e.lineno));

const DEFAULTS = {
  dataset: "circle", regDataset: "plane", problem: "classification", percTrainData: "50", noise: "0", batchSize: "10",
  seed: "1", features: "x1,x2", networkShape: "4,2", learningRate: "0.03", activation: "tanh", regularization: "none",
  regularizationRate: "0", init: "random", optimizer: "minibatch", momentum: "0.9", weightDecay: "0", norm: "linf",
  epsilon: "0.3", attackSteps: "10", attackStepSize: "0.25", objective: "standard", trainSteps: "5", beta: "6", sigma: "0.5",
  compare: "true", showTestData: "false", discretize: "false", showBalls: "false", showAttack: "false", showCertified: "false",
};
const FEATURES = [
  { id: "x1", html: "X<sub>1</sub>", text: "X1" }, { id: "x2", html: "X<sub>2</sub>", text: "X2" },
  { id: "x1sq", html: "X<sub>1</sub><sup>2</sup>", text: "X1²" }, { id: "x2sq", html: "X<sub>2</sub><sup>2</sup>", text: "X2²" },
  { id: "x1x2", html: "X<sub>1</sub>X<sub>2</sub>", text: "X1X2" }, { id: "sinx1", html: "sin(X<sub>1</sub>)", text: "sin(X1)" },
  { id: "sinx2", html: "sin(X<sub>2</sub>)", text: "sin(X2)" },
];
const CLASSIFICATION_SETS = [["circle", "Circle"], ["xor", "Exclusive or"], ["gauss", "Gaussian"], ["spiral", "Spiral"]];
const REGRESSION_SETS = [["plane", "Plane"], ["multigauss", "Multi gaussian"]];
const OBJECTIVE_LABELS = { standard: "Standard", pgd: "PGD-AT", trades: "TRADES", gaussian: "Gaussian noise", "fgsm-rs": "FGSM-RS" };
const EXTENT = 6, MAX_LAYERS = 6, MAX_NEURONS = 8, NODE = 36;

// Colour scale of the TF Playground: orange (−1) → light grey (0) → blue (+1).
const ORANGE = [245, 147, 34], GREY = [232, 234, 235], BLUE = [8, 119, 189];
function colourOf(v) {
  v = Math.max(-1, Math.min(1, v));
  const [a, b, t] = v < 0 ? [GREY, ORANGE, -v] : [GREY, BLUE, v];
  return [0, 1, 2].map(i => Math.round(a[i] + (b[i] - a[i]) * t));
}
const LUT = new Uint8ClampedArray(256 * 3), LUT_DISCRETE = new Uint8ClampedArray(256 * 3);
for (let b = 0; b < 256; b++) {
  const v = b / 127.5 - 1, c = colourOf(v), d = colourOf(v >= 0 ? 1 : -1);
  LUT.set(c, b * 3); LUT_DISCRETE.set(d, b * 3);
}
const css = c => `rgb(${c[0]},${c[1]},${c[2]})`;

// ---------------------------------------------------------------- state and URL
let state = Object.assign({}, DEFAULTS, readHash());
function readHash() {
  const out = {};
  for (const part of location.hash.replace(/^#/, "").split("&")) {
    const i = part.indexOf("=");
    if (i > 0) out[decodeURIComponent(part.slice(0, i))] = decodeURIComponent(part.slice(i + 1));
  }
  for (const k of Object.keys(out)) if (!(k in DEFAULTS)) delete out[k];
  return out;
}
function writeHash() {
  const q = Object.keys(DEFAULTS).map(k => `${k}=${encodeURIComponent(state[k])}`).join("&");
  history.replaceState(null, "", "#" + q);
}
const bool = k => state[k] === "true";
const num = k => parseFloat(state[k]);
const shape = () => state.networkShape === "" ? [] : state.networkShape.split(",").map(Number);
const features = () => state.features.split(",").filter(Boolean);
const isClassification = () => state.problem === "classification";

function change(changes) {
  Object.assign(state, changes);
  writeHash();
  syncControls();
  layoutNetwork();
  draw();
  send({ type: "state", state: changes });
}

// ---------------------------------------------------------------- connection
let socket = null, sessionId = null, connected = false, queue = [];
function connect() {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  setConnection("connecting", "connecting…");
  socket.onopen = () => {
    connected = true;
    setConnection("open", "connected");
    socket.send(JSON.stringify({ type: "state", state }));
    for (const m of queue) socket.send(m);
    queue = [];
  };
  socket.onmessage = ev => {
    if (typeof ev.data === "string") onText(JSON.parse(ev.data));
    else onFrame(ev.data);
  };
  socket.onclose = () => {
    connected = false;
    setConnection("closed", "disconnected");
    if (!fatal) showBanner("The connection to the playground server was lost.");
  };
}
function send(msg) {
  const text = JSON.stringify(msg);
  if (connected && socket.readyState === WebSocket.OPEN) socket.send(text); else queue.push(text);
}
function setConnection(s, text) { const el = $("connection"); el.dataset.state = s; el.textContent = text; }
setInterval(() => { if (connected) send({ type: "ping" }); }, 60000);

let fatal = false;
function onText(m) {
  if (m.type === "welcome") { sessionId = m.session; return; }
  if (m.type === "state") {
    Object.assign(state, m.state);
    writeHash(); syncControls(); layoutNetwork(); draw();
    return;
  }
  if (m.type === "data") {
    data = { generation: m.generation, train: m.train, test: m.test, problem: m.problem };
    draw();
    return;
  }
  if (m.type === "error") {
    if (m.fatal) { fatal = true; showBanner(m.message); }
    else toast(m.message, true);
  }
}

// ---------------------------------------------------------------- frames
let data = { generation: -1, train: [], test: [] };
let frame = null, hist = {}, histGeneration = -1, hoverNode = null;
function onFrame(buf) {
  const dv = new DataView(buf);
  const hlen = dv.getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, hlen)));
  let off = 4 + hlen;
  const G = header.grid, T = header.thumb;
  header.grids = header.networks.map(() => { const g = new Uint8Array(buf, off, G * G); off += G * G; return g; });
  header.thumbs = [];
  for (let i = 0; i < header.thumbCount; i++) { header.thumbs.push(new Uint8Array(buf, off, T * T)); off += T * T; }
  if (header.generation !== histGeneration) { hist = {}; histGeneration = header.generation; }
  for (const n of header.networks) {
    const prev = hist[n.role] || [];
    hist[n.role] = prev.slice(0, n.historyFrom).concat(n.history);
  }
  frame = header;
  scheduleDraw();
}
let drawPending = false;
function scheduleDraw() { if (!drawPending) { drawPending = true; requestAnimationFrame(() => { drawPending = false; draw(); }); } }

// ---------------------------------------------------------------- controls
const $ = id => document.getElementById(id);
const fmt = (v, d = 3) => v == null || !isFinite(v) ? "–" : Number(v).toFixed(d);
const pct = v => v == null || !isFinite(v) ? "–" : (100 * v).toFixed(1) + "%";
const trim = v => String(parseFloat(Number(v).toPrecision(6)));

function syncControls() {
  for (const el of document.querySelectorAll("[data-key]")) {
    const k = el.dataset.key, v = state[k];
    if (el.type === "checkbox") el.checked = v === "true";
    else if (el.tagName === "SELECT") {
      if (![...el.options].some(o => (o.value || o.text) === v)) {
        const o = document.createElement("option"); o.text = v; el.add(o);
      }
      el.value = v;
    } else if (document.activeElement !== el) el.value = v;
    const label = $(k + "Value");
    if (label) label.textContent = labelFor(k, v);
  }
  const obj = state.objective;
  for (const el of document.querySelectorAll("[data-show]")) el.classList.toggle("hidden", !el.dataset.show.split(" ").includes(obj));
  for (const el of document.querySelectorAll("[data-show-opt]")) el.classList.toggle("faded", state.optimizer !== el.dataset.showOpt);
  $("momentum").disabled = state.optimizer !== "momentum";
  $("batchSize").disabled = state.optimizer === "sgd" || state.optimizer === "full";
  $("certToggle").classList.toggle("hidden", !isClassification());
  for (const o of $("objective").options) o.disabled = !isClassification() && (o.value === "trades" || o.value === "fgsm-rs");
  $("lossKind").textContent = isClassification() ? "cross-entropy (logistic) loss" : "squared-error loss";
  $("robustHead").textContent = isClassification() ? "robust acc." : "adv. loss";
  $("cleanHead").textContent = isClassification() ? "clean acc." : "test loss";
  const n = shape().length;
  $("layerCount").textContent = n;
  $("layerWord").textContent = n === 1 ? "hidden layer" : "hidden layers";
  $("addLayer").disabled = n >= MAX_LAYERS;
  $("removeLayer").disabled = n === 0;
  buildDatasets();
}
function labelFor(k, v) {
  if (k === "percTrainData") return v + "%";
  if (k === "epsilon") return Number(v).toFixed(2);
  if (k === "attackStepSize") return Number(v).toFixed(2) + " ε";
  if (k === "sigma" || k === "momentum") return Number(v).toFixed(2);
  if (k === "weightDecay") return Number(v).toFixed(3);
  return v;
}

function bindControls() {
  for (const el of document.querySelectorAll("[data-key]")) {
    const k = el.dataset.key;
    if (el.type === "range") {
      el.addEventListener("input", () => {
        $(k + "Value").textContent = labelFor(k, el.value);
        if (k === "epsilon") { state.epsilon = el.value; draw(); }
      });
      el.addEventListener("change", () => change({ [k]: trim(el.value) }));
    } else if (el.type === "checkbox") el.addEventListener("change", () => change({ [k]: el.checked ? "true" : "false" }));
    else el.addEventListener("change", () => change({ [k]: el.value }));
  }
  $("play").onclick = () => send({ type: frame && frame.playing ? "pause" : "play" });
  $("step").onclick = () => send({ type: "step" });
  $("reset").onclick = () => { send({ type: "reset" }); };
  $("regenerate").onclick = () => change({ seed: String((parseInt(state.seed, 10) + 1) % 2147483647) });
  $("attack").onclick = () => {
    if (!bool("showAttack")) change({ showAttack: "true" });
    send({ type: "attack" });
  };
  $("addLayer").onclick = () => { const s = shape(); if (s.length < MAX_LAYERS) { s.push(2); change({ networkShape: s.join(",") }); } };
  $("removeLayer").onclick = () => { const s = shape(); if (s.length) { s.pop(); change({ networkShape: s.join(",") }); } };
  $("copyLink").onclick = async () => {
    try { await navigator.clipboard.writeText(location.href); toast("Link copied: it reproduces this exact setup."); }
    catch { prompt("Copy this link:", location.href); }
  };
  $("savePng").onclick = savePng;
  $("bannerButton").onclick = () => location.reload();
  window.addEventListener("resize", () => { layoutNetwork(); draw(); });
  window.addEventListener("hashchange", () => {
    const h = readHash(), changes = {};
    for (const k of Object.keys(h)) if (h[k] !== state[k]) changes[k] = h[k];
    if (Object.keys(changes).length) change(changes);
  });
}

// ---------------------------------------------------------------- dataset picker (icons drawn from the generators' shapes)
function rng(seed) { let s = seed >>> 0; return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296); }
function previewPoints(name) {
  const r = rng(7), U = (a, b) => a + (b - a) * r(), pts = [];
  if (name === "circle") for (let i = 0; i < 160; i++) { const inner = i % 2 === 0, rad = inner ? U(0, 2.5) : U(3.5, 5), a = U(0, 2 * Math.PI); pts.push([rad * Math.sin(a), rad * Math.cos(a), inner ? 1 : -1]); }
  if (name === "xor") for (let i = 0; i < 160; i++) { let x = U(-5, 5), y = U(-5, 5); x += x > 0 ? .3 : -.3; y += y > 0 ? .3 : -.3; pts.push([x, y, x * y >= 0 ? 1 : -1]); }
  if (name === "gauss") for (let i = 0; i < 160; i++) { const s = i % 2 ? 1 : -1; pts.push([2 * s + (r() + r() + r() - 1.5) * 1.4, 2 * s + (r() + r() + r() - 1.5) * 1.4, s]); }
  if (name === "spiral") for (let i = 0; i < 80; i++) for (const [d, l] of [[0, 1], [Math.PI, -1]]) { const rad = i / 80 * 5, t = 1.75 * i / 80 * 2 * Math.PI + d; pts.push([rad * Math.sin(t), rad * Math.cos(t), l]); }
  return pts;
}
function drawPreview(canvas, name) {
  const S = 120; canvas.width = S; canvas.height = S;
  const g = canvas.getContext("2d");
  g.fillStyle = "#f4f6f7"; g.fillRect(0, 0, S, S);
  const X = x => (x + EXTENT) / (2 * EXTENT) * S, Y = y => (EXTENT - y) / (2 * EXTENT) * S;
  if (name === "plane" || name === "multigauss") {
    const img = g.createImageData(S, S);
    for (let j = 0; j < S; j++) for (let i = 0; i < S; i++) {
      const x = i / S * 12 - 6, y = 6 - j / S * 12;
      let v;
      if (name === "plane") v = (x + y) / 10;
      else { v = 0; for (const [cx, cy, sg] of [[-4, 2.5, 1], [0, 2.5, -1], [4, 2.5, 1], [-4, -2.5, -1], [0, -2.5, 1], [4, -2.5, -1]]) { const d = Math.hypot(x - cx, y - cy), w = sg * Math.max(0, Math.min(1, 1 - d / 2)); if (Math.abs(w) > Math.abs(v)) v = w; } }
      img.data.set([...colourOf(v), 255], (j * S + i) * 4);
    }
    g.putImageData(img, 0, 0);
    return;
  }
  for (const [x, y, l] of previewPoints(name)) {
    g.beginPath(); g.arc(X(x), Y(y), 3.2, 0, 2 * Math.PI);
    g.fillStyle = css(l > 0 ? BLUE : ORANGE); g.fill();
  }
}
let builtDatasets = "";
function buildDatasets() {
  const sets = isClassification() ? CLASSIFICATION_SETS : REGRESSION_SETS;
  const key = isClassification() ? "dataset" : "regDataset";
  const sig = sets.map(s => s[0]).join();
  const box = $("datasets");
  if (builtDatasets !== sig) {
    box.innerHTML = "";
    box.style.gridTemplateColumns = "repeat(2, 1fr)";
    for (const [id, title] of sets) {
      const c = document.createElement("canvas");
      c.dataset.dataset = id; c.title = title; c.id = "dataset-" + id;
      drawPreview(c, id);
      c.onclick = () => change({ [key]: id });
      box.appendChild(c);
    }
    builtDatasets = sig;
  }
  for (const c of box.children) c.classList.toggle("selected", c.dataset.dataset === state[key]);
}

// ---------------------------------------------------------------- network diagram
let net = { columns: [], nodes: [], links: [] };
function layoutNetwork() {
  const view = $("networkView"), W = view.clientWidth, H = view.clientHeight;
  const layers = shape(), feats = features();
  // Same architecture and size: keep the nodes (and their canvases and hover state).
  if (JSON.stringify([layers, feats, W, H]) === builtNodes) return;
  const top = 58, gap = Math.min(14, Math.max(6, (H - top - 16 - MAX_NEURONS * NODE) / (MAX_NEURONS - 1)));
  const left = 74, right = W - NODE - 24;
  const cols = layers.length + 2;
  const xs = [];
  for (let c = 0; c < cols; c++) xs.push(cols === 1 ? left : left + (right - left) * c / (cols - 1));
  const nodes = [];
  FEATURES.forEach((f, i) => nodes.push({ kind: "feature", id: f.id, on: feats.includes(f.id), x: xs[0], y: top + i * (NODE + gap), col: 0, index: feats.indexOf(f.id) }));
  layers.forEach((n, l) => { for (let j = 0; j < n; j++) nodes.push({ kind: "hidden", layer: l, index: j, x: xs[l + 1], y: top + j * (NODE + gap), col: l + 1 }); });
  nodes.push({ kind: "output", layer: layers.length, index: 0, x: xs[cols - 1], y: top, col: cols - 1 });
  net = { columns: xs, nodes, top, gap, W, H, layers, feats };
  buildNodeElements();
}
function colNodes(col) {
  return net.nodes.filter(n => n.col === col && (n.kind !== "feature" || n.on)).sort((a, b) => a.index - b.index);
}
let builtNodes = "";
function buildNodeElements() {
  const box = $("nodes");
  const sig = JSON.stringify([net.layers, net.feats, net.W, net.H]);
  if (sig === builtNodes) return;
  builtNodes = sig;
  box.innerHTML = "";
  for (const n of net.nodes) {
    const el = document.createElement("div");
    el.className = "node " + (n.kind === "hidden" ? "neuron" : n.kind) + (n.kind === "feature" && !n.on ? " off" : "");
    el.style.left = n.x + "px"; el.style.top = n.y + "px";
    const c = document.createElement("canvas"); c.width = 24; c.height = 24;
    el.appendChild(c);
    n.canvas = c; n.el = el;
    if (n.kind === "feature") {
      el.id = "feature-" + n.id;
      el.title = (n.on ? "Click to turn off " : "Click to feed in ") + FEATURES.find(f => f.id === n.id).text;
      el.onclick = () => {
        const f = features(), on = f.includes(n.id);
        if (on && f.length === 1) { toast("At least one feature must stay on.", true); return; }
        const next = FEATURES.map(x => x.id).filter(id => id === n.id ? !on : f.includes(id));
        change({ features: next.join(",") });
      };
      const label = document.createElement("div");
      label.className = "node-label"; label.innerHTML = FEATURES.find(f => f.id === n.id).html;
      label.style.left = (n.x - 68) + "px"; label.style.top = (n.y + NODE / 2 - 8) + "px";
      box.appendChild(label);
    } else {
      el.id = n.kind === "output" ? "node-output" : `node-${n.layer}-${n.index}`;
      const b = document.createElement("div");
      b.className = "bias"; b.title = "Bias — click to edit";
      b.onclick = ev => { ev.stopPropagation(); editValue(ev, "bias", n.layer, n.index); };
      el.appendChild(b); n.biasEl = b;
    }
    el.onmouseenter = () => { hoverNode = n; draw(); };
    el.onmouseleave = () => { hoverNode = null; draw(); };
    box.appendChild(el);
  }
  // +/− neurons above each hidden layer
  net.layers.forEach((count, l) => {
    const ctl = document.createElement("div");
    ctl.className = "layer-ctl";
    ctl.style.left = (net.columns[l + 1] + NODE / 2 - 32) + "px";
    ctl.innerHTML = `<div class="btns"><button class="mini" type="button" aria-label="Add neuron" title="Add a neuron">+</button><button class="mini" type="button" aria-label="Remove neuron" title="Remove a neuron">−</button></div><div class="count">${count} neuron${count === 1 ? "" : "s"}</div>`;
    const [plus, minus] = ctl.querySelectorAll("button");
    plus.id = `add-neuron-${l}`; minus.id = `remove-neuron-${l}`;
    plus.disabled = count >= MAX_NEURONS; minus.disabled = count <= 1;
    plus.onclick = () => { const s = shape(); s[l] = Math.min(MAX_NEURONS, s[l] + 1); change({ networkShape: s.join(",") }); };
    minus.onclick = () => { const s = shape(); s[l] = Math.max(1, s[l] - 1); change({ networkShape: s.join(",") }); };
    box.appendChild(ctl);
  });
  const out = net.nodes[net.nodes.length - 1];
  const ol = document.createElement("div");
  ol.className = "out-label"; ol.textContent = "output";
  ol.style.left = (out.x + NODE / 2 - 40) + "px"; ol.style.top = (out.y + NODE + 4) + "px";
  box.appendChild(ol);
}

function linkGeometry() {
  // Links from each active node of column c to every node of column c+1, weights[c][to][from].
  const links = [];
  const cols = net.columns.length;
  for (let c = 0; c < cols - 1; c++) {
    const from = colNodes(c), to = colNodes(c + 1);
    to.forEach((t, ti) => from.forEach((f, fi) => links.push({ layer: c, to: ti, from: fi, x0: f.x + NODE, y0: f.y + NODE / 2, x1: t.x, y1: t.y + NODE / 2 })));
  }
  return links;
}
function weightOf(l) {
  const n = frame && frame.networks[0];
  return n && n.weights[l.layer] && n.weights[l.layer][l.to] ? n.weights[l.layer][l.to][l.from] : 0;
}
function drawLinks(g, scale = 1, ox = 0, oy = 0) {
  for (const l of linkGeometry()) {
    const w = weightOf(l), mx = (l.x0 + l.x1) / 2;
    g.beginPath();
    g.moveTo(ox + l.x0 * scale, oy + l.y0 * scale);
    g.bezierCurveTo(ox + mx * scale, oy + l.y0 * scale, ox + mx * scale, oy + l.y1 * scale, ox + l.x1 * scale, oy + l.y1 * scale);
    g.strokeStyle = css(colourOf(w));
    g.lineWidth = Math.max(0.6, Math.min(10, 0.8 + Math.abs(w) * 1.8)) * scale;
    g.globalAlpha = l === hoverLink ? 1 : 0.9;
    g.stroke();
  }
  g.globalAlpha = 1;
}
function drawNetwork() {
  const c = $("links"), dpr = window.devicePixelRatio || 1;
  const W = net.W, H = net.H;
  if (c.width !== W * dpr || c.height !== H * dpr) { c.width = W * dpr; c.height = H * dpr; }
  const g = c.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, W, H);
  drawLinks(g);
  if (!frame) return;
  const T = frame.thumb, n0 = frame.networks[0];
  let k = 0;
  const ordered = [];
  for (let col = 0; col < net.columns.length; col++) ordered.push(...colNodes(col));
  for (const n of ordered) {
    const t = frame.thumbs[k++];
    if (t) paintGrid(n.canvas, t, T, bool("discretize") && n.kind === "output");
    if (n.biasEl && n0.biases[n.layer]) n.biasEl.style.background = css(colourOf(n0.biases[n.layer][n.index]));
    n.thumb = t;
  }
  for (const n of net.nodes) if (n.kind === "feature" && !n.on) {
    // An unused feature still shows what it would compute (drawn locally, it is a fixed function).
    if (!n.painted) { paintFeature(n.canvas, n.id); n.painted = true; }
  }
}
function paintFeature(canvas, id) {
  const S = 24, g = canvas.getContext("2d"), img = g.createImageData(S, S);
  for (let j = 0; j < S; j++) for (let i = 0; i < S; i++) {
    const x = -6 + (i + .5) * 12 / S, y = 6 - (j + .5) * 12 / S;
    const v = { x1: x, x2: y, x1sq: x * x, x2sq: y * y, x1x2: x * y, sinx1: Math.sin(x), sinx2: Math.sin(y) }[id];
    img.data.set([...colourOf(v), 255], (j * S + i) * 4);
  }
  g.putImageData(img, 0, 0);
}
function paintGrid(canvas, bytes, n, discrete) {
  if (canvas.width !== n) { canvas.width = n; canvas.height = n; }
  const g = canvas.getContext("2d"), img = g.createImageData(n, n), lut = discrete ? LUT_DISCRETE : LUT;
  for (let i = 0; i < n * n; i++) { const b = bytes[i] * 3; img.data[i * 4] = lut[b]; img.data[i * 4 + 1] = lut[b + 1]; img.data[i * 4 + 2] = lut[b + 2]; img.data[i * 4 + 3] = 255; }
  g.putImageData(img, 0, 0);
}

// link hover and weight editing
let hoverLink = null;
function nearestLink(x, y) {
  let best = null, bestD = 6;
  for (const l of linkGeometry()) {
    const mx = (l.x0 + l.x1) / 2;
    for (let i = 0; i <= 24; i++) {
      const t = i / 24, u = 1 - t;
      const px = u * u * u * l.x0 + 3 * u * u * t * mx + 3 * u * t * t * mx + t * t * t * l.x1;
      const py = u * u * u * l.y0 + 3 * u * u * t * l.y0 + 3 * u * t * t * l.y1 + t * t * t * l.y1;
      const d = Math.hypot(px - x, py - y);
      if (d < bestD) { bestD = d; best = l; }
    }
  }
  return best;
}
function bindNetworkEvents() {
  const view = $("networkView"), tip = $("linkTip");
  view.addEventListener("mousemove", ev => {
    const r = view.getBoundingClientRect(), x = ev.clientX - r.left, y = ev.clientY - r.top;
    const l = ev.target === $("links") ? nearestLink(x, y) : null;
    if (l !== hoverLink) { hoverLink = l; drawNetwork(); }
    view.style.cursor = l ? "pointer" : "";
    if (l) { tip.textContent = `Weight ${fmt(weightOf(l), 3)} — click to edit`; tip.style.left = (x + 12) + "px"; tip.style.top = (y - 26) + "px"; tip.classList.remove("hidden"); }
    else tip.classList.add("hidden");
  });
  view.addEventListener("mouseleave", () => { hoverLink = null; tip.classList.add("hidden"); drawNetwork(); });
  view.addEventListener("click", ev => { if (hoverLink) editValue(ev, "weight", hoverLink.layer, hoverLink.to, hoverLink.from); });
}
function editValue(ev, kind, layer, to, from) {
  const box = $("weightEditor"), input = $("weightEditorInput"), n0 = frame && frame.networks[0];
  const current = kind === "weight" ? (n0 ? n0.weights[layer][to][from] : 0) : (n0 ? n0.biases[layer][to] : 0);
  $("weightEditorLabel").textContent = kind === "weight" ? `Weight, layer ${layer + 1}: input ${from + 1} → neuron ${to + 1}` : `Bias of neuron ${to + 1}, layer ${layer + 1}`;
  input.value = fmt(current, 3);
  box.style.left = (ev.pageX + 8) + "px"; box.style.top = (ev.pageY + 8) + "px";
  box.classList.remove("hidden");
  input.focus(); input.select();
  input.onkeydown = e => {
    if (e.key === "Escape") box.classList.add("hidden");
    if (e.key === "Enter") {
      const v = parseFloat(input.value);
      if (!isFinite(v)) { toast("Enter a number.", true); return; }
      send(kind === "weight" ? { type: "weight", layer, to, from, value: v } : { type: "bias", layer, neuron: to, value: v });
      box.classList.add("hidden");
    }
  };
  input.onblur = () => setTimeout(() => box.classList.add("hidden"), 150);
}

// ---------------------------------------------------------------- gradient strip
function drawGradients(g, W, H) {
  g.clearRect(0, 0, W, H);
  const n0 = frame && frame.networks[0];
  if (!n0 || !n0.gradNorms.length) return;
  const xs = net.columns, lo = -8, hi = 1;
  n0.gradNorms.forEach((v, l) => {
    const cx = (xs[l] + NODE + xs[l + 1]) / 2, bw = Math.min(54, (xs[l + 1] - xs[l]) * 0.55);
    const lv = v > 0 ? Math.log10(v) : lo, t = Math.max(0, Math.min(1, (lv - lo) / (hi - lo)));
    const colour = lv < -4 ? "#c62828" : lv < -2 ? "#ef8a1f" : "#2e7d32";
    g.fillStyle = "#eef1f3"; g.fillRect(cx - bw / 2, 4, bw, H - 22);
    g.fillStyle = colour; g.fillRect(cx - bw / 2, 4 + (H - 22) * (1 - t), bw, (H - 22) * t);
    g.fillStyle = "#4a565e"; g.font = "10.5px Helvetica, Arial, sans-serif"; g.textAlign = "center";
    g.fillText(v > 0 ? v.toExponential(1) : "0", cx, H - 5);
  });
}

// ---------------------------------------------------------------- heat maps
function mapSize() {
  const col = document.querySelector(".col.output"), w = col.clientWidth - 32;
  const twin = frame && frame.networks.length > 1;
  return twin ? Math.floor((w - 12 - 2 * (MARGIN + PAD)) / 2) : Math.min(w - MARGIN - PAD, 360);
}
const MARGIN = 16, PAD = 8;
function drawMap(canvas, grid, net0, role, size, forExport) {
  const S = size, full = S + MARGIN + 6, wide = S + MARGIN + PAD;
  const dpr = forExport ? 1 : (window.devicePixelRatio || 1);
  if (!forExport) {
    if (canvas.width !== wide * dpr) { canvas.width = wide * dpr; canvas.height = full * dpr; canvas.style.width = wide + "px"; canvas.style.height = full + "px"; }
  }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, wide, full);
  const ox = MARGIN, oy = 6;
  // background: the network's output, or a hovered neuron
  const src = document.createElement("canvas");
  let showGrid = grid, n = frame ? frame.grid : 100;
  if (hoverNode && hoverNode.thumb && role === "main" && !forExport) { showGrid = hoverNode.thumb; n = frame.thumb; }
  if (showGrid) {
    paintGrid(src, showGrid, n, bool("discretize") && showGrid === grid);
    g.imageSmoothingEnabled = true;
    g.drawImage(src, ox, oy, S, S);
  } else { g.fillStyle = "#eef1f3"; g.fillRect(ox, oy, S, S); }
  const X = x => ox + (x + EXTENT) / (2 * EXTENT) * S, Y = y => oy + (EXTENT - y) / (2 * EXTENT) * S, k = S / (2 * EXTENT);
  const eps = num("epsilon");
  const cls = data.problem !== "regression";
  const pointColour = l => css(colourOf(cls ? (l > 0 ? 1 : -1) : l));
  const attack = net0 && net0.attack, showTest = bool("showTestData") || bool("showBalls") || bool("showAttack") || bool("showCertified");
  // ε-balls (L∞: squares, L2: discs) around test points
  if (bool("showBalls") && eps > 0) {
    g.lineWidth = 1;
    for (const [x, y, l] of data.test) {
      g.beginPath();
      if (state.norm === "linf") g.rect(X(x) - eps * k, Y(y) - eps * k, 2 * eps * k, 2 * eps * k);
      else g.arc(X(x), Y(y), eps * k, 0, 2 * Math.PI);
      g.fillStyle = cls ? (l > 0 ? "rgba(8,119,189,.10)" : "rgba(245,147,34,.12)") : "rgba(60,60,60,.06)";
      g.strokeStyle = "rgba(40,50,56,.22)";
      g.fill(); g.stroke();
    }
  }
  // training points (white outline) and test points (dark outline), as in the TF Playground
  const dot = (x, y, l, stroke, r) => { g.beginPath(); g.arc(X(x), Y(y), r, 0, 2 * Math.PI); g.fillStyle = pointColour(l); g.fill(); g.lineWidth = 1; g.strokeStyle = stroke; g.stroke(); };
  const r = S >= 280 ? 3.2 : 2.8;
  for (const [x, y, l] of data.train) dot(x, y, l, "#fff", r);
  if (showTest) for (const [x, y, l] of data.test) dot(x, y, l, "#1f2a30", r);
  // certified points: a green ring
  if (bool("showCertified") && attack && attack.certified) {
    g.lineWidth = 1.6; g.strokeStyle = "#1a9850";
    data.test.forEach(([x, y], i) => { if (attack.certified[i] === "1") { g.beginPath(); g.arc(X(x), Y(y), r + 3, 0, 2 * Math.PI); g.stroke(); } });
  }
  // randomized smoothing: the certified L2 radius of the smoothed classifier (dashed), where it predicts the label
  if (bool("showCertified") && attack && attack.smoothRadius) {
    g.setLineDash([3, 2]); g.lineWidth = 1; g.strokeStyle = "rgba(26,152,80,.8)";
    data.test.forEach(([x, y], i) => { const rr = attack.smoothRadius[i]; if (rr > 0) { g.beginPath(); g.arc(X(x), Y(y), rr * k, 0, 2 * Math.PI); g.stroke(); } });
    g.setLineDash([]);
  }
  // adversarial examples with an arrow from their origin
  if (bool("showAttack") && attack && attack.adv.length === data.test.length * 2) {
    data.test.forEach(([x, y, l], i) => {
      const ax = attack.adv[2 * i], ay = attack.adv[2 * i + 1], broken = attack.broken[i] === "1";
      const x0 = X(x), y0 = Y(y), x1 = X(ax), y1 = Y(ay), len = Math.hypot(x1 - x0, y1 - y0);
      g.strokeStyle = broken ? "#b00020" : "rgba(31,42,48,.45)"; g.fillStyle = g.strokeStyle;
      g.lineWidth = broken ? 1.5 : 1;
      if (len > 2) {
        g.beginPath(); g.moveTo(x0, y0); g.lineTo(x1, y1); g.stroke();
        const a = Math.atan2(y1 - y0, x1 - x0), h = Math.min(6, len * .6);
        g.beginPath(); g.moveTo(x1, y1); g.lineTo(x1 - h * Math.cos(a - .45), y1 - h * Math.sin(a - .45)); g.lineTo(x1 - h * Math.cos(a + .45), y1 - h * Math.sin(a + .45)); g.closePath(); g.fill();
      }
      if (broken) {
        g.beginPath(); g.rect(x1 - 2.6, y1 - 2.6, 5.2, 5.2); g.fillStyle = pointColour(l); g.fill(); g.lineWidth = 1.3; g.strokeStyle = "#b00020"; g.stroke();
      }
    });
  }
  // axes
  g.fillStyle = "#6b7780"; g.font = "9.5px Helvetica, Arial, sans-serif";
  g.textAlign = "right"; g.textBaseline = "middle";
  for (let v = -6; v <= 6; v += 2) g.fillText(String(v), ox - 3, Y(v));
  g.textAlign = "center"; g.textBaseline = "top";
  for (let v = -6; v <= 6; v += 2) g.fillText(String(v), X(v), oy + S + 3);
  g.strokeStyle = "#c4cdd3"; g.lineWidth = 1; g.strokeRect(ox + .5, oy + .5, S - 1, S - 1);
  if (hoverNode && role === "main" && !forExport) {
    g.fillStyle = "rgba(31,42,48,.78)"; g.fillRect(ox + 6, oy + 6, 150, 20);
    g.fillStyle = "#fff"; g.textAlign = "left"; g.textBaseline = "middle"; g.font = "11px Helvetica, Arial, sans-serif";
    g.fillText(hoverNode.kind === "feature" ? "feature " + FEATURES.find(f => f.id === hoverNode.id).text : hoverNode.kind === "output" ? "output neuron" : `layer ${hoverNode.layer + 1}, neuron ${hoverNode.index + 1}`, ox + 12, oy + 16);
  }
}

// ---------------------------------------------------------------- loss chart
function drawLoss(g, W, H) {
  g.clearRect(0, 0, W, H);
  const roles = Object.keys(hist);
  let maxY = 0, maxX = 1;
  for (const r of roles) for (const [e, tr, te] of hist[r]) { maxX = Math.max(maxX, e); if (isFinite(tr)) maxY = Math.max(maxY, tr); if (isFinite(te)) maxY = Math.max(maxY, te); }
  if (maxY <= 0) maxY = 1;
  g.fillStyle = "#f7f9fa"; g.fillRect(0, 0, W, H);
  g.strokeStyle = "#e3e7ea"; g.lineWidth = 1;
  for (let i = 1; i < 4; i++) { g.beginPath(); g.moveTo(0, H * i / 4 + .5); g.lineTo(W, H * i / 4 + .5); g.stroke(); }
  const X = e => 4 + (W - 8) * e / maxX, Y = v => H - 4 - (H - 22) * Math.min(1, v / maxY);
  const line = (pts, idx, colour, dash, width) => {
    g.beginPath(); g.setLineDash(dash); g.strokeStyle = colour; g.lineWidth = width;
    let started = false;
    for (const p of pts) { if (p[idx] == null) continue; if (!started) { g.moveTo(X(p[0]), Y(p[idx])); started = true; } else g.lineTo(X(p[0]), Y(p[idx])); }
    g.stroke(); g.setLineDash([]);
  };
  for (const r of roles) {
    const dash = r === "main" ? [] : [4, 3];
    line(hist[r], 1, "#9aa5ac", dash, 1.4);
    line(hist[r], 2, r === "main" ? "#1f2a30" : "#c2185b", dash, 1.6);
  }
  g.fillStyle = "#6b7780"; g.font = "9.5px Helvetica, Arial, sans-serif"; g.textAlign = "left"; g.textBaseline = "top";
  const legend = roles.length > 1 ? `solid: ${OBJECTIVE_LABELS[state.objective] || state.objective} · dashed: standard · dark/red: test · grey: training` : "dark: test · grey: training";
  const label = `${fmt(maxY, 2)}   ${legend}`, ep = `epoch ${maxX}`;
  g.fillStyle = "rgba(247,249,250,.85)";
  g.fillRect(2, 1, g.measureText(label).width + 6, 13); g.fillRect(W - g.measureText(ep).width - 8, 1, g.measureText(ep).width + 6, 13);
  g.fillStyle = "#6b7780";
  g.fillText(label, 5, 3);
  g.textAlign = "right"; g.fillText(ep, W - 5, 3);
}

// ---------------------------------------------------------------- drawing
function sized(canvas, W, H) {
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(W * dpr) || canvas.height !== Math.round(H * dpr)) { canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr); }
  const g = canvas.getContext("2d"); g.setTransform(dpr, 0, 0, dpr, 0, 0); return g;
}
function draw() {
  if (!net.columns.length) return;
  drawNetwork();
  const strip = $("gradStrip");
  drawGradients(sized(strip, strip.clientWidth, strip.clientHeight), strip.clientWidth, strip.clientHeight);
  const chart = $("lossChart");
  drawLoss(sized(chart, chart.clientWidth, chart.clientHeight), chart.clientWidth, chart.clientHeight);
  const networks = frame ? frame.networks : [];
  const main = networks[0], twin = networks[1];
  const size = mapSize();
  drawMap(document.querySelector("#map-main canvas"), frame && frame.grids[0], main, "main", size);
  document.querySelector("#map-main figcaption").textContent = twin ? (OBJECTIVE_LABELS[main.objective] || main.objective) + " training" : "";
  $("map-standard").classList.toggle("hidden", !twin);
  if (twin) drawMap(document.querySelector("#map-standard canvas"), frame.grids[1], twin, "standard", size);
  if (!frame) return;
  const e = frame.epoch;
  $("epoch").textContent = String(e).padStart(6, "0").replace(/(\d{3})(\d{3})$/, "$1,$2");
  $("epoch").dataset.value = e;
  $("play").classList.toggle("playing", frame.playing);
  setValue("testLoss", main.testLoss, fmt(main.testLoss));
  setValue("trainLoss", main.trainLoss, fmt(main.trainLoss));
  if (main.diverged) toastOnce("The network diverged (its loss is no longer finite): lower the learning rate and press Reset.");
  $("name-main").textContent = OBJECTIVE_LABELS[main.objective] || main.objective;
  fillRow("main", main);
  $("row-standard").classList.toggle("hidden", !twin);
  if (twin) { fillRow("standard", twin); $("forkedAt").textContent = twin.forkedAt > 0 ? `(from epoch ${twin.forkedAt})` : "(same start)"; }
  const eps = num("epsilon"), norm = state.norm === "linf" ? "L∞" : "L2";
  const sm = main.attack && main.attack.smoothRadius ? main.attack : null;
  $("smoothing").classList.toggle("hidden", !sm);
  if (sm) { $("smoothing").innerHTML = `Randomized smoothing (${sm.smoothing}): <b id="smoothAcc" data-value="${sm.smoothAcc}">${pct(sm.smoothAcc)}</b> of the test points certified at ${norm} ε = ${eps.toFixed(2)} (dashed circles: certified L2 radius).`; }
  $("legendNote").textContent = isClassification()
    ? `Robust: PGD-${state.attackSteps} at ${norm} ε = ${eps.toFixed(2)} on ${data.test.length} test points${main.attack ? " (epoch " + main.attack.epoch + ")" : ""}.`
    : `Adversarial loss: PGD-${state.attackSteps} maximising the squared error in the ${norm} ε = ${eps.toFixed(2)} ball.`;
}
function setValue(id, v, text) { const el = $(id); el.textContent = text; el.dataset.value = v == null ? "" : v; }
function fillRow(role, n) {
  const a = n.attack;
  if (isClassification()) {
    setValue("cleanAcc-" + role, n.testAcc, pct(n.testAcc));
    setValue("robustAcc-" + role, a && a.robustAcc, a ? pct(a.robustAcc) : "–");
    setValue("certAcc-" + role, a && a.certifiedAcc, a && a.certifiedAcc != null ? pct(a.certifiedAcc) : "–");
  } else {
    setValue("cleanAcc-" + role, n.testLoss, fmt(n.testLoss));
    setValue("robustAcc-" + role, a && a.robustLoss, a ? fmt(a.robustLoss) : "–");
    setValue("certAcc-" + role, null, "n/a");
  }
}

// ---------------------------------------------------------------- Save PNG: the view as one picture
function savePng() {
  composeView().toBlob(b => {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(b); a.download = `robustness-playground-${isClassification() ? state.dataset : state.regDataset}-epoch${frame ? frame.epoch : 0}.png`;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 2000);
  }, "image/png");
}
function composeView() {
  const networks = frame ? frame.networks : [];
  const twin = networks.length > 1;
  const S = 300, W = 1400, H = 660;
  const c = document.createElement("canvas"); c.width = W; c.height = H;
  const g = c.getContext("2d");
  g.fillStyle = "#fff"; g.fillRect(0, 0, W, H);
  g.fillStyle = "#183d4e"; g.fillRect(0, 0, W, 54);
  g.fillStyle = "#fff"; g.font = "300 20px Helvetica, Arial, sans-serif"; g.textBaseline = "middle"; g.textAlign = "left";
  g.fillText("Robustness Playground", 20, 20);
  g.font = "12px Helvetica, Arial, sans-serif"; g.fillStyle = "#b8cbd3";
  g.fillText(summaryLine(), 20, 40);
  // network
  const scale = Math.min(1, 640 / net.W), ox = 10, oy = 70;
  drawLinks(g, scale, ox, oy);
  let k = 0;
  const ordered = [];
  for (let col = 0; col < net.columns.length; col++) ordered.push(...colNodes(col));
  for (const n of ordered) {
    const t = frame && frame.thumbs[k++], x = ox + n.x * scale, y = oy + n.y * scale, s = NODE * scale;
    if (t) { const tmp = document.createElement("canvas"); paintGrid(tmp, t, frame.thumb, false); g.imageSmoothingEnabled = true; g.drawImage(tmp, x, y, s, s); }
    g.strokeStyle = "#9aa5ac"; g.lineWidth = 1; g.strokeRect(x + .5, y + .5, s - 1, s - 1);
    if (n.kind === "feature") { g.fillStyle = "#37434a"; g.font = "12px Helvetica, Arial, sans-serif"; g.textAlign = "right"; g.fillText(FEATURES.find(f => f.id === n.id).text, x - 6, y + s / 2); }
  }
  // maps
  const mx = 680;
  networks.forEach((n0, i) => {
    const mc = document.createElement("canvas"); mc.width = S + MARGIN + PAD; mc.height = S + MARGIN + 6;
    drawMap(mc, frame.grids[i], n0, n0.role, S, true);
    const x = mx + i * (S + MARGIN + 20);
    g.drawImage(mc, x, 90);
    g.fillStyle = "#37434a"; g.font = "bold 13px Helvetica, Arial, sans-serif"; g.textAlign = "left";
    g.fillText((OBJECTIVE_LABELS[n0.objective] || n0.objective) + " training", x + MARGIN, 78);
    const a = n0.attack;
    g.font = "12px Helvetica, Arial, sans-serif"; g.fillStyle = "#4a565e";
    const lines = isClassification()
      ? [`test loss ${fmt(n0.testLoss)} · training loss ${fmt(n0.trainLoss)}`, `clean ${pct(n0.testAcc)} · robust ${a ? pct(a.robustAcc) : "–"} · IBP-certified ${a && a.certifiedAcc != null ? pct(a.certifiedAcc) : "–"}`]
      : [`test loss ${fmt(n0.testLoss)} · training loss ${fmt(n0.trainLoss)}`, `adversarial test loss ${a ? fmt(a.robustLoss) : "–"}`];
    lines.forEach((t, j) => g.fillText(t, x + MARGIN, 90 + S + MARGIN + 16 + j * 17));
  });
  const lc = document.createElement("canvas");
  if (!twin) { lc.width = 320; lc.height = 150; drawLoss(lc.getContext("2d"), 320, 150); g.drawImage(lc, mx + S + 50, 90); }
  else { lc.width = 620; lc.height = 90; drawLoss(lc.getContext("2d"), 620, 90); g.drawImage(lc, 20, 540); }
  g.fillStyle = "#6b7780"; g.font = "11px Helvetica, Arial, sans-serif"; g.textAlign = "left";
  g.fillText("orange = negative, blue = positive · " + $("legendNote").textContent, 20, H - 16);
  return c;
}
function summaryLine() {
  const set = isClassification() ? state.dataset : state.regDataset;
  return `${set} · noise ${state.noise} · features ${features().join(", ")} · hidden ${state.networkShape || "none"} · ${state.activation} · lr ${state.learningRate} · ` +
    `${OBJECTIVE_LABELS[state.objective]} · ${state.norm === "linf" ? "L∞" : "L2"} ε ${num("epsilon").toFixed(2)} · epoch ${frame ? frame.epoch : 0} · seed ${state.seed}`;
}

// ---------------------------------------------------------------- messages
let toastTimer = null, toasted = new Set();
function toast(text, error) {
  const t = $("toast");
  t.textContent = text; t.classList.toggle("error", !!error); t.classList.remove("hidden");
  clearTimeout(toastTimer); toastTimer = setTimeout(() => t.classList.add("hidden"), 5000);
}
function toastOnce(text) { if (!toasted.has(text)) { toasted.add(text); toast(text, true); } }
function showBanner(text) { $("bannerText").textContent = text; $("banner").classList.remove("hidden"); }

// ---------------------------------------------------------------- legend and start
(function legend() {
  const c = $("legendBar"), g = c.getContext("2d");
  for (let i = 0; i < c.width; i++) { g.fillStyle = css(colourOf(i / (c.width - 1) * 2 - 1)); g.fillRect(i, 0, 1, c.height); }
})();
bindControls();
bindNetworkEvents();
writeHash();
syncControls();
layoutNetwork();
draw();
connect();
