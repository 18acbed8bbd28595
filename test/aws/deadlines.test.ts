import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DescribeLoadBalancersCommand, ElasticLoadBalancingClient } from '@aws-sdk/client-elastic-load-balancing';
import { SQSClient } from '@aws-sdk/client-sqs';
import { MOTO_CREDENTIALS } from '../../local-fleet/moto.js';
import { clientOptions, type AwsSettings } from '../../src/aws/clients.js';
import { isTransient } from '../../src/aws/transient.js';
import { SqsWorkQueue } from '../../src/queue/sqs-queue.js';
import { startSilentServer, type SilentServer } from '../support/silent-server.js';
import { capturingLogger } from '../support/worker-fixtures.js';

// Every AWS call has a deadline (aws.requestTimeoutSeconds), shown against an endpoint that accepts
// the connection, reads the request and never answers. Each test is bounded by its timeout option
// well past the deadline: a call without one fails the test by timing out, not by a clock reading.

/** The deadline's failure: the SDK's TimeoutError, which the worker's retries take as transient. */
function assertTimedOut(error: unknown): true {
  assert.ok(error instanceof Error, `not an Error: ${String(error)}`);
  assert.equal(error.name, 'TimeoutError', `${error.name}: ${error.message}`);
  assert.match(error.message, /timed out|exceeded the configured/);
  assert.equal(isTransient(error), true, 'a timed-out call is one to try again');
  return true;
}

describe('AWS calls against an endpoint that never answers', () => {
  let silent: SilentServer;
  let settings: AwsSettings;
  before(async () => {
    silent = await startSilentServer();
    settings = { region: 'us-west-2', endpoint: silent.url, requestTimeoutSeconds: 1 };
  });
  after(async () => {
    await silent.stop();
  });

  it('an EC2 call fails at its deadline with a TimeoutError', { timeout: 8_000 }, async () => {
    const ec2 = new EC2Client({ ...clientOptions(settings), credentials: MOTO_CREDENTIALS });
    const before = silent.received();
    await assert.rejects(ec2.send(new DescribeInstancesCommand({})), assertTimedOut);
    assert.ok(silent.received() > before, 'the request reached the server');
    ec2.destroy();
  });

  it('a classic ELB call fails at its deadline with a TimeoutError', { timeout: 8_000 }, async () => {
    const elb = new ElasticLoadBalancingClient({ ...clientOptions(settings), credentials: MOTO_CREDENTIALS });
    await assert.rejects(elb.send(new DescribeLoadBalancersCommand({})), assertTimedOut);
    elb.destroy();
  });

  it("the worker's SQS long poll fails at its deadline (the wait plus requestTimeoutSeconds)", { timeout: 10_000 }, async () => {
    const waitSeconds = 1;
    // As the worker makes its queue client: the long poll's own wait is added to the deadline.
    const sqs = new SQSClient({ ...clientOptions(settings, waitSeconds), credentials: MOTO_CREDENTIALS });
    const queueUrl = `${silent.url}/123456789012/releases`;
    const queue = new SqsWorkQueue(sqs, { queue: queueUrl, deadLetter: `${queueUrl}-dlq` }, capturingLogger().logger);
    const stop = new AbortController();
    await assert.rejects(queue.receive({ waitSeconds, visibilityTimeoutSeconds: 30, signal: stop.signal }), (error: Error) => {
      assertTimedOut(error);
      assert.match(error.message, /configured 2000 ms requestTimeout/, 'the deadline is the wait plus requestTimeoutSeconds');
      return true;
    });
    assert.equal(stop.signal.aborted, false, 'ended by its deadline, not by being stopped');
    sqs.destroy();
  });
});
