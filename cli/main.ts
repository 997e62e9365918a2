/**
 * `amqp-mesh` command line. `amqp-mesh router -c FILE` runs one router.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfigFile, ConfigError, RouterConfig, LogEntity } from '../router/config';
import { Logger, openLogOutput } from '../router/io/log';
import { RouterServer, RouterSettings, ListenerSettings, ConnectorSettings, VERSION } from '../router/io/server';
import type { RouteContainerSettings } from '../router/io/route-container';
import type { LinkRouteSettings } from '../router/io/link-route';
import type { AddressRule } from '../router/core/addresses';
import { BrokerConfig, loadBrokerConfigFile } from '../broker/config';
import { runBroker } from '../broker/io/main';
import { runUp } from '../topology/up';
import { runApply } from '../topology/apply';

const USAGE = `usage: amqp-mesh router -c FILE    run a router (FILE: qdrouterd.conf syntax, .yaml/.yml or .json)
       amqp-mesh broker -c FILE    run a broker (same syntaxes); two brokers on one dataDir form a master/slave pair
       amqp-mesh up [FILE]         boot a topology (default topology/default.yaml): routers and broker pairs on 127.0.0.1
       amqp-mesh apply FILE [--run-dir DIR] [--drain-timeout SECONDS]
                                   change the running topology (started by up) to match FILE
       amqp-mesh --version
       amqp-mesh --help`;

/** Reads `user:password` lines (`#` comments); refuses a malformed line naming file and line. */
export function loadPlainUsers(file: string): Record<string, string> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError('ERR_CONFIG_READ', file, undefined, `cannot read SASL users file: ${(e as Error).message}`, { cause: e });
  }
  const users: Record<string, string> = Object.create(null);
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new ConfigError('ERR_CONFIG_SYNTAX', file, i + 1, 'expected "user:password"');
    users[line.slice(0, colon)] = line.slice(colon + 1);
  });
  return users;
}

