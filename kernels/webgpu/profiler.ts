/**
 * GPU time per kernel from `timestamp-query`. While a profile is open, the device records each
 * dispatch in a compute pass of its own with a begin and an end timestamp, labelled with the
 * kernel entry function that recorded it; the timestamps are resolved into a buffer at submit
 * time and read back asynchronously. Off by default: no query set exists and dispatches share
 * one pass until {@linkcode GpuProfiler} is created.
 * @module
 */

/** Total GPU time of one kernel label over a profile. */
export interface KernelTime {
  /** The kernel: the function that recorded the dispatch (or the kernel's own name). */
  readonly name: string;
  /** Dispatches recorded. */
  readonly count: number;
  /** Summed GPU time in milliseconds. */
  readonly ms: number;
}

/** Queries per query set: two per dispatch, and a batch holds at most 512 dispatches. */
const QUERIES = 2048;

/**
 * The label of a dispatch: function and file of the first stack frame outside the device and
 * the profiler (and past a helper named `dispatch`).
 */
export function callerName(): string {
  const frames = (new Error().stack ?? "").split("\n").slice(1);
  for (const f of frames) {
    // The device, the profiler and generic dispatch helpers say nothing about the kernel.
    if (/webgpu\/(device|profiler|binding)\.ts|at dispatch \(/.test(f)) continue;
    const m = /at (?:async )?(?:new )?([\w$.<>]+) \((.*?)(?::\d+)*\)$/.exec(f.trim());
    if (m) return `${m[1].replace(/^Object\./, "")} (${m[2].split("/").pop()})`;
    const anon = /at (.*?)(?::\d+)*$/.exec(f.trim());
    if (anon) return `<anonymous> (${anon[1].split("/").pop()})`;
  }
  return "unknown";
}

/** Timestamp queries of an open profile. */
export class GpuProfiler {
  #set: GPUQuerySet;
  #resolve: GPUBuffer;
  #labels: string[] = [];
  #totals = new Map<string, { count: number; ns: number }>();
  #reads: Promise<void>[] = [];

  constructor(readonly device: GPUDevice) {
    this.#set = device.createQuerySet({ type: "timestamp", count: QUERIES });
    this.#resolve = device.createBuffer({
      size: QUERIES * 8,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
  }

  /** Whether the next dispatch still fits this batch's query set (else flush first). */
  get full(): boolean {
    return 2 * this.#labels.length + 2 > QUERIES;
  }

  /** A compute pass for one dispatch labelled `name`, timestamped at its start and end. */
  beginPass(encoder: GPUCommandEncoder, name: string): GPUComputePassEncoder {
    const i = this.#labels.push(name) - 1;
    return encoder.beginComputePass({
      timestampWrites: {
        querySet: this.#set,
        beginningOfPassWriteIndex: 2 * i,
        endOfPassWriteIndex: 2 * i + 1,
      },
    });
  }

  /** Resolves this batch's timestamps into a readback buffer at the end of `encoder`. */
  resolve(encoder: GPUCommandEncoder): (() => void) | null {
    const labels = this.#labels;
    if (labels.length === 0) return null;
    this.#labels = [];
    const bytes = labels.length * 16;
    const out = this.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    encoder.resolveQuerySet(this.#set, 0, labels.length * 2, this.#resolve, 0);
    encoder.copyBufferToBuffer(this.#resolve, 0, out, 0, bytes);
    // Called after the submit: map and add each dispatch's end - begin to its label.
    return () => {
      this.#reads.push(
        out.mapAsync(GPUMapMode.READ).then(() => {
          const t = new BigUint64Array(out.getMappedRange());
          labels.forEach((name, i) => {
            const ns = t[2 * i + 1] > t[2 * i] ? Number(t[2 * i + 1] - t[2 * i]) : 0;
            const e = this.#totals.get(name) ?? { count: 0, ns: 0 };
            e.count++;
            e.ns += ns;
            this.#totals.set(name, e);
          });
          out.unmap();
          out.destroy();
        }),
      );
    };
  }

  /** Waits for every readback and returns the totals, largest first; frees the queries. */
  async finish(): Promise<KernelTime[]> {
    await Promise.all(this.#reads);
    this.#set.destroy();
    this.#resolve.destroy();
    return [...this.#totals].map(([name, e]) => ({ name, count: e.count, ms: e.ns / 1e6 }))
      .sort((a, b) => b.ms - a.ms);
  }
}

/** A table of the top `n` kernels of a profile, with their share of the total. */
export function formatProfile(
  times: readonly KernelTime[],
  n = 15,
  title = "GPU time by kernel (timestamp-query)",
): string {
  const total = times.reduce((s, t) => s + t.ms, 0);
  const rows = times.slice(0, n).map((t) =>
    `| ${t.name} | ${t.count} | ${t.ms.toFixed(2)} | ${
      (total > 0 ? 100 * t.ms / total : 0).toFixed(1)
    }% |`
  );
  return [
    `${title}, total ${total.toFixed(2)} ms:`,
    "| kernel | calls | ms | share |",
    "|---|---:|---:|---:|",
    ...rows,
  ].join("\n");
}
