import type { ParsedArgs } from '../args.js';
import { methodsCommand } from './methods.js';
import { explainCommand } from './explain.js';
import { predictCommand } from './predict.js';
import { layersCommand } from './layers.js';
import { trainCommand } from './train.js';
import { evaluateCommand } from './evaluate.js';
import { benchCommand, experimentCommand } from './tasks.js';
import { demoCommand } from './demo.js';
import { conformanceCommand } from './conformance.js';
import { runCommand } from './run.js';
import { workerCommand } from './worker.js';
import { statusCommand } from './status.js';
import { metricsCommand } from './metrics.js';
import { reportCommand } from './report.js';
import { interpretCommand } from './interpret.js';

export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(args: ParsedArgs): Promise<void>;
}

const list: Command[] = [
  demoCommand, explainCommand, predictCommand, layersCommand, methodsCommand, trainCommand, evaluateCommand, benchCommand, experimentCommand, conformanceCommand,
  runCommand, workerCommand, statusCommand, metricsCommand, reportCommand, interpretCommand,
];
export const commands = new Map(list.map((c) => [c.name, c]));

export function usage(): string {
  const width = Math.max(...list.map((c) => c.name.length));
  return [
    'glasswing — explain image classifiers (TensorFlow.js)',
    '',
    'usage: glasswing COMMAND [options]     (glasswing COMMAND --help for its options)',
    '',
    ...list.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'GLASSWING_BACKEND=wasm|cpu|node selects the backend (default: node if installed, else wasm).',
    '',
  ].join('\n');
}
