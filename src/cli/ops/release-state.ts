import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { clientOptions } from '../../aws/clients.js';
import type { WorkerConfig } from '../../config/worker-config.js';
import { DynamoReleaseStore } from '../../state/dynamodb-release-store.js';
import { FileReleaseStore } from '../../state/file-release-store.js';
import type { ReleaseHistory } from '../../state/target-summary.js';

// The release state as the ops commands read it: the store the worker's configuration names, opened
// read-only (the file store leaves the worker's writes in progress alone). Every read goes through
// `read`, so a store that cannot be read ends the command with one line saying which and why (exit 1).

/** The release state cannot be read: the command says which store and why, and exits 1. */
export class StoreUnreadableError extends Error {
  override name = 'StoreUnreadableError';
}

export interface ReleaseState {
  readonly history: ReleaseHistory;
  /** Runs one read of the store; its failure becomes a StoreUnreadableError naming the store. */
  read<T>(what: string, work: (history: ReleaseHistory) => Promise<T>): Promise<T>;
  close(): void;
}

const firstLine = (text: string) => text.split('\n')[0]!.slice(0, 300);

export function openReleaseState(config: WorkerConfig, warn: (line: string) => void): ReleaseState {
  let client: DynamoDBClient | undefined;
  let history: ReleaseHistory;
  if (config.state.store === 'dynamodb') {
    client = new DynamoDBClient(clientOptions(config.aws));
    history = new DynamoReleaseStore({ client, table: config.state.table, retentionDays: config.state.retentionDays });
  } else {
    history = new FileReleaseStore(config.stateDirectory, {
      readOnly: true,
      onDamage: (report) => warn(`${report.where} is damaged (${report.problem}); ${report.recovered === 'previous-copy' ? 'its previous copy is shown' : 'it is left out'}`),
    });
  }
  return {
    history,
    async read(what, work) {
      try {
        return await work(history);
      } catch (error) {
        const name = error instanceof Error ? error.name : 'Error';
        const message = error instanceof Error ? error.message : String(error);
        throw new StoreUnreadableError(`cannot read ${what} from the release state (${history.description}): ${name}: ${firstLine(message)}`, { cause: error });
      }
    },
    close: () => client?.destroy(),
  };
}
