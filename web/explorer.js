// The in-browser explorer: every attribution, relevance and counterfactual method of Glasswing on
// the shipped MNIST models or on the user's own model folder (layers or graph model, with its
// glasswing.json preprocessing and class names) and any image, computed in the page. Served by
// `npm run web` (scripts/serve-web.mjs); the user's files are read here and never uploaded.
import {
  initBackend, setWasmPaths, loadLayersModel, Classifier, explain, listMethods, renderImage, overlay, tf,
  setGeneratorResolver, loadGeneratorFromUrl, setDensityExpertData, tensorToHWC, reduceChannels, renderValues, getColormap, upscale,
  mapToPhoto, decodePhoto, photoToInputInPage, entriesFromFileList, entriesFromDataTransfer, holdsModel, classifierFromEntries,
  OptionError, UnsupportedLayerError, InvalidInputError, TargetError,
} from './glasswing.js';

const $ = (id) => document.getElementById(id);
/** Methods whose target is "the other class" (why the prediction, not this one? move toward it): they take the probe. */
const PROBE_METHODS = new Set(['cdeepex', 'xgems', 'contrast', 'lse', 'lae', 'fgsm', 'pgd']);
/** Refusals that mean "this method does not apply to this model or input", not a bug. */
const REFUSALS = [OptionError, UnsupportedLayerError, InvalidInputError, TargetError];

const state = {
  digits: null, shipped: [], classifier: null, own: null, busy: false, stop: false,
  // the input: a shipped digit (index), the drawing, or a photo; x is the model input [1, h, w, c]
  source: { kind: 'digit', index: 0 }, photo: null, x: null, preview: null,
  results: {}, generation: 0,
  // what the overlays are redrawn from when the opacity changes: the main view and every card
  alpha: 0.6, main: null, cards: [],
};
// For tests and the console: the last results (attribution values per method) and the current input.
window.explorer = {
  get results() { return state.results; },
  async inputValues() { return state.x ? Array.from(await state.x.data()) : null; },
  get classifier() { return state.classifier; },
  numTensors: () => tf.memory().numTensors,
};

function paint(canvas, image) {
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(image.data), image.width, image.height), 0, 0);
}

function setStatus(text) {
  $('status').textContent = text;
}

const isMnistShaped = (c) => c && c.inputShape[0] === 28 && c.inputShape[1] === 28 && c.inputShape[2] === 1;

function digitTensor(i) {
  const { pixels, size } = state.digits;
  return tf.tensor4d(pixels.slice(i * size * size, (i + 1) * size * size), [1, size, size, 1]);
}

/** The input as a picture in RGB, whatever the model's range and channel order. */
function inputPicture(x) {
  const c = state.classifier;
  const bgr = c.preprocessing?.channelOrder === 'bgr' && x.shape[3] === 3;
  const shown = bgr ? tf.reverse(x, -1) : x;
  try {
    return renderImage(shown, { range: [c.domain.low, c.domain.high] });
  } finally {
    if (bgr) shown.dispose();
  }
}

// ---------------------------------------------------------------- colour bars and maps

/** A colour bar under a map: the colour map's ramp and its value limits (the map is divided by vmax). */
function colourBar(container, colormap, signed, vmax) {
  container.replaceChildren();
  const bar = document.createElement('canvas');
  bar.className = 'bar';
  bar.width = 180;
  bar.height = 1;
  const cm = getColormap(colormap);
  const ctx = bar.getContext('2d');
  const row = ctx.createImageData(180, 1);
  for (let i = 0; i < 180; i++) {
    const t = signed ? -1 + (2 * i) / 179 : i / 179;
    const [r, g, b] = cm(signed && !cm.signed ? (t + 1) / 2 : t);
    row.data.set([r, g, b, 255], 4 * i);
  }
  ctx.putImageData(row, 0, 0);
  const labels = document.createElement('div');
  labels.className = 'barlabels';
  const fmt = (v) => (Math.abs(v) >= 1e3 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(1) : v.toPrecision(2));
  labels.innerHTML = (signed ? [-vmax, 0, vmax] : [0, vmax / 2, vmax]).map((v) => `<span>${fmt(v)}</span>`).join('');
  container.append(bar, labels);
  container.dataset.vmax = String(vmax);
}

