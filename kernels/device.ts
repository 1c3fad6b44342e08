/**
 * The device contract every backend implements: storage, transfer and accounting. Kernels
 * are plain functions that take a device, storages and a spec and return new storages; each
 * backend lists them in its kernel table (`backend.ts`).
 * @module
 */
import { type DType, dtypeInfo, type TypedArray } from "./dtype.ts";

/**
 * Names of the backends: `"cpu"` (WebAssembly SIMD kernels on every core), `"webgpu"`, and
 * `"cpu-reference"` (the typed-array reference every kernel is tested against).
 */
export type DeviceName = "cpu" | "webgpu" | "cpu-reference";

/** Memory figures of one device, in bytes of tensor storage. */
export interface MemoryInfo {
  /** Tensor handles not yet disposed (PRNG keys, which need no dispose, are not counted). */
  liveTensors: number;
  /** Bytes of storage held by live tensors. */
  liveBytes: number;
  /** Highest `liveBytes` since start or the last {@linkcode resetPeak}. */
  peakBytes: number;
  /** Bytes held by the buffer pool for reuse (WebGPU only; 0 on the CPU). */
  pooledBytes: number;
  /**
   * Bytes of the device's cached scalar constants (see `Tensor.scalar`) and of PRNG keys not
   * yet disposed or garbage collected; not in `liveBytes`.
   */
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
  /** Largest tensor, in bytes, one storage may hold (see {@linkcode checkAllocation}). */
  readonly maxBytes: number;
  /** Bytes one element of `dtype` takes in this device's storage. */
  elementBytes(dtype: DType): number;
  /** Allocates storage for `size` elements; contents are unspecified. */
  alloc(dtype: DType, size: number): Storage;
  /** Copies host data into new storage. */
  upload(data: TypedArray, dtype: DType): Storage;
  /** Reads storage back as a typed array of `dtype` with `size` elements. */
  read(storage: Storage, dtype: DType, size: number): Promise<TypedArray>;
  /** Frees storage (it may be pooled). */
  free(storage: Storage): void;
  /**
   * Most bytes of freed storage the device keeps pooled for reuse; setting it lower gives the
   * excess back at once, least recently freed first (WebGPU; the CPU pools nothing).
   */
  poolLimit: number;
  /** Gives back every pooled buffer; returns the bytes released (0 on the CPU). */
  releasePooled(): number;
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

const GiB = 2 ** 30;
const MiB = 2 ** 20;
/** A byte count for messages: `8 GiB`, `1.5 MiB`, `12 bytes`. */
function humanBytes(n: number): string {
  if (n >= GiB) return `${+(n / GiB).toFixed(2)} GiB`;
  if (n >= MiB) return `${+(n / MiB).toFixed(2)} MiB`;
  return `${n} bytes`;
}

/**
 * The one size check every allocation goes through, before any memory is taken: ops call it
 * with their name and output shape before running a kernel, and each device calls it again in
 * `alloc`/`upload` (naming itself) as a guard for kernels' temporaries. Throws a RangeError
 * naming `op`, the shape, the dtype and the device's limit when `shape` (or a bare element
 * count) of `dtype` needs more than `device.maxBytes`. Returns the byte count.
 */
export function checkAllocation(
  op: string,
  device: Pick<Device, "name" | "maxBytes" | "elementBytes">,
  shape: readonly number[] | number,
  dtype: DType,
): number {
  const size = typeof shape === "number" ? shape : shape.reduce((p, d) => p * d, 1);
  const bytes = size * device.elementBytes(dtype);
  if (!(bytes <= device.maxBytes)) {
    const what = typeof shape === "number" ? `${size} elements` : `[${shape.join(",")}]`;
    throw new RangeError(
      `${op}: a ${dtype} tensor of ${what} needs ${bytes} bytes (${humanBytes(bytes)}), over ` +
        `the ${device.name} limit of ${device.maxBytes} bytes (${humanBytes(device.maxBytes)}) ` +
        "per tensor",
    );
  }
  return bytes;
}

/** Bytes per element of the CPU's typed arrays (the GPU stores bool in 4 bytes). */
export function cpuElementBytes(dtype: DType): number {
  return dtypeInfo(dtype).bytes;
}

/** Shared accounting for both devices (see {@linkcode AccountedDevice}). */
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

/**
 * The memory accounting part of a {@linkcode Device}, which both devices extend: they count
 * allocations into `acct`, and a device with a buffer pool reports it through `pooledBytes`.
 */
export abstract class AccountedDevice {
  /** The counts behind {@linkcode AccountedDevice.memory}. */
  protected readonly acct: Accounting = new Accounting();
  /** Bytes held in a pool for reuse (none by default). */
  protected pooledBytes(): number {
    return 0;
  }
  /** Memory counts now. */
  memory(): MemoryInfo {
    return this.acct.snapshot(this.pooledBytes());
  }
  /** Restarts the peak at the current live bytes. */
  resetPeak(): void {
    this.acct.peakBytes = this.acct.liveBytes;
  }
  /** Counts a tensor created (+1) or disposed (-1). */
  countTensor(delta: 1 | -1): void {
    this.acct.liveTensors += delta;
  }
  /** Moves a storage's bytes into (+1) or out of (-1) the constants. */
  countConstant(storage: Storage, delta: 1 | -1): void {
    this.acct.constant(storage.byteLength, delta);
  }
}
