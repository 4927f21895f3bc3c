// The command line of the scripts in scripts/: `--help` prints the comment at
// the top of the script (what it does and its options), and an unknown option
// prints its error and that comment instead of a stack trace.
import { readFileSync } from 'node:fs';

/** The comment at the top of the script at `url` (`import.meta.url`), without its `//`. */
export function usage(url: string): string {
  const lines = readFileSync(new URL(url), 'utf8').split('\n');
  const head = lines.slice(0, lines.findIndex((l) => !l.startsWith('//')));
  return head.map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n';
}

/**
 * Runs `parse` (a strict `parseArgs` with a boolean `help` option) for the
 * script at `url`: exits 0 after printing its usage with `--help`, and 2
 * after printing the error and its usage when `parse` throws (an unknown
 * option, a missing value).
 */
export function parseCommandLine<T extends { values: { help?: boolean | undefined } }>(url: string, parse: () => T): T {
  let parsed: T;
  try {
    parsed = parse();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage(url)}`);
    process.exit(2);
  }
  if (parsed.values.help === true) {
    process.stdout.write(usage(url));
    process.exit(0);
  }
  return parsed;
}
