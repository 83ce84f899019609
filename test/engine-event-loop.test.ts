import { describe, expect, it, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/index.js';

beforeAll(async () => {
  await initBackend();
});

describe('long runs of awaited reads give the event loop a turn', () => {
  it('a timer fires during 600 ms of compute + await data(), results unchanged, nothing leaks', async () => {
    const before = tf.memory().numTensors;
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const start = Date.now();
    let sum = 0;
    let reads = 0;
    // Without the read hook this loop never leaves the microtask queue: the interval cannot fire.
    while (Date.now() - start < 600) {
      const t = tf.tidy(() => tf.sum(tf.matMul(tf.ones([64, 64]), tf.ones([64, 64]))));
      sum += (await t.data())[0];
      t.dispose();
      reads++;
    }
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(0);
    expect(sum).toBe(reads * 64 * 64 * 64);
    expect(tf.memory().numTensors).toBe(before);
  });
});
