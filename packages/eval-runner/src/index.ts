export * from "./tasks/index.js";
export * from "./metrics/index.js";
