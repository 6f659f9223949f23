//! The appliance image (`image/build.sh`) booted under qemu (TCG, OVMF, user networking):
//! posternd comes up on the serial console, the GUI's setup answers over HTTPS, a message
//! sent over SMTP reaches a downstream on the host, no unit failed, and the hardening figure
//! of postern.service is printed and kept at OK; one flipped byte in the root partition
//! makes the initramfs refuse to boot it.

use std::path::{Path, PathBuf};
use std::process::Command;
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

/// Builds the image once per test run (image/build.sh caches what did not change).
fn image() -> Option<PathBuf> {
    if let Err(reason) = qemu::available() {
        skip(
            &format!("image: skipped: {reason} (image/build.sh installs qemu-system-x86 and ovmf)"),
            "REQUIRE_PEERS",
        );
        return None;
    }
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = std::env::var("POSTERN_IMAGE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from("/var/tmp/postern-image"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../image/build.sh");
        let started = std::time::Instant::now();
        let run = Command::new("bash")
            .arg(&script)
            .arg("--out")
            .arg(&out)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        eprintln!(
            "image/build.sh took {:.0} s:\n{}",
            started.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&run.stderr)
                .lines()
                .filter(|l| l.starts_with('['))
                .collect::<Vec<_>>()
                .join("\n")
        );
        if run.status.success() {
            Ok(out)
        } else {
            Err(format!(
                "image/build.sh failed:\n{}{}",
                String::from_utf8_lossy(&run.stdout),
                String::from_utf8_lossy(&run.stderr)
            ))
        }
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
    let setup = gui.get("/setup", &[]).expect("setup page");
    assert!(
        setup.text().contains("Set up this node"),
        "{}",
        setup.text()
    );
    // Set it up through the API with the host's sink as downstream (10.0.2.2 is the host).
    let port = sink
        .addr()
        .rsplit_once(':')
        .map(|(_, p)| p.to_owned())
        .expect("port");
    let r = gui
        .request(
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
        .expect("setup");
    assert_eq!(r.status, 200, "{}", r.text());

    // A message through the appliance: signed on its way (alice is not enrolled: relayed
    // as is; the point is the queue-less path through the booted system).
    let smtp: std::net::SocketAddr = format!("127.0.0.1:{}", vm.port(25)).parse().expect("addr");
    let mut c = postern_tests::client::Client::ready(smtp);
    c.cmd("EHLO host.test", 250);
    let r = c.send_mail(
        "alice@corp.example",
        &["bob@partner.example"],
        "From: alice@corp.example\r\nTo: bob@partner.example\r\nSubject: through the appliance\r\n\r\nhello from the host\r\n",
    );
    assert_eq!(r.code, 250, "{r:?}");
    let got = sink.wait_for_messages(1, Duration::from_secs(30));
    assert!(got[0].text().contains("Subject: through the appliance"));

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

/// Byte offset and size of the partition named `name` in a GPT disk image.
fn partition(disk: &Path, name: &str) -> (u64, u64) {
    let out = Command::new("sfdisk")
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
    let disk = scratch.join("disk.raw");
    let cp = Command::new("cp")
        .arg("--sparse=always")
        .arg(dir.join("disk.raw"))
        .arg(&disk)
        .status()
        .expect("cp");
    assert!(cp.success());
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

#[test]
fn the_image_reads_emulated_hardware_through_real_drivers() {
    let Some(dir) = image() else {
        return;
    };
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
    assert!(
        hw["sources"]["product"]
            .as_str()
            .unwrap_or("")
            .contains("Q35"),
        "{hw}"
    );
    assert_eq!(hw["report"]["model"], "generic");
}
