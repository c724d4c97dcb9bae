/**
 * The tokenizer of our tiny demo models, built here rather than downloaded: a GPT-2-style
 * byte-level BPE, so every string round-trips exactly through encode/decode.
 *
 * Ids (vocabulary of 320 = 5 × 64):
 *   0 `<unk>` (never produced: every byte has a token), 1 `<s>` BOS (added by a
 *   TemplateProcessing post-processor), 2 `</s>` EOS, 3 `<pad>` (the tokenizer's pad token),
 *   4…259 the 256 bytes (id = 4 + byte, written with GPT-2's byte→character map: "Ġ" is a space),
 *   260…319 the first 60 merges of GPT-2 ("Ġ t", "Ġ a", "h e", …, "Ġth at"), so common English
 *   takes fewer tokens.
 *
 * No normalizer (so no text is changed), ByteLevel pre-tokenizer with GPT-2's regex, ByteLevel
 * decoder. The chat template writes plain-text role markers:
 *   `<s><|user|>\n{content}</s>\n<|assistant|>\n{content}</s>\n` and, with
 *   `add_generation_prompt`, a final `<|assistant|>\n`.
 * The files follow the Hugging Face formats, so Python transformers can load them too.
 */

/** The file name → JSON content of a tokenizer, ready to write into a model directory. */
export interface TokenizerFileSet {
  "tokenizer.json": Record<string, unknown>;
  "tokenizer_config.json": Record<string, unknown>;
  "special_tokens_map.json": Record<string, unknown>;
}

export const BYTE_LEVEL_SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"] as const;
/** Id of the first byte token: byte b has id BYTE_TOKEN_OFFSET + b. */
export const BYTE_TOKEN_OFFSET = BYTE_LEVEL_SPECIAL_TOKENS.length;

/** The first 60 merges of GPT-2's tokenizer (MIT, OpenAI), in rank order. */
const MERGES: ReadonlyArray<readonly [string, string]> = (
  "Ġ t|Ġ a|h e|i n|r e|o n|Ġt he|e r|Ġ s|a t|Ġ w|Ġ o|e n|Ġ c|i t|i s|a n|o r|e s|Ġ b|" +
  "e d|Ġ f|in g|Ġ p|o u|Ġa n|a l|a r|Ġt o|Ġ m|Ġo f|Ġ in|Ġ d|Ġ h|Ġan d|i c|a s|l e|Ġt h|i on|" +
  "o m|l l|en t|Ġ n|Ġ l|s t|Ġ re|v e|Ġ e|r o|l y|Ġb e|Ġ g|Ġ T|c t|Ġ S|i d|o t|Ġ I|u t"
)
  .split("|")
  .map((m) => m.split(" ") as [string, string]);

export const BYTE_LEVEL_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

/**
 * GPT-2's reversible byte → printable character map: printable Latin-1 bytes map to
 * themselves, the others to U+0100 upwards in byte order (space → "Ġ", newline → "Ċ").
 */
export function bytesToUnicode(): string[] {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let next = 0;
  for (let b = 0; b < 256; b++) {
    out.push(String.fromCodePoint(printable(b) ? b : 256 + next++));
  }
  return out;
}

/** An added special token as tokenizer_config.json's `added_tokens_decoder` writes it. */
function specialToken(content: string): Record<string, unknown> {
  return { content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/** The JSON files of the byte-level tokenizer (fresh objects on each call). */
export function createByteLevelTokenizer(): TokenizerFileSet {
  const vocab: Record<string, number> = {};
  BYTE_LEVEL_SPECIAL_TOKENS.forEach((t, i) => {
    vocab[t] = i;
  });
  bytesToUnicode().forEach((c, b) => {
    vocab[c] = BYTE_TOKEN_OFFSET + b;
  });
  let nextId = BYTE_TOKEN_OFFSET + 256;
  for (const [a, b] of MERGES) {
    vocab[a + b] = nextId++;
  }
  const [unk, bos, eos, pad] = BYTE_LEVEL_SPECIAL_TOKENS;
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: BYTE_LEVEL_SPECIAL_TOKENS.map((t, i) => ({ id: i, ...specialToken(t) })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [1], tokens: [bos] } },
    },
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: MERGES.map(([a, b]) => [a, b]),
    },
  };
  const tokenizerConfig = {
    tokenizer_class: "PreTrainedTokenizerFast",
    added_tokens_decoder: Object.fromEntries(BYTE_LEVEL_SPECIAL_TOKENS.map((t, i) => [String(i), specialToken(t)])),
    bos_token: bos,
    eos_token: eos,
    unk_token: unk,
    pad_token: pad,
    add_bos_token: true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    padding_side: "right",
    chat_template: BYTE_LEVEL_CHAT_TEMPLATE,
  };
  const specialTokensMap = { bos_token: bos, eos_token: eos, unk_token: unk, pad_token: pad };
  return {
    "tokenizer.json": tokenizerJson,
    "tokenizer_config.json": tokenizerConfig,
    "special_tokens_map.json": specialTokensMap,
  };
}
