//! A minimal HTTP/1.1 GET over `std::net::TcpStream`, for `shardcast stats record`.
//!
//! Just enough for a daemon's `/stats.json`: plain `http://` only, one request per
//! connection (`Connection: close`), a `Content-Length`, chunked or read-to-close body, a
//! size cap, and timeouts on connect, write and every read. No redirects, no TLS, no
//! proxies: a dependency would buy those, and a local stats endpoint needs none of them.

use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The largest response accepted: far above any stats snapshot, far below trouble.
const MAX_RESPONSE: u64 = 64 << 20;

/// A parsed `http://HOST[:PORT][/PATH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    host: String,
    port: u16,
    path: String,
}

impl Url {
    /// Parses `http://HOST[:PORT][/PATH]`; HOST is a name, an IPv4 address or a bracketed
    /// IPv6 address; PORT is `1..=65535`, 80 if absent.
    ///
    /// # Errors
    /// What is wrong, as a sentence to follow the flag's name.
    pub fn parse(text: &str) -> Result<Url, String> {
        let expected = "expected http://HOST:PORT/PATH, e.g. http://127.0.0.1:9464/stats.json";
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err(format!("{text:?}: only plain http:// is supported, not https://"));
        }
        if !lower.starts_with("http://") {
            return Err(format!("{text:?}: {expected}"));
        }
        let rest = &text["http://".len()..];
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let path = path.split('#').next().unwrap_or("/");
        let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
        if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(format!("{text:?}: the path has a space or control character"));
        }
        if authority.contains('@') {
            return Err(format!("{text:?}: user names and passwords are not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) =
                v6.split_once(']').ok_or_else(|| format!("{text:?}: unclosed '[' in the host"))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{text:?}: no host; {expected}"));
        }
        let port = match port {
            None => 80,
            Some(port) => match port.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => return Err(format!("{text:?}: port {port:?} is not in 1..=65535")),
            },
        };
        Ok(Url { host: host.to_owned(), port, path })
    }

    fn host_header(&self) -> String {
        let host =
            if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.host_header(), self.path)
    }
}

/// Why a GET did not return a body.
#[derive(Debug)]
pub enum GetError {
    /// The host name does not resolve.
    Resolve(io::Error),
    /// No address accepted a connection (refused, unreachable, timed out).
    Connect(io::Error),
    /// The connection broke or timed out mid-request.
    Io(io::Error),
    /// The server answered something that is not an HTTP/1.x response we can read.
    Malformed(String),
    /// A status other than 200.
    Status(u16, String),
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Resolve(e) => write!(f, "cannot resolve the host: {e}"),
            GetError::Connect(e) => write!(f, "cannot connect: {e}"),
            GetError::Io(e) => write!(f, "the request failed: {e}"),
            GetError::Malformed(why) => write!(f, "not a readable HTTP response: {why}"),
            GetError::Status(code, reason) => write!(f, "the server answered {code} {reason}"),
        }
    }
}

impl std::error::Error for GetError {}

/// GETs `url` and returns the body of a 200 response. `timeout` bounds the connect, the
/// write and each read.
///
/// # Errors
/// See [`GetError`].
pub fn get(url: &Url, timeout: Duration) -> Result<Vec<u8>, GetError> {
    let addrs: Vec<_> =
        (url.host.as_str(), url.port).to_socket_addrs().map_err(GetError::Resolve)?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let mut stream = stream.ok_or(GetError::Connect(last))?;
    stream.set_read_timeout(Some(timeout)).map_err(GetError::Io)?;
    stream.set_write_timeout(Some(timeout)).map_err(GetError::Io)?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: shardcast/{}\r\nAccept: application/json\r\n\
         Connection: close\r\n\r\n",
        url.path,
        url.host_header(),
        env!("CARGO_PKG_VERSION"),
    );
    stream.write_all(request.as_bytes()).map_err(GetError::Io)?;
    let mut response = Vec::new();
    // One byte over the cap tells a response at the cap from one past it.
    stream.take(MAX_RESPONSE + 1).read_to_end(&mut response).map_err(GetError::Io)?;
    if response.len() as u64 > MAX_RESPONSE {
        return Err(GetError::Malformed(format!("larger than {} MiB", MAX_RESPONSE >> 20)));
    }
    parse_response(&response)
}

