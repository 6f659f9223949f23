//! Boots the appliance image under qemu (TCG: KVM does not work on these machines) with
//! OVMF, user networking with host forwards on 127.0.0.1, the serial console in a file,
//! and optional emulated hardware (watchdog, IPMI BMC). Ended by PID when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use crate::peers::Peer;
use std::time::{Duration, Instant};

use crate::{Scratch, free_port};

/// Ok when qemu and OVMF are installed; else why not.
pub fn available() -> Result<(), String> {
    let missing = crate::peers::missing(&[Peer::Qemu, Peer::OvmfCode, Peer::OvmfVars]);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join("; "))
    }
}

/// What to boot and how.
#[derive(Debug, Clone)]
pub struct BootOptions {
    pub disk: PathBuf,
    /// Write to the disk (updates survive a reboot) instead of `snapshot=on`.
    pub writable: bool,
    /// Guest TCP ports forwarded from 127.0.0.1 (host port picked per boot).
    pub forwards: Vec<u16>,
    /// Extra qemu arguments (devices).
    pub extra: Vec<String>,
    pub memory_mb: u32,
}

impl BootOptions {
    pub fn new(disk: &Path) -> BootOptions {
        BootOptions {
            disk: disk.to_owned(),
            writable: false,
            forwards: Vec::new(),
            extra: Vec::new(),
            memory_mb: 1024,
        }
    }
}

/// A running virtual machine.
#[derive(Debug)]
pub struct Vm {
    child: Option<Child>,
    pub serial: PathBuf,
    /// (guest port, host port on 127.0.0.1).
    pub ports: Vec<(u16, u16)>,
    _dir: Scratch,
}

impl Vm {
    pub fn boot(o: &BootOptions) -> Vm {
        let dir = Scratch::new("qemu");
        let vars = dir.join("OVMF_VARS.fd");
        std::fs::copy(Peer::OvmfVars.program(), &vars).expect("copy OVMF variables");
        let serial = dir.join("serial.log");
        let ports: Vec<(u16, u16)> = o.forwards.iter().map(|g| (*g, free_port())).collect();
        let fwd: String = ports
            .iter()
            .map(|(g, h)| format!(",hostfwd=tcp:127.0.0.1:{h}-:{g}"))
            .collect();
        let snapshot = if o.writable { "" } else { ",snapshot=on" };
        let mut cmd = Peer::Qemu.command();
        cmd.args([
            "-accel",
            "tcg",
            "-machine",
            "q35",
            "-nodefaults",
            "-display",
            "none",
        ])
        .args(["-m", &o.memory_mb.to_string()])
        .args(["-smp", "2"])
        .args([
            "-drive",
            &format!(
                "if=pflash,format=raw,readonly=on,file={}",
                Peer::OvmfCode.program()
            ),
        ])
        .args([
            "-drive",
            &format!("if=pflash,format=raw,file={}", vars.display()),
        ])
        .args([
            "-drive",
            &format!("file={},format=raw,if=virtio{snapshot}", o.disk.display()),
        ])
        .args(["-netdev", &format!("user,id=n0{fwd}")])
        .args(["-device", "virtio-net-pci,netdev=n0"])
        .args(["-serial", &format!("file:{}", serial.display())])
        .args(&o.extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("qemu.stderr")).expect("stderr file"));
        let child = cmd.spawn().expect("start qemu");
        Vm {
            child: Some(child),
            serial,
            ports,
            _dir: dir,
        }
    }

    /// The host port forwarded to `guest`.
    pub fn port(&self, guest: u16) -> u16 {
        self.ports
            .iter()
            .find(|(g, _)| *g == guest)
            .map(|(_, h)| *h)
            .expect("forwarded port")
    }

    /// The serial console so far (lossy UTF-8).
    pub fn console(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.serial).unwrap_or_default()).into_owned()
    }

    /// Waits until the console shows `what` (Ok with the time it took) or qemu exits or
    /// `timeout` passes (Err with the reason).
    pub fn wait_console(&mut self, what: &str, timeout: Duration) -> Result<Duration, String> {
        self.wait_console_count(what, 1, timeout)
    }

    /// How often the console shows `what` so far (a line per boot counts boots).
    pub fn console_count(&self, what: &str) -> usize {
        self.console().matches(what).count()
    }

    /// Like [`Vm::wait_console`], until `what` was shown `n` times (the n-th boot's line).
    pub fn wait_console_count(
        &mut self,
        what: &str,
        n: usize,
        timeout: Duration,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            if self.console_count(what) >= n {
                return Ok(start.elapsed());
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                return Err(format!("qemu exited ({status}) before {what:?} (×{n})"));
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "{what:?} not {n} time(s) on the console within {timeout:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Whether qemu has exited.
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let c = self.console();
            let tail: Vec<&str> = c.lines().rev().take(80).collect();
            eprintln!(
                "--- serial console (last 80 lines) ---\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}
