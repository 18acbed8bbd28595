// Callers of flush() waiting for a sender's queue to empty: woken together when it does, or each let
// go at its own timeout.

export class IdleWaiters {
  private readonly waiters: Array<() => void> = [];

  /** The queue is empty: every waiter goes on. */
  wakeAll(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Resolves when woken, or after timeoutMs, calling onTimeout first. */
  wait(timeoutMs: number, onTimeout: () => void): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const index = this.waiters.indexOf(done);
        if (index >= 0) this.waiters.splice(index, 1);
        onTimeout();
        resolve();
      }, timeoutMs);
      this.waiters.push(done);
    });
  }
}
