import type { AlarmStateValue } from '../alarms/alarm-actions.js';
import type { RolloutSettings } from '../config/worker-config.js';
import type { ContainerSpec } from '../host/host-session.js';
import type { LoadBalancerRef } from '../loadbalancer/load-balancers.js';
import type { Gate } from '../rollout/steps.js';
import type { ReleaseRequest } from '../request/release-request.js';
import type { StoredEnvelope } from '../request/signed-envelope.js';

// What survives the worker: one record per release, written before every effect. It holds what can
// only be known at one moment (what Auto Scaling, the alarms, the load balancers and the containers
// were before the release touched them; which container the release started) and the release's
// intents ("about to deregister h2"). It never says whether an effect happened: the reconciler looks
// at the fleet for that. Plain JSON, so every store can hold it as it is.

export const RECORD_FORMAT = 'harbormaster.release/1';

export type ReleaseStatus =
  /** Claimed by a worker; nothing changed yet. */
  | 'accepted'
  /** A worker is changing the fleet, or was when it died: a start or a redelivery carries it on. */
  | 'running'
  /** Stopped at a safe point on request (every host whole, Auto Scaling and alarms restored); resumed by the next start. */
  | 'interrupted'
  | 'succeeded'
  /** Failed; the hosts it touched are back as the policy says, Auto Scaling and alarms restored. */
  | 'rolled-back'
  /** Failed, and something could not be put back: a person is needed (see `attention`). */
  | 'failed'
  /** Stopped before changing anything (no instance, preflight failed). */
  | 'refused'
  /**
   * A newer release of the same target came first: this one changed nothing, or it had stopped at a
   * safe point after changing hosts and the newer one, past its preflight, took the target over.
   */
  | 'superseded'
  /** Stopped by an operator (`harbormaster stop`) at a safe point: every host whole, Auto Scaling and alarms restored; the hosts released so far stay on the new image. Not resumed. */
  | 'stopped';

const FINAL: ReadonlySet<ReleaseStatus> = new Set(['succeeded', 'rolled-back', 'failed', 'refused', 'superseded', 'stopped']);
export const isFinal = (status: ReleaseStatus) => FINAL.has(status);

/** How far one host got, as the release last recorded it (observation decides what is true). */
export type HostProgress = 'pending' | 'in-progress' | 'released' | 'restored' | 'kept' | 'attention' | 'gone';

export interface LiveContainerRecord {
  readonly id: string;
  readonly name: string;
  readonly image: string;
}

export interface HostRecord {
  readonly instanceId: string;
  readonly address: string;
  readonly name?: string;
  /** The host before the release touched it; recorded before the first effect of the release. */
  readonly before: {
    /** Keys (loadBalancerKey) of the load balancers the host was registered in: only these get it back. */
    readonly registeredIn: string[];
    /** The live container, the rollback copy (by id: names are reused). null: none (a first release). */
    readonly live: LiveContainerRecord | null;
  };
  progress: HostProgress;
  /** The last effect decided for the host, recorded before it was carried out. */
  intent?: { readonly action: string; readonly at: string };
  /** How the last effect ended, recorded after it (observation still decides what holds). */
  outcome?: { readonly action: string; readonly at: string; readonly ok: boolean; readonly error?: string };
  /** Set with the intent to deregister: draining is timed from here. */
  deregisteredAt?: string;
  /** Set with the intent to register: the in-service wait is timed from here. */
  registeredAt?: string;
  /** The container whose smoke check passed. */
  smokePassed?: string;
  /** The container this release started, once known. */
  started?: string;
  failure?: { readonly step: string; readonly reason: string };
  attention?: string;
  /** When the host first left service for this release, and when it was back (for the report). */
  outAt?: string;
  backAt?: string;
}

/** Per Auto Scaling group: what was suspended before, and exactly what this release suspends and so resumes. */
export interface GroupRecord {
  readonly before: string[];
  readonly suspend: string[];
  /**
   * suspending: the call was recorded and may or may not have been made; resuming is right either way.
   * left: resuming failed for good (the group deleted, access denied): left to a person, never tried again.
   */
  phase: 'planned' | 'suspending' | 'suspended' | 'resuming' | 'resumed' | 'left';
}

export type AlarmMuting = 'mute-rule' | 'disable-actions';

