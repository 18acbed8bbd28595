// The rollout's narrow view of one host: its Docker engine, reached over ONE SSH connection kept for
// the whole release (the Docker API carried over a stream-local forward to the engine's socket).
// The executor calls only these; tests of the rollout logic use a fake, tests of this module use
// the local fleet's real engines over real SSH.

import type { EnvironmentSource } from '../config/environment-source.js';

export interface RegistryAuth {
  readonly username: string;
  readonly password: string;
  /** registry host[:port], as in the image reference. */
  readonly serveraddress: string;
}

/** Everything about how the container runs: from the worker's configuration, never from the request. */
export interface ContainerSpec {
  readonly name: string;
  readonly image: string;
  /** "hostPort:containerPort" or "hostPort:containerPort/udp". */
  readonly ports: readonly string[];
  readonly environment: Readonly<Record<string, string>>;
  /**
   * Variables whose values are read when the container is started (SSM, Secrets Manager, the worker's
   * environment or files): names of sources only, so the spec can be recorded. A session refuses to
   * start a spec that still has them; the resolving connector (src/host/resolving-connector.ts) fills them in.
   */
  readonly environmentSources?: Readonly<Record<string, EnvironmentSource>>;
  /** "source:target" or "source:target:ro", e.g. /dev/log:/dev/log. */
  readonly volumes: readonly string[];
  readonly restartPolicy: 'no' | 'always' | 'unless-stopped' | 'on-failure';
  readonly labels: Readonly<Record<string, string>>;
  readonly stopTimeoutSeconds: number;
  /** none: no network at all (the start check); default the engine's default bridge. */
  readonly network?: 'none';
  /** Overrides the image's command (the release task); default the image's own. */
  readonly command?: readonly string[];
}

export interface ContainerInfo {
  readonly id: string;
  readonly name: string;
  readonly image: string;
  readonly running: boolean;
  /** The engine's state: created (never started), running, restarting (a restart policy at work), paused, exited, dead. */
  readonly state: 'created' | 'running' | 'restarting' | 'paused' | 'exited' | 'dead' | 'removing';
  /** Restarts by the engine's restart policy since the container was last started by hand. */
  readonly restartCount: number;
  /** When it was last started (epoch ms); absent if never. */
  readonly startedAt?: number;
  /** From the image's HEALTHCHECK; 'none' when the image has none. */
  readonly health: 'starting' | 'healthy' | 'unhealthy' | 'none';
  readonly exitCode?: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly createdAt: string;
  /** The engine's restart policy (`no` when it has none); absent when not known. */
  readonly restartPolicy?: string;
}

/** What a container list says without inspecting each container: enough to choose which to inspect. */
export interface ContainerSummary {
  readonly id: string;
  readonly name: string;
  readonly state: ContainerInfo['state'];
  readonly labels: Readonly<Record<string, string>>;
}

export interface HostSession {
  readonly address: string;
  /** The engine answers; its id (distinct per engine). */
  ping(): Promise<{ engineId: string }>;
  /** Pulls an image; rejects with the registry's reason (unauthorised, not found, unreachable). */
  pull(image: string, auth?: RegistryAuth): Promise<void>;
  /** undefined when no container has that name. */
  inspect(nameOrId: string): Promise<ContainerInfo | undefined>;
  /** Containers whose labels include all of these, each inspected. */
  list(labels: Readonly<Record<string, string>>): Promise<ContainerInfo[]>;
  /** The same containers, from the list alone (one call): to choose which are worth inspecting. */
  summaries(labels: Readonly<Record<string, string>>): Promise<ContainerSummary[]>;
  rename(nameOrId: string, newName: string): Promise<void>;
  stop(nameOrId: string, timeoutSeconds: number): Promise<void>;
  start(nameOrId: string): Promise<void>;
  /** `docker container update --restart`: a copy kept for rollback gets `no`, so an engine restart never revives it. */
  setRestartPolicy(nameOrId: string, policy: ContainerSpec['restartPolicy']): Promise<void>;
  /** Creates and starts a container; resolves with its id. */
  run(spec: ContainerSpec): Promise<string>;
  /** Creates a container without starting it (its ports are bound only when it starts); resolves with its id. */
  create(spec: ContainerSpec): Promise<string>;
  /** The registry digest (`repository@sha256:...`) of a pulled image, as the engine knows it; undefined when it has none. */
  imageDigest?(image: string): Promise<string | undefined>;
  /** The last `tail` lines a container wrote (stdout and stderr, interleaved); '' when it is gone. */
  logs(nameOrId: string, tail: number): Promise<string>;
  remove(nameOrId: string): Promise<void>;
  /**
   * From now on, every call of this session is abandoned (its request aborted) when `signal` aborts,
   * rejecting with its reason, and no call is made after it: under a lease, the lease's signal.
   */
  abortOn?(signal: AbortSignal): void;
  close(): Promise<void>;
}

export interface ConnectOptions {
  /** The engine's socket on this host, over the connector's own (a release's rollout.engineSocket). */
  readonly engineSocket?: string;
}

export interface HostConnector {
  /** Opens the host's SSH connection, verifying its host key; rejects with the reason (unreachable, key mismatch, no engine answering...). */
  connect(address: string, signal?: AbortSignal, options?: ConnectOptions): Promise<HostSession>;
}
