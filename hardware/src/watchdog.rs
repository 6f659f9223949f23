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
    }
}
