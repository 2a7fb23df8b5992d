/**
 * `razorkv generate --model <ref> --prompt <text> [--chat] [--max-new-tokens n]`: the greedy completion of a prompt
 * with the full cache. Prints one JSON line on stdout: {"model", "promptTokens", "newTokens", "text"} (text without
 * special tokens); nothing on stderr unless something fails.
 */
import { Command, Option } from "commander";
import { RazorkvError } from "@razorkv/core";
import { generateGreedy, loadLanguageModel } from "@razorkv/model-zoo";
import { MODEL_HELP, modelRef, nonEmpty, positiveInteger } from "./parse.js";

export function generateCommand(): Command {
  return new Command("generate")
    .description("print the greedy completion of a prompt with the full cache, as one JSON line")
    .addOption(new Option("--model <ref>", MODEL_HELP).argParser(modelRef("--model")).makeOptionMandatory())
    .addOption(new Option("--prompt <text>", "the prompt (required, not empty)").argParser(nonEmpty("--prompt", "a non-empty prompt")).makeOptionMandatory())
    .option("--chat", "wrap the prompt as one user turn with the model's chat template", false)
    .addOption(new Option("--max-new-tokens <n>", "tokens to generate at most (stops earlier at end of turn)").argParser(positiveInteger("--max-new-tokens")).default(64))
    .action(async (opts: { model: string; prompt: string; chat: boolean; maxNewTokens: number }) => {
      const lm = await loadLanguageModel(opts.model);
      const text = opts.chat
        ? lm.tokenizer.applyChatTemplate([{ role: "user", content: opts.prompt }], { addGenerationPrompt: true })
        : opts.prompt;
      const ids = lm.tokenizer.encode(text);
      if (ids.length === 0) throw new RazorkvError(`--prompt "${opts.prompt}" encodes to no tokens; give a prompt with some text`);
      const context = lm.model.config.maxContext;
      if (ids.length + opts.maxNewTokens > context) {
        throw new RazorkvError(
          `--max-new-tokens ${opts.maxNewTokens}: the prompt's ${ids.length} tokens plus ${opts.maxNewTokens} new ones exceed ${opts.model}'s context of ${context} tokens`,
        );
      }
      const out = generateGreedy(lm.model, ids, {
        maxNewTokens: opts.maxNewTokens,
        isEnd: (id) => lm.tokenizer.isEndOfGeneration(id),
      });
      const result = { model: opts.model, promptTokens: ids.length, newTokens: out.length, text: lm.tokenizer.decode(out, { skipSpecialTokens: true }) };
      process.stdout.write(JSON.stringify(result) + "\n");
    });
}
