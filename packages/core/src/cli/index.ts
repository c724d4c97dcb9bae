export * from "./create-logger.js";
export * from "./normalize-argv.js";
export * from "./parsers.js";
export * from "./progress.js";
export * from "./run-main.js";
