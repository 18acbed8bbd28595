import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fleetUp, recordedFleet, type Fleet, type FleetHost } from '../../local-fleet/fleet.js';
import { ContainerNotFoundError, EngineError, EngineUnavailableError, HostKeyError, HostUnreachableError, PullError } from '../../src/host/host-errors.js';
import type { ContainerInfo, ContainerSpec, HostSession } from '../../src/host/host-session.js';
import { fingerprintOf } from '../../src/host/known-hosts.js';
import { SshHostConnector, type SshHostConnectorOptions } from '../../src/host/ssh-host-connector.js';

// The host session on the local fleet's real engines over real SSH: one connection per host carrying
// every Docker call, host keys checked against known_hosts, and each failure typed.
// The fleet is shared with other test runs on this machine: it is brought up at no fewer hosts than
// it has (a smaller bring-up would tear hosts down), never taken down here, and left with every host
// on v1 (resetHosts). Containers made here are named hm-hosttest-* and labelled with this run's id.

const RUN = `${process.pid}-${Date.now().toString(36)}`;
const PREFIX = 'hm-hosttest-';
const TEST_LABEL = 'harbormaster.test.host';
const log = (line: string) => console.log(`# ${line}`);

async function bringUpSharedFleet(): Promise<Fleet> {
  for (let attempt = 1; ; attempt++) {
    const hosts = Math.max(3, recordedFleet()?.hosts ?? 3);
    try {
      return await fleetUp({ hosts, log });
    } catch (error) {
      // Another process may be bringing the fleet up at this moment: wait for it and try again.
      if (attempt >= 4) throw error;
      log(`fleetUp failed (${(error as Error).message}); retrying in 10 s`);
      await sleep(10_000);
    }
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 20_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Local ports of this process's established TCP connections to address:22, as the kernel sees them. */
function sshConnectionsFromHere(address: string): Promise<string[]> {
  return new Promise((resolve, reject) =>
    execFile('ss', ['-tnpH', 'state', 'established', 'dst', address, 'dport', '=', ':22'], (error, stdout) => {
      if (error) return reject(error);
      const ports = stdout
        .split('\n')
        .filter((line) => line.includes(`pid=${process.pid},`))
        .map((line) => /\S+:(\d+)\s+\S+:22\s/.exec(line)?.[1])
        .filter((port): port is string => port !== undefined);
      resolve(ports);
    }),
  );
}

async function httpGet(url: string): Promise<{ status: number; text: string } | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return { status: response.status, text: (await response.text()).trim() };
  } catch {
    return undefined;
  }
}

