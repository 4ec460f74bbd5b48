// fastnst browser page: stylise a photo with an exported fastnst model (or a third-party
// image-to-image model) using onnxruntime-web. Written by `fastnst export --web DIR`.
// Conventions (models.json, written beside this file): io "float" = RGB float32 NCHW, pixels in
// [0, input_range]; io "uint8" = RGB uint8 NHWC. Sizes are reflection-padded to the stride and cropped.
"use strict";

const params = new URLSearchParams(location.search);
ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;

let models = [];
let session = null;
let info = null;
let usedProvider = null;  // the execution provider the session was actually created with
let photoName = "photo";
let camera = null;        // { stream, video, running } while the live camera runs

function status(text) { document.getElementById("status").textContent = text; }

function providers() {
  const ep = params.get("ep");
  if (ep) return [ep];
  return navigator.gpu ? ["webgpu", "wasm"] : ["wasm"];
}

// Try each provider on its own, in order, and remember which one the session runs on: asking onnxruntime-web
// for ["webgpu", "wasm"] at once falls back silently, and the page would name the wrong one.
async function createSession(source) {
  let last = null;
  for (const ep of providers()) {
    try {
      const s = await ort.InferenceSession.create(source, { executionProviders: [ep] });
      usedProvider = ep;
      return s;
    } catch (e) { last = e; }
  }
  throw last;
}

async function loadModel(source, meta) {
  status("loading model…");
  session = await createSession(source);
  const inputs = session.inputNames;
  info = Object.assign({ io: "float", input_range: 1, stride: 4, min_size: 8, styles: [] }, meta || {});
  info.input = info.input || inputs.find((n) => n !== "style");
  info.output = info.output || session.outputNames[0];
  const styleSel = document.getElementById("style");
  styleSel.innerHTML = "";
  (info.styles || []).forEach((name, i) => styleSel.add(new Option(name, String(i))));
  document.getElementById("styleLabel").hidden = !(info.styles && info.styles.length > 1);
  document.getElementById("run").disabled = false;
  document.getElementById("camera").disabled = false;
  status("model ready (" + (meta && meta.file ? meta.file : "custom") + ", " + usedProvider + ")");
}

function reflect(i, n) {  // index reflection without repeating the edge (numpy "reflect")
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  i = ((i % period) + period) % period;
  return i < n ? i : period - i;
}

// RGBA bytes (h x w) -> model input tensor of the padded size
function toTensor(rgba, w, h) {
  const s = info.stride || 4, m = info.min_size || 8;
  const ph = Math.max(m, Math.ceil(h / s) * s), pw = Math.max(m, Math.ceil(w / s) * s);
  if (info.io === "uint8") {
    const data = new Uint8Array(ph * pw * 3);
    for (let y = 0; y < ph; y++) for (let x = 0; x < pw; x++) {
      const src = (reflect(y, h) * w + reflect(x, w)) * 4, dst = (y * pw + x) * 3;
      data[dst] = rgba[src]; data[dst + 1] = rgba[src + 1]; data[dst + 2] = rgba[src + 2];
    }
    return { tensor: new ort.Tensor("uint8", data, [1, ph, pw, 3]), ph, pw };
  }
  const scale = (info.input_range || 1) / 255, plane = ph * pw, data = new Float32Array(3 * plane);
  for (let y = 0; y < ph; y++) for (let x = 0; x < pw; x++) {
    const src = (reflect(y, h) * w + reflect(x, w)) * 4, dst = y * pw + x;
    data[dst] = rgba[src] * scale; data[plane + dst] = rgba[src + 1] * scale; data[2 * plane + dst] = rgba[src + 2] * scale;
  }
  return { tensor: new ort.Tensor("float32", data, [1, 3, ph, pw]), ph, pw };
}

