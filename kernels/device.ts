/**
 * The contract both backends implement: storage, transfer and accounting. Kernels are
 * plain functions per op family (`kernels/cpu/*`, `kernels/webgpu/*`) that take a device and
 * storages and return new storages.
 * @module
 */
import type { DType, TypedArray } from "./dtype.ts";

/** Names of the backends. */
export type DeviceName = "cpu" | "webgpu" | "wasm";

/** Memory figures of one device, in bytes of tensor storage. */
export interface MemoryInfo {
  /** Tensor handles not yet disposed. */
  liveTensors: number;
  /** Bytes of storage held by live tensors. */
  liveBytes: number;
  /** Highest `liveBytes` since start or the last {@linkcode resetPeak}. */
  peakBytes: number;
  /** Bytes held by the buffer pool for reuse (WebGPU only; 0 on the CPU). */
  pooledBytes: number;
  /** Bytes of the device's cached scalar constants (not in `liveBytes`; see `Tensor.scalar`). */
  constantBytes: number;
}

/** Opaque storage owned by one device. */
export interface Storage {
  /** Bytes this storage counts towards `liveBytes`. */
  readonly byteLength: number;
}

/** A backend: allocates, uploads, reads and frees storage, and keeps memory counts. */
export interface Device {
  /** Backend name. */
  readonly name: DeviceName;
  /** Human-readable adapter description. */
  readonly description: string;
  /** Largest tensor, in bytes, one storage may hold. */
  readonly maxBytes: number;
  /** Allocates storage for `size` elements; contents are unspecified. */
  alloc(dtype: DType, size: number): Storage;
  /** Copies host data into new storage. */
  upload(data: TypedArray, dtype: DType): Storage;
  /** Reads storage back as a typed array of `dtype` with `size` elements. */
  read(storage: Storage, dtype: DType, size: number): Promise<TypedArray>;
  /** Frees storage (it may be pooled). */
  free(storage: Storage): void;
  /** Submits pending work. */
  flush(): void;
  /** Waits for submitted work to finish. */
  sync(): Promise<void>;
  /** Current memory figures. */
  memory(): MemoryInfo;
  /** Sets the peak to the current live bytes. */
  resetPeak(): void;
  /** Counts a tensor handle as created (+1) or disposed (-1). */
  countTensor(delta: 1 | -1): void;
  /**
   * Moves `storage`'s bytes from `liveBytes` to `constantBytes` (+1: a cache took it) or back
   * (-1: the cache let it go; it is freed with its last handle as usual).
   */
  countConstant(storage: Storage, delta: 1 | -1): void;
}

/** Shared accounting for both devices. */
export class Accounting {
  liveTensors = 0;
  liveBytes = 0;
  peakBytes = 0;
  constantBytes = 0;
  add(bytes: number): void {
    this.liveBytes += bytes;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
  }
  remove(bytes: number): void {
    this.liveBytes -= bytes;
  }
  constant(bytes: number, delta: 1 | -1): void {
    this.constantBytes += delta * bytes;
    this.liveBytes -= delta * bytes;
  }
  snapshot(pooledBytes: number): MemoryInfo {
    return {
      liveTensors: this.liveTensors,
      liveBytes: this.liveBytes,
      peakBytes: this.peakBytes,
      pooledBytes,
      constantBytes: this.constantBytes,
    };
  }
}
