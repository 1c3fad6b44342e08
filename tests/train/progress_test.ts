/**
 * The progress bar in a narrow terminal (one line, cut to the width, never wrapped), plain
 * lines left whole, and figures printed with a fixed number of decimals on every line.
 */
import assert from "node:assert/strict";
import {
  fitLine,
  formatFigure,
  formatFigures,
  ProgressBar,
  terminalColumns,
} from "../../train/mod.ts";

/** The text of a redraw without its control characters. */
const visible = (s: string) => s.replaceAll("\r", "").replaceAll("\x1b[K", "");

Deno.test("progress bar in a narrow terminal", async (t) => {
  await t.step("each redraw is one line of at most columns - 1, figures first", () => {
    const out: string[] = [];
    let clock = 0;
    const bar = new ProgressBar({
      total: 50,
      tty: true,
      columns: 30,
      label: "copy",
      write: (s) => out.push(s),
      now: () => clock,
    });
    for (let s = 1; s <= 50; s++) {
      clock += 150;
      bar.update(s, { loss: 2 / s, tokens: 512, extra: { acc: s / 50 } });
    }
    bar.done();
    const redraws = out.slice(0, -1);
    assert.equal(redraws.length, 50);
    for (const r of redraws) {
      assert.ok(r.startsWith("\r") && r.endsWith("\x1b[K") && !r.includes("\n"), r);
      assert.equal(visible(r).length, 29);
    }
    // The bar graphic is left out so that step and loss stay visible.
    assert.equal(visible(redraws[0]), "copy  1/50 loss 2.0000 acc 0.");
    assert.match(visible(redraws[49]), /^copy 50\/50 loss 0\.0400 acc 1\./);
    assert.equal(out.at(-1), "\n");
  });
  await t.step("the width is asked at each redraw (a resized terminal)", () => {
    const out: string[] = [];
    let clock = 0;
    let columns: number | undefined = 12;
    const bar = new ProgressBar({
      total: 3,
      tty: true,
      columns: () => columns,
      write: (s) => out.push(s),
      now: () => (clock += 200),
    });
    bar.update(1, { loss: 1 });
    columns = 200;
    bar.update(2, { loss: 1 });
    columns = undefined; // unknown: no cut
    bar.update(3, { loss: 1 });
    assert.equal(visible(out[0]), "1/3 loss 1.");
    assert.match(visible(out[1]), /^\[#{16}-{8}\] 2\/3 loss 1\.0000 \d:\d\d eta \d:\d\d$/);
    assert.match(visible(out[2]), /^\[#{24}\] 3\/3 loss 1\.0000 /);
  });
  await t.step("a message between redraws restores the cut line", () => {
    const out: string[] = [];
    const bar = new ProgressBar({ total: 2, tty: true, columns: 10, write: (s) => out.push(s) });
    bar.update(1, { loss: 1 });
    bar.log("evaluating: a message longer than the terminal");
    assert.equal(out[1], `\r\x1b[Kevaluating: a message longer than the terminal\n1/2 loss `);
  });
  await t.step("plain lines (not a terminal) are never cut", () => {
    const out: string[] = [];
    const bar = new ProgressBar({ total: 1, tty: false, columns: 10, write: (s) => out.push(s) });
    bar.update(1, { loss: 1.5, extra: { acc: 0.25 } });
    assert.match(out[0], /^1\/1 loss 1\.5000 acc 0\.2500 0:00 eta 0:00\n$/);
  });
  await t.step("fitLine and terminalColumns", () => {
    assert.equal(fitLine("abcdef", 4), "abc");
    assert.equal(fitLine("abc", 4), "abc");
    assert.equal(fitLine("abcd", 4), "abc");
    assert.equal(fitLine("abcd", undefined), "abcd");
    assert.equal(fitLine("abcd", 0), "abcd");
    const c = terminalColumns();
    assert.ok(c === undefined || (Number.isInteger(c) && c >= 0));
  });
});

Deno.test("figures have a fixed number of decimals", async (t) => {
  await t.step("every line prints a figure with the same decimals", () => {
    const out: string[] = [];
    const bar = new ProgressBar({
      total: 4,
      tty: false,
      every: 1,
      decimals: { acc: 3 },
      write: (s) => out.push(s),
      now: () => 0,
    });
    const accs = [0.5, 0.4375, 1, 0.123456];
    const bpbs = [2, 1.23456789, 10.5, 0.1];
    accs.forEach((acc, i) =>
      bar.update(i + 1, { loss: 3 / (i + 1), extra: { acc, bpb: bpbs[i] } })
    );
    const field = (name: string) => out.map((l) => new RegExp(`${name} (\\S+)`).exec(l)![1]);
    assert.deepEqual(field("loss"), ["3.0000", "1.5000", "1.0000", "0.7500"]);
    assert.deepEqual(field("acc"), ["0.500", "0.438", "1.000", "0.123"]);
    assert.deepEqual(field("bpb"), ["2.0000", "1.2346", "10.5000", "0.1000"]);
  });
  await t.step("formatFigure and formatFigures", () => {
    assert.equal(formatFigure("x", 1e-7), "0.0000");
    assert.equal(formatFigure("x", 12345.678, { x: 1 }), "12345.7");
    assert.equal(formatFigure("x", 2.5, { x: 0 }), "3");
    assert.equal(formatFigure("x", NaN), "NaN");
    assert.equal(formatFigure("x", -Infinity), "-inf");
    assert.equal(formatFigures({ validBpb: 3.7, n: 3 }, { n: 0 }), "validBpb 3.7000 n 3");
    assert.equal(formatFigures({}), "");
  });
});
