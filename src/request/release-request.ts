import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { parseImageReference } from './image-reference.js';
import { printable } from './outside-text.js';
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

const IMAGE_RULE = 'a full Docker reference, registry/path:tag or registry/path@sha256:digest';

const imageField = z
  .string({ required_error: `image is required: ${IMAGE_RULE}`, invalid_type_error: `image must be a string: ${IMAGE_RULE}` })
  .superRefine((value, ctx) => {
    const parsed = parseImageReference(value);
    if (!parsed.ok) ctx.addIssue({ code: z.ZodIssueCode.custom, message: parsed.reason });
  });

const TARGET_SHAPES = '{stack, release, deployment} or {stack, release, personal: {user, feature}}';

const fixedTarget = z
  .object({
    stack: resourceName('target.stack'),
    release: resourceName('target.release'),
    deployment: resourceName('target.deployment'),
  })
  .strict();

const personalTarget = z
  .object({
    stack: resourceName('target.stack'),
    release: resourceName('target.release'),
    personal: z
      .object(
        { user: userName('target.personal.user'), feature: featureName('target.personal.feature') },
        {
          required_error: 'target.personal is required: {user, feature}',
          invalid_type_error: 'target.personal must be an object {user, feature}',
        },
      )
      .strict(),
  })
  .strict();

const REQUEST_FIELDS = '{version, releaseId, target, image, requestedBy, source, createdAt, promotedFrom?}';

/**
 * Where a promoted image comes from (`enqueue --promote-from`): the deployment of the same stack and
 * release it was current on, and that release. Signed with the rest, so chat and history can say it.
 */
const promotedFromField = z
  .object(
    { deployment: resourceName('promotedFrom.deployment'), releaseId: releaseId('promotedFrom.releaseId') },
    { invalid_type_error: 'promotedFrom must be an object {deployment, releaseId}' },
  )
  .strict();

export const releaseRequestSchema = z
  .object(
    {
      version: z.literal(REQUEST_FORMAT_VERSION, {
        errorMap: (_issue, ctx) => ({
          message:
            ctx.data === undefined
              ? `version is required: it must be ${REQUEST_FORMAT_VERSION}`
              : `version must be ${REQUEST_FORMAT_VERSION} (the number): this worker reads format ${REQUEST_FORMAT_VERSION} only`,
        }),
      }),
      releaseId: releaseId('releaseId'),
      target: z.union([fixedTarget, personalTarget], {
        // Only when every branch failed on its type (formatIssues then names the nearer branch's fields).
        errorMap: (issue, ctx) => {
          if (issue.code !== z.ZodIssueCode.invalid_union) return { message: ctx.defaultError };
          if (ctx.data === undefined) return { message: `target is required: ${TARGET_SHAPES}` };
          if (typeof ctx.data !== 'object' || ctx.data === null || Array.isArray(ctx.data)) {
            return { message: `target must be an object: ${TARGET_SHAPES}` };
          }
          return { message: `target must be ${TARGET_SHAPES}` };
        },
      }),
      image: imageField,
      requestedBy: requesterName('requestedBy'),
      source: z
        .object(
          {
            branch: branchName('source.branch').optional(),
            commit: commitId('source.commit').optional(),
            buildUrl: buildUrl('source.buildUrl').optional(),
          },
          {
            required_error: 'source is required: an object {branch, commit, buildUrl}, each optional ({} when unknown)',
            invalid_type_error: 'source must be an object {branch, commit, buildUrl}, each optional',
          },
        )
        .strict(),
      createdAt: z
        .string({
          required_error: 'createdAt is required: an ISO-8601 UTC timestamp, e.g. 2026-11-26T10:00:00.000Z',
          invalid_type_error: 'createdAt must be a string: an ISO-8601 UTC timestamp, e.g. 2026-11-26T10:00:00.000Z',
        })
        .datetime({ offset: false, message: 'createdAt must be an ISO-8601 UTC timestamp (e.g. 2026-11-26T10:00:00.000Z)' }),
      promotedFrom: promotedFromField.optional(),
    },
    {
      required_error: `the request must be a JSON object ${REQUEST_FIELDS}`,
      invalid_type_error: `the request must be a JSON object ${REQUEST_FIELDS}`,
    },
  )
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

const MAX_ISSUES = 5;
const MAX_KEYS_SHOWN = 5;

/** The issues to report: a union that failed on every branch reports its nearest branch's issues. */
function flatten(issues: readonly z.ZodIssue[]): z.ZodIssue[] {
  return issues.flatMap((issue) => {
    if (issue.code !== z.ZodIssueCode.invalid_union) return [issue];
    // The branch with the fewest issues is the one the input meant ({stack, release, deployment: 5}
    // is a fixed target with a bad deployment, not a personal target missing everything). A tie
    // (a target that is not an object, or has neither or both of deployment and personal) keeps the
    // union's own message, which lists the shapes.
    const branches = issue.unionErrors.map((error) => flatten(error.issues)).sort((a, b) => a.length - b.length);
    const [nearest, next] = branches;
    if (!nearest || nearest.length === 0 || (next && next.length === nearest.length)) return [issue];
    return nearest;
  });
}

/**
 * Path-qualified, one line, first few issues: what ops and CI read. With `namedPaths` (the request
 * and the envelope, whose messages name their field: `target.deployment must be ...`) a message that
 * already starts with its path is not prefixed again. Whatever came from the input (unknown field
 * names) is quoted through `printable`, never raw.
 */
export function formatIssues(error: z.ZodError, prefix = '', options: { namedPaths?: boolean } = {}): string {
  const issues = flatten(error.issues);
  const shown = issues.slice(0, MAX_ISSUES).map((issue) => {
    const path = printable([prefix, ...issue.path.map(String)].filter(Boolean).join('.'), 120);
    if (issue.code === z.ZodIssueCode.unrecognized_keys) {
      const keys = issue.keys.slice(0, MAX_KEYS_SHOWN).map((k) => `'${printable(k, 40)}'`).join(', ');
      const more = issue.keys.length > MAX_KEYS_SHOWN ? ` and ${issue.keys.length - MAX_KEYS_SHOWN} more` : '';
      const rule = options.namedPaths ? ' (not part of the format: remove them)' : '';
      return `${path ? `${path}: ` : ''}unknown field(s) ${keys}${more}${rule}`;
    }
    const message = printable(issue.message, 300);
    if (!path || (options.namedPaths && message.startsWith(`${path} `))) return message;
    return `${path}: ${message}`;
  });
  const hidden = issues.length - shown.length;
  return `${shown.join('; ')}${hidden > 0 ? `; and ${hidden} more` : ''}`;
}

export function validateReleaseRequest(value: unknown): ValidationResult<ReleaseRequest> {
  const parsed = releaseRequestSchema.safeParse(value);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, reason: formatIssues(parsed.error, '', { namedPaths: true }) };
}

export interface NewRequestInput {
  target: RequestTarget;
  image: string;
  requestedBy: string;
  source: ReleaseRequest['source'];
  promotedFrom?: ReleaseRequest['promotedFrom'];
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
    ...(input.promotedFrom ? { promotedFrom: input.promotedFrom } : {}),
  });
}
