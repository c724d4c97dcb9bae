// applyChatTemplate against strings worked out by hand from each template's source.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, test } from "vitest";
import { TokenizerError } from "../src/errors.js";
import { createByteLevelTokenizer } from "../src/tokenizer/byte-level-tokenizer.js";
import { loadTokenizer } from "../src/tokenizer/load-tokenizer.js";
import { Tokenizer } from "../src/tokenizer/tokenizer.js";

const tokenizers = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../shared/tokenizers");

const conversation = [
  { role: "user", content: "Hello" },
  { role: "assistant", content: "Hi there" },
  { role: "user", content: "How are you?" },
];

describe("phi-3-vision (chat_template in tokenizer_config.json)", () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await loadTokenizer(path.join(tokenizers, "phi-3-vision"));
  });

  // Template: for each message '<|' + role + '|>' + '\n' + content + '<|end|>\n'; then, if
  // add_generation_prompt and the last role is not assistant, '<|assistant|>\n'.
  test("with a generation prompt", () => {
    expect(tok.hasChatTemplate).toBe(true);
    expect(tok.applyChatTemplate(conversation, { addGenerationPrompt: true })).toBe(
      "<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n<|user|>\nHow are you?<|end|>\n<|assistant|>\n",
    );
  });

  test("without one, and never after an assistant turn", () => {
    expect(tok.applyChatTemplate(conversation)).toBe("<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n<|user|>\nHow are you?<|end|>\n");
    expect(tok.applyChatTemplate(conversation.slice(0, 2), { addGenerationPrompt: true })).toBe("<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n");
  });

  test("the rendered text encodes with the added tokens (no BOS when special tokens are off)", () => {
    const text = tok.applyChatTemplate([{ role: "user", content: " Hello world" }], { addGenerationPrompt: true });
    expect(text).toBe("<|user|>\n Hello world<|end|>\n<|assistant|>\n");
    // <|user|>=32010; "\n Hello world" is normalised to "▁\n▁Hello▁world": "▁"=29871, "\n" by byte
    // fallback <0x0A>=13, then "▁Hello▁world"=[15043, 3186] (the "Hello world" fixture);
    // <|end|>=32007; "\n" → [29871, 13] (the "\n" fixture); <|assistant|>=32001 has rstrip: true,
    // so it swallows the final "\n".
    expect(tok.encode(text, { addSpecialTokens: false })).toEqual([32010, 29871, 13, 15043, 3186, 32007, 29871, 13, 32001]);
  });
});

describe("llama-2 and mistral (no chat_template in their tokenizer_config.json)", () => {
  test.each(["llama-2", "mistral-7b-v0.1"])("%s: applyChatTemplate throws a TokenizerError", async (name) => {
    const tok = await loadTokenizer(path.join(tokenizers, name));
    expect(tok.hasChatTemplate).toBe(false);
    expect(() => tok.applyChatTemplate(conversation)).toThrow(TokenizerError);
    expect(() => tok.applyChatTemplate(conversation)).toThrow(/has no chat template/);
  });

  // Meta's Llama-2-chat template, passed explicitly; bos_token/eos_token come from llama-2's
  // old-style {"__type": "AddedToken"} config entries.
  const LLAMA2_CHAT =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}" +
    "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}" +
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
    "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}" +
    "{% else %}{% set content = message['content'] %}{% endif %}" +
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}" +
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

  test("llama-2 with Meta's chat template passed in", async () => {
    const tok = await loadTokenizer(path.join(tokenizers, "llama-2"));
    const messages = [{ role: "system", content: "Be brief." }, ...conversation];
    expect(tok.applyChatTemplate(messages, { chatTemplate: LLAMA2_CHAT })).toBe(
      "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHello [/INST] Hi there </s><s>[INST] How are you? [/INST]",
    );
    // raise_exception → TokenizerError
    expect(() => tok.applyChatTemplate([{ role: "assistant", content: "x" }], { chatTemplate: LLAMA2_CHAT })).toThrow(
      /Conversation roles must alternate/,
    );
  });
});

describe("named templates (tokenizer_config.json's list of {name, template})", () => {
  function withTemplates(chatTemplate: unknown): Tokenizer {
    const files = createByteLevelTokenizer();
    return new Tokenizer({
      tokenizerJson: files["tokenizer.json"],
      tokenizerConfig: { ...files["tokenizer_config.json"], chat_template: chatTemplate },
    });
  }

  test('"default" is used unless a name is given', () => {
    const tok = withTemplates([
      { name: "default", template: "D:{{ messages[0]['content'] }}" },
      { name: "tool_use", template: "T:{{ messages[0]['content'] }}{{ eos_token }}" },
    ]);
    expect(tok.chatTemplateNames).toEqual(["default", "tool_use"]);
    expect(tok.applyChatTemplate([{ role: "user", content: "x" }])).toBe("D:x");
    expect(tok.applyChatTemplate([{ role: "user", content: "x" }], { chatTemplate: "tool_use" })).toBe("T:x</s>");
  });

  test("without a default, a name is required", () => {
    const tok = withTemplates([{ name: "rag", template: "R" }]);
    expect(() => tok.applyChatTemplate([{ role: "user", content: "x" }])).toThrow(/none is named "default" \(rag\)/);
    expect(tok.applyChatTemplate([{ role: "user", content: "x" }], { chatTemplate: "rag" })).toBe("R");
  });

  test("a template that does not parse is a TokenizerError", () => {
    const tok = withTemplates("{% for m in messages %}");
    expect(() => tok.applyChatTemplate([{ role: "user", content: "x" }])).toThrow(TokenizerError);
  });
});