export interface AlarmRecord {
  readonly mode: AlarmMuting;
  /** Every alarm the configuration names. */
  readonly names: string[];
  /** disable-actions: the alarms whose actions were enabled before, so disabled now and enabled again after. */
  readonly disable: string[];
  /** mute-rule: the rule and how far it reaches; moved forward while the release runs. */
  rule?: { readonly name: string; readonly start: string; until: string };
  /** left: unmuting failed for good (access denied): left to a person, never tried again. */
  phase: 'planned' | 'muting' | 'muted' | 'unmuting' | 'unmuted' | 'left';
}

/** The alarms the release watches (rollout.alarms and rollout.watch) and their state when it started (alarm-watch.ts). */
export interface WatchRecord {
  readonly alarms: string[];
  readonly baseline: Record<string, AlarmStateValue>;
}

/** Everything the release works from, settled before its first effect, so a resume does what the first run would have. */
export interface RecordedPlan {
  readonly settings: RolloutSettings;
  readonly spec: ContainerSpec;
  readonly loadBalancers: LoadBalancerRef[];
  /** Instance ids, batch by batch. */
  readonly batches: string[][];
  /** Bakes and pauses between batches (policy.steps); absent in records from before steps. */
  readonly gates?: Gate[];
  readonly batchSize: number;
  readonly minHealthy: number;
  readonly onFailure: 'host' | 'all';
  readonly drainTimeoutMs: number;
  readonly inServiceTimeoutMs: number;
}

export interface ReleaseRecord {
  readonly format: typeof RECORD_FORMAT;
  readonly releaseId: string;
  /** Bumped by every write; a store refuses a write from a stale revision. */
  revision: number;
  readonly request: ReleaseRequest;
  readonly keyId: string;
  /**
   * The signed envelope the request came in, verified again at every take-up (vouching.ts). A
   * rollback or a release for new hosts has none: `vouchedBy` names the signed release it repeats.
   */
  readonly envelope?: StoredEnvelope;
  /** A rollback or a release for new hosts: the succeeded, signed release whose envelope vouches for its image and target. */
  readonly vouchedBy?: string;
  /** stack/release/deployment (the deployment tag value). */
  readonly target: string;
  readonly deployment: string;
  status: ReleaseStatus;
  /** forward: towards the new image; back: the release failed and is putting hosts back. */
  direction: 'forward' | 'back';
  readonly acceptedAt: string;
  /** When it first changed something (for people reading the record; the release deadline counts from each take-up). */
  startedAt?: string;
  updatedAt: string;
  finishedAt?: string;
  /** How many times a worker took the release up. */
  attempts: number;
  /** Who holds it now (worker id, and the fencing token where the store has leases). */
  owner?: { readonly worker: string; readonly token?: number };
  /** Per gate of the plan (same index): when the release reached it, and when and by whom it was passed. */
  gates?: Array<{ readonly reachedAt: string; passedAt?: string; by?: string }>;
  /**
   * The operator's latest promotion of the release (from the target's control), and when this
   * release's worker first saw it (`seenAt`, the worker's clock): a pause is passed by a promotion
   * first seen after the pause was reached.
   */
  promotion?: { readonly by: string; readonly at: string; readonly note?: string; readonly seenAt: string };
  /** An operator's stop, as the release took it up at a safe point (from the target's control). */
  stop?: { readonly by: string; readonly at: string; readonly rollback: boolean; readonly note?: string };
  /** Why it ended as it did, or why it was interrupted. */
  reason?: string;
  failure?: { readonly host?: string; readonly step: string; readonly reason: string };
  plan?: RecordedPlan;
  scaling: Record<string, GroupRecord>;
  alarms?: AlarmRecord;
  /**
   * The release task (rollout.releaseTask): recorded `started` before its container is run, so a
   * worker that finds it `started` knows it may have run (in part).
   */
  releaseTask?: { phase: 'started' | 'succeeded' | 'failed'; readonly host: string; readonly startedAt: string; exitCode?: number | null; output?: string; attempts: number };
  /** A release of the current image to hosts that joined the target since (rollout.newHosts): of which release, to which instances alone. */
  readonly newHosts?: { readonly of: string; readonly instances: string[] };
  /** The image by digest (`repository@sha256:...`), as the first host's engine pulled it: what a promotion enqueues. */
  imageDigest?: string;
  /** The watched alarms and their baseline, recorded before the first effect. */
  watch?: WatchRecord;
  hosts: Record<string, HostRecord>;
  /** Restores that are not confirmed yet (retried, with backoff, until they are or fail for good). */
  pending?: string[];
  /** What needs a person. */
  attention?: string[];
  /** The record was rebuilt from a damaged file: what is missing cannot be trusted. */
  damaged?: string;
  /** The release's chat message (Slack app: channel and ts; Discord: message id), edited by whichever worker carries it. */
  chatMessage?: { readonly via: 'slack' | 'discord'; readonly channel?: string; readonly id: string };
  /** The GitHub deployment made for the release. */
  githubDeployment?: { readonly repository: string; readonly id: number };
  /** Made by an operator, not by a request from CI. */
  readonly origin?: ReleaseOrigin;
  /** Not started: its target is locked (control.ts). Set while it waits, removed when it starts. */
  held?: { readonly by: string; readonly reason: string; readonly until: string; readonly since: string };
}

