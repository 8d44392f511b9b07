// Where JSON text goes wrong, for a diagnostic with the true line:column (Node 20's JSON.parse
// reports no position) and a message that names only the offending character, escaped: never the
// text around it (a file read by mistake must not leak through an error message). One pass, no
// recursion (nesting depth is counted, never used as stack depth).

export interface JsonSyntaxProblem {
  /** Offset of the offending character (text.length for an unexpected end). */
  readonly offset: number;
  readonly message: string;
}

/** How one character is shown: 'x' for printable ASCII, else U+XXXX. Never more than that character. */
export function showChar(ch: string | undefined): string {
  if (ch === undefined) return 'the end of the file';
  const cp = ch.codePointAt(0) ?? 0;
  if (cp >= 0x21 && cp <= 0x7e) return `'${ch}'`;
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

const isWs = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/**
 * The first syntax problem of `text` as strict JSON (RFC 8259), or undefined when it is valid.
 * `maxDepth`: deeper nesting is reported as a problem at the bracket that goes too deep.
 */
export function findJsonSyntaxProblem(text: string, maxDepth = Number.MAX_SAFE_INTEGER): JsonSyntaxProblem | undefined {
  // Stack of open containers: '{' or '['.
  const stack: string[] = [];
  // What may come next: a value, a key (or '}' right after '{'), ':' , ',' or a closer, or the end.
  type Want = 'value' | 'value-or-close' | 'key' | 'key-or-close' | 'colon' | 'comma-or-close' | 'end';
  let want: Want = 'value';
  let i = 0;
  const n = text.length;
  const unexpected = (at: number): JsonSyntaxProblem => ({
    offset: at,
    message: `unexpected ${showChar(at < n ? String.fromCodePoint(text.codePointAt(at) ?? 0) : undefined)}`,
  });
  const afterValue = (): Want => (stack.length === 0 ? 'end' : 'comma-or-close');

  while (true) {
    while (i < n && isWs(text.charCodeAt(i))) i++;
    if (i >= n) {
      if (want === 'end') return undefined;
      return {
        offset: n,
        message: stack.length
          ? `unexpected end of the file: ${stack.length} unclosed ${stack[stack.length - 1] === '{' ? 'object' : 'array'}${stack.length > 1 ? 's and arrays' : ''}`
          : 'unexpected end of the file',
      };
    }
    const c = text.charCodeAt(i);
    switch (want) {
      case 'end':
        return { offset: i, message: `unexpected ${showChar(String.fromCodePoint(text.codePointAt(i) ?? 0))} after the end of the document` };
      case 'colon':
        if (c !== 0x3a) return { offset: i, message: `expected ':' after the key, not ${showChar(String.fromCodePoint(text.codePointAt(i) ?? 0))}` };
        i++;
        want = 'value';
        continue;
      case 'comma-or-close': {
        const top = stack[stack.length - 1];
        if (c === 0x2c) {
          i++;
          want = top === '{' ? 'key' : 'value';
          continue;
        }
        if ((c === 0x7d && top === '{') || (c === 0x5d && top === '[')) {
          i++;
          stack.pop();
          want = afterValue();
          continue;
        }
        return {
          offset: i,
          message: `expected ',' or '${top === '{' ? '}' : ']'}' after a value, not ${showChar(String.fromCodePoint(text.codePointAt(i) ?? 0))}`,
        };
      }
      case 'key':
      case 'key-or-close':
        if (c === 0x7d && want === 'key-or-close') {
          i++;
          stack.pop();
          want = afterValue();
          continue;
        }
        if (c === 0x7d) return { offset: i, message: "a ',' before '}' (trailing comma)" };
        if (c !== 0x22)
          return { offset: i, message: `expected a key in double quotes, not ${showChar(String.fromCodePoint(text.codePointAt(i) ?? 0))}` };
        {
          const problem = scanString();
          if (problem) return problem;
        }
        want = 'colon';
        continue;
      case 'value':
      case 'value-or-close': {
        if (c === 0x5d && want === 'value-or-close') {
          i++;
          stack.pop();
          want = afterValue();
          continue;
        }
        if (c === 0x5d && stack[stack.length - 1] === '[') return { offset: i, message: "a ',' before ']' (trailing comma)" };
        if (c === 0x7b || c === 0x5b) {
          if (stack.length >= maxDepth) return { offset: i, message: `nesting deeper than ${maxDepth} levels` };
          stack.push(c === 0x7b ? '{' : '[');
          i++;
          want = c === 0x7b ? 'key-or-close' : 'value-or-close';
          continue;
        }
        if (c === 0x22) {
          const problem = scanString();
          if (problem) return problem;
          want = afterValue();
          continue;
        }
        if (c === 0x2d || isDigit(c)) {
          const problem = scanNumber();
          if (problem) return problem;
          want = afterValue();
          continue;
        }
        const literal = ['true', 'false', 'null'].find((word) => text.startsWith(word, i));
        if (literal) {
          i += literal.length;
          want = afterValue();
          continue;
        }
        return unexpected(i);
      }
    }
  }

  function scanString(): JsonSyntaxProblem | undefined {
    const start = i;
    i++;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return undefined;
      }
      if (c < 0x20)
        return { offset: i, message: `${c === 0x0a ? 'a line break' : `control character ${showChar(text[i])}`} inside a string (escape it)` };
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6)))
            return { offset: i, message: 'bad \\u escape in a string (four hex digits expected)' };
          i += 6;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e))
          return { offset: i, message: `bad escape \\${e === undefined ? '' : showChar(e).replace(/^'|'$/g, '')} in a string` };
        i += 2;
        continue;
      }
      i++;
    }
    return { offset: start, message: 'a string that is never closed (missing ")' };
  }

  function scanNumber(): JsonSyntaxProblem | undefined {
    const match = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!match || match[0] === '-') return { offset: i, message: `bad number starting with ${showChar(text[i])}` };
    i += match[0].length;
    // A number glued to letters or digits (`01`, `1.`, `12abc`) is not JSON.
    if (i < n && /[0-9A-Za-z.]/.test(text[i] as string)) return { offset: i, message: `bad number: unexpected ${showChar(text[i])}` };
    return undefined;
  }
}

