import type { Logger } from '../log/logger.js';
import type { RecordedRelease } from '../state/recorded-release.js';
import type { Chat, ChatMessage } from './chat.js';
import type { CallOutcome } from './json-call.js';
import { createOrderedSender, type SenderOptions } from './ordered-sender.js';
import { isFailure } from './release-events.js';
import { currentRelease } from './release-scope.js';
import { apply, viewOf, type ReleaseView } from './release-view.js';

// One chat message per release, kept current, with the details beside it (Slack app: in its thread;
// Discord: folded into it). A message posted while a release runs (see release-scope.ts) updates that
// release's view; the release's message is posted once, its id recorded with the release (so a worker
// that restarts or takes over edits the same message), and edited after that. A message posted outside
// any release (a refused request, a damaged record) is posted on its own. Calls go out in order,
// in the background; an edit waiting in the queue is sent once, with the view as it is when sent.

export interface ConversationTransport {
  readonly via: 'slack' | 'discord';
  /** Where the message lives (Slack's channel id); recorded with its id. */
  readonly channel?: string;
  postMain(view: ReleaseView): Promise<CallOutcome>;
  /** The posted message's id, from postMain's answer. */
  mainId(body: unknown): string | undefined;
  updateMain(id: string, view: ReleaseView): Promise<CallOutcome>;
  /** Whether a line about the release is only shown in its message (the latest line), not sent beside it. */
  folds(message: ChatMessage): boolean;
  /** A line about the release beside its message (`mainId` undefined: the message could not be posted), the requester mentioned when `mention` is set. */
  reply(mainId: string | undefined, message: ChatMessage, mention: string | undefined): Promise<CallOutcome>;
  /** A message that belongs to no release. */
  post(message: ChatMessage): Promise<CallOutcome>;
}

export interface ConversationOptions extends Omit<SenderOptions, 'logger'> {
  readonly logger: Logger;
  /** CI names (a request's requestedBy) to the mention that reaches them (Slack: <@U123>). */
  readonly mentionOf?: (requestedBy: string) => string | undefined;
  /** Releases remembered at most (their view and message id); the oldest is forgotten first. */
  readonly maxReleases?: number;
}

interface Conversation {
  /** The latest handle on the release (a release taken up again gets a new one). */
  release: RecordedRelease;
  readonly view: ReleaseView;
  id?: string;
  /** An edit (or the first post) waits in the queue: another is not needed. */
  mainQueued: boolean;
}

export function createConversationChat(transport: ConversationTransport, options: ConversationOptions): Chat {
  const log = options.logger;
  const sender = createOrderedSender({ ...options, logger: log });
  const conversations = new Map<string, Conversation>();
  const maxReleases = options.maxReleases ?? 200;

  function conversationOf(release: RecordedRelease): Conversation {
    const known = conversations.get(release.releaseId);
    if (known) {
      known.release = release;
      return known;
    }
    const recorded = release.record.chatMessage;
    const same = recorded && recorded.via === transport.via && recorded.channel === transport.channel;
    const conversation: Conversation = { release, view: viewOf(release.record), mainQueued: false, ...(same ? { id: recorded.id } : {}) };
    conversations.set(release.releaseId, conversation);
    if (conversations.size > maxReleases) conversations.delete(conversations.keys().next().value!);
    return conversation;
  }

  function queueMain(conversation: Conversation): void {
    if (conversation.mainQueued) return;
    conversation.mainQueued = true;
    const { view } = conversation;
    sender.push({
      summary: `release message of ${view.releaseId}`,
      attempt: () => {
        conversation.mainQueued = false;
        return conversation.id === undefined ? transport.postMain(view) : transport.updateMain(conversation.id, view);
      },
      done: async (body) => {
        if (conversation.id !== undefined) return;
        const id = transport.mainId(body);
        if (id === undefined) return void log.warn({ releaseId: view.releaseId }, 'the release message was posted but its id was not in the answer');
        conversation.id = id;
        await record(conversation.release, id);
      },
    });
  }

  async function record(release: RecordedRelease, id: string): Promise<void> {
    try {
      await release.update((draft) => {
        draft.chatMessage = { via: transport.via, ...(transport.channel ? { channel: transport.channel } : {}), id };
      });
    } catch (error) {
      // The release ended, or its lease moved on: a worker that takes it up posts a new message.
      log.info({ releaseId: release.releaseId, reason: (error as Error).message }, 'the release message id could not be recorded with the release');
    }
  }

  return {
    post(message: ChatMessage): void {
      try {
        const release = currentRelease();
        if (!release) {
          sender.push({ summary: message.text.slice(0, 120), attempt: () => transport.post(message) });
          return;
        }
        const conversation = conversationOf(release);
        apply(conversation.view, message);
        queueMain(conversation);
        if (message.event?.kind === 'started') return;
        const failed = message.event?.kind === 'ended' && isFailure(message.event.outcome);
        const mention = failed ? options.mentionOf?.(release.record.request.requestedBy) : undefined;
        if (transport.folds(message)) return;
        // The id is read when sent, so a reply queued before the message's id was known still goes beside it.
        sender.push({ summary: message.text.slice(0, 120), attempt: () => transport.reply(conversation.id, message, mention) });
      } catch (error) {
        log.error({ err: error }, 'chat message could not be queued');
      }
    },
    flush: (timeoutMs?: number) => sender.flush(timeoutMs),
  };
}
