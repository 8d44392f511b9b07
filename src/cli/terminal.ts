// How output looks on this terminal: colour only on a TTY and never with NO_COLOR; FORCE_COLOR wins.
import pc from 'picocolors';

export interface Terminal {
  readonly tty: boolean;
  readonly color: boolean;
  readonly colors: ReturnType<typeof pc.createColors>;
}

export function detectTerminal(stream: NodeJS.WriteStream = process.stdout, env = process.env): Terminal {
  const tty = Boolean(stream.isTTY);
  const forced = env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false';
  const color = forced || (tty && env.NO_COLOR === undefined && env.TERM !== 'dumb');
  return { tty, color, colors: pc.createColors(color) };
}
