//! The appliance image (`image/build.sh`) booted under qemu (TCG, OVMF, user networking):
//! posternd comes up on the serial console, the GUI's setup answers over HTTPS, a message
//! sent over SMTP reaches a downstream on the host, no unit failed, and the hardening figure
//! of postern.service is printed and kept at OK; one flipped byte in the root partition
//! makes the initramfs refuse to boot it.

use postern_tests::peers::Peer;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use postern_tests::qemu::{self, BootOptions, Vm};
use postern_tests::sink::Sink;
use postern_tests::{Scratch, skip};

/// Boot to `posternd ready` under TCG takes ~40 s here; CI machines may be slower.
const BOOT: Duration = Duration::from_secs(300);

/// One virtual machine at a time: a TCG guest keeps a core busy, and the other end-to-end
/// tests (VIP failover timings among them) run beside these.
static ONE_VM: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs image/build.sh with `args` (and `env`), printing its step lines; Err with its output.
fn build(args: &[&str], env: &[(&str, String)]) -> Result<(), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../image/build.sh");
    let started = std::time::Instant::now();
    let run = Peer::Bash
        .command()
        .arg(&script)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    eprintln!(
        "image/build.sh {} took {:.0} s:\n{}",
        args.join(" "),
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&run.stdout)
            .lines()
            .filter(|l| l.starts_with('[') || l.starts_with("built"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    if run.status.success() {
        Ok(())
    } else {
        Err(format!(
            "image/build.sh failed:\n{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        ))
    }
}

/// The folder the image is built into.
fn image_dir() -> PathBuf {
    std::env::var("POSTERN_IMAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/var/tmp/postern-image"))
}

/// Builds the image once per test run (image/build.sh caches what did not change).
fn image() -> Option<PathBuf> {
    if let Err(reason) = qemu::available() {
        skip(&format!("image: skipped: {reason}"), "REQUIRE_PEERS");
        return None;
    }
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = image_dir();
        build(&["--out", &out.display().to_string()], &[]).map(|()| out)
    });
    match built {
        Ok(p) => Some(p.clone()),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn the_image_boots_relays_mail_and_serves_the_gui() {
    let Some(dir) = image() else {
        return;
    };
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let sink = Sink::start(&[]);
    let mut o = BootOptions::new(&dir.join("disk.raw"));
    o.forwards = vec![25, 443];
    let mut vm = Vm::boot(&o);
    let took = vm
        .wait_console("posternd ready", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "image: posternd ready {:.0} s after qemu started (TCG)",
        took.as_secs_f64()
    );

    // The GUI: a fresh appliance shows its setup page.
    let web: std::net::SocketAddr = format!("127.0.0.1:{}", vm.port(443)).parse().expect("addr");
    let gui = postern_tests::https::Client::any_certificate(web).expect("client");
    let r = postern_tests::wait_for(Duration::from_secs(30), || gui.get("/login", &[]).ok())
        .expect("HTTPS answers");
    assert_eq!((r.status, r.header("location")), (303, Some("/setup")));
    let page = gui.get("/setup", &[]).expect("setup page");
    assert!(page.text().contains("Set up this node"), "{}", page.text());
    let secret = setup(&gui, &sink);

    // A message through the appliance (alice is not enrolled: relayed as is; the point is the
    // queue-less path through the booted system).
    send_through(&vm, &sink, "through the appliance");

    // The network, changed through the API, is applied at once by the appliance: a static
    // address (the one qemu's DHCP gives, so the host keeps reaching it).
    let session = gui_session(&gui, &secret);
    let token = api_token(&gui, &session);
    let r = gui
        .json(
            "PUT",
            "/api/v1/network",
            &token,
            Some(serde_json::json!({
                "addresses": ["10.0.2.15/24"], "gateways": ["10.0.2.2"], "dns": ["10.0.2.3"],
            })),
        )
        .expect("network");
    assert_eq!(r.status, 200, "{}", r.text());
    vm.wait_console(
        "postern-settings: static network on en* eth*: 10.0.2.15/24",
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let r = postern_tests::wait_for(Duration::from_secs(60), || {
        gui.json("GET", "/api/v1/network", &token, None)
            .ok()
            .filter(|r| r.status == 200)
    })
    .expect("HTTPS after the network change");
    assert_eq!(r.json()["mode"], "static", "{}", r.text());
    send_through(&vm, &sink, "with a static address");

    // No failed units; the hardening figure, printed.
    vm.wait_console("postern-boot-report:", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let console = vm.console();
    assert!(
        console.contains("postern-boot-report: no failed units"),
        "failed units on the console"
    );
    let exposure = console
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for postern.service:")
                .nth(1)
        })
        .map(|s| s.trim().to_owned())
        .expect("systemd-analyze security output");
    eprintln!("image: systemd-analyze security postern.service: {exposure}");
    let level: f64 = exposure
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("exposure figure");
    assert!(level <= 2.0, "postern.service exposure {exposure}");
}

/// A copy of the image's disk in `scratch` (sparse), to change or to boot writable.
fn disk_copy(dir: &Path, scratch: &Scratch) -> PathBuf {
    let disk = scratch.join("disk.raw");
    let cp = Peer::Cp
        .command()
        .arg("--sparse=always")
        .arg(dir.join("disk.raw"))
        .arg(&disk)
        .status()
        .expect("cp");
    assert!(cp.success());
    disk
}

/// Builds a variant of the image from the same tree and binaries (`--no-cargo`) into
/// `postern-image-NAME` beside the image: `files` (path in the root, contents) and `links`
/// (path, target) go over image/rootfs through `--overlay`; `args` and `env` go to build.sh.
fn variant(
    name: &str,
    files: &[(&str, &str)],
    links: &[(&str, &str)],
    args: &[&str],
    env: &[(&str, String)],
) -> Result<PathBuf, String> {
    let parent = image_dir()
        .parent()
        .map(Path::to_owned)
        .unwrap_or_else(|| PathBuf::from("/var/tmp"));
    let out = parent.join(format!("postern-image-{name}"));
    let mut all = vec!["--no-cargo".to_owned()];
    if !(files.is_empty() && links.is_empty()) {
        let overlay = parent.join(format!("postern-image-{name}-overlay"));
        let _ = std::fs::remove_dir_all(&overlay);
        for (path, text) in files {
            let p = overlay.join(path);
            std::fs::create_dir_all(p.parent().unwrap_or(&overlay)).map_err(|e| e.to_string())?;
            std::fs::write(&p, text).map_err(|e| e.to_string())?;
        }
        for (path, target) in links {
            let p = overlay.join(path);
            std::fs::create_dir_all(p.parent().unwrap_or(&overlay)).map_err(|e| e.to_string())?;
            std::os::unix::fs::symlink(target, &p).map_err(|e| e.to_string())?;
        }
        all.extend(["--overlay".to_owned(), overlay.display().to_string()]);
    }
    all.extend(args.iter().map(|a| (*a).to_owned()));
    all.extend(["--out".to_owned(), out.display().to_string()]);
    build(&all.iter().map(String::as_str).collect::<Vec<_>>(), env).map(|()| out)
}

/// Sets a fresh appliance up through the API, with the host's sink as downstream (10.0.2.2 is
/// the host); returns the administrator's TOTP secret.
fn setup(gui: &postern_tests::https::Client, sink: &Sink) -> String {
    let port = sink
        .addr()
        .rsplit_once(':')
        .map(|(_, p)| p.to_owned())
        .expect("port");
    let r = postern_tests::wait_for(Duration::from_secs(30), || {
        gui.request(
            "POST",
            "/api/v1/setup",
            &[("Content-Type", "application/json")],
            serde_json::json!({
                "admin": "root",
                "password": "correct horse battery staple",
                "domains": ["corp.example"],
                "downstream": format!("10.0.2.2:{port}"),
            })
            .to_string()
            .as_bytes(),
        )
        .ok()
    })
    .expect("setup");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["totp_secret"].as_str().expect("secret").to_owned()
}

/// One message through the VM's SMTP port: accepted (after the downstream took it) and
/// received by `sink`.
fn send_through(vm: &Vm, sink: &Sink, subject: &str) {
    let smtp: std::net::SocketAddr = format!("127.0.0.1:{}", vm.port(25)).parse().expect("addr");
    let mut c = postern_tests::client::Client::ready(smtp);
    c.cmd("EHLO host.test", 250);
    let before = sink.messages().len();
    let r = c.send_mail(
        "alice@corp.example",
        &["bob@partner.example"],
        &format!(
            "From: alice@corp.example\r\nTo: bob@partner.example\r\nSubject: {subject}\r\n\r\nhello from the host\r\n"
        ),
    );
    assert_eq!(r.code, 250, "{r:?}");
    let got = sink.wait_for_messages(before + 1, Duration::from_secs(30));
    assert!(got[before].text().contains(&format!("Subject: {subject}")));
}

/// Byte offset and size of the partition named `name` in a GPT disk image.
fn partition(disk: &Path, name: &str) -> (u64, u64) {
    let out = Peer::Sfdisk
        .command()
        .arg("--json")
        .arg(disk)
        .output()
        .expect("sfdisk");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("sfdisk json");
    let p = v["partitiontable"]["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no partition {name}: {v}"))
        .clone();
    let sector = v["partitiontable"]["sectorsize"].as_u64().unwrap_or(512);
    (
        p["start"].as_u64().expect("start") * sector,
        p["size"].as_u64().expect("size") * sector,
    )
}

#[test]
fn a_flipped_byte_in_the_root_partition_stops_the_boot() {
    let Some(dir) = image() else {
        return;
    };
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("tampered");
    let disk = disk_copy(&dir, &scratch);
    let (start, _) = partition(&disk, "root-a");
    // Inside the erofs data, past the superblock: 1 MiB into the partition.
    let at = start + 1024 * 1024;
    let mut bytes = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&disk)
        .expect("open copy");
    use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
    let mut b = [0u8; 1];
    bytes.seek(SeekFrom::Start(at)).expect("seek");
    bytes.read_exact(&mut b).expect("read");
    b[0] ^= 0x01;
    bytes.seek(SeekFrom::Start(at)).expect("seek");
    bytes.write_all(&b).expect("write");
    drop(bytes);
    let mut vm = Vm::boot(&BootOptions::new(&disk));
    vm.wait_console("boot stopped.", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    let console = vm.console();
    let why = console
        .lines()
        .find(|l| l.contains("postern-initramfs:") && l.contains("refus"))
        .unwrap_or("");
    eprintln!("image: tampered root refused: {why}");
    assert!(!console.contains("posternd ready"));
    assert!(
        !console.contains("Welcome to"),
        "systemd must not start from a tampered root"
    );
}

/// Logs in through the GUI's form over HTTPS; returns the session cookie (`name=value`).
fn gui_session(gui: &postern_tests::https::Client, secret: &str) -> String {
    let page = gui.get("/login", &[]).expect("login page");
    let form = page
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .find_map(|(_, v)| v.strip_prefix("postern_form="))
        .and_then(|v| v.split(';').next())
        .expect("form cookie")
        .to_owned();
    let body = format!(
        "csrf={form}&name=root&password=correct+horse+battery+staple&code={}",
        crate::webgui::code(secret, 0)
    );
    let r = gui
        .request(
            "POST",
            "/login",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Cookie", &format!("postern_form={form}")),
            ],
            body.as_bytes(),
        )
        .expect("login");
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/")),
        "{}",
        r.text()
    );
    r.headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .find_map(|(_, v)| {
            v.starts_with("postern_session=")
                .then(|| v.split(';').next().unwrap_or("").to_owned())
        })
        .expect("session cookie")
}

