//! The replicated settings: cluster-wide values that override each node's configuration
//! file, set with `posternctl setting set`, the GUI's policies page or the API. Every
//! setting Postern reads is a [`Setting`], with its meaning and its check, in this one
//! place. Keys outside Postern's sections (`crypto.`, `relay.`) are site settings: free-form
//! values the cluster replicates for the operator's own scripts, with no meaning to Postern.

/// What a setting's name looks like (`crypto.always_encrypt`, `relay.downstream`).
pub const KEY_PATTERN: &str = "^[a-z0-9][a-z0-9._-]{0,63}$";

/// The sections whose keys are Postern's own: an unknown key there is a mistake.
const SECTIONS: [&str; 3] = ["crypto.", "relay.", "federation."];

/// A setting Postern reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Setting {
    /// `crypto.internal_domains`
    InternalDomains,
    /// `crypto.always_encrypt`
    AlwaysEncrypt,
    /// `crypto.policy_header`
    PolicyHeader,
    /// `crypto.subject_markers`
    SubjectMarkers,
    /// `relay.downstream`
    Downstream,
    /// `federation.mode`
    FederationMode,
    /// `federation.max_age`
    FederationMaxAge,
}

impl Setting {
    /// Every setting, in the order the GUI lists them.
    pub const ALL: [Setting; 7] = [
        Setting::InternalDomains,
        Setting::AlwaysEncrypt,
        Setting::PolicyHeader,
        Setting::SubjectMarkers,
        Setting::Downstream,
        Setting::FederationMode,
        Setting::FederationMaxAge,
    ];

    /// The settings that change what this gateway's domains publish to partners.
    pub const FEDERATION: [Setting; 2] = [Setting::FederationMode, Setting::FederationMaxAge];

    /// The settings that change the crypto policy.
    pub const POLICY: [Setting; 4] = [
        Setting::InternalDomains,
        Setting::AlwaysEncrypt,
        Setting::PolicyHeader,
        Setting::SubjectMarkers,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Setting::InternalDomains => "crypto.internal_domains",
            Setting::AlwaysEncrypt => "crypto.always_encrypt",
            Setting::PolicyHeader => "crypto.policy_header",
            Setting::SubjectMarkers => "crypto.subject_markers",
            Setting::Downstream => "relay.downstream",
            Setting::FederationMode => "federation.mode",
            Setting::FederationMaxAge => "federation.max_age",
        }
    }

    /// What it does, for the GUI and the docs.
    pub fn meaning(self) -> &'static str {
        match self {
            Setting::InternalDomains => {
                "Internal mail domains, comma separated: mail from them is signed, mail to them decrypted."
            }
            Setting::AlwaysEncrypt => {
                "true: outbound mail that cannot be encrypted is refused instead of sent signed only."
            }
            Setting::PolicyHeader => {
                "true: an X-Postern-Policy header explains what was done to each message."
            }
            Setting::SubjectMarkers => {
                "true: subject tags like [secure] or [sign] choose the treatment of a message."
            }
            Setting::Downstream => "The downstream MTA (host:port) mail goes to after the gateway.",
            Setting::FederationMode => {
                "What our domains ask of partner gateways: testing (encrypt when you can), enforce (never in the clear: retry instead), or off (announce nothing)."
            }
            Setting::FederationMaxAge => {
                "How long (seconds) partners keep our published policy after last seeing it."
            }
        }
    }

    pub fn from_key(key: &str) -> Option<Setting> {
        Setting::ALL.into_iter().find(|s| s.key() == key)
    }

    /// Checks a value before it is proposed.
    pub fn check(self, value: &str) -> Result<(), String> {
        match self {
            Setting::InternalDomains => parse_domains(value).map(|_| ()),
            Setting::AlwaysEncrypt | Setting::PolicyHeader | Setting::SubjectMarkers => {
                parse_flag(self.key(), value).map(|_| ())
            }
            Setting::Downstream => check_host_port(value),
            Setting::FederationMode => match value.trim() {
                "off" | "testing" | "enforce" => Ok(()),
                other => Err(format!(
                    "federation.mode: {other:?} is not off, testing or enforce"
                )),
            },
            Setting::FederationMaxAge => parse_max_age(value).map(|_| ()),
        }
    }
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// A setting's key: one of Postern's, or a site setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingKey {
    Known(Setting),
    /// Free-form, replicated, no meaning to Postern.
    Site(String),
}

