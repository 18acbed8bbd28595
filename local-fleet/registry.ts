import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { REGISTRY, REGISTRY_ADDRESS } from './layout.js';
import { livePid, run, spawnDaemon, stopByPidFile, waitFor } from './processes.js';

// The fleet's image registry: Debian's docker-registry (distribution 2.8) on 10.77.0.1:5000, plain
// HTTP (engines list it with --insecure-registry), htpasswd auth with a generated user. Storage is
// in the state directory, so images pushed once are there at the next bring-up.

export interface RegistryCredentials {
  readonly username: string;
  readonly password: string;
}

export function registryCredentials(): RegistryCredentials {
  return JSON.parse(readFileSync(REGISTRY.credentials, 'utf8')) as RegistryCredentials;
}

async function ensureCredentials(): Promise<RegistryCredentials> {
  if (!existsSync(REGISTRY.credentials) || !existsSync(REGISTRY.htpasswd) || !existsSync(REGISTRY.refusingHtpasswd)) {
    mkdirSync(dirname(REGISTRY.credentials), { recursive: true, mode: 0o700 });
    const credentials = { username: 'harbormaster', password: randomBytes(12).toString('hex') };
    await run('htpasswd', ['-B', '-b', '-c', REGISTRY.htpasswd, credentials.username, credentials.password]);
    // Knows someone else only: the fleet's own credentials are refused with 401.
    await run('htpasswd', ['-B', '-b', '-c', REGISTRY.refusingHtpasswd, 'nobody', randomBytes(12).toString('hex')]);
    writeFileSync(REGISTRY.credentials, JSON.stringify(credentials), { mode: 0o600 });
  }
  return registryCredentials();
}

function registryConfig(htpasswdPath: string): string {
  return [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${REGISTRY.storage}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${REGISTRY_ADDRESS}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
    'auth:',
    '  htpasswd:',
    '    realm: harbormaster-fleet',
    `    path: ${htpasswdPath}`,
    '',
  ].join('\n');
}

export function registryRunning(): boolean {
  return livePid(REGISTRY.pidFile, 'docker-registry') !== undefined;
}

function authorization(credentials: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}

/** Status of GET /v2/ with the fleet's credentials (200 = serving and accepting them). */
export async function registryStatus(credentials: RegistryCredentials): Promise<number | undefined> {
  try {
    const response = await fetch(`http://${REGISTRY_ADDRESS}/v2/`, { headers: { authorization: authorization(credentials) }, signal: AbortSignal.timeout(2_000) });
    await response.body?.cancel();
    return response.status;
  } catch {
    return undefined;
  }
}

/** Tags of a repository (e.g. data/ingest) the registry holds. */
export async function registryTags(repository: string, credentials: RegistryCredentials): Promise<string[]> {
  const response = await fetch(`http://${REGISTRY_ADDRESS}/v2/${repository}/tags/list`, {
    headers: { authorization: authorization(credentials) },
    signal: AbortSignal.timeout(5_000),
  });
  if (response.status === 404) return [];
  if (!response.ok) throw new Error(`registry tags/list for ${repository}: ${response.status}`);
  return ((await response.json()) as { tags?: string[] | null }).tags ?? [];
}

/**
 * Starts the registry (needs the bridge address up). `refusing` starts it with a password file
 * that does not know the fleet's user, so every authenticated pull or push gets 401.
 */
export async function startRegistry(options: { refusing?: boolean } = {}): Promise<RegistryCredentials> {
  const credentials = await ensureCredentials();
  const expected = options.refusing ? 401 : 200;
  if (registryRunning() && (await registryStatus(credentials)) === expected) return credentials;
  await stopRegistry();
  mkdirSync(REGISTRY.storage, { recursive: true });
  mkdirSync(dirname(REGISTRY.config), { recursive: true });
  writeFileSync(REGISTRY.config, registryConfig(options.refusing ? REGISTRY.refusingHtpasswd : REGISTRY.htpasswd), { mode: 0o600 });
  const pid = spawnDaemon('docker-registry', ['serve', REGISTRY.config], REGISTRY.log);
  writeFileSync(REGISTRY.pidFile, `${pid}\n`);
  await waitFor(`the registry on ${REGISTRY_ADDRESS} (log: ${REGISTRY.log})`, async () => (await registryStatus(credentials)) === expected, 15_000);
  return credentials;
}

export async function stopRegistry(): Promise<void> {
  await stopByPidFile(REGISTRY.pidFile, 'docker-registry', 5_000);
}