/**
 * `harbormaster rollback`: a new release of the image of release `to` (its request copied with a new
 * id and creation time), undoing `of`, the release whose image was current on the target (if known).
 */
export interface ReleaseOrigin {
  readonly kind: 'rollback';
  readonly of?: string;
  readonly to: string;
  /** Who asked, as the system vouches for them (the caller's ARN, the OS user); `note`: what they said with --by. */
  readonly by: string;
  readonly note?: string;
  readonly at: string;
  readonly reason?: string;
}

export const loadBalancerKey = (lb: LoadBalancerRef) => `${lb.kind}:${lb.id}`;

export function newReleaseRecord(input: { request: ReleaseRequest; keyId: string; envelope?: StoredEnvelope; vouchedBy?: string; target: string; deployment: string; now: Date; worker: string }): ReleaseRecord {
  const at = input.now.toISOString();
  return {
    format: RECORD_FORMAT,
    releaseId: input.request.releaseId,
    revision: 0,
    request: input.request,
    keyId: input.keyId,
    ...(input.envelope ? { envelope: input.envelope } : {}),
    ...(input.vouchedBy ? { vouchedBy: input.vouchedBy } : {}),
    target: input.target,
    deployment: input.deployment,
    status: 'accepted',
    direction: 'forward',
    acceptedAt: at,
    updatedAt: at,
    attempts: 0,
    owner: { worker: input.worker },
    scaling: {},
    hosts: {},
  };
}

/** A short account of where a release stands, for logs and chat: "running, h2 at stop-old". */
export function whereItStands(record: ReleaseRecord, now = new Date()): string {
  const busy = Object.values(record.hosts).filter((h) => h.progress === 'in-progress');
  const done = Object.values(record.hosts).filter((h) => h.progress === 'released').length;
  const total = Object.keys(record.hosts).length;
  const parts: string[] = [record.status];
  if (record.direction === 'back') parts.push('rolling back');
  if (record.held && record.status === 'accepted') parts.push(`waiting: ${record.target} is locked by ${record.held.by} until ${record.held.until} (${record.held.reason})`);
  if (total > 0) parts.push(`${done} of ${total} host(s) released`);
  for (const host of busy) parts.push(`${host.name ?? host.address} at ${host.intent?.action ?? 'start'}`);
  const waiting = gateWaiting(record, now);
  if (waiting) parts.push(waiting);
  return parts.join(', ');
}

/** The gate of policy.steps a release waits at now, in words: "baking, 120 s left", "paused until `harbormaster promote`". */
export function gateWaiting(record: ReleaseRecord, now = new Date()): string | undefined {
  if (isFinal(record.status) || record.direction !== 'forward') return undefined;
  const index = (record.gates ?? []).findIndex((g) => g && !g.passedAt);
  const gate = index === -1 ? undefined : record.plan?.gates?.[index];
  if (!gate) return undefined;
  if (gate.kind === 'pause') return 'paused until `harbormaster promote`';
  const left = Math.max(0, Math.ceil((Date.parse(record.gates![index]!.reachedAt) + gate.seconds * 1000 - now.getTime()) / 1000));
  return `baking, ${left} s left`;
}
