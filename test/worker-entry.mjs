// The entry of a worker started by test/in-worker.ts: loads TypeScript
// through tsx (a worker does not inherit the --import hooks of its
// process), calls the named export of the module with the arguments, and
// posts back its result or the error it threw.
import { parentPort, workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { module, name, args } = workerData;
let outcome;
try {
  const mod = await import(module);
  if (typeof mod[name] !== 'function') throw new Error(`${module} has no exported function ${name}`);
  outcome = { ok: true, value: await mod[name](...args) };
} catch (err) {
  const e = err instanceof Error ? err : new Error(String(err));
  outcome = { ok: false, error: { name: e.name, message: e.message, stack: e.stack ?? '' } };
}
// what the body printed reaches the parent before the outcome does
await new Promise((resolve) => process.stdout.write('', resolve));
await new Promise((resolve) => process.stderr.write('', resolve));
parentPort.postMessage(outcome);
