/**
 * GPU buffer pool keyed by size class. Freed buffers are reused by later allocations; since
 * commands in one encoder run in order, a buffer freed mid-batch may be written by a later
 * dispatch of the same batch.
 * @module
 */

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
  pooledBytes = 0;
  constructor(readonly device: GPUDevice) {}

  acquire(bytes: number): PooledBuffer {
    const size = sizeClass(bytes);
    const list = this.#free.get(size);
    const reused = list?.pop();
    if (reused) {
      this.pooledBytes -= size;
      return { buffer: reused, fresh: false };
    }
    const buffer = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    return { buffer, fresh: true };
  }

  release(buffer: GPUBuffer): void {
    const size = buffer.size;
    let list = this.#free.get(size);
    if (!list) this.#free.set(size, list = []);
    list.push(buffer);
    this.pooledBytes += size;
  }

  /** Destroys every pooled buffer. */
  clear(): void {
    for (const list of this.#free.values()) for (const b of list) b.destroy();
    this.#free.clear();
    this.pooledBytes = 0;
  }
}
