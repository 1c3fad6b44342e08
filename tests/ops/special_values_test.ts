/**
 * Property test: every elementwise op (each unary, arithmetic binary, comparison and logical op
 * from the ops tables, `where` and every `cast`) gives the same answer on the CPU reference and
 * on WebGPU over special values: ±0, ±inf, NaN, huge and tiny magnitudes, subnormals, integer
 * extremes. Exact ops must agree bit for bit (any NaN matches any NaN); transcendental ones
 * within a relative tolerance, with the same class (NaN, ±inf, zero sign) always.
 *
 * Deliberate differences, also listed in the op docs:
 * - Subnormal f32 values: WGSL lets a device flush them to zero. A GPU zero (of either sign)
 *   is accepted where the CPU's result is subnormal (llvmpipe's `exp(-88)` flushes). Subnormal
 *   inputs are tested only when the probe below sees the GPU keep them through a multiply
 *   (llvmpipe does), and never for the transcendental ops: WGSL gives them no accuracy there
 *   (llvmpipe's `log(1e-40)` is -88.02, not -92.1).
 * - `erf` on the GPU is the Abramowitz-Stegun approximation: absolute error up to 1.5e-7, so
 *   it is compared with an absolute tolerance of 2e-7.
 * - `mod` is tested without subnormal operands: its exact f32 reduction on the GPU scales by
 *   powers of two with `frexp`/`ldexp`, which WGSL does not define for subnormals.
 * - `sin`/`cos` are compared only for |x| <= 1e4: WGSL bounds their error only on [-pi, pi],
 *   and GPUs reduce large arguments with an f32 pi, so far from 0 they return unrelated values.
 * - f16 ops compute in float64 on the CPU and in f32 on the GPU, each rounding once to f16, so
 *   finite f16 results may differ by an f16 ulp (rounding the f32 result can land on the
 *   other side of an f16 tie).
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import type { DType, Tensor } from "../../mod.ts";
import { CPU_ELEMENTWISE } from "../../kernels/cpu/elementwise_ops.ts";
import { testDevices } from "../util.ts";

const gpu = testDevices().includes("webgpu");
const MIN_NORMAL = 1.1754943508222875e-38;
const f32 = (v: number) => Math.fround(v);

/** Values per dtype: the special ones, rounding ties, and magnitudes near each limit. */
const FLOATS = [
  0,
  -0,
  1,
  -1,
  0.5,
  -0.5,
  1.5,
  -2.5,
  2,
  3,
  0.1,
  -7.25,
  Infinity,
  -Infinity,
  NaN,
  3e38,
  -3e38,
  3.4028234663852886e38,
  -3.4028234663852886e38,
  1e10,
  -1e10,
  88,
  -88,
  100,
  -104,
  1e-7,
  -1e-7,
  1e-30,
  MIN_NORMAL,
  -MIN_NORMAL,
  16777217,
  2 ** 31,
  -(2 ** 31),
  2147483520,
  -2147483904,
  2 ** 32,
  4294967040,
  -1e-3,
  1e4,
  -1e4,
  46341,
].map(f32);
const SUBNORMALS = [1e-40, -1e-40, 1.401298464324817e-45, -5.877471754111438e-39].map(f32);
/** f16 values: the f32 ones rounded (overflowing to ±inf), its limits and subnormals. */
const HALFS = [
  ...new Set([
    ...FLOATS.map(Math.f16round),
    ...[65504, -65504, 6.103515625e-5, 2 ** -24, -(2 ** -24), 3 * 2 ** -24, 1 / 3, 2049, 11.5],
  ]),
];
/** An f16 ulp, relative: finite f16 results may differ by one (see the notes above). */
const HALF_TOL = 2 ** -10;
const I32S = [
  0,
  1,
  -1,
  2,
  -2,
  7,
  -7,
  46341,
  -46341,
  65536,
  2 ** 24 + 1,
  2 ** 31 - 1,
  -(2 ** 31),
  2 ** 31 - 2,
  -(2 ** 31) + 1,
  1000000007,
];
const U32S = [
  0,
  1,
  2,
  7,
  46341,
  65536,
  2 ** 24 + 1,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32 - 2,
];
const BOOLS = [0, 1];

