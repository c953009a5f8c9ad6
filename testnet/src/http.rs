//! A deliberately tiny HTTP/1.1 client for talking to nodes' REST APIs.
//!
//! The testnet only ever talks to nodes it started itself, on loopback or
//! on a private docker network, with small JSON bodies. A full client (TLS,
//! pooling, redirects) would cost more compile time on a Raspberry Pi than
//! this whole crate, so this speaks just enough HTTP: one request per
//! connection (`Connection: close`), `Content-Length` or chunked bodies, and
//! hard bounds on time and size so a wedged node cannot hang the testnet.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// Replies larger than this are refused: `/v1/status` is a few hundred bytes.
pub const MAX_BODY: usize = 4 << 20;
/// Longest status line or header we accept.
const MAX_LINE: usize = 8 << 10;
/// Most headers we accept in one reply.
const MAX_HEADERS: usize = 100;

/// A reply: status code and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).context("reply body is not JSON")
    }

    /// The body as text, lossily.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client for one node's API, e.g. `http://127.0.0.1:7070`.
#[derive(Debug, Clone)]
pub struct Client {
    host: String,
    addr: SocketAddr,
    timeout: Duration,
    token: Option<String>,
}

impl Client {
    /// Parse `http://HOST:PORT` (a trailing `/` is fine; `https` is not
    /// supported, the API is plain HTTP on loopback or a private network).
    pub fn new(base: &str) -> Result<Self> {
        let rest = base
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("API address {base:?} must start with http://"))?;
        let host = rest.trim_end_matches('/').to_string();
        if host.contains('/') {
            bail!("API address {base:?} must not have a path");
        }
        let addr = host
            .to_socket_addrs()
            .with_context(|| format!("resolving API address {base:?}"))?
            .next()
            .ok_or_else(|| anyhow!("API address {base:?} resolves to nothing"))?;
        Ok(Client {
            host,
            addr,
            timeout: Duration::from_secs(3),
            token: None,
        })
    }

    /// Bound connect, read and write to `timeout` each.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Send `Authorization: Bearer TOKEN` with every request.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// `http://host:port`, as given.
    pub fn base(&self) -> String {
        format!("http://{}", self.host)
    }

    /// GET `path`.
    pub fn get(&self, path: &str) -> Result<Response> {
        self.request("GET", path, None)
    }

    /// GET `path` and parse the body as JSON, failing on a non-2xx status.
    pub fn get_json(&self, path: &str) -> Result<serde_json::Value> {
        let resp = self.get(path)?;
        if !resp.is_success() {
            bail!(
                "GET {}{path}: HTTP {}: {}",
                self.base(),
                resp.status,
                truncate(&resp.text(), 200)
            );
        }
        resp.json()
            .with_context(|| format!("GET {}{path}", self.base()))
    }

    /// POST a JSON body to `path`.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Result<Response> {
        let bytes = serde_json::to_vec(body).context("encoding request body")?;
        self.request("POST", path, Some(&bytes))
    }

    fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Response> {
        let what = || format!("{method} {}{path}", self.base());
        let mut stream = TcpStream::connect_timeout(&self.addr, self.timeout)
            .with_context(|| format!("{}: connecting", what()))?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        let _ = stream.set_nodelay(true);

        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: shoal-testnet\r\n\
             Accept: application/json\r\nConnection: close\r\n",
            self.host
        );
        if let Some(token) = &self.token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body.unwrap_or_default()))
            .with_context(|| format!("{}: sending", what()))?;

        read_response(BufReader::new(stream)).with_context(|| format!("{}: reading reply", what()))
    }
}

/// Parse one HTTP/1.x response from `r`.
fn read_response<R: BufRead>(mut r: R) -> Result<Response> {
    let status_line = read_line(&mut r)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        bail!("not an HTTP/1 reply: {:?}", truncate(&status_line, 80));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {:?}", truncate(&status_line, 80)))?;

    let mut length: Option<usize> = None;
    let mut chunked = false;
    for n in 0.. {
        if n >= MAX_HEADERS {
            bail!("more than {MAX_HEADERS} headers");
        }
        let line = read_line(&mut r)?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let len: usize = value
                .parse()
                .with_context(|| format!("bad Content-Length {value:?}"))?;
            if len > MAX_BODY {
                bail!("body of {len} bytes is over the {MAX_BODY}-byte limit");
            }
            length = Some(len);
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            chunked = true;
        }
    }

    let body = if chunked {
        read_chunked(&mut r)?
    } else if let Some(len) = length {
        let mut body = vec![0; len];
        r.read_exact(&mut body)
            .context("body shorter than Content-Length")?;
        body
    } else {
        // No length: the body runs to the end of the connection.
        let mut body = Vec::new();
        r.take(MAX_BODY as u64 + 1).read_to_end(&mut body)?;
        if body.len() > MAX_BODY {
            bail!("body over the {MAX_BODY}-byte limit");
        }
        body
    };
    Ok(Response { status, body })
}

fn read_chunked<R: BufRead>(r: &mut R) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r)?;
        let size_hex = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .with_context(|| format!("bad chunk size {:?}", truncate(&line, 40)))?;
        if size == 0 {
            // Trailers, up to the empty line; tolerate a peer that just closes.
            for _ in 0..MAX_HEADERS {
                match read_line(r) {
                    Ok(l) if !l.is_empty() => continue,
                    _ => break,
                }
            }
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            bail!("chunked body over the {MAX_BODY}-byte limit");
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])
            .context("chunk shorter than announced")?;
        read_line(r)?; // the CRLF after each chunk
    }
}

/// One CRLF- (or LF-) terminated line, without the terminator, bounded.
fn read_line<R: BufRead>(r: &mut R) -> Result<String> {
    let mut buf = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        bail!("connection closed early");
    }
    if buf.len() > MAX_LINE {
        bail!("line over {MAX_LINE} bytes");
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// At most `max` characters of `s`, for error messages.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_reply() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\ncontent-type: application/json\r\n\r\n{\"peers\":2}";
        let resp = read_response(&raw[..]).expect("valid reply");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.json().expect("json")["peers"], 2);
    }

    #[test]
    fn parses_chunked_reply() {
        let raw = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnot \r\n5\r\nfound\r\n0\r\n\r\n";
        let resp = read_response(&raw[..]).expect("valid reply");
        assert_eq!(resp.status, 404);
        assert_eq!(resp.text(), "not found");
    }

    #[test]
    fn refuses_oversized_bodies_and_garbage() {
        let raw = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(read_response(raw.as_bytes()).is_err());
        assert!(read_response(&b"SSH-2.0-OpenSSH\r\n"[..]).is_err());
        assert!(read_response(&b""[..]).is_err());
    }

    #[test]
    fn client_rejects_non_http_bases() {
        assert!(Client::new("https://127.0.0.1:1").is_err());
        assert!(Client::new("127.0.0.1:1").is_err());
        assert!(Client::new("http://127.0.0.1:7070/v1").is_err());
        assert!(Client::new("http://127.0.0.1:7070/").is_ok());
    }
}
