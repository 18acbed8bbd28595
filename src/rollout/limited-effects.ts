import type { CallLimit } from '../aws/transient.js';
import type { RolloutEffects } from './release-runner.js';

// The rollout's AWS effects bound to one CallLimit: every call the release makes through them (the
// instance finder, load balancers, Auto Scaling, alarms and mute rules) takes the lease's signal and
// its per-attempt deadline, without each caller having to pass it on.

export function limitedEffects(effects: RolloutEffects, limit: CallLimit): RolloutEffects {
  const { instances, loadBalancers, autoScaling, alarms, muteRules } = effects;
  return {
    ...effects,
    instances: { find: (tags) => instances.find(tags, limit) },
    loadBalancers: {
      register: (lb, instanceId) => loadBalancers.register(lb, instanceId, limit),
      deregister: (lb, instanceId) => loadBalancers.deregister(lb, instanceId, limit),
      membership: (lb, instanceId) => loadBalancers.membership(lb, instanceId, limit),
      inService: (lb, instanceIds) => loadBalancers.inService(lb, instanceIds, limit),
      timings: (lb) => loadBalancers.timings(lb, limit),
      targetGroupArn: (nameOrArn) => loadBalancers.targetGroupArn(nameOrArn, limit),
    },
    autoScaling: {
      describe: (group) => autoScaling.describe(group, limit),
      suspend: (group, processes) => autoScaling.suspend(group, processes, limit),
      resume: (group, processes) => autoScaling.resume(group, processes, limit),
      groupsOf: (instanceIds) => autoScaling.groupsOf(instanceIds, limit),
    },
    alarms: {
      actionsEnabled: (names) => alarms.actionsEnabled(names, limit),
      disable: (names) => alarms.disable(names, limit),
      enable: (names) => alarms.enable(names, limit),
      states: (names) => alarms.states(names, limit),
    },
    muteRules: {
      mute: (rule) => muteRules.mute(rule, limit),
      unmute: (name) => muteRules.unmute(name, limit),
      read: (name) => muteRules.read(name, limit),
    },
  };
}
