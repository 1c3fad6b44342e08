/**
 * The one dtype table. Nothing else in the library switches on dtype strings.
 * @module
 */

/**
 * Element types a tensor can hold. `f16` is IEEE half precision (ops compute in f32 or wider
 * and round on store); `bool` is stored as 0/1.
 */
export type DType = "f32" | "f16" | "i32" | "u32" | "bool";

/** Typed arrays returned by {@linkcode Tensor.data}. */
export type TypedArray = Float32Array | Float16Array | Int32Array | Uint32Array | Uint8Array;

/** Everything the library needs to know about a dtype. */
export interface DTypeInfo {
  /** The dtype's name. */
  readonly name: DType;
  /** Bytes per element in CPU storage (the typed array). */
  readonly bytes: number;
  /**
   * WGSL scalar type used in GPU storage; `bool` is stored as `u32`, and `f16` needs the
   * `shader-f16` device feature (kernels load it into f32 to compute).
   */
  readonly wgsl: "f32" | "f16" | "i32" | "u32";
  /** Whether values are floating point (differentiable). */
  readonly isFloat: boolean;
  /** Allocates a typed array of this dtype. */
  readonly create: (n: number) => TypedArray;
  /** Converts a JS number to the value this dtype would store. */
  readonly coerce: (v: number) => number;
}

const f32 = new Float32Array(1);

/** The dtype table. */
export const DTYPES: Readonly<Record<DType, DTypeInfo>> = {
  f32: {
    name: "f32",
    bytes: 4,
    wgsl: "f32",
    isFloat: true,
    create: (n) => new Float32Array(n),
    coerce: (v) => (f32[0] = v, f32[0]),
  },
  f16: {
    name: "f16",
    bytes: 2,
    wgsl: "f16",
    isFloat: true,
    create: (n) => new Float16Array(n),
    coerce: Math.f16round,
  },
  i32: {
    name: "i32",
    bytes: 4,
    wgsl: "i32",
    isFloat: false,
    create: (n) => new Int32Array(n),
    coerce: (v) => Math.trunc(v) | 0,
  },
  u32: {
    name: "u32",
    bytes: 4,
    wgsl: "u32",
    isFloat: false,
    create: (n) => new Uint32Array(n),
    coerce: (v) => Math.trunc(v) >>> 0,
  },
  bool: {
    name: "bool",
    bytes: 1,
    wgsl: "u32",
    isFloat: false,
    create: (n) => new Uint8Array(n),
    coerce: (v) => (v ? 1 : 0),
  },
};

/** Looks up a dtype, throwing a TypeError for unknown names. */
export function dtypeInfo(dtype: DType, op = "dtype"): DTypeInfo {
  const info = DTYPES[dtype];
  if (!info) {
    throw new TypeError(
      `${op}: unknown dtype ${JSON.stringify(dtype)}; expected one of ${
        Object.keys(DTYPES).join(", ")
      }`,
    );
  }
  return info;
}

/** Whether `dtype` is a floating-point type (f32 or f16): the dtypes gradients flow through. */
export function isFloat(dtype: DType): boolean {
  return DTYPES[dtype]?.isFloat ?? false;
}

/**
 * Result dtype of combining two dtypes in arithmetic (NumPy-like, no f64): the wider float
 * wins (f16 with f32 is f32, f16 with an integer is f16), then i32 over u32 and bool.
 */
export function promoteTypes(a: DType, b: DType): DType {
  if (a === b) return a === "bool" ? "bool" : a;
  if (a === "f32" || b === "f32") return "f32";
  if (a === "f16" || b === "f16") return "f16";
  if (a === "bool") return b;
  if (b === "bool") return a;
  return "i32";
}

/** The dtype inferred for a JS value. */
export function dtypeOfArray(a: ArrayLike<number> | ArrayLike<boolean>): DType {
  if (a instanceof Float32Array) return "f32";
  if (a instanceof Float16Array) return "f16";
  if (a instanceof Int32Array) return "i32";
  if (a instanceof Uint32Array) return "u32";
  if (a instanceof Uint8Array) return "bool";
  return "f32";
}
