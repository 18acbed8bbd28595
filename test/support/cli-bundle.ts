import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// The one-file CLI as `npm run bundle` makes it (built once per test process, into a temporary
// directory), and a loopback HTTP server handing it out as an artifact store would.

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Bundle {
  readonly file: string;
  /** The sha256 digest its .sha256 file names. */
  readonly digest: string;
}

let built: Bundle | undefined;

export function buildBundle(): Bundle {
  if (built) return built;
  const dir = mkdtempSync(join(tmpdir(), 'harbormaster-bundle-'));
  execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/bundle.ts'), dir], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  const file = join(dir, 'harbormaster.cjs');
  const [digest, name] = readFileSync(`${file}.sha256`, 'utf8').trim().split(/\s+/);
  if (name !== 'harbormaster.cjs' || !/^[0-9a-f]{64}$/.test(digest ?? '')) throw new Error(`bundle: unexpected checksum file: ${readFileSync(`${file}.sha256`, 'utf8')}`);
  built = { file, digest: digest! };
  return built;
}

/** Serves one file at http://127.0.0.1:PORT/NAME; anything else is 404. */
export async function serveFile(file: string, name: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    if (request.url !== `/${name}`) return void response.writeHead(404).end();
    response.writeHead(200, { 'content-type': 'application/octet-stream' });
    createReadStream(file).pipe(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/${name}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
