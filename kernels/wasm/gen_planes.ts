/**
 * Plane drivers of the elementwise row kernels: `<row>_2d` runs the row kernel `<row>` (see
 * `module.ts`) over `count` consecutive output rows of `len`, moving each input by its own
 * byte stride between rows. A short innermost dimension (a head of 16 in a transposing copy,
 * a broadcast row) then costs one call from JavaScript per plane instead of one per row.
 * - binary kinds `vv`, `vs`, `sv`: `(a, b, o, len, count, sa2, sb2)`;
 * - binary `g`: `(a, sa, b, sb, o, len, count, sa2, sb2)`;
 * - unary `v`: `(a, o, len, count, sa2)`; unary `g`: `(a, sa, o, len, count, sa2)`.
 * @module
 */
import { I32, type ModuleBuilder } from "./emit.ts";

/**
 * Adds the plane driver of every row kernel of these ops (which must already exist);
 * `outBytes` gives the bytes of an op's output element (the comparisons write bool bytes).
 */
export function planeDrivers(
  m: ModuleBuilder,
  binaryOps: readonly string[],
  unaryOps: readonly string[],
  outBytes: (op: string) => number = () => 4,
): void {
  for (const op of binaryOps) {
    const bytes = outBytes(op);
    for (const kind of ["vv", "vs", "sv"]) driver(m, `${op}_${kind}`, true, false, bytes);
    driver(m, `${op}_g`, true, true, bytes);
  }
  for (const op of unaryOps) {
    driver(m, `${op}_v`, false, false, outBytes(op));
    driver(m, `${op}_g`, false, true, outBytes(op));
  }
}

function driver(
  m: ModuleBuilder,
  row: string,
  binary: boolean,
  strided: boolean,
  outBytes: number,
): void {
  const index = m.index(row);
  // Parameter order: a, [sa], [b, [sb]], o, len, count, sa2, [sb2].
  const names = [
    "a",
    ...(strided ? ["sa"] : []),
    ...(binary ? ["b", ...(strided ? ["sb"] : [])] : []),
    "o",
    "len",
    "count",
    "sa2",
    ...(binary ? ["sb2"] : []),
  ];
  const f = m.func(`${row}_2d`, names.map(() => I32));
  const p = Object.fromEntries(names.map((n, i) => [n, i]));
  const rowBytes = f.local(I32);
  f.get(p.len).i32(outBytes).mul().set(rowBytes);
  f.block().loop().get(p.count).i32(1).ltS().brIf(1);
  const args = names.slice(0, names.indexOf("len") + 1);
  for (const n of args) f.get(p[n]);
  f.call(index);
  f.get(p.a).get(p.sa2).add().set(p.a);
  if (binary) f.get(p.b).get(p.sb2).add().set(p.b);
  f.get(p.o).get(rowBytes).add().set(p.o);
  f.inc(p.count, -1).br(0).end().end();
}
