// Structured logs go to stderr only (pino), so stdout stays plain, stable text or JSON. pino itself
// is loaded on the first message at an enabled level: at the default level (warn) most commands
// never log, and never pay for loading it.
import { createRequire } from 'node:module';
import type pinoFunction from 'pino';
import type { Logger } from 'pino';

const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

export function createLogger(level: string): Logger {
  let real: Logger | undefined;
  const pinoLogger = (): Logger => {
    if (real !== undefined) return real;
    const pino = createRequire(import.meta.url)('pino') as typeof pinoFunction;
    real = pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 2, sync: true }));
    return real;
  };
  const threshold = LEVELS[level] ?? Infinity; // 'silent'
  const methods = new Map<string, (...args: unknown[]) => void>();
  // Level methods below the level are no-ops without pino; everything else is pino's own.
  return new Proxy({} as Logger, {
    get(_target, property) {
      if (typeof property === 'string' && property in LEVELS) {
        let method = methods.get(property);
        if (method === undefined) {
          const enabled = (LEVELS[property] as number) >= threshold;
          // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- tsc needs it to spread into pino's overloads
          method = enabled ? (...args: unknown[]) => (pinoLogger()[property as 'info'] as (...a: unknown[]) => void)(...args) : () => undefined;
          methods.set(property, method);
        }
        return method;
      }
      const logger = pinoLogger();
      const value: unknown = Reflect.get(logger, property, logger);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(logger) : value;
    },
  });
}
