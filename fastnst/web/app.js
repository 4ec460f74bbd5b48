// fastnst browser page: stylise a photo with an exported fastnst model (or a third-party
// image-to-image model) using onnxruntime-web. Written by `fastnst export --web DIR`.
// Conventions (models.json, written beside this file): io "float" = RGB float32 NCHW, pixels in
// [0, input_range]; io "uint8" = RGB uint8 NHWC. Sizes are reflection-padded to the stride and cropped.
"use strict";

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
if (typeof ort !== "undefined") {
  ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
}

let models = [];
let session = null;
let info = null;
let backend = null;  // the execution provider the session was created with ("webgpu" or "wasm")
const statusLog = [];  // every status line, for the test mode

function status(text) {
  text = String(text).split("\n")[0];
  $("status").textContent = text;
  statusLog.push(text);
}

function message(e) { return String((e && e.message) || e).split("\n")[0]; }

// Providers to try, one at a time, in order: WebGPU where the browser has it, then WebAssembly.
// ?ep=NAME forces one.
function providers() {
  const ep = params.get("ep");
  if (ep) return [ep];
  return navigator.gpu ? ["webgpu", "wasm"] : ["wasm"];
}

// A session created with a single provider per try, so that the one that ran is known (asked for
// ["webgpu", "wasm"] at once, onnxruntime-web falls back to wasm silently).
async function createSession(source) {
  let error = null;
  for (const ep of providers()) {
    try {
      const copy = source instanceof Uint8Array ? source.slice() : source;
      return { session: await ort.InferenceSession.create(copy, { executionProviders: [ep] }), backend: ep };
    } catch (e) { error = e; }
  }
  throw error;
}

async function loadModel(source, meta) {
  status("loading model…");
  const created = await createSession(source);
  const inputs = created.session.inputNames;
  const next = Object.assign({ io: "float", input_range: 1, stride: 4, min_size: 8, styles: [] }, meta || {});
  next.input = next.input || inputs.find((n) => n !== "style");
  next.output = next.output || created.session.outputNames[0];
  session = created.session; info = next; backend = created.backend;
  const styleSel = $("style");
  styleSel.innerHTML = "";
  (info.styles || []).forEach((name, i) => styleSel.add(new Option(name, String(i))));
  $("styleLabel").hidden = !(info.styles && info.styles.length > 1);
  $("run").disabled = false;
  status("model ready (" + (meta && meta.file ? meta.file : "custom") + ", " + backend + ")");
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

// Draw a result (float32 HxWx3 in [0, 1]) into the page's canvas; it becomes what Save downloads,
// named NAME.stylized.png after the picture it came from.
let resultName = null;

function draw(out, w, h, name) {
  const canvas = $("out");
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h);
  for (let i = 0, j = 0; i < w * h; i++, j += 3) {
    for (let c = 0; c < 3; c++) img.data[i * 4 + c] = Math.round(Math.min(1, Math.max(0, out[j + c])) * 255);
    img.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  resultName = (String(name || "result").replace(/\.[^./\\]*$/, "") || "result");
  $("save").disabled = false;
}

function canvasPng() {
  return new Promise((resolve, reject) => $("out").toBlob(
    (blob) => (blob ? resolve(blob) : reject(new Error("the browser could not encode the picture as PNG"))),
    "image/png"));
}

async function saveResult() {
  if (!resultName) { status("nothing to save yet: stylise a photo or start the camera first"); return; }
  const blob = await canvasPng();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = resultName + ".stylized.png";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  status("saved " + a.download + " (" + $("out").width + "x" + $("out").height + ")");
}

function styleIndex() { return parseInt($("style").value || "0", 10) || 0; }

// RGBA bytes of a picture (ImageBitmap, video) scaled to fit `limit` on its longer side
function grab(source, sw, sh, limit, canvas) {
  const scale = Math.min(1, limit / Math.max(sw, sh));
  const w = Math.max(1, Math.round(sw * scale)), h = Math.max(1, Math.round(sh * scale));
  if (!canvas || canvas.width !== w || canvas.height !== h) canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(source, 0, 0, w, h);
  return { rgba: ctx.getImageData(0, 0, w, h).data, w, h, canvas };
}

async function runPhoto() {
  const file = $("photo").files[0];
  if (!session) { status("no model loaded: choose one first"); return; }
  if (!file) { status("choose a photo first"); return; }
  stopCamera();
  let bitmap;
  try { bitmap = await createImageBitmap(file); } catch (e) {
    status("cannot read '" + file.name + "' as a picture (" + message(e) + ")");
    return;
  }
  const limit = Math.max(16, parseInt($("maxSize").value, 10) || 1024);
  const { rgba, w, h } = grab(bitmap, bitmap.width, bitmap.height, limit);
  status("stylising " + w + "x" + h + "…");
  const t0 = performance.now();
  const out = await stylizePixels(rgba, w, h, styleIndex());
  draw(out, w, h, file.name);
  status("done in " + ((performance.now() - t0) / 1000).toFixed(2) + " s (" + backend + ")");
}

// Live camera: frames from the user's own camera are stylised one after another (the next frame is
// taken when the previous one is drawn), scaled to a modest longer side to stay live.
const camera = { stream: null, video: null, running: false, frames: 0, times: [], loop: null, last: null,
                 starting: null };

function cameraButtons() {
  $("camera").disabled = camera.running || !session;
  $("stop").disabled = !camera.running;
}

function cameraError(e) {
  const name = e && e.name;
  if (name === "NotAllowedError" || name === "SecurityError")
    return "camera access was denied; allow the camera for this page in the browser's settings";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "no camera found on this device";
  if (name === "NotReadableError" || name === "AbortError") return "the camera is busy (used by another program?)";
  return "camera error: " + message(e);
}

function fps() {
  const t = camera.times;
  return t.length < 2 ? null : (t.length - 1) * 1000 / (t[t.length - 1] - t[0]);
}

async function startCamera() {
  if (!session) { status("no model loaded: choose one first"); return false; }
  if (camera.running) return true;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    status("no camera access here: the browser allows it only on https:// or http://localhost pages");
    return false;
  }
  status("asking for the camera…");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: false, video: { width: { ideal: 640 }, height: { ideal: 480 } } });
  } catch (e) { status(cameraError(e)); return false; }
  const video = document.createElement("video");
  video.muted = true; video.playsInline = true; video.srcObject = stream;
  try { await video.play(); } catch (e) {
    stream.getTracks().forEach((t) => t.stop());
    status(cameraError(e));
    return false;
  }
  Object.assign(camera, { stream, video, running: true, frames: 0, times: [], last: null });
  cameraButtons();
  status("camera on (" + backend + ")");
  camera.loop = cameraLoop();
  return true;
}

