/**
 * The browser build of Glasswing (dist/browser/glasswing.js, made by `npm run build:browser`): the
 * classifier, the method registry with every attribution and relevance-propagation method, the
 * decision-geometry methods (local-linear, weight-saliency, DeepFool, GeoSal), the FGSM/PGD
 * attacks, the latent counterfactual methods (lse, lae, cdeepex, xgems, contrast; their generators
 * load from URLs: `setGeneratorResolver(name => loadGeneratorFromUrl(...))`), and the heatmap
 * renderers, and the user's own models and photos (a picked or dropped folder → Classifier with its
 * glasswing.json; a decoded photo → the model's input by its preprocessing) — without the Node-only
 * parts (files, PNG encoding, datasets, training scripts).
 * Models load from URLs with `loadLayersModel`; the wasm backend fetches its .wasm files from the
 * folder given to `setWasmPaths` (the build copies them beside the bundle).
 *
 * @example
 * import { initBackend, setWasmPaths, loadLayersModel, Classifier, explain, renderMap } from './glasswing.js';
 * setWasmPaths('./');
 * await initBackend();
 * const c = Classifier.fromModel(await loadLayersModel('models/mnist-cnn/model.json'));
 * const e = await explain('integrated-gradients', c, x);
 * const img = renderMap(e.attribution, { index: 0 });   // RGBA pixels for a canvas ImageData
 */
export * as tf from '@tensorflow/tfjs-core';
export { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
export { loadLayersModel } from '@tensorflow/tfjs-layers';
export * from './engine/backend.js';
// The page chooses the wasm build and its threads (setWasmThreads, before initBackend); this initBackend applies it.
export {
  initBrowserBackend as initBackend, setWasmThreads, wasmThreadsSetting, autoWasmThreads, isCrossOriginIsolated, type WasmThreadsSetting,
} from './engine/wasm-threads-browser.js';
export { installWasmKernels, uninstallWasmKernels, replacedKernelNames, wasmKernelsInstalled } from './engine/wasm-kernels/index.js';
export {
  setMemoryBudget, getMemoryBudget, withMemoryBudget, batchSizeFor, footprint, activationBytes, assertFits, availableBudget, parseBytes, formatBytes,
  DEFAULT_MEMORY_BUDGET, WASM_HEAP_LIMIT, FOOTPRINT_SAFETY, type MemoryKind, type Footprint,
} from './engine/memory.js';
export { guardBackend, resetBackend, backendHealthy, isWasmAbort, backendResetCount } from './engine/recovery.js';
// The worker pool on Web Workers: each runs dist/browser/glasswing-worker.js (its own wasm backend,
// Glasswing's kernels, the methods); the classifier is sent once per worker. The default transport
// loads the worker bundle from beside this bundle; setPoolTransport(browserTransport(url)) changes it.
export * from './engine/pool/index.js';
export { browserTransport } from './engine/pool/transport-browser.js';
import { setPoolTransport } from './engine/pool/pool.js';
import { setWorkers } from './engine/pool/settings.js';
import { browserTransport } from './engine/pool/transport-browser.js';
try {
  setPoolTransport(browserTransport(new URL('./glasswing-worker.js', import.meta.url)));
} catch {
  // a bundle loaded from a URL the worker's cannot be resolved against (data:, blob:): one thread
  // unless the page sets a transport itself
  setWorkers(1);
}
export * from './core/index.js';
export * from './render/colormap.js';
export * from './render/image.js';
export * from './render/heatmap.js';
import './attribution/index.js';
import './counterfactual/local-linear.js';
import './counterfactual/weight-saliency.js';
import './counterfactual/deepfool.js';
import './counterfactual/geosal.js';
import './robustness/fgsm.js';
import './robustness/pgd.js';
import './counterfactual/lse.js';
import './counterfactual/cdeepex.js';
import './counterfactual/contrast.js';
export * from './interpretation/activation-max.js';
export * from './interpretation/activation-max-code.js';
export * from './interpretation/activation-max-expert.js';
export { setGeneratorResolver } from './counterfactual/latent.js';
export { loadGeneratorFromUrl } from './generative/format.js';
export { renderContrast } from './generative/render.js';
// graph models and model folders (a dropped folder's files → Classifier with its glasswing.json)
export * from './models/graph-model.js';
export * from './models/model-files.js';
export { exportGraphModel, type GraphModelArtifacts, type GraphModelExportOptions } from './models/graph-model-export.js';
// the explorer's own-model path: a picked or dropped folder → Classifier; a photo of any size → the model's input
export * from './models/model-folder-browser.js';
export * from './data/pixels.js';
export * from './data/photo-input.js';
// seeded ImageNet-shaped test models (MobileNetV2, ResNet-50, Inception shapes): benchmarks and tests in the page
export { buildMobileNetV2Shaped, buildResNet50Shaped, buildInceptionShaped } from './models/imagenet-shapes.js';