// model output -> float32 HxWx3 in [0, 1] (unclipped), cropped to w x h
function fromTensor(t, w, h, ph, pw) {
  const out = new Float32Array(h * w * 3);
  if (info.io === "uint8") {
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++)
      out[(y * w + x) * 3 + c] = t.data[(y * pw + x) * 3 + c] / 255;
    return out;
  }
  const inv = 1 / (info.input_range || 1), plane = ph * pw;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++)
    out[(y * w + x) * 3 + c] = t.data[c * plane + y * pw + x] * inv;
  return out;
}

function styleTensor(index) {
  const n = (info.styles || []).length;
  if (n < 2) return null;
  const weights = new Float32Array(n);
  weights[index || 0] = 1;
  return new ort.Tensor("float32", weights, [1, n]);
}

async function stylizePixels(rgba, w, h, styleIndex) {
  const { tensor, ph, pw } = toTensor(rgba, w, h);
  const feeds = { [info.input]: tensor };
  const style = styleTensor(styleIndex);
  if (style) feeds.style = style;
  const result = await session.run(feeds);
  return fromTensor(result[info.output], w, h, ph, pw);
}

function draw(out, w, h) {
  const canvas = document.getElementById("out");
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h);
  for (let i = 0, j = 0; i < w * h; i++, j += 3) {
    for (let c = 0; c < 3; c++) img.data[i * 4 + c] = Math.round(Math.min(1, Math.max(0, out[j + c])) * 255);
    img.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

// The result as a PNG blob (what the Save link downloads)
function resultBlob() {
  const canvas = document.getElementById("out");
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("no result"))), "image/png"));
}

