/** Command-line argument helpers: typed option reading with errors that say what was expected. */
import { OptionError } from '../core/errors.js';

export interface ParsedArgs {
  positional: string[];
  flags: Map<string, string | true>;
}

/** Parse `--key value`, `--key=value` and bare `--flag` (a flag followed by another --option or nothing). */
export function parseArgs(argv: string[], booleanFlags: string[] = []): ParsedArgs {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) {
        flags.set(a.slice(2, eq), a.slice(eq + 1));
      } else {
        const key = a.slice(2);
        const next = argv[i + 1];
        if (booleanFlags.includes(key) || next === undefined || next.startsWith('--')) flags.set(key, true);
        else {
          flags.set(key, next);
          i++;
        }
      }
    } else {
      positional.push(a);
    }
  }
  return { positional, flags };
}

export function str(args: ParsedArgs, key: string): string | undefined;
export function str(args: ParsedArgs, key: string, fallback: string): string;
export function str(args: ParsedArgs, key: string, fallback?: string): string | undefined {
  const v = args.flags.get(key);
  if (v === undefined) return fallback;
  if (v === true) throw new OptionError(`expected a value after --${key}; got none`);
  return v;
}

export function num(args: ParsedArgs, key: string, fallback: number): number {
  const v = str(args, key);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new OptionError(`expected a number for --${key}; got "${v}"`);
  return n;
}

export function flag(args: ParsedArgs, key: string): boolean {
  return args.flags.has(key) && args.flags.get(key) !== 'false';
}

/** Method options from repeated `--option key=value` style given as --opt.key value or --options JSON. */
export function methodOptions(args: ParsedArgs): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const json = str(args, 'options');
  if (json) {
    try {
      Object.assign(out, JSON.parse(json));
    } catch {
      throw new OptionError(`expected --options to be a JSON object such as '{"steps": 50}'; got ${json}`);
    }
  }
  for (const [k, v] of args.flags) {
    if (k.startsWith('opt.')) out[k.slice(4)] = v === true ? true : coerce(v);
  }
  return out;
}

function coerce(v: string): unknown {
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (/^-?\d+(\.\d+)?(e-?\d+)?$/i.test(v)) return Number(v);
  return v;
}

/** Options of a task (bench/experiment): every --key value that is not a known CLI flag. */
export function taskOptions(args: ParsedArgs, reserved: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of args.flags) if (!reserved.includes(k)) out[k] = v === true ? true : coerce(v);
  return out;
}
