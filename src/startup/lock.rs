//! One writer per data directory: an advisory `flock` on `<data_dir>/facegraph.lock`, which the
//! kernel releases when the process dies however it dies. The file also names the holder (process
//! id, command line, since when) so that a second writer can say whom it waits for.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::model::Timestamp;

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "facegraph.lock";

/// What to do when another process holds the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LockWait {
    /// Wait until the holder is done.
    #[default]
    Wait,
    /// Fail at once, naming the holder.
    NoWait,
}

/// Why the data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The lock file could not be created or locked.
    #[error("cannot lock the data directory through {path}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the lock and the caller asked not to wait.
    #[error(
        "another facegraph process writes to {data_dir}: {holder}; wait for it to finish (drop \
         --no-wait to wait), or stop it"
    )]
    Held {
        /// The data directory.
        data_dir: PathBuf,
        /// Who holds it, as the lock file says.
        holder: Holder,
    },
}

/// The process that holds a data directory's lock, as its lock file records it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Holder {
    /// Its process id.
    pub pid: Option<u32>,
    /// Its command line.
    pub command: Option<String>,
    /// When it took the lock (RFC 3339).
    pub since: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.pid, &self.command) {
            (Some(pid), Some(cmd)) => write!(f, "process {pid} ({cmd})")?,
            (Some(pid), None) => write!(f, "process {pid}")?,
            _ => f.write_str("a process that has not yet said who it is")?,
        }
        if let Some(since) = &self.since {
            write!(f, " since {since}")?;
        }
        Ok(())
    }
}

/// A held lock on a data directory; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the exclusive lock of `data_dir` (created when missing). When another process holds
    /// it, `on_wait` is told who before this waits (with [`LockWait::Wait`]); with
    /// [`LockWait::NoWait`] it fails at once with [`LockError::Held`].
    pub fn acquire(
        data_dir: &Path,
        wait: LockWait,
        on_wait: &dyn Fn(&Holder),
    ) -> Result<Self, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = read_holder(&mut file);
                if wait == LockWait::NoWait {
                    return Err(LockError::Held {
                        data_dir: data_dir.to_owned(),
                        holder,
                    });
                }
                on_wait(&holder);
                file.lock().map_err(io)?;
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        write_holder(&mut file).map_err(io)?;
        Ok(Self { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DataDirLock {
    fn drop(&mut self) {
        // The holder lines go first so that nobody reads a released lock as held; the kernel
        // releases the lock itself when the file is closed.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// Who holds `data_dir`'s lock now, if anyone: for messages of readers and of `--no-wait`.
pub fn current_holder(data_dir: &Path) -> Option<Holder> {
    let mut file = File::open(data_dir.join(LOCK_FILE)).ok()?;
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            None
        }
        Err(TryLockError::WouldBlock) => Some(read_holder(&mut file)),
        Err(TryLockError::Error(_)) => None,
    }
}

fn read_holder(file: &mut File) -> Holder {
    let mut text = String::new();
    if file.seek(SeekFrom::Start(0)).is_err() || file.read_to_string(&mut text).is_err() {
        return Holder::default();
    }
    let mut holder = Holder::default();
    for line in text.lines() {
        match line.split_once('=') {
            Some(("pid", v)) => holder.pid = v.trim().parse().ok(),
            Some(("command", v)) => holder.command = Some(v.trim().to_owned()),
            Some(("since", v)) => holder.since = Some(v.trim().to_owned()),
            _ => {}
        }
    }
    holder
}

fn write_holder(file: &mut File) -> std::io::Result<()> {
    let command: Vec<String> = std::env::args().collect();
    let text = format!(
        "pid={}\ncommand={}\nsince={}\n",
        std::process::id(),
        command.join(" "),
        Timestamp::now()
    );
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(text.as_bytes())?;
    file.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_with_the_holder_named_and_gets_the_lock_once_it_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path(), LockWait::NoWait, &|_| {}).unwrap();
        let holder = current_holder(dir.path()).expect("held");
        assert_eq!(holder.pid, Some(std::process::id()));
        let err = DataDirLock::acquire(dir.path(), LockWait::NoWait, &|_| {}).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("process {}", std::process::id())) && msg.contains("--no-wait"),
            "{msg}"
        );
        drop(first);
        assert!(current_holder(dir.path()).is_none());
        DataDirLock::acquire(dir.path(), LockWait::NoWait, &|_| {}).unwrap();
    }

    #[test]
    fn a_waiting_writer_is_told_who_it_waits_for_and_proceeds_when_released() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path(), LockWait::Wait, &|_| {}).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let path = dir.path().to_owned();
        let waiter = std::thread::spawn(move || {
            let told = std::sync::Mutex::new(None);
            let lock = DataDirLock::acquire(&path, LockWait::Wait, &|h| {
                *told.lock().unwrap() = Some(h.clone());
                tx.send(()).unwrap();
            })
            .unwrap();
            drop(lock);
            told.into_inner().unwrap()
        });
        rx.recv().unwrap();
        drop(first);
        let told = waiter.join().unwrap().expect("the waiter was told");
        assert_eq!(told.pid, Some(std::process::id()));
    }
}
