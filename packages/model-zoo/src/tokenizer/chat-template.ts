import { Template } from "@huggingface/jinja";
import type { ChatMessage, ChatTemplateOptions } from "./types.js";

/**
 * A model's chat template, parsed once. Rendering follows transformers' `apply_chat_template`: Jinja with
 * trim_blocks and lstrip_blocks (which @huggingface/jinja's `Template` applies), `messages`,
 * `add_generation_prompt` and the special-token strings as variables.
 */
export class ChatTemplate {
  private readonly template: Template;

  /**
   * @param source Jinja text of the template.
   * @param specialTokens Variables every render receives, e.g. `{ bos_token: "<|im_start|>", eos_token: "<|im_end|>" }`.
   * @param origin Where the template came from, for error messages.
   */
  constructor(
    readonly source: string,
    private readonly specialTokens: Readonly<Record<string, string>>,
    private readonly origin: string,
  ) {
    try {
      this.template = new Template(source);
    } catch (err) {
      throw new Error(`${origin}: chat template does not parse as Jinja: ${(err as Error).message}`);
    }
  }

  render(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
    try {
      return this.template.render({
        ...opts.variables,
        ...this.specialTokens,
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: opts.addGenerationPrompt ?? false,
      });
    } catch (err) {
      throw new Error(`${this.origin}: chat template failed to render: ${(err as Error).message}`);
    }
  }
}

/**
 * The template string of a tokenizer_config.json `chat_template` field: a string, or a list of named templates
 * (transformers' format) from which the one named `default` is taken.
 */
export function chatTemplateFromConfig(value: unknown, origin: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === "string") return value;
  if (Array.isArray(value)) {
    const named = value as { name?: unknown; template?: unknown }[];
    const chosen = named.find((t) => t.name === "default") ?? (named.length === 1 ? named[0] : undefined);
    if (chosen && typeof chosen.template === "string") return chosen.template;
    const names = named.map((t) => String(t.name)).join(", ");
    throw new Error(`${origin}: chat_template lists named templates (${names}) but none is named "default"`);
  }
  throw new Error(`${origin}: chat_template must be a string or a list of {name, template}; found ${typeof value}`);
}
