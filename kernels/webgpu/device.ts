/**
 * The WebGPU backend: adapter and limits, command batching, uniform arena, pipeline cache.
 *
 * Dispatches are recorded into one pending command encoder (inside one open compute pass) and
 * submitted when a value is read back, when the batch is large, or on `flush()`.
 * @module
 */
import { type DType, dtypeInfo, type TypedArray } from "../dtype.ts";
import { AccountedDevice, checkAllocation, type Device, type Storage } from "../device.ts";
import { BufferPool } from "./pool.ts";
import { callerName, GpuProfiler, type KernelTime } from "./profiler.ts";
import { F16_FEATURE, optionalFeatures, requireF16, USES_F16 } from "./f16_feature.ts";
import { bindingResource, checkBindingOverride, type GpuBindable } from "./binding.ts";

export { F16_FEATURE, requireF16 } from "./f16_feature.ts";
export type { GpuBindable, GpuWindow } from "./binding.ts";

/** GPU storage: a pooled buffer, of which the first `byteLength` bytes hold data. */
export class GpuStorage implements Storage {
  constructor(readonly buffer: GPUBuffer, readonly byteLength: number) {}
}

/** A compute kernel: WGSL source with entry point `main`. */
export interface Kernel {
  code: string;
  /** Label in GPU profiles (default: the function that records the dispatch). */
  name?: string;
}

/** Threads per workgroup used by the 1-D kernels. */
export const WG = 256;
const MAX_BATCH = 512;
const ARENA_SLOT = 256;

/** Workgroup counts covering `n` threads, folded into 2-D past the 65535 limit. */
export function grid(n: number, wg = WG): [number, number] {
  const groups = Math.max(1, Math.ceil(n / wg));
  if (groups <= 65535) return [groups, 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y];
}

/** WGSL that defines `let i = ...` as the flat thread index for {@linkcode grid} dispatches. */
export const FLAT_INDEX = `let i = gid.x + gid.y * nwg.x * ${WG}u;`;
/** Builtins matching {@linkcode FLAT_INDEX}. */
export const FLAT_ARGS =
  `@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>`;

/** WGSL declaring binding `b` as a read-only storage array `name` of `t`. */
export const ro = (b: number, name: string, t: string): string =>
  `@group(0) @binding(${b}) var<storage, read> ${name}: array<${t}>;`;
/** WGSL declaring binding `b` as a read-write storage array `name` of `t`. */
export const rw = (b: number, name: string, t: string): string =>
  `@group(0) @binding(${b}) var<storage, read_write> ${name}: array<${t}>;`;

/** Rounds a byte count up to whole 32-bit words (buffer copies and writes move words). */
const words = (bytes: number) => Math.ceil(bytes / 4) * 4;

/** The WebGPU device. */
export class GpuDevice extends AccountedDevice implements Device {
  readonly name = "webgpu" as const;
  /**
   * Largest tensor: the adapter's `maxBufferSize`, at most 8 GiB (kernels split their work
   * past one storage binding, see {@linkcode GpuDevice.maxBindingBytes}).
   */
  readonly maxBytes: number;
  #bindingOverride: number | undefined;
  readonly pool: BufferPool;
  #pipelines = new Map<string, GPUComputePipeline>();
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #pending = 0;
  #staging: GPUBuffer[] = [];
  #arenaCpu = new Uint8Array(MAX_BATCH * ARENA_SLOT);
  #arenaGpu: GPUBuffer;
  #errors: string[] = [];
  #profiler: GpuProfiler | null = null;

