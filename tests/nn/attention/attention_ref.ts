/**
 * Float64 JS references for the attention tests: full/windowed attention and the whole LSH
 * algorithm (given its bucket ids), written independently of the library's compositions.
 */

/** Attention weights as flat row-major arrays. */
export interface RefParams {
  wq?: Float32Array;
  wk?: Float32Array;
  wqk?: Float32Array;
  wv: Float32Array;
  wo: Float32Array;
}

/** Geometry and masks of a reference call. */
export interface RefConfig {
  b: number;
  n: number;
  dModel: number;
  heads: number;
  dHead: number;
  sharedQK: boolean;
  causal: boolean;
  /** With `sharedQK`, a query's own logit is `-1e5` (default true). */
  selfMask?: boolean;
  /** `[b][n]` true = real token. */
  mask?: boolean[][];
  /** Extra structural restriction `(i, j) -> allowed`. */
  window?: (i: number, j: number) => boolean;
}

type Vec = number[];

/** `x[bi, t, :] @ w[:, cols]` for one head; padded positions' `x` counts as 0, as in the layers. */
function project(x: Float32Array, w: Float32Array, c: RefConfig, bi: number, h: number): Vec[] {
  const inner = c.heads * c.dHead;
  return Array.from({ length: c.n }, (_, t) =>
    Array.from({ length: c.dHead }, (_, e) => {
      let s = 0;
      if (c.mask && !c.mask[bi][t]) return s;
      for (let d = 0; d < c.dModel; d++) {
        s += x[(bi * c.n + t) * c.dModel + d] * w[d * inner + h * c.dHead + e];
      }
      return s;
    }));
}

/** Shared-QK key: `v / sqrt(mean(v^2) + 1e-6) / sqrt(dk)`. */
export function unitKey(v: Vec): Vec {
  const ms = v.reduce((a, x) => a + x * x, 0) / v.length;
  const s = 1 / Math.sqrt(ms + 1e-6) / Math.sqrt(v.length);
  return v.map((x) => x * s);
}

const dot = (a: Vec, b: Vec) => a.reduce((s, x, i) => s + x * b[i], 0);

/** Per-head `q, k, v` (keys scaled as the layer does). */
export function headVectors(x: Float32Array, p: RefParams, c: RefConfig, bi: number, h: number) {
  const q = project(x, c.sharedQK ? p.wqk! : p.wq!, c, bi, h);
  const k = c.sharedQK
    ? q.map(unitKey)
    : project(x, p.wk!, c, bi, h).map((r) => r.map((v) => v / Math.sqrt(c.dHead)));
  const v = project(x, p.wv, c, bi, h);
  return { q, k, v };
}

/** Softmax attention of one query over `(key, value, allowed, isSelf)` entries: `[o, lse]`. */
export function attendOne(
  q: Vec,
  keys: { k: Vec; v: Vec; allowed: boolean; self: boolean; bias?: number }[],
): [Vec, number] {
  const logits = keys.map((e) => {
    let l = e.allowed ? dot(q, e.k) : -1e9;
    if (e.self) l = -1e5;
    return l + (e.bias ?? 0);
  });
  const m = Math.max(...logits);
  const ex = logits.map((l) => Math.exp(l - m));
  const z = ex.reduce((a, b) => a + b, 0);
  const o = new Array<number>(q.length).fill(0);
  keys.forEach((e, j) => e.v.forEach((vv, d) => (o[d] += (ex[j] / z) * vv)));
  return [o, m + Math.log(z)];
}

/** Merges per-head outputs `[b][h][n][dk]` and applies `wo`: flat `[b, n, dModel]`. */
export function outProject(o: Vec[][][], p: RefParams, c: RefConfig): Float64Array {
  const inner = c.heads * c.dHead;
  const out = new Float64Array(c.b * c.n * c.dModel);
  for (let bi = 0; bi < c.b; bi++) {
    for (let t = 0; t < c.n; t++) {
      for (let d = 0; d < c.dModel; d++) {
        let s = 0;
        for (let h = 0; h < c.heads; h++) {
          for (let e = 0; e < c.dHead; e++) {
            s += o[bi][h][t][e] * p.wo[(h * c.dHead + e) * c.dModel + d];
          }
        }
        out[(bi * c.n + t) * c.dModel + d] = s;
      }
    }
  }
  void inner;
  return out;
}

