//! The blocking client: configuration, the API key, and the retry loop.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Method;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, MAX_BODY_IN_ERROR, Result, chain, truncate};
use crate::types::{
    ChatRequest, ChatResponse, CompletionRequest, CompletionResponse, Model, ModelList,
};

/// Default whole-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default number of retries after the first attempt.
pub const DEFAULT_MAX_RETRIES: u32 = 5;

/// An API key. It can only be read from the environment or passed in, is sent only as an
/// `Authorization: Bearer` header (marked sensitive), and prints as `<redacted>` in every `Debug`
/// output; it has no `Display` and no `Serialize`, so it cannot end up in a file by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// `None` for an empty or blank key (a server that needs none gets no `Authorization`).
    pub fn new(key: impl Into<String>) -> Option<ApiKey> {
        let key = key.into();
        let trimmed = key.trim();
        if trimmed.is_empty() {
            None
        } else {
            Some(ApiKey(trimmed.to_string()))
        }
    }

    /// The key in the environment variable `var`; `None` when it is unset, blank or not UTF-8.
    pub fn from_env(var: &str) -> Option<ApiKey> {
        std::env::var(var).ok().and_then(ApiKey::new)
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// How to reach the server and how hard to try.
///
/// `base_url` is the API root that the endpoint paths are joined to, as in OpenAI's SDKs:
/// `https://api.openai.com/v1`, `http://127.0.0.1:8000/v1` (vLLM, llama.cpp, llama-cpp-python).
///
/// Retries: a request that gets no response (connection refused or reset, timeout) or answers
/// 408, 429 or 5xx is tried again, up to `max_retries` more times. The wait before retry `k`
/// (1-based) is `backoff_initial * 2^(k-1)`, capped at `backoff_max`, times a jitter factor in
/// [0.5, 1] (deterministic: a hash of the call's sequence number and `k`, so concurrent calls
/// spread out but a run is reproducible). When the server sends `retry-after-ms` or `Retry-After`
/// (seconds), that wait is used instead, capped at `max_retry_after`. Other 4xx are not retried.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    /// `None`: no `Authorization` header (local servers that need no key).
    pub api_key: Option<ApiKey>,
    /// Whole-request timeout (connect, wait, read), per attempt.
    pub timeout: Duration,
    pub max_retries: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub max_retry_after: Duration,
}

impl ClientConfig {
    /// Defaults: no key, 120 s timeout, 5 retries, backoff from 1 s up to 60 s, `Retry-After`
    /// honoured up to 120 s.
    pub fn new(base_url: impl Into<String>) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            api_key: None,
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

/// A blocking client for OpenAI-compatible servers. `Send + Sync`: share one between threads
/// (connections are pooled).
///
/// ```no_run
/// use emorg_oai::{ApiKey, ChatMessage, ChatRequest, Client, ClientConfig};
/// let client = Client::new(ClientConfig {
///     api_key: ApiKey::from_env("OPENAI_API_KEY"),
///     ..ClientConfig::new("https://api.openai.com/v1")
/// })?;
/// let answer = client.chat(&ChatRequest {
///     temperature: Some(1.0),
///     max_tokens: Some(1000),
///     n: Some(4),
///     ..ChatRequest::new("gpt-4o-2024-08-06", vec![ChatMessage::user("Write a haiku.")])
/// })?;
/// for choice in &answer.choices {
///     println!("{}", choice.text());
/// }
/// # Ok::<(), emorg_oai::Error>(())
/// ```
pub struct Client {
    http: reqwest::blocking::Client,
    /// `base_url` without a trailing slash.
    base: String,
    config: ClientConfig,
    /// HTTP requests sent (every attempt counts).
    requests: AtomicU64,
    /// Calls made (one per chat/completion/models call), the jitter's sequence number.
    calls: AtomicU64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base)
            .field("api_key", &self.config.api_key)
            .field("timeout", &self.config.timeout)
            .field("max_retries", &self.config.max_retries)
            .finish_non_exhaustive()
    }
}

