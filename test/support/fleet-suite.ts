import { after, before, beforeEach } from 'node:test';
import { fleetUp, type Fleet, type FleetUpOptions } from '../../local-fleet/fleet.js';
import { FleetObserver } from './fleet-observer.js';

/**
 * The local fleet for the current suite: brought up before its tests (reusing what already runs),
 * every host put back whole after them, its chat server stopped; with `freshEachTest`, also before each test. Read `fleet` and `observer` inside tests.
 */
export function fleetForSuite(options: FleetUpOptions & { readonly freshEachTest?: boolean }): { readonly fleet: Fleet; readonly observer: FleetObserver } {
  const suite = {} as { fleet: Fleet; observer: FleetObserver };
  before(async () => {
    suite.fleet = await fleetUp(options);
    suite.observer = new FleetObserver(suite.fleet);
  });
  // Every host whole on v1, the AWS resources made anew, chat answering and empty.
  if (options.freshEachTest) {
    beforeEach(async () => {
      await suite.fleet.resetHosts();
      await suite.fleet.resetAws();
      suite.fleet.chat.recover();
      suite.fleet.chat.clear();
    });
  }
  after(async () => {
    suite.observer?.close();
    await suite.fleet?.resetHosts();
    suite.fleet?.chat.stop();
  });
  return suite;
}