/** Maps the loaded configuration onto what the router process needs. */
export function settingsFromConfig(cfg: RouterConfig): RouterSettings {
  const listeners: ListenerSettings[] = cfg.listeners.map((l, i) => ({
    name: l.name ?? `listener${i}/${l.host || '*'}:${l.port}`,
    host: l.host === '' ? '0.0.0.0' : l.host,
    port: l.port,
    maxFrameSize: l.maxFrameSize,
    maxSessions: l.maxSessions,
    idleTimeoutSeconds: l.idleTimeoutSeconds,
    linkCapacity: l.linkCapacity,
    saslMechanisms: l.saslMechanisms ?? [],
    authenticatePeer: l.authenticatePeer,
    stripAnnotations: l.stripAnnotations,
    // A broker connecting in on a route-container listener is served like a client for now
    // (auto-links and link routes need a route-container connector; see below).
    role: l.role === 'route-container' ? 'normal' : l.role,
    cost: l.cost,
  }));
  const routeContainers: RouteContainerSettings[] = cfg.connectors
    .filter((c) => c.role === 'route-container')
    .map((c, i) => ({
      name: c.name ?? `connector${i}/${c.host}:${c.port}`,
      host: c.host,
      port: c.port,
      failoverUrls: (c.failoverUrls ?? []).map((u) => ({ host: u.host, port: u.port })),
      maxFrameSize: c.maxFrameSize,
      idleTimeoutSeconds: c.idleTimeoutSeconds,
      linkCapacity: c.linkCapacity,
      sasl: c.saslUsername !== undefined
        ? { mechanism: 'PLAIN' as const, user: c.saslUsername, password: c.saslPassword }
        : { mechanism: 'ANONYMOUS' as const },
      autoLinks: [],
    }));
  const linkRoutes: LinkRouteSettings[] = [];
  cfg.linkRoutes.forEach((l, i) => {
    if (l.addExternalPrefix !== undefined || l.delExternalPrefix !== undefined) {
      throw new ConfigError('ERR_CONFIG_NOT_SUPPORTED', l.source.file, l.source.line, 'linkRoute addExternalPrefix/delExternalPrefix are not supported yet');
    }
    if (l.containerId !== undefined) {
      // Served by whichever route-container connection's peer announces this container-id.
      linkRoutes.push({ name: l.name ?? `linkRoute${i}`, prefix: l.prefix, pattern: l.pattern, direction: l.direction, containerId: l.containerId });
      return;
    }
    // Without a connection the route only passes attaches on: every router learns routes from the mesh.
    if (l.connection === undefined) return;
    if (!routeContainers.some((r) => r.name === l.connection)) {
      throw new ConfigError('ERR_CONFIG_CONFLICT', l.source.file, l.source.line,
        `linkRoute connection ${l.connection} is not a route-container connector (known: ${routeContainers.map((r) => r.name).join(', ') || 'none'}); link routes over route-container listeners are not supported yet`);
    }
    linkRoutes.push({ name: l.name ?? `linkRoute${i}`, prefix: l.prefix, pattern: l.pattern, direction: l.direction, connection: l.connection });
  });
  cfg.autoLinks.forEach((a, i) => {
    const settings = { name: a.name ?? `${a.address}.${a.direction}.${i}`, address: a.address, direction: a.direction, phase: a.phase, externalAddress: a.externalAddress };
    if (a.containerId !== undefined) {
      // Attached on whichever route-container connection's peer announces this container-id.
      for (const rc of routeContainers) rc.autoLinks.push({ ...settings, containerId: a.containerId });
      return;
    }
    const rc = routeContainers.find((r) => r.name === a.connection);
    if (rc === undefined) {
      throw new ConfigError('ERR_CONFIG_CONFLICT', a.source.file, a.source.line,
        `autoLink connection ${a.connection ?? '(none)'} is not a route-container connector (known: ${routeContainers.map((r) => r.name).join(', ') || 'none'}); auto-links over route-container listeners are not supported yet`);
    }
    rc.autoLinks.push(settings);
  });
  const connectors: ConnectorSettings[] = cfg.connectors
    .filter((c) => c.role === 'inter-router')
    .map((c, i) => ({
      name: c.name ?? `connector${i}/${c.host}:${c.port}`,
      host: c.host,
      port: c.port,
      cost: c.cost,
      maxFrameSize: c.maxFrameSize,
      idleTimeoutSeconds: c.idleTimeoutSeconds,
      sasl: c.saslUsername !== undefined
        ? { mechanism: 'PLAIN' as const, user: c.saslUsername, password: c.saslPassword }
        : { mechanism: 'ANONYMOUS' as const },
    }));
  const r = cfg.router;
  const addresses: AddressRule[] = cfg.addresses.map((a) => ({
    prefix: a.prefix ?? undefined,
    pattern: a.pattern ?? undefined,
    distribution: a.distribution,
    waypoint: a.waypoint,
    ingressPhase: a.ingressPhase,
    egressPhase: a.egressPhase,
  }));
  let plainUsers: Record<string, string> | undefined;
  if (cfg.router.saslConfigDir !== undefined) {
    plainUsers = loadPlainUsers(path.join(cfg.router.saslConfigDir, `${cfg.router.saslConfigName}.users`));
  } else {
    const needs = cfg.listeners.find((l) => l.authenticatePeer);
    if (needs) {
      throw new ConfigError('ERR_CONFIG_CONFLICT', needs.source.file, needs.source.line,
        'listener has authenticatePeer: true but the router has no saslConfigDir to find SASL PLAIN users in (<saslConfigDir>/<saslConfigName>.users, one user:password per line)');
    }
  }
  return {
    connectors,
    routeContainers,
    linkRoutes,
    mesh: {
      helloIntervalMs: r.helloIntervalSeconds * 1000,
      helloMaxAgeMs: r.helloMaxAgeSeconds * 1000,
      raIntervalMs: r.raIntervalSeconds * 1000,
      raIntervalFluxMs: r.raIntervalFluxSeconds * 1000,
      remoteLsMaxAgeMs: r.remoteLsMaxAgeSeconds * 1000,
    },
    plainUsers,
    id: cfg.router.id,
    mode: cfg.router.mode as 'standalone' | 'interior',
    listeners,
    addresses,
    maxMessageSize: 64 * 1024 * 1024,
    maxAddressLength: 4096,
  };
}

