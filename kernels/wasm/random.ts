/**
 * `random` of the wasm backend: the reference's Threefry-2x32 samplers (`randomFill` in
 * `kernels/cpu/random.ts`, one definition of every mode's bits) run in place over the wasm
 * memory, the counters split into one contiguous range per thread. Every element depends only
 * on the key and its counter, so the bits are the reference's whatever the split.
 * @module
 */
import type { TypedArray } from "../dtype.ts";
import { RANDOM_DTYPE, type RandomMode, type RandomParams } from "../specs/random.ts";
import { randomFill } from "../cpu/random.ts";
import type { WasmDevice, WasmStorage } from "./device.ts";
import { type Runtime, share } from "./runtime.ts";

/** This job's index in `jobs.ts`. */
export const JOB_RANDOM = 10;

/** Fewer counters than this run on the calling thread alone. */
const PARALLEL_MIN = 1 << 12;

const MODES: readonly RandomMode[] = [
  "keys",
  "bits",
  "uniform",
  "normal",
  "truncatedNormal",
  "bernoulli",
  "randint",
];

/** Words of the output of `mode` over `n` counters (`keys` gives two per counter). */
function outLength(mode: RandomMode, n: number): number {
  return mode === "keys" ? 2 * n : n;
}

/** Runs the random kernel `p` under the u32 key words in `keys` (two keys for `randint`). */
export function randomWasm(device: WasmDevice, keys: WasmStorage, p: RandomParams): WasmStorage {
  const out = device.alloc(RANDOM_DTYPE[p.mode], outLength(p.mode, p.n));
  if (p.n === 0) return out;
  const args = [
    MODES.indexOf(p.mode),
    p.n,
    p.counterHi,
    p.counterLo,
    ...p.words.subarray(0, 4),
    keys.offset,
    keys.byteLength / 4,
    out.offset,
  ];
  device.run(JOB_RANDOM, args, p.n < PARALLEL_MIN);
  return out;
}

/** The output of `mode` as a typed array over the memory at byte `offset`. */
function outView(buf: ArrayBufferLike, mode: RandomMode, offset: number, n: number): TypedArray {
  const length = outLength(mode, n);
  switch (RANDOM_DTYPE[mode]) {
    case "f32":
      return new Float32Array(buf, offset, length);
    case "i32":
      return new Int32Array(buf, offset, length);
    case "bool":
      return new Uint8Array(buf, offset, length);
    default:
      return new Uint32Array(buf, offset, length);
  }
}

/** The job: this thread's contiguous range of counters. */
export function randomJob(rt: Runtime, args: Float64Array, part: number, parts: number): void {
  const mode = MODES[args[0]], n = args[1];
  const p: RandomParams = {
    mode,
    n,
    counterHi: args[2],
    counterLo: args[3],
    words: Uint32Array.from(args.subarray(4, 8)),
  };
  const buf = rt.memory.buffer;
  const keys = new Uint32Array(buf, args[8], Math.min(args[9], 4));
  const [lo, hi] = share(n, part, parts);
  randomFill(keys, p, outView(buf, mode, args[10], n), lo, hi);
}
