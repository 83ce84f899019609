/**
 * Replacement kernels for tfjs-backend-wasm 4.22: gradients that are missing (Conv2DBackpropFilter,
 * depthwise backprops, UnsortedSegmentSum), wrong (MaxPoolGrad) or slow (Conv2DBackpropInput,
 * BatchMatMul with transposes, Tile, Slice, Sum over leading axes, Identity, FusedBatchNorm, comparisons,
 * logical and/or, Select, bool casts, Maximum/Minimum, GatherV2). Installed by
 * initBackend() when the backend is wasm,
 * unless GLASSWING_STOCK_KERNELS=1. See docs/engine.md.
 */
import * as tf from '@tensorflow/tfjs-core';
import { clearDerivedCache, saveStock, stockKernels, type WasmBackend, type WasmKernelFunc } from './common.js';
import { conv2DBackpropFilter, conv2DBackpropInput, depthwiseBackpropFilter, depthwiseBackpropInput } from './conv.js';
import { batchMatMul, identity, slice, sum, tile, unsortedSegmentSum } from './misc.js';
import { maxPoolGrad } from './pool.js';
import { fusedBatchNorm } from './batchnorm.js';
import { installGradients, uninstallGradients } from './gradients.js';
import { gatherV2, maximum, minimum } from './elementwise.js';
import { cast, equal, greater, greaterEqual, less, lessEqual, logicalAnd, logicalOr, notEqual, select } from './logic.js';

const replacements: Array<[string, WasmKernelFunc]> = [
  ['Conv2DBackpropFilter', conv2DBackpropFilter],
  ['Conv2DBackpropInput', conv2DBackpropInput],
  ['Identity', identity],
  ['DepthwiseConv2dNativeBackpropInput', depthwiseBackpropInput],
  ['DepthwiseConv2dNativeBackpropFilter', depthwiseBackpropFilter],
  ['UnsortedSegmentSum', unsortedSegmentSum],
  ['MaxPoolGrad', maxPoolGrad],
  ['BatchMatMul', batchMatMul],
  ['Tile', tile],
  ['Slice', slice],
  ['Sum', sum],
  ['FusedBatchNorm', fusedBatchNorm],
  ['Greater', greater],
  ['GreaterEqual', greaterEqual],
  ['Less', less],
  ['LessEqual', lessEqual],
  ['Equal', equal],
  ['NotEqual', notEqual],
  ['LogicalAnd', logicalAnd],
  ['LogicalOr', logicalOr],
  ['Select', select],
  ['Cast', cast],
  ['Maximum', maximum],
  ['Minimum', minimum],
  ['GatherV2', gatherV2],
];

let installed = false;

/** True when GLASSWING_STOCK_KERNELS asks for the stock tfjs kernels (for before/after comparisons). */
export function stockKernelsRequested(): boolean {
  const v = typeof process !== 'undefined' ? process.env.GLASSWING_STOCK_KERNELS : undefined;
  return v != null && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

/** Names of the kernels Glasswing replaces or adds on wasm. */
export function replacedKernelNames(): string[] {
  return replacements.map(([name]) => name);
}

export function wasmKernelsInstalled(): boolean {
  return installed;
}

/** Register the replacement kernels on the wasm backend (idempotent). */
export function installWasmKernels(): void {
  if (installed) return;
  for (const [name] of replacements) saveStock(name);
  for (const name of ['Conv2D', 'Transpose', 'DepthwiseConv2dNative', 'Multiply', 'Add', 'Sub', 'Step']) saveStock(name);
  for (const [name, fn] of replacements) {
    if (tf.getKernel(name, 'wasm')) tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc: fn as unknown as tf.KernelFunc });
  }
  installGradients('wasm');
  installed = true;
}

/** Put the stock kernels back (kernels that did not exist in stock tfjs are removed). */
export function uninstallWasmKernels(): void {
  if (!installed) return;
  const stock = stockKernels();
  for (const [name] of replacements) {
    if (tf.getKernel(name, 'wasm')) tf.unregisterKernel(name, 'wasm');
    const k = stock.get(name);
    if (k) tf.registerKernel(k);
  }
  uninstallGradients('wasm');
  clearDerivedCache(tf.findBackend('wasm') as unknown as WasmBackend | undefined);
  installed = false;
}
