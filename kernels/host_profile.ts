/**
 * Wall-clock time per kernel on the host backends (`cpu`, `cpu-reference`), the CPU
 * counterpart of the WebGPU timestamp profiler: while a profile is open each named backend is
 * registered again with every kernel wrapped in a timer, so `launch` (and the fallback path)
 * call the timed versions; closing it puts the original backends back. Kernels that run on a
 * fallback backend are listed with that backend's name in brackets. Time outside kernels
 * (tracing, autodiff, allocation, fallback copies) is the step time minus the total.
 * @module
 */
import { type Backend, findBackend, type Kernel, registerBackend } from "./backend.ts";
import type { DeviceName } from "./device.ts";
import type { KernelTime } from "./webgpu/profiler.ts";

/** An open profile of host kernels: {@linkcode HostProfile.stop} ends it. */
export interface HostProfile {
  /** Restores the untimed backends and returns kernel times, the largest first. */
  stop(): KernelTime[];
}

/**
 * Starts timing every kernel of the backends named (those registered; others are skipped).
 * `primary` is the backend whose kernels are listed by their bare names.
 */
export function profileHostKernels(
  names: readonly DeviceName[],
  primary: DeviceName = names[0],
): HostProfile {
  const totals = new Map<string, { count: number; ms: number }>();
  const originals: Backend[] = [];
  for (const name of names) {
    const backend = findBackend(name);
    if (!backend) continue;
    originals.push(backend);
    const kernels: Record<string, Kernel> = {};
    for (const [k, fn] of Object.entries(backend.kernels)) {
      const label = name === primary ? k : `${k} (${name})`;
      kernels[k] = ((device: never, inputs: never, spec: never) => {
        const t0 = performance.now();
        try {
          return fn(device, inputs, spec);
        } finally {
          const t = totals.get(label) ?? { count: 0, ms: 0 };
          t.count++;
          t.ms += performance.now() - t0;
          totals.set(label, t);
        }
      }) as Kernel;
    }
    registerBackend({ ...backend, kernels });
  }
  return {
    stop() {
      for (const b of originals) registerBackend(b);
      return [...totals].map(([name, t]) => ({ name, ...t })).sort((a, b) => b.ms - a.ms);
    },
  };
}