/**
 * Relative tolerance per op for finite results (ops not listed are exact). WGSL allows a few
 * ULP (or more, for its built-in exp/log/trig) where JS computes in float64 and rounds once.
 */
const TOL: Record<string, number> = {
  exp: 2e-6,
  log: 2e-6,
  log1p: 2e-6,
  sqrt: 1e-6,
  rsqrt: 1e-6,
  tanh: 2e-6,
  sigmoid: 2e-6,
  erf: 2e-6,
  sin: 2e-6,
  cos: 2e-6,
  div: 1e-6,
  pow: 1e-5,
  expm1: 2e-6,
  log2: 2e-6,
  tan: 1e-5,
  atan: 5e-5,
  softplus: 2e-6,
};
/** Absolute tolerance where results pass through zero (sin near pi, erf near 0, ...). */
const ATOL: Record<string, number> = {
  ...{ sin: 1e-6, cos: 1e-6, erf: 2e-7, tanh: 1e-7, log1p: 1e-7, expm1: 1e-7, tan: 1e-6 },
  ...{ atan: 1e-7, softplus: 1e-7 },
};

/** Whether the GPU keeps subnormal f32 values (probed once). */
async function gpuKeepsSubnormals(): Promise<boolean> {
  using x = T.tensor(Float32Array.of(1e-40, 1e-45), { device: "webgpu" });
  using y = T.mul(x, 1);
  const d = await y.data();
  return d[0] !== 0 && d[1] !== 0;
}

function values(dtype: DType, subnormals: boolean): number[] {
  if (dtype === "f32") return subnormals ? [...FLOATS, ...SUBNORMALS] : FLOATS;
  if (dtype === "f16") return HALFS;
  return dtype === "i32" ? I32S : dtype === "u32" ? U32S : BOOLS;
}

/**
 * Why `got` (GPU) differs from `want` (CPU) for `op`, or null when they agree. `half`: the
 * result is f16 (a one-ulp difference is allowed).
 */
function differs(op: string, want: number, got: number, half = false): string | null {
  if (Number.isNaN(want) || Number.isNaN(got)) {
    return Number.isNaN(want) && Number.isNaN(got) ? null : "NaN mismatch";
  }
  if (Object.is(want, got)) return null;
  if (want !== 0 && Math.abs(want) < MIN_NORMAL && got === 0) return null;
  if (half && Number.isFinite(want) && Number.isFinite(got) && (want !== 0 || got !== 0)) {
    const err = Math.abs(want - got);
    return err <= 2 ** -24 + (ATOL[op] ?? 0) + Math.max(TOL[op] ?? 0, HALF_TOL) * Math.abs(want)
      ? null
      : `error ${err}`;
  }
  const tol = TOL[op];
  if (tol === undefined || !Number.isFinite(want) || !Number.isFinite(got)) return "not equal";
  if (want === 0 && got === 0) return "zero sign";
  const err = Math.abs(want - got);
  return err <= (ATOL[op] ?? 0) + tol * Math.abs(want) ? null : `error ${err}`;
}

/** Runs `f` on both devices over the same inputs and lists the disagreements. */
async function compare(
  op: string,
  inputs: { data: number[]; shape: number[]; dtype: DType }[],
  f: (...xs: Tensor[]) => Tensor,
  skip: (args: number[]) => boolean = () => false,
): Promise<string[]> {
  const run = async (device: T.DeviceName) =>
    await T.scope(async () => {
      const xs = inputs.map((i) => T.tensor(i.data, { dtype: i.dtype, shape: i.shape, device }));
      return await f(...xs).data();
    });
  let want, got, half = false;
  try {
    [want, got] = [await run("cpu-reference"), await run("webgpu")];
    if (want instanceof Float16Array) half = true;
  } catch (e) {
    return [`${op} on ${inputs.map((i) => i.dtype).join(", ")}: threw ${(e as Error).message}`];
  }
  const out: string[] = [];
  const n1 = inputs[1]?.data.length ?? 1;
  for (let k = 0; k < want.length; k++) {
    // Inputs of element k: binary ops broadcast [n0, 1] against [1, n1].
    const args = inputs.length === 1
      ? [inputs[0].data[k]]
      : inputs.length === 2
      ? [inputs[0].data[Math.floor(k / n1)], inputs[1].data[k % n1]]
      : inputs.map((i) => i.data[k]);
    if (skip(args)) continue;
    const why = differs(op, want[k], got[k], half);
    if (why) out.push(`${op}(${args.join(", ")}): cpu ${want[k]}, webgpu ${got[k]} (${why})`);
  }
  return out;
}