/// An ACPI table with one thermal zone at 40 °C (critical at 100 °C), compiled by iasl: the
/// kernel's ACPI thermal driver registers it, and its hwmon device ("acpitz") is what
/// posternd reads — q35 has no other hwmon sensor, and this qemu builds no I2C sensor chips.
fn thermal_zone_table(scratch: &Scratch) -> Option<PathBuf> {
    if !postern_tests::peers_available("image: hwmon part", &[Peer::Iasl]) {
        return None;
    }
    let asl = scratch.join("thermal.asl");
    std::fs::write(
        &asl,
        "DefinitionBlock (\"\", \"SSDT\", 2, \"POSTRN\", \"THERMAL\", 1)\n\
         {\n    Scope (\\_TZ)\n    {\n        ThermalZone (TZ00)\n        {\n\
         Method (_TMP, 0, Serialized) { Return (3132) }\n\
         Method (_CRT, 0, Serialized) { Return (3732) }\n        }\n    }\n}\n",
    )
    .expect("asl");
    let out = Peer::Iasl
        .command()
        .arg("-p")
        .arg(scratch.join("thermal"))
        .arg(&asl)
        .output()
        .expect("iasl");
    assert!(
        out.status.success(),
        "iasl: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(scratch.join("thermal.aml"))
}

#[test]
fn the_image_reads_emulated_hardware_through_real_drivers() {
    let Some(dir) = image() else {
        return;
    };
    let scratch = Scratch::new("acpi");
    let thermal = thermal_zone_table(&scratch);
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let mut o = BootOptions::new(&dir.join("disk.raw"));
    o.forwards = vec![443];
    o.extra = [
        "-device",
        "i6300esb",
        "-device",
        "ipmi-bmc-sim,id=bmc0",
        "-device",
        "isa-ipmi-kcs,bmc=bmc0",
    ]
    .map(str::to_owned)
    .to_vec();
    if let Some(t) = &thermal {
        o.extra.push("-acpitable".into());
        o.extra.push(format!("file={}", t.display()));
    }
    let mut vm = Vm::boot(&o);
    vm.wait_console("posternd ready", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    vm.wait_console("hardware watchdog armed", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let web: std::net::SocketAddr = format!("127.0.0.1:{}", vm.port(443)).parse().expect("addr");
    let gui = postern_tests::https::Client::any_certificate(web).expect("client");
    let r = gui
        .request(
            "POST",
            "/api/v1/setup",
            &[("Content-Type", "application/json")],
            br#"{"admin":"root","password":"correct horse battery staple"}"#,
        )
        .expect("setup");
    assert_eq!(r.status, 200, "{}", r.text());
    let secret = r.json()["totp_secret"].as_str().expect("secret").to_owned();
    let session = gui_session(&gui, &secret);
    let hw = postern_tests::wait_for(Duration::from_secs(60), || {
        let r = gui.get("/api/v1/hardware", &[("Cookie", &session)]).ok()?;
        let v = r.json();
        v["sources"]["ipmi"]
            .as_str()
            .is_some_and(|s| s.starts_with("ok"))
            .then_some(v)
    })
    .unwrap_or_else(|| {
        panic!(
            "no IPMI readings: {}",
            gui.get("/api/v1/hardware", &[("Cookie", &session)])
                .map(|r| r.text())
                .unwrap_or_default()
        )
    });
    eprintln!("image: hardware sources in the VM: {}", hw["sources"]);
    assert_eq!(hw["sources"]["watchdog"], "/dev/watchdog", "{hw}");
    // q35's ICH9 TCO or the i6300ESB, whichever registered first.
    assert!(
        hw["sources"]["watchdog_identity"]
            .as_str()
            .is_some_and(|i| i.contains("i6300ESB") || i.contains("iTCO")),
        "{hw}"
    );
    assert!(
        hw["sources"]["product"]
            .as_str()
            .unwrap_or("")
            .contains("Q35"),
        "{hw}"
    );
    assert_eq!(hw["report"]["model"], "generic");
    if thermal.is_some() {
        // hwmon through the kernel's ACPI thermal driver.
        let tz = hw["readings"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["source"] == "hwmon" && r["name"].as_str().unwrap_or("").contains("acpitz"))
            .unwrap_or_else(|| panic!("no acpitz reading: {hw}"));
        eprintln!("image: hwmon in the VM: {tz}");
        assert_eq!(tz["value"].as_f64(), Some(40.0), "{tz}");
        assert_eq!(tz["high"].as_f64(), Some(100.0), "{tz}");
        assert_eq!(hw["report"]["overall"], "ok", "{hw}");
    }
}

/// Two update bundles built a minute after the image (so newer versions), from the same tree
/// and binaries: a good one, and a deliberately broken one whose posternd configuration does
/// not load (signed all the same: what a bad release looks like).
fn update_bundles(base: &Path) -> (PathBuf, PathBuf) {
    static BUILT: OnceLock<Result<(PathBuf, PathBuf), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let epoch: u64 = std::fs::read_to_string(base.join("source-date-epoch"))
            .map_err(|e| format!("source-date-epoch: {e}"))?
            .trim()
            .parse()
            .map_err(|e| format!("source-date-epoch: {e}"))?;
        let env = [("SOURCE_DATE_EPOCH", (epoch + 60).to_string())];
        let good = variant("update-good", &[], &[], &["--update-only"], &env)?;
        let broken = variant(
            "update-broken",
            &[(
                "etc/postern/postern.toml",
                "# A deliberately broken release: posternd refuses this configuration.\n[server]\nlisten = \"not an address\"\n",
            )],
            &[],
            &["--update-only"],
            &env,
        )?;
        Ok((good, broken))
    });
    match built {
        Ok((g, b)) => (g.clone(), b.clone()),
        Err(e) => panic!("{e}"),
    }
}

/// An admin API token, made through a GUI session (the form's CSRF token as X-CSRF-Token).
fn api_token(gui: &postern_tests::https::Client, session: &str) -> String {
    let page = gui.get("/", &[("Cookie", session)]).expect("dashboard");
    let text = page.text();
    let csrf = text
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a form's CSRF token on the dashboard")
        .to_owned();
    let r = gui
        .request(
            "POST",
            "/api/v1/tokens",
            &[
                ("Cookie", session),
                ("X-CSRF-Token", &csrf),
                ("Content-Type", "application/json"),
            ],
            br#"{"name":"updates","role":"admin"}"#,
        )
        .expect("token");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["token"].as_str().expect("token").to_owned()
}

fn system(gui: &postern_tests::https::Client, token: &str) -> serde_json::Value {
    let r = gui
        .json("GET", "/api/v1/system", token, None)
        .expect("system");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Uploads a bundle to POST /api/v1/system/update?reboot=true.
fn upload(
    gui: &postern_tests::https::Client,
    token: &str,
    bundle: &[u8],
) -> postern_tests::https::Reply {
    let started = std::time::Instant::now();
    let r = gui
        .request(
            "POST",
            "/api/v1/system/update?reboot=true",
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("Content-Type", "application/octet-stream"),
            ],
            bundle,
        )
        .expect("upload");
    eprintln!(
        "image: {} MiB bundle uploaded and verified in {:.0} s: {} {}",
        bundle.len() >> 20,
        started.elapsed().as_secs_f64(),
        r.status,
        r.text()
    );
    r
}

#[test]
fn an_update_runs_from_slot_b_and_a_broken_one_rolls_back_to_a() {
    let Some(dir) = image() else {
        return;
    };
    let (good, broken) = update_bundles(&dir);
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let base_version = std::fs::read_to_string(dir.join("version")).expect("version");
    let new_version = std::fs::read_to_string(good.join("version")).expect("version");
    let (base_version, new_version) = (base_version.trim(), new_version.trim());

    // A disk of our own: updates must survive reboots.
    let scratch = Scratch::new("update");
    let disk = disk_copy(&dir, &scratch);
    let sink = Sink::start(&[]);
    let mut o = BootOptions::new(&disk);
    o.writable = true;
    o.forwards = vec![25, 443];
    let mut vm = Vm::boot(&o);
    vm.wait_console("posternd ready", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    let web: std::net::SocketAddr = format!("127.0.0.1:{}", vm.port(443)).parse().expect("addr");
    let gui = postern_tests::https::Client::any_certificate(web)
        .expect("client")
        .with_read_timeout(Duration::from_secs(600));
    let secret = setup(&gui, &sink);
    let session = gui_session(&gui, &secret);
    let token = api_token(&gui, &session);
    let s = system(&gui, &token);
    assert_eq!(
        (s["slot"].as_str(), s["version"].as_str()),
        (Some("a"), Some(base_version)),
        "{s}"
    );

    // Refused before anything is written: a bundle whose manifest was altered, and the same
    // version as the one running.
    let good_bytes = std::fs::read(good.join("update.bundle")).expect("good bundle");
    let mut altered = good_bytes[..64 * 1024].to_vec();
    altered[40] ^= 1;
    let r = upload(&gui, &token, &altered);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("signature does not verify"),
        "{}",
        r.text()
    );
    let same = std::fs::read(dir.join("update.bundle")).expect("base bundle");
    let r = upload(&gui, &token, &same);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("not newer than the running"),
        "{}",
        r.text()
    );
    drop(same);

    // The broken release: installed into slot b, tried three times, given up on; slot a runs.
    let r = upload(
        &gui,
        &token,
        &std::fs::read(broken.join("update.bundle")).expect("broken"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["slot"], "b", "{}", r.text());
    vm.wait_console("installed into slot b", Duration::from_secs(600))
        .unwrap_or_else(|e| panic!("{e}"));
    let rolled = vm
        .wait_console("back on slot a", Duration::from_secs(1200))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "image: the broken update was given up on after {:.0} s",
        rolled.as_secs_f64()
    );
    assert_eq!(
        vm.console_count("postern-initramfs: slot b,"),
        3,
        "three boots of slot b"
    );
    assert!(
        vm.console()
            .contains("postern-healthy: this boot is on trial")
    );
    vm.wait_console_count("posternd ready", 2, BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    let s = postern_tests::wait_for(Duration::from_secs(60), || {
        gui.json("GET", "/api/v1/system", &token, None)
            .ok()
            .filter(|r| r.status == 200)
    })
    .expect("system")
    .json();
    assert_eq!(s["slot"], "a", "{s}");
    assert_eq!(s["version"], base_version, "{s}");
    assert_eq!(s["last_update"]["state"], "rolled-back", "{s}");

    // The good release: slot b, and mail flows through it.
    let r = upload(&gui, &token, &good_bytes);
    assert_eq!(r.status, 200, "{}", r.text());
    drop(good_bytes);
    let took = vm
        .wait_console_count("posternd ready", 3, Duration::from_secs(900))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "image: install + reboot into slot b took {:.0} s",
        took.as_secs_f64()
    );
    let s = postern_tests::wait_for(Duration::from_secs(60), || {
        gui.json("GET", "/api/v1/system", &token, None)
            .ok()
            .filter(|r| r.status == 200)
    })
    .expect("system")
    .json();
    assert_eq!(s["slot"], "b", "{s}");
    assert_eq!(s["version"], new_version, "{s}");
    assert_eq!(s["last_update"]["state"], "running", "{s}");
    send_through(&vm, &sink, "after the update");
}

