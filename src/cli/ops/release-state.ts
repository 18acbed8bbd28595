import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { WorkerConfig } from '../../config/worker-config.js';
import type { ReleaseStore } from '../../state/release-store.js';
import type { ReleaseHistory } from '../../state/target-summary.js';

// The release state as the ops commands read it: the store the worker's configuration names, opened
// beside the worker (the file store leaves the worker's writes in progress alone). The verbs that
// steer a target write only its control (a rollback is a request there too). Every read goes through
// `read`, so a store that cannot be read ends the command with one line saying which and why (exit 1).

/** The release state cannot be read: the command says which store and why, and exits 1. */
export class StoreUnreadableError extends Error {
  override name = 'StoreUnreadableError';
}

/** Both stores are both: the records' history, and a ReleaseStore (claim, control). */
export type OpsStore = ReleaseHistory & Pick<ReleaseStore, 'claim' | 'control' | 'updateControl'>;

export interface ReleaseState {
  readonly history: OpsStore;
  /** Runs one read of the store; its failure becomes a StoreUnreadableError naming the store. */
  read<T>(what: string, work: (history: OpsStore) => Promise<T>): Promise<T>;
  /** The DynamoDB client, for the DynamoDB store (who the AWS identity is). */
  readonly client?: DynamoDBClient;
  close(): void;
}

const firstLine = (text: string) => text.split('\n')[0]!.slice(0, 300);

/** Opens the store the configuration names; only that store's modules are loaded (a file store loads no AWS client). */
export async function openReleaseState(config: WorkerConfig, warn: (line: string) => void): Promise<ReleaseState> {
  let client: DynamoDBClient | undefined;
  let history: OpsStore;
  if (config.state.store === 'dynamodb') {
    const [{ DynamoDBClient }, { clientOptions }, { DynamoReleaseStore }] = await Promise.all([
      import('@aws-sdk/client-dynamodb'),
      import('../../aws/clients.js'),
      import('../../state/dynamodb-release-store.js'),
    ]);
    client = new DynamoDBClient(clientOptions(config.aws));
    history = new DynamoReleaseStore({ client, table: config.state.table, retentionDays: config.state.retentionDays });
  } else {
    const { FileReleaseStore } = await import('../../state/file-release-store.js');
    history = new FileReleaseStore(config.stateDirectory, {
      readOnly: true,
      onDamage: (report) => warn(`${report.where} is damaged (${report.problem}); ${report.recovered === 'previous-copy' ? 'its previous copy is shown' : 'it is left out'}`),
    });
  }
  return {
    history,
    ...(client ? { client } : {}),
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
