export * from "./tokenizer.js";
export * from "./load-tokenizer.js";
export * from "./tokenizer-sources.js";
export * from "./resolve-pad-id.js";
export * from "./chat-template.js";
export * from "./byte-level-tokenizer.js";
