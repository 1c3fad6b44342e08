/**
 * Block allocator over one growable linear memory: bytes are rounded up to a size class
 * (powers of two up to 4 KiB, then 4 classes per power of two), freed blocks wait on a list
 * per class for the next request of that class, and new blocks are cut from the top of the
 * used region, growing the memory when needed. Blocks are 64-byte aligned.
 * @module
 */

const PAGE = 65536;
/** Alignment of every block, in bytes. */
export const ALIGN = 64;

/** Rounds a byte count up to its size class. */
export function sizeClass(bytes: number): number {
  const n = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  if (n <= 4096) return 2 ** Math.ceil(Math.log2(n));
  const step = 2 ** (Math.floor(Math.log2(n)) - 2);
  return Math.ceil(n / step) * step;
}

/** Size-class allocator over a `WebAssembly.Memory`. */
export class BlockAllocator {
  #free = new Map<number, number[]>();
  #top: number;
  /** Bytes held in free lists. */
  pooledBytes = 0;

  /** @param base First byte the allocator may hand out (below it is reserved). */
  constructor(readonly memory: WebAssembly.Memory, base: number, readonly maxBytes: number) {
    this.#top = Math.ceil(base / ALIGN) * ALIGN;
  }

  /** A block of at least `bytes` bytes; returns its offset and its class size. */
  alloc(bytes: number): { offset: number; size: number } {
    const size = sizeClass(bytes);
    const reused = this.#free.get(size)?.pop();
    if (reused !== undefined) {
      this.pooledBytes -= size;
      return { offset: reused, size };
    }
    const offset = this.#top;
    const end = offset + size;
    if (end > this.maxBytes) {
      throw new RangeError(
        `wasm: out of memory allocating ${bytes} bytes (${end} of at most ${this.maxBytes})`,
      );
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.#top = end;
    return { offset, size };
  }

  /** Returns a block to its class's free list. */
  release(offset: number, size: number): void {
    let list = this.#free.get(size);
    if (!list) this.#free.set(size, list = []);
    list.push(offset);
    this.pooledBytes += size;
  }

  /** Bytes below the top of the used region. */
  get topBytes(): number {
    return this.#top;
  }
}
