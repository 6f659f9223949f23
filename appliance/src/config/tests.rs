use super::*;

mod parsing {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "test.toml", &Overrides::default())
    }

    /// Asserts that parsing `text` reports each of `expected` (substrings of the errors).
    fn assert_errors(text: &str, expected: &[&str]) {
        let Err(ConfigError::Invalid(errors)) = parse(text) else {
            panic!("expected errors")
        };
        let all = errors.join("\n");
        for e in expected {
            assert!(all.contains(e), "missing {e:?} in:\n{all}");
        }
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse("[downstream]\naddress = \"127.0.0.1:10025\"\n").expect("valid");
        assert_eq!(c.smtp.max_message_size, 50_000_000);
        assert_eq!(c.smtp.max_line_length, 1000);
        assert_eq!(c.downstream.tls, DownstreamTls::Opportunistic);
        assert_eq!(c.server.listen.port(), 25);
    }

    #[test]
    fn crypto_settings_are_checked() {
        let ok = parse(
            "[downstream]\naddress = \"127.0.0.1:25\"\n[crypto]\ninternal_domains = [\"Example.COM\", \".sub.example\"]\nkey_validity = \"30d\"\n",
        )
        .expect("valid");
        assert_eq!(
            ok.crypto.internal_domains,
            vec!["example.com", ".sub.example"]
        );
        assert_eq!(ok.crypto.key_validity, Duration::from_secs(30 * 86_400));
        let text = "[downstream]\naddress = \"127.0.0.1:25\"\n[crypto]\ninternal_domains = [\"a@b\", 3]\npolicy_header = \"yes\"\nkey_validity = \"soon\"\nkeys = 1\n";
        assert_errors(
            text,
            &[
                "crypto.internal_domains: \"a@b\" is not a domain",
                "crypto.internal_domains: 3 is not a domain",
                "crypto.policy_header: expected true or false",
                "crypto.key_validity:",
                "crypto.keys: unknown key",
            ],
        );
    }

    #[test]
    fn reports_every_error_with_its_key() {
        let text = r#"
            [server]
            listen = "nowhere"
            colour = "blue"
            [smtp]
            max_message_size = "lots"
            command_timeout = -3
            [downstream]
            tls = "maybe"
            data_timeout = "15m"
            [[route]]
            downstream = "x"
        "#;
        assert_errors(
            text,
            &[
                "server.listen:",
                "server.colour: unknown key",
                "smtp.max_message_size:",
                "smtp.command_timeout:",
                "downstream.tls:",
                "downstream.data_timeout:",
                "downstream.address: required",
                "route[0].domains: required",
                "route[0].address: required",
            ],
        );
    }

    #[test]
    fn overrides_win_and_are_checked() {
        let o = Overrides {
            listen: Some("127.0.0.1:2525".into()),
            cluster_listen: Some("127.0.0.1:7000".into()),
            web_listen: Some("127.0.0.1:8443".into()),
            downstream: Some("127.0.0.1:2526".into()),
            data_dir: Some("/tmp/x".into()),
        };
        let c = Config::parse("", "t", &o).expect("valid");
        assert_eq!(c.web.listen.port(), 8443);
        assert_eq!(c.server.listen.port(), 2525);
        assert_eq!(c.cluster.listen.port(), 7000);
        assert_eq!(c.downstream.address, "127.0.0.1:2526");
        let bad = Overrides {
            listen: Some("x".into()),
            ..o.clone()
        };
        assert!(Config::parse("", "t", &bad).is_err());
        let bad = Overrides {
            web_listen: Some("x".into()),
            ..o.clone()
        };
        assert!(Config::parse("", "t", &bad).is_err());
        let bad = Overrides {
            cluster_listen: Some("x".into()),
            ..o
        };
        assert!(Config::parse("", "t", &bad).is_err());
    }

    #[test]
    fn cluster_section_is_checked() {
        assert_errors(
            "[cluster]\nlisten = \"nowhere\"\nadvertise = \"0.0.0.0:7946\"\nsnapshot_every = 3\n",
            &[
                "cluster.listen: \"nowhere\"",
                "cluster.advertise: \"0.0.0.0:7946\" is not an address:port other members can reach",
                "cluster.snapshot_every: must be at least 10",
            ],
        );
        let c = parse(
            "[downstream]\naddress = \"127.0.0.1:25\"\n[cluster]\nadvertise = \"192.0.2.10:7946\"\n",
        )
        .expect("valid");
        assert_eq!(c.cluster.advertise.as_deref(), Some("192.0.2.10:7946"));
        assert_eq!(c.cluster.snapshot_every, 1000);
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("50MB"), Some(50_000_000));
        assert_eq!(parse_size("10MiB"), Some(10 * 1024 * 1024));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("0s"), None);
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let Err(e) = parse("[server\n") else {
            panic!("expected error")
        };
        assert!(e.to_string().starts_with("test.toml: not valid TOML"));
    }
}

mod example {
    use super::*;

    /// The documented example must stay valid and must show the built-in defaults.
    #[test]
    fn example_configuration_is_valid_and_matches_the_defaults() {
        let text = include_str!("../../postern.example.toml");
        let o = Overrides {
            downstream: Some("127.0.0.1:25".into()),
            ..Overrides::default()
        };
        let example = Config::parse(text, "postern.example.toml", &o).expect("example is valid");
        let defaults = Config::parse("", "defaults", &o).expect("defaults are valid");
        assert_eq!(example, defaults);
    }
}
