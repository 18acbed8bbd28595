import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, symlinkSync, copyFileSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BUILDER, REGISTRY, REGISTRY_ADDRESS } from './layout.js';
import { run } from './processes.js';
import { startEngine, stopEngine } from './engine.js';
import { registryTags, type RegistryCredentials } from './registry.js';

// The application images the fleet rolls out, made from busybox-static since nothing can be pulled
// from the internet: a base image imported from a folder (busybox and its applet links), then one
// small Dockerfile per behaviour. Every image serves /www with busybox httpd on 8080, wrapped in a
// shell that exits on SIGTERM (httpd as PID 1 ignores it and `docker stop` would wait 10 s).
// Built on a builder engine of their own and pushed to the fleet registry, once: a tag the registry
// already has is not built again, unless the recipes changed since the registry's images were built
// (a stamp of them is kept beside the registry's data).

export const IMAGE_REPOSITORY = 'data/ingest';
export const IMAGE_TAGS = ['v1', 'v2', 'v3', 'v4', 'v5', 'broken', 'slow', 'crash'] as const;
export type ImageTag = (typeof IMAGE_TAGS)[number];
export type ImageRefs = Record<ImageTag, string>;

const BASE_IMAGE = 'harbormaster-fleet/busybox:base';
const BUSYBOX = '/bin/busybox';
const HTTPD = 'httpd -f -p 8080 -h /www';
// Every 30 s, Docker's default, as an image in production would: each check is a process the engine
// starts in the container: every second, 11 idle hosts took 71% of the 2 cores; every 5 s, 31 hosts
// took 63%; every 30 s, 11 hosts take 2%. The worker does not wait for this verdict (its own probe decides, unless
// health.waitForDocker); the tests of Docker's verdict wait for it: one failure makes it unhealthy.
const HEALTHCHECK = 'HEALTHCHECK --interval=30s --timeout=2s --retries=1 CMD wget -q -O- http://127.0.0.1:8080/health || exit 1';

export function imageRefs(): ImageRefs {
  return Object.fromEntries(IMAGE_TAGS.map((tag) => [tag, `${REGISTRY_ADDRESS}/${IMAGE_REPOSITORY}:${tag}`])) as ImageRefs;
}

interface ImageRecipe {
  /** Files under /www at start. */
  www: Record<string, string>;
  /** The container's start script (runs as PID 1 under sh). */
  start: string;
}

const serve = (before = '') => `trap "exit 0" TERM\n${before}${HTTPD} &\nwait\n`;

const RECIPES: Record<ImageTag, ImageRecipe> = {
  v1: { www: { health: 'ok', version: 'v1' }, start: serve() },
  v2: { www: { health: 'ok', version: 'v2' }, start: serve() },
  // More healthy versions, for tests that tell the newest of several releases apart.
  v3: { www: { health: 'ok', version: 'v3' }, start: serve() },
  v4: { www: { health: 'ok', version: 'v4' }, start: serve() },
  v5: { www: { health: 'ok', version: 'v5' }, start: serve() },
  // Serves, but /health is a 404 for ever: the container starts and never becomes healthy.
  broken: { www: { version: 'broken' }, start: serve() },
  // /health appears only after SLOW_SECONDS (default 5): healthy, but late.
  slow: { www: { version: 'slow' }, start: serve('(sleep "${SLOW_SECONDS:-5}" && echo ok > /www/health) &\n') },
  // Dies at once with a non-zero status.
  crash: { www: { version: 'crash' }, start: 'echo "crash: refusing to start" >&2\nexit 3\n' },
};

function dockerEnv(): NodeJS.ProcessEnv {
  // The legacy builder: no BuildKit/buildx needed, and these Dockerfiles have no RUN steps anyway.
  return { ...process.env, DOCKER_HOST: `unix://${BUILDER.dockerSocket}`, DOCKER_CONFIG: BUILDER.cliConfigDir, DOCKER_BUILDKIT: '0' };
}

const docker = (args: string[], input?: string) => run('docker', args, { env: dockerEnv(), input, timeoutMs: 300_000 });

async function ensureBaseImage(): Promise<void> {
  const present = await docker(['image', 'inspect', BASE_IMAGE]).then(() => true, () => false);
  if (present) return;
  const rootfs = join(BUILDER.contextDir, 'rootfs');
  rmSync(rootfs, { recursive: true, force: true });
  for (const dir of ['bin', 'etc', 'tmp', 'www']) mkdirSync(join(rootfs, dir), { recursive: true });
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, join(rootfs, 'bin', 'busybox'));
  chmodSync(join(rootfs, 'bin', 'busybox'), 0o755);
  const { stdout } = await run(BUSYBOX, ['--list']);
  for (const applet of stdout.split('\n').filter((name) => name && name !== 'busybox')) symlinkSync('busybox', join(rootfs, 'bin', applet));
  writeFileSync(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  writeFileSync(join(rootfs, 'etc', 'group'), 'root:x:0:\n');
  // A pipe is simply easier in sh than in node: the folder, tarred, becomes the image.
  await run('sh', ['-c', `tar -C '${rootfs}' -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["sh"]' - '${BASE_IMAGE}'`], { env: dockerEnv() });
}

const dockerfile = () => [`FROM ${BASE_IMAGE}`, 'COPY www /www', 'COPY start.sh /start.sh', 'EXPOSE 8080', HEALTHCHECK, 'CMD ["sh", "/start.sh"]', ''].join('\n');

/** What the images are made from: when it changes, every image is built again. */
const RECIPES_STAMP = createHash('sha256').update(JSON.stringify({ recipes: RECIPES, dockerfile: dockerfile() })).digest('hex');
const stampFile = () => join(dirname(REGISTRY.storage), 'images-recipe');
const stampRead = () => {
  try {
    return readFileSync(stampFile(), 'utf8').trim();
  } catch {
    return undefined;
  }
};

function writeContext(tag: ImageTag): string {
  const recipe = RECIPES[tag];
  const dir = join(BUILDER.contextDir, tag);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'www'), { recursive: true });
  for (const [name, content] of Object.entries(recipe.www)) writeFileSync(join(dir, 'www', name), content);
  writeFileSync(join(dir, 'start.sh'), recipe.start);
  writeFileSync(join(dir, 'Dockerfile'), dockerfile());
  return dir;
}

/** Makes sure the registry holds every test image; returns what had to be built (empty when none). */
export async function ensureTestImages(credentials: RegistryCredentials): Promise<ImageTag[]> {
  const present = new Set(stampRead() === RECIPES_STAMP ? await registryTags(IMAGE_REPOSITORY, credentials) : []);
  const missing = IMAGE_TAGS.filter((tag) => !present.has(tag));
  if (missing.length === 0) return [];
  const refs = imageRefs();
  await startEngine(BUILDER, { withoutNetworking: true, cgroupParent: BUILDER.cgroupParent });
  try {
    mkdirSync(BUILDER.cliConfigDir, { recursive: true, mode: 0o700 });
    await docker(['login', REGISTRY_ADDRESS, '--username', credentials.username, '--password-stdin'], credentials.password);
    await ensureBaseImage();
    for (const tag of missing) {
      await docker(['build', '--quiet', '--tag', refs[tag], writeContext(tag)]);
      await docker(['push', '--quiet', refs[tag]]);
    }
    writeFileSync(stampFile(), `${RECIPES_STAMP}\n`);
  } finally {
    // Only needed to build: a running builder would be one more engine to keep and to stop.
    await stopEngine(BUILDER);
  }
  return missing;
}
