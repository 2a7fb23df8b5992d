/**
 * `razorkv generate --model <ref> --prompt <text> [--chat] [--max-new-tokens n] [--ids]`: the greedy completion of a
 * prompt with the full cache. Prints one JSON line on stdout: {"model", "promptTokens", "newTokens", "text"} (text
 * without special tokens), with "promptIds" and "newIds" too under --ids; nothing on stderr unless something fails.
 *
 * The prompt's ids are built as the sweeps build theirs (tasks/prompt.ts): with --chat the prompt is one user turn
 * of the model's chat template, rendered as transformers' apply_chat_template renders it, the template's text
 * parsed and the user's kept as text; without, the prompt is read verbatim, control-token strings parsed, as HF's
 * `tokenizer(prompt)` reads it. Either way BOS comes first exactly when the tokenizer adds it, and only once.
 */
import { Command, Option } from "commander";
import { RazorkvError } from "@razorkv/core";
import { generateGreedy, loadLanguageModel } from "@razorkv/model-zoo";
import { encodeSegment, rawPromptSegment, splitPrompt } from "../tasks/prompt.js";
import { MODEL_HELP, modelRef, nonEmpty, positiveInteger } from "./parse.js";

interface GenerateOptions {
  model: string;
  prompt: string;
  chat: boolean;
  maxNewTokens: number;
  ids: boolean;
}

export function generateCommand(): Command {
  return new Command("generate")
    .description("print the greedy completion of a prompt with the full cache, as one JSON line")
    .addOption(new Option("--model <ref>", MODEL_HELP).argParser(modelRef("--model")).makeOptionMandatory())
    .addOption(new Option("--prompt <text>", "the prompt (required, not empty)").argParser(nonEmpty("--prompt", "a non-empty prompt")).makeOptionMandatory())
    .option("--chat", "wrap the prompt as one user turn with the model's chat template (control-token strings in it stay text)", false)
    .addOption(new Option("--max-new-tokens <n>", "tokens to generate at most (stops earlier at end of turn)").argParser(positiveInteger("--max-new-tokens")).default(64))
    .option("--ids", "also print the prompt's token ids (promptIds) and the generated ones (newIds)", false)
    .action(async (opts: GenerateOptions) => {
      const lm = await loadLanguageModel(opts.model);
      const tokenizer = lm.tokenizer;
      let ids: number[];
      if (opts.chat) {
        const { context, query } = splitPrompt(tokenizer, true, { head: opts.prompt, tail: "", answerPrefix: "" }, "--prompt");
        ids = encodeSegment(tokenizer, [...context, ...query]);
      } else {
        ids = encodeSegment(tokenizer, rawPromptSegment(tokenizer, opts.prompt));
      }
      if (ids.length === 0) throw new RazorkvError(`--prompt "${opts.prompt}" encodes to no tokens; give a prompt with some text`);
      const context = lm.model.config.maxContext;
      if (ids.length + opts.maxNewTokens > context) {
        throw new RazorkvError(
          `--max-new-tokens ${opts.maxNewTokens}: the prompt's ${ids.length} tokens plus ${opts.maxNewTokens} new ones exceed ${opts.model}'s context of ${context} tokens`,
        );
      }
      const out = generateGreedy(lm.model, ids, {
        maxNewTokens: opts.maxNewTokens,
        isEnd: (id) => tokenizer.isEndOfGeneration(id),
      });
      const result = {
        model: opts.model,
        promptTokens: ids.length,
        newTokens: out.length,
        text: tokenizer.decode(out, { skipSpecialTokens: true }),
        ...(opts.ids ? { promptIds: ids, newIds: out } : {}),
      };
      process.stdout.write(JSON.stringify(result) + "\n");
    });
}
