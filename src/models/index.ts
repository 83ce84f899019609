export * from './architectures.js';
export * from './train.js';
export * from './evaluate.js';
export * from './io.js';
export * from './resnet.js';
export * from './plots.js';
export * from './imagenet-shapes.js';