/// A test-only variant of the image: the same build plus one unit (through `--overlay`) that
/// freezes posternd with SIGSTOP once, ten seconds after it serves. The product image has no
/// way to do that from outside (no login, no shell), which is the point of it.
fn hang_image() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        variant(
            "hang",
            &[
                (
                    "etc/systemd/system/postern-test-hang.service",
                    "# TEST IMAGE ONLY (tests/e2e/image): freeze posternd once, so that the hardware\n\
                     # watchdog it armed resets the machine.\n\
                     [Unit]\n\
                     Description=TEST IMAGE: freeze posternd with SIGSTOP once\n\
                     Requires=postern-healthy.service\n\
                     After=postern-healthy.service\n\
                     ConditionPathExists=!/var/lib/postern/test-hang-done\n\n\
                     [Service]\n\
                     Type=oneshot\n\
                     ExecStart=/bin/sh -c 'sleep 10; touch /var/lib/postern/test-hang-done; sync; \
                     echo \"postern-test: SIGSTOP to posternd (pid $$(systemctl show -P MainPID postern.service))\"; \
                     systemctl kill --signal=SIGSTOP postern.service'\n\
                     StandardOutput=journal+console\n",
                ),
                // q35's own ICH9 TCO watchdog would race the i6300ESB for /dev/watchdog: the
                // test is about the i6300ESB.
                (
                    "etc/modprobe.d/postern-test.conf",
                    "# TEST IMAGE ONLY: the i6300ESB is the watchdog under test.\nblacklist iTCO_wdt\n",
                ),
            ],
            &[(
                "etc/systemd/system/multi-user.target.wants/postern-test-hang.service",
                "../postern-test-hang.service",
            )],
            &["--no-zstd"],
            &[],
        )
    });
    match built {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_hung_posternd_lets_the_hardware_watchdog_reset_the_vm() {
    // The product image first: it has the release binaries the variant reuses.
    if image().is_none() {
        return;
    }
    let dir = hang_image();
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let mut o = BootOptions::new(&dir.join("disk.raw"));
    o.extra = ["-device", "i6300esb"].map(str::to_owned).to_vec();
    let mut vm = Vm::boot(&o);
    vm.wait_console("hardware watchdog armed", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    let armed = vm
        .console()
        .lines()
        .find(|l| l.contains("hardware watchdog armed"))
        .unwrap_or("")
        .to_owned();
    assert!(armed.contains("identity=i6300ESB timer"), "{armed}");
    vm.wait_console(
        "postern-test: SIGSTOP to posternd",
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let stopped = vm.console().len();
    // i6300esb: two stages of the 30 s default heartbeat, then the reset.
    let took = vm
        .wait_console_count("postern-initramfs: slot a,", 2, Duration::from_secs(240))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "image: the watchdog reset the VM {:.0} s after posternd was stopped",
        took.as_secs_f64()
    );
    let console = vm.console();
    let between = &console[stopped..];
    // A reset, not a reboot: no shutdown by systemd, no "Restarting system" by the kernel.
    assert!(
        !between.contains("reboot: Restarting system") && !between.contains("systemd-shutdown"),
        "the machine was rebooted, not reset by the watchdog:\n{between}"
    );
    // It comes back and serves (the hook runs once).
    vm.wait_console_count("posternd ready", 2, BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(vm.console_count("postern-test: SIGSTOP"), 1);
}