/** The map over the (desaturated, if in colour) input, and over the photo it came from, at the chosen opacity. */
function overlays(attribution, signed, x) {
  const colormap = signed ? 'diverging' : 'sequential';
  const opts = { colormap, signed, alpha: state.alpha };
  const over = overlay(inputPicture(x), attribution, { ...opts, desaturate: x.shape[3] === 3 ? 0.8 : 0 });
  let onPhoto;
  if (state.preview) {
    const mapped = mapToPhoto(attribution, state.preview.info);
    try {
      onPhoto = overlay(state.preview.raw, mapped, { ...opts, desaturate: 0.8 });
    } finally {
      mapped.dispose();
    }
  }
  return { over, onPhoto };
}

/** The map of an explanation (channels summed), its normaliser, the overlays on the input and on the photo. */
function renderExplanation(e, def, x) {
  const colormap = def.signed ? 'diverging' : 'sequential';
  const { values, h, w, c } = tensorToHWC(e.attribution, 'map', 0);
  const flat = reduceChannels(values, h, w, c, 'sum');
  const { image, vmax } = renderValues(flat, h, w, { colormap, signed: def.signed }); // throws on NaN/Infinity
  return { image, vmax, colormap, signed: def.signed, ...overlays(e.attribution, def.signed, x) };
}

/** Redraw every overlay at a new opacity from the kept attribution values. */
function redrawOverlays() {
  const jobs = [...(state.main ? [{ ...state.main, photoCanvas: $('onphoto'), inputCanvas: $('overlay') }] : []), ...state.cards];
  for (const j of jobs) {
    const t = tf.tensor(j.values, j.shape);
    try {
      const r = overlays(t, j.signed, state.x);
      paint(j.inputCanvas, j.photoCanvas ? r.over : r.onPhoto ?? r.over);
      if (j.photoCanvas && r.onPhoto) paint(j.photoCanvas, r.onPhoto);
    } finally {
      t.dispose();
    }
  }
}

/** Save a map as PNG (nearest-neighbour upscaled to at least 256 pixels, so small maps stay sharp). */
function download(image, name) {
  const big = upscale(image, Math.max(1, Math.ceil(256 / Math.max(image.width, image.height))));
  const canvas = document.createElement('canvas');
  paint(canvas, big);
  canvas.toBlob((blob) => {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `${name}.png`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  }, 'image/png');
}

// ---------------------------------------------------------------- models and inputs

function className(k) {
  return state.classifier.classNames[k] ?? String(k);
}

/** "3: tiger shark", or just "3" when the class has no name but its index. */
function classLabel(k) {
  const n = className(k);
  return n === String(k) ? n : `${k}: ${n}`;
}

