// The fenced blocks of README.md and docs/*.md, as the documentation tests
// read them (doc-examples.test.ts type-checks the ```ts ones,
// doc-examples-run.test.ts runs some of them).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';

/** A fenced block of a document. */
export interface Fence {
  doc: string;
  /** The fence's language (`ts`, `sh`; '' for none). */
  lang: string;
  /** Line of the document where the block's code starts (the line after the opening fence). */
  line: number;
  code: string;
  /**
   * The reason given by a `<!-- not-checked: reason -->` comment on the
   * line before the opening fence: the block is left out of the type check
   * (a deliberate exception, counted and printed by the test).
   */
  notChecked?: string;
}

/** `<!-- not-checked: reason -->`, alone on its line. */
const NOT_CHECKED = /^\s*<!--\s*not-checked:(.*?)-->\s*$/;

/** The fenced blocks of a document (a fence may be indented, as in a list). */
export function fences(doc: string): Fence[] {
  const lines = readFileSync(doc, 'utf8').split('\n');
  const out: Fence[] = [];
  let open: { lang: string; line: number; body: string[]; notChecked?: string } | undefined;
  lines.forEach((l, i) => {
    if (open === undefined) {
      const m = /^\s*```\s*([^\s`]*)/.exec(l);
      if (m !== null) {
        const marker = i > 0 ? NOT_CHECKED.exec(lines[i - 1]!) : null;
        open = { lang: m[1]!, line: i + 2, body: [], ...(marker !== null ? { notChecked: marker[1]!.trim() } : {}) };
      }
    } else if (/^\s*```\s*$/.test(l)) {
      out.push({ doc, lang: open.lang, line: open.line, code: `${open.body.join('\n')}\n`, ...(open.notChecked !== undefined ? { notChecked: open.notChecked } : {}) });
      open = undefined;
    } else {
      open.body.push(l);
    }
  });
  assert.equal(open, undefined, `${doc}:${(open?.line ?? 0) - 1}: a fence is never closed`);
  return out;
}

/**
 * The `<!-- not-checked: ... -->` markers of a document that do not stand
 * on the line just before a ```ts fence, as `doc:line` (a marker must say
 * which example it exempts).
 */
export function strayMarkers(doc: string): string[] {
  const lines = readFileSync(doc, 'utf8').split('\n');
  const out: string[] = [];
  lines.forEach((l, i) => {
    if (/<!--\s*not-checked/.test(l) && !(NOT_CHECKED.test(l) && /^\s*```ts\s*$/.test(lines[i + 1] ?? ''))) out.push(`${doc}:${i + 1}`);
  });
  return out;
}

/** README.md and docs/*.md. */
export function allDocuments(): string[] {
  return ['README.md', ...readdirSync('docs').filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
}

/** The ```ts block of `doc` whose code contains `marker` (exactly one). */
export function tsBlock(doc: string, marker: string): Fence {
  const found = fences(doc).filter((f) => f.lang === 'ts' && f.code.includes(marker));
  assert.equal(found.length, 1, `${doc}: ${found.length} \`\`\`ts blocks contain ${JSON.stringify(marker)}, not one`);
  return found[0]!;
}
