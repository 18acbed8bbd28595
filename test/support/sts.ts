import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { MOTO_CREDENTIALS, MOTO_REGION } from '../../local-fleet/moto.js';

// STS AssumeRole against moto, signed by hand as src/aws/caller-identity.ts signs GetCallerIdentity:
// the credentials of a person behind a shared role, whose role session name names them.

export interface SessionCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
}

export async function assumeRole(endpoint: string, roleArn: string, sessionName: string): Promise<SessionCredentials> {
  const url = new URL(endpoint);
  const body = new URLSearchParams({ Action: 'AssumeRole', Version: '2011-06-15', RoleArn: roleArn, RoleSessionName: sessionName }).toString();
  const signer = new SignatureV4({ credentials: MOTO_CREDENTIALS, region: MOTO_REGION, service: 'sts', sha256: Sha256 });
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: '/',
    headers: { host: url.host, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body,
  });
  const response = await fetch(url, { method: 'POST', headers: signed.headers as Record<string, string>, body });
  const text = await response.text();
  const field = (name: string) => {
    const value = new RegExp(`<${name}>([^<]+)</${name}>`).exec(text)?.[1];
    if (!value) throw new Error(`AssumeRole answered ${response.status} without ${name}: ${text.slice(0, 300)}`);
    return value;
  };
  return { accessKeyId: field('AccessKeyId'), secretAccessKey: field('SecretAccessKey'), sessionToken: field('SessionToken') };
}

/** The environment that hands these credentials to the SDK's default chain. */
export const credentialsEnv = (c: SessionCredentials): NodeJS.ProcessEnv => ({ AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey, AWS_SESSION_TOKEN: c.sessionToken });