  private constructor(
    readonly device: GPUDevice,
    readonly description: string,
  ) {
    super();
    // Whole words, so a size class rounded down to the cap still holds any tensor under it;
    // at most 8 GiB, so element indices (f16 ones too) stay within the shaders' u32.
    this.maxBytes = Math.min(Math.floor(device.limits.maxBufferSize / 4) * 4, 2 ** 33 - 4);
    this.pool = new BufferPool(device, this.maxBytes);
    this.#arenaGpu = device.createBuffer({
      size: this.#arenaCpu.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    device.addEventListener("uncapturederror", (e) => {
      this.#errors.push((e as GPUUncapturedErrorEvent).error.message);
    });
  }

  /** Requests an adapter and a device with the adapter's full buffer limits; null if none. */
  static async create(): Promise<GpuDevice | null> {
    if (typeof navigator === "undefined" || !("gpu" in navigator)) return null;
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) return null;
    const l = adapter.limits;
    const device = await adapter.requestDevice({
      requiredFeatures: optionalFeatures(adapter),
      requiredLimits: {
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      },
    });
    const info = adapter.info;
    const name = info.description || [info.vendor, info.architecture, info.device]
      .filter(Boolean).join(" ") ||
      "unknown adapter";
    return new GpuDevice(device, `${name}${info.isFallbackAdapter ? " (software)" : ""}`);
  }

  alloc(dtype: DType, size: number): GpuStorage {
    if (dtype === "f16") requireF16(this.device.features, this.description);
    const bytes = this.#bytes(dtype, size);
    const { buffer } = this.pool.acquire(bytes);
    this.acct.add(bytes);
    return new GpuStorage(buffer, bytes);
  }

  upload(data: TypedArray, dtype: DType): GpuStorage {
    if (dtype === "f16") requireF16(this.device.features, this.description);
    const bytes = this.#bytes(dtype, data.length);
    const { buffer, fresh } = this.pool.acquire(bytes);
    this.acct.add(bytes);
    // Deno's queue.writeBuffer panics on an empty write: an empty tensor needs no data.
    if (bytes === 0) return new GpuStorage(buffer, bytes);
    const elems = dtype === "bool" ? Uint32Array.from(data) : data;
    const view = new Uint8Array(elems.buffer as ArrayBuffer, elems.byteOffset, bytes);
    // Queue writes move whole words: an odd number of f16 elements gets a zero pad.
    let src = view;
    if (bytes % 4) (src = new Uint8Array(words(bytes))).set(view);
    if (fresh) {
      // A new buffer is not referenced by pending commands, so a queue write is safe.
      this.device.queue.writeBuffer(buffer, 0, src);
    } else {
      // A reused buffer may still be read by pending commands: copy in command order.
      const staging = this.device.createBuffer({
        size: words(bytes),
        usage: GPUBufferUsage.COPY_SRC,
        mappedAtCreation: true,
      });
      new Uint8Array(staging.getMappedRange()).set(src);
      staging.unmap();
      this.#endPass().copyBufferToBuffer(staging, 0, buffer, 0, staging.size);
      this.#staging.push(staging);
    }
    return new GpuStorage(buffer, bytes);
  }

  async read(storage: Storage, dtype: DType, size: number): Promise<TypedArray> {
    const s = storage as GpuStorage;
    const bytes = size * this.elementBytes(dtype);
    const out = this.device.createBuffer({
      size: Math.max(4, words(bytes)),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    if (size > 0) this.#endPass().copyBufferToBuffer(s.buffer, 0, out, 0, words(bytes));
    this.flush();
    await out.mapAsync(GPUMapMode.READ);
    const raw = out.getMappedRange().slice(0, bytes);
    out.unmap();
    out.destroy();
    this.#throwErrors();
    const info = dtypeInfo(dtype);
    if (dtype === "bool") return Uint8Array.from(new Uint32Array(raw));
    const arr = info.create(size);
    new Uint8Array(arr.buffer).set(new Uint8Array(raw));
    return arr;
  }

  free(storage: Storage): void {
    const s = storage as GpuStorage;
    this.acct.remove(s.byteLength);
    this.#retire(this.pool.release(s.buffer));
  }

  /** Most bytes the buffer pool keeps for reuse (least recently freed buffers go first). */
  get poolLimit(): number {
    return this.pool.limit;
  }
  set poolLimit(bytes: number) {
    this.pool.limit = bytes;
    this.#retire(this.pool.drain(bytes));
  }

  /** Destroys every pooled buffer (after pending work that may use them); returns the bytes. */
  releasePooled(): number {
    const bytes = this.pool.pooledBytes;
    this.#retire(this.pool.drain());
    return bytes;
  }

  /**
   * Destroys buffers that left the pool once the commands recorded so far, which may still use
   * them, have run: they join the staging buffers destroyed after the next submit.
   */
  #retire(buffers: GPUBuffer[]) {
    if (!buffers.length) return;
    this.#staging.push(...buffers);
    if (!this.#encoder) this.flush();
  }

  /**
   * Most bytes one storage binding may cover: the adapter's `maxStorageBufferBindingSize`
   * (at most `maxBytes`). Kernels given larger tensors bind windows of them and split their
   * dispatch (`windows.ts`), or refuse. Tests set a small value (a multiple of 4, at least
   * twice `bindingAlignment`) to run those paths on small tensors, then `undefined` to
   * restore the adapter's.
   */
  get maxBindingBytes(): number {
    return this.#bindingOverride ??
      Math.min(this.device.limits.maxStorageBufferBindingSize, this.maxBytes);
  }
  set maxBindingBytes(bytes: number | undefined) {
    const adapter = Math.min(this.device.limits.maxStorageBufferBindingSize, this.maxBytes);
    this.#bindingOverride = checkBindingOverride(bytes, adapter, this.bindingAlignment);
  }

  /** The byte alignment of a window's offset (`minStorageBufferOffsetAlignment`). */
  get bindingAlignment(): number {
    return this.device.limits.minStorageBufferOffsetAlignment;
  }

  /**
   * Records one compute dispatch. `buffers` bind at 0..n-1; `params` (if any) at n. A whole
   * storage larger than {@linkcode GpuDevice.maxBindingBytes} is refused with a RangeError
   * naming the kernel: binding it would be a validation error, or (under a lowered limit)
   * would hide a missing split.
   */
  run(
    kernel: Kernel,
    buffers: GpuBindable[],
    workgroups: readonly number[],
    params?: ArrayBufferView,
  ): void {
    const pipeline = this.pipeline(kernel.code);
    const entries: GPUBindGroupEntry[] = buffers.map((b, i) => ({
      binding: i,
      resource: bindingResource(b, this.maxBindingBytes, () => kernel.name ?? callerName()),
    }));
    if (params) {
      if (params.byteLength > ARENA_SLOT) throw new RangeError("kernel params exceed 256 bytes");
      const offset = this.#pending * ARENA_SLOT;
      this.#arenaCpu.set(
        new Uint8Array(params.buffer, params.byteOffset, params.byteLength),
        offset,
      );
      entries.push({
        binding: buffers.length,
        resource: { buffer: this.#arenaGpu, offset, size: ARENA_SLOT },
      });
    }
    const bindGroup = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries,
    });
    const pass = this.#profiler ? this.#profiledPass(kernel) : this.#beginPass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(workgroups[0], workgroups[1] ?? 1, workgroups[2] ?? 1);
    if (this.#profiler) this.#endPass();
    if (++this.#pending >= MAX_BATCH) this.flush();
  }

  /**
   * Returns the cached pipeline for a WGSL source, compiling it once. Source using `f16`
   * gets `enable f16;` (and a TypeError when the device lacks `shader-f16`).
   */
  pipeline(code: string): GPUComputePipeline {
    let p = this.#pipelines.get(code);
    if (!p) {
      const f16 = USES_F16.test(code);
      if (f16) requireF16(this.device.features, this.description, "f16 kernels");
      const module = this.device.createShaderModule({ code: f16 ? `enable f16;\n${code}` : code });
      p = this.device.createComputePipeline({
        layout: "auto",
        compute: { module, entryPoint: "main" },
      });
      this.#pipelines.set(code, p);
    }
    return p;
  }

  /** Number of compiled pipelines held in the cache. */
  get pipelineCount(): number {
    return this.#pipelines.size;
  }

  flush(): void {
    if (this.#encoder) {
      this.#endPass();
      if (this.#pending > 0) {
        this.device.queue.writeBuffer(
          this.#arenaGpu,
          0,
          this.#arenaCpu,
          0,
          this.#pending * ARENA_SLOT,
        );
      }
      const profiled = this.#profiler?.resolve(this.#encoder);
      this.device.queue.submit([this.#encoder.finish()]);
      profiled?.();
      this.#encoder = null;
      this.#pending = 0;
    }
    if (this.#staging.length) {
      const staging = this.#staging;
      this.#staging = [];
      this.device.queue.onSubmittedWorkDone().then(() => staging.forEach((b) => b.destroy()));
    }
  }

  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.#throwErrors();
  }

  protected override pooledBytes(): number {
    return this.pool.pooledBytes;
  }

  /** Whether this device can time kernels (the adapter has `timestamp-query`). */
  get canProfile(): boolean {
    return this.device.features.has("timestamp-query");
  }

  /**
   * Starts timing each dispatch (a compute pass each, so slower); false if the device cannot.
   * Pending work is submitted first, so only later dispatches count.
   */
  startProfile(): boolean {
    if (!this.canProfile) return false;
    this.flush();
    this.#profiler ??= new GpuProfiler(this.device);
    return true;
  }

  /** Ends the profile: GPU milliseconds per kernel, largest first (empty if none was open). */
  async stopProfile(): Promise<KernelTime[]> {
    const p = this.#profiler;
    if (!p) return [];
    this.flush();
    this.#profiler = null;
    return await p.finish();
  }

  #profiledPass(kernel: Kernel): GPUComputePassEncoder {
    if (this.#profiler!.full) this.flush();
    const encoder = this.#endPass();
    this.#pass = this.#profiler!.beginPass(encoder, kernel.name ?? callerName());
    return this.#pass;
  }

  /** Whether the device has `shader-f16`, so it can hold and compute f16 tensors. */
  get hasF16(): boolean {
    return this.device.features.has(F16_FEATURE);
  }

  /** f16 takes 2 bytes per element; every other dtype one 32-bit word (bool included). */
  elementBytes(dtype: DType): number {
    return dtype === "f16" ? 2 : 4;
  }
  /** The device-level guard; `maxBytes` is the adapter's binding/buffer size limit. */
  #bytes(dtype: DType, size: number): number {
    return checkAllocation("webgpu alloc", this, size, dtype);
  }
  #beginPass(): GPUComputePassEncoder {
    if (!this.#encoder) this.#encoder = this.device.createCommandEncoder();
    if (!this.#pass) this.#pass = this.#encoder.beginComputePass();
    return this.#pass;
  }
  #endPass(): GPUCommandEncoder {
    if (!this.#encoder) this.#encoder = this.device.createCommandEncoder();
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
    return this.#encoder;
  }
  #throwErrors() {
    if (this.#errors.length) {
      const msg = this.#errors.join("\n");
      this.#errors = [];
      throw new Error(`webgpu: device error: ${msg}`);
    }
  }
}
