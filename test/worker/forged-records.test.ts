import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { stringify } from 'yaml';
import { awsEndpoint, clientConfig } from '../../local-fleet/aws-resources.js';
import { parseWorkerConfig } from '../../src/config/worker-config.js';
import { createReleaseTable, DynamoReleaseStore } from '../../src/state/dynamodb-release-store.js';
import { FileReleaseStore } from '../../src/state/file-release-store.js';
import type { ReleaseRecord } from '../../src/state/release-record.js';
import type { ReleaseStore } from '../../src/state/release-store.js';
import type { ReleaseHistory } from '../../src/state/target-summary.js';
import { motoForSuite } from '../support/aws.js';
import { IMAGE, simulatedConfigObject, simulatedFleet } from '../support/simulated-release.js';

// A record put straight into the release state (the table, the state directory) by anyone but the
// worker runs nothing: the worker takes it up through the same scheduler as any release, finds that
// nothing vouches for it, refuses it with the reason, and no host sees an engine call that changes it. One row per kind of
// forgery, on both stores. The attack of the review: a good release's record copied under a new id,
// `running`, with an image never signed, a volume of the host, a release task and an environment
// source reading the worker's key.

const moto = motoForSuite();
const STAGING = 'data/ingest/staging';

type Forge = (good: ReleaseRecord) => ReleaseRecord;

const copied = (good: ReleaseRecord, change: Partial<ReleaseRecord> = {}): ReleaseRecord => {
  const releaseId = randomUUID();
  return { ...good, releaseId, request: { ...good.request, releaseId, createdAt: new Date().toISOString() }, revision: 0, ...change };
};
const withoutEnvelope = ({ envelope: _gone, ...rest }: ReleaseRecord): ReleaseRecord => rest;

const rows: Array<[string, Forge, RegExp]> = [
  [
    "a good release copied under a new id, running, with image v3, a host volume, a release task and an environment source (the review's attack)",
    (good) => {
      const forged = copied(good, { status: 'running', attempts: 1 });
      const plan = forged.plan!;
      return {
        ...forged,
        request: { ...forged.request, image: IMAGE('v3') },
        plan: {
          ...plan,
          spec: { ...plan.spec, image: IMAGE('v3'), volumes: ['/tmp:/host-tmp'], environmentSources: { KEY: { file: '/etc/harbormaster/ssh/id_ed25519' } } } as typeof plan.spec,
          settings: { ...plan.settings, releaseTask: { command: ['sh', '-c', 'touch /host-tmp/owned'], timeoutSeconds: 60, idempotent: true } as NonNullable<typeof plan.settings.releaseTask> },
        },
      };
    },
    /envelope is signed for release/,
  ],
  [
    'the same with no envelope at all',
    (good) => {
      const forged = copied(good, { status: 'running', attempts: 1 });
      return withoutEnvelope({ ...forged, request: { ...forged.request, image: IMAGE('v3') } });
    },
    /no signed envelope/,
  ],
  ['a waiting record with no envelope', (good) => withoutEnvelope(copied(good, { status: 'accepted', plan: undefined, hosts: {} })), /no signed envelope/],
  ['its own envelope with the image changed in the request', (good) => ({ ...good, revision: 0, status: 'accepted', plan: undefined, hosts: {}, request: { ...good.request, image: IMAGE('v3') } }), /differs from what its envelope signed/],
  [
    'a deployment the request was not signed for (target and deployment agree with each other)',
    (good) => ({ ...copied(good, { status: 'accepted', plan: undefined, hosts: {} }), target: 'data/ingest/integration', deployment: 'integration' }),
    /envelope is signed for release|says target data\/ingest\/integration/,
  ],
  ['a rollback naming a release that did not succeed', (good) => withoutEnvelope({ ...copied(good, { status: 'accepted', plan: undefined, hosts: {} }), vouchedBy: randomUUID(), origin: { kind: 'rollback', to: randomUUID(), by: 'mallory', at: new Date().toISOString() } }), /not in the release state/],
];

function forgedAgainst(kind: string, setUp: () => Promise<{ store: ReleaseStore & ReleaseHistory; fleet: ReturnType<typeof simulatedFleet> }>) {
  describe(`records put straight into the ${kind} store`, () => {
    for (const [name, forge, reason] of rows) {
      it(`refuses ${name}, naming why; no host sees a pull, a container made, started or stopped`, async () => {
        const { store, fleet } = await setUp();
        const good = await fleet.release(store, 'staging', 'v2');
        assert.equal(good.taken.status === 'ended' && good.taken.outcome.status, 'succeeded');
        const forged = forge((await store.get(good.releaseId))!);
        if (forged.releaseId === good.releaseId) await store.save({ ...forged, revision: (await store.get(good.releaseId))!.revision });
        else await store.claim(forged);
        for (const host of fleet.hosts.values()) host.calls.length = 0;

        const taken = await fleet.take(store, forged.releaseId);
        assert.equal(taken.status, 'ended');
        const ended = (await store.get(forged.releaseId))!;
        assert.ok(ended.status === 'refused' || ended.status === 'failed', ended.status);
        assert.match(ended.reason ?? '', /^not vouched for: /);
        assert.match(ended.reason ?? '', reason);
        for (const host of fleet.hosts.values()) assert.deepEqual(host.calls, [], `${host.address} saw no pull, create, start, stop or rename`);
        for (const host of fleet.hosts.values()) assert.ok((await host.list({})).every((c) => c.image !== IMAGE('v3')), 'v3 runs nowhere');
      });
    }
  });
}

forgedAgainst('file', async () => {
  const object = simulatedConfigObject('http://127.0.0.1:1', { store: 'file' });
  return { store: new FileReleaseStore(object.stateDirectory), fleet: simulatedFleet(parseWorkerConfig(stringify(object))) };
});

const clients: DynamoDBClient[] = [];
after(() => clients.forEach((c) => c.destroy()));
forgedAgainst('DynamoDB (moto)', async () => {
  const dynamo = new DynamoDBClient(clientConfig(awsEndpoint(moto.moto.endpoint)));
  clients.push(dynamo);
  const table = `harbormaster-forged-${randomUUID().slice(0, 8)}`;
  await createReleaseTable(dynamo, table);
  const object = simulatedConfigObject(moto.moto.endpoint, { store: 'dynamodb', table });
  return { store: new DynamoReleaseStore({ client: dynamo, table }), fleet: simulatedFleet(parseWorkerConfig(stringify(object))) };
});
