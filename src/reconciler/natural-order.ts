// Orders names the way people read them: `sc-17-9` before `sc-17-10`. Locale-independent, so a
// plan lists its actions identically on every host and in golden files.
//
// Names split into runs of digits and of other characters, compared run by run: two digit runs by
// magnitude (leading zeros ignored; on a tie the shorter run first), anything else by UTF-16 code
// units; a name that runs out of runs first sorts first. Sorting thousands of objects calls this
// ~10⁵ times, so it walks both strings in place instead of splitting them.

const isDigit = (code: number): boolean => code >= 48 && code <= 57;

/** The end of the run of digits or non-digits that starts at `start`. */
function runEnd(s: string, start: number): number {
  const digits = isDigit(s.charCodeAt(start));
  let end = start + 1;
  while (end < s.length && isDigit(s.charCodeAt(end)) === digits) end++;
  return end;
}

export function compareNatural(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const aEnd = runEnd(a, i);
    const bEnd = runEnd(b, j);
    if (isDigit(a.charCodeAt(i)) && isDigit(b.charCodeAt(j))) {
      // By magnitude, without Number(), so long digit runs cannot lose precision.
      let x = i;
      while (x < aEnd - 1 && a.charCodeAt(x) === 48) x++;
      let y = j;
      while (y < bEnd - 1 && b.charCodeAt(y) === 48) y++;
      if (aEnd - x !== bEnd - y) return aEnd - x - (bEnd - y);
      for (; x < aEnd; x++, y++) {
        const d = a.charCodeAt(x) - b.charCodeAt(y);
        if (d !== 0) return d < 0 ? -1 : 1;
      }
      if (aEnd - i !== bEnd - j) return aEnd - i - (bEnd - j);
    } else {
      const n = Math.min(aEnd - i, bEnd - j);
      for (let k = 0; k < n; k++) {
        const d = a.charCodeAt(i + k) - b.charCodeAt(j + k);
        if (d !== 0) return d < 0 ? -1 : 1;
      }
      if (aEnd - i !== bEnd - j) return aEnd - i < bEnd - j ? -1 : 1;
    }
    i = aEnd;
    j = bEnd;
  }
  if (i < a.length) return 1;
  if (j < b.length) return -1;
  return 0;
}
