// The command line that bench/lib/model-forward.js and kernel-forward.js share, so that bench/vs-llama-cpp.js runs
// both sides the same way:
//   --model FILE --prefill T             time a prefill of T tokens
//   --model FILE --decode N --context C  N timed greedy decode steps over a cache of C positions
//   --model FILE --generate N --prompt P a timed prefill of P tokens, then N greedy decode steps
//   --prefill-chunk-rows R               model-forward.js only: LlamaModel's prefillChunkRows (a number, or
//                                        "whole" for one run); default the model's own rule
//   --prefill-products f32|int8          model-forward.js only: LlamaModel's prefillProducts (default f32)
import { parseArgs } from "node:util";

/** The parsed options; exits with status 2 and a line on stderr naming `script` when --model is missing. */
export function forwardArgs(script) {
  const { values } = parseArgs({
    options: {
      model: { type: "string" },
      prefill: { type: "string" },
      decode: { type: "string" },
      context: { type: "string", default: "0" },
      generate: { type: "string" },
      prompt: { type: "string", default: "16" },
      "prefill-chunk-rows": { type: "string" },
      "prefill-products": { type: "string" },
    },
    strict: true,
  });
  if (!values.model) {
    console.error(`${script}: --model FILE is required`);
    process.exit(2);
  }
  return values;
}