/** Runs `load`; a ConfigError ends the process with exit code 2 and its FILE:LINE message. */
function orExitOnConfigError<T>(load: () => T): T {
  try {
    return load();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`amqp-mesh: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}

/** A logger set up from `log` entities; an unwritable outputFile ends the process (exit 2, FILE:LINE). */
function loggerFromConfig(entities: readonly LogEntity[]): Logger {
  const logger = new Logger();
  // DEFAULT first: other modules inherit its output settings.
  const logs = [...entities].sort((a, b) => (a.module === 'DEFAULT' ? -1 : b.module === 'DEFAULT' ? 1 : 0));
  for (const l of logs) {
    let write: ((line: string) => void) | undefined;
    try {
      write = l.outputFile === undefined ? undefined : openLogOutput(l.outputFile);
    } catch (e) {
      process.stderr.write(`amqp-mesh: ${l.source.file}:${l.source.line}: log outputFile ${l.outputFile}: ${(e as Error).message}\n`);
      process.exit(2);
    }
    logger.configure(l.module, l.enabledLevels === 'default' ? null : l.enabledLevels.length ? l.enabledLevels.join(',') : 'none', { write, includeTimestamp: l.includeTimestamp });
  }
  return logger;
}

async function runRouter(file: string): Promise<void> {
  const cfg: RouterConfig = orExitOnConfigError(() => loadConfigFile(file));
  const logger = loggerFromConfig(cfg.logs);
  for (const w of cfg.warnings) logger.log('ROUTER', 'warning', w.message);
  const settings: RouterSettings = orExitOnConfigError(() => settingsFromConfig(cfg));
  const server = new RouterServer(settings, logger);
  try {
    await server.start();
  } catch (e) {
    process.stderr.write(`amqp-mesh: cannot listen: ${(e as Error).message}\n`);
    process.exit(1);
  }
  logger.log('ROUTER', 'notice', `Router ${cfg.router.id} (${cfg.router.mode}) ready, amqp-mesh ${VERSION}`);
  let stopping = false;
  const shutdown = (sig: string) => {
    if (stopping) return;
    stopping = true;
    logger.log('ROUTER', 'notice', `${sig}: closing connections and shutting down`);
    server.stop().then(() => process.exit(0), () => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // SIGHUP: re-read the file and apply what can change live (connectors, auto-links, link routes,
  // address rules). A bad file is refused with FILE:LINE and the running configuration is kept.
  process.on('SIGHUP', () => {
    let next: RouterSettings;
    try {
      next = settingsFromConfig(loadConfigFile(file));
    } catch (e) {
      logger.log('ROUTER', 'error', `SIGHUP: configuration not reloaded: ${(e as Error).message}`);
      return;
    }
    const notes = server.reconfigure(next);
    logger.log('ROUTER', 'notice', `SIGHUP: configuration reloaded from ${file}${notes.length ? `: ${notes.join('; ')}` : ' (no change)'}`);
  });
}

async function runBrokerCommand(file: string): Promise<void> {
  const cfg: BrokerConfig = orExitOnConfigError(() => loadBrokerConfigFile(file));
  const logger = loggerFromConfig(cfg.logs);
  for (const w of cfg.warnings) logger.log('BROKER', 'warning', w.message);
  let plainUsers: Record<string, string> | undefined;
  if (cfg.broker.saslConfigDir !== undefined) {
    const dir = cfg.broker.saslConfigDir;
    plainUsers = orExitOnConfigError(() => loadPlainUsers(path.join(dir, `${cfg.broker.saslConfigName}.users`)));
  } else {
    const needs = cfg.listeners.find((l) => l.authenticatePeer);
    if (needs) {
      orExitOnConfigError(() => {
        throw new ConfigError('ERR_CONFIG_CONFLICT', needs.source.file, needs.source.line,
          'listener has authenticatePeer: true but the broker has no saslConfigDir to find SASL PLAIN users in (<saslConfigDir>/<saslConfigName>.users, one user:password per line)');
      });
    }
  }
  await runBroker(cfg, logger, plainUsers);
}

/** Parses `-c FILE` / `--config FILE` / `--config=FILE`. */
function configArg(cmd: string, rest: string[]): string {
  let file: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === '-c' || a === '--config') file = rest[++i];
    else if (a.startsWith('--config=')) file = a.slice(9);
    else {
      process.stderr.write(`amqp-mesh ${cmd}: unknown argument "${a}"\n${USAGE}\n`);
      process.exit(2);
    }
  }
  if (!file) {
    process.stderr.write(`amqp-mesh ${cmd}: -c FILE is required\n${USAGE}\n`);
    process.exit(2);
  }
  return file;
}

/** Entry point. */
export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  if (cmd === '--version' || cmd === '-v') {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  if (cmd === undefined || cmd === '--help' || cmd === '-h') {
    process.stdout.write(USAGE + '\n');
    if (cmd === undefined) process.exitCode = 2;
    return;
  }
  if (cmd === 'router') return runRouter(configArg(cmd, rest));
  if (cmd === 'broker') return runBrokerCommand(configArg(cmd, rest));
  if (cmd === 'up') return runUp(rest);
  if (cmd === 'apply') return runApply(rest);
  process.stderr.write(`amqp-mesh: unknown command "${cmd}"\n${USAGE}\n`);
  process.exit(2);
}
