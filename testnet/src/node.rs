//! One `shoal-node` child process: how it is started, how we learn its peer
//! id, how it is stopped (gently or with `kill -9`), and where its log goes.
//!
//! Children must never outlive the testnet. Three layers make sure of it:
//! [`NodeProcess`] kills its child on drop; the CLI turns SIGINT/SIGTERM
//! into an orderly stop of every child; and on Linux each child asks the
//! kernel for SIGTERM when its parent dies (`PR_SET_PDEATHSIG`), which
//! covers the testnet itself being killed with `kill -9`.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::http::Client;
use crate::status::Status;

/// How a node is started. Restarting a node reuses its spec, so it comes
/// back with the same data dir, ports and identity.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// `node0`, `node1`, ... for tables and file names.
    pub name: String,
    /// The `shoal-node` executable.
    pub bin: PathBuf,
    pub data_dir: PathBuf,
    /// Fixed loopback TCP port for libp2p, so a restarted node is found at
    /// the address its peers already know.
    pub p2p_port: u16,
    pub api_port: u16,
    /// Multiaddrs ending in `/p2p/<peer id>`.
    pub bootstrap: Vec<String>,
    pub model: Option<String>,
    /// Generator spec or CSV path.
    pub source: Option<String>,
    /// Samples per second.
    pub rate: Option<f64>,
    pub network_key: Option<PathBuf>,
    /// Only these peer ids may connect (empty: anyone with the key).
    pub allow_peers: Vec<String>,
    pub api_token: Option<String>,
    /// Anything else to pass to `shoal-node run`.
    pub extra_args: Vec<String>,
    /// stdout and stderr of the node, appended across restarts.
    pub log_path: PathBuf,
}

impl NodeSpec {
    /// A spec with the usual loopback settings and nothing to learn from.
    pub fn loopback(name: &str, bin: &Path, dir: &Path, p2p_port: u16, api_port: u16) -> Self {
        NodeSpec {
            name: name.to_string(),
            bin: bin.to_path_buf(),
            data_dir: dir.join("data"),
            p2p_port,
            api_port,
            bootstrap: Vec::new(),
            model: None,
            source: None,
            rate: None,
            network_key: None,
            allow_peers: Vec::new(),
            api_token: None,
            extra_args: Vec::new(),
            log_path: dir.join("node.log"),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn api_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    /// The libp2p address the node listens on.
    pub fn listen_addr(&self) -> String {
        format!("/ip4/127.0.0.1/tcp/{}", self.p2p_port)
    }

    /// The address other nodes bootstrap to, once the peer id is known.
    pub fn dial_addr(&self, peer_id: &str) -> String {
        format!("{}/p2p/{peer_id}", self.listen_addr())
    }

    /// The arguments of `shoal-node run` for this spec.
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![
            "run".into(),
            "--data-dir".into(),
            self.data_dir.clone().into(),
            "--listen".into(),
            self.listen_addr().into(),
            "--api".into(),
            format!("127.0.0.1:{}", self.api_port).into(),
            // Loopback testnets wire themselves by bootstrap addresses; mDNS
            // would also find every other testnet and node on the machine.
            "--no-mdns".into(),
        ];
        for b in &self.bootstrap {
            a.push("--bootstrap".into());
            a.push(b.into());
        }
        if let Some(m) = &self.model {
            a.push("--model".into());
            a.push(m.into());
        }
        if let Some(s) = &self.source {
            a.push("--source".into());
            a.push(s.into());
        }
        if let Some(r) = self.rate {
            a.push("--rate".into());
            a.push(r.to_string().into());
        }
        if let Some(k) = &self.network_key {
            a.push("--network-key".into());
            a.push(k.clone().into());
        }
        for p in &self.allow_peers {
            a.push("--allow-peer".into());
            a.push(p.into());
        }
        if let Some(t) = &self.api_token {
            a.push("--api-token".into());
            a.push(t.into());
        }
        a.extend(self.extra_args.iter().map(OsString::from));
        a
    }
}

/// What a node prints on its first stdout line:
/// `shoal-node <peer_id> api=http://... listen=[...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub peer_id: String,
    pub api: Option<String>,
    pub listen: Vec<String>,
}

