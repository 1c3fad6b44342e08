/**
 * Which pairs a factorised block-sparse pattern allows, listed without testing every pair:
 * the keys of one query (or the queries of one key) inside one block, ascending, as the
 * predicate of `patternAllows` (`kernels/cpu/block_sparse.ts`) would pick them. Component `a`
 * is one interval; component `b` is an arithmetic progression (strided) or runs of `c`
 * summary positions (fixed), merged with it.
 * @module
 */

/** A pattern as numbers: `kind` 0 strided, 1 fixed; `part` 0 `a`, 1 `b`, 2 union. */
export interface PatternCode {
  /** 0 strided, 1 fixed. */
  readonly kind: number;
  /** The stride `l`. */
  readonly l: number;
  /** Summary positions per block (fixed). */
  readonly c: number;
  /** 0 `a`, 1 `b`, 2 both. */
  readonly part: number;
}

/**
 * Appends to `out` from `at` the positions `y` in `[s, e)` paired with `x`, ascending, and
 * returns the new length: with `keys` the keys `y <= x` of query `x`, else the queries
 * `y >= x` of key `x`.
 */
export function pairedIn(
  p: PatternCode,
  x: number,
  keys: boolean,
  s: number,
  e: number,
  out: Int32Array,
  at: number,
): number {
  if (keys) e = Math.min(e, x + 1);
  else s = Math.max(s, x);
  if (s >= e) return at;
  const { l, c } = p;
  const fixed = p.kind === 1;
  // Component a: [a0, a1) clipped to [s, e).
  let a0 = e, a1 = e;
  if (p.part !== 1) {
    const lo = keys ? (fixed ? x - (x % l) : x - l + 1) : x;
    const hi = keys ? x + 1 : (fixed ? x - (x % l) + l : x + l);
    a0 = Math.max(s, lo);
    a1 = Math.min(e, hi);
    if (a0 >= a1) a0 = a1 = e;
  }
  const emitA = () => {
    for (let y = a0; y < a1; y++) out[at++] = y;
  };
  if (p.part === 0) {
    emitA();
    return at;
  }
  let aDone = false;
  const emit = (y: number) => {
    if (y >= a0 && !aDone) {
      emitA();
      aDone = true;
    }
    if (y < a0 || y >= a1) out[at++] = y;
  };
  if (!fixed) {
    // Strided b: y congruent to x modulo l.
    for (let y = s + ((((x - s) % l) + l) % l); y < e; y += l) emit(y);
  } else if (keys) {
    // Fixed b, keys: the last c positions of every block.
    for (let base = s - (s % l); base < e; base += l) {
      for (let y = Math.max(s, base + l - c); y < Math.min(e, base + l); y++) emit(y);
    }
  } else if (x % l >= l - c) {
    // Fixed b, queries: every later query sees a summary key.
    for (let y = s; y < e; y++) emit(y);
  }
  if (!aDone) emitA();
  return at;
}

/**
 * Calls `f(start, slot, count, step)` for each run of `list[0, n)` in arithmetic progression
 * (`count` values from `start` by `step`, at `slot` in the list), taken greedily: a strided
 * pattern's long-range keys make one run, its local window another.
 */
export function eachRun(
  list: Int32Array,
  n: number,
  f: (start: number, slot: number, count: number, step: number) => void,
): void {
  for (let s = 0; s < n;) {
    const step = s + 1 < n ? list[s + 1] - list[s] : 1;
    let e = s + 1;
    while (e < n && list[e] === list[e - 1] + step) e++;
    f(list[s], s, e - s, step);
    s = e;
  }
}
