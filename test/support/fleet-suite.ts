import { after, before } from 'node:test';
import { fleetUp, type Fleet, type FleetUpOptions } from '../../local-fleet/fleet.js';
import { FleetObserver } from './fleet-observer.js';

/**
 * The local fleet for the current suite: brought up before its tests (reusing what already runs),
 * every host put back whole after them, its chat server stopped. Read `fleet` and `observer` inside tests.
 */
export function fleetForSuite(options: FleetUpOptions): { readonly fleet: Fleet; readonly observer: FleetObserver } {
  const suite = {} as { fleet: Fleet; observer: FleetObserver };
  before(async () => {
    suite.fleet = await fleetUp(options);
    suite.observer = new FleetObserver(suite.fleet);
  });
  after(async () => {
    suite.observer?.close();
    await suite.fleet?.resetHosts();
    suite.fleet?.chat.stop();
  });
  return suite;
}