/// The body of a complete HTTP/1.x response with status 200.
fn parse_response(response: &[u8]) -> Result<Vec<u8>, GetError> {
    let malformed = |why: &str| GetError::Malformed(why.to_owned());
    let end = find(response, b"\r\n\r\n").ok_or_else(|| malformed("no end of headers"))?;
    let head = std::str::from_utf8(&response[..end]).map_err(|_| malformed("headers not UTF-8"))?;
    let body = &response[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let mut parts = status.splitn(3, ' ');
    let (version, code, reason) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
    if !version.is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(GetError::Malformed(format!("status line {status:?}")));
    }
    let code: u16 = code
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| GetError::Malformed(format!("status line {status:?}")))?;
    if code != 200 {
        return Err(GetError::Status(code, reason.to_owned()));
    }
    let (mut length, mut chunked) = (None, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| malformed("bad Content-Length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().split(',').any(|c| c.trim() == "chunked");
        }
    }
    if chunked {
        return dechunk(body);
    }
    match length {
        Some(n) if body.len() < n => {
            Err(GetError::Malformed(format!("body cut short: {} of {n} bytes", body.len())))
        }
        Some(n) => Ok(body[..n].to_vec()),
        None => Ok(body.to_vec()), // delimited by the close
    }
}

/// Decodes a `Transfer-Encoding: chunked` body (trailers ignored).
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, GetError> {
    let malformed = |why: &str| GetError::Malformed(format!("chunked body: {why}"));
    let mut out = Vec::new();
    loop {
        let line_end = find(body, b"\r\n").ok_or_else(|| malformed("no chunk size line"))?;
        let line = std::str::from_utf8(&body[..line_end]).map_err(|_| malformed("size"))?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| malformed("bad chunk size"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if size.checked_add(2).is_none_or(|need| body.len() < need) {
            return Err(malformed("cut short"));
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let url = Url::parse("http://127.0.0.1:9464/stats.json").unwrap();
        assert_eq!(url, Url { host: "127.0.0.1".into(), port: 9464, path: "/stats.json".into() });
        assert_eq!(url.to_string(), "http://127.0.0.1:9464/stats.json");
        let url = Url::parse("HTTP://localhost").unwrap();
        assert_eq!((url.port, url.path.as_str()), (80, "/"));
        let url = Url::parse("http://[::1]:8080/s?x=1#frag").unwrap();
        assert_eq!((url.host.as_str(), url.port, url.path.as_str()), ("::1", 8080, "/s?x=1"));
        assert_eq!(url.host_header(), "[::1]:8080");
        for bad in [
            "https://h/x",
            "ftp://h/",
            "h:80/x",
            "http://",
            "http://:80/",
            "http://h:0/",
            "http://h:65536/",
            "http://h:x/",
            "http://u@h/",
            "http://[::1/",
            "http://h/a b",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_responses() {
        let body = |r: &str| parse_response(r.as_bytes());
        assert_eq!(body("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").unwrap(), b"{}");
        assert_eq!(body("HTTP/1.0 200 OK\r\n\r\n{}").unwrap(), b"{}");
        assert_eq!(
            body("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{\"\r\n3;x\r\na\"}\r\n0\r\n\r\n")
                .unwrap(),
            b"{\"a\"}"
        );
        assert!(matches!(body("HTTP/1.1 404 Not Found\r\n\r\n"), Err(GetError::Status(404, _))));
        assert!(matches!(
            body("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}"),
            Err(GetError::Malformed(_))
        ));
        assert!(matches!(body("SSH-2.0-OpenSSH\r\n\r\n"), Err(GetError::Malformed(_))));
        assert!(matches!(body("HTTP/1.1 200 OK\r\n"), Err(GetError::Malformed(_))));
        assert!(matches!(
            body("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            Err(GetError::Malformed(_))
        ));
    }
}
