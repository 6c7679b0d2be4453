//! Sizes ("512M"), durations ("10s") and CPU shares, as users write them.

use std::fmt;
use std::time::Duration;

/// A number of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Bytes(pub u64);

impl Bytes {
    /// Parses "512M", "1.5G", "64KiB", "4096" or "4096B". K, M, G, T and P are
    /// powers of 1024, as in ulimit(1), docker and systemd.
    pub fn parse(text: &str) -> Result<Bytes, String> {
        let t = text.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        if number.is_empty() || number.starts_with('.') || number.ends_with('.') || number.matches('.').count() > 1 {
            return Err(format!("\"{text}\" is not a size"));
        }
        let shift = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            "t" | "tb" | "tib" => 40,
            "p" | "pb" | "pib" => 50,
            _ => return Err(format!("\"{}\" is not a size unit", unit.trim())),
        };
        scaled(number, shift)
            .map(Bytes)
            .ok_or_else(|| format!("\"{text}\" is too large"))
    }
}

/// `number` (digits, maybe with a fraction) times 2^`shift`, if it fits.
fn scaled(number: &str, shift: u32) -> Option<u64> {
    match number.split_once('.') {
        None => number.parse::<u64>().ok()?.checked_mul(1u64 << shift),
        Some((whole, frac)) => {
            let whole: u64 = whole.parse().ok()?;
            let digits = frac.len().min(9);
            let scale = 10u128.pow(digits as u32);
            let frac: u128 = frac[..digits].parse().ok()?;
            let frac = u64::try_from((frac << shift) / scale).ok()?;
            whole.checked_mul(1u64 << shift)?.checked_add(frac)
        }
    }
}

impl fmt::Display for Bytes {
    /// The largest unit that divides the value exactly: "512M", "1536K", "100".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u32, &str); 5] = [(50, "P"), (40, "T"), (30, "G"), (20, "M"), (10, "K")];
        for (shift, unit) in UNITS {
            if self.0 != 0 && self.0.is_multiple_of(1u64 << shift) {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

/// Parses "10s", "500ms", "2m", "1h" or "1.5s". A number too large for a
/// [`Duration`] is an error, not a panic.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0 && !number.is_empty())
        .ok_or_else(|| format!("\"{text}\" is not a duration"))?;
    let seconds = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "" => return Err(format!("\"{text}\" has no unit")),
        other => return Err(format!("\"{other}\" is not a time unit")),
    };
    // `from_secs_f64` panics past u64::MAX seconds; the text is the user's.
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("\"{text}\" is too large"))
}

/// A CPU allowance in thousandths of a core: 0.5 cores is 500.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct MilliCpu(pub u32);

impl fmt::Display for MilliCpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 1000;
        let frac = self.0 % 1000;
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let s = format!("{whole}.{frac:03}");
            f.write_str(s.trim_end_matches('0'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(Bytes::parse("512M"), Ok(Bytes(512 << 20)));
        assert_eq!(Bytes::parse("1.5G"), Ok(Bytes(3 << 29)));
        assert_eq!(Bytes::parse("64KiB"), Ok(Bytes(64 << 10)));
        assert_eq!(Bytes::parse("4096"), Ok(Bytes(4096)));
        assert_eq!(Bytes::parse("4096B"), Ok(Bytes(4096)));
        assert_eq!(Bytes::parse("2 g"), Ok(Bytes(2 << 30)));
        assert!(Bytes::parse("12X").is_err());
        assert!(Bytes::parse("M").is_err());
        assert!(Bytes::parse("1.2.3M").is_err());
        assert!(Bytes::parse("99999999999P").is_err());
        assert!(Bytes::parse("").is_err());
        assert!(Bytes::parse("-1M").is_err());
    }

    #[test]
    fn sizes_print_in_the_largest_exact_unit() {
        assert_eq!(Bytes(512 << 20).to_string(), "512M");
        assert_eq!(Bytes(1536 << 10).to_string(), "1536K");
        assert_eq!(Bytes(100).to_string(), "100");
        assert_eq!(Bytes(0).to_string(), "0");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1y").is_err());
        assert_eq!(
            parse_duration("99999999999999999999999h"),
            Err("\"99999999999999999999999h\" is too large".to_string())
        );
        let huge = format!("{}s", "9".repeat(400));
        assert!(parse_duration(&huge).is_err(), "an infinite f64 is refused too");
    }

    #[test]
    fn cpu_prints_like_it_is_written() {
        assert_eq!(MilliCpu(500).to_string(), "0.5");
        assert_eq!(MilliCpu(1500).to_string(), "1.5");
        assert_eq!(MilliCpu(2000).to_string(), "2");
        assert_eq!(MilliCpu(1250).to_string(), "1.25");
    }
}
