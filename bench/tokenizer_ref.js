// Timing side of bench/tokenizer.cpp: encodes the documents of a text file with the HF Rust
// tokenizers (npm "tokenizers"), single-threaded (run with RAYON_NUM_THREADS=1), and prints
// {"seconds": wall s, "cpu_seconds": process CPU s, "tokens": n} as JSON. Documents are separated by a line holding only "\x1e".
// usage: NODE_PATH=.../node_modules RAYON_NUM_THREADS=1 node tokenizer_ref.js TOKENIZER.json TEXT
const fs = require("fs");
const { Tokenizer } = require("tokenizers");
(async () => {
  const [tokPath, textPath] = process.argv.slice(2);
  const tok = Tokenizer.fromFile(tokPath);
  const docs = fs.readFileSync(textPath, "utf8").split("\n\x1e\n");
  await tok.encodeBatch(docs.slice(0, 8), { addSpecialTokens: false });  // warm-up
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let tokens = 0;
  for (let i = 0; i < docs.length; i += 64) {
    const encs = await tok.encodeBatch(docs.slice(i, i + 64), { addSpecialTokens: false });
    for (const e of encs) tokens += e.getIds().length;
  }
  const t1 = process.hrtime.bigint();
  const c1 = process.cpuUsage(c0);
  console.log(JSON.stringify({ seconds: Number(t1 - t0) / 1e9, cpu_seconds: (c1.user + c1.system) / 1e6, tokens }));
})().catch((e) => {
  console.error(String(e));
  process.exit(1);
});
