import type { AlarmActions, AlarmState } from '../alarms/alarm-actions.js';
import type { Logger } from '../log/logger.js';
import type { WatchRecord } from '../state/release-record.js';

// The release's alarms, watched while it goes forward and while it bakes. Muting (a mute rule, or
// actions disabled) silences what an alarm does, not its evaluation, so the worker reads the state of
// the very alarms it keeps quiet. The state at the start is the baseline, recorded with the release:
// an alarm that was OK (or had no data) and is now in ALARM has entered it; one already in ALARM at
// the start counts once it has been seen out of ALARM. A restarted or taking-over worker reads the
// baseline from the record and watches on.

export interface AlarmSighting {
  readonly alarm: string;
  /** CloudWatch's StateReason (outside text). */
  readonly reason: string;
}

/** Pure: the first watched alarm that has entered ALARM. `armed`: alarms in ALARM at the baseline since seen out of it (updated in place). */
export function enteredAlarm(watch: WatchRecord, armed: Set<string>, states: ReadonlyMap<string, AlarmState>): AlarmSighting | undefined {
  for (const alarm of watch.alarms) {
    const now = states.get(alarm);
    if (!now) continue;
    if (now.state !== 'ALARM') {
      armed.add(alarm);
      continue;
    }
    if (watch.baseline[alarm] !== 'ALARM' || armed.has(alarm)) return { alarm, reason: now.reason };
  }
  return undefined;
}

export class AlarmWatch {
  private readonly armed = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private stopped = false;
  /** The first alarm seen entering ALARM; it stays set. */
  sighting: AlarmSighting | undefined;
  /** Since when (epoch ms) the states could not be read; undefined while they can. */
  unreadableSince: number | undefined;

  constructor(
    private readonly alarms: Pick<AlarmActions, 'states'>,
    private readonly watch: WatchRecord,
    private readonly intervalMs: number,
    private readonly log: Logger,
    /** Told once, when an alarm is first seen entering ALARM. */
    private readonly onSighting: (sighting: AlarmSighting) => void = () => undefined,
  ) {}

  /** Reads the states now, then every interval until stopped. */
  async start(): Promise<void> {
    await this.readNow();
    const next = () => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.reading = this.readNow().finally(next);
      }, this.intervalMs);
    };
    next();
  }

  async readNow(): Promise<void> {
    if (this.sighting) return;
    try {
      const states = await this.alarms.states(this.watch.alarms);
      this.unreadableSince = undefined;
      const sighting = enteredAlarm(this.watch, this.armed, states);
      if (sighting && !this.sighting) {
        this.sighting = sighting;
        this.log.error({ alarm: sighting.alarm, reason: sighting.reason }, 'a watched alarm entered ALARM');
        this.onSighting(sighting);
      }
    } catch (error) {
      this.unreadableSince ??= Date.now();
      this.log.warn({ err: error, unreadableForMs: Date.now() - this.unreadableSince }, 'reading the watched alarms failed; trying again at the next interval');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.reading;
  }
}