impl Announce {
    /// Parse the announce line; `None` for any other line.
    pub fn parse(line: &str) -> Option<Announce> {
        let rest = line.trim().strip_prefix("shoal-node ")?;
        let mut words = rest.split_whitespace();
        let peer_id = words.next()?.to_string();
        if peer_id.contains('=') {
            return None;
        }
        let mut api = None;
        let mut listen = Vec::new();
        for w in words {
            if let Some(a) = w.strip_prefix("api=") {
                api = Some(a.to_string());
            } else if let Some(l) = w.strip_prefix("listen=") {
                listen = l
                    .trim_matches(|c| c == '[' || c == ']')
                    .split(',')
                    .map(|s| s.trim().trim_matches('"').to_string())
                    .filter(|s| !s.is_empty())
                    .take(32)
                    .collect();
            }
        }
        Some(Announce {
            peer_id,
            api,
            listen,
        })
    }
}

/// A running (or exited) `shoal-node`.
pub struct NodeProcess {
    name: String,
    child: Child,
    log_path: PathBuf,
    api: Client,
    announce: Arc<Mutex<Option<Announce>>>,
    reaped: bool,
}

impl NodeProcess {
    /// Start `shoal-node run` for `spec`, logging to `spec.log_path`.
    pub fn spawn(spec: &NodeSpec) -> Result<NodeProcess> {
        if !spec.bin.is_file() {
            bail!(
                "node binary {} not found: build it first with `cargo build --release -p shoal-node`",
                spec.bin.display()
            );
        }
        std::fs::create_dir_all(&spec.data_dir)
            .with_context(|| format!("creating {}", spec.data_dir.display()))?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log_path)
            .with_context(|| format!("opening {}", spec.log_path.display()))?;
        let mut marker = log.try_clone()?;
        let _ = writeln!(
            marker,
            "--- shoal-testnet: starting {} {}",
            spec.bin.display(),
            spec.args()
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        );

        let mut cmd = Command::new(&spec.bin);
        cmd.args(spec.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log.try_clone()?))
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            );
        die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", spec.bin.display()))?;

        let announce = Arc::new(Mutex::new(None));
        if let Some(stdout) = child.stdout.take() {
            let slot = announce.clone();
            let mut log = log;
            std::thread::Builder::new()
                .name(format!("{}-stdout", spec.name))
                .spawn(move || copy_stdout(stdout, &mut log, &slot))
                .context("starting the stdout reader thread")?;
        }
        Ok(NodeProcess {
            name: spec.name.clone(),
            child,
            log_path: spec.log_path.clone(),
            api: Client::new(&spec.api_base())?.with_timeout(Duration::from_secs(2)),
            announce,
            reaped: false,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The node's announce line, once printed.
    pub fn announce(&self) -> Option<Announce> {
        self.announce.lock().ok().and_then(|a| a.clone())
    }

    /// A client for this node's API.
    pub fn api(&self) -> &Client {
        &self.api
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        if self.reaped {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(_)) | Err(_) => {
                self.reaped = true;
                false
            }
            Ok(None) => true,
        }
    }

    /// Poll `/v1/status` until it answers, the process exits, `stop` is
    /// set, or `timeout` passes. Errors carry the tail of the node's log.
    pub fn wait_ready(&mut self, timeout: Duration, stop: &dyn Fn() -> bool) -> Result<Status> {
        let deadline = Instant::now() + timeout;
        let mut last_err: String;
        loop {
            if !self.is_running() {
                bail!(
                    "{} exited during start-up; last lines of {}:\n{}",
                    self.name,
                    self.log_path.display(),
                    log_tail(&self.log_path, 15)
                );
            }
            match self.api.get_json("/v1/status") {
                Ok(v) => match Status::from_json(&v) {
                    Ok(s) => return Ok(s),
                    Err(e) => last_err = e.to_string(),
                },
                Err(e) => last_err = format!("{e:#}"),
            }
            if stop() {
                bail!("interrupted while waiting for {}", self.name);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not answer GET /v1/status within {}s ({last_err}); last lines of {}:\n{}",
                    self.name,
                    timeout.as_secs(),
                    self.log_path.display(),
                    log_tail(&self.log_path, 15)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `kill -9`: no chance to flush anything.
    pub fn kill_hard(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        self.reaped = true;
    }

    /// Ask the node to stop (SIGTERM) without waiting.
    pub fn request_stop(&mut self) {
        if self.is_running() {
            signal(self.child.id(), libc::SIGTERM);
        }
    }

    /// SIGTERM, then SIGKILL if it is still running after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        self.request_stop();
        let deadline = Instant::now() + grace;
        while self.is_running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill_hard();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        // Last line of defence: never leave a node behind.
        self.kill_hard();
    }
}

/// Copy the child's stdout into its log, remembering the announce line.
fn copy_stdout(stdout: impl Read, log: &mut File, slot: &Mutex<Option<Announce>>) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        // Bounded: a runaway line is cut, the rest of it read as more lines.
        match reader.by_ref().take(64 << 10).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let _ = log.write_all(&line);
        let text = String::from_utf8_lossy(&line);
        if let Some(a) = Announce::parse(&text) {
            if let Ok(mut s) = slot.lock() {
                if s.is_none() {
                    *s = Some(a);
                }
            }
        }
    }
}

