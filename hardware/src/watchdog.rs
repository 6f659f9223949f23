//! The hardware watchdog (`/dev/watchdog`): once opened the machine resets unless the device
//! is written to within its timeout. The daemon pets it only while the node is healthy, so a
//! hung daemon (or a sick node that stops petting) lets the hardware reset the machine. A
//! clean stop writes the magic `V` first, which disarms drivers that honour it.

use std::io::Write as _;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum WatchdogError {
    #[error("cannot open the watchdog {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot pet the watchdog: {0}")]
    Pet(std::io::Error),
}

#[derive(Debug)]
pub struct Watchdog {
    file: std::fs::File,
    path: String,
}

impl Watchdog {
    /// Opens (and so arms) the watchdog device.
    pub fn open(path: &Path) -> Result<Watchdog, WatchdogError> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|source| WatchdogError::Open {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Watchdog {
            file,
            path: path.display().to_string(),
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Restarts the countdown.
    pub fn pet(&mut self) -> Result<(), WatchdogError> {
        self.file
            .write_all(b"\0")
            .and_then(|()| self.file.flush())
            .map_err(WatchdogError::Pet)
    }

    /// A deliberate stop: the magic close character, then close.
    pub fn disarm(mut self) -> Result<(), WatchdogError> {
        self.file
            .write_all(b"V")
            .and_then(|()| self.file.flush())
            .map_err(WatchdogError::Pet)
    }
}

/// The driver's name for the watchdog device `device` (`/sys/class/watchdog/<name>/identity`,
/// e.g. "i6300ESB timer" or "iTCO_wdt"); the legacy `/dev/watchdog` is the first one,
/// watchdog0.
pub fn identity(sys_root: &Path, device: &Path) -> Option<String> {
    let name = device.file_name()?.to_str()?;
    let name = if name == "watchdog" {
        "watchdog0"
    } else {
        name
    };
    let text = std::fs::read_to_string(sys_root.join("class/watchdog").join(name).join("identity"))
        .ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pets_and_disarms_a_device_file() {
        let p = std::env::temp_dir().join(format!("postern-wd-{}", std::process::id()));
        std::fs::write(&p, b"").expect("file");
        let mut w = Watchdog::open(&p).expect("open");
        w.pet().expect("pet");
        w.pet().expect("pet");
        w.disarm().expect("disarm");
        assert_eq!(std::fs::read(&p).expect("read"), b"\0\0V");
        let _ = std::fs::remove_file(&p);
        assert!(matches!(
            Watchdog::open(Path::new("/nonexistent/watchdog")),
            Err(WatchdogError::Open { .. })
        ));
        let sys = std::env::temp_dir().join(format!("postern-wd-sys-{}", std::process::id()));
        std::fs::create_dir_all(sys.join("class/watchdog/watchdog0")).expect("dir");
        std::fs::write(
            sys.join("class/watchdog/watchdog0/identity"),
            "i6300ESB timer\n",
        )
        .expect("id");
        assert_eq!(
            identity(&sys, Path::new("/dev/watchdog")).as_deref(),
            Some("i6300ESB timer")
        );
        assert_eq!(identity(&sys, Path::new("/dev/watchdog1")), None);
        let _ = std::fs::remove_dir_all(&sys);
    }
}
