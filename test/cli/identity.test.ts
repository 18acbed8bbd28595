import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { MOTO_REGION } from '../../local-fleet/moto.js';
import { callerArn } from '../../src/aws/caller-identity.js';
import { awsIdentity, IdentityUnknownError, osIdentity } from '../../src/cli/ops/identity.js';
import { motoForSuite } from '../support/aws.js';
import { assumeRole } from '../support/sts.js';

// Who ran a steering command: what the system vouches for, with what the bastion says of the person
// behind it beside it; never what the command line or the environment claims instead of it.

describe('who ran a steering command on the file store', () => {
  it('is the user the process runs as', () => {
    assert.equal(osIdentity({ user: 'root', env: {} }), 'root');
    assert.equal(osIdentity({ user: 'harbormaster', env: {} }), 'harbormaster');
  });

  it("names sudo's SUDO_USER and the kernel's login user beside it, never instead of it", () => {
    assert.equal(osIdentity({ user: 'root', env: { SUDO_USER: 'alice' } }), 'root (sudo from alice)');
    assert.equal(osIdentity({ user: 'root', login: 'alice', env: {} }), 'root (login alice)');
    assert.equal(osIdentity({ user: 'root', login: 'alice', env: { SUDO_USER: 'alice' } }), 'root (sudo from alice)');
    assert.equal(osIdentity({ user: 'root', login: 'bob', env: { SUDO_USER: 'alice' } }), 'root (sudo from alice, login bob)');
    assert.equal(osIdentity({ user: 'harbormaster', login: 'alice', env: { SUDO_USER: 'alice' } }), 'harbormaster (sudo from alice)');
  });

  it('leaves out what says nothing more or is not a user name', () => {
    assert.equal(osIdentity({ user: 'root', login: 'root', env: { SUDO_USER: 'root' } }), 'root');
    assert.equal(osIdentity({ user: 'root', env: { SUDO_USER: 'eve\u001b[31m' } }), 'root');
    assert.equal(osIdentity({ user: 'root', env: { SUDO_USER: 'x'.repeat(100) } }), 'root');
  });
});

describe('who ran a steering command on the DynamoDB store', () => {
  const moto = motoForSuite();

  it("is the caller's ARN; behind a shared role, the role session name names the person", async () => {
    const alice = await assumeRole(moto.moto.endpoint, 'arn:aws:iam::123456789012:role/HarbormasterOps', 'alice');
    const client = new DynamoDBClient({ region: MOTO_REGION, endpoint: moto.moto.endpoint, credentials: alice });
    try {
      assert.equal(await awsIdentity(() => callerArn(client, { endpoint: moto.moto.endpoint })), 'arn:aws:sts::123456789012:assumed-role/HarbormasterOps/alice');
    } finally {
      client.destroy();
    }
  });

  it('refuses, writing nothing, when STS cannot say who the caller is: --by cannot stand in for it', async () => {
    await assert.rejects(
      awsIdentity(async () => {
        throw new Error('connect ECONNREFUSED 127.0.0.1:1');
      }),
      (error: unknown) =>
        error instanceof IdentityUnknownError &&
        error.message ===
          "cannot tell who you are from AWS (STS GetCallerIdentity: connect ECONNREFUSED 127.0.0.1:1): with the DynamoDB store every steering command records the caller's ARN, and --by is only a note beside it; check the credentials (`aws sts get-caller-identity`) and run the command again; nothing was written",
    );
    await assert.rejects(awsIdentity(async () => 'alice'), /STS GetCallerIdentity answered an ARN that is not one \("alice"\); nothing was written/);
  });
});
