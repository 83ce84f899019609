/**
 * A Keras-style layer that maps the raw input x to (invert ? 1 − x : x) · scale + offset inside the
 * model (seed 002's input offset/scale/inversion). Registered for serialisation so saved models load.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { InputTransformSpec } from './domain.js';

export interface InputTransformArgs {
  offset?: number;
  scale?: number;
  invert?: boolean;
  inputShape?: number[];
  name?: string;
}

export class InputTransform extends tfl.layers.Layer {
  static className = 'InputTransform';
  readonly offset: number;
  readonly scale: number;
  readonly invert: boolean;

  constructor(args: InputTransformArgs = {}) {
    super(args as ConstructorParameters<typeof tfl.layers.Layer>[0]);
    this.offset = args.offset ?? 0;
    this.scale = args.scale ?? 1;
    this.invert = args.invert ?? false;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return applyInputTransform(x, this.spec());
  }

  spec(): InputTransformSpec {
    return { offset: this.offset, scale: this.scale, invert: this.invert };
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), offset: this.offset, scale: this.scale, invert: this.invert };
  }
}
tf.serialization.registerClass(InputTransform);

export function applyInputTransform(x: tf.Tensor, t: InputTransformSpec): tf.Tensor {
  return tf.tidy(() => {
    const v = t.invert ? tf.sub(1, x) : x;
    const scaled = t.scale === 1 ? v : tf.mul(v, t.scale);
    return t.offset === 0 ? (scaled === x ? tf.clone(x) : scaled) : tf.add(scaled, t.offset);
  });
}
