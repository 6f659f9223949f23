//! Hardware profiles: what an appliance model should have. Built-in profiles come from
//! `hardware/profiles/*.toml`; the generic profile covers unknown hardware and VMs.

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("hardware profile {name}: {message}")]
    Invalid { name: String, message: String },
}

/// Whether the model has a hardware watchdog that must be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchdogNeed {
    Required,
    Optional,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Named {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fan {
    pub name: String,
    /// Below this the fan counts as stopped.
    pub min_rpm: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Temperature {
    pub name: String,
    /// Above this the sensor counts as over temperature (the hardware's own critical
    /// threshold counts too).
    pub max_c: f64,
}

/// One appliance model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub model: String,
    /// DMI product names this profile is for.
    #[serde(rename = "match")]
    pub matches: Vec<String>,
    pub watchdog: WatchdogNeed,
    #[serde(default, rename = "psu")]
    pub psus: Vec<Named>,
    #[serde(default, rename = "fan")]
    pub fans: Vec<Fan>,
    #[serde(default, rename = "temperature")]
    pub temperatures: Vec<Temperature>,
    #[serde(default, rename = "disk")]
    pub disks: Vec<Named>,
    #[serde(default, rename = "nic")]
    pub nics: Vec<Named>,
}

const BUILT_IN: &[(&str, &str)] = &[
    ("generic", include_str!("../profiles/generic.toml")),
    (
        "postern-a200",
        include_str!("../profiles/postern-a200.toml"),
    ),
];

impl Profile {
    pub fn parse(name: &str, text: &str) -> Result<Profile, ProfileError> {
        let p: Profile = toml::from_str(text).map_err(|e| ProfileError::Invalid {
            name: name.to_owned(),
            message: e.to_string(),
        })?;
        if let Some(f) = p
            .fans
            .iter()
            .find(|f| f.min_rpm.is_nan() || f.min_rpm < 0.0)
        {
            return Err(ProfileError::Invalid {
                name: name.to_owned(),
                message: format!("fan {}: min_rpm must be a number ≥ 0", f.name),
            });
        }
        Ok(p)
    }

    /// Every built-in profile.
    pub fn built_in() -> Result<Vec<Profile>, ProfileError> {
        BUILT_IN.iter().map(|(n, t)| Profile::parse(n, t)).collect()
    }

    /// The profile for a DMI product name, else the generic one.
    pub fn for_product(product: &str) -> Result<Profile, ProfileError> {
        let all = Profile::built_in()?;
        let product = product.trim();
        let found = all
            .iter()
            .find(|p| p.matches.iter().any(|m| m == product))
            .or_else(|| all.iter().find(|p| p.model == "generic"))
            .cloned();
        found.ok_or_else(|| ProfileError::Invalid {
            name: "generic".into(),
            message: "missing".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_profiles_parse_and_match() {
        assert_eq!(Profile::built_in().expect("valid").len(), 2);
        let a = Profile::for_product("Postern A200\n").expect("profile");
        assert_eq!((a.psus.len(), a.fans.len()), (2, 4));
        assert_eq!(a.watchdog, WatchdogNeed::Required);
        let vm = Profile::for_product("Standard PC (Q35 + ICH9, 2009)").expect("profile");
        assert_eq!(vm.model, "generic");
        assert!(vm.psus.is_empty());
    }

    #[test]
    fn bad_profiles_are_refused_with_their_name() {
        let e = Profile::parse("x", "model = \"x\"\nmatch = []\nwatchdog = \"maybe\"\n")
            .expect_err("bad watchdog");
        assert!(e.to_string().starts_with("hardware profile x:"), "{e}");
        let e = Profile::parse(
            "y",
            "model = \"y\"\nmatch = []\nwatchdog = \"optional\"\n[[fan]]\nname = \"F\"\nmin_rpm = -1\n",
        )
        .expect_err("negative rpm");
        assert!(e.to_string().contains("min_rpm"), "{e}");
        assert!(
            Profile::parse(
                "z",
                "model = \"z\"\nmatch = []\nwatchdog = \"optional\"\nfans = 3\n"
            )
            .is_err()
        );
    }
}
