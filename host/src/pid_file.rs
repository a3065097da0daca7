//! `serve --pid-file PATH`: the serving process's id, for `kill -HUP "$(cat PATH)"`.
//!
//! Contract: written once the port is open and SIGHUP is handled (`serve`), so a SIGHUP sent to
//! the id in the file reloads the plugin and never meets the default action (exit). Written whole (a temporary file renamed over
//! PATH), so a reader never sees half an id. Removed when the guard is dropped (normal exit or an
//! error after start), unless the file by then names another process (a second host started
//! with the same PATH owns it now).

use std::path::{Path, PathBuf};

use anyhow::Context as _;

pub struct PidFile {
    path: PathBuf,
    pid: String,
}

impl PidFile {
    /// Writes this process's id to `path`.
    pub fn write(path: &Path) -> anyhow::Result<PidFile> {
        let pid = std::process::id().to_string();
        let file_name = path
            .file_name()
            .with_context(|| format!("--pid-file {} is not a file path", path.display()))?;
        let mut temporary = file_name.to_os_string();
        temporary.push(format!(".{pid}.tmp"));
        let temporary = path.with_file_name(temporary);
        std::fs::write(&temporary, format!("{pid}\n"))
            .and_then(|()| std::fs::rename(&temporary, path))
            .with_context(|| format!("writing the pid file {}", path.display()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
            pid,
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path).is_ok_and(|text| text.trim() == self.pid);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PidFile;

    #[test]
    fn holds_this_process_and_is_removed_only_while_ours() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.pid");
        let guard = PidFile::write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        drop(guard);
        assert!(!path.exists());

        let guard = PidFile::write(&path).unwrap();
        std::fs::write(&path, "1\n").unwrap();
        drop(guard);
        assert!(path.exists(), "another process's pid file is left alone");
        assert!(PidFile::write(&dir.path().join("missing/host.pid")).is_err());
    }
}
