export * from './common.js';
export * from './quickshift.js';
export * from './slic.js';
