import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { parseImageReference } from './image-reference.js';
import {
  branchName,
  buildUrl,
  commitId,
  featureName,
  releaseId,
  requesterName,
  resourceName,
  userName,
} from './names.js';

export const REQUEST_FORMAT_VERSION = 1;

const imageField = z
  .string({ required_error: 'image is required', invalid_type_error: 'image must be a string' })
  .superRefine((value, ctx) => {
    const parsed = parseImageReference(value);
    if (!parsed.ok) ctx.addIssue({ code: z.ZodIssueCode.custom, message: parsed.reason });
  });

const fixedTarget = z
  .object({
    stack: resourceName('stack'),
    release: resourceName('release'),
    deployment: resourceName('deployment'),
  })
  .strict();

const personalTarget = z
  .object({
    stack: resourceName('stack'),
    release: resourceName('release'),
    personal: z.object({ user: userName('user'), feature: featureName('feature') }).strict(),
  })
  .strict();

export const releaseRequestSchema = z
  .object({
    version: z.literal(REQUEST_FORMAT_VERSION, {
      errorMap: () => ({ message: `version must be ${REQUEST_FORMAT_VERSION}` }),
    }),
    releaseId: releaseId('releaseId'),
    target: z.union([fixedTarget, personalTarget], {
      errorMap: (issue, ctx) =>
        issue.code === z.ZodIssueCode.invalid_union
          ? { message: 'target must be {stack, release, deployment} or {stack, release, personal: {user, feature}}' }
          : { message: ctx.defaultError },
    }),
    image: imageField,
    requestedBy: requesterName('requestedBy'),
    source: z
      .object({
        branch: branchName('source.branch').optional(),
        commit: commitId('source.commit').optional(),
        buildUrl: buildUrl('source.buildUrl').optional(),
      })
      .strict(),
    createdAt: z.string().datetime({ offset: false, message: 'createdAt must be an ISO-8601 UTC timestamp' }),
  })
  .strict();

export type ReleaseRequest = z.infer<typeof releaseRequestSchema>;
export type FixedTarget = z.infer<typeof fixedTarget>;
export type PersonalTarget = z.infer<typeof personalTarget>;
export type RequestTarget = ReleaseRequest['target'];

export function isPersonal(target: RequestTarget): target is PersonalTarget {
  return 'personal' in target;
}

/** A short, stable, human name for the target: `stack/release/deployment` or `stack/release/~user`. */
export function describeTarget(target: RequestTarget): string {
  return isPersonal(target)
    ? `${target.stack}/${target.release}/~${target.personal.user}`
    : `${target.stack}/${target.release}/${target.deployment}`;
}

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Path-qualified, one line, first few issues: what ops and CI read. */
export function formatIssues(error: z.ZodError, prefix = ''): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => {
      const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
      if (issue.code === z.ZodIssueCode.unrecognized_keys) {
        return `${path ? `${path}: ` : ''}unknown field(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
      }
      return `${path ? `${path}: ` : ''}${issue.message}`;
    })
    .join('; ');
}

export function validateReleaseRequest(value: unknown): ValidationResult<ReleaseRequest> {
  const parsed = releaseRequestSchema.safeParse(value);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, reason: formatIssues(parsed.error) };
}

export interface NewRequestInput {
  target: RequestTarget;
  image: string;
  requestedBy: string;
  source: ReleaseRequest['source'];
  now?: Date;
}

/** Builds and validates a request with a fresh release id: what `enqueue` sends. */
export function newReleaseRequest(input: NewRequestInput): ValidationResult<ReleaseRequest> {
  return validateReleaseRequest({
    version: REQUEST_FORMAT_VERSION,
    releaseId: randomUUID(),
    target: input.target,
    image: input.image,
    requestedBy: input.requestedBy,
    source: input.source,
    createdAt: (input.now ?? new Date()).toISOString(),
  });
}
