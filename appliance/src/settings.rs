//! Replicated settings that override the configuration file cluster-wide: the crypto policy
//! (`crypto.internal_domains`, `crypto.always_encrypt`, `crypto.policy_header`,
//! `crypto.subject_markers`) set once with `posternctl setting set` applies on every node
//! at once, without a restart. Removing the setting returns to each node's file value.

use std::collections::BTreeMap;

use postern_crypto::policy::PolicyConfig;

/// The settings that change the crypto policy.
pub const POLICY_KEYS: [&str; 4] = [
    "crypto.internal_domains",
    "crypto.always_encrypt",
    "crypto.policy_header",
    "crypto.subject_markers",
];

fn flag(key: &str, value: &str) -> Result<bool, String> {
    match value.trim() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        other => Err(format!("{key}: {other:?} is not true or false")),
    }
}

fn domains(value: &str) -> Result<Vec<String>, String> {
    let list: Vec<String> = value
        .split([',', ' '])
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    match list
        .iter()
        .find(|d| d.contains('@') || d.chars().any(|c| c.is_control()) || d.ends_with('.'))
    {
        Some(bad) => Err(format!(
            "crypto.internal_domains: {bad:?} is not a domain (e.g. example.com, .example.com)"
        )),
        None => Ok(list),
    }
}

/// The default downstream MTA (`host:port`), overriding the file's `downstream.address`.
pub const DOWNSTREAM: &str = "relay.downstream";

/// Checks a setting before it is proposed: policy keys and the downstream must be known and
/// well-formed; any other key is free-form.
pub fn check(key: &str, value: &str) -> Result<(), String> {
    if !postern_webgui::command::setting_key_ok(key) {
        return Err(format!(
            "{key:?} is not a setting name (lower-case letters, digits and . _ -, e.g. crypto.always_encrypt)"
        ));
    }
    if key == DOWNSTREAM {
        return match value.rsplit_once(':') {
            Some((host, port))
                if !host.is_empty()
                    && port.parse::<u16>().is_ok_and(|p| p > 0)
                    && !host
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || c == '/') =>
            {
                Ok(())
            }
            _ => Err(format!(
                "{DOWNSTREAM}: {value:?} is not host:port (e.g. mail.example.com:25)"
            )),
        };
    }
    if !key.starts_with("crypto.") {
        return Ok(());
    }
    match key {
        "crypto.internal_domains" => domains(value).map(|_| ()),
        k if POLICY_KEYS.contains(&k) => flag(k, value).map(|_| ()),
        _ => Err(format!(
            "{key}: not a cluster-wide policy setting (one of {})",
            POLICY_KEYS.join(", ")
        )),
    }
}

/// The policy in force: the file's, with the cluster's settings laid over it. A setting
/// that no longer parses (it was checked when set) is ignored.
pub fn effective(base: &PolicyConfig, settings: &BTreeMap<String, String>) -> PolicyConfig {
    let mut p = base.clone();
    if let Some(Ok(d)) = settings.get("crypto.internal_domains").map(|v| domains(v)) {
        p.internal_domains = d;
    }
    let get = |k: &str| settings.get(k).and_then(|v| flag(k, v).ok());
    if let Some(b) = get("crypto.always_encrypt") {
        p.always_encrypt = b;
    }
    if let Some(b) = get("crypto.policy_header") {
        p.policy_header = b;
    }
    if let Some(b) = get("crypto.subject_markers") {
        p.subject_markers = b;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_override_the_file_and_are_checked() {
        let base = PolicyConfig {
            internal_domains: vec!["file.example".into()],
            ..PolicyConfig::default()
        };
        let mut s = BTreeMap::new();
        assert_eq!(effective(&base, &s), base);
        s.insert(
            "crypto.internal_domains".into(),
            "corp.example, .sub.example".into(),
        );
        s.insert("crypto.policy_header".into(), "false".into());
        s.insert("unrelated".into(), "x".into());
        let p = effective(&base, &s);
        assert_eq!(p.internal_domains, ["corp.example", ".sub.example"]);
        assert!(!p.policy_header);
        assert!(p.subject_markers, "unset keys keep the file's value");
        assert!(check("crypto.always_encrypt", "maybe").is_err());
        assert!(check("crypto.internal_domains", "a@b.example").is_err());
        assert!(check("crypto.colour", "red").is_err());
        assert!(check("crypto.subject_markers", "off").is_ok());
        assert!(check("anything.else", "free").is_ok());
        assert!(check("", "x").is_err());
        assert!(check("Upper.case", "x").is_err());
        assert!(check("relay.downstream", "mail.corp.example:25").is_ok());
        assert!(check("relay.downstream", "[2001:db8::1]:25").is_ok());
        for bad in ["mail.corp.example", "host:0", ":25", "a b:25", "host:port"] {
            assert!(check("relay.downstream", bad).is_err(), "{bad}");
        }
    }
}
