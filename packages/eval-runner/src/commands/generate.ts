import { Command, Option } from "commander";
import { generateGreedy, loadLanguageModel } from "@razorkv/model-zoo";
import { positiveInteger } from "./parse.js";

export function generateCommand(): Command {
  return new Command("generate")
    .description("print the greedy completion of a prompt with the full cache")
    .requiredOption("--model <ref>", "model alias, hf:<org>/<name>@<revision>[:<file>], or a local path")
    .requiredOption("--prompt <text>", "the prompt")
    .option("--chat", "wrap the prompt as one user turn with the model's chat template", false)
    .addOption(new Option("--max-new-tokens <n>", "tokens to generate").argParser(positiveInteger("--max-new-tokens")).default(64))
    .action(async (opts: { model: string; prompt: string; chat: boolean; maxNewTokens: number }) => {
      const lm = await loadLanguageModel(opts.model);
      const text = opts.chat
        ? lm.tokenizer.applyChatTemplate([{ role: "user", content: opts.prompt }], { addGenerationPrompt: true })
        : opts.prompt;
      const ids = lm.tokenizer.encode(text);
      const out = generateGreedy(lm.model, ids, {
        maxNewTokens: opts.maxNewTokens,
        isEnd: (id) => lm.tokenizer.isEndOfGeneration(id),
      });
      process.stdout.write(lm.tokenizer.decode(out, { skipSpecialTokens: true }) + "\n");
    });
}
