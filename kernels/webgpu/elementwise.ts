/**
 * WebGPU elementwise kernels: one generated shader per (expression, dtypes, rank, layout),
 * reading up to 3 strided inputs (broadcast, transposed or sliced) and writing a contiguous
 * output. Shapes and strides travel as uniforms, so one pipeline serves every shape of a rank.
 *
 * f16 data is stored as `array<f16>` but computed in f32: loads widen it, the store rounds the
 * f32 result once (to nearest even, see {@linkcode TO_F16}), so expressions see f32 values
 * and both backends agree up to f16 rounding.
 * @module
 */
import { type DType, dtypeInfo } from "../dtype.ts";
import { collapse, contiguousStrides, sizeOf, type StridedInput } from "../strided.ts";
import { FLAT_ARGS, FLAT_INDEX, type GpuDevice, type GpuStorage, grid, WG } from "./device.ts";
import type { KernelTable } from "../backend.ts";
import { type ElementwiseSpec, stridedInputs } from "../specs/elementwise.ts";
import { computeType, TO_F16, WGSL_ELEMENTWISE, type WgslOp } from "./elementwise_ops.ts";
import { flatPieces, guarded } from "./windows.ts";

const MAX_RANK = 8;
const NAMES = ["a", "b", "c"];

/**
 * Runs `expr` (WGSL over `a`, `b`, `c`, of the inputs' WGSL types, f32 for f16 inputs) per
 * output element; its value is of the output's type (f32 for an f16 output). `helpers` is
 * WGSL placed before `main` (functions the expression calls); `op` names the op in errors.
 * Tensors past one storage binding are split into pieces of the output (`windows.ts`).
 */
export function elementwiseGpu(
  device: GpuDevice,
  expr: string,
  inputs: readonly StridedInput[],
  outShape: readonly number[],
  outDtype: DType,
  helpers = "",
  op = "elementwise",
): GpuStorage {
  const n = sizeOf(outShape);
  const out = device.alloc(outDtype, n);
  if (n === 0) return out;
  const { shape, strides } = collapse(outShape, inputs.map((x) => x.strides));
  const rank = shape.length;
  if (rank > MAX_RANK) {
    throw new RangeError(`elementwise: rank ${rank} after merging exceeds ${MAX_RANK}`);
  }
  const k = inputs.length;
  const ebs = inputs.map((x) => device.elementBytes(x.dtype));
  const pieces = guarded(device, out, () =>
    flatPieces(
      device,
      op,
      shape,
      [{ storage: out, eb: device.elementBytes(outDtype) }],
      inputs.map((x, j) => ({
        ...x,
        storage: x.storage as GpuStorage,
        eb: ebs[j],
        strides: strides[j],
      })),
      outShape,
    ));
  // Split pieces index every input through its strides (its window starts elsewhere).
  const cstr = contiguousStrides(shape);
  const plain = inputs.map((x, j) =>
    pieces.length === 1 && x.offset === 0 &&
    strides[j].every((s, d) => shape[d] === 1 || s === cstr[d])
  );
  const code = elementwiseCode(expr, inputs.map((x) => x.dtype), plain, rank, outDtype, helpers);
  for (const piece of pieces) {
    const params = new Uint32Array(8 + 8 * (1 + k));
    params[0] = piece.count;
    inputs.forEach((x, j) => (params[1 + j] = x.offset - piece.strided[j].base));
    params[4] = piece.first;
    params[5] = piece.first - piece.anchored[0].base;
    shape.forEach((s, d) => (params[8 + d] = s));
    strides.forEach((st, j) => st.forEach((s, d) => (params[16 + 8 * j + d] = s)));
    device.run(
      { code },
      [...piece.strided.map((s) => s.bind), piece.anchored[0].bind],
      grid(piece.count),
      params,
    );
  }
  return out;
}

/** The shader of {@linkcode elementwiseGpu}: `plain` inputs are read at the thread's index. */
function elementwiseCode(
  expr: string,
  dtypes: readonly DType[],
  plain: readonly boolean[],
  rank: number,
  outDtype: DType,
  helpers: string,
): string {
  const k = dtypes.length;
  const decl = dtypes.map((t, j) =>
    `@group(0) @binding(${j}) var<storage, read> in${j}: array<${dtypeInfo(t).wgsl}>;`
  ).join("\n");
  const vec = (name: string) => `${name}: array<vec4<u32>, 2>,`;
  const index: string[] = [];
  if (plain.some((p) => !p)) {
    // The flat index of the whole output: a split piece starts at p.first.
    index.push("var rem = i + p.first;");
    dtypes.forEach((_, j) => !plain[j] && index.push(`var j${j} = p.o${j};`));
    for (let d = rank - 1; d >= 0; d--) {
      const at = `[${d >> 2}][${d & 3}]`;
      index.push(`{ let c = rem % p.shape${at}; rem = rem / p.shape${at};`);
      dtypes.forEach((_, j) => !plain[j] && index.push(`j${j} += c * p.s${j}${at};`));
      index.push("}");
    }
  }
  const loads = dtypes.map((t, j) => {
    const v = `in${j}[${plain[j] ? "i" : `j${j}`}]`;
    return `let ${NAMES[j]} = ${t === "f16" ? `f32(${v})` : v};`;
  });
  const half = outDtype === "f16";
  return `
struct P { n: u32, o0: u32, o1: u32, o2: u32, first: u32, skip: u32, ${vec("shape")} ${
    dtypes.map((_, j) => vec(`s${j}`)).join(" ")
  } }
${decl}
@group(0) @binding(${k}) var<storage, read_write> out: array<${dtypeInfo(outDtype).wgsl}>;
@group(0) @binding(${k + 1}) var<uniform> p: P;
${helpers}
${half ? TO_F16 : ""}
@compute @workgroup_size(${WG})
fn main(${FLAT_ARGS}) {
  ${FLAT_INDEX}
  if (i >= p.n) { return; }
  ${index.join("\n  ")}
  ${loads.join("\n  ")}
  out[i + p.skip] = ${half ? `to_f16_(${expr})` : expr};
}`;
}

function kernelOf(name: string, op: WgslOp) {
  const { expr, helpers } = typeof op === "string" ? { expr: op, helpers: "" } : op;
  return (d: GpuDevice, inputs: GpuStorage[], s: ElementwiseSpec) =>
    elementwiseGpu(
      d,
      typeof expr === "string"
        ? expr
        : expr(computeType(s.inputs[0]?.dtype ?? s.dtype), computeType(s.dtype)),
      stridedInputs(inputs, s),
      s.shape,
      s.dtype,
      helpers,
      name,
    );
}

/** One kernel per entry of the WGSL elementwise table, under the op's name. */
export const elementwiseKernels: KernelTable = Object.fromEntries(
  Object.entries(WGSL_ELEMENTWISE).map(([name, op]) => [name, kernelOf(name, op)]),
);
