// A small reader and writer for datadriven test files, in the format of
// cockroachdb/datadriven as etcd-io/raft uses it for its testdata/*.txt:
//
//   # comment lines and blank lines between cases
//   command arg key=value key=(v1,v2)
//   another-command           <- further lines of the block: more commands
//   ----
//   expected output, up to the next blank line
//
// Output that itself contains blank lines is written between two double
// separators:
//
//   command
//   ----
//   ----
//   output with
//
//   a blank line
//   ----
//   ----
//
// `rewriteFixture` writes a file back with new outputs and everything else
// (comments, commands, spacing) unchanged.
import { readFileSync } from 'node:fs';

/** One argument of a command line: `key`, `key=value` or `key=(v1,v2,...)`. */
export interface CmdArg {
  key: string;
  vals: string[];
}

/** A parsed command line. */
export interface CommandLine {
  cmd: string;
  args: CmdArg[];
}

/** One test case: a block of command lines and the output expected from them. */
export interface TestCase {
  /** 1-based line number of the first command line. */
  line: number;
  /** The command lines, as written. */
  commands: string[];
  /** The expected output, ending with a newline (or empty). */
  expected: string;
}

/** A file split into verbatim text and test cases, so that it can be written back. */
export interface Fixture {
  path: string;
  /** Text before each case (comments, blank lines); `prefix[i]` precedes `cases[i]`. */
  prefix: string[];
  cases: TestCase[];
  /** Text after the last case. */
  suffix: string;
}

const SEPARATOR = '----';

/** Reads and parses a fixture file. */
export function readFixture(path: string): Fixture {
  return parseFixture(path, readFileSync(path, 'utf8'));
}

/**
 * Parses fixture text.
 * @throws Error with the file and line when a command block has no separator
 */
export function parseFixture(path: string, text: string): Fixture {
  const lines = text.split('\n');
  // A final newline does not start another (empty) line.
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const prefix: string[] = [];
  const cases: TestCase[] = [];
  let pending: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.trim() === '' || line.startsWith('#')) {
      pending.push(line);
      i++;
      continue;
    }
    const start = i;
    const commands: string[] = [];
    while (i < lines.length && lines[i] !== SEPARATOR) {
      if (lines[i]!.trim() === '') throw new Error(`${path}:${i + 1}: blank line inside the command block of line ${start + 1}`);
      commands.push(lines[i]!);
      i++;
    }
    if (i >= lines.length) throw new Error(`${path}:${start + 1}: command without a "${SEPARATOR}" separator`);
    i++; // the separator
    const out: string[] = [];
    if (i < lines.length && lines[i] === SEPARATOR) {
      // Double-separator form: ends at "----\n----".
      i++;
      while (i < lines.length && !(lines[i] === SEPARATOR && lines[i + 1] === SEPARATOR)) {
        out.push(lines[i]!);
        i++;
      }
      if (i >= lines.length) throw new Error(`${path}:${start + 1}: unterminated "${SEPARATOR}" block`);
      i += 2;
    } else {
      while (i < lines.length && lines[i]!.trim() !== '') {
        out.push(lines[i]!);
        i++;
      }
    }
    prefix.push(pending.length > 0 ? pending.join('\n') + '\n' : '');
    pending = [];
    cases.push({ line: start + 1, commands, expected: out.length > 0 ? out.join('\n') + '\n' : '' });
  }
  return { path, prefix, cases, suffix: pending.length > 0 ? pending.join('\n') + '\n' : '' };
}

/** Formats one case with the given output (which should end with a newline). */
function formatCase(c: TestCase, output: string): string {
  const body = output.endsWith('\n') || output === '' ? output : output + '\n';
  const lines = body === '' ? [] : body.slice(0, -1).split('\n');
  const needsDouble = lines.some((l) => l.trim() === '');
  let s = c.commands.join('\n') + '\n' + SEPARATOR + '\n';
  if (needsDouble) s += SEPARATOR + '\n' + body + SEPARATOR + '\n' + SEPARATOR + '\n';
  else s += body;
  return s;
}

/**
 * The text of the fixture with each case's output replaced by `outputs[i]`
 * (cases past the end of `outputs` keep their expected output).
 */
export function rewriteFixture(f: Fixture, outputs: readonly string[]): string {
  let s = '';
  for (let i = 0; i < f.cases.length; i++) {
    const c = f.cases[i]!;
    let pre = f.prefix[i]!;
    // Cases are separated by at least one blank line.
    if (i > 0 && !pre.startsWith('\n')) pre = '\n' + pre;
    s += pre + formatCase(c, i < outputs.length ? outputs[i]! : c.expected);
  }
  if (f.suffix !== '') s += '\n' + f.suffix.replace(/^\n/, '');
  return s;
}

/**
 * Splits a command line into the command and its arguments. Values in
 * parentheses may be separated by commas or spaces; double-quoted tokens
 * may contain spaces.
 * @throws Error on an unbalanced parenthesis or quote
 */
export function parseLine(line: string): CommandLine {
  const tokens: string[] = [];
  let cur = '';
  let depth = 0;
  let quoted = false;
  for (const ch of line) {
    if (quoted) {
      cur += ch;
      if (ch === '"') quoted = false;
      continue;
    }
    if (ch === '"') {
      quoted = true;
      cur += ch;
    } else if (ch === '(') {
      depth++;
      cur += ch;
    } else if (ch === ')') {
      depth--;
      if (depth < 0) throw new Error(`unbalanced ")" in ${JSON.stringify(line)}`);
      cur += ch;
    } else if ((ch === ' ' || ch === '\t') && depth === 0) {
      if (cur !== '') tokens.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  if (quoted || depth !== 0) throw new Error(`unbalanced quote or parenthesis in ${JSON.stringify(line)}`);
  if (cur !== '') tokens.push(cur);
  if (tokens.length === 0) throw new Error('empty command line');
  const [cmd, ...rest] = tokens;
  return { cmd: cmd!, args: rest.map(parseArg) };
}

function unquote(s: string): string {
  return s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? (JSON.parse(s) as string) : s;
}

function parseArg(tok: string): CmdArg {
  const eq = tok.indexOf('=');
  if (eq < 0 || tok.startsWith('"')) return { key: unquote(tok), vals: [] };
  const key = tok.slice(0, eq);
  const v = tok.slice(eq + 1);
  if (v.startsWith('(') && v.endsWith(')')) {
    const inner = v.slice(1, -1).trim();
    return { key, vals: inner === '' ? [] : inner.split(/[\s,]+/).map(unquote) };
  }
  return { key, vals: [unquote(v)] };
}
