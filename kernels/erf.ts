/**
 * The error function in float64: the CPU kernel's `erf`, and host-side math (sampler bounds);
 * `erfc64` for the fused GELU's reference, whose negative tail needs `erfc` to relative accuracy
 * where `1 - erf` would cancel to 0.
 * @module
 */

/** erf(x) in float64 (Taylor series near 0, continued fraction for erfc in the tails). */
export function erf64(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = x, sum = x;
    const x2 = x * x;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  if (ax > 6) return Math.sign(x);
  return Math.sign(x) * (1 - erfcTail(ax));
}

/** erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))), for x >= 2.5. */
function erfcTail(x: number): number {
  let f = x;
  for (let k = 60; k >= 1; k--) f = x + (k / 2) / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

/** erfc(x) = 1 - erf(x) in float64, to relative accuracy in the upper tail too (erfc(inf) = 0). */
export function erfc64(x: number): number {
  if (Number.isNaN(x)) return NaN;
  return x < 2.5 ? 1 - erf64(x) : x === Infinity ? 0 : erfcTail(x);
}
