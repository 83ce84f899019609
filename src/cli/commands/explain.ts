import * as tf from '@tensorflow/tfjs-core';
import { explain, getMethod } from '../../core/registry.js';
import { parseTarget } from '../../core/target.js';
import { OptionError } from '../../core/errors.js';
import { readImage, loadMnist } from '../../data/index.js';
import { renderExplanationPanel } from '../report/panel.js';
import { writePng } from '../../render/index.js';
import { flag, methodOptions, num, str } from '../args.js';
import { progress } from '../../util/progress.js';
import { resolveClassifier } from '../model-arg.js';
import { scalarExtras } from '../report/extras.js';
import type { Command } from './index.js';

export const explainCommand: Command = {
  name: 'explain',
  summary: 'explain one image with one method and write a heatmap PNG',
  usage: [
    'glasswing explain (--image FILE | --mnist INDEX) --method NAME --out FILE.png',
    '                  [--model DIR|NAME] [--target predicted|second|INDEX] [--opt.KEY VALUE ...] [--options JSON] [--json]',
    '',
    '  --model    a folder with model.json + weights, or a shipped model name (default: mnist-cnn)',
    '  --image    PNG or JPEG; resized and converted to the model\'s input shape',
    '  --mnist    use MNIST test digit number INDEX instead of a file',
    '  --target   class to explain (default: predicted)',
    '  --opt.KEY  a method option, e.g. --opt.steps 100 (see glasswing methods)',
    '  --json     print a JSON line with the target, logits, time and scalar extras',
  ].join('\n'),
  async run(args) {
    const methodName = str(args, 'method', 'gradient');
    const def = getMethod(methodName); // fail on an unknown method before any loading
    const out = str(args, 'out');
    if (!out) throw new OptionError('expected --out FILE.png; got none');
    if (!out.toLowerCase().endsWith('.png')) throw new OptionError(`expected --out to name a .png file; got "${out}"`);
    const classifier = await resolveClassifier(str(args, 'model'));
    const imagePath = str(args, 'image');
    let x: tf.Tensor4D;
    if (imagePath) {
      const img = await readImage(imagePath, classifier.inputShape, { range: [classifier.domain.low, classifier.domain.high] });
      x = tf.expandDims(img, 0) as tf.Tensor4D;
      img.dispose();
    } else if (args.flags.has('mnist')) {
      const index = num(args, 'mnist', 0);
      const test = await loadMnist({ split: 'test' });
      if (!Number.isInteger(index) || index < 0 || index >= test.labels.length) {
        test.dispose();
        throw new OptionError(`expected --mnist to be an index in 0..${test.labels.length - 1}; got ${index}`);
      }
      x = tf.slice(test.images, [index, 0, 0, 0], [1, -1, -1, -1]) as tf.Tensor4D;
      test.dispose();
    } else {
      throw new OptionError('expected --image FILE or --mnist INDEX; got neither');
    }
    const target = parseTarget(str(args, 'target', 'predicted'));
    const bar = progress(methodName, 100);
    let reported = false;
    const e = await explain(methodName, classifier, x, {
      target,
      options: methodOptions(args),
      context: { progress: (fraction, label) => { reported = true; bar.update(Math.round(fraction * 100), label); } },
    });
    if (reported) bar.done();
    const panel = renderExplanationPanel(x, e, { signed: def.signed, classNames: classifier.classNames });
    await writePng(out, panel);
    const summary = {
      method: e.method,
      model: classifier.name,
      target: e.target[0],
      predicted: e.logits[0].indexOf(Math.max(...e.logits[0])),
      logits: e.logits[0].map((v) => Number(v.toFixed(5))),
      timeMs: Number(e.timeMs.toFixed(2)),
      out,
      extras: scalarExtras(e.extras),
    };
    if (flag(args, 'json')) process.stdout.write(JSON.stringify(summary) + '\n');
    else process.stdout.write(`${e.method} on ${classifier.name}: target ${summary.target} (predicted ${summary.predicted}), ${summary.timeMs} ms → ${out}\n`);
    e.dispose();
    x.dispose();
  },
};
