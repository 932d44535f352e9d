// Reference driver for the tokenizer conformance tests: the HF Rust tokenizers (npm "tokenizers").
// usage: node tokenizer_ref.js TOKENIZER.json IN.json OUT.json
//   IN.json:  {"plain": [strings], "special": [strings]}  (special: encoded with add_special_tokens)
//   OUT.json: {"plain": [{ids, offsets, decoded}], "special": [...]} in the same order; offsets in
//             code points (as HF's Python API gives them), decoded = decode(ids, false).
// NODE_PATH must point at a node_modules folder holding "tokenizers".
const fs = require("fs");
const { Tokenizer } = require("tokenizers");

async function run(tok, strings, addSpecialTokens) {
  const out = [];
  for (let i = 0; i < strings.length; i += 512) {
    const part = strings.slice(i, i + 512);
    const encs = await tok.encodeBatch(part, { addSpecialTokens });
    const ids = encs.map((e) => Array.from(e.getIds()));
    const decoded = await tok.decodeBatch(ids, false);
    for (let k = 0; k < part.length; k++) out.push({ ids: ids[k], offsets: encs[k].getOffsets(), decoded: decoded[k] });
  }
  return out;
}

(async () => {
  const [tokPath, inPath, outPath] = process.argv.slice(2);
  const tok = Tokenizer.fromFile(tokPath);
  const input = JSON.parse(fs.readFileSync(inPath, "utf8"));
  const out = { plain: await run(tok, input.plain || [], false), special: await run(tok, input.special || [], true) };
  fs.writeFileSync(outPath, JSON.stringify(out));
})().catch((e) => {
  console.error(String(e && e.stack ? e.stack : e));
  process.exit(1);
});
