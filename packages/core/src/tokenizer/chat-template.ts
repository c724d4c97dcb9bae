/**
 * Chat templates, rendered to text with @huggingface/jinja as transformers.js'
 * `apply_chat_template` does: the template sees `messages`, `add_generation_prompt` and the
 * special tokens (`bos_token`, `eos_token`, …) as strings. A tokenizer may have one template
 * or several named ones (tokenizer_config.json's list of `{name, template}`); without a name,
 * "default" is used.
 */
import { Template } from "@huggingface/jinja";
import { TokenizerError } from "../errors.js";

/** One chat turn. */
export interface ChatMessage {
  role: string;
  content: string;
}

export interface ApplyChatTemplateOptions {
  /** End with the start of an assistant turn (the template decides what that is). Default false. */
  addGenerationPrompt?: boolean;
  /** The name of one of the tokenizer's templates, or a jinja template string. */
  chatTemplate?: string;
  /** Extra variables for the template. */
  variables?: Record<string, unknown>;
}

/** Compiled templates of one tokenizer, by template text. */
export class ChatTemplates {
  private readonly compiled = new Map<string, Template>();

  /**
   * @param templates the tokenizer's templates by name ("default" for a single one)
   * @param specialTokens `bos_token`, `eos_token`, … as the template sees them
   * @param source where the templates come from (named in errors)
   */
  constructor(
    readonly templates: Readonly<Record<string, string>>,
    private readonly specialTokens: Readonly<Record<string, string>>,
    private readonly source: string,
  ) {}

  get hasTemplate(): boolean {
    return Object.keys(this.templates).length > 0;
  }

  /** The template text `apply` would use. */
  select(chatTemplate?: string): string {
    if (chatTemplate !== undefined) {
      return Object.hasOwn(this.templates, chatTemplate) ? (this.templates[chatTemplate] as string) : chatTemplate;
    }
    const names = Object.keys(this.templates);
    if (names.length === 0) {
      throw new TokenizerError(`${this.source}: the tokenizer has no chat template`, {
        hint: "use a model with chat_template in tokenizer_config.json (or chat_template.jinja), or pass a template",
      });
    }
    const t = this.templates["default"];
    if (t === undefined) {
      throw new TokenizerError(`${this.source}: the tokenizer has several chat templates and none is named "default" (${names.sort().join(", ")})`, {
        hint: "pass the name of the template to use",
      });
    }
    return t;
  }

  /** Render `messages` to text. */
  apply(messages: readonly ChatMessage[], opts: ApplyChatTemplateOptions = {}): string {
    const text = this.select(opts.chatTemplate);
    let template = this.compiled.get(text);
    if (template === undefined) {
      try {
        template = new Template(text);
      } catch (cause) {
        throw new TokenizerError(`${this.source}: chat template does not parse: ${(cause as Error).message}`, { cause, hint: "fix chat_template" });
      }
      this.compiled.set(text, template);
    }
    try {
      return template.render({
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: opts.addGenerationPrompt ?? false,
        ...this.specialTokens,
        ...opts.variables,
      });
    } catch (cause) {
      throw new TokenizerError(`${this.source}: chat template failed: ${(cause as Error).message}`, {
        cause,
        hint: "the template rejects these messages (e.g. roles must alternate user/assistant)",
      });
    }
  }
}
