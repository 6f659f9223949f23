//! The update commands that run on the node itself (as root), not through posternd.

use std::io::Write as _;

use anyhow::{Context as _, bail};

use crate::args::{Cli, UpdateCmd};

/// The update commands that run here, as root, not through posternd.
pub fn update_local(cli: &Cli, u: &UpdateCmd) -> anyhow::Result<()> {
    use postern::update;
    let sys = update::System::default();
    let spool = cli.data_dir.join("update");
    let mut progress = |s: &str| say(&format!("postern-update: {s}"));
    match u {
        UpdateCmd::Status => unreachable!("status goes through posternd"),
        UpdateCmd::Install {
            bundle,
            reboot,
            public_key,
        } => {
            let key = update::public_key(public_key)?;
            let done = update::install(bundle, &key, public_key, &sys, &mut progress)?;
            let status = done.status();
            if spool.is_dir() {
                status.write(&spool.join(update::SPOOL_STATUS))?;
            }
            say(&status.message);
            if *reboot {
                reboot_now()?;
            }
        }
        UpdateCmd::ApplyStaged { public_key } => {
            match update::apply_staged(&spool, public_key, &sys, &mut progress) {
                Ok(Some(req)) if req.reboot => reboot_now()?,
                Ok(Some(_)) => progress("it runs after the next reboot"),
                Ok(None) => progress("nothing staged"),
                Err(e) => bail!("update failed: {e}"),
            }
        }
        UpdateCmd::BootCheck => {
            match update::boot_check(&sys, &spool.join(update::SPOOL_STATUS))? {
                Some(st) => progress(&st.message),
                None => {
                    let r = sys.running()?;
                    progress(&format!(
                        "slot {} runs version {}",
                        r.slot.as_str(),
                        r.version
                    ));
                }
            }
        }
        UpdateCmd::Pack {
            key,
            version,
            roothash,
            root,
            verity,
            uki_a,
            uki_b,
            out,
        } => {
            let key = update::private_key(key)?;
            let files = [root.clone(), verity.clone(), uki_a.clone(), uki_b.clone()];
            let m = update::pack(out, version, roothash, &files, &key)?;
            let size: u64 = m.files.iter().map(|f| f.size).sum();
            say(&format!(
                "wrote {} (version {}, {} MiB, signed)",
                out.display(),
                m.version,
                size >> 20
            ));
        }
    }
    Ok(())
}

/// A line on standard output (the console, under systemd).
fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

fn reboot_now() -> anyhow::Result<()> {
    say("postern-update: rebooting");
    let status = std::process::Command::new("systemctl")
        .arg("reboot")
        .status()
        .context("cannot run systemctl reboot")?;
    if !status.success() {
        bail!("systemctl reboot failed ({status})");
    }
    Ok(())
}
