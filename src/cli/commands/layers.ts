import { flag, str } from '../args.js';
import { resolveClassifier } from '../model-arg.js';
import type { Command } from './index.js';

export const layersCommand: Command = {
  name: 'layers',
  summary: 'list the nodes of a model (names to give Grad-CAM, split points), with kinds and shapes',
  usage: [
    'glasswing layers [--model DIR|NAME] [--json]',
    '',
    '  --model  a model folder (layers or graph model) or a shipped model name (default: mnist-cnn)',
    '  --json   one JSON line: {model, input, classes, preprocessing, layers: [{name, kind, op, shape, activation}]}',
    '',
    'Graph models list their TF node names; a fused op NAME appears as NAME/preact (the convolution or',
    'matmul) and NAME (its activation). Any name can be given to --opt.layer.',
  ].join('\n'),
  async run(args) {
    const c = await resolveClassifier(str(args, 'model'));
    const layers = c.layers().map((l) => ({ name: l.name, kind: l.kind, op: l.layerClass, shape: l.shape, activation: l.activation }));
    if (flag(args, 'json')) {
      process.stdout.write(JSON.stringify({
        model: c.name, input: c.inputShape, classes: c.numClasses, preprocessing: c.preprocessing ?? null, layers,
      }) + '\n');
      return;
    }
    const w = Math.min(60, Math.max(4, ...layers.map((l) => l.name.length)));
    const lines = layers.map((l) => `${l.name.padEnd(w)}  ${(l.kind + (l.activation ? `(${l.activation})` : '')).padEnd(22)}  ${l.op.padEnd(26)}  [${l.shape.join(', ')}]`);
    process.stdout.write(`${c.name}: input [${c.inputShape.join(', ')}], ${c.numClasses} classes, ${layers.length} nodes\n${lines.join('\n')}\n`);
  },
};
