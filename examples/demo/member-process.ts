// The demo's handle on one member process (examples/demo/member.ts): fork,
// wait for it to be ready, send it commands over IPC, SIGKILL it, stop it.
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command, Report } from './protocol.js';

const here = dirname(fileURLToPath(import.meta.url));

/** One member of the demo cluster, run as a child process (a new one at each {@link start}). */
export class Member {
  child: ChildProcess | undefined;
  readonly listeners = new Set<(r: Report) => void>();
  alive = false;

  /**
   * @param id - the member id
   * @param members - every member's `host:port`
   * @param dataDir - the member's data directory
   */
  constructor(
    readonly id: string,
    readonly members: Record<string, string>,
    readonly dataDir: string,
  ) {}

  /** Forks the member process; resolves once it reports ready, rejects if it fails or exits first. */
  start(): Promise<void> {
    const child = fork(join(here, 'member.ts'), [this.id, JSON.stringify(this.members), this.dataDir], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child = child;
    child.on('message', (r: Report) => {
      for (const l of [...this.listeners]) l(r);
    });
    child.on('exit', () => {
      this.alive = false;
    });
    return new Promise((resolve, reject) => {
      const onReady = (r: Report): void => {
        if (r.kind === 'ready') {
          this.listeners.delete(onReady);
          this.alive = true;
          resolve();
        } else if (r.kind === 'error') {
          reject(new Error(`${this.id}: ${r.message}`));
        }
      };
      this.listeners.add(onReady);
      child.once('exit', (code) => reject(new Error(`member ${this.id} exited with ${code} while starting`)));
    });
  }

  /** Sends a command to the member, if it is running. */
  send(c: Command): void {
    if (this.alive) this.child?.send(c);
  }

  /** Sends a command and waits for the first report of `kind`. */
  ask<K extends Report['kind']>(c: Command, kind: K, timeoutMs = 10_000): Promise<Extract<Report, { kind: K }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(on);
        reject(new Error(`member ${this.id} did not answer ${c.op} within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (r: Report): void => {
        if (r.kind === kind) {
          clearTimeout(timer);
          this.listeners.delete(on);
          resolve(r as Extract<Report, { kind: K }>);
        }
      };
      this.listeners.add(on);
      this.send(c);
    });
  }

  /** Kills the member process with SIGKILL. */
  kill(): void {
    this.child?.kill('SIGKILL');
    this.alive = false;
  }

  /**
   * Stops the member process: disconnects it (it closes its member and
   * exits), and kills it with SIGKILL if it has not exited 3 s later. A
   * process that has exited already, by a signal included (its `exitCode`
   * is then null and its `signalCode` set), is left as it is.
   */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    // disconnect() on a channel already closed emits an 'error' that,
    // without a listener, is thrown
    if (child.connected) child.disconnect();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 3_000)))]);
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
