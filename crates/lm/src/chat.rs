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

/// ChatML, used when a GGUF carries no template (llama/qwen2 base models).
pub(crate) const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

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

    /// The GGUF's own template, or ChatML when it has none.
    pub fn from_gguf(file: &crate::GgufFile, tokenizer: &crate::GgufTokenizer) -> Result<Self> {
        let source = file
            .meta_str("tokenizer.chat_template")
            .unwrap_or_else(|_| CHATML.to_string());
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
}
