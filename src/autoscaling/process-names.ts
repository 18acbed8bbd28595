// Auto Scaling's process names, without its client: the configuration's schema reads them.

/**
 * Suspended during a release unless configured otherwise. Not Launch and not AlarmNotification, so
 * the group still scales out under load; Terminate, HealthCheck, ReplaceUnhealthy and AZRebalance
 * would otherwise kill or replace a host that is briefly out of service; ScheduledActions would
 * resize the group mid-release.
 */
export const DEFAULT_SUSPENDED_PROCESSES = ['AZRebalance', 'HealthCheck', 'ReplaceUnhealthy', 'ScheduledActions', 'Terminate'] as const;

export const SCALING_PROCESSES = [
  'Launch',
  'Terminate',
  'AddToLoadBalancer',
  'AlarmNotification',
  'AZRebalance',
  'HealthCheck',
  'InstanceRefresh',
  'ReplaceUnhealthy',
  'ScheduledActions',
] as const;
