// Importing a file here registers it. One line per file.
export * from './activation-max.js';
export * from './activation-max-code.js';
export * from './activation-max-expert.js';
export * from './receptive-field.js';
export * from './top-activations.js';
export * from './nearest-neighbours.js';
export * from './empirical-receptive-field.js';
export * from './image-source.js';
export * from './folder-source.js';
export * from './top-adversarial.js';