function nextFrame() { return new Promise((resolve) => requestAnimationFrame(resolve)); }

async function cameraLoop() {
  let canvas = null;
  try {
    while (camera.running) {
      await nextFrame();
      const v = camera.video;
      if (!camera.running) break;
      if (!v.videoWidth || !v.videoHeight) continue;
      const limit = Math.max(16, parseInt($("camSize").value, 10) || 320);
      const frame = grab(v, v.videoWidth, v.videoHeight, limit, canvas);
      canvas = frame.canvas;
      const out = await stylizePixels(frame.rgba, frame.w, frame.h, styleIndex());
      if (!camera.running) break;
      draw(out, frame.w, frame.h, "camera");
      camera.last = { rgba: frame.rgba, w: frame.w, h: frame.h, out };
      camera.frames++;
      camera.times.push(performance.now());
      if (camera.times.length > 30) camera.times.shift();
      const rate = fps();
      status("camera " + frame.w + "x" + frame.h + (rate === null ? "" : ", " + rate.toFixed(1) + " fps") +
             " (" + backend + ")");
    }
  } catch (e) {
    stopCamera();
    status("camera stopped: " + message(e));
  }
}

function stopCamera() {
  if (!camera.running && !camera.stream) return;
  camera.running = false;
  if (camera.stream) camera.stream.getTracks().forEach((t) => t.stop());
  if (camera.video) camera.video.srcObject = null;
  camera.stream = null;
  cameraButtons();
  const rate = fps();
  status("camera stopped after " + camera.frames + " frames" + (rate === null ? "" : ", " + rate.toFixed(1) + " fps"));
}

// Test and benchmark mode: ?test=spec.json runs the spec's pixels through the model and POSTs the
// output numbers and timings to /result (used by tests/test_web.py and scripts/bench_infer.py).
// spec.save: then press Save and read back the PNG it downloads; spec.camera: {frames: N} presses
// Camera, waits for N stylised frames (or a failure) and presses Stop.
function waitFor(cond, ms) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const poll = () => (cond() || performance.now() - t0 > ms ? resolve(cond()) : setTimeout(poll, 50));
    poll();
  });
}

