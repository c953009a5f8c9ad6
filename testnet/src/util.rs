//! Small helpers: durations as people type them, UTC timestamps without a
//! date crate, free loopback ports, and a seeded random source.

use std::collections::HashSet;
use std::net::TcpListener;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};

/// Parse `90s`, `2m`, `1h30m`, `500ms` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let text = text.trim();
    if text.is_empty() {
        bail!("empty duration");
    }
    if let Ok(secs) = text.parse::<f64>() {
        return secs_to_duration(secs, text);
    }
    let mut total = 0.0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            bail!("bad duration {text:?}: expected a number, e.g. 90s, 2m, 1h30m");
        }
        let value: f64 = rest[..digits]
            .parse()
            .with_context(|| format!("bad duration {text:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" => 3600.0,
            unit => bail!("bad duration {text:?}: unknown unit {unit:?} (use ms, s, m, h)"),
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    secs_to_duration(total, text)
}

fn secs_to_duration(secs: f64, text: &str) -> Result<Duration> {
    // A week is far beyond any testnet run; the bound keeps arithmetic sane.
    if !secs.is_finite() || !(0.0..=7.0 * 86400.0).contains(&secs) {
        bail!("duration {text:?} out of range (0 to 7 days)");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `(year, month, day, hour, minute, second)` in UTC for a Unix time.
fn civil(unix: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (unix / 86_400) as i64;
    let secs = (unix % 86_400) as u32;
    // Howard Hinnant's days-from-civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, secs / 3600, secs / 60 % 60, secs % 60)
}

/// `20261122-214026` (UTC), for folder names.
pub fn stamp_for_path(unix: f64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix.max(0.0) as u64);
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}")
}

/// `2026-11-22T21:40:26Z`, for reports.
pub fn stamp_iso(unix: f64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix.max(0.0) as u64);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Hands out loopback TCP ports that were free a moment ago, never the same
/// one twice. There is a small window between checking and the node binding
/// the port; a node that fails to bind is reported with its log.
#[derive(Default)]
pub struct PortPicker {
    given: HashSet<u16>,
}

impl PortPicker {
    pub fn pick(&mut self) -> Result<u16> {
        for _ in 0..64 {
            let listener = TcpListener::bind("127.0.0.1:0")
                .context("binding a loopback port to find a free one")?;
            let port = listener.local_addr()?.port();
            if self.given.insert(port) {
                return Ok(port);
            }
        }
        Err(anyhow!("could not find a free loopback port"))
    }
}

/// xorshift64*: enough randomness to pick churn victims, seedable so that a
/// run can be repeated with `--seed`.
#[derive(Debug, Clone)]
pub struct SmallRng(u64);

impl SmallRng {
    pub fn new(seed: u64) -> Self {
        SmallRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Human form of a duration: `45s`, `2m05s`, `1h02m`.
pub fn human_secs(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_people_type_them() {
        let d = |s| parse_duration(s).expect(s).as_secs_f64();
        assert_eq!(d("90s"), 90.0);
        assert_eq!(d("2m"), 120.0);
        assert_eq!(d("1h30m"), 5400.0);
        assert_eq!(d("500ms"), 0.5);
        assert_eq!(d("20"), 20.0);
        assert_eq!(d("1.5m"), 90.0);
        for bad in ["", "s", "10x", "-5", "1e9", "m10"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(stamp_iso(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(stamp_iso(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(stamp_for_path(1_795_383_626.0), "20261122-214026");
    }

    #[test]
    fn ports_are_distinct() {
        let mut p = PortPicker::default();
        let a = p.pick().expect("port");
        let b = p.pick().expect("port");
        assert_ne!(a, b);
    }
}
