// Whether AWS refused a call for want of permission (or of valid credentials), and how to name it.
// By the error's name, or by HTTP 403 whatever the body: AWS answers some refusals before the
// service's own protocol (and moto, with IAM checks on, answers them in XML to JSON services,
// which the SDK reports as a parse error carrying the 403).

const DENIED = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'KMSAccessDeniedException',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'InvalidSignatureException',
  'ExpiredTokenException',
]);

/** `AccessDeniedException`, `HTTP 403`, ...; undefined when the error is no refusal of access. */
export function accessDenied(error: unknown): string | undefined {
  const e = error as { name?: unknown; $metadata?: { httpStatusCode?: number } } | undefined;
  const name = typeof e?.name === 'string' ? e.name : undefined;
  if (name && DENIED.has(name)) return name;
  if (e?.$metadata?.httpStatusCode === 403) return 'HTTP 403';
  return undefined;
}