function base64(blob) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).split(",")[1]);
    r.onerror = () => reject(r.error);
    r.readAsDataURL(blob);
  });
}

async function testSave(body) {
  const save = { disabled_before: body.disabled_before };
  const clicks = [], click = HTMLAnchorElement.prototype.click;
  HTMLAnchorElement.prototype.click = function () { clicks.push({ href: this.href, download: this.download }); };
  try {
    save.disabled_after = $("save").disabled;
    $("save").click();
    await waitFor(() => clicks.length, 10000);
  } finally { HTMLAnchorElement.prototype.click = click; }
  if (!clicks.length) throw new Error("Save started no download");
  const blob = await (await fetch(clicks[0].href)).blob();
  return Object.assign(save, { download: clicks[0].download, type: blob.type, png: await base64(blob) });
}

async function testCamera(spec) {
  $("camera").click();
  if (await camera.starting) await waitFor(() => camera.frames >= spec.camera.frames || !camera.running, 60000);
  const running = camera.running, text = $("status").textContent, tracks = camera.stream ? camera.stream.getTracks() : [];
  if (running) { $("stop").click(); await camera.loop; }
  const last = camera.last || { w: 0, h: 0, rgba: [], out: [] };
  const rgb = [];
  for (let i = 0; i < last.rgba.length; i += 4) rgb.push(last.rgba[i], last.rgba[i + 1], last.rgba[i + 2]);
  return { frames: camera.frames, status: text, status_after: $("status").textContent, width: last.w, height: last.h,
           input: rgb, output: Array.from(last.out), tracks_ended: tracks.length > 0 && tracks.every((t) => t.readyState === "ended"),
           camera_enabled: !$("camera").disabled, stop_enabled: !$("stop").disabled, save_enabled: !$("save").disabled };
}

async function runTest(specUrl) {
  const spec = await (await fetch(specUrl)).json();
  const meta = models.find((m) => m.file === spec.model) || { file: spec.model };
  await loadModel(spec.model, meta);
  cameraButtons();
  const body = { backend, threads: ort.env.wasm.numThreads, disabled_before: $("save").disabled };
  if (spec.camera) {
    body.camera = await testCamera(spec);
  } else {
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
    draw(out, spec.width, spec.height, spec.name || "test");
    status("done in " + (times[times.length - 1] / 1000).toFixed(2) + " s (" + backend + ")");
    body.ms = times;
    body.output = spec.return_output === false ? null : Array.from(out);
    if (spec.save) body.save = await testSave(body);
  }
  body.statuses = statusLog;
  delete body.disabled_before;
  await fetch("/result", { method: "POST", body: JSON.stringify(body) });
  status("test finished");
}

async function main() {
  if (typeof ort === "undefined") {
    status("onnxruntime-web did not load (ort/ort.min.js is missing); write the page again with fastnst export --web");
    return;
  }
  try {
    models = await (await fetch("models.json")).json();
  } catch (e) { models = []; }
  const sel = $("model");
  models.forEach((m, i) => sel.add(new Option(m.name || m.file, String(i))));
  const failed = (e) => { status("cannot load the model: " + message(e)); cameraButtons(); };
  sel.onchange = () => loadModel(models[sel.value].file, models[sel.value]).then(cameraButtons, failed);
  $("modelFile").onchange = async (ev) => {
    const f = ev.target.files[0];
    if (f) await loadModel(new Uint8Array(await f.arrayBuffer()), { file: f.name }).then(cameraButtons, failed);
  };
  $("run").onclick = () => runPhoto().catch((e) => status("error: " + message(e)));
  $("save").onclick = () => saveResult().catch((e) => status("cannot save: " + message(e)));
  $("camera").onclick = () => {
    camera.starting = startCamera().catch((e) => { stopCamera(); status(cameraError(e)); return false; });
  };
  $("stop").onclick = () => stopCamera();
  if (params.get("test")) {
    try { await runTest(params.get("test")); } catch (e) {
      await fetch("/result", { method: "POST", body: JSON.stringify({ error: String(e), statuses: statusLog }) });
    }
    return;
  }
  if (models.length) await loadModel(models[0].file, models[0]).then(cameraButtons, failed);
  else status("no model listed in models.json; choose an .onnx file");
}

main();
