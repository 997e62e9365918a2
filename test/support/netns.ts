/**
 * Test hosts in network namespaces (root only, iproute2): a LAN namespace holding a bridge, one
 * namespace per host with a veth on it, and a veth from the test's own namespace so the test
 * reaches every host. Partitions are blackhole routes inside a host's namespace: the host loses
 * the peers named, the test still reaches it.
 *
 *        test process (10.x.y.100)
 *               |
 *   [lan: br0] -+- host1 (10.x.y.1)  -+- host2 (.2) -+- ...
 */
import { execFileSync } from 'node:child_process';

/** Whether this process may create namespaces (root and iproute2). */
export function netnsAvailable(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

export interface TestLan {
  /** Address of host `i` (1-based). */
  addr(i: number): string;
  /** Namespace name of host `i`. */
  ns(i: number): string;
  /** Host `i` no longer reaches (nor answers) hosts `others`. */
  cut(i: number, others: number[]): void;
  /** Undoes every cut of host `i`. */
  heal(i: number, others: number[]): void;
  /** Deletes every namespace (and so every veth). */
  remove(): void;
}

/** Creates `hosts` hosts on a fresh LAN; names carry this process's pid so parallel runs do not meet. */
export function createLan(hosts: number): TestLan {
  const tag = `am${process.pid % 100000}`;
  const net = `10.${200 + (process.pid % 50)}.${Math.floor(process.pid / 50) % 250}`;
  const lan = `${tag}lan`;
  const names: string[] = [];
  const created: string[] = [];
  const lanHost = `${tag}h`;
  try {
    ip('netns', 'add', lan);
    created.push(lan);
    ip('-n', lan, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', lan, 'link', 'set', 'br0', 'up');
    for (let i = 1; i <= hosts; i++) {
      const ns = `${tag}n${i}`;
      ip('netns', 'add', ns);
      created.push(ns);
      names.push(ns);
      ip('-n', lan, 'link', 'add', `v${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      ip('-n', lan, 'link', 'set', `v${i}`, 'master', 'br0', 'up');
      ip('-n', ns, 'addr', 'add', `${net}.${i}/24`, 'dev', 'eth0');
      ip('-n', ns, 'link', 'set', 'eth0', 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    // The test's own end: its peer lives in the LAN namespace, so deleting that removes it too.
    ip('-n', lan, 'link', 'add', 'vtest', 'type', 'veth', 'peer', 'name', lanHost, 'netns', String(process.pid));
    ip('-n', lan, 'link', 'set', 'vtest', 'master', 'br0', 'up');
    ip('addr', 'add', `${net}.100/24`, 'dev', lanHost);
    ip('link', 'set', lanHost, 'up');
  } catch (e) {
    for (const ns of created) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // best effort
      }
    }
    throw e;
  }
  return {
    addr: (i) => `${net}.${i}`,
    ns: (i) => names[i - 1],
    cut: (i, others) => {
      for (const o of others) ip('-n', names[i - 1], 'route', 'add', 'blackhole', `${net}.${o}/32`);
    },
    heal: (i, others) => {
      for (const o of others) ip('-n', names[i - 1], 'route', 'del', 'blackhole', `${net}.${o}/32`);
    },
    remove: () => {
      for (const ns of [...names, lan]) {
        try {
          ip('netns', 'del', ns);
        } catch {
          // already gone
        }
      }
    },
  };
}
