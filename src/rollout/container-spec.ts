import type { RolloutSettings } from '../config/worker-config.js';
import { splitEnvironment } from '../config/environment-source.js';
import type { ContainerSpec } from '../host/host-session.js';

export interface SpecFacts {
  readonly image: string;
  readonly target: string;
  readonly releaseId: string;
  readonly requestedBy: string;
}

/** The new container: everything from the worker's configuration, plus labels that record the release. */
export function containerSpec(settings: RolloutSettings, facts: SpecFacts): ContainerSpec {
  const { container } = settings;
  return {
    name: container.name,
    image: facts.image,
    ports: container.ports,
    // Plain values, and the sources of the others: their values are read at the start, never recorded.
    ...splitEnvironment(container.environment),
    volumes: container.volumes,
    restartPolicy: container.restartPolicy,
    stopTimeoutSeconds: container.stopTimeoutSeconds,
    labels: {
      ...container.labels,
      'harbormaster.managed': 'true',
      'harbormaster.target': facts.target,
      'harbormaster.release-id': facts.releaseId,
      'harbormaster.image': facts.image,
      'harbormaster.requested-by': facts.requestedBy,
    },
  };
}

/** The name the live container is kept under while this release runs, for rollback. */
export const previousContainerName = (name: string, releaseId: string) => `${name}-previous-${releaseId.slice(0, 8)}`;
