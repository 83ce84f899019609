// Importing a file here registers it. One line per file.
export {};
export * from './fgsm.js';
export * from './pgd.js';
export * from './attack-runner.js';
export * from './adversarial-training.js';
export * from './consistency.js';
export * from './surrogate.js';
