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

/**
 * What bounds the AWS calls made under a target's lease: `signal` is aborted when the lease is given up
 * (every call in flight is abandoned, no attempt follows), and each attempt has at most `attemptMs`,
 * so that none of them can outlast the lease (see release-scheduler.ts).
 */
export interface CallLimit {
  readonly signal: AbortSignal;
  readonly attemptMs: number;
}

/** An attempt under a CallLimit that ran out of its time: transient, so it is tried again. */
export class AttemptDeadlineError extends Error {
  override name = 'TimeoutError';
}

export interface RetryOptions {
  readonly what: string;
  readonly logger?: Logger;
  readonly retries?: number;
  readonly minTimeoutMs?: number;
  readonly maxTimeoutMs?: number;
  readonly limit?: CallLimit;
}

/** One attempt: under a limit, handed the signal to pass on (`client.send(command, { abortSignal })`). */
async function attempt<T>(call: (signal?: AbortSignal) => Promise<T>, what: string, limit: CallLimit | undefined): Promise<T> {
  if (!limit) return call();
  limit.signal.throwIfAborted();
  // A timer of our own rather than AbortSignal.timeout, whose timer does not keep the process alive:
  // an attempt waiting on nothing else must still end at its deadline.
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), limit.attemptMs);
  try {
    return await call(AbortSignal.any([limit.signal, deadline.signal]));
  } catch (error) {
    // Given up: the lease's reason ends the retries (it is not transient).
    if (limit.signal.aborted) throw limit.signal.reason ?? error;
    if (deadline.signal.aborted) throw new AttemptDeadlineError(`${what}: no answer within ${limit.attemptMs} ms`, { cause: error });
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs an AWS (or other network) call, retrying transient failures with jittered exponential backoff.
 * Under `limit`, the call gets an abort signal for each attempt, and an aborted limit ends the retries
 * at once, also while waiting between attempts.
 */
export function withRetry<T>(call: (signal?: AbortSignal) => Promise<T>, options: RetryOptions): Promise<T> {
  return pRetry(() => attempt(call, options.what, options.limit), {
    retries: options.retries ?? 5,
    minTimeout: options.minTimeoutMs ?? 200,
    maxTimeout: options.maxTimeoutMs ?? 5_000,
    randomize: true,
    ...(options.limit ? { signal: options.limit.signal } : {}),
    shouldRetry: ({ error }) => isTransient(error) && !options.limit?.signal.aborted,
    onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
      if (isTransient(error) && retriesLeft > 0) {
        options.logger?.warn({ err: error, attempt: attemptNumber, retriesLeft }, `${options.what} failed, retrying`);
      }
    },
  });
}
