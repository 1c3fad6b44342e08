/** Float64 references of logsumexp and (log-)softmax, shared by the reduction and softmax tests. */

/** `log(sum(exp(v)))`, shifted by the maximum. */
export const refLse = (v: number[]): number => {
  const m = Math.max(...v);
  return m + Math.log(v.reduce((a, x) => a + Math.exp(x - m), 0));
};

/** Softmax (or log-softmax) of `data` (row-major `shape`) along `axis`. */
export function refSoftmax(data: ArrayLike<number>, shape: number[], axis: number, log: boolean) {
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const n = shape[axis];
  const out = new Float64Array(data.length);
  for (let base = 0; base < data.length; base += n * inner) {
    for (let k = 0; k < inner; k++) {
      const idx = Array.from({ length: n }, (_, j) => base + j * inner + k);
      const v = idx.map((i) => data[i]);
      const lse = refLse(v);
      idx.forEach((i, j) => (out[i] = log ? v[j] - lse : Math.exp(v[j] - lse)));
    }
  }
  return out;
}