async function offerSave() {
  const link = document.getElementById("save");
  if (link.href && link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(await resultBlob());
  link.download = photoName.replace(/\.[^.]*$/, "") + ".stylized.png";
  link.hidden = false;
}

function pixelsOf(source, sw, sh, limit) {
  const scale = Math.min(1, limit / Math.max(sw, sh));
  const w = Math.max(1, Math.round(sw * scale)), h = Math.max(1, Math.round(sh * scale));
  const c = new OffscreenCanvas(w, h), ctx = c.getContext("2d");
  ctx.drawImage(source, 0, 0, w, h);
  return { rgba: ctx.getImageData(0, 0, w, h).data, w, h };
}

// Live camera: frames from getUserMedia, each stylised when the previous one is done; frames per second shown.
async function startCamera(maxFrames) {
  if (!session) { status("load a model first"); return null; }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { status("this browser has no camera access"); return null; }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (e) {
    status("camera not available (" + (e.name || e) + "): allow the camera, or choose a photo");
    return null;
  }
  const video = document.createElement("video");
  video.muted = true; video.playsInline = true; video.srcObject = stream;
  await video.play();
  camera = { stream, video, running: true, frames: 0 };
  document.getElementById("camera").hidden = true;
  document.getElementById("stop").hidden = false;
  const limit = Math.max(16, parseInt(document.getElementById("cameraSize").value, 10) || 320);
  const style = parseInt(document.getElementById("style").value || "0", 10);
  const t0 = performance.now();
  while (camera && camera.running && (!maxFrames || camera.frames < maxFrames)) {
    if (!video.videoWidth) { await new Promise((r) => setTimeout(r, 20)); continue; }
    const { rgba, w, h } = pixelsOf(video, video.videoWidth, video.videoHeight, limit);
    draw(await stylizePixels(rgba, w, h, style), w, h);
    camera.frames += 1;
    const fps = camera.frames / ((performance.now() - t0) / 1000);
    status("camera " + w + "x" + h + ": " + fps.toFixed(1) + " frames/s (" + usedProvider + ")");
  }
  const result = { frames: camera ? camera.frames : 0, fps: (camera ? camera.frames : 0) / ((performance.now() - t0) / 1000) };
  stopCamera();
  return result;
}

function stopCamera() {
  if (!camera) return;
  camera.running = false;
  camera.stream.getTracks().forEach((t) => t.stop());
  camera = null;
  document.getElementById("camera").hidden = false;
  document.getElementById("stop").hidden = true;
  offerSave().catch(() => {});
}

async function runPhoto() {
  const file = document.getElementById("photo").files[0];
  if (!file || !session) { status("choose a photo first"); return; }
  const bitmap = await createImageBitmap(file);
  photoName = file.name || "photo";
  const limit = Math.max(16, parseInt(document.getElementById("maxSize").value, 10) || 1024);
  const { rgba, w, h } = pixelsOf(bitmap, bitmap.width, bitmap.height, limit);
  status("stylising " + w + "x" + h + "…");
  const t0 = performance.now();
  const out = await stylizePixels(rgba, w, h, parseInt(document.getElementById("style").value || "0", 10));
  draw(out, w, h);
  await offerSave();
  status("done in " + ((performance.now() - t0) / 1000).toFixed(2) + " s (" + usedProvider + ")");
}

// Test and benchmark mode: ?test=spec.json runs the spec's pixels through the model and POSTs the
// output numbers and timings to /result (used by tests/test_web.py and scripts/bench_infer.py).
async function runTest(specUrl) {
  const spec = await (await fetch(specUrl)).json();
  const meta = models.find((m) => m.file === spec.model) || { file: spec.model };
  await loadModel(spec.model, meta);
  const rgba = new Uint8ClampedArray(spec.width * spec.height * 4);
  for (let i = 0; i < spec.width * spec.height; i++) {
    for (let c = 0; c < 3; c++) rgba[i * 4 + c] = spec.pixels[i * 3 + c];
    rgba[i * 4 + 3] = 255;
  }
  let out = null;
  const times = [];
  for (let r = 0; r < (spec.repeats || 1); r++) {
    const t0 = performance.now();
    out = await stylizePixels(rgba, spec.width, spec.height, spec.style || 0);
    times.push(performance.now() - t0);
  }
  const body = { output: spec.return_output === false ? null : Array.from(out), ms: times,
                 backend: usedProvider, threads: ort.env.wasm.numThreads, status: document.getElementById("status").textContent };
  if (spec.save) {  // the Save link's file: a PNG of the result's size
    draw(out, spec.width, spec.height);
    await offerSave();
    const link = document.getElementById("save");
    const bytes = new Uint8Array(await (await fetch(link.href)).arrayBuffer());
    body.save = { download: link.download, hidden: link.hidden, bytes: Array.from(bytes.slice(0, 24)), size: bytes.length };
  }
  if (spec.camera) body.camera = await startCamera(spec.camera);
  await fetch("/result", { method: "POST", body: JSON.stringify(body) });
  status("test finished");
}

async function main() {
  try {
    models = await (await fetch("models.json")).json();
  } catch (e) { models = []; }
  const sel = document.getElementById("model");
  models.forEach((m, i) => sel.add(new Option(m.name || m.file, String(i))));
  sel.onchange = () => loadModel(models[sel.value].file, models[sel.value]).catch((e) => status("error: " + e));
  document.getElementById("modelFile").onchange = async (ev) => {
    const f = ev.target.files[0];
    if (f) await loadModel(new Uint8Array(await f.arrayBuffer()), { file: f.name }).catch((e) => status("error: " + e));
  };
  document.getElementById("run").onclick = () => runPhoto().catch((e) => status("error: " + e));
  document.getElementById("camera").onclick = () => startCamera(0).catch((e) => { stopCamera(); status("error: " + e); });
  document.getElementById("stop").onclick = () => stopCamera();
  if (params.get("test")) {
    try { await runTest(params.get("test")); } catch (e) {
      await fetch("/result", { method: "POST", body: JSON.stringify({ error: String(e) }) });
    }
    return;
  }
  if (models.length) await loadModel(models[0].file, models[0]).catch((e) => status("error: " + e));
  else status("no model listed in models.json; choose an .onnx file");
}

main();
