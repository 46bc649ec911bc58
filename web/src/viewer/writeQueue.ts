/**
 * Feeds bytes to a terminal one write at a time, using xterm's write callback: while a write
 * is being parsed, new chunks are queued and coalesced into the next write. So a fast stream
 * becomes few large writes instead of a flood of small ones, and xterm's internal buffer
 * never holds more than one batch. It never drops bytes: a reader that sees `pending` grow
 * (the terminal cannot keep up) rewrites the terminal from what it holds and `clear()`s the
 * queue instead (see logNavigator.ts).
 */
export type WriteFn = (data: Uint8Array, done: () => void) => void;

export class WriteQueue {
  private queue: Uint8Array[] = [];
  private queued = 0;
  private busy = false;
  private waiters: Array<() => void> = [];
  private closed = false;

  constructor(
    private readonly writeFn: WriteFn,
    private readonly maxBatch = 1024 * 1024,
  ) {}

  /** Queue bytes; the promise resolves when the terminal has processed them. */
  push(bytes: Uint8Array): Promise<void> {
    if (this.closed || bytes.length === 0) return Promise.resolve();
    this.queue.push(bytes);
    this.queued += bytes.length;
    const p = new Promise<void>((resolve) => this.waiters.push(resolve));
    this.pump();
    return p;
  }

  get pending(): number {
    return this.queued;
  }

  /** Forget what is queued and not yet written (its promises resolve): the caller rewrites. */
  clear(): void {
    this.queue = [];
    this.queued = 0;
    const w = this.waiters;
    this.waiters = [];
    w.forEach((r) => r());
  }

  close(): void {
    this.closed = true;
    this.clear();
  }

  private pump(): void {
    if (this.busy || this.closed || this.queue.length === 0) return;
    const batch = this.takeBatch();
    const waiters = this.queue.length === 0 ? this.waiters.splice(0) : [];
    this.busy = true;
    this.writeFn(batch, () => {
      this.busy = false;
      waiters.forEach((r) => r());
      if (this.queue.length === 0 && this.waiters.length) {
        const rest = this.waiters.splice(0);
        rest.forEach((r) => r());
      }
      this.pump();
    });
  }

  private takeBatch(): Uint8Array {
    let n = 0;
    let k = 0;
    while (k < this.queue.length && (k === 0 || n + this.queue[k]!.length <= this.maxBatch)) {
      n += this.queue[k]!.length;
      k++;
    }
    const parts = this.queue.splice(0, k);
    this.queued -= n;
    if (parts.length === 1) return parts[0]!;
    const out = new Uint8Array(n);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}
