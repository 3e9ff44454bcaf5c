//! Errors of the client. Each message is complete on its own (URL, status, attempts and what the
//! server said), so printing it once with `{}` says everything; none carries the API key.

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The most of a server's error body that goes into a message.
pub const MAX_BODY_IN_ERROR: usize = 1000;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `base_url` is not an http(s) URL the client can use.
    #[error("bad base URL `{url}`: {reason} (expected http(s)://host[:port]/v1)")]
    BaseUrl { url: String, reason: String },
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot build the HTTP client: {reason}")]
    Client { reason: String },
    /// The server answered with an error status, after the last retry for retryable ones.
    #[error(
        "{method} {url}: HTTP {status} after {attempts} attempt(s){hint}; the server said: {body}"
    )]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        attempts: u32,
        /// The response body, truncated to [`MAX_BODY_IN_ERROR`] bytes.
        body: String,
        /// A hint for common mistakes (404: a base URL without `/v1`), or empty.
        hint: String,
    },
    /// No HTTP response (connection refused or reset, timeout, TLS), after the last retry.
    #[error("{method} {url}: no response after {attempts} attempt(s): {cause}")]
    Transport {
        method: &'static str,
        url: String,
        attempts: u32,
        /// The error and its causes, joined by ": ".
        cause: String,
        /// Whether the last attempt ran into the client's timeout.
        timed_out: bool,
    },
    /// A 2xx answer whose body is not the expected JSON.
    #[error("{method} {url}: the response is not the expected JSON ({reason}); it starts: {body}")]
    Decode {
        method: &'static str,
        url: String,
        reason: String,
        body: String,
    },
}

impl Error {
    /// The HTTP status, for [`Error::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// `s` cut to at most `max` bytes at a character boundary, with a marker when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes in all)", &s[..end], s.len())
}

/// An error and its chain of causes on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        let t = truncate("ééé", 3);
        assert!(t.starts_with("é..."), "{t}");
        assert!(t.ends_with("(6 bytes in all)"), "{t}");
    }
}
