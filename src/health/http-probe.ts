// The bastion's own view of a container: an HTTP request to the host's address, as the load
// balancer would make it. Passing means the expected status (and body text, if configured).

export interface HttpCheck {
  readonly port: number;
  readonly path: string;
  readonly expectStatus: number;
  readonly expectBodyContains?: string | undefined;
}

export type ProbeResult = { ok: true } | { ok: false; reason: string };

export async function probeHttp(address: string, check: HttpCheck, timeoutMs = 2_000): Promise<ProbeResult> {
  const url = `http://${address}:${check.port}${check.path}`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    const body = await response.text();
    if (response.status !== check.expectStatus) return { ok: false, reason: `${url} answered ${response.status}, expected ${check.expectStatus}` };
    if (check.expectBodyContains !== undefined && !body.includes(check.expectBodyContains)) {
      return { ok: false, reason: `${url} answered without '${check.expectBodyContains}'` };
    }
    return { ok: true };
  } catch (error) {
    const cause = (error as Error & { cause?: Error }).cause;
    return { ok: false, reason: `${url}: ${cause?.message ?? (error as Error).message}` };
  }
}
