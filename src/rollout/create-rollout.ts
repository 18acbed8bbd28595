import { readFileSync } from 'node:fs';
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { EC2Client } from '@aws-sdk/client-ec2';
import { ElasticLoadBalancingClient } from '@aws-sdk/client-elastic-load-balancing';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { AwsAlarmActions } from '../alarms/alarm-actions.js';
import { AwsAlarmMuteRules } from '../alarms/alarm-mute-rules.js';
import { AwsAutoScaling } from '../autoscaling/process-suspension.js';
import { clientOptions } from '../aws/clients.js';
import type { Chat } from '../chat/chat.js';
import { chatFromConfig } from '../chat/create-chat.js';
import { ConfigError, type WorkerConfig } from '../config/worker-config.js';
import { readSecret } from '../config/secret-source.js';
import { SshHostConnector } from '../host/ssh-host-connector.js';
import { ReconnectingConnector } from '../host/reconnecting-session.js';
import { hostReconnect } from '../chat/release-messages.js';
import type { HostConnector } from '../host/host-session.js';
import { releaseSecrets } from '../environment/release-secrets.js';
import { AwsLoadBalancers } from '../loadbalancer/load-balancers.js';
import type { Logger } from '../log/logger.js';
import { Ec2InstanceFinder } from '../target/target-instances.js';
import { ReleaseRunner, type RolloutEffects } from './release-runner.js';

// Wires the release runner to the real world from the worker's configuration. The worker's own secrets
// are read here, at start: a missing key or password stops the worker before it takes a request. ECR
// tokens and the container's sourced environment are read when used (environment/release-secrets.ts).

export function createChat(config: WorkerConfig, logger: Logger, env: NodeJS.ProcessEnv = process.env): Chat {
  return chatFromConfig(config, logger, env);
}

export interface RolloutWiring {
  readonly runner: ReleaseRunner;
  readonly effects: RolloutEffects;
  close(): void;
}

export function createRollout(config: WorkerConfig, logger: Logger, chat: Chat, env: NodeJS.ProcessEnv = process.env, overrides: Partial<RolloutEffects> = {}): RolloutWiring {
  const aws = clientOptions(config.aws);
  const clients = {
    ec2: new EC2Client(aws),
    elb: new ElasticLoadBalancingClient(aws),
    elbv2: new ElasticLoadBalancingV2Client(aws),
    autoScaling: new AutoScalingClient(aws),
    cloudWatch: new CloudWatchClient(aws),
  };
  const secrets = releaseSecrets(config, logger, env);
  let connector: HostConnector | undefined;
  if (config.ssh) {
    const ssh = config.ssh;
    const readKnownHosts = () => readFileSync(ssh.knownHostsFile, 'utf8');
    try {
      readKnownHosts();
    } catch (error) {
      throw new ConfigError(`ssh.knownHostsFile: cannot read ${ssh.knownHostsFile}: ${(error as Error).message}`);
    }
    const sshLogger = logger.child({ component: 'ssh' });
    // Read again for every connection: provisioning keeps it current as hosts come and go.
    connector = new ReconnectingConnector(
      new SshHostConnector({
        user: ssh.user,
        privateKey: readSecret(ssh.privateKey, env),
        knownHosts: readKnownHosts,
        port: ssh.port,
        connectTimeoutMs: ssh.connectTimeoutSeconds * 1000,
        ...(ssh.engineSocket ? { engineSocket: ssh.engineSocket } : {}),
        deadlines: { callMs: ssh.callTimeoutSeconds * 1000, pullMs: ssh.pullTimeoutSeconds * 1000, pullStallMs: ssh.pullStallSeconds * 1000 },
        logger: sshLogger,
      }),
      { logger: sshLogger, onReconnect: (event) => chat.post(hostReconnect(event)) },
    );
  }
  const effects: RolloutEffects = {
    instances: new Ec2InstanceFinder(clients.ec2, logger),
    loadBalancers: new AwsLoadBalancers(clients.elb, clients.elbv2, logger),
    autoScaling: new AwsAutoScaling(clients.autoScaling, logger),
    alarms: new AwsAlarmActions(clients.cloudWatch, logger),
    muteRules: new AwsAlarmMuteRules(clients.cloudWatch, logger),
    connector: secrets.connector(
      connector ?? {
        connect: async () => {
          throw new Error('ssh is not configured');
        },
      },
    ),
    chat,
    registryAuth: (request) => secrets.registryAuth(request),
    readEnvironment: (spec, signal) => secrets.readEnvironment(spec, signal),
    ...overrides,
  };
  return {
    runner: new ReleaseRunner(effects),
    effects,
    close: () => {
      Object.values(clients).forEach((client) => client.destroy());
      secrets.close();
    },
  };
}
