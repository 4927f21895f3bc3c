// The output buffer of an interaction environment, and the RaftLogger that
// writes the core's log lines into it (etcd-io/raft
// rafttest/interaction_env_logger.go). Log lines below the level are
// dropped; at level `none` the harness's own output is dropped too, except
// errors, which keeps a fixture's setup quiet.
import type { RaftLogger } from '../../../src/raft/types.js';

/** Log levels, most verbose first. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'none'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** True when `s` names a log level. */
export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

/** Lines written by the harness and the nodes, with indentation for nested output. */
export class Output {
  level: LogLevel = 'info';
  private lines: string[] = [];
  private indent = '';

  /** Harness output (Ready contents, delivered messages, ...). */
  write(text: string): void {
    if (this.level === 'none') return;
    this.writeRaw(text);
  }

  /** Errors are always written. */
  error(text: string): void {
    this.writeRaw(text);
  }

  /** A line from a node's logger at `level`. */
  log(level: Exclude<LogLevel, 'none'>, msg: string): void {
    if (LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf(this.level)) return;
    this.writeRaw(`${level.toUpperCase()} ${msg}`);
  }

  /** Runs `f` with the output indented by two spaces. */
  indented(f: () => void): void {
    const prev = this.indent;
    this.indent += '  ';
    try {
      f();
    } finally {
      this.indent = prev;
    }
  }

  /** Takes the text written so far (each line ending with a newline). */
  take(): string {
    const s = this.lines.length > 0 ? this.lines.join('\n') + '\n' : '';
    this.lines = [];
    return s;
  }

  /** A RaftLogger writing into this output. */
  logger(): RaftLogger {
    return {
      debug: (m) => this.log('debug', m),
      info: (m) => this.log('info', m),
      warn: (m) => this.log('warn', m),
      error: (m) => this.log('error', m),
    };
  }

  private writeRaw(text: string): void {
    const body = text.endsWith('\n') ? text.slice(0, -1) : text;
    for (const l of body.split('\n')) this.lines.push(this.indent + l);
  }
}
