/**
 * The CPU reference backend: storage is a typed array.
 * @module
 */
import { type DType, dtypeInfo, dtypeOfArray, type TypedArray } from "../dtype.ts";
import { AccountedDevice, checkAllocation, cpuElementBytes } from "../device.ts";
import type { Device, Storage } from "../device.ts";

/** CPU storage: a typed array of the dtype's CPU representation. */
export class CpuStorage implements Storage {
  constructor(readonly data: TypedArray) {}
  get byteLength(): number {
    return this.data.byteLength;
  }
}

/** The CPU device. One instance per process. */
export class CpuDevice extends AccountedDevice implements Device {
  readonly name = "cpu-reference" as const;
  readonly description = "CPU (typed arrays)";
  readonly maxBytes = 2 ** 31 - 1;

  elementBytes(dtype: DType): number {
    return cpuElementBytes(dtype);
  }
  alloc(dtype: DType, size: number): CpuStorage {
    checkAllocation("cpu alloc", this, size, dtype);
    const s = new CpuStorage(dtypeInfo(dtype).create(size));
    this.acct.add(s.byteLength);
    return s;
  }
  /**
   * Wraps an already-computed typed array as storage (no copy). The op that ran the kernel
   * checked the size first (see `checkAllocation`); this checks again as a guard.
   */
  adopt(data: TypedArray): CpuStorage {
    if (data.byteLength > this.maxBytes) {
      checkAllocation("cpu adopt", this, data.length, dtypeOfArray(data));
    }
    const s = new CpuStorage(data);
    this.acct.add(s.byteLength);
    return s;
  }
  upload(data: TypedArray, dtype: DType): CpuStorage {
    const s = this.alloc(dtype, data.length);
    s.data.set(data);
    return s;
  }
  read(storage: Storage, _dtype: DType, size: number): Promise<TypedArray> {
    return Promise.resolve((storage as CpuStorage).data.slice(0, size));
  }
  free(storage: Storage): void {
    this.acct.remove(storage.byteLength);
  }
  /** The CPU pools nothing: the limit is kept but has no effect. */
  poolLimit = 0;
  releasePooled(): number {
    return 0;
  }
  flush(): void {}
  sync(): Promise<void> {
    return Promise.resolve();
  }
}
