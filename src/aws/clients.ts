// One place that says how every AWS client is made: the region, and an endpoint only for AWS-compatible
// servers (moto in tests and the local fleet). Credentials come from the SDK's default chain.

export interface AwsSettings {
  readonly region: string;
  readonly endpoint?: string;
}

export function clientOptions(settings: AwsSettings) {
  return {
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    // Retries are ours (withRetry), with logging; the SDK's own would hide them.
    maxAttempts: 1,
  };
}
