// A block of lines sc owns inside a file that is not sc's (a container's authorized_keys, the
// host's /etc/hosts): between a BEGIN and an END comment line. Lines outside are never changed;
// the block is found, replaced or removed as a whole. Pure text in, text out.

export interface BlockMarkers {
  readonly begin: string;
  readonly end: string;
}

/** The markers of sc's block in a `#`-comment file, naming what the block is for. */
export function srvctlMarkers(what: string): BlockMarkers {
  return {
    begin: `# BEGIN srvctl ${what}: managed by sc, edits inside this block are replaced`,
    end: `# END srvctl ${what}`,
  };
}

export interface FoundBlock {
  /** The lines between the markers (a BEGIN without END runs to the end of the file). */
  readonly lines: readonly string[];
  /** Whether the block is well-formed: exactly one BEGIN … END pair. */
  readonly intact: boolean;
}

const splitLines = (text: string): string[] => {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
};

const isMarker = (line: string, marker: string): boolean => line.trimEnd() === marker;

interface Scan {
  readonly outside: string[];
  /** Index in `outside` where the (first) block was. */
  readonly at: number | undefined;
  readonly inside: string[];
  readonly blocks: number;
  readonly unterminated: boolean;
}

function scan(text: string, markers: BlockMarkers): Scan {
  const outside: string[] = [];
  const inside: string[] = [];
  let at: number | undefined;
  let blocks = 0;
  let open = false;
  for (const line of splitLines(text)) {
    if (!open && isMarker(line, markers.begin)) {
      open = true;
      blocks += 1;
      at ??= outside.length;
      continue;
    }
    if (open && isMarker(line, markers.end)) {
      open = false;
      continue;
    }
    // A stray END outside a block is sc's too (left by a hand edit): dropped on rewrite.
    if (!open && isMarker(line, markers.end)) {
      blocks += 1;
      continue;
    }
    (open ? inside : outside).push(line);
  }
  return { outside, at, inside, blocks, unterminated: open };
}

/** sc's block in `text`, or undefined when there is none. */
export function findBlock(text: string, markers: BlockMarkers): FoundBlock | undefined {
  const found = scan(text, markers);
  if (found.at === undefined) return undefined;
  return { lines: found.inside, intact: found.blocks === 1 && !found.unterminated };
}

/**
 * `text` with sc's block set to `lines` (at the place of the old block, or appended), or removed
 * when `lines` is undefined. Every line outside the block stays as it was.
 */
export function replaceBlock(text: string, markers: BlockMarkers, lines: readonly string[] | undefined): string {
  const found = scan(text, markers);
  const outside = [...found.outside];
  if (lines !== undefined) {
    const block = [markers.begin, ...lines, markers.end];
    outside.splice(found.at ?? outside.length, 0, ...block);
  }
  return outside.length === 0 ? '' : `${outside.join('\n')}\n`;
}
