/**
 * WGSL pieces shared by the per-row chunk-attention kernels (`chunk_attention.ts`) and the
 * tiled ones (`chunk_attention_tiled.ts`): the bindings and the key-slot addressing of the
 * header, and the masking rule that gives a logit and whether the gradient flows.
 * @module
 */
import type { ChunkAttnSpec } from "../specs/chunk_attention.ts";
import { floatOf, storeHelpers } from "./half_io.ts";

/** A float as a WGSL literal that reads back to the same f32. */
const f32 = (x: number): string => {
  const s = Math.fround(x).toExponential(9);
  return s.includes("e") ? s.replace("e+", "e") : s;
};

/**
 * Kernel header: read-only inputs (q, k, v, qpos, kcode, bias when the spec has one, then
 * `extra`; q, k and v f16 under `half`, with the rounding store's helper), the `outputs`, the uniform `p` of struct `struct` (a WGSL declaration of `P`), the
 * `consts` lines, and `offsetOf`, `keyRow` and `keySrc` (the key-slot addressing).
 */
export function chunkAttnHeader(
  s: ChunkAttnSpec,
  outputs: string[],
  extra: string[],
  struct: string,
  consts: string[],
): string {
  const F = floatOf(s.half);
  const ins = [`q: array<${F}>`, `k: array<${F}>`, `v: array<${F}>`, "qpos: array<i32>"]
    .concat(["kcode: array<i32>"], s.hasBias ? ["bias: array<f32>"] : [], extra);
  const lines = [storeHelpers(s.half)];
  ins.forEach((d, b) => lines.push(`@group(0) @binding(${b}) var<storage, read> ${d};`));
  outputs.forEach((d, i) =>
    lines.push(`@group(0) @binding(${ins.length + i}) var<storage, read_write> ${d};`)
  );
  // Offset of key-slot block b (the look-around), compiled in as a chain of selects.
  const offsetOf = s.offsets.slice(0, -1).map((o, b) => `if (b == ${b}u) { return ${o}; }`)
    .join(" ") + ` return ${s.offsets.at(-1)};`;
  lines.push(
    struct,
    `@group(0) @binding(${ins.length + outputs.length}) var<uniform> p: P;`,
    ...consts,
    `fn offsetOf(b: u32) -> i32 { ${offsetOf} }`,
    // The row of k/v that block b of row r reads, and the row whose block b reads row r.
    `fn keyRow(r: u32, b: u32, sign: i32) -> u32 {
  let ch = i32(p.chunks);
  let c = i32(r % p.chunks);
  return r - u32(c) + u32((((c + sign * offsetOf(b)) % ch) + ch) % ch);
}`,
    "fn keySrc(r: u32, j: u32) -> u32 { return keyRow(r, j / p.kc, 1) * p.kc + j % p.kc; }",
  );
  return lines.join("\n");
}

/**
 * WGSL statements of the masking rule: `kp` (the key's position, from `kcode[kcodeAt]`),
 * `flows` (whether the gradient reaches `q . k`) and `l` (the logit: the dot product of
 * `dotTerm("d")` over `d`, the mask or self value, plus `bias[biasAt]` when the spec has a
 * bias), for a query at position `qp`.
 */
export function logitWgsl(
  s: ChunkAttnSpec,
  kcodeAt: string,
  dotTerm: (d: string) => string,
  biasAt: string,
): string {
  return `let kc = kcode[${kcodeAt}];
  let kp = select(-kc - 1, kc, kc >= 0);
  var flows = kc >= 0 ${s.causal ? "&& kp <= qp" : ""};
  var l = ${f32(s.maskValue)};
  if (flows) {
    var dot = 0.0;
    for (var d = 0u; d < D; d++) { dot += ${dotTerm("d")}; }
    l = dot;
  }
  ${s.selfMask ? `if (kp == qp) { l = ${f32(s.selfValue)}; flows = false; }` : ""}
  ${s.hasBias ? `l += bias[${biasAt}];` : ""}`;
}

/** Extra inputs of the backward kernels: the forward's `(max, log sum)`, `dout` and `delta`. */
export const gradIn = (s: ChunkAttnSpec): string[] => [
  "stat: array<f32>",
  `go: array<${floatOf(s.half)}>`,
  "delta: array<f32>",
];

/** Stores query `qi`'s logsumexp `m + log(sum)` in `lse` and `(m, log sum)` in `stat`. */
export const storeStats = (sum: string): string =>
  `let ls = log(${sum});
  lse[qi] = m + ls;
  stat[2u * qi] = m;
  stat[2u * qi + 1u] = ls;`;
