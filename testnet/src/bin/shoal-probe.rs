//! `shoal-probe URL`: GET one URL of a node's API, print the body, exit 0 on
//! a 2xx answer and 1 otherwise.
//!
//! It exists for containers built `FROM scratch`, which have no shell and no
//! curl: docker's healthcheck runs `/shoal-probe http://127.0.0.1:7070/v1/health`
//! and `testnet/compose-smoke.sh` reads each node's status with
//! `docker exec NODE /shoal-probe http://127.0.0.1:7070/v1/status`. It uses
//! only the standard library and this crate's bounded HTTP client.

use std::process::ExitCode;
use std::time::Duration;

use shoal_testnet::http::Client;

fn main() -> ExitCode {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: shoal-probe http://HOST:PORT/PATH");
        return ExitCode::from(2);
    };
    // Split http://host:port/path into the client's base and the path.
    let Some(rest) = url.strip_prefix("http://") else {
        eprintln!("shoal-probe: {url}: only http:// URLs");
        return ExitCode::from(2);
    };
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let client = match Client::new(&format!("http://{host}")) {
        Ok(c) => c.with_timeout(Duration::from_secs(3)),
        Err(e) => {
            eprintln!("shoal-probe: {e:#}");
            return ExitCode::from(2);
        }
    };
    match client.get(path) {
        Ok(resp) => {
            println!("{}", resp.text());
            if resp.is_success() {
                ExitCode::SUCCESS
            } else {
                eprintln!("shoal-probe: {url}: HTTP {}", resp.status);
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("shoal-probe: {e:#}");
            ExitCode::FAILURE
        }
    }
}
