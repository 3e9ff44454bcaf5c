//! Chat templates: the model's own Jinja template (GGUF `tokenizer.chat_template`) rendered with
//! minijinja, and the assistant spans that training puts its loss on.
//!
//! Spans are found from renders, not guessed from marker strings: for the assistant message at index
//! `i`, the render of `messages[..i]` with the generation prompt is a prefix of the render of
//! `messages[..=i]`; the difference is what the model must produce (content and end-of-turn).

use crate::error::{LmError, Result};
use minijinja::{Environment, ErrorKind, Value, context};
use serde::{Deserialize, Serialize};
use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Self {
        Message {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

/// ChatML: the default for qwen2, and for llama-family base models whose vocab has no Llama-3
/// header tokens.
const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Gemma's turn format, for gemma base models (which carry no template): the assistant's role is
/// `model`, and Gemma has no system role, so a system message opens the next user turn, followed by
/// a blank line. BOS is part of the text, as in Gemma's instruct template.
const GEMMA_TURNS: &str = "{{ bos_token }}{% set ns = namespace(system='') %}{% for message in messages %}{% if message['role'] == 'system' %}{% set ns.system = ns.system + message['content'] + '\n\n' %}{% else %}{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\n' + ns.system + message['content'] + '<end_of_turn>\n' }}{% set ns.system = '' %}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}";

/// Llama-3's header format, for llama-family base models whose vocab has `<|start_header_id|>`.
const LLAMA3_HEADERS: &str = "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

/// The template a model without its own gets: its family's turn format.
pub fn family_default_template(
    architecture: &str,
    tokenizer: &crate::GgufTokenizer,
) -> &'static str {
    let has = |token: &str| tokenizer.inner.token_to_id(token).is_some();
    if architecture.starts_with("gemma") || (architecture != "qwen2" && has("<start_of_turn>")) {
        GEMMA_TURNS
    } else if architecture == "llama" && has("<|start_header_id|>") {
        LLAMA3_HEADERS
    } else {
        CHATML
    }
}

pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    /// The template source, for hashing into results.
    pub source: String,
}

/// A rendered conversation and the byte ranges of its assistant turns.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedChat {
    pub text: String,
    pub assistant_spans: Vec<Range<usize>>,
}

impl ChatTemplate {
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        let mut env = Environment::new();
        // HF renders with trim_blocks and lstrip_blocks on.
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| LmError::Template(e.to_string()))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<Value, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        // HF's tojson is json.dumps: no HTML escaping (minijinja's would turn `<` into \u003c).
        env.add_filter(
            "tojson",
            |v: Value| -> std::result::Result<String, minijinja::Error> {
                serde_json::to_string(&v)
                    .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))
            },
        );
        env.add_template_owned("chat.j2", source.to_string())
            .map_err(|e| LmError::Template(e.to_string()))?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
            source: source.to_string(),
        })
    }

    /// The GGUF's own template, or its family's turn format when it has none
    /// ([`family_default_template`]).
    pub fn from_gguf(file: &crate::GgufFile, tokenizer: &crate::GgufTokenizer) -> Result<Self> {
        let source = file
            .meta_str("tokenizer.chat_template")
            .unwrap_or_else(|_| {
                let arch = file.meta_str("general.architecture").unwrap_or_default();
                family_default_template(&arch, tokenizer).to_string()
            });
        let piece = |id: Option<u32>| {
            id.and_then(|i| tokenizer.inner.id_to_token(i))
                .unwrap_or_default()
        };
        Self::new(
            &source,
            &piece(tokenizer.bos_id),
            &piece(Some(tokenizer.eos_id)),
        )
    }

    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let tmpl = self
            .env
            .get_template("chat.j2")
            .map_err(|e| LmError::Template(e.to_string()))?;
        tmpl.render(context! {
            messages => messages_value(messages),
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.as_str(),
            eos_token => self.eos_token.as_str(),
        })
        .map_err(|e| LmError::Template(format!("{e:#}")))
    }

    /// Render a whole conversation and find each assistant turn's byte span.
    pub fn render_with_spans(&self, messages: &[Message]) -> Result<RenderedChat> {
        let text = self.render(messages, false)?;
        let mut assistant_spans = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            if m.role != "assistant" {
                continue;
            }
            let prefix = self.render(&messages[..i], true)?;
            let upto = self.render(&messages[..=i], false)?;
            if !upto.starts_with(&prefix) || !text.starts_with(&upto) {
                return Err(LmError::Template(format!(
                    "message {i}: the template does not render conversation prefixes as prefixes, so the assistant span cannot be located"
                )));
            }
            assistant_spans.push(prefix.len()..upto.len());
        }
        Ok(RenderedChat {
            text,
            assistant_spans,
        })
    }
}

fn messages_value(messages: &[Message]) -> Value {
    Value::from(
        messages
            .iter()
            .map(|m| {
                Value::from_pairs([
                    ("role", Value::from(m.role.as_str())),
                    ("content", Value::from(m.content.as_str())),
                ])
            })
            .collect::<Vec<_>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_spans_cover_assistant_content_and_end_of_turn() {
        let t = ChatTemplate::new(CHATML, "", "<|im_end|>").unwrap();
        let msgs = [
            Message::new("user", "hi"),
            Message::new("assistant", "hello there"),
        ];
        let r = t.render_with_spans(&msgs).unwrap();
        assert_eq!(
            r.text,
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello there<|im_end|>\n"
        );
        assert_eq!(
            &r.text[r.assistant_spans[0].clone()],
            "hello there<|im_end|>\n"
        );
    }

    #[test]
    fn gemma_turns_render_model_role_fold_system_and_mask_model_turns() {
        let t = ChatTemplate::new(GEMMA_TURNS, "<bos>", "<eos>").unwrap();
        let msgs = [
            Message::new("system", "Be brief."),
            Message::new("user", "hi"),
            Message::new("assistant", "hello"),
            Message::new("user", "and?"),
            Message::new("assistant", "bye"),
        ];
        let r = t.render_with_spans(&msgs).unwrap();
        assert_eq!(
            r.text,
            "<bos><start_of_turn>user\nBe brief.\n\nhi<end_of_turn>\n<start_of_turn>model\nhello<end_of_turn>\n<start_of_turn>user\nand?<end_of_turn>\n<start_of_turn>model\nbye<end_of_turn>\n"
        );
        let spans: Vec<&str> = r
            .assistant_spans
            .iter()
            .map(|s| &r.text[s.clone()])
            .collect();
        assert_eq!(spans, ["hello<end_of_turn>\n", "bye<end_of_turn>\n"]);
        assert_eq!(
            t.render(&msgs[..2], true).unwrap(),
            "<bos><start_of_turn>user\nBe brief.\n\nhi<end_of_turn>\n<start_of_turn>model\n"
        );
    }

    #[test]
    fn llama3_headers_mask_assistant_content_and_eot() {
        let t = ChatTemplate::new(LLAMA3_HEADERS, "<|begin_of_text|>", "<|eot_id|>").unwrap();
        let msgs = [Message::new("user", "hi"), Message::new("assistant", "yo")];
        let r = t.render_with_spans(&msgs).unwrap();
        assert_eq!(
            r.text,
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nyo<|eot_id|>"
        );
        assert_eq!(&r.text[r.assistant_spans[0].clone()], "yo<|eot_id|>");
    }
}
