// A line diff of expected vs got output for a failed case: the longest common subsequence of
// their lines, as rows { sign: " " | "-" | "+", text }. Hand-written, no library; bounded: past
// MAX_CELLS line pairs only the lines from the first difference on are compared side by side.

const MAX_CELLS = 4_000_000;

function lines(text) {
  const all = String(text).split("\n");
  if (all.length > 1 && all[all.length - 1] === "") all.pop();
  return all;
}

export function diffLines(expected, got) {
  const a = lines(expected);
  const b = lines(got);
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start += 1;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA -= 1;
    endB -= 1;
  }
  const rows = a.slice(0, start).map((text) => ({ sign: " ", text }));
  const midA = a.slice(start, endA);
  const midB = b.slice(start, endB);
  if (midA.length * midB.length > MAX_CELLS) {
    midA.forEach((text) => rows.push({ sign: "-", text }));
    midB.forEach((text) => rows.push({ sign: "+", text }));
  } else {
    rows.push(...lcs(midA, midB));
  }
  a.slice(endA).forEach((text) => rows.push({ sign: " ", text }));
  return rows;
}

function lcs(a, b) {
  const n = a.length;
  const m = b.length;
  const table = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i -= 1) {
    for (let j = m - 1; j >= 0; j -= 1) {
      table[i][j] = a[i] === b[j] ? table[i + 1][j + 1] + 1
        : Math.max(table[i + 1][j], table[i][j + 1]);
    }
  }
  const rows = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      rows.push({ sign: " ", text: a[i] });
      i += 1;
      j += 1;
    } else if (i < n && (j === m || table[i + 1][j] >= table[i][j + 1])) {
      rows.push({ sign: "-", text: a[i] }); // expected lines first, then what came instead
      i += 1;
    } else {
      rows.push({ sign: "+", text: b[j] });
      j += 1;
    }
  }
  return rows;
}

// Rows near the changes only (a few lines of context), so a long output stays readable.
export function aroundChanges(rows, context = 3) {
  const keep = rows.map(() => false);
  rows.forEach((row, index) => {
    if (row.sign === " ") return;
    for (let k = Math.max(0, index - context); k <= Math.min(rows.length - 1, index + context); k += 1) {
      keep[k] = true;
    }
  });
  const shown = [];
  let skipped = 0;
  rows.forEach((row, index) => {
    if (keep[index]) {
      if (skipped) shown.push({ sign: "…", text: `${skipped} equal line${skipped === 1 ? "" : "s"}` });
      skipped = 0;
      shown.push(row);
    } else {
      skipped += 1;
    }
  });
  if (skipped) shown.push({ sign: "…", text: `${skipped} equal line${skipped === 1 ? "" : "s"}` });
  return shown;
}
