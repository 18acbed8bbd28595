// Typed failures of a host session. Each says which host, what went wrong in words an operator can
// act on, and keeps the underlying error as `cause` for the log. The rollout decides what to do from
// the class (unreachable: skip/abort before touching anything; key: never retry; pull: registry reason).

export abstract class HostError extends Error {
  readonly address: string;
  protected constructor(address: string, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = new.target.name;
    this.address = address;
  }
}

/** TCP connect refused or timed out, SSH handshake timed out, or the kept connection was lost or closed. */
export class HostUnreachableError extends HostError {
  constructor(address: string, detail: string, cause?: unknown) {
    super(address, `host ${address} is unreachable over SSH: ${detail}`, cause);
  }
}

export type HostKeyProblem = 'unknown-host' | 'changed-key' | 'revoked-key';

/** The host's key is not the one known_hosts has for that address. Never trusted on first use. */
export class HostKeyError extends HostError {
  readonly problem: HostKeyProblem;
  /** The presented key's fingerprint as OpenSSH prints it: SHA256:base64-without-padding. */
  readonly fingerprint: string;
  readonly keyType: string;
  constructor(address: string, problem: HostKeyProblem, keyType: string, fingerprint: string, knownFingerprints: readonly string[], cause?: unknown) {
    const presented = `${keyType} ${fingerprint}`;
    const detail =
      problem === 'unknown-host'
        ? `${address} presented host key ${presented} but known_hosts has no entry for ${address}; refusing to connect (no trust on first use)`
        : problem === 'revoked-key'
          ? `${address} presented host key ${presented}, which known_hosts marks @revoked; refusing to connect`
          : `host key of ${address} does not match known_hosts: it presented ${presented}, known_hosts has ${knownFingerprints.join(', ')}; refusing to connect (changed key or impostor)`;
    super(address, detail, cause);
    this.problem = problem;
    this.fingerprint = fingerprint;
    this.keyType = keyType;
  }
}

/** The host's key was accepted but it refused our user/key. */
export class HostAuthenticationError extends HostError {
  constructor(address: string, user: string, cause?: unknown) {
    super(address, `host ${address} refused SSH authentication for user ${user} with the configured private key`, cause);
  }
}

/** A Docker API call failed: the engine answered with an error status, or its socket could not be reached. */
export class EngineError extends HostError {
  readonly operation: string;
  /** The engine's HTTP status when it answered, e.g. 404, 409, 500. */
  readonly statusCode?: number;
  constructor(address: string, operation: string, detail: string, statusCode?: number, cause?: unknown) {
    super(address, `docker ${operation} on ${address} failed${statusCode === undefined ? '' : ` (HTTP ${statusCode})`}: ${detail}`, cause);
    this.operation = operation;
    if (statusCode !== undefined) this.statusCode = statusCode;
  }
}

/**
 * The engine's socket cannot be reached over SSH (the engine stopped or restarting, the socket not
 * there yet): the host does not answer for now, as when it cannot be reached at all.
 */
export class EngineUnavailableError extends EngineError {
  constructor(address: string, operation: string, detail: string, cause?: unknown) {
    super(address, operation, detail, undefined, cause);
  }
}

/** The engine did not answer a call within its deadline: wedged, overloaded, or the host cut off. */
export class EngineTimeoutError extends EngineError {
  readonly timeoutMs: number;
  constructor(address: string, operation: string, timeoutMs: number) {
    super(address, operation, `no answer within ${Math.round(timeoutMs / 1000)} s (engine wedged, or the host cut off?)`);
    this.timeoutMs = timeoutMs;
  }
}

/** stop/start/rename of a container that does not exist (404). */
export class ContainerNotFoundError extends EngineError {
  readonly container: string;
  constructor(address: string, operation: string, container: string, cause?: unknown) {
    super(address, operation, `no container ${container}`, 404, cause);
    this.container = container;
  }
}

/** The container spec from configuration cannot be expressed to the engine (bad port or volume string). */
export class ContainerSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContainerSpecError';
  }
}

export type PullFailureReason = 'unauthorised' | 'not-found' | 'unreachable' | 'interrupted' | 'other';

/** The engine could not pull the image; `reason` is the registry's answer classified, `registryMessage` its words. */
export class PullError extends HostError {
  readonly image: string;
  readonly reason: PullFailureReason;
  readonly registryMessage: string;
  constructor(address: string, image: string, reason: PullFailureReason, registryMessage: string, cause?: unknown) {
    super(address, `pull of ${image} on ${address} failed: ${describeReason(reason)}: ${registryMessage}`, cause);
    this.image = image;
    this.reason = reason;
    this.registryMessage = registryMessage;
  }
}

function describeReason(reason: PullFailureReason): string {
  switch (reason) {
    case 'unauthorised':
      return 'registry refused the credentials (unauthorised)';
    case 'not-found':
      return 'image not found in the registry';
    case 'unreachable':
      return 'registry unreachable from the host';
    case 'interrupted':
      return 'progress stream ended before the pull finished';
    case 'other':
      return 'registry error';
  }
}