impl SettingKey {
    /// A well-formed key ([`KEY_PATTERN`]); in Postern's sections, one it knows.
    pub fn parse(key: &str) -> Result<SettingKey, String> {
        if !key_ok(key) {
            return Err(format!(
                "{key:?} is not a setting name (lower-case letters, digits and . _ -, e.g. crypto.always_encrypt)"
            ));
        }
        if let Some(s) = Setting::from_key(key) {
            return Ok(SettingKey::Known(s));
        }
        if SECTIONS.iter().any(|p| key.starts_with(p)) {
            let known: Vec<&str> = Setting::ALL.iter().map(|s| s.key()).collect();
            return Err(format!(
                "{key}: not a Postern setting (one of {})",
                known.join(", ")
            ));
        }
        Ok(SettingKey::Site(key.to_owned()))
    }
}

/// Checks `key = value` as a whole; the key it names.
pub fn check(key: &str, value: &str) -> Result<SettingKey, String> {
    let k = SettingKey::parse(key)?;
    if let SettingKey::Known(s) = k {
        s.check(value)?;
    }
    Ok(k)
}

fn key_ok(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        })
}

/// A flag's value: true/yes/on/1 or false/no/off/0.
pub fn parse_flag(key: &str, value: &str) -> Result<bool, String> {
    match value.trim() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        other => Err(format!("{key}: {other:?} is not true or false")),
    }
}

/// Internal domains: comma or space separated, lower-cased (`.example.com` covers its
/// subdomains).
pub fn parse_domains(value: &str) -> Result<Vec<String>, String> {
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

/// The longest `max_age` a domain may publish (a year, as MTA-STS).
pub const MAX_MAX_AGE: u64 = 31_557_600;

/// A published `max_age` in seconds: 60 up to a year.
pub fn parse_max_age(value: &str) -> Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(n) if (60..=MAX_MAX_AGE).contains(&n) => Ok(n),
        _ => Err(format!(
            "federation.max_age: {value:?} is not a number of seconds from 60 to {MAX_MAX_AGE}"
        )),
    }
}

fn check_host_port(value: &str) -> Result<(), String> {
    match value.rsplit_once(':') {
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
            "relay.downstream: {value:?} is not host:port (e.g. mail.example.com:25)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_with_their_values() {
        for s in Setting::ALL {
            assert_eq!(Setting::from_key(s.key()), Some(s));
            assert!(!s.meaning().is_empty());
        }
        assert!(check("crypto.always_encrypt", "maybe").is_err());
        assert!(check("crypto.internal_domains", "a@b.example").is_err());
        assert!(check("crypto.colour", "red").is_err());
        assert!(check("relay.colour", "red").is_err());
        assert_eq!(
            check("crypto.subject_markers", "off"),
            Ok(SettingKey::Known(Setting::SubjectMarkers))
        );
        assert_eq!(
            check("anything.else", "free"),
            Ok(SettingKey::Site("anything.else".into()))
        );
        assert!(check("", "x").is_err());
        assert!(check("Upper.case", "x").is_err());
        assert!(check(&"a".repeat(65), "x").is_err());
        assert!(check("relay.downstream", "mail.corp.example:25").is_ok());
        assert!(check("relay.downstream", "[2001:db8::1]:25").is_ok());
        for bad in ["mail.corp.example", "host:0", ":25", "a b:25", "host:port"] {
            assert!(check("relay.downstream", bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_domains("corp.example, .Sub.example").unwrap_or_default(),
            ["corp.example", ".sub.example"]
        );
        assert_eq!(parse_flag("k", " yes "), Ok(true));
        assert!(check("federation.mode", "enforce").is_ok());
        assert!(check("federation.mode", "always").is_err());
        assert!(check("federation.max_age", "604800").is_ok());
        assert!(check("federation.max_age", "5").is_err());
        assert!(check("federation.colour", "x").is_err());
    }
}
