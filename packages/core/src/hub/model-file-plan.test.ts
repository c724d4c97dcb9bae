import type { ListFileEntry } from "@huggingface/hub";
import { describe, expect, it } from "vitest";
import { HubModelError } from "./hub-model-error.js";
import { parseIndexShards, planModelFiles } from "./model-file-plan.js";

const SHA1 = "a".repeat(40);
const SHA256 = "b".repeat(64);
const file = (p: string, size = 10, lfs = false): ListFileEntry => ({
  type: "file",
  path: p,
  size,
  oid: SHA1,
  ...(lfs && { lfs: { oid: SHA256, size, pointerSize: 134 } }),
});

describe("planModelFiles", () => {
  it("keeps config, tokenizer files and model.safetensors; etag is the LFS sha256 or the git oid", () => {
    const plan = planModelFiles(
      [
        file("README.md"),
        file("tokenizer.model"),
        file("config.json", 7),
        file("model.safetensors", 1000, true),
        file("pytorch_model.bin", 1000, true),
        file("tokenizer.json"),
        file("sub/config.json"),
        { type: "directory", path: "onnx", size: 0, oid: SHA1 },
      ],
      "o/n",
    );
    expect(plan.metadata.map((f) => f.path)).toEqual(["config.json", "tokenizer.json", "tokenizer.model"]);
    expect(plan.metadata[0]).toEqual({ path: "config.json", size: 7, etag: SHA1 });
    expect(plan.weights).toEqual([{ path: "model.safetensors", size: 1000, etag: SHA256 }]);
    expect(plan.index).toBeUndefined();
  });

  it("with an index, weights come from the index, not from every .safetensors", () => {
    const plan = planModelFiles([file("config.json"), file("model.safetensors.index.json"), file("model-00001-of-00001.safetensors"), file("consolidated.safetensors")], "o/n");
    expect(plan.index?.path).toBe("model.safetensors.index.json");
    expect(plan.weights).toEqual([]);
  });

  it("explains what is wrong with a repo it cannot use", () => {
    const reasonOf = (entries: ListFileEntry[]): [string, string] => {
      try {
        planModelFiles(entries, "o/n");
      } catch (e) {
        expect(e).toBeInstanceOf(HubModelError);
        return [(e as HubModelError).reason, (e as HubModelError).message];
      }
      throw new Error("expected an error");
    };
    expect(reasonOf([file("model.safetensors")])).toEqual(["not-a-model", "o/n: the repo has no config.json; it is not a transformers model"]);
    expect(reasonOf([file("config.json"), file("pytorch_model.bin")])).toEqual([
      "no-safetensors",
      "o/n: this repo has no safetensors weights (only pytorch_model.bin); convert them to safetensors and pass --model-path to the converted directory",
    ]);
    expect(reasonOf([file("config.json"), file("consolidated.safetensors")])).toEqual([
      "no-safetensors",
      "o/n: the repo has no model.safetensors or model.safetensors.index.json (only consolidated.safetensors, not in the transformers layout)",
    ]);
  });

  it("rejects an oid that is not a hex digest (it names a file under blobs/)", () => {
    expect(() => planModelFiles([{ ...file("config.json"), oid: "../../evil" }], "o/n")).toThrow(/without a valid oid/);
  });
});

describe("parseIndexShards", () => {
  it("returns the distinct shard names, sorted", () => {
    const text = JSON.stringify({ weight_map: { a: "model-00002-of-00002.safetensors", b: "model-00001-of-00002.safetensors", c: "model-00001-of-00002.safetensors" } });
    expect(parseIndexShards(text, "idx")).toEqual(["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]);
  });

  it.each([["../x.safetensors"], ["sub/x.safetensors"], ["x.bin"], [".hidden.safetensors"]])("rejects shard %s", (shard) => {
    expect(() => parseIndexShards(JSON.stringify({ weight_map: { a: shard } }), "idx")).toThrow(/must be a \.safetensors file name/);
  });

  it("rejects bad JSON and a missing weight_map", () => {
    expect(() => parseIndexShards("{", "idx")).toThrow("idx: not valid JSON");
    expect(() => parseIndexShards("{}", "idx")).toThrow(/weight_map/);
  });
});
