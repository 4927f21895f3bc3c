// Runs a long, promise-heavy test body (the cluster simulation's seeds, the
// determinism check, the node crash seeds) in a worker thread. Node 20's
// test runner follows every async resource of a test process with an async
// hook (to attach tests declared in a describe() and uncaught errors to
// their test), which slows code that makes promises by the million: 30
// seeds of the cluster simulation took 9.5-11.5 s inside a test against
// 7.1-8.1 s in a worker thread (startup included), which has no such hook. What the body prints goes to the test's
// output as usual; what it throws fails the test with its message and stack.
import { Worker } from 'node:worker_threads';

/**
 * Calls the export `name` of `module` (a `file:` URL, usually
 * `new URL('./x.ts', import.meta.url)`) with `args` in a new worker thread,
 * and returns its result. Arguments and result cross by structured clone.
 * `signal` (the test's `t.signal`) terminates the worker when the test is
 * cancelled or times out.
 */
export async function inWorker<T>(module: URL, name: string, args: unknown[] = [], signal?: AbortSignal): Promise<T> {
  const worker = new Worker(new URL('./worker-entry.mjs', import.meta.url), { workerData: { module: module.href, name, args } });
  const stop = () => void worker.terminate();
  signal?.addEventListener('abort', stop, { once: true });
  try {
    return await new Promise<T>((resolve, reject) => {
      let settled = false;
      worker.once('message', (m: { ok: true; value: T } | { ok: false; error: { name: string; message: string; stack: string } }) => {
        settled = true;
        if (m.ok) resolve(m.value);
        else {
          const err = new Error(m.error.message);
          err.name = m.error.name;
          err.stack = m.error.stack;
          reject(err);
        }
      });
      worker.once('error', (err) => {
        settled = true;
        reject(err);
      });
      worker.once('exit', (code) => {
        if (!settled) reject(new Error(`the worker running ${name} of ${module.href} exited (code ${code}) without a result${signal?.aborted ? ': the test was cancelled' : ''}`));
      });
    });
  } finally {
    signal?.removeEventListener('abort', stop);
    // a body that left timers behind keeps its worker alive: end it
    await worker.terminate();
  }
}
