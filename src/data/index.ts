export * from './dataset.js';
export * from './split.js';
export * from './mnist.js';
export * from './fashion.js';
export * from './derived.js';
export * from './image.js';
export * from './photo.js';