function fillClassMenus() {
  const c = state.classifier;
  const classes = Array.from({ length: c.numClasses }, (_, k) => `<option value="${k}">${escapeHtml(classLabel(k))}</option>`).join('');
  $('target').innerHTML = `<option value="predicted">predicted</option><option value="second">second</option>${classes}`;
  $('probe').innerHTML = `<option value="second">second</option>${classes}`;
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function disposeClassifier(c) {
  if (!c) return;
  c.dispose();
  c.model?.dispose();
}

async function useClassifier(c, label) {
  state.classifier = c;
  $('mnist-input').hidden = !isMnistShaped(c);
  const [h, w, ch] = c.inputShape;
  const pre = c.preprocessing;
  $('modelinfo').textContent = `${label}: input ${h}×${w}×${ch}, range [${c.domain.low}, ${c.domain.high}], ${c.numClasses} classes` +
    (pre?.mean ? `, mean ${pre.mean.join('/')}` : '') + (pre?.std ? `, std ${pre.std.join('/')}` : '') +
    (pre?.resize ? `, ${pre.resize}` : '') + (pre?.channelOrder === 'bgr' ? ', BGR' : '');
  fillClassMenus();
  clearResults();
  await refreshInput();
}

async function loadShipped(name) {
  setStatus(`loading ${name}…`);
  const c = Classifier.fromModel(await loadLayersModel(`./models/${name}/model.json`), { name });
  if (state.classifier && state.classifier !== state.own) disposeClassifier(state.classifier);
  await useClassifier(c, name);
  setStatus('ready');
}

/** A model folder picked or dropped: becomes the "your model" entry of the menu (replacing an earlier one). */
async function loadOwn(entries) {
  setStatus('reading your model…');
  const c = await classifierFromEntries(entries);
  if (state.classifier && state.classifier !== state.own) disposeClassifier(state.classifier);
  if (state.own && state.own !== c) disposeClassifier(state.own);
  state.own = c;
  let opt = $('model').querySelector('option[value="own"]');
  if (!opt) {
    opt = document.createElement('option');
    opt.value = 'own';
    $('model').append(opt);
  }
  opt.textContent = `your model: ${c.name}`;
  $('model').value = 'own';
  await useClassifier(c, `your model "${c.name}"`);
  const kind = c.model ? 'layers model' : 'graph model';
  setStatus(`loaded ${c.name} (${kind})`);
  document.body.dataset.model = c.name;
}

/** A photo picked or dropped: decoded here at its own size, then brought to the model's input by its preprocessing. */
async function loadPhoto(file) {
  setStatus(`decoding ${file.name}…`);
  const bitmap = await decodePhoto(file);
  state.photo?.bitmap.close?.();
  state.photo = { bitmap, name: file.name };
  state.source = { kind: 'photo' };
  await refreshInput();
  document.body.dataset.photo = file.name;
}

/** Recompute the model input from the current source (after a new model, digit, drawing or photo). */
async function refreshInput() {
  const c = state.classifier;
  if (!c) return;
  state.x?.dispose();
  state.x = null;
  state.preview = null;
  state.main = null;
  clearResults(); // the cards explained the previous input
  const src = state.source;
  let label;
  if (src.kind === 'digit' && isMnistShaped(c)) {
    state.x = digitTensor(src.index);
    label = `test digit ${src.index} (label ${state.digits.labels[src.index]})`;
  } else {
    // any other case goes through the canvas with the model's preprocessing: a photo, the drawing,
    // or a digit shown to a model of another input shape
    const source = src.kind === 'photo' && state.photo ? state.photo.bitmap : src.kind === 'drawing' ? $('draw') : digitCanvas(src.index ?? 0);
    const r = photoToInputInPage(source, c);
    state.x = r.input;
    if (src.kind === 'photo' && state.photo) {
      state.preview = r.preview;
      label = `${state.photo.name} (${source.width}×${source.height} → ${c.inputShape[0]}×${c.inputShape[1]}, ${r.info.policy})`;
    } else {
      label = src.kind === 'drawing' ? 'your drawing' : `test digit ${src.index ?? 0}, resized`;
    }
  }
  $('inputlabel').textContent = label;
  $('photoview').hidden = !state.preview;
  paint($('input'), inputPicture(state.x));
  await showPrediction();
  document.querySelectorAll('#digits canvas').forEach((cv, k) => cv.classList.toggle('on', src.kind === 'digit' && k === src.index));
}

function digitCanvas(i) {
  return $('digits').children[i];
}

async function showPrediction() {
  const probs = tf.tidy(() => tf.softmax(state.classifier.logits(state.x)));
  const p = Array.from(await probs.data());
  probs.dispose();
  const order = p.map((v, k) => [v, k]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const shown = order.slice(0, p.length <= 10 ? p.length : 5);
  $('topk').innerHTML = shown.map(([v, k], i) =>
    `<div class="name${i === 0 ? ' on' : ''}" data-class="${k}">${escapeHtml(classLabel(k))}</div><div><div class="bar-p" style="width:${(v * 200).toFixed(1)}px"></div></div><div>${(100 * v).toFixed(1)} %</div>`).join('');
  document.body.dataset.top = String(order[0][1]);
}

// ---------------------------------------------------------------- explaining

function targetFor(name) {
  const v = PROBE_METHODS.has(name) ? $('probe').value : $('target').value;
  return v === 'predicted' || v === 'second' ? v : Number(v);
}

/**
 * Options the explorer passes for inputs larger than MNIST's 28×28. Prediction difference's defaults
 * (4×4 windows at stride 1, 10 samples each) cost one forward pass per pixel and sample — 37,000 at
 * 64×64, 490,000 at 224×224 —, so its window and stride grow with the image (≈ 15×15 windows at
 * any size). Every other method runs with its defaults (occlusion already sizes its window to the image).
 */
function explorerOptions(name, inputShape) {
  const side = Math.max(inputShape[0], inputShape[1]);
  if (name !== 'prediction-difference' || side <= 32) return undefined;
  const windowSize = Math.max(4, Math.round(side / 8));
  return { windowSize, stride: Math.max(1, Math.round(windowSize / 2)), padding: Math.max(2, Math.round(windowSize / 2)) };
}

async function explainOne(name) {
  const def = listMethods().find((m) => m.name === name);
  const why = def.requires?.(state.classifier);
  if (why) {
    const err = new OptionError(`cannot run on this model: ${why}`);
    err.refusal = true;
    throw err;
  }
  const options = explorerOptions(name, state.classifier.inputShape);
  const e = await explain(name, state.classifier, state.x, {
    target: targetFor(name),
    options,
    context: { progress: (f) => setStatus(`${name} ${Math.round(100 * f)} %`) },
  });
  return { e, def };
}

const isRefusal = (err) => err?.refusal || REFUSALS.some((K) => err instanceof K);

async function run() {
  if (state.busy || !state.classifier || !state.x) return;
  state.busy = true;
  const name = $('method').value;
  try {
    setStatus(`${name}…`);
    const { e, def } = await explainOne(name);
    try {
      const r = renderExplanation(e, def, state.x);
      paint($('map'), r.image);
      colourBar($('mapbar'), r.colormap, r.signed, r.vmax);
      paint($('overlay'), r.over);
      if (r.onPhoto) paint($('onphoto'), r.onPhoto);
      const values = await e.attribution.data();
      state.main = { values, shape: e.attribution.shape, signed: def.signed };
      state.results[name] = { values: Array.from(values), shape: e.attribution.shape, timeMs: e.timeMs, target: e.target[0] };
      $('download').disabled = false;
      $('download').onclick = () => download(r.image, `${state.classifier.name}-${name}`);
      // Counterfactual methods also return the changed image (CDeepEx's I_ze, LSE's x', an attack's x + δ).
      const changed = e.extras.counterfactual ?? e.extras.perturbed ?? e.extras.adversarial;
      $('cfview').hidden = !(changed instanceof tf.Tensor);
      if (changed instanceof tf.Tensor) {
        paint($('counterfactual'), inputPicture(changed));
        const row = e.logitsAfter?.[0];
        const after = row ? row.indexOf(Math.max(...row)) : undefined;
        $('cflabel').textContent = after === undefined ? 'changed image' : `changed image: classified ${className(after)}`;
      }
      const { probe, trueClass } = e.extras;
      $('maplabel').textContent = probe && trueClass
        ? `${name}: why ${className(trueClass[0])}, not ${className(probe[0])}?`
        : `${name} → ${className(e.target[0])}`;
      $('description').textContent = def.description;
      setStatus(`done: ${name} in ${e.timeMs.toFixed(0)} ms`);
      document.body.dataset.done = name;
    } finally {
      e.dispose();
    }
  } catch (err) {
    setStatus(`${isRefusal(err) ? 'cannot apply' : 'failed'}: ${err.message}`);
    document.body.dataset.error = err.message;
  } finally {
    state.busy = false;
  }
}

function clearResults() {
  state.generation++;
  state.results = {};
  state.cards = [];
  $('results').replaceChildren();
  $('skipped').replaceChildren();
  delete document.body.dataset.allDone;
}

/** One card of the side-by-side view: title, time, map with its colour bar, the overlay, a download button. */
function addCard(name, r, e, def, values) {
  const card = document.createElement('div');
  card.className = 'card';
  card.dataset.method = name;
  const title = document.createElement('div');
  title.className = 'title';
  title.textContent = name;
  const time = document.createElement('div');
  time.className = 'time';
  const quick = explorerOptions(name, state.classifier.inputShape);
  time.textContent = `${e.timeMs.toFixed(0)} ms → ${className(e.target[0])}` + (quick ? ` (${Object.entries(quick).map(([k, v]) => `${k} ${v}`).join(', ')})` : '');
  const map = document.createElement('canvas');
  map.className = 'pic map';
  paint(map, r.image);
  const bar = document.createElement('div');
  colourBar(bar, r.colormap, r.signed, r.vmax);
  const over = document.createElement('canvas');
  over.className = r.onPhoto ? 'over' : 'pic';
  paint(over, r.onPhoto ?? r.over);
  const btn = document.createElement('button');
  btn.className = 'small';
  btn.textContent = 'download PNG';
  btn.onclick = () => download(r.image, `${state.classifier.name}-${name}`);
  card.append(title, time, map, bar, over, btn);
  state.cards.push({ values, shape: e.attribution.shape, signed: def.signed, inputCanvas: over });
  $('results').append(card);
}

function addSkipped(name, reason, failed) {
  const li = document.createElement('li');
  li.dataset.method = name;
  li.dataset.kind = failed ? 'failed' : 'refused';
  li.textContent = `${name} — ${failed ? 'failed' : 'does not apply'}: ${reason}`;
  $('skipped').append(li);
}

/** Every method of the menu on the current input, one after another; each card shows the method's own time. */
async function runAll() {
  if (state.busy || !state.classifier || !state.x) return;
  state.busy = true;
  state.stop = false;
  $('stop').disabled = false;
  clearResults();
  const generation = state.generation;
  const names = Array.from($('method').options, (o) => o.value);
  let painted = 0;
  try {
    for (const name of names) {
      if (state.stop || generation !== state.generation) break;
      setStatus(`${name}…`);
      try {
        const { e, def } = await explainOne(name);
        try {
          const r = renderExplanation(e, def, state.x);
          const values = await e.attribution.data();
          addCard(name, r, e, def, values);
          state.results[name] = { values: Array.from(values), shape: e.attribution.shape, timeMs: e.timeMs, target: e.target[0] };
          painted++;
        } finally {
          e.dispose();
        }
      } catch (err) {
        addSkipped(name, err.message, !isRefusal(err));
      }
      // let the page draw between methods
      await new Promise((ok) => setTimeout(ok, 0));
    }
    setStatus(`${painted} methods painted, ${$('skipped').children.length} listed below${state.stop ? ' (stopped)' : ''}`);
    document.body.dataset.allDone = String(painted);
  } finally {
    state.busy = false;
    $('stop').disabled = true;
  }
}

// ---------------------------------------------------------------- drawing

function setUpDrawing() {
  const canvas = $('draw');
  const ctx = canvas.getContext('2d');
  const clear = () => {
    ctx.fillStyle = 'black';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  };
  clear();
  let last = null;
  const at = (ev) => {
    const b = canvas.getBoundingClientRect();
    return [((ev.clientX - b.left) * canvas.width) / b.width, ((ev.clientY - b.top) * canvas.height) / b.height];
  };
  canvas.onpointerdown = (ev) => {
    canvas.setPointerCapture(ev.pointerId);
    last = at(ev);
  };
  canvas.onpointermove = (ev) => {
    if (!last) return;
    const p = at(ev);
    ctx.strokeStyle = 'white';
    ctx.lineWidth = 18;
    ctx.lineCap = 'round';
    ctx.beginPath();
    ctx.moveTo(...last);
    ctx.lineTo(...p);
    ctx.stroke();
    last = p;
  };
  canvas.onpointerup = async () => {
    if (!last) return;
    last = null;
    state.source = { kind: 'drawing' };
    await refreshInput();
  };
  $('clear').onclick = clear;
}

// ---------------------------------------------------------------- files: picker and drop zone

async function guarded(what, fn) {
  try {
    delete document.body.dataset.error;
    await fn();
  } catch (err) {
    setStatus(`${what} failed: ${err.message}`);
    document.body.dataset.error = err.message;
  }
}

function setUpFiles() {
  $('model-folder').onchange = () => guarded('loading the model', async () => {
    const entries = entriesFromFileList($('model-folder').files);
    await loadOwn(entries);
    // a photo inside the picked folder is not used: pick the image separately
  });
  $('image-file').onchange = () => guarded('reading the image', () => loadPhoto($('image-file').files[0]));
  const drop = $('drop');
  for (const type of ['dragenter', 'dragover']) {
    document.addEventListener(type, (ev) => {
      ev.preventDefault();
      drop.classList.add('over');
    });
  }
  document.addEventListener('dragleave', () => drop.classList.remove('over'));
  document.addEventListener('drop', (ev) => {
    ev.preventDefault();
    drop.classList.remove('over');
    // the entries must be taken before the handler returns; they are read afterwards
    const pending = entriesFromDataTransfer(ev.dataTransfer);
    guarded('loading what was dropped', async () => {
      const entries = await pending;
      if (holdsModel(entries)) await loadOwn(entries);
      const image = entries.find((e) => /\.(png|jpe?g|webp|gif|bmp)$/i.test(e.path) && !e.path.includes('/'));
      if (image) {
        const bytes = await image.read();
        const file = new File([bytes], image.path);
        await loadPhoto(file);
      }
    });
  });
}

// ---------------------------------------------------------------- start

async function main() {
  setWasmPaths('./');
  // lse, cdeepex, xgems and contrast name their generator (default mnist-vae-10d); fetch it from the server.
  setGeneratorResolver((name) => loadGeneratorFromUrl(`./models/${name}`));
  const backend = await initBackend();
  const [digits, models] = await Promise.all([fetch('./digits.json').then((r) => r.json()), fetch('./models.json').then((r) => r.json())]);
  state.digits = digits;
  state.shipped = models;
  // activation-max-expert's density expert (a Gaussian RBM) trains on the page's test digits: MNIST is not on disk here.
  setDensityExpertData(async (count) => {
    const n = Math.min(count, digits.count);
    return tf.tensor4d(digits.pixels.slice(0, n * digits.size * digits.size), [n, digits.size, digits.size, 1]);
  });
  $('model').innerHTML = models.map((m) => `<option value="${m}">${m}</option>`).join('');
  $('method').innerHTML = listMethods().map((m) => `<option value="${m.name}">${m.family}: ${m.name}</option>`).join('');
  $('method').value = 'integrated-gradients';
  for (let i = 0; i < digits.count; i++) {
    const c = document.createElement('canvas');
    const x = digitTensor(i);
    paint(c, renderImage(x));
    x.dispose();
    c.title = `test digit ${i} (label ${digits.labels[i]})`;
    c.onclick = async () => {
      state.source = { kind: 'digit', index: i };
      await refreshInput();
    };
    $('digits').appendChild(c);
  }
  setUpDrawing();
  setUpFiles();
  if (models.length) await loadShipped(models[0]);
  $('model').onchange = () => guarded('switching models', async () => {
    const v = $('model').value;
    if (v === 'own') {
      if (state.classifier !== state.own) disposeClassifier(state.classifier);
      await useClassifier(state.own, `your model "${state.own.name}"`);
    }
    else await loadShipped(v);
  });
  $('target').onchange = () => clearResults();
  $('probe').onchange = () => clearResults();
  $('run').onclick = run;
  $('run-all').onclick = runAll;
  $('stop').onclick = () => (state.stop = true);
  $('opacity').oninput = () => {
    state.alpha = Number($('opacity').value);
    redrawOverlays();
  };
  setStatus(`ready (backend ${backend}${self.crossOriginIsolated ? ', cross-origin isolated' : ''})`);
  document.body.dataset.ready = 'yes';
}

main().catch((err) => {
  setStatus(`failed: ${err.message}`);
  document.body.dataset.error = err.message;
});
