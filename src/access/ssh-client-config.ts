// `sc ssh-config USER`: the OpenSSH client configuration a user pastes into ~/.ssh/config — one
// Host entry per container the user may reach, logging in as root through the user's jump
// account on the container's host. Pure text.
import type { Model } from '../datastore/model.js';
import { userReach } from './access-plan.js';

export function renderSshClientConfig(model: Model, user: string): string {
  const reach = userReach(model, user);
  const lines = [
    `# srvctl: the containers ${user} may reach, through ${user}'s jump account on each host.`,
    '# Paste into ~/.ssh/config, then: ssh CONTAINER',
  ];
  for (const { container, host } of reach) {
    lines.push('', `Host ${container}`, '    User root', `    ProxyJump ${user}@${host}`);
  }
  return `${lines.join('\n')}\n`;
}
