/**
 * The two file formats the reference scripts exchange (docs/oml-reference.md §1), kept
 * compatible both ways: same field names, unknown fields preserved on rewrite.
 *
 * - fingerprints file: `[{ key, response: string | string[], effective_key?, response_prob? }]`
 * - custom keys file: `[string]`
 */
import { z } from "zod";

const nonEmptyString = z.string({ error: "expected a string" }).min(1, { error: "expected a non-empty string" });

export const FingerprintSchema = z.looseObject({
  key: nonEmptyString,
  /** One response, or several responses for one key (perinucleus with N responses per key). */
  response: z.union([nonEmptyString, z.array(nonEmptyString).min(1)], {
    error: "expected a non-empty string or a non-empty array of strings",
  }),
  /** The key as actually used (after truncation or chat templating), as the newer reference writes. */
  effective_key: z.string({ error: "expected a string" }).optional(),
  /** The base model's probability of each response token (newer reference). */
  response_prob: z.union([z.number(), z.array(z.number())], { error: "expected a number or an array of numbers" }).optional(),
});
export type Fingerprint = z.infer<typeof FingerprintSchema>;

export const FingerprintFileSchema = z.array(FingerprintSchema, { error: "expected a JSON array of {key, response} objects" });
export type FingerprintFile = z.infer<typeof FingerprintFileSchema>;

export const KeysFileSchema = z.array(nonEmptyString, { error: "expected a JSON array of key strings" });
export type KeysFile = z.infer<typeof KeysFileSchema>;

/** The responses of a fingerprint as a list (a single string becomes one element). */
export function responsesOf(fp: Fingerprint): string[] {
  return typeof fp.response === "string" ? [fp.response] : fp.response;
}
