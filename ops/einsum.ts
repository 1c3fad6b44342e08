/**
 * `einsum`: Einstein summation lowered to the existing ops. Repeated labels within an operand
 * take a diagonal (multiply by an identity mask, sum); labels no later operand or the output
 * needs are summed out early; each pair of operands is contracted by one batched `matmul`
 * (`[batch, free_a, contracted] @ [batch, contracted, free_b]`, transposes read in place where
 * the layout allows); the result is transposed into the output order. Everything is a
 * composition, so gradients come from those ops.
 * @module
 */
import { checkTensor } from "./validate.ts";
import { fmt, type Tensor } from "./tensor.ts";
import { mul } from "./binary.ts";
import { eye } from "./creation.ts";
import { matmul } from "./matmul.ts";
import { broadcastTo, reshape, transpose } from "./shape.ts";
import { sum } from "./reduce.ts";
import { scope } from "./scope.ts";

/** An operand during lowering: a tensor and one label per axis. */
interface Term {
  x: Tensor;
  labels: string[];
}

const LETTER = /^[a-zA-Z]$/;

/** Splits one operand's subscripts into labels, `...` kept as one entry. */
function tokens(spec: string, part: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < part.length; i++) {
    if (part.startsWith("...", i)) {
      if (out.includes("...")) {
        throw new RangeError(`einsum: "${spec}": "${part}" has two ellipses`);
      }
      out.push("...");
      i += 2;
    } else if (LETTER.test(part[i])) out.push(part[i]);
    else {
      throw new RangeError(
        `einsum: "${spec}": unexpected character ${JSON.stringify(part[i])}; subscripts are ` +
          'letters a-z, A-Z, "..." for broadcast axes, "," between operands and "->" once',
      );
    }
  }
  return out;
}

/** The ellipsis labels of a term with `e` broadcast axes (right-aligned among `total`). */
const ell = (e: number, total: number) => Array.from({ length: e }, (_, i) => `.${total - e + i}`);

function parse(spec: string, xs: readonly Tensor[]) {
  const s = spec.replace(/\s+/g, "");
  const arrow = s.indexOf("->");
  if (arrow !== s.lastIndexOf("->")) throw new RangeError(`einsum: "${spec}" has two "->"`);
  const lhs = (arrow < 0 ? s : s.slice(0, arrow)).split(",");
  if (lhs.length !== xs.length) {
    throw new RangeError(
      `einsum: "${spec}" names ${lhs.length} operand(s), got ${xs.length} tensor(s)`,
    );
  }
  const raw = lhs.map((p) => tokens(spec, p));
  const ellRank = raw.map((t, i) => {
    const named = t.filter((l) => l !== "...").length;
    const e = xs[i].rank - named;
    if (t.includes("...") ? e < 0 : e !== 0) {
      throw new RangeError(
        `einsum: "${spec}": operand ${i} "${lhs[i]}" has ${named} label(s) for a tensor of ` +
          `rank ${xs[i].rank} ${fmt(xs[i].shape)}`,
      );
    }
    return e;
  });
  const E = Math.max(0, ...ellRank);
  const labels = raw.map((t, i) => t.flatMap((l) => (l === "..." ? ell(ellRank[i], E) : [l])));
  let out: string[];
  if (arrow >= 0) {
    const o = tokens(spec, s.slice(arrow + 2));
    if (!o.includes("...") && raw.some((t, i) => t.includes("...") && ellRank[i] > 0)) {
      throw new RangeError(`einsum: "${spec}": the output needs "..." for the broadcast axes`);
    }
    out = o.flatMap((l) => (l === "..." ? ell(E, E) : [l]));
    const all = new Set(labels.flat());
    out.forEach((l, i) => {
      if (!all.has(l)) {
        throw new RangeError(`einsum: "${spec}": output label ${l} is in no operand`);
      }
      if (out.indexOf(l) !== i) {
        throw new RangeError(`einsum: "${spec}": output label ${l} repeats`);
      }
    });
  } else {
    const count = new Map<string, number>();
    labels.flat().forEach((l) => count.set(l, (count.get(l) ?? 0) + 1));
    const named = [...count].filter(([l, c]) => c === 1 && !l.startsWith(".")).map(([l]) => l);
    out = [...ell(E, E), ...named.sort()];
  }
  return { terms: labels.map((l, i): Term => ({ x: xs[i], labels: l })), out };
}

/** The size of every label (size-1 axes broadcast against larger ones). */
function labelSizes(spec: string, terms: Term[]): Map<string, number> {
  const size = new Map<string, number>();
  for (const { x, labels } of terms) {
    labels.forEach((l, d) => {
      const n = x.shape[d], m = size.get(l);
      if (m === undefined || m === 1) size.set(l, n);
      else if (n !== m && n !== 1) {
        const name = l.startsWith(".") ? "a broadcast (...) axis" : `label ${l}`;
        throw new RangeError(`einsum: "${spec}": ${name} has sizes ${m} and ${n}`);
      }
    });
  }
  return size;
}

/** Takes the diagonal over every label repeated within the term. */
function diagonals(spec: string, t: Term): Term {
  let { x, labels } = t;
  for (;;) {
    const q = labels.findIndex((l, i) => labels.indexOf(l) !== i);
    if (q < 0) return { x, labels };
    const p = labels.indexOf(labels[q]);
    const n = x.shape[p];
    if (x.shape[q] !== n) {
      throw new RangeError(
        `einsum: "${spec}": repeated label ${labels[q]} has sizes ${n} and ${x.shape[q]}`,
      );
    }
    const shape = x.shape.map((_, d) => (d === p || d === q ? n : 1));
    x = sum(mul(x, reshape(eye(n, n, 0, { device: x.device }), shape)), q);
    labels = labels.filter((_, d) => d !== q);
  }
}

