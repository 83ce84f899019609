// Importing a method file registers it. One line per method.
import './gradient.js';
import './gradient-x-input.js';
import './saliency.js';
import './sensitivity.js';
import './integrated-gradients.js';
import './smoothgrad.js';
import './guided-backprop.js';
import './deconvnet.js';
import './grad-cam.js';
import './guided-grad-cam.js';
import './occlusion.js';
import './propagation/index.js';
import './lime.js';
import './prediction-difference.js';
import './deeplift.js';
import './deeplift-shap.js';
import './gradient-shap.js';
