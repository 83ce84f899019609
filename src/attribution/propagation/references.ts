/**
 * Conformance entries for the Zennit LRP reference maps (FORMAT.md §4, §6.4): relevance starts at
 * onehot · logit, BatchNorm is folded into the convolution that feeds it, activations pass, Add and
 * average pooling split proportionally (Norm), max pooling routes to the first maximum.
 *
 *   lrp_epsilon, lrp_zplus, lrp_alpha2beta1  one rule on every Conv2D / DepthwiseConv2D / Dense
 *   lrp_epsilon_plus_flat                    the `epsilon-plus-flat` composite as Zennit applies it
 *                                            (unrectified: 'as-composite', explicitPadding: 'input')
 *
 * When the fixture records the rule Zennit used per layer (attrs.params.lrp.rules_by_layer) and the
 * BatchNorm folds (bn_folded_into_conv), the row's note says where Glasswing's assignment differs —
 * the map is still computed with Glasswing's own assignment, so a difference shows as a failure.
 */
import { registerReference, methodMap, type ReferenceContext, type ReferenceFn, type ReferenceValue } from '../../conformance/references.js';
import { explain } from '../../core/registry.js';
import * as tf from '@tensorflow/tfjs-core';

/** Zennit rule class → Glasswing rule name. */
const ZENNIT_RULES: Record<string, string> = {
  Epsilon: 'epsilon', ZPlus: 'zplus', Flat: 'flat', AlphaBeta: 'alpha-beta', Gamma: 'gamma', ZBox: 'zb', WSquare: 'w2',
};

/** How Glasswing's propagation treats the non-linear nodes (the Zennit name of that treatment). */
const NODE_TREATMENT: Record<string, string> = {
  activation: 'Pass', add: 'Norm', avgpool: 'Norm', 'global-avgpool': 'Norm',
};

function epsilon(ctx: ReferenceContext): number {
  const v = Number(ctx.params?.lrp_epsilon ?? 1e-6);
  return Number.isFinite(v) && v > 0 ? v : 1e-6;
}

/** Differences between the fixture's recorded rules / folds and Glasswing's, as a short note. */
function provenanceNote(ctx: ReferenceContext, output: string, rules: Record<string, string>, folded: string[]): string | undefined {
  const lrp = ctx.params?.lrp;
  if (!lrp || typeof lrp !== 'object') return undefined;
  const diffs: string[] = [];
  const byLayer = lrp.rules_by_layer?.[output] as Record<string, string> | undefined;
  if (byLayer && ctx.classifier.graph) {
    const graph = ctx.classifier.graph;
    for (const [key, zennit] of Object.entries(byLayer)) {
      // keys are '<keras layer>' or '<keras layer>.<part>': conv / linear (the linear op), act (a fused activation), sum, pool
      const dot = key.lastIndexOf('.');
      const layer = dot > 0 ? key.slice(0, dot) : key;
      const part = dot > 0 ? key.slice(dot + 1) : undefined;
      let nodes = graph.nodes.filter((n) => n.layerName === layer);
      if (part === 'act') nodes = nodes.filter((n) => n.kind === 'activation');
      if (nodes.length === 0) {
        diffs.push(`${key}: no such layer`);
        continue;
      }
      const linear = nodes.find((n) => n.name in rules);
      if (linear) {
        const want = ZENNIT_RULES[zennit];
        if (want !== rules[linear.name]) diffs.push(`${layer}: ${rules[linear.name]} (Zennit ${zennit})`);
        continue;
      }
      const treat = nodes.map((n) => NODE_TREATMENT[n.kind]).find(Boolean);
      if (treat !== zennit) diffs.push(`${layer}: ${treat ?? 'gradient'} (Zennit ${zennit})`);
    }
  }
  const bn = lrp.bn_folded_into_conv as Record<string, string> | undefined;
  if (bn && typeof bn === 'object') {
    const want = Object.keys(bn).sort();
    const got = [...folded].sort();
    if (want.join(',') !== got.join(',')) diffs.push(`BatchNorm folded: [${got.join(', ')}] (reference: [${want.join(', ')}])`);
  }
  return diffs.length ? `differs from the reference's assignment: ${diffs.join('; ')}` : undefined;
}

function lrpReference(output: string, options: (ctx: ReferenceContext) => Record<string, unknown>): ReferenceFn {
  return async (ctx): Promise<ReferenceValue> => {
    if (!ctx.params?.lrp) return methodMap(ctx, 'lrp', options(ctx));
    const e = await explain('lrp', ctx.classifier, ctx.input, { target: ctx.targets, options: options(ctx), skipRangeCheck: true });
    const note = provenanceNote(ctx, output, e.extras.rules as Record<string, string>, e.extras.foldedBatchNorms as string[]);
    const value = e.attribution;
    e.attribution = tf.zeros([1, 1, 1, 1]);
    e.dispose();
    return { value, note };
  };
}

const entries: Array<[string, ReferenceFn]> = [
  ['lrp_epsilon', lrpReference('lrp_epsilon', (ctx) => ({ rule: 'epsilon', epsilon: epsilon(ctx) }))],
  ['lrp_zplus', lrpReference('lrp_zplus', () => ({ rule: 'zplus', stabilizer: 1e-6 }))],
  ['lrp_alpha2beta1', lrpReference('lrp_alpha2beta1', () => ({ rule: 'alpha-beta', alpha: 2, beta: 1, stabilizer: 1e-6 }))],
  // Zennit's EpsilonPlusFlat exactly: z⁺ also on unrectified convolutions, an explicit padding's border counted as input
  ['lrp_epsilon_plus_flat', lrpReference('lrp_epsilon_plus_flat', (ctx) => ({
    composite: 'epsilon-plus-flat', epsilon: epsilon(ctx), stabilizer: 1e-6, unrectified: 'as-composite', explicitPadding: 'input',
  }))],
];

function register(): void {
  for (const [name, fn] of entries) registerReference(name, fn);
}

try {
  register();
} catch (e) {
  // Import cycle (conformance/references → attribution → here) with the registry not yet
  // initialised: register once the module graph has finished evaluating.
  if (!(e instanceof ReferenceError)) throw e;
  queueMicrotask(register);
}
