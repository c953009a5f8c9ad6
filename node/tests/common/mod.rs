//! Harness for the multi-process tests: starts real `shoal-node` processes
//! on loopback with their own data dirs, and talks HTTP/1.1 to their APIs
//! with a tiny blocking client (no HTTP client dependency needed).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Generous: the box is shared and slow under parallel builds.
pub const WAIT: Duration = Duration::from_secs(60);

pub struct Node {
    child: Option<Child>,
    pub api: String,
    pub peer_id: String,
    pub listen: Vec<String>,
    pub dir: PathBuf,
}

/// A free loopback port for the API (the OS picks; we hand it over).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Node {
    /// Starts a node on `dir` with `args` (after `run`); mDNS off.
    pub fn start(dir: &Path, args: &[&str]) -> Node {
        Node::start_opts(dir, args, false)
    }

    /// Starts a node with mDNS on, listening on every interface (mDNS
    /// announces the addresses of the LAN interfaces, not loopback).
    pub fn start_mdns(dir: &Path, args: &[&str]) -> Node {
        Node::start_opts(dir, args, true)
    }

    fn start_opts(dir: &Path, args: &[&str], mdns: bool) -> Node {
        let port = free_port();
        let api = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoal-node"));
        cmd.arg("run")
            .arg("--data-dir")
            .arg(dir)
            .arg("--api")
            .arg(&api);
        if mdns {
            cmd.arg("--listen").arg("/ip4/0.0.0.0/tcp/0");
        } else {
            cmd.arg("--no-mdns")
                .arg("--listen")
                .arg("/ip4/127.0.0.1/tcp/0");
        }
        cmd.args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn shoal-node");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(WAIT).expect("banner line");
        // shoal-node <peer> api=http://<addr> listen=[a,b]
        let mut parts = line.split_whitespace();
        assert_eq!(parts.next(), Some("shoal-node"), "banner: {line}");
        let peer_id = parts.next().unwrap().to_string();
        let api_part = parts.next().unwrap();
        assert_eq!(api_part, format!("api=http://{api}"));
        let listen = parts
            .next()
            .unwrap()
            .trim_start_matches("listen=[")
            .trim_end_matches(']')
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Node {
            child: Some(child),
            api,
            peer_id,
            listen,
            dir: dir.to_path_buf(),
        }
    }

    /// A loopback TCP address of this node with its /p2p/ id.
    pub fn bootstrap_addr(&self) -> String {
        let a = self
            .listen
            .iter()
            .find(|a| a.starts_with("/ip4/127.0.0.1/tcp/"))
            .expect("a loopback tcp listen address");
        format!("{a}/p2p/{}", self.peer_id)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        http(&self.api, "GET", path, None, None)
    }

    pub fn post(&self, path: &str, body: &str, token: Option<&str>) -> (u16, Value) {
        http(&self.api, "POST", path, Some(body.as_bytes()), token)
    }

    pub fn status(&self) -> Value {
        let (code, v) = self.get("/v1/status");
        assert_eq!(code, 200, "{v}");
        v
    }

    /// SIGKILL, no chance to snapshot.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `f` until it returns Some, or panics after [`WAIT`].
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > WAIT {
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns status and JSON
/// body (`Value::Null` if the body is not JSON).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    token: Option<&str>,
) -> (u16, Value) {
    let (code, bytes) = http_raw(addr, method, path, body, token);
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

pub fn http_raw(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    token: Option<&str>,
) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect to API");
    s.set_read_timeout(Some(WAIT)).unwrap();
    let body = body.unwrap_or(b"");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // The server may answer (413) before reading a large body; ignore a
    // broken pipe then.
    let _ = s.write_all(body);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text_end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP header end");
    let head = String::from_utf8_lossy(&resp[..text_end]).to_string();
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let mut payload = resp[text_end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        payload = dechunk(&payload);
    }
    (code, payload)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}
