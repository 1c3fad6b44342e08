/**
 * The wasm backend's device: every storage is a block of one shared, growable
 * `WebAssembly.Memory`, which the kernel module's instances on all threads read and write.
 * @module
 */
import { type DType, dtypeInfo, type TypedArray } from "../dtype.ts";
import { AccountedDevice, checkAllocation, cpuElementBytes } from "../device.ts";
import type { Device, Storage } from "../device.ts";
import { BlockAllocator } from "./alloc.ts";
import { kernelModule, MAX_PAGES } from "./module.ts";
import { ThreadPool } from "./threads.ts";
import type { Runtime } from "./runtime.ts";
import { type Blas, openBlas } from "./blas.ts";

/** A block of the wasm memory holding one tensor. */
export class WasmStorage implements Storage {
  /** Set by `free`, which refuses a second call. */
  freed = false;
  /** A storage of `byteLength` bytes at `offset` in a block of `blockBytes`. */
  constructor(
    /** Byte offset in the memory (64-byte aligned). */
    readonly offset: number,
    /** Bytes of tensor data. */
    readonly byteLength: number,
    /** Bytes of the block (its size class). */
    readonly blockBytes: number,
  ) {}
}

/** Options of {@linkcode WasmDevice.create}. */
export interface WasmDeviceOptions {
  /** Threads running each kernel, the caller's included (default `navigator.hardwareConcurrency`). */
  threads?: number;
  /**
   * Large matmuls through the system BLAS (`cblas_sgemm` over FFI) when `--allow-ffi` is
   * granted and a library opens (default true; `LONGSEQ_BLAS=0` also turns it off).
   */
  blas?: boolean;
}

/** The WebAssembly SIMD device. Call {@linkcode WasmDevice.dispose} to stop its workers. */
export class WasmDevice extends AccountedDevice implements Device {
  readonly name = "cpu" as const;
  readonly description: string;
  readonly maxBytes = 2 ** 31 - 2 ** 16;
  readonly #alloc: BlockAllocator;

  private constructor(
    /** The shared memory every storage lives in. */
    readonly wasmMemory: WebAssembly.Memory,
    readonly pool: ThreadPool,
    /** Whether the matmul microkernel uses relaxed-SIMD `f32x4.relaxed_madd`. */
    readonly relaxed: boolean,
    /** The system BLAS the matmul kernel hands large products to, if one opened. */
    readonly blas: Blas | null,
  ) {
    super();
    this.#alloc = new BlockAllocator(wasmMemory, 1024, this.maxBytes);
    this.description = `WebAssembly SIMD${
      relaxed ? " (relaxed madd)" : ""
    }, ${pool.threads} thread${pool.threads === 1 ? "" : "s"}${
      blas ? `, large matmuls via ${blas.name}` : ""
    }`;
  }

  /** Makes the memory and starts the workers. */
  static async create(options: WasmDeviceOptions = {}): Promise<WasmDevice> {
    const threads = Math.max(1, Math.floor(options.threads ?? navigator.hardwareConcurrency ?? 1));
    const memory = new WebAssembly.Memory({ initial: 64, maximum: MAX_PAGES, shared: true });
    const { bytes, relaxed } = kernelModule();
    const pool = await ThreadPool.create(memory, bytes, threads);
    return new WasmDevice(memory, pool, relaxed, options.blas === false ? null : openBlas(threads));
  }

  /** Threads running each kernel. */
  get threads(): number {
    return this.pool.threads;
  }
  /** The calling thread's kernel instance and memory views. */
  get runtime(): Runtime {
    return this.pool.runtime;
  }

  /**
   * Wasm memory never shrinks, so freed blocks always stay pooled for reuse within it; the
   * limit is kept for the `Device` contract and releasing returns nothing to the system.
   */
  poolLimit = Infinity;
  releasePooled(): number {
    return 0;
  }
  elementBytes(dtype: DType): number {
    return cpuElementBytes(dtype);
  }

  alloc(dtype: DType, size: number): WasmStorage {
    const bytes = checkAllocation("wasm alloc", this, size, dtype);
    const { offset, size: blockBytes } = this.#alloc.alloc(bytes);
    this.acct.add(bytes);
    return new WasmStorage(offset, bytes, blockBytes);
  }
  upload(data: TypedArray, dtype: DType): WasmStorage {
    const s = this.alloc(dtype, data.length);
    new Uint8Array(this.wasmMemory.buffer, s.offset, s.byteLength).set(
      new Uint8Array(data.buffer, data.byteOffset, s.byteLength),
    );
    return s;
  }
  /** A view of `size` elements of `storage` (valid until the memory grows). */
  view(storage: WasmStorage, dtype: DType, size: number): TypedArray {
    const buf = this.wasmMemory.buffer as unknown as ArrayBuffer;
    switch (dtype) {
      case "f32":
        return new Float32Array(buf, storage.offset, size);
      case "f16":
        return new Float16Array(buf, storage.offset, size);
      case "i32":
        return new Int32Array(buf, storage.offset, size);
      case "u32":
        return new Uint32Array(buf, storage.offset, size);
      case "bool":
        return new Uint8Array(buf, storage.offset, size);
    }
  }
  /** A copy of `size` elements of `storage`, synchronously (kernels run synchronously). */
  readSync(storage: Storage, dtype: DType, size: number): TypedArray {
    const out = dtypeInfo(dtype).create(size);
    out.set(this.view(storage as WasmStorage, dtype, size));
    return out;
  }
  read(storage: Storage, dtype: DType, size: number): Promise<TypedArray> {
    return Promise.resolve(this.readSync(storage, dtype, size));
  }
  free(storage: Storage): void {
    const s = storage as WasmStorage;
    if (s.freed) throw new Error("wasm: storage freed twice");
    s.freed = true;
    this.#alloc.release(s.offset, s.blockBytes);
    this.acct.remove(s.byteLength);
  }
  /** Kernel scratch (not counted in `liveBytes`); give it back with {@linkcode release}. */
  scratch(bytes: number): WasmStorage {
    const { offset, size } = this.#alloc.alloc(bytes);
    return new WasmStorage(offset, bytes, size);
  }
  /** Returns scratch from {@linkcode scratch}. */
  release(s: WasmStorage): void {
    this.#alloc.release(s.offset, s.blockBytes);
  }
  /** Runs job `id` on every thread, or with `inline` on the calling thread (see `threads.ts`). */
  run(id: number, args: readonly number[], inline = false): void {
    this.pool.run(id, args, inline);
  }
  flush(): void {}
  sync(): Promise<void> {
    return Promise.resolve();
  }
  protected override pooledBytes(): number {
    return this.#alloc.pooledBytes;
  }
  /** Stops the workers. Storage reads still work; kernels no longer run. */
  dispose(): void {
    this.pool.dispose();
  }
}
