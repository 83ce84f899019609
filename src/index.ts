export * from './core/index.js';
export { initBackend, currentBackend, type BackendName } from './engine/backend.js';
export * from './util/random.js';
export * from './util/progress.js';
export * from './tasks/registry.js';
import './attribution/index.js';
import './counterfactual/index.js';
import './robustness/index.js';
export * from './models/index.js';
