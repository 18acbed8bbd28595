import { CreateAccessKeyCommand, CreateUserCommand, IAMClient } from '@aws-sdk/client-iam';
import { MOTO_CREDENTIALS, MOTO_REGION } from '../../local-fleet/moto.js';

// moto checks IAM only when told to (POST /moto-api/reset-auth with the number of calls still let
// through): a user without any policy, with IAM checks on, is refused every call, as on AWS.

let users = 0;

/** Credentials of a new user with no policy, and IAM checks on from now until the returned function is called. */
export async function deniedCredentials(endpoint: string): Promise<{ credentials: { accessKeyId: string; secretAccessKey: string }; restore: () => Promise<void> }> {
  const iam = new IAMClient({ endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS, maxAttempts: 1 });
  const name = `no-permissions-${process.pid}-${++users}`;
  await iam.send(new CreateUserCommand({ UserName: name }));
  const key = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
  iam.destroy();
  const set = async (count: string) => {
    const response = await fetch(`${endpoint}/moto-api/reset-auth`, { method: 'POST', body: count });
    if (!response.ok) throw new Error(`moto reset-auth: ${response.status}`);
  };
  await set('0');
  return { credentials: { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! }, restore: () => set('inf') };
}
