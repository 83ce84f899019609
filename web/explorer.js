// The in-browser explorer: every attribution and relevance method of Glasswing on the shipped MNIST
// models, computed in the page. Served by `npm run web` (scripts/serve-web.mjs).
import {
  initBackend, setWasmPaths, loadLayersModel, Classifier, explain, listMethods, renderMap, renderImage, overlay, tf,
  setGeneratorResolver, loadGeneratorFromUrl,
} from './glasswing.js';

const $ = (id) => document.getElementById(id);
const state = { digits: null, index: 0, classifier: null, busy: false };

function paint(canvas, image) {
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(image.data), image.width, image.height), 0, 0);
}

function digitTensor(i) {
  const { pixels, size } = state.digits;
  return tf.tensor4d(pixels.slice(i * size * size, (i + 1) * size * size), [1, size, size, 1]);
}

async function loadModel(name) {
  $('status').textContent = `loading ${name}…`;
  state.classifier?.model?.dispose();
  state.classifier = Classifier.fromModel(await loadLayersModel(`./models/${name}/model.json`), { name });
  $('status').textContent = 'ready';
}

async function showPrediction(x) {
  const probs = tf.tidy(() => tf.softmax(state.classifier.logits(x)));
  const p = Array.from(await probs.data());
  probs.dispose();
  $('probs').innerHTML = p.map((v, k) => `<div>${k}</div><div><div class="bar" style="width:${(v * 200).toFixed(1)}px"></div></div><div>${(100 * v).toFixed(1)} %</div>`).join('');
}

async function run() {
  if (state.busy || !state.classifier) return;
  state.busy = true;
  const name = $('method').value;
  // lse and lae move the image toward their target: toward the class it already has is no move at all.
  const target = (name === 'lse' || name === 'lae') && $('target').value === 'predicted' ? 'second' : $('target').value;
  const x = digitTensor(state.index);
  try {
    $('status').textContent = `${name}…`;
    const e = await explain(name, state.classifier, x, {
      target: target === 'predicted' || target === 'second' ? target : Number(target),
      context: { progress: (f) => ($('status').textContent = `${name} ${Math.round(100 * f)} %`) },
    });
    const def = listMethods().find((m) => m.name === name);
    paint($('map'), renderMap(e.attribution, { colormap: def.signed ? 'diverging' : 'sequential', signed: def.signed }));
    paint($('overlay'), overlay(x, e.attribution));
    // Counterfactual methods also return the changed image (CDeepEx's I_ze, LSE's x', an attack's x + δ).
    const changed = e.extras.counterfactual ?? e.extras.perturbed ?? e.extras.adversarial;
    $('cfview').hidden = !(changed instanceof tf.Tensor);
    if (changed instanceof tf.Tensor) {
      paint($('counterfactual'), renderImage(changed));
      const row = e.logitsAfter?.[0];
      const after = row ? row.indexOf(Math.max(...row)) : undefined;
      $('cflabel').textContent = after === undefined ? 'changed image' : `changed image: classified ${after}`;
    }
    const { probe, trueClass } = e.extras;
    $('maplabel').textContent = probe && trueClass ? `${name}: why ${trueClass[0]}, not ${probe[0]}?` : `${name} → class ${e.target[0]}`;
    $('description').textContent = def.description;
    $('status').textContent = `done: ${name} in ${e.timeMs.toFixed(0)} ms`;
    document.body.dataset.done = name;
    e.dispose();
  } catch (err) {
    $('status').textContent = `failed: ${err.message}`;
    document.body.dataset.error = err.message;
  } finally {
    x.dispose();
    state.busy = false;
  }
}

async function select(i) {
  state.index = i;
  document.querySelectorAll('#digits canvas').forEach((c, k) => c.classList.toggle('on', k === i));
  const x = digitTensor(i);
  paint($('input'), renderImage(x));
  await showPrediction(x);
  x.dispose();
}

async function main() {
  setWasmPaths('./');
  // lse, cdeepex, xgems and contrast name their generator (default mnist-vae-10d); fetch it from the server.
  setGeneratorResolver((name) => loadGeneratorFromUrl(`./models/${name}`));
  const backend = await initBackend();
  const [digits, models] = await Promise.all([fetch('./digits.json').then((r) => r.json()), fetch('./models.json').then((r) => r.json())]);
  state.digits = digits;
  $('model').innerHTML = models.map((m) => `<option>${m}</option>`).join('');
  $('method').innerHTML = listMethods().map((m) => `<option value="${m.name}">${m.family}: ${m.name}</option>`).join('');
  $('method').value = 'integrated-gradients';
  $('target').innerHTML = ['predicted', 'second', ...Array.from({ length: 10 }, (_, k) => String(k))].map((t) => `<option>${t}</option>`).join('');
  for (let i = 0; i < digits.count; i++) {
    const c = document.createElement('canvas');
    const x = digitTensor(i);
    paint(c, renderImage(x));
    x.dispose();
    c.title = `test digit ${i} (label ${digits.labels[i]})`;
    c.onclick = () => select(i);
    $('digits').appendChild(c);
  }
  await loadModel(models[0]);
  $('model').onchange = async () => {
    await loadModel($('model').value);
    await select(state.index);
  };
  $('run').onclick = run;
  await select(0);
  $('status').textContent = `ready (backend ${backend})`;
  document.body.dataset.ready = 'yes';
}

main().catch((err) => {
  $('status').textContent = `failed: ${err.message}`;
  document.body.dataset.error = err.message;
});
