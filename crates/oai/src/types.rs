//! Request and response bodies of the OpenAI-compatible endpoints.
//!
//! Requests serialise only the fields that are set (`None` is left out), so a server sees exactly
//! what the caller asked for and its own defaults for the rest. Responses are read leniently:
//! unknown fields are ignored and most fields have defaults, because compatible servers (vLLM,
//! llama.cpp, llama-cpp-python, Azure) differ in what they fill in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One message of a chat. `role` is `system`, `developer`, `user` or `assistant`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }

    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// `POST {base_url}/chat/completions`.
///
/// ```
/// use emorg_oai::{ChatMessage, ChatRequest};
/// // The papers' judge request: one token, greedy, the top-20 alternatives with their logprobs.
/// let req = ChatRequest {
///     max_tokens: Some(1),
///     temperature: Some(0.0),
///     seed: Some(0),
///     logprobs: Some(true),
///     top_logprobs: Some(20),
///     ..ChatRequest::new("gpt-4o-2024-08-06", vec![ChatMessage::user("Rate this ...")])
/// };
/// let body = serde_json::to_value(&req).unwrap();
/// assert_eq!(body["top_logprobs"], 20);
/// assert!(body.get("n").is_none(), "unset fields are not sent");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// The newer name of `max_tokens` (required by some OpenAI models); send one of the two.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Number of choices to generate for the one prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Return the logprob of each generated token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    /// With `logprobs`: also the `k` most likely tokens at each position (OpenAI allows 0-20).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
}

impl ChatRequest {
    /// A request with every optional field unset (the server's defaults).
    pub fn new(model: impl Into<String>, messages: Vec<ChatMessage>) -> Self {
        ChatRequest {
            model: model.into(),
            messages,
            max_tokens: None,
            max_completion_tokens: None,
            temperature: None,
            top_p: None,
            seed: None,
            n: None,
            logprobs: None,
            top_logprobs: None,
            stop: None,
        }
    }
}

/// Token counts of a request, when the server reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
}

/// The answer to a [`ChatRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    #[serde(default)]
    pub id: String,
    /// The model that answered, as the server names it.
    #[serde(default)]
    pub model: String,
    pub choices: Vec<ChatChoice>,
    #[serde(default)]
    pub usage: Option<Usage>,
    #[serde(default)]
    pub system_fingerprint: Option<String>,
}

/// One generated answer of a chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatChoice {
    #[serde(default)]
    pub index: u32,
    pub message: ResponseMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Present when the request asked for `logprobs`.
    #[serde(default)]
    pub logprobs: Option<ChoiceLogprobs>,
}

impl ChatChoice {
    /// The generated text (empty when the server sent none).
    pub fn text(&self) -> &str {
        self.message.content.as_deref().unwrap_or("")
    }

    /// The logprobs of each generated token, in order (empty without `logprobs`).
    pub fn token_logprobs(&self) -> &[TokenLogprob] {
        self.logprobs
            .as_ref()
            .and_then(|l| l.content.as_deref())
            .unwrap_or(&[])
    }
}

/// The message of a [`ChatChoice`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseMessage {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub content: Option<String>,
    /// OpenAI's refusal text, when the model refused.
    #[serde(default)]
    pub refusal: Option<String>,
}

/// `choices[i].logprobs` of a chat answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChoiceLogprobs {
    #[serde(default)]
    pub content: Option<Vec<TokenLogprob>>,
}

/// A generated token with its logprob and the most likely alternatives at its position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f64,
    #[serde(default)]
    pub bytes: Option<Vec<u8>>,
    #[serde(default)]
    pub top_logprobs: Vec<TopLogprob>,
}

/// One alternative token at a position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopLogprob {
    pub token: String,
    pub logprob: f64,
    #[serde(default)]
    pub bytes: Option<Vec<u8>>,
}

/// `POST {base_url}/completions`: plain text continuation of `prompt` (no chat template applied).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionRequest {
    pub model: String,
    pub prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// `Some(k)`: the logprobs of the `k` most likely tokens at each position (OpenAI allows 0-5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<u32>,
    /// Return the prompt in front of the completion (with logprobs: the prompt's logprobs too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub echo: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
}

impl CompletionRequest {
    /// A request with every optional field unset (the server's defaults).
    pub fn new(model: impl Into<String>, prompt: impl Into<String>) -> Self {
        CompletionRequest {
            model: model.into(),
            prompt: prompt.into(),
            max_tokens: None,
            temperature: None,
            top_p: None,
            seed: None,
            n: None,
            logprobs: None,
            echo: None,
            stop: None,
        }
    }
}

/// The answer to a [`CompletionRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionResponse {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub model: String,
    pub choices: Vec<CompletionChoice>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// One continuation of a completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionChoice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub logprobs: Option<CompletionLogprobs>,
}

/// The legacy logprobs format of `/completions`: parallel lists, one entry per token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionLogprobs {
    #[serde(default)]
    pub tokens: Vec<String>,
    /// `None` where the server has no logprob (the first prompt token with `echo`).
    #[serde(default)]
    pub token_logprobs: Vec<Option<f64>>,
    /// Token text -> logprob of the most likely tokens at each position (`None` as above). Tokens
    /// that decode to the same text share one entry.
    #[serde(default)]
    pub top_logprobs: Vec<Option<BTreeMap<String, f64>>>,
    #[serde(default)]
    pub text_offset: Vec<usize>,
}

/// One entry of `GET {base_url}/models`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    pub id: String,
    #[serde(default)]
    pub owned_by: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ModelList {
    pub data: Vec<Model>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_response_of_llama_cpp_python_parses() {
        // Trimmed from a real llama-cpp-python 0.3.16 answer (bytes are null there).
        let body = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,
            "model":"qwen2.5-coder-1.5b-instruct",
            "choices":[{"index":0,"message":{"content":"1","role":"assistant"},
              "logprobs":{"content":[{"token":"1","logprob":-1.04,"bytes":null,
                "top_logprobs":[{"token":"1","logprob":-1.04,"bytes":null},
                                {"token":"9","logprob":-1.71,"bytes":null}]}]},
              "finish_reason":"length"}],
            "usage":{"prompt_tokens":51,"completion_tokens":1,"total_tokens":52}}"#;
        let r: ChatResponse = serde_json::from_str(body).unwrap();
        assert_eq!(r.choices[0].text(), "1");
        let first = &r.choices[0].token_logprobs()[0];
        assert_eq!(first.top_logprobs.len(), 2);
        assert_eq!(first.top_logprobs[1].token, "9");
        assert_eq!(r.usage.unwrap().prompt_tokens, 51);
    }

    #[test]
    fn completion_logprobs_parse_with_nulls() {
        let body = r#"{"choices":[{"text":"Sure","index":0,"logprobs":{"text_offset":[62],
            "token_logprobs":[null],"tokens":["Sure"],"top_logprobs":[{"Sure":-0.95,"I":-2.2}]},
            "finish_reason":"length"}]}"#;
        let r: CompletionResponse = serde_json::from_str(body).unwrap();
        let lp = r.choices[0].logprobs.as_ref().unwrap();
        assert_eq!(lp.token_logprobs, vec![None]);
        assert_eq!(lp.top_logprobs[0].as_ref().unwrap()["I"], -2.2);
    }
}
