// Keeps a hand-written YAML file byte-for-byte outside the lines an edit touches. The yaml package
// re-stringifies a whole document (e.g. it moves `key: # comment` onto its own line), so the edit is
// taken as a line diff between two renderings (before/after) and replayed onto the original text.
import type { Document } from 'yaml';
import { yamlPackage } from './yaml-module.js';

/** Beyond this many differing lines a line diff is not worth it; the caller falls back. */
const MAX_EDIT_DISTANCE = 2000;

type Match = readonly [number, number];

/**
 * Matched line pairs (i in a, j in b) of a shortest edit script (Myers' O(ND) diff), ascending.
 * Undefined when the files differ in more than `maxD` lines.
 */
export function matchLines(a: readonly string[], b: readonly string[], maxD = MAX_EDIT_DISTANCE): Match[] | undefined {
  const n = a.length;
  const m = b.length;
  const limit = Math.min(n + m, maxD);
  const offset = limit + 1;
  const v = new Int32Array(2 * limit + 3);
  // trace[d] holds v[-d..d] as it was before step d (the furthest x per diagonal after d-1 edits).
  const trace: Int32Array[] = [];
  for (let d = 0; d <= limit; d++) {
    trace.push(v.slice(offset - d, offset + d + 1));
    for (let k = -d; k <= d; k += 2) {
      let x =
        k === -d || (k !== d && (v[offset + k - 1] as number) < (v[offset + k + 1] as number))
          ? (v[offset + k + 1] as number)
          : (v[offset + k - 1] as number) + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x += 1;
        y += 1;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) return backtrack(trace, n, m);
    }
  }
  return undefined;
}

function backtrack(trace: Int32Array[], n: number, m: number): Match[] {
  const matches: Match[] = [];
  let x = n;
  let y = m;
  for (let d = trace.length - 1; d >= 0; d--) {
    const row = trace[d] as Int32Array;
    const at = (k: number): number => row[k + d] as number;
    const k = x - y;
    const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = d === 0 ? 0 : at(prevK);
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      x -= 1;
      y -= 1;
      matches.push([x, y]);
    }
    if (d > 0) {
      x = prevX;
      y = prevY;
    }
  }
  return matches.reverse();
}

function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/**
 * Replays the change `before → after` (two renderings by the same stringifier) onto `original`
 * (the file as the operator wrote it, of which `before` is a normalized rendering). Lines of
 * `before` found unchanged in both `after` and `original` anchor the three texts to each other;
 * between two anchors the original is kept when nothing changed there, else that stretch is
 * replaced by its new rendering. Undefined when the texts are too different to align.
 */
export function replayLineEdits(original: string, before: string, after: string): string | undefined {
  const t = splitLines(original);
  const r0 = splitLines(before);
  const r1 = splitLines(after);
  const toOriginal = matchLines(r0, t);
  const toAfter = matchLines(r0, r1);
  if (!toOriginal || !toAfter) return undefined;
  const r0InT = new Map(toOriginal);
  const r0InR1 = new Map(toAfter);
  // Anchors (line in before, after, original), with the starts and ends as sentinels; all three
  // alignments are monotonic, so the anchors are ascending in every text.
  const anchors: [number, number, number][] = [[-1, -1, -1]];
  for (const [a, b] of toAfter) {
    const inT = r0InT.get(a);
    if (inT !== undefined) anchors.push([a, b, inT]);
  }
  anchors.push([r0.length, r1.length, t.length]);
  const out: string[] = [];
  for (let i = 0; i + 1 < anchors.length; i++) {
    const [a0, b0, t0] = anchors[i] as [number, number, number];
    const [a1, b1, t1] = anchors[i + 1] as [number, number, number];
    if (i > 0) out.push(t[t0] as string);
    let unchanged = a1 - a0 === b1 - b0;
    for (let a = a0 + 1; unchanged && a < a1; a++) unchanged = r0InR1.get(a) === b0 + (a - a0);
    if (unchanged) {
      out.push(...t.slice(t0 + 1, t1));
    } else if (a1 === a0 + 1) {
      // Pure insertion: lines only the original has here (e.g. a second blank line) stay first.
      out.push(...t.slice(t0 + 1, t1), ...r1.slice(b0 + 1, b1));
    } else {
      out.push(...r1.slice(b0 + 1, b1));
    }
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

/** The indentation the file uses, so the normalized renderings stay close to it. */
export function detectYamlStyle(text: string): { indent: number; indentSeq: boolean } {
  const lines = splitLines(text).filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  let indent = 2;
  const firstNested = lines.find((l) => /^ +\S/.test(l) && !/^ +- /.test(l));
  if (firstNested) indent = Math.min(8, Math.max(1, firstNested.length - firstNested.trimStart().length));
  let indentSeq = true;
  for (let i = 1; i < lines.length; i++) {
    const item = /^( *)- /.exec(lines[i] as string);
    const parent = /^( *)[^\s-][^#]*:\s*(#.*)?$/.exec(lines[i - 1] as string);
    if (item && parent) {
      indentSeq = (item[1] as string).length > (parent[1] as string).length;
      break;
    }
  }
  return { indent, indentSeq };
}

/**
 * The text of `edited` (a changed clone of `loaded`), written with as few changed lines of
 * `originalText` as possible; the full re-stringification when that cannot be done safely.
 */
export function renderYamlEdit(originalText: string, loaded: Document, edited: Document): string {
  const options = { ...detectYamlStyle(originalText), lineWidth: 0 };
  const full = edited.toString(options);
  const replayed = replayLineEdits(originalText, loaded.toString(options), full);
  if (replayed === undefined) return full;
  // Never trust the replay blindly: it must mean exactly what the full rendering means.
  const check = yamlPackage().parseDocument(replayed, { uniqueKeys: true });
  const same = check.errors.length === 0 && JSON.stringify(check.toJS()) === JSON.stringify(edited.toJS());
  return same ? replayed : full;
}
