// Synchronous clean-ups that must run however this process ends: on a
// normal exit, and when it is stopped by a signal (the test runner stops a
// file that exceeds its time limit with SIGTERM), which would otherwise
// leave etcd processes and data directories behind.
import { rmSync } from 'node:fs';
import { constants } from 'node:os';

const tasks = new Set<() => void>();
let installed = false;

function runAll(): void {
  for (const task of [...tasks]) {
    try {
      task();
    } catch {
      // best effort: the others still run
    }
  }
  tasks.clear();
}

/** Registers a synchronous clean-up; returns the function that unregisters it. */
export function onExit(task: () => void): () => void {
  if (!installed) {
    installed = true;
    process.once('exit', runAll);
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      process.once(sig, () => {
        runAll();
        process.exit(128 + constants.signals[sig]);
      });
    }
  }
  tasks.add(task);
  return () => {
    tasks.delete(task);
  };
}

/** Removes `dir` (recursively) on exit unless unregistered first. */
export function removeOnExit(dir: string): () => void {
  return onExit(() => rmSync(dir, { recursive: true, force: true }));
}
