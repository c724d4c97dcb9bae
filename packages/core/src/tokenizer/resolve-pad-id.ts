/**
 * The pad token rules of the reference fine-tuning script (docs/oml-reference.md §3):
 * a tokenizer's own pad token wins; otherwise EOS for llama and Eleuther (gpt_neox), BOS for
 * mistral, gemma and microsoft (phi3); for a local model path (no family), EOS when padding
 * on the right, else BOS.
 */
import { TokenizerError } from "../errors.js";

/**
 * Model families of the reference (`model_family`, see finetune-options' MODEL_FAMILIES), plus
 * the model_type names gpt_neox and phi3 for Eleuther and microsoft.
 */
export const PAD_RULE_FAMILIES = ["llama", "mistral", "Eleuther", "gpt_neox", "microsoft", "phi3", "gemma"] as const;
export type PadRuleFamily = (typeof PAD_RULE_FAMILIES)[number];

export type PaddingSide = "left" | "right";

const FAMILY_PAD: Record<PadRuleFamily, "eos" | "bos"> = {
  llama: "eos",
  Eleuther: "eos",
  gpt_neox: "eos",
  mistral: "bos",
  gemma: "bos",
  microsoft: "bos",
  phi3: "bos",
};

/** What the rules need to know about a tokenizer. */
export interface PadCandidates {
  /** The tokenizer's own pad token id (pad_token of tokenizer_config.json / special_tokens_map.json). */
  padTokenId?: number;
  bosId?: number;
  eosId?: number;
}

export interface ResolvePadIdParams {
  /** The reference's model family; omit for a local model path. */
  family?: PadRuleFamily;
  /** Padding side, used only for a local path (no family). Default "right". */
  paddingSide?: PaddingSide;
}

/** The pad id the rules pick, or undefined when the picked token does not exist. */
export function pickPadId(tok: PadCandidates, params: ResolvePadIdParams = {}): number | undefined {
  if (tok.padTokenId !== undefined) {
    return tok.padTokenId;
  }
  const rule = params.family !== undefined ? FAMILY_PAD[params.family] : (params.paddingSide ?? "right") === "right" ? "eos" : "bos";
  return rule === "eos" ? tok.eosId : tok.bosId;
}

/**
 * The pad token id by the reference's rules.
 * @param tok the tokenizer (its pad, BOS and EOS ids)
 * @param params `family` of the reference, or none for a local path with `paddingSide`
 * @throws TokenizerError when the rule picks a token the tokenizer does not have
 */
export function resolvePadId(tok: PadCandidates, params: ResolvePadIdParams = {}): number {
  if (params.family !== undefined && !(params.family in FAMILY_PAD)) {
    throw new TokenizerError(`unknown model family "${String(params.family)}"`, { hint: `use one of ${PAD_RULE_FAMILIES.join(", ")}` });
  }
  const id = pickPadId(tok, params);
  if (id === undefined) {
    const rule = params.family !== undefined ? `family ${params.family}` : `padding side ${params.paddingSide ?? "right"}`;
    throw new TokenizerError(`the tokenizer has no pad token, and the token the rule for ${rule} picks (BOS or EOS) is not set either`, {
      hint: "set pad_token in tokenizer_config.json",
    });
  }
  return id;
}
