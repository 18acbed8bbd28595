import type { HttpCheck, ProbeResult } from '../../src/health/http-probe.js';
import { HostUnreachableError } from '../../src/host/host-errors.js';
import type { ContainerInfo, ContainerSpec, HostConnector, HostSession } from '../../src/host/host-session.js';
import type { LoadBalancerRef, LoadBalancers, Membership } from '../../src/loadbalancer/load-balancers.js';

// Hosts and load balancers in memory, for the timings and failures a real server cannot give on cue
// (a classic ELB that reads InService while it drains, a load balancer slow to report a host in
// service, an image that never gets healthy). Only for tests of the engine's logic: the effects
// themselves are tested against the local fleet.

type Behaviour = 'healthy' | 'unhealthy' | 'never-ready' | 'exits';

interface SimContainer {
  id: string;
  name: string;
  image: string;
  labels: Record<string, string>;
  state: ContainerInfo['state'];
  startedAt?: number;
  exitCode?: number;
  createdAt: string;
  /** Absent: not known (as for a container whose inspect did not say). */
  restartPolicy?: string;
}

let sequence = 0;

export class SimulatedHost implements HostSession {
  readonly calls: string[] = [];
  private readonly containers = new Map<string, SimContainer>();
  /** How a container of an image behaves once started. */
  behaviour: (image: string) => Behaviour = () => 'healthy';
  /** How a one-off container with a command (the release task) ends at once: its exit code and what it wrote. */
  task: (command: readonly string[]) => { exitCode: number; output: string } = () => ({ exitCode: 0, output: '' });
  private readonly output = new Map<string, string>();

  constructor(
    readonly address: string,
    live?: { image: string; name: string; labels: Record<string, string> },
  ) {
    if (live) {
      const id = `live${String(++sequence).padStart(60, '0')}`;
      this.containers.set(id, { id, ...live, labels: { ...live.labels }, state: 'running', startedAt: Date.now() - 86_400_000, createdAt: new Date(0).toISOString() });
    }
  }

  private find(key: string): SimContainer | undefined {
    return this.containers.get(key) ?? [...this.containers.values()].find((c) => c.name === key || c.id.startsWith(key));
  }

  private info(c: SimContainer): ContainerInfo {
    const behaviour = this.behaviour(c.image);
    const running = c.state === 'running';
    const health: ContainerInfo['health'] = !running ? 'none' : behaviour === 'unhealthy' ? 'unhealthy' : behaviour === 'never-ready' ? 'starting' : 'healthy';
    return {
      id: c.id,
      name: c.name,
      image: c.image,
      running,
      state: c.state,
      restartCount: 0,
      ...(c.startedAt !== undefined ? { startedAt: c.startedAt } : {}),
      health,
      ...(c.exitCode !== undefined ? { exitCode: c.exitCode } : {}),
      labels: { ...c.labels },
      createdAt: c.createdAt,
      ...(c.restartPolicy !== undefined ? { restartPolicy: c.restartPolicy } : {}),
    };
  }

  /** The live containers, by image: what a person would see with `docker ps`. */
  live(): string[] {
    return [...this.containers.values()].filter((c) => c.state === 'running').map((c) => `${c.name}:${c.image}`);
  }

  /** What the bastion's HTTP check of this host answers. */
  probe(): ProbeResult {
    const serving = [...this.containers.values()].find((c) => c.state === 'running' && this.behaviour(c.image) === 'healthy');
    return serving ? { ok: true } : { ok: false, reason: `http://${this.address}/health: connection refused` };
  }

  async ping() {
    return { engineId: this.address };
  }
  async pull(image: string) {
    this.calls.push(`pull ${image}`);
  }
  async inspect(key: string) {
    const c = this.find(key);
    return c && this.info(c);
  }
  async list(labels: Readonly<Record<string, string>>) {
    return [...this.containers.values()].filter((c) => Object.entries(labels).every(([k, v]) => c.labels[k] === v)).map((c) => this.info(c));
  }
  async summaries(labels: Readonly<Record<string, string>>) {
    return (await this.list(labels)).map(({ id, name, state, labels: l }) => ({ id, name, state, labels: l }));
  }
  async rename(key: string, name: string) {
    this.calls.push(`rename ${this.find(key)!.name} ${name}`);
    this.find(key)!.name = name;
  }
  async stop(key: string) {
    const c = this.find(key)!;
    this.calls.push(`stop ${c.name}`);
    if (c.state === 'running') Object.assign(c, { state: 'exited', exitCode: 0 });
  }
  async setRestartPolicy(key: string, policy: string) {
    this.calls.push(`update ${this.find(key)!.name} restart=${policy}`);
    this.find(key)!.restartPolicy = policy;
  }
  async start(key: string) {
    const c = this.find(key)!;
    this.calls.push(`start ${c.name}`);
    if (c.state === 'running') return;
    const exits = this.behaviour(c.image) === 'exits';
    Object.assign(c, { state: exits ? 'exited' : 'running', startedAt: Date.now(), ...(exits ? { exitCode: 3 } : {}) });
    if (!exits) delete c.exitCode;
  }
  async run(spec: ContainerSpec) {
    if ([...this.containers.values()].some((c) => c.name === spec.name)) throw new Error(`Conflict. The container name "/${spec.name}" is already in use`);
    const id = `new${String(++sequence).padStart(61, '0')}`;
    this.calls.push(`run ${spec.name} ${spec.image}${spec.command ? ` ${spec.command.join(' ')}` : ''}`);
    if (spec.command) {
      const ended = this.task(spec.command);
      this.output.set(id, ended.output);
      this.containers.set(id, { id, name: spec.name, image: spec.image, labels: { ...spec.labels }, state: 'exited', startedAt: Date.now(), exitCode: ended.exitCode, createdAt: new Date().toISOString() });
      return id;
    }
    const exits = this.behaviour(spec.image) === 'exits';
    this.containers.set(id, { id, name: spec.name, image: spec.image, labels: { ...spec.labels }, state: exits ? 'exited' : 'running', startedAt: Date.now(), ...(exits ? { exitCode: 3 } : {}), createdAt: new Date().toISOString() });
    return id;
  }
  async create(spec: ContainerSpec) {
    if ([...this.containers.values()].some((c) => c.name === spec.name)) throw new Error(`Conflict. The container name "/${spec.name}" is already in use`);
    const id = `new${String(++sequence).padStart(61, '0')}`;
    this.calls.push(`create ${spec.name} ${spec.image}`);
    this.containers.set(id, { id, name: spec.name, image: spec.image, labels: { ...spec.labels }, state: 'created', createdAt: new Date().toISOString(), restartPolicy: spec.restartPolicy });
    return id;
  }
  async logs(key: string, tail: number) {
    const c = this.find(key);
    return c ? (this.output.get(c.id) ?? '').split('\n').slice(-tail).join('\n') : '';
  }
  async remove(key: string) {
    const c = this.find(key);
    if (!c) return;
    this.calls.push(`remove ${c.name}`);
    this.containers.delete(c.id);
  }
  async close() {}
}

