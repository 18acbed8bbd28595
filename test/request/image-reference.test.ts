import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseImageReference, repositoryAllowed } from '../../src/request/image-reference.js';

describe('Docker image references', () => {
  const accepted: Array<[string, string, string | undefined, string | undefined]> = [
    ['127.0.0.1:5000/data/ingest:v2', '127.0.0.1:5000/data/ingest', 'v2', undefined],
    ['registry.internal/team/app:1.2.3-rc.1', 'registry.internal/team/app', '1.2.3-rc.1', undefined],
    ['localhost/app:latest', 'localhost/app', 'latest', undefined],
    ['busybox:1.36', 'docker.io/library/busybox', '1.36', undefined],
    ['team/app:v1', 'docker.io/team/app', 'v1', undefined],
    [`reg.io:443/a/b__c.d-e@sha256:${'ab'.repeat(32)}`, 'reg.io:443/a/b__c.d-e', undefined, `sha256:${'ab'.repeat(32)}`],
    [`reg.io/a:v1@sha256:${'0'.repeat(64)}`, 'reg.io/a', 'v1', `sha256:${'0'.repeat(64)}`],
    // go-digest's three algorithms, each with its exact length.
    [`reg.io/a@sha384:${'c'.repeat(96)}`, 'reg.io/a', undefined, `sha384:${'c'.repeat(96)}`],
    [`reg.io/a@sha512:${'d'.repeat(128)}`, 'reg.io/a', undefined, `sha512:${'d'.repeat(128)}`],
    [`busybox@sha256:${'e'.repeat(64)}`, 'docker.io/library/busybox', undefined, `sha256:${'e'.repeat(64)}`],
  ];
  for (const [text, repository, tag, digest] of accepted) {
    it(`reads ${text}`, () => {
      const parsed = parseImageReference(text);
      assert.ok(parsed.ok, !parsed.ok ? parsed.reason : '');
      assert.equal(parsed.image.repository, repository);
      assert.equal(parsed.image.tag, tag);
      assert.equal(parsed.image.digest, digest);
    });
  }

  const refused: Array<[string, RegExp]> = [
    ['127.0.0.1:5000/data/ingest', /neither a tag nor a digest/],
    ['', /empty/],
    ['reg.io/Team/app:v1', /not a Docker reference/],
    ['reg.io/app:v1;id', /not a Docker reference/],
    ['reg.io/app:$(id)', /not a Docker reference/],
    ['reg.io/../etc:v1', /not a Docker reference/],
    ['reg.io/app:.hidden', /not a Docker reference/],
    ['-v/:/host', /not a Docker reference/],
    ['reg.io/app:v1\n', /not a Docker reference/],
    ['reg.io/app@sha256:short', /not a Docker reference/],
    [`reg.io/app:${'t'.repeat(129)}`, /not a Docker reference/],
    [`reg.io/${'a'.repeat(260)}:v1`, /longer than 255/],
    // Digests exactly as Docker (distribution/reference + go-digest) takes them.
    [`reg.io/app@sha256:${'a'.repeat(32)}`, /not a Docker reference: the digest must be sha256: followed by 64 lowercase hexadecimal digits .*: 32 digits given/],
    [`reg.io/app@sha256:${'a'.repeat(65)}`, /64 lowercase hexadecimal digits .*: 65 digits given/],
    [`reg.io/app@sha256:${'A'.repeat(64)}`, /64 lowercase hexadecimal digits .*: only 0-9 and a-f/],
    [`reg.io/app@sha384:${'a'.repeat(64)}`, /: 64 digits given/],
    [`reg.io/app@sha512:${'a'.repeat(96)}`, /: 96 digits given/],
    [`reg.io/app@md5:${'a'.repeat(64)}`, /the digest must be sha256: followed by 64/],
    [`reg.io/app@sha256+b64:${'a'.repeat(64)}`, /the digest must be sha256:/],
    [`reg.io/app@sha256:${'a'.repeat(64)}@sha256:${'a'.repeat(64)}`, /not a Docker reference/],
    // Credentials are never part of a reference.
    ['https://user:pw@reg.io/app:1', /^image 'https:\/\/user:\[redacted\]@reg\.io\/app:1' contains credentials/],
    ['user:pw@reg.io/app:1', /^image 'user:\[redacted\]@reg\.io\/app:1' contains credentials/],
    ['token@reg.io/app:1', /^image '\[redacted\]@reg\.io\/app:1' contains credentials/],
    ['user:pw@reg.io:5000', /^image 'user:\[redacted\]@reg\.io:5000' contains credentials/],
  ];
  for (const [text, reason] of refused) {
    it(`refuses ${JSON.stringify(text.slice(0, 40))}`, () => {
      const parsed = parseImageReference(text);
      assert.equal(parsed.ok, false);
      assert.match((parsed as { reason: string }).reason, reason);
    });
  }

  it('never echoes credentials in its reason', () => {
    for (const text of ['https://user:hunter2@reg.io/app:1', 'user:hunter2@reg.io/app:1', 'hunter2@reg.io/app:1', 'https://hunter2@reg.io/app:1', 'user:p@hunter2@reg.io/app:1']) {
      const parsed = parseImageReference(text);
      assert.equal(parsed.ok, false, text);
      assert.doesNotMatch((parsed as { reason: string }).reason, /hunter2/);
    }
  });

  it('never echoes control characters in its reason', () => {
    const parsed = parseImageReference('reg.io/app:v1\u001b[2J');
    assert.equal(parsed.ok, false);
    assert.doesNotMatch((parsed as { reason: string }).reason, /\u001b/);
  });

  it('matches allow-lists exactly or by a /* prefix', () => {
    assert.ok(repositoryAllowed('reg.io/team/app', ['reg.io/team/app']));
    assert.ok(!repositoryAllowed('reg.io/team/app-evil', ['reg.io/team/app']));
    assert.ok(repositoryAllowed('reg.io/team/app', ['reg.io/team/*']));
    assert.ok(!repositoryAllowed('reg.io/teamx/app', ['reg.io/team/*']));
    assert.ok(!repositoryAllowed('evil.io/reg.io/team/app', ['reg.io/team/*']));
  });
});