const DTYPES: DType[] = ["f32", "f16", "i32", "u32", "bool"];
const UNARY_OPS = [
  ...["neg", "abs", "sign", "exp", "log", "log1p", "sqrt", "rsqrt", "square", "tanh", "sigmoid"],
  ...["relu", "erf", "sin", "cos", "floor", "ceil", "round", "expm1", "log2", "tan", "atan"],
  ...["softplus", "isnan", "isfinite"],
];
const BINARY_OPS = ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "mod"];
const COMPARE_OPS = [
  ...["equal", "notEqual", "less", "lessEqual", "greater", "greaterEqual"],
  ...["logicalAnd", "logicalOr"],
];
/**
 * Kernels tested by their own steps below, or internal (`nonZero` backs `any`/`all`; the
 * fused activations' special values are in `gelu_test.ts`).
 */
const OTHER_KERNELS = [
  ...["copy", "cast", "logicalNot", "where", "nonZero"],
  ...["gelu", "geluErf", "geluGrad", "geluErfGrad", "reluGrad"],
];

Deno.test("the special-values test covers every elementwise kernel", () => {
  const listed = new Set([...UNARY_OPS, ...BINARY_OPS, ...COMPARE_OPS, ...OTHER_KERNELS]);
  assert.deepEqual(Object.keys(CPU_ELEMENTWISE).filter((k) => !listed.has(k)), []);
});
const fn = (name: string) => (T as unknown as Record<string, (...a: unknown[]) => Tensor>)[name];

Deno.test({
  name: "every elementwise op agrees on CPU and WebGPU over special values",
  ignore: !gpu,
  fn: async (t) => {
    const keeps = await gpuKeepsSubnormals();
    const bad: string[] = [];
    await t.step("unary", async () => {
      for (const op of UNARY_OPS) {
        assert.equal(typeof fn(op), "function", `${op} is exported by mod.ts`);
        for (const dtype of DTYPES.filter((d) => d !== "bool")) {
          const data = values(dtype, keeps && !(op in TOL));
          const skip = op === "sin" || op === "cos" || op === "tan"
            ? ([a]: number[]) => Math.abs(a) > 1e4
            : undefined;
          bad.push(
            ...await compare(op, [{ data, shape: [data.length], dtype }], fn(op), skip),
          );
        }
      }
    });
    await t.step("binary, comparison and logical", async () => {
      for (const op of [...BINARY_OPS, ...COMPARE_OPS]) {
        assert.equal(typeof fn(op), "function", `${op} is exported by mod.ts`);
        const types = COMPARE_OPS.includes(op) ? DTYPES : DTYPES.filter((d) => d !== "bool");
        for (const dtype of types) {
          const data = values(dtype, keeps && !(op in TOL) && op !== "mod");
          const a = { data, shape: [data.length, 1], dtype };
          const b = { data, shape: [1, data.length], dtype };
          bad.push(...await compare(op, [a, b], fn(op)));
        }
      }
    });
    await t.step("logicalNot and where", async () => {
      for (const dtype of DTYPES) {
        const data = values(dtype, keeps);
        const x = { data, shape: [data.length], dtype };
        bad.push(...await compare("logicalNot", [x], T.logicalNot));
        const cond = {
          data: data.map((_, i) => i % 2),
          shape: [data.length],
          dtype: "bool" as DType,
        };
        const other = { data: [...data].reverse(), shape: [data.length], dtype };
        bad.push(...await compare("where", [cond, x, other], T.where));
      }
    });
    await t.step("cast", async () => {
      for (const from of DTYPES) {
        for (const to of DTYPES) {
          const data = values(from, keeps);
          bad.push(
            ...await compare(
              `cast ${from}->${to}`,
              [{ data, shape: [data.length], dtype: from }],
              (x) => T.cast(x, to),
            ),
          );
        }
      }
    });
    assert.deepEqual(bad, [], `${bad.length} disagreements:\n${bad.join("\n")}`);
  },
});
