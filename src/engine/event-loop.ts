/**
 * Keep the event loop turning during long synchronous-backend work.
 *
 * The wasm and cpu backends compute synchronously and their async `read` (what `tensor.data()`
 * awaits) resolves as a microtask, so an explanation written as a loop of `await t.data()` never
 * gives the event loop a turn: timers and I/O wait for the whole run. Progress bars stop drawing,
 * a server embedding Glasswing stops answering, a worker pool's results queue up, and a test
 * runner's RPC (vitest's 60 s) times out on a loaded machine although the work is fine.
 *
 * `installReadYield` wraps a backend's `read`: a read that comes after more than `YIELD_AFTER_MS`
 * without a macrotask turn first takes one (setImmediate in Node, a zero timeout elsewhere). An
 * idle loop costs one extra setImmediate per read at most; results and their order do not change.
 */
const YIELD_AFTER_MS = 100;

type Read = (dataId: object) => Promise<unknown>;
const wrapped = new WeakSet<object>();

const macrotask: (f: () => void) => void =
  typeof setImmediate === 'function' ? (f) => setImmediate(f) : (f) => setTimeout(f, 0);

let lastTurn = Date.now();
let probe = false;

/** Note when the event loop last got a turn (a probe scheduled at most once at a time). */
function watchTurns(): void {
  if (probe) return;
  probe = true;
  macrotask(() => {
    probe = false;
    lastTurn = Date.now();
  });
}

/** Wrap `backend.read` once; idempotent per backend instance (recovery re-creates the backend). */
export function installReadYield(backend: { read?: Read }): void {
  if (!backend || typeof backend.read !== 'function' || wrapped.has(backend)) return;
  const read = backend.read.bind(backend);
  backend.read = async (dataId: object) => {
    watchTurns();
    if (Date.now() - lastTurn > YIELD_AFTER_MS) {
      await new Promise<void>((r) => macrotask(r));
      lastTurn = Date.now();
    }
    return read(dataId);
  };
  wrapped.add(backend);
}
