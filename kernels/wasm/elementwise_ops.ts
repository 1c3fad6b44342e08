/**
 * Which module row op runs each registry elementwise kernel on the wasm backend, by dtype:
 * f32 kernels, the integer ones on i32 and u32 (the reference stores `a + b`, `a - b`,
 * `Math.imul(a, b)` and `-a` through 32-bit typed arrays, which wrap exactly as the i32x4
 * instructions do; `Math.max`, `Math.min` and `Math.abs` compare the values, so those take the
 * signed or unsigned instruction by dtype), and unary kernels run as a binary op on the input
 * twice; comparisons of f32, i32 or u32 give bool bytes. Other kernels and dtypes are left
 * to the reference.
 * @module
 */
import type { KernelTable } from "../backend.ts";
import type { DType } from "../dtype.ts";
import { type ElementwiseSpec, stridedInputs } from "../specs/elementwise.ts";
import type { WasmDevice, WasmStorage } from "./device.ts";
import { elementwiseSupported, elementwiseWasm, type WasmElementwiseOp } from "./elementwise.ts";

/** Registry elementwise kernel names the wasm module runs on f32, with the module's op for each. */
export const WASM_ELEMENTWISE_OPS: Readonly<Record<string, WasmElementwiseOp>> = {
  add: "add",
  sub: "sub",
  mul: "mul",
  div: "div",
  maximum: "max",
  minimum: "min",
  exp: "exp",
  tanh: "tanh",
  neg: "neg",
  abs: "abs",
  sqrt: "sqrt",
  relu: "relu",
  gelu: "gelu",
  geluErf: "geluErf",
  geluGrad: "geluGrad",
  geluErfGrad: "geluErfGrad",
  reluGrad: "reluGrad",
};

/**
 * Unary kernels the module runs on f32 as a binary op on the input twice: `copy` as
 * `max(a, a)` (exactly `a`, a NaN staying NaN) and `square` as `a * a`.
 */
export const WASM_DOUBLED_OPS: Readonly<Record<string, WasmElementwiseOp>> = {
  copy: "max",
  square: "mul",
};

/** How the module runs one kernel: its row op, and whether on the one input twice. */
export interface ElementwisePlan {
  readonly op: WasmElementwiseOp;
  readonly twice: boolean;
}

const once = (op: WasmElementwiseOp): ElementwisePlan => ({ op, twice: false });
const twice = (op: WasmElementwiseOp): ElementwisePlan => ({ op, twice: true });
const both = (plan: ElementwisePlan) => ({ i32: plan, u32: plan });

/** Registry kernel names the module runs on i32 and u32 data, with the plan for each. */
export const WASM_INTEGER_OPS: Readonly<
  Record<string, Readonly<Record<"i32" | "u32", ElementwisePlan>>>
> = {
  add: both(once("iadd")),
  sub: both(once("isub")),
  mul: both(once("imul")),
  neg: both(once("ineg")),
  maximum: { i32: once("imax"), u32: once("umax") },
  minimum: { i32: once("imin"), u32: once("umin") },
  // The absolute value of a u32 is itself: max(a, a) copies it.
  abs: { i32: once("iabs"), u32: twice("umax") },
  copy: both(twice("imax")),
  square: both(twice("imul")),
};

/**
 * Comparison kernels (bool output) by registry name, with the module's op for each input
 * dtype: JS compares i32 and u32 values as numbers, so the order is signed or unsigned by dtype.
 */
export const WASM_COMPARE_OPS: Readonly<
  Record<string, Readonly<Partial<Record<DType, WasmElementwiseOp>>>>
> = {
  equal: { f32: "feq", i32: "ieq", u32: "ieq" },
  notEqual: { f32: "fne", i32: "ine", u32: "ine" },
  less: { f32: "flt", i32: "ilt", u32: "ult" },
  lessEqual: { f32: "fle", i32: "ile", u32: "ule" },
  greater: { f32: "fgt", i32: "igt", u32: "ugt" },
  greaterEqual: { f32: "fge", i32: "ige", u32: "uge" },
};

/**
 * The plan of kernel `name` on this spec, if the module runs it: inputs of one dtype, with an
 * output of that dtype (a bool one for the comparisons).
 */
export function elementwisePlan(name: string, s: ElementwiseSpec): ElementwisePlan | undefined {
  const dtype = s.inputs[0]?.dtype;
  if (!dtype || s.inputs.some((x) => x.dtype !== dtype)) return undefined;
  const compare = WASM_COMPARE_OPS[name];
  if (compare) {
    const op = s.dtype === "bool" ? compare[dtype] : undefined;
    return op ? once(op) : undefined;
  }
  if (s.dtype !== dtype) return undefined;
  if (dtype === "f32") {
    const op = WASM_ELEMENTWISE_OPS[name], doubled = WASM_DOUBLED_OPS[name];
    return op ? once(op) : doubled ? twice(doubled) : undefined;
  }
  return dtype === "i32" || dtype === "u32" ? WASM_INTEGER_OPS[name]?.[dtype] : undefined;
}

/** Whether `name` is an elementwise kernel the module runs for some dtype. */
export function isWasmElementwise(name: string): boolean {
  return name in WASM_ELEMENTWISE_OPS || name in WASM_DOUBLED_OPS ||
    name in WASM_INTEGER_OPS || name in WASM_COMPARE_OPS;
}

/** Whether the elementwise kernel `name` runs here on this spec's inputs and dtype. */
export function elementwiseAccepts(name: string, s: ElementwiseSpec): boolean {
  const plan = elementwisePlan(name, s);
  if (!plan) return false;
  const inputs = s.inputs.map((x) => ({ ...x, storage: { byteLength: 0 } }));
  return plan.twice
    ? inputs.length === 1 && elementwiseSupported(plan.op, [inputs[0], inputs[0]])
    : elementwiseSupported(plan.op, inputs);
}

/** The elementwise kernels by registry name. */
export const WASM_ELEMENTWISE_KERNELS: KernelTable = Object.fromEntries(
  [
    ...new Set([
      ...Object.keys(WASM_ELEMENTWISE_OPS),
      ...Object.keys(WASM_DOUBLED_OPS),
      ...Object.keys(WASM_INTEGER_OPS),
      ...Object.keys(WASM_COMPARE_OPS),
    ]),
  ].map((name) => [
    name,
    (d: WasmDevice, xs: WasmStorage[], s: ElementwiseSpec) => {
      const plan = elementwisePlan(name, s);
      if (!plan) throw new TypeError(`wasm: ${name} does not take these dtypes`);
      const inputs = stridedInputs(xs, s);
      return elementwiseWasm(d, plan.op, plan.twice ? [inputs[0], inputs[0]] : inputs, s.shape);
    },
  ]),
);
