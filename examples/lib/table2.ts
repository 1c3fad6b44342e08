/**
 * Table 2 of the Reformer paper (Kitaev, Kaiser, Levskaya 2020, "Reformer: The Efficient
 * Transformer", arXiv:2001.04451): its figures, the rows `copy_task.ts --table` trains, and the
 * Markdown grids the example prints.
 * @module
 */
/** The paper's Table 2 (rows: trained with; columns: evaluated with). */
export const PAPER: Record<string, Record<string, number>> = {
  "full": { "full": 100, "LSH-8": 94.8, "LSH-4": 92.5, "LSH-2": 76.9, "LSH-1": 52.5 },
  "LSH-4": { "full": 0.8, "LSH-8": 100, "LSH-4": 99.9, "LSH-2": 99.4, "LSH-1": 91.9 },
  "LSH-2": { "full": 0.8, "LSH-8": 100, "LSH-4": 99.9, "LSH-2": 98.1, "LSH-1": 86.8 },
  "LSH-1": { "full": 0.8, "LSH-8": 99.9, "LSH-4": 99.6, "LSH-2": 94.8, "LSH-1": 77.9 },
};

/** The column of full attention that lets a token attend to itself. */
export const NO_SELF_MASK = "full (no self-mask)";

/** What the two full-attention columns are, printed under the `--table` grids. */
export const TABLE_NOTE =
  `"full" masks a token's own position, as the shared-QK attention of training does (a token ` +
  `attends to itself only when nothing else is visible); "${NO_SELF_MASK}" lets it attend to ` +
  `itself. With shared QK and unit-length keys a query's own key gets its largest logit, so a ` +
  `model trained with the mask attends much to itself without it and the copy largely fails. ` +
  `The paper's 0.8% full column for LSH-trained models (about chance at vocab 128) is ` +
  `consistent with an evaluation without the mask, not with one with it. The paper trains no ` +
  `LSH-8 model ("-").`;

/** A Markdown table: one row per entry (its name first), right-aligned numbers. */
export function gridTable(rows: string[][], columns: string[]): string {
  const header = ["trained \\ evaluated", ...columns];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    `| ${r.map((c, i) => (i ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(" | ")} |`;
  const rule = `|${
    widths.map((w, i) => (i ? "-".repeat(w + 1) + ":" : "-".repeat(w + 2))).join("|")
  }|`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}

/** A Markdown table of this run's accuracies (%) with the paper's row for the same training. */
export function table2(trained: string, columns: string[], accs: number[]): string {
  const rows = [[`${trained} (this run)`, ...accs.map((a) => (100 * a).toFixed(1))]];
  if (PAPER[trained]) {
    rows.push([`${trained} (paper)`, ...columns.map((c) => PAPER[trained][c]?.toFixed(1) ?? "-")]);
  }
  return gridTable(rows, columns);
}

/** The rows of the paper's Table 2, in its order: the attention a model is trained with. */
export const TABLE_ROWS: { name: string; attention: "full" | "lsh"; nHashes: number }[] = [
  { name: "full", attention: "full", nHashes: 1 },
  ...[8, 4, 2, 1].map((n) => ({ name: `LSH-${n}`, attention: "lsh" as const, nHashes: n })),
];

/** A trained row: its name, the columns it was evaluated with and its accuracies (0..1). */
export interface Row {
  trained: string;
  columns: string[];
  accs: number[];
  step: number;
  stepsRun: number;
  seconds: number;
  totalSeconds: number;
}
