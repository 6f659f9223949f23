//! Typed getters of the configuration reader: one value of a TOML table, checked, with
//! the dotted key in every error; and the parsers of durations and sizes they share.

use super::read::Reader;
use super::*;

impl Reader {
    pub(super) fn known(&mut self, t: &Table, prefix: &str, keys: &[&str]) {
        let known: BTreeSet<&str> = keys.iter().copied().collect();
        for key in t.keys() {
            if !known.contains(key.as_str()) {
                self.errors.push(format!("{prefix}{key}: unknown key"));
            }
        }
    }

    pub(super) fn section<'t>(&mut self, t: &'t Table, key: &str) -> Option<&'t Table> {
        match t.get(key) {
            None => None,
            Some(Value::Table(s)) => Some(s),
            Some(_) => {
                self.errors
                    .push(format!("{key}: must be a table ([{key}])"));
                None
            }
        }
    }

    pub(super) fn opt_string(&mut self, t: &Table, prefix: &str, key: &str) -> Option<String> {
        match t.get(key) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.errors.push(format!(
                    "{prefix}{key}: expected a string, found {}",
                    other.type_str()
                ));
                None
            }
        }
    }

    pub(super) fn string(&mut self, t: &Table, prefix: &str, key: &str, default: &str) -> String {
        self.opt_string(t, prefix, key)
            .unwrap_or_else(|| default.to_owned())
    }

    pub(super) fn count(&mut self, t: &Table, prefix: &str, key: &str, default: usize) -> usize {
        match t.get(key) {
            None => default,
            Some(Value::Integer(i)) if *i > 0 => *i as usize,
            Some(other) => {
                self.errors.push(format!(
                    "{prefix}{key}: expected a positive integer, found {other}"
                ));
                default
            }
        }
    }

    pub(super) fn size(&mut self, t: &Table, prefix: &str, key: &str, default: usize) -> usize {
        match t.get(key) {
            None => default,
            Some(Value::Integer(i)) if *i > 0 => *i as usize,
            Some(Value::String(s)) if parse_size(s).is_some() => parse_size(s).unwrap_or(default),
            Some(other) => {
                self.errors.push(format!("{prefix}{key}: expected a size like 52428800, \"50MB\" or \"10MiB\", found {other}"));
                default
            }
        }
    }

    pub(super) fn duration(
        &mut self,
        t: &Table,
        prefix: &str,
        key: &str,
        default: Duration,
    ) -> Duration {
        match t.get(key) {
            None => default,
            Some(Value::Integer(i)) if *i > 0 => Duration::from_secs(*i as u64),
            Some(Value::String(s)) if parse_duration(s).is_some() => {
                parse_duration(s).unwrap_or(default)
            }
            Some(other) => {
                self.errors.push(format!("{prefix}{key}: expected a duration like 30, \"30s\", \"5m\" or \"500ms\", found {other}"));
                default
            }
        }
    }

    pub(super) fn flag(&mut self, t: &Table, prefix: &str, key: &str, default: bool) -> bool {
        match t.get(key) {
            None => default,
            Some(Value::Boolean(b)) => *b,
            Some(v) => {
                self.errors
                    .push(format!("{prefix}{key}: expected true or false, found {v}"));
                default
            }
        }
    }
}

/// `"500ms"`, `"30s"`, `"5m"`, `"1h"`, or plain seconds; zero is refused.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        "d" => Duration::from_secs(n.checked_mul(86_400)?),
        _ => return None,
    };
    (!d.is_zero()).then_some(d)
}

/// `"50MB"`, `"10MiB"`, `"512KB"`, `"1000"`; decimal and binary units.
pub fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().ok()?;
    let factor: usize = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" => 1000,
        "KIB" => 1024,
        "M" | "MB" => 1000 * 1000,
        "MIB" => 1024 * 1024,
        "G" | "GB" => 1000 * 1000 * 1000,
        "GIB" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(factor).filter(|&v| v > 0)
}
