// Kernel parameters (sysctl), read and set in the run's --netns (net.* keys are per namespace).
import type { Exec } from './types.js';

export interface SysctlDriver {
  /** The current value of `key` (e.g. `net.ipv4.ip_forward` → `1`). */
  read(key: string): Promise<string>;
  write(key: string, value: string): Promise<void>;
}

const KEY = /^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$/;

function checkKey(key: string): string {
  if (!KEY.test(key)) throw new Error(`"${key}" is not a sysctl key`);
  return key;
}

export function createSysctlDriver(exec: Exec): SysctlDriver {
  return {
    async read(key) {
      return (await exec.run('sysctl', ['-n', checkKey(key)])).stdout.trim();
    },
    async write(key, value) {
      if (/[\s=]/.test(value)) throw new Error(`"${value}" is not a sysctl value sc sets`);
      await exec.run('sysctl', ['-qw', `${checkKey(key)}=${value}`]);
    },
  };
}
