/**
 * The WGSL frame the per-row block-sparse kernels share: geometry, bindings, constants, the
 * prologue that maps a workgroup to its query block and rows, the tile walks, and the shader
 * skeletons the forward, dq and dk/dv kernels fill in.
 * @module
 */
import type { BlockSparseSpec, PatternSpec } from "../specs/block_sparse.ts";
import { floatOf, load, storeHelpers } from "./half_io.ts";

export const MAX_ROWS = 64;
/** Floats of one shared operand chunk: two of them fit in 16 KiB. */
export const SHARED = 2048;

/** Workgroups along x for `nBlocks` blocks of `blockSize` rows (at most 65535 per dispatch). */
export function blockSparseWorkgroups(nBlocks: number, blockSize: number): number {
  return nBlocks * Math.ceil(blockSize / Math.min(MAX_ROWS, blockSize));
}

/** Threads per workgroup, workgroups per block and rows per shared chunk for `spec`. */
export function geometry(s: BlockSparseSpec) {
  const w = Math.min(MAX_ROWS, s.layout.blockSize);
  return {
    w,
    wpb: Math.ceil(s.layout.blockSize / w),
    kc: Math.max(1, Math.min(32, Math.floor(SHARED / s.d))),
  };
}

/** WGSL `allowed(i, j)`: the causal pattern predicate (`patternAllows` on the CPU). */
export function allowedWgsl(p: PatternSpec): string {
  const fixed = p.kind === "fixed";
  const terms: string[] = [];
  if (p.part !== "b") terms.push(fixed ? "i / p.l == j / p.l" : "i - j < p.l");
  if (p.part !== "a") terms.push(fixed ? "j % p.l >= p.l - p.c" : "(i - j) % p.l == 0u");
  return `fn allowed(i: u32, j: u32) -> bool {
  if (j > i) { return false; }
  return ${terms.join(" || ")};
}`;
}

export const HEADER =
  `struct P { n: u32, bs: u32, heads: u32, l: u32, c: u32, wpb: u32, groups: u32, pad: u32 }`;

/** WGSL element type of binding `name`: tile lists and the mask u32, statistics f32. */
function typeOf(name: string, half: boolean | undefined): string {
  if (name.endsWith("Ptr") || name === "list" || name === "keep") return "u32";
  return name === "lse" || name === "delta" ? "f32" : floatOf(half);
}

/**
 * Binding declarations in order (the operands and their outputs f16 under `half`, with the
 * rounding store's helper); the uniform comes last.
 */
export function bindings(names: readonly [string, "r" | "w"][], half?: boolean): string {
  return storeHelpers(half) + "\n" +
    names.map(([name, mode], b) =>
      `@group(0) @binding(${b}) var<storage, ${mode === "r" ? "read" : "read_write"}> ${name}: ` +
      `array<${typeOf(name, half)}>;`
    ).join("\n") + `\n@group(0) @binding(${names.length}) var<uniform> p: P;`;
}

/** Params shared by the three kernels. */
export function params(s: BlockSparseSpec, wpb: number): Uint32Array {
  const { n, heads, groups, pattern: pt, layout } = s;
  return new Uint32Array([n, layout.blockSize, heads, pt.stride, pt.c, wpb, groups, 0]);
}

/** The common prologue: which sequence, block and row this thread serves. */
export const PROLOGUE = `
  let g = wid.y + wid.z * 65535u;
  if (g >= p.groups) { return; }
  let blk = wid.x / p.wpb;
  let r = (wid.x % p.wpb) * W + lid.x;
  let row = blk * p.bs + r;
  let base = g * p.n;
  let mrow = (g / p.heads) * p.n;`;

/**
 * WGSL: walks this block's tile list (`rowPtr`, `list`), the other side's rows of each tile
 * in chunks of `KC` from `c0` (`cnt` rows): `stage` copies a chunk into workgroup memory
 * between barriers, then `each` runs for live rows.
 */
export function walkTiles(stage: string, each: string): string {
  return `  let t1 = rowPtr[blk + 1u];
  for (var t = rowPtr[blk]; t < t1; t++) {
    let s0 = list[t] * p.bs;
    let s1 = min(s0 + p.bs, p.n);
    for (var c0 = s0; c0 < s1; c0 += KC) {
      let cnt = min(KC, s1 - c0);
      workgroupBarrier();${stage}
      workgroupBarrier();
      if (live) {${each}
      }
    }
  }`;
}

/**
 * WGSL: for query row `i`, every allowed key `j` of its block's row list, with the keys and
 * values staged through shared memory (`ks`, `vs`); `body` runs per key (`jj` is its row in
 * the chunk).
 */
export function rowTiles(mask: boolean, body: string, half?: boolean): string {
  return walkTiles(
    `
      for (var e = lid.x; e < cnt * D; e += W) {
        ks[e] = ${load(half, "k[(base + c0) * D + e]")};
        vs[e] = ${load(half, "v[(base + c0) * D + e]")};
      }`,
    `
        for (var jj = 0u; jj < cnt; jj++) {
          let j = c0 + jj;
          if (!allowed(i, j)${
      mask ? " || keep[mrow + j] == 0u" : ""
    }) { continue; }${body}        }`,
  );
}

export const ARGS =
  `@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>`;

export function consts(s: BlockSparseSpec): string {
  const { w, kc } = geometry(s);
  return `const D = ${s.d}u;\nconst W = ${w}u;\nconst KC = ${kc}u;`;
}

/**
 * A kernel's WGSL: the bindings (`inputs`, then `keep` when `mask`, then the `outputs`), the
 * constants, the workgroup arrays `shared` and the pattern, around `main`, which runs `body`
 * after the prologue.
 */
export function shader(
  s: BlockSparseSpec,
  inputs: readonly string[],
  mask: boolean,
  outputs: readonly string[],
  shared: string,
  body: string,
): string {
  const names: [string, "r" | "w"][] = [
    ...inputs.map((n): [string, "r"] => [n, "r"]),
    ...(mask ? [["keep", "r"] as [string, "r"]] : []),
    ...outputs.map((n): [string, "w"] => [n, "w"]),
  ];
  return `${HEADER}
${bindings(names, s.half)}
${consts(s)}
${shared}
${allowedWgsl(s.pattern)}
@compute @workgroup_size(W)
fn main(${ARGS}) {
  ${PROLOGUE}
${body}
}`;
}

/** A kernel with one thread per query row `i`, its keys and values staged in `ks`, `vs`. */
export function queryRowShader(
  s: BlockSparseSpec,
  inputs: readonly string[],
  mask: boolean,
  outputs: readonly string[],
  body: string,
): string {
  const { kc } = geometry(s);
  const shared = `var<workgroup> ks: array<f32, ${kc * s.d}>;
var<workgroup> vs: array<f32, ${kc * s.d}>;`;
  return shader(
    s,
    inputs,
    mask,
    outputs,
    shared,
    `  let i = row;
  let live = r < p.bs && i < p.n;
${body}`,
  );
}
