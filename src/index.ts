export * from './core/index.js';
export { initBackend, currentBackend, type BackendName } from './engine/backend.js';
import './attribution/index.js';
