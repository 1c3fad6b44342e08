/**
 * GPU buffer pool keyed by size class. Freed buffers are reused by later allocations; since
 * commands in one encoder run in order, a buffer freed mid-batch may be written by a later
 * dispatch of the same batch.
 *
 * The pool holds at most {@linkcode BufferPool.limit} bytes: releasing a buffer past it evicts
 * the least recently released buffers first. Evicted buffers are handed back by `release`
 * (and `drain`) for the device to destroy once no recorded command can use them.
 * @module
 */

/** Default cap on pooled bytes: 256 MiB. */
export const DEFAULT_POOL_LIMIT = 256 * 2 ** 20;

/** Rounds a byte count up to its size class (4 classes per power of two above 4 KiB). */
export function sizeClass(bytes: number): number {
  const n = Math.max(16, Math.ceil(bytes / 4) * 4);
  if (n <= 4096) return 2 ** Math.ceil(Math.log2(n));
  const step = 2 ** (Math.floor(Math.log2(n)) - 2);
  return Math.ceil(n / step) * step;
}

/** A buffer handed out by the pool; `fresh` is true when it was just created (never used). */
export interface PooledBuffer {
  buffer: GPUBuffer;
  fresh: boolean;
}

/** Pool of storage buffers. */
export class BufferPool {
  #free = new Map<number, GPUBuffer[]>();
  /** Pooled buffers, least recently released first. */
  #order = new Set<GPUBuffer>();
  #limit = DEFAULT_POOL_LIMIT;
  pooledBytes = 0;
  /** `maxSize` caps the size classes (the device's largest buffer, a multiple of 4). */
  constructor(readonly device: GPUDevice, readonly maxSize = Infinity) {}

  /** Most bytes the pool keeps for reuse; lowering it evicts at the next release or drain. */
  get limit(): number {
    return this.#limit;
  }
  set limit(bytes: number) {
    if (!(bytes >= 0)) throw new RangeError(`pool limit must be a byte count >= 0, got ${bytes}`);
    this.#limit = bytes;
  }

  acquire(bytes: number): PooledBuffer {
    const size = Math.min(sizeClass(bytes), this.maxSize);
    const list = this.#free.get(size);
    const reused = list?.pop();
    if (reused) {
      this.#order.delete(reused);
      this.pooledBytes -= size;
      return { buffer: reused, fresh: false };
    }
    const buffer = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    return { buffer, fresh: true };
  }

  /**
   * Pools `buffer` for reuse, then evicts least recently released buffers while the pool holds
   * more than its limit. Returns the evicted buffers (the caller destroys them).
   */
  release(buffer: GPUBuffer): GPUBuffer[] {
    const size = buffer.size;
    let list = this.#free.get(size);
    if (!list) this.#free.set(size, list = []);
    list.push(buffer);
    this.#order.add(buffer);
    this.pooledBytes += size;
    return this.drain(this.#limit);
  }

  /** Removes least recently released buffers until at most `keep` bytes stay pooled. */
  drain(keep = 0): GPUBuffer[] {
    const out: GPUBuffer[] = [];
    for (const b of this.#order) {
      if (this.pooledBytes <= keep) break;
      this.#order.delete(b);
      const list = this.#free.get(b.size)!;
      list.splice(list.indexOf(b), 1);
      this.pooledBytes -= b.size;
      out.push(b);
    }
    return out;
  }

  /** Destroys every pooled buffer. */
  clear(): void {
    for (const b of this.drain()) b.destroy();
  }
}
