/**
 * Elementwise kernels on the wasm device over strided inputs (see `kernels/strided.ts`): f32
 * ops, wrapping 32-bit integer ones, and comparisons of either with a bool result. The
 * output's dimensions are collapsed, and each row of the innermost dimension runs one row
 * kernel of the module, SIMD when the inputs are contiguous or broadcast along the row, a
 * plane of rows (the next dimension) per call (`gen_planes.ts`).
 * Large outputs split their rows across the threads; every element is computed by the same
 * instructions whatever the split.
 * @module
 */
import { collapse, type StridedInput } from "../strided.ts";
import type { WasmDevice, WasmStorage } from "./device.ts";
import { isCompareOp } from "./gen_compare.ts";
import {
  BINARY_OPS,
  isIntegerOp,
  UNARY_OPS,
  type WasmBinaryOp,
  type WasmUnaryOp,
} from "./module.ts";
import { type Runtime, share } from "./runtime.ts";

/** An elementwise op the wasm backend runs natively. */
export type WasmElementwiseOp = WasmBinaryOp | WasmUnaryOp;

/** Outputs smaller than this run on the calling thread alone. */
export const PARALLEL_MIN = 1 << 16;

/** This job's index in `jobs.ts`. */
export const JOB_ELEMENTWISE = 1;

/** Most dimensions after collapsing. */
const MAX_RANK = 24;

/**
 * Whether {@linkcode elementwiseWasm} runs `op` on these inputs (else use a fallback): f32
 * inputs for the float ops, i32 or u32 ones (all of one dtype) for the integer ops.
 */
export function elementwiseSupported(op: string, inputs: readonly StridedInput[]): boolean {
  const arity = (BINARY_OPS as readonly string[]).includes(op)
    ? 2
    : (UNARY_OPS as readonly string[]).includes(op)
    ? 1
    : 0;
  const dtype = inputs[0]?.dtype;
  const integer = isIntegerOp(op) || (isCompareOp(op) && !op.startsWith("f"));
  const typed = integer ? dtype === "i32" || dtype === "u32" : dtype === "f32";
  return arity === inputs.length && typed && inputs.every((x) => x.dtype === dtype) &&
    inputs[0].strides.length <= MAX_RANK;
}

/**
 * `out[i] = op(inputs[0][...], inputs[1][...])` over `outShape` (unary ops take one input), as
 * a new contiguous storage of the inputs' dtype. Inputs are strided views of wasm storages.
 */
export function elementwiseWasm(
  device: WasmDevice,
  op: WasmElementwiseOp,
  inputs: readonly StridedInput[],
  outShape: readonly number[],
): WasmStorage {
  if (!elementwiseSupported(op, inputs)) {
    throw new TypeError(`wasm: elementwise ${op} does not take these ${inputs.length} inputs`);
  }
  const size = outShape.reduce((x, y) => x * y, 1);
  const out = device.alloc(isCompareOp(op) ? "bool" : inputs[0].dtype, size);
  if (size === 0) return out;
  const { shape, strides } = collapse(outShape, inputs.map((x) => x.strides));
  if (shape.length === 0) shape.push(1), strides.forEach((s) => s.push(0));
  const binary = inputs.length === 2;
  const opIndex = binary
    ? BINARY_OPS.indexOf(op as WasmBinaryOp)
    : UNARY_OPS.indexOf(op as WasmUnaryOp);
  const args = [
    binary ? 2 : 1,
    opIndex,
    out.offset,
    shape.length,
    ...inputs.map((x) => (x.storage as WasmStorage).offset + 4 * x.offset),
    ...shape,
    ...strides.flat(),
  ];
  device.run(JOB_ELEMENTWISE, args, size < PARALLEL_MIN);
  return out;
}

/** The job: this thread's share of the output rows. */
export function elementwiseJob(
  rt: Runtime,
  args: Float64Array,
  part: number,
  parts: number,
): void {
  const arity = args[0], rank = args[3], out = args[2];
  const ptr = [args[4], args[5]];
  const shapeAt = 4 + arity;
  const shape = args.subarray(shapeAt, shapeAt + rank);
  const strides = [0, 1].map((j) =>
    args.subarray(shapeAt + rank * (1 + j), shapeAt + rank * (2 + j))
  );
  const len = shape[rank - 1];
  const rows = shape.reduce((x, y) => x * y, 1) / len;
  const [lo, hi] = share(rows, part, parts);
  const s0 = strides[0][rank - 1], s1 = arity === 2 ? strides[1][rank - 1] : 0;
  // Rows of the innermost dimension go to the module a plane (the next dimension) at a time.
  const plane = rank > 1 ? shape[rank - 2] : 1;
  const a2 = rank > 1 ? 4 * strides[0][rank - 2] : 0;
  const b2 = rank > 1 && arity === 2 ? 4 * strides[1][rank - 2] : 0;
  const k = rt.kernels;
  let run: (a: number, b: number, o: number, count: number) => void;
  // Comparisons write one bool byte per element, the other ops 4 bytes.
  let outBytes = 4;
  if (arity === 2) {
    const name = BINARY_OPS[args[1]];
    if (isCompareOp(name)) outBytes = 1;
    const kind = s0 === 1 && s1 === 1
      ? "vv"
      : s0 === 1 && s1 === 0
      ? "vs"
      : s0 === 0 && s1 === 1
      ? "sv"
      : "g";
    const f = k[`${name}_${kind}_2d`];
    run = kind === "g"
      ? (a, b, o, count) => f(a, 4 * s0, b, 4 * s1, o, len, count, a2, b2)
      : (a, b, o, count) => f(a, b, o, len, count, a2, b2);
  } else {
    const name = UNARY_OPS[args[1]];
    const f = k[`${name}_${s0 === 1 ? "v" : "g"}_2d`];
    run = s0 === 1
      ? (a, _b, o, count) => f(a, o, len, count, a2)
      : (a, _b, o, count) => f(a, 4 * s0, o, len, count, a2);
  }
  for (let r = lo; r < hi;) {
    // Offsets of row r: its index over the outer dimensions.
    let rem = r, a = ptr[0], b = ptr[1];
    for (let d = rank - 2; d >= 0; d--) {
      const i = rem % shape[d];
      rem = (rem - i) / shape[d];
      a += 4 * i * strides[0][d];
      if (arity === 2) b += 4 * i * strides[1][d];
    }
    const count = Math.min(hi - r, plane - (r % plane));
    run(a, b, out + outBytes * r * len, count);
    r += count;
  }
}
