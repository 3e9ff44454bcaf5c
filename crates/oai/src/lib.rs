//! A small blocking client for OpenAI-compatible APIs: chat completions, text completions and the
//! model list, with logprobs, retries and an API key that never leaves the request header.
//!
//! Used by the judge's `openai` backend (one-token requests with `top_logprobs`) and meant for any
//! other caller that needs an OpenAI-compatible server: OpenAI itself, Azure's OpenAI routes, vLLM,
//! llama.cpp's `llama-server` or llama-cpp-python's server (`infra/llm-server.sh`).
//!
//! - [`Client::chat`]: `POST {base_url}/chat/completions` ([`ChatRequest`] -> [`ChatResponse`]);
//! - [`Client::completion`]: `POST {base_url}/completions` ([`CompletionRequest`] ->
//!   [`CompletionResponse`]);
//! - [`Client::models`]: `GET {base_url}/models`.
//!
//! Retries (see [`ClientConfig`]): no response, 408, 429 and 5xx are retried with exponential
//! backoff and deterministic jitter, honouring `Retry-After`; the final error names the URL, the
//! status, the number of attempts and the server's error body (truncated).
//!
//! The API key ([`ApiKey`]) comes from the environment or the caller, is sent only as a bearer
//! token and prints as `<redacted>`; with no key no `Authorization` header is sent.
//!
//! ```no_run
//! use emorg_oai::{ApiKey, ChatMessage, ChatRequest, Client, ClientConfig};
//! let client = Client::new(ClientConfig {
//!     api_key: ApiKey::from_env("OPENAI_API_KEY"),
//!     max_retries: 3,
//!     ..ClientConfig::new("http://127.0.0.1:9124/v1")
//! })?;
//! let r = client.chat(&ChatRequest {
//!     max_tokens: Some(1),
//!     temperature: Some(0.0),
//!     logprobs: Some(true),
//!     top_logprobs: Some(20),
//!     ..ChatRequest::new("qwen2.5-coder-1.5b-instruct", vec![ChatMessage::user("A number from 0 to 9?")])
//! })?;
//! for alt in &r.choices[0].token_logprobs()[0].top_logprobs {
//!     println!("{:>8} {:.3}", alt.token, alt.logprob.exp());
//! }
//! # Ok::<(), emorg_oai::Error>(())
//! ```

mod client;
mod error;
mod types;

pub use client::{
    ApiKey, Client, ClientConfig, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, validate_base_url,
};
pub use error::{Error, MAX_BODY_IN_ERROR, Result};
pub use types::{
    ChatChoice, ChatMessage, ChatRequest, ChatResponse, ChoiceLogprobs, CompletionChoice,
    CompletionLogprobs, CompletionRequest, CompletionResponse, Model, ResponseMessage,
    TokenLogprob, TopLogprob, Usage,
};