/** Deepest nesting of brackets in JSON text that is already known to be valid (strings skipped). */
export function jsonDepth(text: string): number {
  return jsonShape(text).depth;
}

/**
 * One pass over JSON text: its deepest nesting of objects and arrays (strings skipped) and how many
 * object members it holds (strings followed by a colon). A parsed value with fewer members lost
 * some to duplicate keys (JSON.parse keeps the last): the cheap test before the slow search.
 */
export function jsonShape(text: string): { depth: number; members: number } {
  const { depth, members } = jsonTextShape(text);
  return { depth, members };
}

/**
 * jsonShape and the length of the longest string or key as written between its quotes: a bound on
 * every string of the parsed value (an escape sequence never decodes to more characters than it has).
 */
export function jsonTextShape(text: string): { depth: number; members: number; longestString: number } {
  let depth = 0;
  let max = 0;
  let members = 0;
  let longestString = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // To the closing quote by indexOf (strings are most of a datastore's text): a quote is
      // escaped when an odd number of backslashes precedes it.
      const start = i;
      i = text.indexOf('"', i + 1);
      while (i !== -1 && text.charCodeAt(i - 1) === 0x5c && oddBackslashesBefore(text, i)) i = text.indexOf('"', i + 1);
      if (i === -1) i = n;
      if (i - start - 1 > longestString) longestString = i - start - 1;
      let j = i + 1;
      while (isWhitespaceCode(text.charCodeAt(j))) j++;
      if (text.charCodeAt(j) === 0x3a) {
        members++;
        i = j;
      }
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return { depth: max, members, longestString };
}

function oddBackslashesBefore(text: string, index: number): boolean {
  let count = 0;
  for (let k = index - 1; text.charCodeAt(k) === 0x5c; k--) count++;
  return count % 2 === 1;
}

const isWhitespaceCode = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** Object members in a parsed JSON value, counted without recursion. */
export function memberCount(value: unknown): number {
  // Keys and index loops: half the time of Object.values (an array per object) on a big datastore.
  let count = 0;
  const stack: unknown[] = [value];
  while (stack.length) {
    const top = stack.pop();
    if (top === null || typeof top !== 'object') continue;
    if (Array.isArray(top)) {
      for (let i = 0; i < top.length; i++) {
        const child: unknown = top[i];
        if (child !== null && typeof child === 'object') stack.push(child);
      }
    } else {
      const record = top as Record<string, unknown>;
      const keys = Object.keys(record);
      count += keys.length;
      for (let i = 0; i < keys.length; i++) {
        const child = record[keys[i] as string];
        if (child !== null && typeof child === 'object') stack.push(child);
      }
    }
  }
  return count;
}

const pointerSegment = (segment: string | number): string => `/${String(segment).replace(/~/g, '~0').replace(/\//g, '~1')}`;

/**
 * Offsets in valid JSON text of every object member's key and every array element, by JSON
 * pointer ('' = the document): one pass, no recursion, far less memory than a YAML document of
 * the same text (positions for diagnostics of a 100,000-container file).
 */
export function jsonPathOffsets(text: string): Map<string, number> {
  const offsets = new Map<string, number>();
  const frames: { type: 'o' | 'a'; pointer: string; index: number; expectKey: boolean }[] = [];
  let valuePointer = '';
  let i = 0;
  const n = text.length;
  const startValue = (at: number): void => {
    const top = frames[frames.length - 1];
    if (top?.type === 'a') {
      valuePointer = top.pointer + pointerSegment(top.index);
      offsets.set(valuePointer, at);
    } else if (top === undefined) {
      offsets.set('', at);
      valuePointer = '';
    }
  };
  while (i < n) {
    const c = text.charCodeAt(i);
    if (isWs(c) || c === 0x3a /* : */) {
      i++;
      continue;
    }
    const top = frames[frames.length - 1];
    if (c === 0x2c /* , */) {
      if (top?.type === 'o') top.expectKey = true;
      else if (top) top.index++;
      i++;
      continue;
    }
    if (c === 0x7d || c === 0x5d) {
      frames.pop();
      i++;
      continue;
    }
    if (c === 0x22) {
      const start = i;
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
      i++;
      if (top?.type === 'o' && top.expectKey) {
        const raw = text.slice(start, i);
        const key = raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        valuePointer = top.pointer + pointerSegment(key);
        offsets.set(valuePointer, start);
        top.expectKey = false;
      } else {
        startValue(start);
      }
      continue;
    }
    startValue(i);
    if (c === 0x7b || c === 0x5b) {
      frames.push({ type: c === 0x7b ? 'o' : 'a', pointer: valuePointer, index: 0, expectKey: c === 0x7b });
      i++;
      continue;
    }
    // A number or literal: to the next delimiter.
    while (i < n && !/[\s,\]}]/.test(text[i] as string)) i++;
  }
  return offsets;
}