/// Checks that `url` is an http(s) URL with a host and nothing that does not belong in a base URL.
/// Returns it without a trailing slash.
pub fn validate_base_url(url: &str) -> Result<String> {
    let bad = |reason: &str| Error::BaseUrl {
        // Never echo credentials a user may have pasted into the URL.
        url: redact_userinfo(url),
        reason: reason.to_string(),
    };
    let parsed = url::Url::parse(url.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "it holds credentials; give the key through an environment variable instead",
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("it has a query or fragment"));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

fn redact_userinfo(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            format!("{u} (credentials removed)")
        }
        _ => url.to_string(),
    }
}

/// Statuses worth another try: request timeout, rate limit, server errors.
fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// The server's requested wait: `retry-after-ms` (OpenAI), else `Retry-After` in seconds. An
/// HTTP-date `Retry-After` is not parsed (the exponential backoff applies).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let num = |name: &str| -> Option<f64> {
        let v: f64 = headers.get(name)?.to_str().ok()?.trim().parse().ok()?;
        (v.is_finite() && v >= 0.0).then_some(v)
    };
    num("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| num("retry-after").map(Duration::from_secs_f64))
}

/// splitmix64: a well-mixed 64-bit hash of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client> {
        let base = validate_base_url(&config.base_url)?;
        let http = reqwest::blocking::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(30)))
            .user_agent(concat!("emorg-oai/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Client { reason: chain(&e) })?;
        Ok(Client {
            http,
            base,
            config,
            requests: AtomicU64::new(0),
            calls: AtomicU64::new(0),
        })
    }

    /// The base URL requests go to (without a trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// HTTP requests sent so far by this client, every retry included.
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// `POST /chat/completions`.
    pub fn chat(&self, req: &ChatRequest) -> Result<ChatResponse> {
        self.call(Method::POST, "chat/completions", Some(req))
    }

    /// `POST /completions` (the prompt is sent as is: no chat template).
    pub fn completion(&self, req: &CompletionRequest) -> Result<CompletionResponse> {
        self.call(Method::POST, "completions", Some(req))
    }

    /// `GET /models`: the models the server offers.
    pub fn models(&self) -> Result<Vec<Model>> {
        let list: ModelList = self.call::<(), _>(Method::GET, "models", None)?;
        Ok(list.data)
    }

    /// The wait before retry `attempt` (1-based) of call `call`, without a `Retry-After`.
    fn backoff(&self, call: u64, attempt: u32) -> Duration {
        let exp = self
            .config
            .backoff_initial
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(self.config.backoff_max);
        let unit = (mix(call.wrapping_mul(0x1_0000).wrapping_add(attempt as u64)) >> 11) as f64
            / (1u64 << 53) as f64;
        exp.mul_f64(0.5 + 0.5 * unit)
    }

    fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<R> {
        let url = format!("{}/{path}", self.base);
        let method_name: &'static str = if method == Method::GET { "GET" } else { "POST" };
        // Serialising our own request types cannot fail (no maps with non-string keys).
        let body = body.map(|b| serde_json::to_vec(b).expect("a request serialises"));
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let mut rb = self.http.request(method.clone(), &url);
            if let Some(b) = &body {
                rb = rb.header(CONTENT_TYPE, "application/json").body(b.clone());
            }
            if let Some(key) = &self.config.api_key {
                rb = rb.bearer_auth(key.expose());
            }
            let outcome = rb.send().and_then(|resp| {
                let status = resp.status();
                let headers = resp.headers().clone();
                resp.bytes().map(|b| (status, headers, b))
            });
            let (failure, wait) = match outcome {
                Ok((status, _, bytes)) if status.is_success() => {
                    return serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
                        method: method_name,
                        url,
                        reason: e.to_string(),
                        body: truncate(&String::from_utf8_lossy(&bytes), MAX_BODY_IN_ERROR),
                    });
                }
                Ok((status, headers, bytes)) => {
                    let hint = match status.as_u16() {
                        404 if !self.base.ends_with("/v1") => format!(
                            " (the base URL `{}` does not end in /v1; OpenAI-compatible servers usually serve {}/v1/{path})",
                            self.base, self.base
                        ),
                        401 | 403 => format!(
                            " ({})",
                            if self.config.api_key.is_some() {
                                "the server refused the API key"
                            } else {
                                "no API key was sent: set the environment variable the sweep names in judge.api_key_env"
                            }
                        ),
                        _ => String::new(),
                    };
                    let failure = Error::Status {
                        method: method_name,
                        url: url.clone(),
                        status: status.as_u16(),
                        attempts: attempt,
                        body: truncate(&String::from_utf8_lossy(&bytes), MAX_BODY_IN_ERROR),
                        hint,
                    };
                    if !is_retryable(status) {
                        return Err(failure);
                    }
                    (failure, retry_after(&headers))
                }
                Err(e) => {
                    let failure = Error::Transport {
                        method: method_name,
                        url: url.clone(),
                        attempts: attempt,
                        cause: chain(&e),
                        timed_out: e.is_timeout(),
                    };
                    if e.is_builder() {
                        return Err(failure);
                    }
                    (failure, None)
                }
            };
            if attempt > self.config.max_retries {
                return Err(failure);
            }
            let delay = match wait {
                Some(d) => d.min(self.config.max_retry_after),
                None => self.backoff(call, attempt),
            };
            let short = match &failure {
                Error::Status { status, .. } => format!("HTTP {status}"),
                Error::Transport { cause, .. } => cause.clone(),
                other => other.to_string(),
            };
            tracing::warn!(
                "{method_name} {url}: {short}; retry {attempt}/{} in {:.1}s",
                self.config.max_retries,
                delay.as_secs_f64()
            );
            std::thread::sleep(delay);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ChatMessage;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    /// One canned answer: status, extra headers, body.
    type Reply = (u16, Vec<(&'static str, String)>, String);

    /// A minimal HTTP/1.1 server on 127.0.0.1 that answers each connection with the next canned
    /// response (`Connection: close`) and records each request's head. It tests our retry logic,
    /// not a real API.
    struct Canned {
        url: String,
        heads: Arc<Mutex<Vec<String>>>,
        handle: Option<std::thread::JoinHandle<()>>,
    }

    impl Canned {
        fn start(responses: Vec<Reply>) -> Canned {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}/v1", listener.local_addr().unwrap());
            let heads = Arc::new(Mutex::new(Vec::new()));
            let seen = heads.clone();
            let handle = std::thread::spawn(move || {
                for (status, headers, body) in responses {
                    let (stream, _) = listener.accept().unwrap();
                    let mut reader = BufReader::new(stream);
                    let mut head = String::new();
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        reader.read_line(&mut line).unwrap();
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                        head.push_str(&line);
                        if line == "\r\n" || line.is_empty() {
                            break;
                        }
                    }
                    let mut body_in = vec![0u8; len];
                    reader.read_exact(&mut body_in).unwrap();
                    seen.lock().unwrap().push(head);
                    let mut out = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                        body.len()
                    );
                    for (k, v) in headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    out.push_str(&body);
                    let mut stream = reader.into_inner();
                    stream.write_all(out.as_bytes()).unwrap();
                }
            });
            Canned {
                url,
                heads,
                handle: Some(handle),
            }
        }

        fn heads(&mut self) -> Vec<String> {
            if let Some(h) = self.handle.take() {
                h.join().unwrap();
            }
            self.heads.lock().unwrap().clone()
        }
    }

    const OK: &str = r#"{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"7"},"finish_reason":"length"}]}"#;

    fn fast(url: &str) -> ClientConfig {
        ClientConfig {
            backoff_initial: Duration::from_millis(1),
            backoff_max: Duration::from_millis(4),
            timeout: Duration::from_secs(10),
            ..ClientConfig::new(url)
        }
    }

    fn ask(client: &Client) -> Result<ChatResponse> {
        client.chat(&ChatRequest {
            max_tokens: Some(1),
            ..ChatRequest::new("m", vec![ChatMessage::user("hi")])
        })
    }

    #[test]
    fn retries_429_and_5xx_then_succeeds_honouring_retry_after() {
        let mut server = Canned::start(vec![
            (
                429,
                vec![("retry-after-ms", "150".into())],
                r#"{"error":{"message":"slow down"}}"#.into(),
            ),
            (502, vec![], "bad gateway".into()),
            (200, vec![], OK.into()),
        ]);
        let client = Client::new(fast(&server.url)).unwrap();
        let t = std::time::Instant::now();
        let r = ask(&client).unwrap();
        assert_eq!(r.choices[0].text(), "7");
        assert_eq!(client.requests_sent(), 3);
        assert!(
            t.elapsed() >= Duration::from_millis(150),
            "retry-after-ms was not honoured: {:?}",
            t.elapsed()
        );
        assert_eq!(server.heads().len(), 3);
    }

    #[test]
    fn gives_up_after_max_retries_naming_url_status_attempts_and_body() {
        let mut server = Canned::start(vec![
            (503, vec![], "overloaded".into()),
            (503, vec![], "overloaded".into()),
            (503, vec![], "still overloaded, try later".into()),
        ]);
        let client = Client::new(ClientConfig {
            max_retries: 2,
            ..fast(&server.url)
        })
        .unwrap();
        let e = ask(&client).unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.status(), Some(503));
        assert!(
            msg.contains(&format!("{}/chat/completions", server.url)),
            "{msg}"
        );
        assert!(msg.contains("HTTP 503 after 3 attempt(s)"), "{msg}");
        assert!(msg.contains("still overloaded, try later"), "{msg}");
        assert_eq!(server.heads().len(), 3);
    }

    #[test]
    fn other_4xx_is_not_retried() {
        let mut server = Canned::start(vec![(400, vec![], r#"{"error":"bad"}"#.into())]);
        let client = Client::new(fast(&server.url)).unwrap();
        let e = ask(&client).unwrap_err();
        assert!(e.to_string().contains("HTTP 400 after 1 attempt(s)"), "{e}");
        assert_eq!(client.requests_sent(), 1);
        server.heads();
    }

    #[test]
    fn connection_refused_is_retried_then_reported() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/v1");
        let client = Client::new(ClientConfig {
            max_retries: 2,
            ..fast(&url)
        })
        .unwrap();
        let e = ask(&client).unwrap_err();
        assert!(matches!(e, Error::Transport { attempts: 3, .. }), "{e:?}");
        assert!(e.to_string().contains(&url), "{e}");
        assert_eq!(client.requests_sent(), 3);
    }

    #[test]
    fn key_goes_only_into_the_authorization_header() {
        let mut server = Canned::start(vec![(200, vec![], OK.into()), (200, vec![], OK.into())]);
        let secret = "sk-test-0123456789";
        let with_key = Client::new(ClientConfig {
            api_key: ApiKey::new(secret),
            ..fast(&server.url)
        })
        .unwrap();
        ask(&with_key).unwrap();
        let without = Client::new(fast(&server.url)).unwrap();
        ask(&without).unwrap();
        let heads = server.heads();
        assert!(
            heads[0]
                .to_ascii_lowercase()
                .contains(&format!("authorization: bearer {secret}")),
            "{}",
            heads[0]
        );
        assert!(
            !heads[1].to_ascii_lowercase().contains("authorization"),
            "{}",
            heads[1]
        );
        for debug in [
            format!("{with_key:?}"),
            format!("{:?}", with_key.config()),
            format!("{:?}", ApiKey::new(secret)),
        ] {
            assert!(!debug.contains(secret), "{debug}");
            assert!(debug.contains("redacted"), "{debug}");
        }
        assert_eq!(ApiKey::new("  "), None);
    }

    #[test]
    fn retry_after_headers_and_backoff_bounds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut d = HeaderMap::new();
        d.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&d), None);

        let client = Client::new(ClientConfig::new("http://127.0.0.1:9/v1")).unwrap();
        for call in 0..50 {
            for attempt in 1..=8u32 {
                let b = client.backoff(call, attempt);
                let full = Duration::from_secs(1 << (attempt - 1)).min(Duration::from_secs(60));
                assert!(b >= full / 2 && b <= full, "{call}/{attempt}: {b:?}");
                assert_eq!(b, client.backoff(call, attempt), "deterministic");
            }
        }
        assert_ne!(client.backoff(1, 3), client.backoff(2, 3), "jittered");
    }

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(
            validate_base_url("http://127.0.0.1:9124/v1/").unwrap(),
            "http://127.0.0.1:9124/v1"
        );
        assert!(validate_base_url("https://api.openai.com/v1").is_ok());
        for bad in [
            "ftp://host/v1",
            "not a url",
            "file:///tmp/v1",
            "http://h/v1?x=1",
        ] {
            assert!(validate_base_url(bad).is_err(), "{bad}");
        }
        let e = validate_base_url("https://user:sk-secret@host/v1").unwrap_err();
        assert!(!e.to_string().contains("sk-secret"), "{e}");
    }
}
