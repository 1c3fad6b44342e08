/**
 * What one thread (the main thread or a worker) holds: the kernel module's instance over the
 * shared memory, and typed views of that memory that follow its growth.
 * @module
 */

/** The kernel module's exports (see `module.ts`); pointers in bytes, lengths in elements. */
// deno-lint-ignore no-explicit-any
export type Kernels = Record<string, (...args: number[]) => any>;

/** One thread's instance of the kernels over the shared memory. */
export class Runtime {
  #f32: Float32Array<ArrayBufferLike> = new Float32Array(0);
  #i32: Int32Array<ArrayBufferLike> = new Int32Array(0);
  /** Wraps an instance's exports over `memory`. */
  constructor(readonly memory: WebAssembly.Memory, readonly kernels: Kernels) {}

  /** Instantiates the kernel module over `memory`. */
  static async create(
    memory: WebAssembly.Memory,
    bytes: Uint8Array<ArrayBuffer>,
  ): Promise<Runtime> {
    const { instance } = await WebAssembly.instantiate(bytes, { env: { memory } });
    return new Runtime(memory, instance.exports as Kernels);
  }

  #refresh() {
    const buf = this.memory.buffer;
    if (this.#f32.buffer !== buf) {
      this.#f32 = new Float32Array(buf);
      this.#i32 = new Int32Array(buf);
    }
  }
  /** The whole memory as f32 (index = byte offset / 4). */
  get f32(): Float32Array<ArrayBufferLike> {
    this.#refresh();
    return this.#f32;
  }
  /** The whole memory as i32. */
  get i32(): Int32Array<ArrayBufferLike> {
    this.#refresh();
    return this.#i32;
  }
}

/** Most job arguments. */
export const MAX_ARGS = 120;

/**
 * A job: runs its share `part` of `parts` of the work described by `args`, either a static
 * share (see {@linkcode share}) or the items it takes one by one with `claim` (a counter shared
 * by all threads, from 0), so a thread that is slowed down takes fewer items.
 */
export type JobFn = (
  rt: Runtime,
  args: Float64Array,
  part: number,
  parts: number,
  claim: () => number,
) => void;

/** A claim counter for a job run by one thread alone. */
export function counter(): () => number {
  let next = 0;
  return () => next++;
}

/** The contiguous share `[lo, hi)` of `total` items taken by `part` of `parts`. */
export function share(total: number, part: number, parts: number): [number, number] {
  return [Math.floor(total * part / parts), Math.floor(total * (part + 1) / parts)];
}
