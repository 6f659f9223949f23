//! The crypto policy in force: the configuration file's, with the cluster's replicated
//! settings laid over it ([`postern_api::Setting`] names them and checks their values). A
//! setting changed with `posternctl setting set` applies on every node at once, without a
//! restart; removing it returns to each node's file value.

use std::collections::BTreeMap;

use postern_api::Setting;
use postern_api::settings::{parse_domains, parse_flag, parse_max_age};
use postern_crypto::federation::{DomainPolicy, Mode};
use postern_crypto::policy::{DEFAULT_MAX_AGE, PolicyConfig};

/// The policy: the file's, with the cluster's settings laid over it. A setting that no
/// longer parses (it was checked when set) is ignored.
pub fn effective(base: &PolicyConfig, settings: &BTreeMap<String, String>) -> PolicyConfig {
    let mut p = base.clone();
    let value = |s: Setting| settings.get(s.key());
    if let Some(Ok(d)) = value(Setting::InternalDomains).map(|v| parse_domains(v)) {
        p.internal_domains = d;
    }
    let flag = |s: Setting| value(s).and_then(|v| parse_flag(s.key(), v).ok());
    if let Some(b) = flag(Setting::AlwaysEncrypt) {
        p.always_encrypt = b;
    }
    if let Some(b) = flag(Setting::PolicyHeader) {
        p.policy_header = b;
    }
    if let Some(b) = flag(Setting::SubjectMarkers) {
        p.subject_markers = b;
    }
    let max_age = value(Setting::FederationMaxAge)
        .and_then(|v| parse_max_age(v).ok())
        .or(p.domain_policy.map(|d| d.max_age))
        .unwrap_or(DEFAULT_MAX_AGE);
    match value(Setting::FederationMode).map(|v| v.trim()) {
        Some("off") => p.domain_policy = None,
        Some(m) => {
            if let Some(mode) = Mode::parse(m) {
                p.domain_policy = Some(DomainPolicy { mode, max_age });
            }
        }
        None => {
            if let Some(d) = &mut p.domain_policy {
                d.max_age = max_age;
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_override_the_file() {
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
        s.insert("crypto.always_encrypt".into(), "garbage".into());
        s.insert("unrelated".into(), "x".into());
        let p = effective(&base, &s);
        assert_eq!(p.internal_domains, ["corp.example", ".sub.example"]);
        assert!(!p.policy_header);
        assert_eq!(p.always_encrypt, base.always_encrypt, "unparsable: ignored");
        assert!(p.subject_markers, "unset keys keep the file's value");
        s.insert("federation.mode".into(), "enforce".into());
        s.insert("federation.max_age".into(), "86400".into());
        assert_eq!(
            effective(&base, &s).domain_policy,
            Some(DomainPolicy {
                mode: Mode::Enforce,
                max_age: 86_400
            })
        );
        s.insert("federation.mode".into(), "off".into());
        assert_eq!(effective(&base, &s).domain_policy, None);
    }
}
