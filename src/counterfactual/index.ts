// Importing a file here registers it. One line per file.
export {};
export * from './local-linear.js';
import './weight-saliency.js';
export * from './deepfool.js';
export * from './geosal.js';
import './lse.js';
import './cdeepex.js';
import './contrast.js';
export { setGeneratorResolver, type GeneratorOption } from './latent.js';
