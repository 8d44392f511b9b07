// Host paths under --root, and the driver set built from a host context.
import { createDrivers } from '../../../src/drivers/create-drivers.js';
import { createFilesDriver } from '../../../src/drivers/files.js';
import { UserError } from '../../../src/errors.js';

describe('createFilesDriver', () => {
  const files = createFilesDriver('/tmp/sc-root');

  it('puts host paths under the root', () => {
    expect(files.hostPath('/etc/systemd/nspawn/a.nspawn')).toBe('/tmp/sc-root/etc/systemd/nspawn/a.nspawn');
    expect(files.hostPath('srv/a')).toBe('/tmp/sc-root/srv/a');
    expect(files.hostPath('/')).toBe('/tmp/sc-root');
    expect(files.hostPath('/srv/a/../b')).toBe('/tmp/sc-root/srv/b');
  });

  it.each(['/../etc/passwd', '../x', '/srv/../../etc', 'a\0b'])('refuses %j, which escapes the root', (p) => {
    expect(() => files.hostPath(p)).toThrow(UserError);
  });

  it('does not confuse a sibling directory with the root', () => {
    expect(() => files.hostPath('/../sc-root-other/x')).toThrow(/escapes the root/);
  });

  it('is the identity on the real host', () => {
    expect(createFilesDriver('/').hostPath('/etc/haproxy/haproxy.cfg')).toBe('/etc/haproxy/haproxy.cfg');
  });
});

describe('createDrivers', () => {
  it('wires exec, ip and files from the host context', () => {
    const drivers = createDrivers({ root: '/tmp/sc-root', netns: 'sct0000' });
    expect(drivers.exec.netns).toBe('sct0000');
    expect(drivers.files.hostPath('/run/srvctl')).toBe('/tmp/sc-root/run/srvctl');
    expect(typeof drivers.ip.batch).toBe('function');
  });
});