/** Sums out the labels of `t` that are not in `keep`. */
function sumOut(t: Term, keep: Set<string>): Term {
  const axes = t.labels.flatMap((l, d) => (keep.has(l) ? [] : [d]));
  if (axes.length === 0) return t;
  return { x: sum(t.x, axes), labels: t.labels.filter((l) => keep.has(l)) };
}

/** `t` with its axes in `order` (a view when already so). */
function arrange(t: Term, order: string[]): Tensor {
  const perm = order.map((l) => t.labels.indexOf(l));
  return perm.every((p, i) => p === i) ? t.x : transpose(t.x, perm);
}

const prodOf = (ls: string[], size: Map<string, number>) =>
  ls.reduce((p, l) => p * size.get(l)!, 1);
const same = (a: string[], b: string[]) => a.length === b.length && a.every((l, i) => l === b[i]);

/** Contracts two terms with one batched matmul, keeping the labels in `keep`. */
function contract(a: Term, b: Term, keep: Set<string>, size: Map<string, number>): Term {
  const both = a.labels.filter((l) => b.labels.includes(l));
  const batch = both.filter((l) => keep.has(l));
  const inner = both.filter((l) => !keep.has(l));
  const fa = a.labels.filter((l) => !both.includes(l));
  const fb = b.labels.filter((l) => !both.includes(l));
  const [B, M, K, N] = [batch, fa, inner, fb].map((ls) => prodOf(ls, size));
  // Read an operand transposed in place when it is laid out that way (and not the plain way).
  const transA = !same(a.labels, [...batch, ...fa, ...inner]) &&
    same(a.labels, [...batch, ...inner, ...fa]);
  const transB = !same(b.labels, [...batch, ...inner, ...fb]) &&
    same(b.labels, [...batch, ...fb, ...inner]);
  const ma = transA ? a.x : arrange(a, [...batch, ...fa, ...inner]);
  const mb = transB ? b.x : arrange(b, [...batch, ...inner, ...fb]);
  const y = matmul(
    reshape(ma, transA ? [B, K, M] : [B, M, K]),
    reshape(mb, transB ? [B, N, K] : [B, K, N]),
    {
      transposeA: transA,
      transposeB: transB,
    },
  );
  const labels = [...batch, ...fa, ...fb];
  return { x: reshape(y, labels.map((l) => size.get(l)!)), labels };
}

/**
 * Einstein summation over one or more operands, as `jnp.einsum` / `torch.einsum`:
 * `"bhqd,bhkd->bhqk"` (attention scores), `"bhqk,bhkd->bhqd"` (weighted values),
 * `"ij,jk->ik"`, `"bij,bjk->bik"`, `"i,j->ij"`, `"ii->i"` (diagonal), `"ii->"` (trace),
 * `"ij->ji"`, `"...ij,...jk->...ik"`. Labels are letters; `...` stands for broadcast axes
 * (right-aligned, size 1 broadcasts); without `->` the output is the labels used once, in
 * alphabetical order, after the broadcast axes. Size-1 axes broadcast against a label's size.
 * Operands are contracted left to right, each pair by one batched `matmul` (so a contraction
 * of two or more operands returns f32); a single operand keeps its dtype. Throws a RangeError
 * naming the subscripts for malformed specs, label/rank mismatches and size conflicts.
 *
 * Shapes: given by the subscripts, e.g. `[b, h, q, d]`, `[b, h, k, d]` to `[b, h, q, k]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { einsum, tensor } from "@longseq/tensor";
 * const a = tensor([[1, 2], [3, 4]]);
 * assert.deepEqual(await einsum("ij,jk->ik", a, a).array(), [[7, 10], [15, 22]]);
 * assert.deepEqual(await einsum("ii->i", a).array(), [1, 4]);
 * assert.deepEqual(await einsum("ij->", a).array(), 10);
 * assert.deepEqual(await einsum("i,j", tensor([1, 2]), tensor([3, 4])).array(), [[3, 4], [6, 8]]);
 * ```
 */
export function einsum(spec: string, ...operands: Tensor[]): Tensor {
  if (typeof spec !== "string") {
    throw new TypeError(`einsum: subscripts must be a string, got ${typeof spec}`);
  }
  if (operands.length === 0) throw new RangeError(`einsum: "${spec}" needs at least one operand`);
  operands.forEach((x, i) => checkTensor("einsum", `operand ${i}`, x));
  const { terms, out } = parse(spec, operands);
  const size = labelSizes(spec, terms);
  return scope(() => {
    let ts = terms.map((t) => {
      const d = diagonals(spec, t);
      const full = d.labels.map((l) => size.get(l)!);
      return full.every((n, i) => n === d.x.shape[i])
        ? d
        : { x: broadcastTo(d.x, full), labels: d.labels };
    });
    const needed = (from: number) => new Set([...out, ...ts.slice(from).flatMap((t) => t.labels)]);
    let cur = sumOut(ts[0], needed(1));
    for (let i = 1; i < ts.length; i++) {
      const keep = needed(i + 1);
      const next = sumOut(ts[i], new Set([...keep, ...cur.labels]));
      cur = contract(cur, next, keep, size);
      ts = ts.map((t, j) => (j === i ? next : t));
    }
    cur = sumOut(cur, new Set(out));
    const y = arrange(cur, out);
    return y === operands[0] ? reshape(y, y.shape) : y;
  });
}
