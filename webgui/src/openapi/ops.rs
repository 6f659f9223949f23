//! Every operation of `/api/v1`, with its request and reply schemas.

use serde_json::{Value, json};

use super::{Op, any, obj, op, string};

pub(super) fn ops() -> Vec<Op> {
    let cert = obj(
        &["serial", "not_before", "not_after"],
        json!({ "serial": string(), "not_before": {"type": "integer"}, "not_after": {"type": "integer"} }),
    );
    let user = obj(
        &["address", "smime", "pgp"],
        json!({ "address": string(), "smime": {"type": "array", "items": cert}, "pgp": {"type": "array", "items": string()} }),
    );
    let partner = obj(
        &["address", "smime", "pgp"],
        json!({ "address": string(), "smime": {"type": "array", "items": cert}, "smime_gcm": {"type": "boolean"}, "pgp": {"type": "array", "items": string()} }),
    );
    let data = obj(&["data"], json!({ "data": string(), "password": string() }));
    let int = json!({"type": "integer"});
    let opt_int = json!({"type": ["integer", "null"]});
    let opt_str = json!({"type": ["string", "null"]});
    let domain_key = obj(
        &["fingerprint", "created", "revoked", "current"],
        json!({ "fingerprint": string(), "created": int, "expires": opt_int, "revoked": {"type": "boolean"}, "current": {"type": "boolean"} }),
    );
    let domain_cert = obj(
        &[
            "serial",
            "fingerprint",
            "not_before",
            "not_after",
            "revoked",
            "current",
        ],
        json!({ "serial": string(), "fingerprint": string(), "not_before": int, "not_after": int,
                "revoked": {"type": "boolean"}, "current": {"type": "boolean"} }),
    );
    let domain = obj(
        &["domain", "address", "keys", "smime"],
        json!({ "domain": string(), "address": string(), "keys": {"type": "array", "items": domain_key},
                "smime": {"type": "array", "items": domain_cert}, "mode": opt_str, "max_age": opt_int }),
    );
    let pinned = obj(
        &[
            "fingerprint",
            "trust",
            "sources",
            "first_seen",
            "last_seen",
            "revoked",
        ],
        json!({ "fingerprint": string(), "trust": {"type": "string", "enum": ["tofu", "verified"]},
                "sources": {"type": "array", "items": string()}, "first_seen": int, "last_seen": int,
                "revoked": {"type": "boolean"} }),
    );
    let pinned_cert = obj(
        &[
            "fingerprint",
            "subject",
            "issuer",
            "not_after",
            "trust",
            "sources",
            "first_seen",
            "last_seen",
        ],
        json!({ "fingerprint": string(), "subject": string(), "issuer": string(), "not_after": int,
                "trust": {"type": "string", "enum": ["tofu", "verified"]},
                "sources": {"type": "array", "items": string()}, "first_seen": int, "last_seen": int }),
    );
    let partner_domain = obj(
        &["domain", "keys", "enforced"],
        json!({ "domain": string(), "keys": {"type": "array", "items": pinned},
                "certs": {"type": "array", "items": pinned_cert}, "mode": opt_str,
                "max_age": opt_int, "policy_seen": opt_int, "policy_source": opt_str,
                "enforced": {"type": "boolean"} }),
    );
    let address = obj(&["address"], json!({ "address": string() }));
    let password = obj(&["password"], json!({ "password": string() }));
    let list = |items: Value| json!({ "type": "array", "items": items });
    let network = obj(
        &["mode", "interface", "addresses", "gateways", "dns", "ntp"],
        json!({ "mode": {"type": "string", "enum": ["dhcp", "static"]}, "interface": string(), "addresses": list(string()), "gateways": list(string()), "dns": list(string()), "ntp": list(string()) }),
    );
    let mut setup = op(
        "post",
        "/setup",
        "First-boot setup: the first administrator, internal domains, downstream MTA (only while the cluster has no administrator)",
        Some(obj(
            &["admin", "password"],
            json!({ "admin": string(), "password": string(), "domains": list(string()), "downstream": string() }),
        )),
        obj(
            &["admin", "totp_secret", "totp_uri"],
            json!({ "admin": string(), "totp_secret": string(), "totp_uri": string() }),
        ),
    );
    setup.public = true;
    let mut setup_status = op(
        "get",
        "/setup",
        "Whether the cluster has been set up",
        None,
        obj(
            &["setup_done"],
            json!({ "setup_done": {"type": "boolean"} }),
        ),
    );
    setup_status.public = true;
    vec![
        setup_status,
        setup,
        op(
            "get",
            "/openapi.json",
            "This document",
            None,
            json!({"type": "object"}),
        ),
        op(
            "get",
            "/status",
            "Cluster status: members, leader, term, applied index, lag",
            None,
            json!({"type": "object"}),
        ),
        op(
            "get",
            "/stats",
            "This node's mail counters",
            None,
            json!({"type": "object"}),
        ),
        op(
            "get",
            "/system",
            "This node's system: the root slot (a or b) and image version it runs, and the last update's state",
            None,
            obj(
                &["updates", "pending"],
                json!({ "updates": {"type": "boolean"}, "slot": {"type": "string", "nullable": true}, "version": {"type": "string", "nullable": true}, "appliance": string(), "pending": {"type": "boolean"}, "last_update": {"type": "object", "nullable": true} }),
            ),
        ),
        op(
            "post",
            "/system/update",
            "Install a signed update bundle (the body, application/octet-stream) into the inactive root slot; ?reboot=true reboots into it. The next boot tries it and falls back to the running slot if it does not come up healthy",
            None,
            obj(
                &["version", "slot", "reboot", "message"],
                json!({ "version": string(), "slot": string(), "reboot": {"type": "boolean"}, "message": string(), "running": {"type": "object"} }),
            ),
        ),
        op(
            "get",
            "/network",
            "This node's network settings: static (addresses, gateways, DNS, NTP) or DHCP",
            None,
            network.clone(),
        ),
        op(
            "put",
            "/network",
            "Replace this node's network settings (no addresses: DHCP); the appliance applies them at once",
            Some(obj(
                &[],
                json!({ "interface": string(), "addresses": list(string()), "gateways": list(string()), "dns": list(string()), "ntp": list(string()) }),
            )),
            network,
        ),
        op(
            "get",
            "/users",
            "Internal users and their keys",
            None,
            list(user.clone()),
        ),
        op(
            "post",
            "/users",
            "Enrol a user: S/MIME and OpenPGP keys are made",
            Some(address.clone()),
            user.clone(),
        ),
        op(
            "delete",
            "/users/{address}",
            "Remove a user and their keys",
            None,
            any(),
        ),
        op(
            "get",
            "/users/{address}/certificate",
            "A user's certificates (PEM)",
            None,
            string(),
        ),
        op(
            "get",
            "/users/{address}/openpgp",
            "A user's OpenPGP public keys (armored)",
            None,
            string(),
        ),
        op(
            "post",
            "/users/{address}/pkcs12",
            "A user's S/MIME identity as PKCS#12 (base64) under a password",
            Some(password.clone()),
            string(),
        ),
        op(
            "post",
            "/import/pkcs12",
            "Import a PKCS#12 bundle (base64) as a user's S/MIME identity",
            Some(data.clone()),
            user.clone(),
        ),
        op(
            "post",
            "/import/openpgp-secret",
            "Import an OpenPGP secret key (base64) as a user's key",
            Some(data.clone()),
            user,
        ),
        op(
            "post",
            "/import/public",
            "Import partner certificates (PEM) or OpenPGP public keys (base64)",
            Some(data.clone()),
            list(string()),
        ),
        op(
            "get",
            "/partners",
            "Harvested and imported partner keys",
            None,
            list(partner),
        ),
        op(
            "get",
            "/domains",
            "Our internal domains, their domain keys (domainkey@DOMAIN) and what they publish",
            None,
            list(domain.clone()),
        ),
        op(
            "get",
            "/domains/{domain}/dns-records",
            "The OPENPGPKEY, SMIMEA and _mailenc TXT records for the domain's DNSSEC-signed zone",
            None,
            obj(
                &["domain", "records"],
                json!({ "domain": string(), "records": list(string()) }),
            ),
        ),
        op(
            "post",
            "/domains/{domain}/rollover",
            "A new domain key now, certified by the current one",
            None,
            domain.clone(),
        ),
        op(
            "post",
            "/domains/{domain}/revoke",
            "Revoke one of the domain's keys",
            Some(obj(&["fingerprint"], json!({ "fingerprint": string() }))),
            any(),
        ),
        op(
            "get",
            "/partner-domains",
            "Partner domains and what is pinned for them (keys, trust, sources, policy)",
            None,
            list(partner_domain.clone()),
        ),
        op(
            "delete",
            "/partner-domains/{domain}",
            "Forget everything pinned for a partner domain",
            None,
            any(),
        ),
        op(
            "post",
            "/partner-domains/{domain}/import",
            "Pin a partner's domain key by hand (base64 of an OpenPGP key, or of an S/MIME domain certificate in PEM or DER that names the domain): verified",
            Some(obj(&["data"], json!({ "data": string() }))),
            partner_domain.clone(),
        ),
        op(
            "post",
            "/partner-domains/{domain}/refresh",
            "Look a partner domain up now (DNSSEC, WKD)",
            None,
            partner_domain,
        ),
        op(
            "post",
            "/trust",
            "Add S/MIME trust anchors (base64 of PEM)",
            Some(data),
            json!({"type": "integer"}),
        ),
        op(
            "get",
            "/ca",
            "The built-in CA certificate (PEM)",
            None,
            string(),
        ),
        op(
            "post",
            "/rollover",
            "Run the key rollover check now",
            None,
            list(string()),
        ),
        op(
            "get",
            "/settings",
            "Every replicated setting",
            None,
            json!({"type": "object", "additionalProperties": string()}),
        ),
        op(
            "get",
            "/settings/{key}",
            "One replicated setting (null when unset)",
            None,
            json!({"type": "string", "nullable": true}),
        ),
        op(
            "put",
            "/settings/{key}",
            "Set a replicated setting",
            Some(obj(&["value"], json!({ "value": string() }))),
            any(),
        ),
        op(
            "delete",
            "/settings/{key}",
            "Unset a replicated setting",
            None,
            any(),
        ),
        op(
            "post",
            "/cluster/credentials",
            "Export credentials with a one-time join token",
            Some(obj(
                &[],
                json!({ "ttl_secs": {"type": "integer", "minimum": 60, "maximum": 604800} }),
            )),
            json!({"type": "object"}),
        ),
        op(
            "post",
            "/cluster/join",
            "Join the cluster the credentials name through the member at peer",
            Some(obj(
                &["credentials", "peer"],
                json!({ "credentials": string(), "peer": string() }),
            )),
            json!({"type": "object"}),
        ),
        op(
            "delete",
            "/cluster/members/{id}",
            "Take a member out of the cluster",
            None,
            any(),
        ),
        op(
            "get",
            "/vips",
            "Virtual IPs, holders and leases",
            None,
            any(),
        ),
        op(
            "post",
            "/vips",
            "Configure a virtual IP",
            Some(obj(
                &["address", "interface"],
                json!({ "address": string(), "interface": string(), "preferred": list(json!({"type": "integer", "minimum": 0})) }),
            )),
            any(),
        ),
        op(
            "post",
            "/vips/move",
            "Move a virtual IP to a node",
            Some(obj(
                &["address", "to"],
                json!({ "address": string(), "to": {"type": "integer", "minimum": 0} }),
            )),
            any(),
        ),
        op(
            "post",
            "/vips/remove",
            "Stop serving a virtual IP",
            Some(address),
            any(),
        ),
        op(
            "get",
            "/admins",
            "Administrators and their roles",
            None,
            list(obj(
                &["name", "role"],
                json!({ "name": string(), "role": string(), "created": {"type": "integer"} }),
            )),
        ),
        op(
            "post",
            "/admins",
            "Add an administrator (the reply carries the TOTP secret)",
            Some(obj(
                &["name", "password"],
                json!({ "name": string(), "password": string(), "role": {"type": "string", "enum": ["admin", "readonly"]} }),
            )),
            json!({"type": "object"}),
        ),
        op(
            "delete",
            "/admins/{name}",
            "Remove an administrator",
            None,
            any(),
        ),
        op(
            "put",
            "/admins/{name}/password",
            "Set an administrator's password",
            Some(password),
            any(),
        ),
        op(
            "put",
            "/admins/{name}/role",
            "Give an administrator another role (in force for their open sessions at once; the last admin cannot be demoted: 409)",
            Some(obj(
                &["role"],
                json!({ "role": {"type": "string", "enum": ["admin", "readonly"]} }),
            )),
            any(),
        ),
        op(
            "get",
            "/tokens",
            "API tokens (names and roles only)",
            None,
            list(json!({"type": "object"})),
        ),
        op(
            "post",
            "/tokens",
            "Create an API token (shown once)",
            Some(obj(
                &["name"],
                json!({ "name": string(), "role": {"type": "string", "enum": ["admin", "readonly"]} }),
            )),
            obj(
                &["name", "token"],
                json!({ "name": string(), "role": string(), "token": string() }),
            ),
        ),
        op(
            "delete",
            "/tokens/{name}",
            "Revoke an API token",
            None,
            any(),
        ),
        op(
            "get",
            "/audit",
            "The latest administrative actions, newest first",
            None,
            list(json!({"type": "object"})),
        ),
        op(
            "get",
            "/trace",
            "This node's latest mail transactions, newest first (never bodies)",
            None,
            list(json!({"type": "object"})),
        ),
        op(
            "put",
            "/web-certificate",
            "Set the HTTPS certificate and key (PEM) of every node's web server",
            Some(obj(
                &["cert", "key"],
                json!({ "cert": string(), "key": string() }),
            )),
            any(),
        ),
    ]
}
