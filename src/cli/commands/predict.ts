import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { OptionError } from '../../core/errors.js';
import { listPhotos, loadPhoto, readImageRaw } from '../../data/index.js';
import { topK } from '../../render/photo.js';
import { flag, num, str } from '../args.js';
import { progress } from '../../util/progress.js';
import { resolveClassifier } from '../model-arg.js';
import { usesPhotos } from './explain.js';
import type { Command } from './index.js';

export const predictCommand: Command = {
  name: 'predict',
  summary: 'the top-k classes of a model for a photo or a folder of photos',
  usage: [
    'glasswing predict --model DIR|NAME (--image FILE | --images DIR) [--top K] [--json]',
    '',
    '  --model   a folder with model.json (layers or graph model, with its glasswing.json), or a shipped model name',
    '  --image   PNG or JPEG of any size, preprocessed as the model folder says',
    '  --images  a folder of PNG/JPEG files, one result line each',
    '  --top     how many classes to list (default 5)',
    '  --json    one JSON line per image: {image, top: [{index, name, probability}]}',
  ].join('\n'),
  async run(args) {
    const top = num(args, 'top', 5);
    if (!Number.isInteger(top) || top < 1) throw new OptionError(`expected --top to be a positive integer; got ${top}`);
    const image = str(args, 'image');
    const dir = str(args, 'images');
    if (!image && !dir) throw new OptionError('expected --image FILE or --images DIR; got neither');
    if (image && dir) throw new OptionError('expected one of --image and --images; got both');
    const classifier = await resolveClassifier(str(args, 'model'));
    const files = image ? [image] : listPhotos(dir!);
    if (files.length > 1) for (const f of files) await readImageRaw(f); // every file decodes before any result is printed
    const target = usesPhotos(classifier)
      ? classifier
      : { inputShape: classifier.inputShape, preprocessing: { resize: 'stretch' as const, range: [classifier.domain.low, classifier.domain.high] as [number, number] } };
    const bar = files.length > 1 ? progress(`predict ${files.length} images`, files.length) : undefined;
    const json = flag(args, 'json');
    for (const f of files) {
      const photo = await loadPhoto(f, target);
      const p = tf.tidy(() => classifier.probabilities(photo.input));
      const probs = await p.data();
      p.dispose();
      photo.input.dispose();
      const best = topK(probs, top).map((r) => ({ index: r.index, name: classifier.classNames[r.index], probability: Number(r.probability.toFixed(6)) }));
      if (json) process.stdout.write(JSON.stringify({ image: f, model: classifier.name, top: best }) + '\n');
      else process.stdout.write(`${path.basename(f)}: ${best.map((b, i) => `${i + 1}. ${b.name} ${(b.probability * 100).toFixed(1)}%`).join(', ')}\n`);
      bar?.tick(path.basename(f));
    }
    bar?.done();
  },
};
