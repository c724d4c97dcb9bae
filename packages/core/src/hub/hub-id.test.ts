import { describe, expect, it } from "vitest";
import { parseHubId } from "./hub-id.js";

describe("parseHubId", () => {
  it.each([
    ["meta-llama/Llama-3.2-1B", { repo: "meta-llama/Llama-3.2-1B", revision: "main" }],
    ["EleutherAI/pythia-70m-deduped@step1000", { repo: "EleutherAI/pythia-70m-deduped", revision: "step1000" }],
    ["org/name@refs/pr/1", { repo: "org/name", revision: "refs/pr/1" }],
    ["a_b/c.d@v1.0", { repo: "a_b/c.d", revision: "v1.0" }],
    ["out/ckpt", { repo: "out/ckpt", revision: "main" }],
  ])("%s is a hub id", (text, want) => {
    expect(parseHubId(text)).toEqual(want);
  });

  it.each([
    "gpt2", // no namespace: we ask for org/name
    "./out/ckpt",
    "../a/b",
    "/abs/dir",
    "a/b/c",
    "org/-name",
    "org/name.",
    "org/na--me",
    "org/na..me",
    "org/name.git",
    "org/name@",
    "org/name@../../x",
    "org/name@a//b",
    `org/${"x".repeat(97)}`,
    "org\\name",
  ])("%s is not", (text) => {
    expect(parseHubId(text)).toBeUndefined();
  });
});
