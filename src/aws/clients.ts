// One place that says how every AWS client is made: the region, and an endpoint only for AWS-compatible
// servers (moto in tests and the local fleet). Credentials come from the SDK's default chain.

export interface AwsSettings {
  readonly region: string;
  readonly endpoint?: string;
  /** Deadline of a call; default 30 s. */
  readonly requestTimeoutSeconds?: number;
}

/** `extraSeconds`: added to the deadline for calls that wait on purpose (an SQS long poll). */
export function clientOptions(settings: AwsSettings, extraSeconds = 0) {
  const requestTimeout = ((settings.requestTimeoutSeconds ?? 30) + extraSeconds) * 1000;
  return {
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    // Retries are ours (withRetry), with logging; the SDK's own would hide them.
    maxAttempts: 1,
    // Every call has a deadline: no AWS call waits for ever. Without throwOnRequestTimeout the SDK
    // only logs a warning when requestTimeout passes and goes on waiting.
    requestHandler: { connectionTimeout: Math.min(10_000, requestTimeout), requestTimeout, throwOnRequestTimeout: true },
  };
}
