export * from './colormap.js';
export * from './image.js';
export * from './heatmap.js';
export * from './grid.js';
export * from './png.js';
export * from './plots.js';
export * from './views.js';
export * from './photo.js';
