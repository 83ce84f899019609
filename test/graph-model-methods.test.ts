/**
 * Every registered method on a graph model: the same outcome as on the LayersModel it was exported
 * from (runs, or refuses with the same typed error), the same attribution, no leaked tensors.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../src/engine/backend.js';
import { Classifier } from '../src/core/classifier.js';
import { explain, listMethods } from '../src/core/registry.js';
import '../src/attribution/index.js';
import '../src/attribution/propagation/index.js';
import '../src/counterfactual/index.js';
import '../src/robustness/index.js';
import { buildMobileNetV2Shaped } from '../src/models/imagenet-shapes.js';
import { exportGraphModel } from '../src/models/graph-model-export.js';
import { clearWeightCache } from '../src/attribution/propagation/weight-cache.js';
import { SMALL_OPTIONS } from '../bench/smoke.js';
import { relL2 } from './support/graph-model-builder.js';
import { plotLayerActivations, plotLayerFilters } from '../src/models/plots.js';

let model: tfl.LayersModel;
let graph: Classifier;
let twin: Classifier;
let x: tf.Tensor4D;

beforeAll(async () => {
  await initBackend();
  model = buildMobileNetV2Shaped({ inputShape: [32, 32, 3], alpha: 0.35, depth: 1, lastFilters: 32, numClasses: 5, seed: 12 });
  const art = exportGraphModel(model);
  graph = await Classifier.fromGraphModel({ modelJson: art.modelJson, weights: art.shards }, { name: 'graph' });
  twin = Classifier.fromModel(model, { name: 'twin' });
  x = tf.randomUniform([2, 32, 32, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
});

afterAll(() => {
  x.dispose();
  graph.dispose();
  model.dispose();
});

type Outcome = { ok: true; attribution: tf.Tensor; target: number[] } | { ok: false; error: string };

async function run(c: Classifier, method: string): Promise<Outcome> {
  try {
    const e = await explain(method, c, x, { target: [1, 'predicted'], options: SMALL_OPTIONS[method] ?? {} });
    const attribution = tf.clone(e.attribution);
    const target = e.target;
    e.dispose();
    return { ok: true, attribution, target };
  } catch (err) {
    return { ok: false, error: `${(err as Error).name}: ${(err as Error).message.replace(/"(graph|twin)"/g, '"C"')}` };
  }
}

describe('every registered method on a graph model', () => {
  const names = () => listMethods().map((m) => m.name);
  it('has methods to check', () => {
    expect(names().length).toBeGreaterThan(30);
  });

  it('runs (or refuses) exactly as on the LayersModel twin, with the same maps', async () => {
    const rows: string[] = [];
    let ran = 0;
    for (const method of names()) {
      for (const c of [graph, twin]) { // warm caches (LRP canonized weights, footprints)
        const w = await run(c, method);
        if (w.ok) w.attribution.dispose();
      }
      const before = tf.memory().numTensors;
      const g = await run(graph, method);
      const t = await run(twin, method);
      if (g.ok) tf.dispose(g.attribution); // measured below on a second pair
      if (t.ok) tf.dispose(t.attribution);
      expect(tf.memory().numTensors, `${method} leaks`).toBe(before);
      const [g2, t2] = [await run(graph, method), await run(twin, method)];
      expect(g2.ok, `${method}: ${g2.ok ? '' : g2.error}`).toBe(t2.ok);
      if (g2.ok && t2.ok) {
        ran++;
        expect(g2.target, method).toEqual(t2.target);
        expect(g2.attribution.shape, method).toEqual(t2.attribution.shape);
        const d = relL2(g2.attribution, t2.attribution);
        rows.push(`${method} ${d.toExponential(1)}`);
        expect(Number.isFinite(d) ? d : 1, method).toBeLessThan(1e-4);
        tf.dispose([g2.attribution, t2.attribution]);
      } else if (!g2.ok && !t2.ok) {
        expect(g2.error, method).toBe(t2.error);
        rows.push(`${method} refused on both: ${g2.error.slice(0, 60)}`);
      }
    }
    clearWeightCache();
    console.log(`${ran} methods equal on graph model and twin:\n${rows.join('\n')}`);
    expect(ran).toBeGreaterThan(25);
  }, 600_000);
});

describe('model views on a graph model', () => {
  it('filters and feature maps of a named node are the same pictures as on the twin', () => {
    for (const layer of [undefined, 'block_1_expand']) {
      const [a, b] = [plotLayerFilters(graph, { layer }), plotLayerFilters(twin, { layer })];
      expect([a.width, a.height]).toEqual([b.width, b.height]);
      expect(Buffer.from(a.data).equals(Buffer.from(b.data)), String(layer)).toBe(true);
    }
    const x1 = tf.slice(x, 0, 1);
    const [a, b] = [plotLayerActivations(graph, x1, 'block_1_expand_relu'), plotLayerActivations(twin, x1, 'block_1_expand_relu')];
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
    x1.dispose();
  });
});
