// Importing a file here registers it. One line per file.
export {};
import './engine.js';
import './propagation.js';
import './robustness.js';
import './attribution.js';
import './contrastive.js';
import './smoke.js';
import './imagenet.js';
import './scale.js';
import './metrics.js';
import './interpretation.js';
import './parallel.js';
