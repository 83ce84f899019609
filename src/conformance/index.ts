export * from './bundle.js';
export * from './models.js';
export * from './references.js';
export * from './run.js';