/** Full (optionally windowed) multi-head attention. */
export function refAttention(x: Float32Array, p: RefParams, c: RefConfig): Float64Array {
  const o = Array.from({ length: c.b }, (_, bi) =>
    Array.from({ length: c.heads }, (_, h) => {
      const { q, k, v } = headVectors(x, p, c, bi, h);
      return q.map((qi, i) =>
        attendOne(
          qi,
          k.map((kj, j) => ({
            k: kj,
            v: v[j],
            allowed: (!c.causal || j <= i) && (c.mask?.[bi][j] ?? true) &&
              (c.window?.(i, j) ?? true),
            self: c.sharedQK && (c.selfMask ?? true) && i === j,
          })),
        )[0]
      );
    }));
  return outProject(o, p, c);
}

/**
 * The LSH algorithm of docs/algorithms.md#lsh-attention given bucket ids `[b][h][r][lp]` (padding
 * bucket included): stable sort by `(round, bucket, position)`, chunks with look-around (wrapping),
 * masks by original position, logsumexp combination of rounds.
 */
export function refLsh(
  x: Float32Array,
  p: RefParams,
  c: RefConfig,
  buckets: number[][][][],
  { chunkLen, offsets, dedup = false }: { chunkLen: number; offsets: number[]; dedup?: boolean },
): Float64Array {
  const nh = buckets[0][0].length, lp = buckets[0][0][0].length;
  const nTot = nh * lp, nc = nTot / chunkLen;
  const o = Array.from({ length: c.b }, (_, bi) =>
    Array.from({ length: c.heads }, (_, h) => {
      const { q, k, v } = headVectors(x, p, c, bi, h);
      const valid = (t: number) => t < c.n && (c.mask?.[bi][t] ?? true);
      const key = (j: number) =>
        Math.floor(j / lp) * 1e6 + buckets[bi][h][Math.floor(j / lp)][j % lp];
      const order = Array.from({ length: nTot }, (_, j) => j).sort((a, b2) =>
        key(a) - key(b2) || a - b2
      );
      const chunkOfEntry = new Array<number>(nTot);
      order.forEach((j, s) => (chunkOfEntry[j] = Math.floor(s / chunkLen)));
      const results = new Array<[Vec, number]>(nTot);
      order.forEach((j, s) => {
        const pi = j % lp, c0 = Math.floor(s / chunkLen);
        if (pi >= c.n) return (results[j] = [new Array(c.dHead).fill(0), -Infinity]);
        const entries = offsets.flatMap((d) => {
          const kc = (((c0 + d) % nc) + nc) % nc;
          return order.slice(kc * chunkLen, (kc + 1) * chunkLen).map((jj) => {
            const pj = jj % lp;
            let bias = 0;
            if (dedup) {
              let count = 0;
              for (let r = 0; r < nh; r++) {
                const qc = chunkOfEntry[r * lp + pi], kcr = chunkOfEntry[r * lp + pj];
                for (const dd of offsets) if (qc === (((kcr - dd) % nc) + nc) % nc) count++;
              }
              bias = -Math.log(Math.max(count, 1));
            }
            return {
              k: pj < c.n ? k[pj] : new Array(c.dHead).fill(0),
              v: pj < c.n ? v[pj] : new Array(c.dHead).fill(0),
              allowed: valid(pj) && (!c.causal || pj <= pi),
              self: pj === pi,
              bias,
            };
          });
        });
        results[j] = attendOne(q[pi], entries);
      });
      return Array.from({ length: c.n }, (_, t) => {
        const rounds = Array.from({ length: nh }, (_, r) => results[r * lp + t]);
        const m = Math.max(...rounds.map((r) => r[1]));
        const w = rounds.map((r) => Math.exp(r[1] - m));
        const z = w.reduce((a, b2) => a + b2, 0);
        const out = new Array<number>(c.dHead).fill(0);
        rounds.forEach((r, ri) => r[0].forEach((val, d) => (out[d] += (w[ri] / z) * val)));
        return out;
      });
    }));
  return outProject(o, p, c);
}

/** `argmax([xR ; -xR])` per factor, mixed radix; also the smallest winning margin seen. */
export function refHash(
  vec: Vec,
  rot: (d: number, r: number, k: number) => number,
  r: number,
  factors: number[],
): { bucket: number; margin: number } {
  let bucket = 0, radix = 1, at = 0, margin = Infinity;
  for (const f of factors) {
    const vals: number[] = [];
    for (let kk = 0; kk < f / 2; kk++) {
      vals.push(vec.reduce((s, x, d) => s + x * rot(d, r, at + kk), 0));
    }
    const all = [...vals, ...vals.map((v) => -v)];
    let best = 0;
    all.forEach((v, i) => v > all[best] && (best = i));
    const sorted = [...all].sort((a, b) => b - a);
    margin = Math.min(margin, sorted[0] - sorted[1]);
    bucket += radix * best;
    radix *= f;
    at += f / 2;
  }
  return { bucket, margin };
}
