import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FileReleaseStore } from '../../src/state/file-release-store.js';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import { DamagedRecordError, type DamageReport } from '../../src/state/release-store.js';
import { busyRecord, controlContract, recordFor, releaseStoreContract } from './release-store-contract.js';

const stateDirectory = () => mkdtempSync(join(tmpdir(), 'harbormaster-store-'));

releaseStoreContract('files', () => new FileReleaseStore(stateDirectory()));
releaseStoreContract('memory', () => new MemoryReleaseStore());
controlContract('files (two processes on one state directory)', async () => {
  const directory = stateDirectory();
  return [new FileReleaseStore(directory), new FileReleaseStore(directory, { readOnly: true })];
});
controlContract('memory', async () => {
  const store = new MemoryReleaseStore();
  return [store, store];
});

describe('the file store on the bastion', () => {
  it('keeps records across a restart of the worker (a new store on the same directory)', async () => {
    const directory = stateDirectory();
    const { record } = await new FileReleaseStore(directory).claim(recordFor());
    await new FileReleaseStore(directory).save(busyRecord(record));
    const reread = await new FileReleaseStore(directory).get(record.releaseId);
    assert.equal(reread?.revision, 2);
    assert.equal(reread?.hosts['i-2']?.intent?.action, 'stop-old');
  });

  it('keeps its files private to the worker', async () => {
    const directory = stateDirectory();
    const { record } = await new FileReleaseStore(directory).claim(recordFor());
    assert.equal(statSync(join(directory, 'releases')).mode & 0o777, 0o700);
    assert.equal(statSync(join(directory, 'releases', `${record.releaseId}.json`)).mode & 0o777, 0o600);
  });

  it('uses the previous copy when the current file is torn, says so, and goes on writing from it', async () => {
    const directory = stateDirectory();
    const reports: DamageReport[] = [];
    const store = new FileReleaseStore(directory, { onDamage: (r) => reports.push(r) });
    const { record } = await store.claim(recordFor());
    const second = await store.save(busyRecord(record));
    await store.save({ ...second, status: 'interrupted' });
    const path = join(directory, 'releases', `${record.releaseId}.json`);
    const text = readFileSync(path, 'utf8');
    writeFileSync(path, text.slice(0, Math.floor(text.length / 2)));

    const restarted = new FileReleaseStore(directory, { onDamage: (r) => reports.push(r) });
    const recovered = await restarted.get(record.releaseId);
    assert.equal(recovered?.revision, 2, 'the previous revision');
    assert.equal(recovered?.status, 'running');
    assert.match(recovered!.damaged!, /damaged .*previous copy was used/);
    assert.equal(reports.length, 1);
    assert.equal(reports[0]!.recovered, 'previous-copy');
    assert.match(reports[0]!.problem, /not whole JSON/);
    assert.deepEqual((await restarted.unfinished()).map((r) => r.releaseId), [record.releaseId]);
    assert.equal(reports.length, 1, 'the same damage is reported once');

    const next = await restarted.save({ ...recovered!, status: 'succeeded' });
    assert.equal(next.revision, 3);
    assert.equal(next.damaged, undefined, 'a fresh write is whole again');
    assert.equal((await new FileReleaseStore(directory).get(record.releaseId))?.status, 'succeeded');
  });

  it('detects a record altered on disk by its checksum', async () => {
    const directory = stateDirectory();
    const reports: DamageReport[] = [];
    const store = new FileReleaseStore(directory, { onDamage: (r) => reports.push(r) });
    const { record } = await store.claim(recordFor());
    await store.save({ ...record, status: 'running' });
    const path = join(directory, 'releases', `${record.releaseId}.json`);
    writeFileSync(path, readFileSync(path, 'utf8').replace('"running"', '"succeeded"'));
    const read = await store.get(record.releaseId);
    assert.equal(read?.status, 'accepted', 'the previous copy, not the altered one');
    assert.match(reports[0]!.problem, /checksum/);
  });

  it('refuses to guess when neither copy can be read: the release is DamagedRecordError, and the others are still listed', async () => {
    const directory = stateDirectory();
    const reports: DamageReport[] = [];
    const store = new FileReleaseStore(directory, { onDamage: (r) => reports.push(r) });
    const { record: damaged } = await store.claim(recordFor());
    const { record: healthy } = await store.claim(recordFor());
    await store.save({ ...healthy, status: 'running' });
    writeFileSync(join(directory, 'releases', `${damaged.releaseId}.json`), '');
    await assert.rejects(store.get(damaged.releaseId), DamagedRecordError);
    await assert.rejects(store.claim(damaged), DamagedRecordError, 'a claim never writes over a damaged record');
    assert.deepEqual((await store.unfinished()).map((r) => r.releaseId), [healthy.releaseId]);
    assert.equal(reports[0]!.recovered, 'nothing');
    assert.match(reports[0]!.problem, /empty/);
  });

  it('ignores and removes the temporary file of a write a killed worker never finished', async () => {
    const directory = stateDirectory();
    const { record } = await new FileReleaseStore(directory).claim(recordFor());
    const releases = join(directory, 'releases');
    writeFileSync(join(releases, `${record.releaseId}.json.tmp-999-1`), '{"format":"harbormaster.release-file/1","sha256":"');
    const store = new FileReleaseStore(directory);
    assert.equal((await store.get(record.releaseId))?.revision, 1);
    assert.deepEqual(readdirSync(releases).filter((n) => n.includes('.tmp-')), []);
  });

  it('reads what the earlier ledger of finished releases wrote as finished releases', async () => {
    const directory = stateDirectory();
    const releaseId = '3f0c2a8e-1111-4222-8333-444455556666';
    const releases = join(directory, 'releases');
    await new FileReleaseStore(directory).unfinished(); // makes the directory
    writeFileSync(join(releases, `${releaseId}.json`), JSON.stringify({ releaseId, target: 'data/ingest/staging', image: 'reg/app:v2', outcome: 'succeeded', finishedAt: '2026-11-20T10:00:00.000Z' }));
    const store = new FileReleaseStore(directory);
    const record = await store.get(releaseId);
    assert.equal(record?.status, 'succeeded');
    assert.equal(record?.request.image, 'reg/app:v2');
    assert.deepEqual(await store.unfinished(), []);
  });
});
