import { createSign } from 'node:crypto';
import { callJson } from '../chat/json-call.js';

// A GitHub App's installation token: a JWT signed with the app's private key (RS256; issued a minute
// in the past for clock drift, valid nine minutes) buys one at POST
// /app/installations/{installation_id}/access_tokens, which lasts an hour; it is used until five
// minutes before it expires. Neither the key, the JWT nor the token is ever put in an error.

export interface GitHubAppCredentials {
  readonly appId: string;
  readonly installationId: string;
  /** PEM. */
  readonly privateKey: string;
}

export type TokenSource = () => Promise<{ ok: true; token: string } | { ok: false; reason: string; retry: boolean; retryAfterMs?: number }>;

const base64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');

export function appJwt(app: GitHubAppCredentials, nowMs = Date.now()): string {
  const now = Math.floor(nowMs / 1000);
  const unsigned = `${base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }))}.${base64url(JSON.stringify({ iat: now - 60, exp: now + 540, iss: app.appId }))}`;
  const signature = createSign('RSA-SHA256').update(unsigned).sign(app.privateKey);
  return `${unsigned}.${base64url(signature)}`;
}

export function installationTokens(app: GitHubAppCredentials, options: { apiUrl: string; fetchImpl: typeof fetch; timeoutMs: number }): TokenSource {
  let cached: { token: string; renewAt: number } | undefined;
  return async () => {
    if (cached && Date.now() < cached.renewAt) return { ok: true, token: cached.token };
    const jwt = appJwt(app);
    const outcome = await callJson(
      {
        method: 'POST',
        url: `${options.apiUrl}/app/installations/${encodeURIComponent(app.installationId)}/access_tokens`,
        headers: { authorization: `Bearer ${jwt}`, accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28', 'user-agent': 'harbormaster' },
        body: {},
      },
      { fetchImpl: options.fetchImpl, timeoutMs: options.timeoutMs, secrets: [jwt] },
    );
    if (outcome.kind === 'retry') return { ok: false, reason: `installation token: ${outcome.reason}`, retry: true, ...(outcome.retryAfterMs !== undefined ? { retryAfterMs: outcome.retryAfterMs } : {}) };
    if (outcome.kind === 'drop') return { ok: false, reason: `installation token: ${outcome.reason}`, retry: false };
    const { token, expires_at: expiresAt } = (outcome.body ?? {}) as { token?: unknown; expires_at?: unknown };
    if (typeof token !== 'string') return { ok: false, reason: 'installation token: no token in the answer', retry: false };
    const expires = typeof expiresAt === 'string' ? Date.parse(expiresAt) : Number.NaN;
    cached = { token, renewAt: (Number.isNaN(expires) ? Date.now() + 3_600_000 : expires) - 5 * 60_000 };
    return { ok: true, token };
  };
}
