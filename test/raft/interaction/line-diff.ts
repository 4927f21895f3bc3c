// A line diff for failure messages: common lines prefixed with two spaces,
// expected-only lines with "- ", actual-only lines with "+ " (a longest
// common subsequence of lines; fixture outputs are short).

/** The diff of two texts, line by line; `context` common lines are kept around each change. */
export function lineDiff(expected: string, actual: string, context = 3): string {
  const a = expected.replace(/\n$/, '').split('\n');
  const b = actual.replace(/\n$/, '').split('\n');
  const n = a.length;
  const m = b.length;
  // lcs[i][j]: length of the LCS of a[i:] and b[j:]
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const rows: { tag: ' ' | '-' | '+'; line: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      rows.push({ tag: ' ', line: a[i]! });
      i++;
      j++;
    } else if (i < n && (j >= m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      rows.push({ tag: '-', line: a[i]! });
      i++;
    } else {
      rows.push({ tag: '+', line: b[j]! });
      j++;
    }
  }
  const keep = rows.map(() => false);
  rows.forEach((r, k) => {
    if (r.tag === ' ') return;
    for (let d = Math.max(0, k - context); d <= Math.min(rows.length - 1, k + context); d++) keep[d] = true;
  });
  const out: string[] = [];
  let skipped = false;
  rows.forEach((r, k) => {
    if (!keep[k]) {
      if (!skipped) out.push('  ...');
      skipped = true;
      return;
    }
    skipped = false;
    out.push(`${r.tag} ${r.line}`);
  });
  return out.join('\n');
}