/** Several simulated hosts, reached by address. */
export class SimulatedConnector implements HostConnector {
  /** Connections still to be refused, by address (a host rebooting, its sshd not up yet). */
  readonly refusing = new Map<string, number>();
  constructor(private readonly hosts: ReadonlyMap<string, SimulatedHost>) {}
  async connect(address: string) {
    const refusals = this.refusing.get(address) ?? 0;
    if (refusals > 0) {
      this.refusing.set(address, refusals - 1);
      throw new HostUnreachableError(address, 'connect ECONNREFUSED');
    }
    const host = this.hosts.get(address);
    if (!host) throw new Error(`${address}: connect ECONNREFUSED`);
    return host;
  }
}

/**
 * Load balancers whose readings after a (de)registration follow a script: one reading per call, the
 * last one repeating. Every instance starts registered and in service.
 */
export class SimulatedLoadBalancers implements LoadBalancers {
  readonly calls: string[] = [];
  private readonly scripts = new Map<string, Membership[]>();
  /** Fewest instances in service at once over the test (updated on every (de)registration and reading). */
  fewestInService: number;
  private readonly serving: Set<string>;

  /** `inService`: the instances in service when the test starts. */
  constructor(inService: readonly string[] = []) {
    this.serving = new Set(inService);
    this.fewestInService = this.serving.size;
  }

  /** Says that an instance starts out of every load balancer. */
  startOut(instanceId: string) {
    this.scripts.set(`*|${instanceId}`, ['out']);
    this.serving.delete(instanceId);
    this.fewestInService = Math.min(this.fewestInService, this.serving.size);
  }

  private track(instanceId: string, inService: boolean) {
    if (inService) this.serving.add(instanceId);
    else this.serving.delete(instanceId);
    this.fewestInService = Math.min(this.fewestInService, this.serving.size);
  }
  afterDeregister: () => Membership[] = () => ['out'];
  afterRegister: () => Membership[] = () => ['in-service'];
  timingsFor = { drainingSeconds: 0, healthCheckSeconds: 1 };

  private key(lb: LoadBalancerRef, instanceId: string) {
    return `${lb.kind}:${lb.id}|${instanceId}`;
  }
  async register(lb: LoadBalancerRef, instanceId: string) {
    this.calls.push(`register ${lb.id} ${instanceId}`);
    this.scripts.set(this.key(lb, instanceId), this.afterRegister());
  }
  async deregister(lb: LoadBalancerRef, instanceId: string) {
    this.calls.push(`deregister ${lb.id} ${instanceId}`);
    this.scripts.set(this.key(lb, instanceId), this.afterDeregister());
    this.track(instanceId, false);
  }
  async membership(lb: LoadBalancerRef, instanceId: string): Promise<Membership> {
    const script = this.scripts.get(this.key(lb, instanceId)) ?? this.scripts.get(`*|${instanceId}`) ?? ['in-service'];
    const reading = script.length > 1 ? script.shift()! : script[0]!;
    if (reading === 'in-service') this.track(instanceId, true);
    return reading;
  }
  /** One reading per instance, as `membership` gives it (so each instance's script moves on the same). */
  async inService(lb: LoadBalancerRef, instanceIds: readonly string[]): Promise<Set<string>> {
    const readings = await Promise.all(instanceIds.map(async (id) => [id, await this.membership(lb, id)] as const));
    return new Set(readings.filter(([, m]) => m === 'in-service').map(([id]) => id));
  }
  async timings() {
    return this.timingsFor;
  }
  async targetGroupArn(name: string) {
    return name;
  }
}

/** The HTTP probe answered by the simulated host at that address. */
export function simulatedProbe(hosts: ReadonlyMap<string, SimulatedHost>) {
  return async (address: string, _check: HttpCheck): Promise<ProbeResult> => hosts.get(address)?.probe() ?? { ok: false, reason: `${address}: unreachable` };
}
