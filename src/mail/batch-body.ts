/**
 * The bytes of a JSON array of emails, for Resend's batch API, written into buffers that are
 * reused from one batch to the next.
 *
 * Why not `encode(JSON.stringify(batch))`: a batch of 100 digests is megabytes. That string lands
 * in V8's large-object space and its bytes in a new ArrayBuffer; both are freed only by a full
 * collection, so at 50,000 digests the process carried ~100 MB of finished bodies and as much again
 * of their strings (BENCHMARKS.md, "Digest at 1M"). Here each email is stringified on its own (a
 * string small enough to die young) and encoded into a buffer taken from a small pool, given back
 * once the request is over. Buffers grow by doubling and are never shrunk; the pool keeps at most
 * `keep` of them (the batches a run has in flight at once).
 */
const utf8 = new TextEncoder();

export class BatchBodies {
  private readonly free: Uint8Array<ArrayBuffer>[] = [];

  constructor(
    private readonly keep = 4,
    private readonly initial = 1 << 20,
  ) {}

  /**
   * `items` as a JSON array, in a buffer that is the caller's until `give`: the returned view
   * must not be used after that. JSON.stringify never leaves a lone surrogate, so the bytes are
   * those of the whole array's string.
   */
  take(items: readonly unknown[]): { bytes: Uint8Array<ArrayBuffer>; give(): void } {
    let buf = this.free.pop() ?? new Uint8Array(this.initial);
    let at = 0;
    const write = (s: string) => {
      for (;;) {
        const { read, written } = utf8.encodeInto(s, buf.subarray(at));
        at += written;
        if (read === s.length) return;
        s = s.slice(read);
        const bigger = new Uint8Array(Math.max(buf.length * 2, at + s.length * 3));
        bigger.set(buf.subarray(0, at));
        buf = bigger;
      }
    };
    write('[');
    items.forEach((item, i) => {
      if (i > 0) write(',');
      writeItem(item, write);
    });
    write(']');
    let given = false;
    return {
      bytes: buf.subarray(0, at),
      give: () => {
        if (given) return;
        given = true;
        if (this.free.length < this.keep) this.free.push(buf);
      },
    };
  }
}

/**
 * Long strings are stringified in slices of this many code units. V8 returns a long
 * JSON.stringify result as a rope (a string of pieces), and turning a digest's ~70 KB one into
 * bytes cost ~0.5 ms, whatever did it (encodeInto, Buffer's write or byteLength): a quarter of a
 * digest's CPU at 1M. Slices of 4 KB cost a third of that in all (BENCHMARKS.md, "Digest CPU, third
 * pass"). The bytes are JSON.stringify's.
 */
const SLICE = 4096;

/** One email object as JSON.stringify writes it, its long string values a slice at a time. */
function writeItem(item: unknown, write: (s: string) => void): void {
  if (
    item === null ||
    typeof item !== 'object' ||
    Array.isArray(item) ||
    Object.getPrototypeOf(item) !== Object.prototype ||
    'toJSON' in item
  ) {
    write(JSON.stringify(item));
    return;
  }
  write('{');
  let first = true;
  for (const [key, value] of Object.entries(item)) {
    // what JSON.stringify leaves out of an object
    if (value === undefined || typeof value === 'function' || typeof value === 'symbol') continue;
    write(first ? `${JSON.stringify(key)}:` : `,${JSON.stringify(key)}:`);
    first = false;
    if (typeof value !== 'string' || value.length <= SLICE) {
      write(JSON.stringify(value));
      continue;
    }
    write('"');
    for (let at = 0; at < value.length; ) {
      let end = Math.min(value.length, at + SLICE);
      // a surrogate pair stays in one slice: split, each half would be escaped as a lone surrogate
      const last = value.charCodeAt(end - 1);
      if (last >= 0xd800 && last <= 0xdbff && end < value.length) end++;
      const json = JSON.stringify(value.slice(at, end));
      write(json.slice(1, -1));
      at = end;
    }
    write('"');
  }
  write('}');
}
