import pRetry from 'p-retry';
import type { Logger } from '../log/logger.js';

// Which failures are worth trying again: throttling, 5xx, and the network itself. Everything else
// (access denied, a queue that does not exist, a validation error) fails at once with its cause.

const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'SlowDown',
  'RequestThrottled',
  'ProvisionedThroughputExceededException',
  'ServiceUnavailable',
  'InternalError',
  'InternalFailure',
]);
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);

export function isTransient(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const e = error as Error & { $retryable?: unknown; $metadata?: { httpStatusCode?: number }; code?: string; cause?: unknown };
  if (e.name === 'AbortError') return false;
  if (e.$retryable) return true;
  if (THROTTLING.has(e.name)) return true;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  if (e.code && NETWORK.has(e.code)) return true;
  if (e.name === 'TimeoutError') return true;
  return e.cause !== undefined && e.cause !== error && isTransient(e.cause);
}

export interface RetryOptions {
  readonly what: string;
  readonly logger?: Logger;
  readonly retries?: number;
  readonly minTimeoutMs?: number;
  readonly maxTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** Runs an AWS (or other network) call, retrying transient failures with jittered exponential backoff. */
export function withRetry<T>(call: () => Promise<T>, options: RetryOptions): Promise<T> {
  return pRetry(call, {
    retries: options.retries ?? 5,
    minTimeout: options.minTimeoutMs ?? 200,
    maxTimeout: options.maxTimeoutMs ?? 5_000,
    randomize: true,
    ...(options.signal ? { signal: options.signal } : {}),
    shouldRetry: ({ error }) => isTransient(error),
    onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
      if (isTransient(error) && retriesLeft > 0) {
        options.logger?.warn({ err: error, attempt: attemptNumber, retriesLeft }, `${options.what} failed, retrying`);
      }
    },
  });
}