#[cfg(unix)]
fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our
        // own unreaped child, so it cannot have been recycled.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls prctl,
    // which is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

/// The last `lines` lines of a log file (reads at most its last 16 KiB).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return "(no log)".into();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(16 << 10);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return "(unreadable log)".into();
    }
    let mut buf = Vec::new();
    let _ = f.take(16 << 10).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where `shoal-node` should be: next to the running executable, or one
/// folder up (examples live in `target/<profile>/examples/`, test binaries
/// in `target/<profile>/deps/`).
pub fn default_node_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the running executable")?;
    let name = format!("shoal-node{}", std::env::consts::EXE_SUFFIX);
    let mut dir = exe.parent();
    let mut candidates = Vec::new();
    for _ in 0..2 {
        let Some(d) = dir else { break };
        candidates.push(d.join(&name));
        dir = d.parent();
    }
    for c in &candidates {
        if c.is_file() {
            return Ok(c.clone());
        }
    }
    bail!(
        "no shoal-node binary next to {} (looked at {}); build it first with \
         `cargo build --release -p shoal-node` (or pass --bin PATH)",
        exe.display(),
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announce_line_is_parsed() {
        let a = Announce::parse(
            "shoal-node 12D3KooWXyz api=http://127.0.0.1:7070 listen=[/ip4/127.0.0.1/tcp/4001,/ip4/10.0.0.2/tcp/4001]\n",
        )
        .expect("announce");
        assert_eq!(a.peer_id, "12D3KooWXyz");
        assert_eq!(a.api.as_deref(), Some("http://127.0.0.1:7070"));
        assert_eq!(a.listen.len(), 2);
        assert!(Announce::parse("INFO starting").is_none());
        assert!(Announce::parse("shoal-node api=x").is_none());
    }

    #[test]
    fn args_carry_bootstrap_and_source() {
        let mut s = NodeSpec::loopback(
            "node1",
            Path::new("shoal-node"),
            Path::new("out/node1"),
            4001,
            7071,
        );
        s.bootstrap.push("/ip4/127.0.0.1/tcp/4000/p2p/X".into());
        s.source = Some("sea:seed=2".into());
        let args: Vec<String> = s
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert!(joined.starts_with("run --data-dir out/node1/data"));
        assert!(joined.contains("--listen /ip4/127.0.0.1/tcp/4001"));
        assert!(joined.contains("--bootstrap /ip4/127.0.0.1/tcp/4000/p2p/X"));
        assert!(joined.contains("--source sea:seed=2"));
        assert!(joined.contains("--no-mdns"));
    }
}
