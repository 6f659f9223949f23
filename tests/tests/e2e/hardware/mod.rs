//! Hardware monitoring through a real `posternd` reading recorded sysfs and IPMI trees
//! (`hardware/testdata/`) that the test changes while it runs: a PSU lost shows in the API,
//! the metrics, the cluster state, the GUI's dashboard (Chromium) and an alert mail to the
//! admin through the downstream; its recovery too; a failing disk makes the node give up its
//! virtual IPs; the watchdog is petted every second, stops being petted while posternd is
//! stopped, and is disarmed on a clean stop. (Real drivers under qemu: the `image` tests.)

use postern_tests::peers::Peer;
use std::path::{Path, PathBuf};
use std::time::Duration;

use postern_tests::posternd::Posternd;
use postern_tests::sink::Sink;
use postern_tests::{Scratch, signal, wait_for};

use crate::webgui::{PASSWORD, browser, code, login, setup_api, wait_text};

fn testdata(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../hardware/testdata")
        .join(case)
}

fn hardware(p: &Posternd) -> serde_json::Value {
    p.ctl_json(&["hardware"]).expect("posternctl hardware")
}

fn overall(p: &Posternd) -> String {
    hardware(p)["report"]["overall"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[test]
fn a_lost_psu_shows_everywhere_and_the_watchdog_follows_the_daemon() {
    let tree = Scratch::new("hw-tree");
    let status = Peer::Cp
        .command()
        .arg("-r")
        .arg(testdata("healthy"))
        .arg(tree.join("now"))
        .status()
        .expect("cp");
    assert!(status.success());
    let now = tree.join("now");
    let dog = tree.join("watchdog");
    std::fs::write(&dog, b"").expect("watchdog file");
    let sink = Sink::start(&[]);
    let p = Posternd::start(
        &sink.addr(),
        "",
        &format!(
            "[hardware]\ninterval = \"1s\"\nsys_root = \"{}\"\nipmi_recorded = \"{}\"\nwatchdog = \"{}\"\nalert_to = \"ops@corp.example\"\n",
            now.join("sys").display(),
            now.join("ipmi").display(),
            dog.display()
        ),
    );
    let secret = setup_api(&p, "root");
    assert_eq!(
        wait_for(Duration::from_secs(10), || (overall(&p) == "ok")
            .then_some(())),
        Some(()),
        "{}",
        hardware(&p)
    );
    assert_eq!(hardware(&p)["report"]["model"], "Postern A200");

    // PS2 loses its AC input.
    std::fs::copy(
        testdata("psu-lost").join("ipmi/sdr.txt"),
        now.join("ipmi/sdr.txt"),
    )
    .expect("swap sdr");
    assert_eq!(
        wait_for(Duration::from_secs(10), || (overall(&p) == "degraded")
            .then_some(())),
        Some(())
    );
    let hw = hardware(&p);
    let problems: Vec<&str> = hw["report"]["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter(|c| c["state"] != "ok")
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(problems, ["PS2 Status"], "{hw}");
    // Every member sees it in the cluster state.
    let record = wait_for(Duration::from_secs(10), || {
        let h = hardware(&p);
        let r = h["cluster"]["1"].clone();
        (r["overall"] == "degraded").then_some(r)
    })
    .expect("cluster record");
    assert!(
        record["problems"][0]
            .as_str()
            .unwrap_or("")
            .starts_with("PS2 Status"),
        "{record}"
    );
    // The API and the metrics.
    let token = p
        .ctl_json(&["token", "create", "prom", "--role", "readonly"])
        .expect("token")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let api = p.web_client();
    let r = api
        .json("GET", "/api/v1/hardware", &token, None)
        .expect("api");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["report"]["overall"], "degraded");
    let m = api
        .get("/metrics", &[("Authorization", &format!("Bearer {token}"))])
        .expect("metrics")
        .text();
    assert!(m.contains("postern_hardware_state 1"), "{m}");
    assert!(
        m.contains("postern_hardware_component_state{kind=\"Psu\",name=\"PS2 Status\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("postern_hardware_sensor{kind=\"Fan\",name=\"FAN1\",unit=\"RPM\"} 5400"),
        "{m}"
    );
    // The alert mail, through the downstream.
    let mail = wait_for(Duration::from_secs(20), || {
        sink.messages()
            .into_iter()
            .find(|m| m.text().contains("PS2 Status degraded"))
    })
    .expect("alert mail");
    let text = mail.text();
    assert!(
        text.contains(
            "Subject: [postern] Hardware of postern.test (Postern A200) is now degraded."
        ),
        "{text}"
    );
    assert!(text.contains("Auto-Submitted: auto-generated"));
    // The GUI's dashboard.
    if let Some(b) = browser("hardware::dashboard") {
        login(&b, &p.web_url(), "root", PASSWORD, &code(&secret, 0));
        b.wait_for("#hardware-problems", Duration::from_secs(20))
            .expect("dashboard");
        let t = wait_text(&b, "PS2 Status");
        assert!(t.contains("ac lost"), "{t}");
        b.execute(
            "document.querySelector('#hardware-problems').scrollIntoView();",
            vec![],
        )
        .expect("scroll");
        b.screenshot("11-hardware").expect("screenshot");
    }

    // It comes back: recovered, and mailed.
    std::fs::copy(
        testdata("healthy").join("ipmi/sdr.txt"),
        now.join("ipmi/sdr.txt"),
    )
    .expect("swap back");
    assert_eq!(
        wait_for(Duration::from_secs(10), || (overall(&p) == "ok")
            .then_some(())),
        Some(())
    );
    wait_for(Duration::from_secs(20), || {
        sink.messages()
            .into_iter()
            .find(|m| m.text().contains("Recovered:"))
    })
    .expect("recovery mail");

    // A failing disk: the node gives up its virtual IPs.
    std::fs::write(now.join("sys/block/sdb/device/state"), "offline\n").expect("disk");
    assert_eq!(
        wait_for(Duration::from_secs(10), || p
            .log()
            .contains("reason=hardware: failing disk (sdb: device state offline)")
            .then_some(())),
        Some(()),
        "{}",
        p.log()
    );

    // The watchdog: petted every second while posternd runs, not while it is stopped.
    let size = || std::fs::metadata(&dog).map(|m| m.len()).unwrap_or(0);
    let before = size();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(size() >= before + 2, "petted: {before} → {}", size());
    signal(p.pid(), "STOP");
    std::thread::sleep(Duration::from_millis(500));
    let stopped = size();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        size(),
        stopped,
        "a stopped daemon must not pet the watchdog"
    );
    signal(p.pid(), "CONT");
    assert!(wait_for(Duration::from_secs(5), || (size() > stopped).then_some(())).is_some());
    // A clean stop disarms it with the magic character.
    let mut p = p;
    p.terminate(Duration::from_secs(20)).expect("stops");
    let bytes = std::fs::read(&dog).expect("watchdog file");
    assert_eq!(bytes.last(), Some(&b'V'));
    assert!(bytes[..bytes.len() - 1].iter().all(|b| *b == 0));
}
