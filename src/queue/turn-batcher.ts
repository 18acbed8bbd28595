// Calls made in one turn of the event loop, handed over together: every item added before the turn
// ends (setImmediate) goes in one call to `run`, which answers each item with a promise of its own.
// The worker admits every message of a receive side by side, so the refusals of one receive arrive
// in one turn and leave in as few SQS calls as their number allows.

export class TurnBatcher<I, R> {
  private pending: Array<{ readonly item: I; readonly resolve: (value: R) => void; readonly reject: (error: unknown) => void }> = [];
  private scheduled = false;

  constructor(private readonly run: (items: readonly I[]) => ReadonlyArray<Promise<R>>) {}

  add(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    this.scheduled = false;
    const taken = this.pending.splice(0);
    let answers: ReadonlyArray<Promise<R>>;
    try {
      answers = this.run(taken.map((entry) => entry.item));
    } catch (error) {
      for (const entry of taken) entry.reject(error);
      return;
    }
    taken.forEach((entry, index) => {
      const answer = answers[index];
      if (answer) answer.then(entry.resolve, entry.reject);
      else entry.reject(new Error('no answer for a batched item'));
    });
  }
}
