/**
 * `razorkv ppl --model <ref> --file <text file> [--max-tokens n] [--prefill-products f32|int8]`: mean next-token NLL
 * (nats per token) and perplexity of the file's first n tokens with the full cache, in one prefill. Prints one JSON
 * line on stdout: {"tokens", "nll", "ppl", "prefillProducts"}; nothing on stderr unless something fails. int8 takes
 * llama.cpp-style 8-bit activations (as llama.cpp's matrix products; not llama-perplexity's protocol, which scores
 * the second half of n_ctx windows over an f16 cache), f32 (default) transformers' result within rounding.
 */
import { readFile } from "node:fs/promises";
import { Command, Option } from "commander";
import { RazorkvError } from "@razorkv/core";
import { loadLanguageModel, tokenLogProbs, type PrefillProducts } from "@razorkv/model-zoo";
import { MODEL_HELP, modelRef, nonEmpty, oneOf, positiveInteger } from "./parse.js";

export function pplCommand(): Command {
  return new Command("ppl")
    .description("mean next-token NLL and perplexity of a text file's first tokens, full cache, as one JSON line")
    .addOption(new Option("--model <ref>", MODEL_HELP).argParser(modelRef("--model")).makeOptionMandatory())
    .addOption(new Option("--file <path>", "a UTF-8 text file (required)").argParser(nonEmpty("--file", "a path")).makeOptionMandatory())
    // N tokens give N − 1 predictions: one token predicts nothing
    .addOption(new Option("--max-tokens <n>", "score the first n tokens (n − 1 predictions), n ≥ 2").argParser(positiveInteger("--max-tokens", 2)).default(1024))
    .addOption(
      new Option("--prefill-products <kind>", "the prefill's arithmetic: f32 (transformers') or int8 (llama.cpp-style 8-bit activations)")
        .argParser(oneOf<PrefillProducts>("--prefill-products", ["f32", "int8"]))
        .default("f32"),
    )
    .action(async (opts: { model: string; file: string; maxTokens: number; prefillProducts: PrefillProducts }) => {
      let text: string;
      try {
        text = await readFile(opts.file, "utf8");
      } catch (error) {
        throw new RazorkvError(`--file ${opts.file}: cannot read the text file (${(error as NodeJS.ErrnoException).code ?? error})`);
      }
      const lm = await loadLanguageModel(opts.model, { model: { prefillProducts: opts.prefillProducts } });
      // the raw text, no special tokens: the same convention as tools/parity/reference_logprobs.py
      const ids = lm.tokenizer.encode(text, { addSpecialTokens: false }).slice(0, opts.maxTokens);
      if (ids.length < 2) throw new RazorkvError(`--file ${opts.file}: needs at least 2 tokens to score, has ${ids.length}`);
      const context = lm.model.config.maxContext;
      if (ids.length > context) {
        throw new RazorkvError(`--max-tokens ${opts.maxTokens}: the file's first ${ids.length} tokens exceed ${opts.model}'s context of ${context} tokens; give --max-tokens ${context} or less`);
      }
      const logProbs = tokenLogProbs(lm.model, ids);
      const nll = -logProbs.reduce((s, x) => s + x, 0) / logProbs.length;
      process.stdout.write(JSON.stringify({ tokens: ids.length, nll, ppl: Math.exp(nll), prefillProducts: opts.prefillProducts }) + "\n");
    });
}
