import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { explain, getMethod } from '../../core/registry.js';
import { parseTarget } from '../../core/target.js';
import type { Classifier } from '../../core/classifier.js';
import { OptionError } from '../../core/errors.js';
import { readImage, readImageRaw, loadMnist, loadPhoto, listPhotos } from '../../data/index.js';
import { renderExplanationPanel } from '../report/panel.js';
import { renderPhotoPanel } from '../report/photo-panel.js';
import { writePng } from '../../render/index.js';
import { flag, methodOptions, num, str } from '../args.js';
import { progress } from '../../util/progress.js';
import { resolveClassifier } from '../model-arg.js';
import { scalarExtras } from '../report/extras.js';
import type { Command } from './index.js';

/**
 * Whether images for this classifier are photos with preprocessing (glasswing.json or load
 * options: any size, crop/resize policy, colour panel) rather than the plain "resize to the input"
 * path of the MNIST-style models.
 */
export function usesPhotos(c: Classifier): boolean {
  return c.preprocessing !== undefined;
}

export const explainCommand: Command = {
  name: 'explain',
  summary: 'explain one image (or a folder of images) with one method and write heatmap PNGs',
  usage: [
    'glasswing explain (--image FILE | --images DIR | --mnist INDEX) --method NAME --out FILE.png|DIR',
    '                  [--model DIR|NAME] [--target predicted|second|INDEX|"CLASS NAME"] [--top K] [--opacity A]',
    '                  [--opt.KEY VALUE ...] [--options JSON] [--json]',
    '',
    '  --model    a folder with model.json + weights (layers or graph model; its glasswing.json gives',
    '             the preprocessing and class names), or a shipped model name (default: mnist-cnn)',
    '  --image    PNG or JPEG of any size, preprocessed as the model folder says (else resized to the input)',
    '  --images   a folder of PNG/JPEG files: each gets its own PNG in --out DIR (DIR/NAME.png)',
    '  --mnist    use MNIST test digit number INDEX instead of a file',
    '  --target   class to explain: predicted (default), second, an index, or a class name',
    '  --top      classes listed with their probabilities on a photo panel (default 5)',
    '  --opacity  opacity of the map over the photo, 0..1 (default 0.6)',
    '  --opt.KEY  a method option, e.g. --opt.steps 100 (see glasswing methods)',
    '  --json     print a JSON line per image with the target, logits, time and scalar extras',
  ].join('\n'),
  async run(args) {
    const methodName = str(args, 'method', 'gradient');
    const def = getMethod(methodName); // fail on an unknown method before any loading
    const out = str(args, 'out');
    const imagesDir = str(args, 'images');
    if (!out) throw new OptionError(`expected --out ${imagesDir ? 'DIR' : 'FILE.png'}; got none`);
    if (imagesDir) {
      if (out.toLowerCase().endsWith('.png')) throw new OptionError(`expected --out to name a folder for --images; got "${out}"`);
      if (fs.existsSync(out) && !fs.statSync(out).isDirectory()) throw new OptionError(`expected --out to name a folder for --images; got the file "${out}"`);
    } else if (!out.toLowerCase().endsWith('.png')) {
      throw new OptionError(`expected --out to name a .png file; got "${out}"`);
    }
    const top = num(args, 'top', 5);
    if (!Number.isInteger(top) || top < 1) throw new OptionError(`expected --top to be a positive integer; got ${top}`);
    const opacity = num(args, 'opacity', 0.6);
    if (!(opacity >= 0 && opacity <= 1)) throw new OptionError(`expected --opacity in [0, 1]; got ${opacity}`);
    const classifier = await resolveClassifier(str(args, 'model'));
    const target = parseTarget(str(args, 'target', 'predicted'), classifier.classNames);
    const options = methodOptions(args);
    const json = flag(args, 'json');

    /** Explain one input and write its panel; returns the summary line. */
    const one = async (x: tf.Tensor4D, file: string, photo?: Awaited<ReturnType<typeof loadPhoto>>, bar = true) => {
      const pbar = bar ? progress(methodName, 100) : undefined;
      let reported = false;
      const e = await explain(methodName, classifier, x, {
        target,
        options,
        context: pbar ? { progress: (fraction, label) => { reported = true; pbar.update(Math.round(fraction * 100), label); } } : {},
      });
      if (reported) pbar?.done();
      try {
        if (photo) {
          const probabilities = tf.tidy(() => tf.softmax(tf.tensor1d(e.logits[0])).dataSync());
          writePng(file, renderPhotoPanel(photo.raw, photo.info, e, { signed: def.signed, classNames: classifier.classNames, probabilities, top, opacity }));
        } else {
          writePng(file, renderExplanationPanel(x, e, { signed: def.signed, classNames: classifier.classNames }));
        }
        const predicted = e.logits[0].indexOf(Math.max(...e.logits[0]));
        return {
          method: e.method,
          model: classifier.name,
          target: e.target[0],
          targetName: classifier.classNames[e.target[0]],
          predicted,
          predictedName: classifier.classNames[predicted],
          logits: e.logits[0].map((v) => Number(v.toFixed(5))),
          timeMs: Number(e.timeMs.toFixed(2)),
          out: file,
          extras: scalarExtras(e.extras),
        };
      } finally {
        e.dispose();
      }
    };
    const report = (s: Awaited<ReturnType<typeof one>>, image?: string) => {
      if (json) process.stdout.write(JSON.stringify(image ? { image, ...s } : s) + '\n');
      else process.stdout.write(`${s.method} on ${classifier.name}${image ? ` (${path.basename(image)})` : ''}: target ${s.targetName ?? s.target} (predicted ${s.predictedName ?? s.predicted}), ${s.timeMs} ms → ${s.out}\n`);
    };

    if (imagesDir) {
      const files = listPhotos(imagesDir);
      // decode every file first: a corrupt one fails the call before any PNG is written
      for (const f of files) await readImageRaw(f);
      const names = new Set<string>();
      for (const f of files) {
        const base = path.basename(f, path.extname(f));
        if (names.has(base)) throw new OptionError(`expected image names that differ without their extension in ${imagesDir}; got two named "${base}"`);
        names.add(base);
      }
      fs.mkdirSync(out, { recursive: true });
      const bar = progress(`${methodName} ${files.length} images`, files.length);
      for (const f of files) {
        const photo = await loadPhoto(f, usesPhotos(classifier) ? classifier : { inputShape: classifier.inputShape, preprocessing: { resize: 'stretch', range: [classifier.domain.low, classifier.domain.high] } });
        try {
          report(await one(photo.input, path.join(out, `${path.basename(f, path.extname(f))}.png`), usesPhotos(classifier) ? photo : undefined, false), f);
        } finally {
          photo.input.dispose();
        }
        bar.tick(path.basename(f));
      }
      bar.done();
      return;
    }

    const imagePath = str(args, 'image');
    if (imagePath && usesPhotos(classifier)) {
      const photo = await loadPhoto(imagePath, classifier);
      try {
        report(await one(photo.input, out, photo));
      } finally {
        photo.input.dispose();
      }
      return;
    }
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
      throw new OptionError('expected --image FILE, --images DIR or --mnist INDEX; got none of them');
    }
    try {
      report(await one(x, out));
    } finally {
      x.dispose();
    }
  },
};
