/**
 * A small WebAssembly binary emitter: enough of the module format (types, one imported shared
 * memory, functions, exports) and of the instruction set (i32/f32 scalar, 128-bit SIMD and
 * relaxed-SIMD `f32x4.relaxed_madd`) to write the wasm backend's kernels from TypeScript.
 *
 * A function body is built with {@linkcode FuncBuilder}: one method per opcode, appended in
 * stack-machine order. {@linkcode ModuleBuilder.build} returns the module's bytes.
 * @module
 */

/** Value types. */
export const I32 = 0x7f;
/** 32-bit float. */
export const F32 = 0x7d;
/** 128-bit SIMD vector. */
export const V128 = 0x7b;
/** A value type byte. */
export type ValType = typeof I32 | typeof F32 | typeof V128;

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of a 32-bit integer. */
export function sleb(n: number): number[] {
  const out: number[] = [];
  n |= 0;
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function str(s: string): number[] {
  const b = new TextEncoder().encode(s);
  return [...uleb(b.length), ...b];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

/** The lane-wise f32x4 operations of {@linkcode FuncBuilder.f32x4}: binary, then unary. */
type F32x4Binary = "add" | "sub" | "mul" | "div" | "min" | "max" | "pmin" | "pmax";
type F32x4Unary = "abs" | "neg" | "sqrt" | "floor" | "ceil" | "nearest";

/** SIMD opcodes used here (after the 0xfd prefix). */
const SIMD = {
  load: 0,
  load32Splat: 9,
  store: 11,
  const: 12,
  i32x4Splat: 17,
  f32x4Splat: 19,
  f32x4ExtractLane: 31,
  i32x4Eq: 55,
  i32x4GtS: 59,
  v128Not: 77,
  v128And: 78,
  v128Or: 80,
  v128Xor: 81,
  v128Bitselect: 82,
  v128AnyTrue: 83,
  f32x4Lt: 67,
  f32x4Ceil: 103,
  f32x4Floor: 104,
  f32x4Nearest: 106,
  i32x4Shl: 171,
  i32x4ShrS: 172,
  i32x4Add: 174,
  i32x4Abs: 160,
  i32x4Neg: 161,
  i32x4Sub: 177,
  i32x4Mul: 181,
  i32x4MinS: 182,
  i32x4MinU: 183,
  i32x4MaxS: 184,
  i32x4MaxU: 185,
  f32x4Abs: 224,
  f32x4Neg: 225,
  f32x4Sqrt: 227,
  f32x4Add: 228,
  f32x4Sub: 229,
  f32x4Mul: 230,
  f32x4Div: 231,
  f32x4Min: 232,
  f32x4Max: 233,
  f32x4Pmin: 234,
  f32x4Pmax: 235,
  i32x4TruncSatF32x4S: 248,
  f32x4ConvertI32x4S: 250,
  f32x4RelaxedMadd: 0x105,
} as const;

/** Appends the instructions of one function body; locals are allocated with {@linkcode local}. */
export class FuncBuilder {
  readonly code: number[] = [];
  readonly #locals: ValType[] = [];
  constructor(readonly params: readonly ValType[], readonly results: readonly ValType[]) {}

  /** A new local of type `t`; returns its index. */
  local(t: ValType): number {
    this.#locals.push(t);
    return this.params.length + this.#locals.length - 1;
  }
  /** Raw bytes. */
  op(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }
  #simd(op: number, ...imm: number[]): this {
    return this.op(0xfd, ...uleb(op), ...imm);
  }
  get(i: number): this {
    return this.op(0x20, ...uleb(i));
  }
  set(i: number): this {
    return this.op(0x21, ...uleb(i));
  }
  tee(i: number): this {
    return this.op(0x22, ...uleb(i));
  }
  i32(v: number): this {
    return this.op(0x41, ...sleb(v));
  }
  f32(v: number): this {
    const b = new Uint8Array(new Float32Array([v]).buffer);
    return this.op(0x43, ...b);
  }
  add(): this {
    return this.op(0x6a);
  }
  sub(): this {
    return this.op(0x6b);
  }
  mul(): this {
    return this.op(0x6c);
  }
  shl(): this {
    return this.op(0x74);
  }
  ltS(): this {
    return this.op(0x48);
  }
  geS(): this {
    return this.op(0x4e);
  }
  eqz(): this {
    return this.op(0x45);
  }
  /** `local[i] += c` (i32). */
  inc(i: number, c: number): this {
    return this.get(i).i32(c).add().set(i);
  }
  i32Load(offset = 0): this {
    return this.op(0x28, 2, ...uleb(offset));
  }
  i32Store(offset = 0): this {
    return this.op(0x36, 2, ...uleb(offset));
  }
  /** i32 `a < b` as unsigned (a negative `a` is larger than any non-negative `b`). */
  ltU(): this {
    return this.op(0x49);
  }
  f32Load(offset = 0): this {
    return this.op(0x2a, 2, ...uleb(offset));
  }
  f32Store(offset = 0): this {
    return this.op(0x38, 2, ...uleb(offset));
  }
  f32Add(): this {
    return this.op(0x92);
  }
  f32Sub(): this {
    return this.op(0x93);
  }
  f32Mul(): this {
    return this.op(0x94);
  }
  f32Div(): this {
    return this.op(0x95);
  }
  f32Min(): this {
    return this.op(0x96);
  }
  f32Max(): this {
    return this.op(0x97);
  }
  /** `block` with no result; `end()` closes it. */
  block(): this {
    return this.op(0x02, 0x40);
  }
  loop(): this {
    return this.op(0x03, 0x40);
  }
  /** `if` with no result, or with one result of type `t`. */
  if(t?: ValType): this {
    return this.op(0x04, t ?? 0x40);
  }
  else(): this {
    return this.op(0x05);
  }
  end(): this {
    return this.op(0x0b);
  }
  br(depth: number): this {
    return this.op(0x0c, ...uleb(depth));
  }
  /** Calls function `index` of the module (see {@linkcode ModuleBuilder.index}). */
  call(index: number): this {
    return this.op(0x10, ...uleb(index));
  }
  brIf(depth: number): this {
    return this.op(0x0d, ...uleb(depth));
  }
  v128Load(offset = 0): this {
    return this.#simd(SIMD.load, 4, ...uleb(offset));
  }
  v128Load32Splat(offset = 0): this {
    return this.#simd(SIMD.load32Splat, 2, ...uleb(offset));
  }
  v128Store(offset = 0): this {
    return this.#simd(SIMD.store, 4, ...uleb(offset));
  }
  /** A v128 constant with four equal f32 lanes. */
  f32x4Const(v: number): this {
    const b = new Uint8Array(new Float32Array([v, v, v, v]).buffer);
    return this.#simd(SIMD.const, ...b);
  }
  /** A v128 constant with four equal i32 lanes. */
  i32x4Const(v: number): this {
    const b = new Uint8Array(new Int32Array([v, v, v, v]).buffer);
    return this.#simd(SIMD.const, ...b);
  }
  f32x4Splat(): this {
    return this.#simd(SIMD.f32x4Splat);
  }
  i32x4Splat(): this {
    return this.#simd(SIMD.i32x4Splat);
  }
  /** Lane-wise `a == b` on i32 lanes: all ones where equal. */
  i32x4Eq(): this {
    return this.#simd(SIMD.i32x4Eq);
  }
  /** Lane-wise signed `a > b` on i32 lanes: all ones where greater. */
  i32x4GtS(): this {
    return this.#simd(SIMD.i32x4GtS);
  }
  /** Arithmetic right shift of each i32 lane by the i32 on top of the stack. */
  i32x4ShrS(): this {
    return this.#simd(SIMD.i32x4ShrS);
  }
  /** A bitwise v128 operation by name. */
  v128(op: "not" | "and" | "or" | "xor"): this {
    return this.#simd(SIMD[`v128${op[0].toUpperCase()}${op.slice(1)}` as "v128Not"]);
  }
  /** Lane-wise `a < b` of two f32x4 (all ones where true; false for NaN). */
  f32x4Lt(): this {
    return this.#simd(SIMD.f32x4Lt);
  }
  /** i32 1 when any bit of the v128 is set. */
  v128AnyTrue(): this {
    return this.#simd(SIMD.v128AnyTrue);
  }
  /** `(a & c) | (b & ~c)` on the stack `[a, b, c]`. */
  v128Bitselect(): this {
    return this.#simd(SIMD.v128Bitselect);
  }
  f32x4ExtractLane(lane: number): this {
    return this.#simd(SIMD.f32x4ExtractLane, lane);
  }
  /**
   * A lane-wise f32x4 operation by name. `pmin`, `pmax` are `b < a ? b : a`, `a < b ? b : a`
   * (a NaN `a` passes): one x86 instruction, where `min`, `max` (NaN and -0 rules) take several.
   */
  f32x4(op: F32x4Binary | F32x4Unary): this {
    const name = `f32x4${op[0].toUpperCase()}${op.slice(1)}` as keyof typeof SIMD;
    return this.#simd(SIMD[name]);
  }
  i32x4Add(): this {
    return this.#simd(SIMD.i32x4Add);
  }
  /** A lane-wise i32x4 operation by name (`S`/`U`: signed or unsigned order). */
  i32x4(op: "add" | "sub" | "mul" | "minS" | "minU" | "maxS" | "maxU" | "abs" | "neg"): this {
    const name = `i32x4${op[0].toUpperCase()}${op.slice(1)}` as keyof typeof SIMD;
    return this.#simd(SIMD[name]);
  }
  i32x4Shl(): this {
    return this.#simd(SIMD.i32x4Shl);
  }
  i32x4TruncSatF32x4S(): this {
    return this.#simd(SIMD.i32x4TruncSatF32x4S);
  }
  f32x4ConvertI32x4S(): this {
    return this.#simd(SIMD.f32x4ConvertI32x4S);
  }
  /** `a * b + c` on the stack `[a, b, c]`: relaxed fused/unfused madd. */
  f32x4RelaxedMadd(): this {
    return this.#simd(SIMD.f32x4RelaxedMadd);
  }
  /** Body bytes: locals (run-length grouped) and code, with the final `end`. */
  body(): number[] {
    const groups: number[][] = [];
    for (const t of this.#locals) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    const locals = vec(groups.map(([n, t]) => [...uleb(n), t]));
    const bytes = [...locals, ...this.code, 0x0b];
    return [...uleb(bytes.length), ...bytes];
  }
}

/** `\0asm`, version 1. */
const MAGIC_AND_VERSION = [0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0];

/** A module of exported functions over one imported memory (`env.memory`). */
export class ModuleBuilder {
  readonly #funcs: { name: string; f: FuncBuilder }[] = [];
  /**
   * @param memory Limits of the imported memory, in 64 KiB pages; `shared` makes it a
   *   shared memory (which requires `maximum`).
   */
  constructor(readonly memory: { initial: number; maximum: number; shared: boolean }) {}

  /** Adds an exported function and returns its builder. */
  func(name: string, params: ValType[], results: ValType[] = []): FuncBuilder {
    const f = new FuncBuilder(params, results);
    this.#funcs.push({ name, f });
    return f;
  }

  /**
   * The index of the function added as `name`, for {@linkcode FuncBuilder.call} (functions
   * are numbered in the order they are added; the module imports none).
   */
  index(name: string): number {
    const i = this.#funcs.findIndex((x) => x.name === name);
    if (i < 0) throw new Error(`wasm module: no function "${name}"`);
    return i;
  }

  /** The module's binary. */
  build(): Uint8Array<ArrayBuffer> {
    const fs = this.#funcs;
    const types = fs.map((
      { f },
    ) => [0x60, ...vec(f.params.map((t) => [t])), ...vec(f.results.map((t) => [t]))]);
    const { initial, maximum, shared } = this.memory;
    const limits = [shared ? 0x03 : 0x01, ...uleb(initial), ...uleb(maximum)];
    const imports = vec([[...str("env"), ...str("memory"), 0x02, ...limits]]);
    const funcs = vec(fs.map((_, i) => uleb(i)));
    const exports = vec(fs.map(({ name }, i) => [...str(name), 0x00, ...uleb(i)]));
    const code = vec(fs.map(({ f }) => f.body()));
    return new Uint8Array([
      ...MAGIC_AND_VERSION,
      ...section(1, vec(types)),
      ...section(2, imports),
      ...section(3, funcs),
      ...section(7, exports),
      ...section(10, code),
    ]);
  }
}

let relaxed: boolean | undefined;

/** Whether this runtime accepts relaxed-SIMD `f32x4.relaxed_madd` (checked once). */
export function hasRelaxedSimd(): boolean {
  if (relaxed === undefined) {
    const m = new ModuleBuilder({ initial: 1, maximum: 1, shared: false });
    m.func("f", [], [V128]).f32x4Const(1).f32x4Const(2).f32x4Const(3).f32x4RelaxedMadd();
    relaxed = WebAssembly.validate(m.build());
  }
  return relaxed;
}