describe('SshHostConnector on the local fleet', () => {
  let fleet: Fleet;
  let options: SshHostConnectorOptions & { knownHosts: string };
  let connector: SshHostConnector;
  let h1: FleetHost;
  let h2: FleetHost;
  let h3: FleetHost;
  let volumeDir: string;
  const open: HostSession[] = [];

  async function connect(host: FleetHost): Promise<HostSession> {
    const session = await connector.connect(host.address);
    open.push(session);
    return session;
  }

  function spec(name: string, image: string, extra: Partial<ContainerSpec> = {}): ContainerSpec {
    return {
      name: `${PREFIX}${name}`,
      image,
      ports: [],
      environment: { HM_TEST: RUN },
      volumes: [],
      restartPolicy: 'no',
      labels: { [TEST_LABEL]: RUN },
      stopTimeoutSeconds: 5,
      ...extra,
    };
  }

  before(async () => {
    fleet = await bringUpSharedFleet();
    // Whatever an earlier run left (a stopped sshd, a cut link), start from every host whole on v1.
    await fleet.resetHosts();
    [h1, h2, h3] = fleet.hosts as [FleetHost, FleetHost, FleetHost];
    options = {
      user: fleet.ssh.user,
      privateKey: readFileSync(fleet.ssh.privateKeyPath),
      knownHosts: readFileSync(fleet.ssh.knownHostsPath, 'utf8'),
      connectTimeoutMs: 5_000,
      engineSocket: fleet.ssh.engineSocket,
    };
    connector = new SshHostConnector(options);
    volumeDir = mkdtempSync('/tmp/hm-hosttest-volume-');
    writeFileSync(join(volumeDir, 'hello.txt'), `hello ${RUN}\n`);
  });

  // A test that fails half-way must not leave its connection to confuse the next one's connection count.
  afterEach(async () => {
    await Promise.all(open.splice(0).map((session) => session.close()));
  });

  after(async () => {
    // Remove what this run made, close every session, then leave the fleet as every test expects it.
    try {
      const cleaner = await connector.connect(h1.address);
      for (const container of await cleaner.list({ [TEST_LABEL]: RUN })) await cleaner.remove(container.id);
      await cleaner.close();
    } catch (error) {
      log(`cleanup: ${(error as Error).message}`);
    }
    await fleet?.faults.startSsh(h3.name).catch(() => undefined);
    await fleet?.resetHosts();
    await fleet?.chat.stop();
    rmSync(volumeDir, { recursive: true, force: true });
  });

  it('pings each host engine at the configured socket: distinct engine ids', async () => {
    const sessions = await Promise.all([h1, h2, h3].map(connect));
    try {
      const ids = await Promise.all(sessions.map(async (session) => (await session.ping()).engineId));
      assert.equal(new Set(ids).size, 3, `engine ids ${ids.join(', ')}`);
      for (const session of sessions) {
        const { engineSocket } = session as HostSession & { engineSocket: { path: string; source: string } };
        assert.deepEqual({ path: engineSocket.path, source: engineSocket.source }, { path: fleet.ssh.engineSocket, source: 'configured' });
      }
    } finally {
      await Promise.all(sessions.map((session) => session.close()));
    }
  });

  it('without a configured socket, finds the first that answers, never running the login shell', async () => {
    // The slow user's ~/.bashrc sleeps longer than the connect deadline: any shell would miss it.
    const unconfigured = { ...options, user: fleet.ssh.slowLoginUser, engineSocket: undefined };
    const finding = new SshHostConnector({ ...unconfigured, engineSocketCandidates: ['/run/no-such-engine.sock', fleet.ssh.engineSocket] });
    const session = await finding.connect(h2.address);
    open.push(session);
    const { engineSocket } = session as HostSession & { engineSocket: { path: string; source: string } };
    assert.deepEqual({ path: engineSocket.path, source: engineSocket.source }, { path: fleet.ssh.engineSocket, source: 'found' });
    assert.ok((await session.ping()).engineId);

    const nowhere = new SshHostConnector({ ...unconfigured, engineSocketCandidates: ['/run/no-such-engine.sock', '/run/nor-this.sock'] });
    await assert.rejects(nowhere.connect(h2.address), (error: unknown) => {
      assert.ok(error instanceof EngineUnavailableError, String(error));
      assert.match(error.message, /no Docker engine answers at \/run\/no-such-engine\.sock \(.+\), \/run\/nor-this\.sock/);
      return true;
    });
  });

  it('carries many Docker calls, sequential and parallel, over ONE SSH connection', async () => {
    assert.deepEqual(await sshConnectionsFromHere(h1.address), [], 'no connection from this process before connect');
    const session = await connect(h1);
    const [port] = await sshConnectionsFromHere(h1.address);
    assert.ok(port, 'one connection after connect');
    assert.deepEqual(await sshConnectionsFromHere(h1.address), [port]);

    // 30 calls in flight at once while the kernel's view is sampled: a connection per call would show here.
    const samples: string[][] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) samples.push(await sshConnectionsFromHere(h1.address));
    })();
    const infos = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 3 === 0 ? session.list({ 'harbormaster.managed': 'true' }) : session.inspect('ingest'))));
    sampling = false;
    await sampler;
    assert.ok(infos.every((info) => info !== undefined));
    assert.ok(samples.length >= 1);
    for (const sample of samples) assert.deepEqual(sample, [port], 'only the kept connection, during parallel calls');

    const rounds = 20;
    const started = performance.now();
    for (let i = 0; i < rounds; i++) assert.equal((await session.inspect('ingest'))?.name, 'ingest');
    const meanMs = (performance.now() - started) / rounds;
    console.log(`# mean time of one Docker call (inspect) over the kept SSH connection: ${meanMs.toFixed(1)} ms (${rounds} calls)`);
    assert.deepEqual(await sshConnectionsFromHere(h1.address), [port], 'the same connection after 50 calls');

    await session.close();
    await until('the connection to be gone after close()', async () => (await sshConnectionsFromHere(h1.address)).length === 0, 3_000, 50);
    await assert.rejects(session.ping(), HostUnreachableError, 'a closed session refuses calls');
  });

  it('pulls with the registry credentials and says unauthorised without them or with a wrong password', async () => {
    const session = await connect(h1);
    const auth = { username: fleet.registry.username, password: fleet.registry.password, serveraddress: fleet.registry.address };
    await session.pull(fleet.images.v2, auth);

    const refused = async (why: string, pulling: Promise<void>) => {
      const error = await pulling.then(
        () => assert.fail(`pull ${why} succeeded`),
        (caught: unknown) => caught,
      );
      assert.ok(error instanceof PullError, `${why}: ${String(error)}`);
      assert.equal(error.reason, 'unauthorised', `${why}: ${error.message}`);
      assert.match(error.message, /unauthori[sz]ed/i);
      assert.ok(error.cause, 'keeps the cause');
      log(`${why}: ${error.message}`);
    };
    await refused('without credentials', session.pull(fleet.images.v2));
    await refused('with a wrong password', session.pull(fleet.images.v2, { ...auth, password: `${auth.password}-wrong` }));

    const missing = `${fleet.registry.address}/data/ingest:no-such-tag`;
    await assert.rejects(session.pull(missing, auth), (error: unknown) => error instanceof PullError && error.reason === 'not-found' && error.image === missing);
    await session.close();
  });

  it('runs v2 to healthy with its ports, environment, labels and volumes; broken never healthy; crash exits', async () => {
    const session = await connect(h1);
    const auth = { username: fleet.registry.username, password: fleet.registry.password, serveraddress: fleet.registry.address };
    await Promise.all([fleet.images.v2, fleet.images.broken, fleet.images.crash].map((image) => session.pull(image, auth)));

    const v2 = spec('v2', fleet.images.v2, { ports: ['18081:8080'], volumes: [`${volumeDir}:/www/extra:ro`], restartPolicy: 'unless-stopped' });
    const id = await session.run(v2);
    const broken = await session.run(spec('broken', fleet.images.broken));
    const crash = await session.run(spec('crash', fleet.images.crash));

    const healthy = await until('v2 to be healthy', async () => {
      const info = await session.inspect(v2.name);
      return info?.health === 'healthy' ? info : undefined;
    }, 90_000); // Docker's verdict: the test images check every 30 s
    assert.equal(healthy.id, id);
    assert.equal(healthy.name, v2.name);
    assert.equal(healthy.image, fleet.images.v2);
    assert.equal(healthy.running, true);
    assert.equal(healthy.labels[TEST_LABEL], RUN);
    assert.equal(healthy.exitCode, undefined);
    assert.deepEqual(await httpGet(`http://${h1.address}:18081/version`), { status: 200, text: 'v2' }, 'port binding');
    assert.deepEqual(await httpGet(`http://${h1.address}:18081/extra/hello.txt`), { status: 200, text: `hello ${RUN}` }, 'bind mount');

    // broken: the health check fails for ever, so it goes starting -> unhealthy and is never healthy.
    const seen: ContainerInfo['health'][] = [];
    await until('broken to be unhealthy', async () => {
      const info = await session.inspect(broken);
      if (info) seen.push(info.health);
      return info?.health === 'unhealthy';
    }, 90_000); // Docker's verdict: the test images check every 30 s
    assert.ok(!seen.includes('healthy'), `broken was healthy at some point: ${seen.join(',')}`);

    const exited = await until('crash to exit', async () => {
      const info = await session.inspect(crash);
      return info && !info.running ? info : undefined;
    });
    assert.equal(exited.exitCode, 3);

    const listed = await session.list({ [TEST_LABEL]: RUN });
    assert.deepEqual(listed.map((info) => info.name).sort(), [v2.name, `${PREFIX}broken`, `${PREFIX}crash`].sort(), 'running and stopped ones');
    assert.deepEqual(await session.list({ [TEST_LABEL]: RUN, 'no-such-label': 'x' }), []);

    // The name is taken: the engine's 409 comes back as an EngineError.
    await assert.rejects(session.run(v2), (error: unknown) => error instanceof EngineError && error.statusCode === 409);
    await session.close();
  });

  it('stops, renames, starts and removes containers; missing ones are typed', async () => {
    const session = await connect(h1);
    const name = `${PREFIX}v2`;
    const renamed = `${PREFIX}v2-renamed`;
    await session.stop(name, 5);
    assert.equal((await session.inspect(name))?.running, false);
    await session.stop(name, 5); // already stopped (304) is fine

    await session.rename(name, renamed);
    assert.equal(await session.inspect(name), undefined);
    assert.equal((await session.inspect(renamed))?.name, renamed);

    await session.start(renamed);
    await session.start(renamed); // already running (304) is fine
    assert.equal((await session.inspect(renamed))?.running, true);

    await session.remove(renamed);
    assert.equal(await session.inspect(renamed), undefined);
    await session.remove(renamed); // already gone is fine

    await assert.rejects(session.stop(renamed, 1), (error: unknown) => error instanceof ContainerNotFoundError && error.statusCode === 404 && error.address === h1.address);
    await assert.rejects(session.rename(renamed, `${renamed}-x`), ContainerNotFoundError);
    await assert.rejects(session.start(renamed), ContainerNotFoundError);
    await session.close();
  });

  it('refuses a host whose key is not the one known_hosts lists for it, and an unknown host', async () => {
    const lines = options.knownHosts.trim().split('\n');
    const lineOf = (host: FleetHost) => lines.find((line) => line.startsWith(`${host.address} `))!;
    const h1Blob = Buffer.from(lineOf(h1).split(/\s+/)[2]!, 'base64');
    // h1's address with h2's key: what an impostor at h1's address (or a re-keyed h1) looks like.
    const swapped = lineOf(h2).replace(h2.address, h1.address);

    for (const [knownHosts, problem] of [
      [`${swapped}\n`, 'changed-key'],
      [`${lineOf(h2)}\n`, 'unknown-host'],
    ] as const) {
      const strict = new SshHostConnector({ ...options, knownHosts });
      const error = await strict.connect(h1.address).then(
        (session) => (open.push(session), assert.fail(`connected with ${problem}`)),
        (caught: unknown) => caught,
      );
      assert.ok(error instanceof HostKeyError, String(error));
      assert.equal(error.problem, problem);
      assert.equal(error.fingerprint, fingerprintOf(h1Blob));
      assert.match(error.message, new RegExp(`${h1.address.replace(/\./g, '\\.')}.*SHA256:`));
      assert.ok(error.message.includes(fingerprintOf(h1Blob)));
      log(error.message);
    }
    await until('no connection left by the refusals', async () => (await sshConnectionsFromHere(h1.address)).length === 0, 3_000, 50);
  });

  it('says unreachable quickly when sshd is stopped, and names a missing engine socket', async () => {
    await fleet.faults.stopSsh(h3.name);
    try {
      const started = performance.now();
      await assert.rejects(connector.connect(h3.address), (error: unknown) => error instanceof HostUnreachableError && error.address === h3.address && error.cause !== undefined);
      const ms = performance.now() - started;
      assert.ok(ms < 2_000, `took ${ms} ms`);
    } finally {
      await fleet.faults.startSsh(h3.name);
    }

    // A configured socket is confirmed at connect: no session on a socket where no engine answers.
    const wrongSocket = new SshHostConnector({ ...options, engineSocket: '/run/no-such-engine.sock' });
    await assert.rejects(wrongSocket.connect(h3.address), (error: unknown) => error instanceof EngineUnavailableError && /\/run\/no-such-engine\.sock/.test(error.message));
  });
});
