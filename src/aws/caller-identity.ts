import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

// Who the AWS credentials are: STS GetCallerIdentity's ARN, for the record of who ran an ops command.
// Asked with the credentials, region and endpoint of the DynamoDB client the command already has
// (the SDK's default chain), signed here with the SDK's own SigV4 signer: one Query-API call is not
// worth a client of its own. Regional STS endpoint in AWS; the configured endpoint (moto) otherwise.

export async function callerArn(client: DynamoDBClient, options: { endpoint?: string; timeoutMs?: number } = {}): Promise<string> {
  const region = await client.config.region();
  const credentials = await client.config.credentials();
  const url = new URL(options.endpoint ?? `https://sts.${region}.amazonaws.com/`);
  const body = 'Action=GetCallerIdentity&Version=2011-06-15';
  const signer = new SignatureV4({ credentials, region, service: 'sts', sha256: Sha256 });
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname || '/',
    headers: { host: url.host, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body,
  });
  const response = await fetch(url, { method: 'POST', headers: signed.headers as Record<string, string>, body, signal: AbortSignal.timeout(options.timeoutMs ?? 10_000) });
  const text = await response.text();
  const arn = /<Arn>([^<]+)<\/Arn>/.exec(text)?.[1];
  if (!response.ok || !arn) throw new Error(`STS GetCallerIdentity answered ${response.status}${arn ? '' : ' with no ARN'}`);
  return arn;
}
