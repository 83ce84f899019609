/**
 * Run a child process without blocking the test worker's event loop. spawnSync holds the loop for as
 * long as the child runs; past 60 s vitest's worker RPC (task updates to the main process) times out
 * and the run ends with "Timeout calling onTaskUpdate" although every test passed.
 */
import { spawn } from 'node:child_process';

export interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runChild(
  command: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number; input?: string } = {},
): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = opts.timeout ? setTimeout(() => child.kill('SIGKILL'), opts.timeout) : undefined;
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
    if (child.stdin) {
      // A child that exits before reading its input closes the pipe: not an error of the test.
      child.stdin.on('error', () => {});
      child.stdin.end(opts.input);
    }
  });
}

/** `node ARGS…` with the running Node binary. */
export function runNode(args: string[], opts: Parameters<typeof runChild>[2] = {}): Promise<ChildResult> {
  return runChild(process.execPath, args, opts);
}

/**
 * The path of `command`, installing it first with a project script when missing (apt-get can take
 * minutes on a new machine: run asynchronously, for the reason above).
 */
export async function ensureCommand(command: string, installScript: string): Promise<string> {
  const which = async () => (await runChild('sh', ['-c', `command -v ${command}`])).stdout.trim();
  const found = await which();
  if (found) return found;
  const r = await runChild(installScript, []);
  process.stderr.write(r.stdout + r.stderr);
  const after = await which();
  if (r.status !== 0 || !after) throw new Error(`${installScript} did not install ${command} (exit ${r.status ?? r.signal})`);
  return after;
}
