import { readFile } from "node:fs/promises";
import { Command, Option } from "commander";
import { RazorkvError } from "@razorkv/core";
import { loadLanguageModel, tokenLogProbs } from "@razorkv/model-zoo";
import { positiveInteger } from "./parse.js";

export function pplCommand(): Command {
  return new Command("ppl")
    .description("mean next-token NLL and perplexity of a text file's first tokens, full cache")
    .requiredOption("--model <ref>", "model alias, hf:<org>/<name>@<revision>[:<file>], or a local path")
    .requiredOption("--file <path>", "a UTF-8 text file")
    .addOption(new Option("--max-tokens <n>", "score the first N tokens (N−1 predictions)").argParser(positiveInteger("--max-tokens")).default(1024))
    .action(async (opts: { model: string; file: string; maxTokens: number }) => {
      let text: string;
      try {
        text = await readFile(opts.file, "utf8");
      } catch (error) {
        throw new RazorkvError(`${opts.file}: cannot read the text file (${(error as NodeJS.ErrnoException).code ?? error})`);
      }
      const lm = await loadLanguageModel(opts.model);
      // the raw text, no special tokens: the same convention as tools/parity/reference_logprobs.py
      const ids = lm.tokenizer.encode(text, { addSpecialTokens: false }).slice(0, opts.maxTokens);
      if (ids.length < 2) throw new RazorkvError(`${opts.file}: needs at least 2 tokens, has ${ids.length}`);
      const logProbs = tokenLogProbs(lm.model, ids);
      const nll = -logProbs.reduce((s, x) => s + x, 0) / logProbs.length;
      process.stdout.write(JSON.stringify({ tokens: ids.length, nll, ppl: Math.exp(nll) }) + "\n");
    });
}
