/**
 * `permute_rows(o, x, ix, rows, n, inner, scatter)`: the LSH sort's gather (`scatter` 0:
 * `o[r, j, :] = x[r, ix[r, j], :]`) or scatter (1: `o[r, ix[r, j], :] = x[r, j, :]`) of runs
 * of `inner` 4-byte words, skipping indices outside `[0, n)`; `o` must be zeroed first. Runs
 * move 16 bytes at a time, then word by word, with integer loads and stores (bits unchanged).
 * @module
 */
import { I32, type ModuleBuilder } from "./emit.ts";

/** Adds `permute_rows` to the module. */
export function permuteRows(m: ModuleBuilder): void {
  const f = m.func("permute_rows", [I32, I32, I32, I32, I32, I32, I32]);
  const [o, x, ix, rows, n, inner, scatter] = [0, 1, 2, 3, 4, 5, 6];
  const [j, k, from, to, left, runBytes, rowBytes] = Array.from({ length: 7 }, () => f.local(I32));
  f.get(inner).i32(4).mul().set(runBytes);
  f.get(n).get(runBytes).mul().set(rowBytes);
  f.block().loop().get(rows).i32(1).ltS().brIf(1); // rows
  f.i32(0).set(j);
  f.block().loop().get(j).get(n).geS().brIf(1); // positions of the row
  f.get(ix).i32Load().tee(k).get(n).ltU().if();
  // from = x + (scatter ? j : k) * runBytes, to = o + (scatter ? k : j) * runBytes
  f.get(scatter).if(I32).get(j).else().get(k).end().get(runBytes).mul().get(x).add().set(from);
  f.get(scatter).if(I32).get(k).else().get(j).end().get(runBytes).mul().get(o).add().set(to);
  f.get(runBytes).set(left);
  f.block().loop().get(left).i32(16).ltS().brIf(1);
  f.get(to).get(from).v128Load().v128Store();
  f.inc(to, 16).inc(from, 16).inc(left, -16).br(0).end().end();
  f.block().loop().get(left).i32(4).ltS().brIf(1);
  f.get(to).get(from).i32Load().i32Store();
  f.inc(to, 4).inc(from, 4).inc(left, -4).br(0).end().end();
  f.end();
  f.inc(ix, 4).inc(j, 1).br(0).end().end();
  f.get(x).get(rowBytes).add().set(x).get(o).get(rowBytes).add().set(o);
  f.inc(rows, -1).br(0).end().end();
}
