import { describe, expect, it } from "vitest";
import { ChatTemplate, chatTemplateFromConfig } from "./chat-template.js";

// Template mechanics on small templates; SmolLM2's own template is tested in tokenizer.test.ts.

describe("ChatTemplate", () => {
  it("trims blocks as transformers does and passes messages, the generation flag and the special tokens", () => {
    const source = [
      "{{ bos_token }}",
      "{% for m in messages %}",
      "  {% if m.role == 'user' %}",
      "[U]{{ m['content'] }}{{ eos_token }}",
      "  {% else %}",
      "[A]{{ m.content }}{{ eos_token }}",
      "  {% endif %}",
      "{% endfor %}",
      "{% if add_generation_prompt %}[A]{% endif %}",
    ].join("\n");
    const t = new ChatTemplate(source, { bos_token: "<s>", eos_token: "</s>" }, "test");
    const messages = [
      { role: "user", content: "hi" },
      { role: "assistant", content: "hello" },
    ];
    expect(t.render(messages)).toBe("<s>\n[U]hi</s>\n[A]hello</s>\n");
    expect(t.render(messages, { addGenerationPrompt: true })).toBe("<s>\n[U]hi</s>\n[A]hello</s>\n[A]");
  });

  it("reports raise_exception and parse errors with their origin", () => {
    const t = new ChatTemplate("{{ raise_exception('roles must alternate') }}", {}, "m.gguf");
    expect(() => t.render([])).toThrow(/m\.gguf: chat template failed to render: .*roles must alternate/);
    expect(() => new ChatTemplate("{% for %}", {}, "m.gguf")).toThrow(/m\.gguf: chat template does not parse/);
  });

  it("does not let a template modify the caller's messages", () => {
    const messages = [{ role: "user", content: "x" }];
    new ChatTemplate("{% set m = messages[0] %}{{ m.content }}", {}, "t").render(messages);
    expect(messages).toEqual([{ role: "user", content: "x" }]);
  });
});

describe("chatTemplateFromConfig", () => {
  it("takes a string, or the template named default from a list", () => {
    expect(chatTemplateFromConfig("{{ x }}", "c")).toBe("{{ x }}");
    expect(chatTemplateFromConfig(undefined, "c")).toBeNull();
    expect(chatTemplateFromConfig(null, "c")).toBeNull();
    const named = [
      { name: "tool_use", template: "T" },
      { name: "default", template: "D" },
    ];
    expect(chatTemplateFromConfig(named, "c")).toBe("D");
    expect(() => chatTemplateFromConfig([{ name: "rag", template: "R" }, named[0]], "cfg.json")).toThrow(
      /cfg\.json: chat_template lists named templates \(rag, tool_use\) but none is named "default"/,
    );
    expect(() => chatTemplateFromConfig(3, "c")).toThrow(/found number/);
  });
});
