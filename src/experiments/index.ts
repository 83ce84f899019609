// Importing a file here registers it. One line per file.
export {};
import './deepfool-rho.js';
import './fgsm-training.js';
import './madry-accuracy.js';
import './geosal-figures.js';
import './consistency.js';
import './lse.js';
import './cdeepex.js';
import './biased-mnist.js';
import './activation-max.js';
import './neuron-views.js';
