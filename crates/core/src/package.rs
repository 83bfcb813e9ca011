//! Function packages: the zip or tar.gz of a function folder, decoded into an
//! in-memory file map.
//!
//! A package is validated once, at deploy: paths are made relative and safe,
//! sizes are bounded (an archive is untrusted input, and a zip bomb must not
//! take the server down), `config.json` is parsed, and the handler's file must
//! exist. The version ID is a hash of the normalized content, so deploying the
//! same folder twice yields the same version however it was archived.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::{ConfigError, FunctionConfig, FunctionKind, Runtime, VersionId};

/// The most files one package may hold.
pub const MAX_FILES: usize = 20_000;

/// The file that makes a package an HTTP function (CloudBase's convention):
/// it starts the function's own web server, in whatever language.
pub const HTTP_FUNCTION_BOOTSTRAP: &str = "scf_bootstrap";
/// The most bytes one package may hold once unpacked.
pub const MAX_UNPACKED_BYTES: u64 = 256 * 1024 * 1024;

/// Why an archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("the package is neither a zip nor a tar.gz archive")]
    UnknownFormat,
    #[error("the archive cannot be read: {0}")]
    Corrupt(String),
    #[error("the archive entry {0:?} has an unsafe path")]
    UnsafePath(String),
    #[error(
        "runtime {0:?} is not one Cloudlet runs for event functions; config.json may name {accepted} \
         (other languages only for HTTP functions, which start with an scf_bootstrap file)",
        accepted = Runtime::ACCEPTED
    )]
    UnknownRuntime(String),
    #[error("the package holds more than {MAX_FILES} entries (files and folders)")]
    TooManyFiles,
    #[error("the package unpacks to more than {} MiB", MAX_UNPACKED_BYTES / 1024 / 1024)]
    TooLarge,
    #[error("the handler {handler} needs the file {file}, which the package does not have")]
    MissingHandlerFile { handler: String, file: String },
    #[error(
        "scf_bootstrap is not executable: give it the executable bit (chmod +x scf_bootstrap) \
         before packing, as CloudBase requires"
    )]
    BootstrapNotExecutable,
    #[error(
        "scf_bootstrap has Windows line endings (CRLF), which its interpreter would read as part \
         of each command: save it with LF line endings, as CloudBase requires"
    )]
    BootstrapLineEndings,
    #[error(
        "config.json says \"type\": \"HTTP\", but the package has no scf_bootstrap to start \
         its server"
    )]
    MissingBootstrap,
    #[error(
        "config.json says \"type\": \"Event\", but the package has an scf_bootstrap, which \
         makes it an HTTP function: remove one or the other"
    )]
    UnexpectedBootstrap,
    #[error(
        "trigger {0:?}: an HTTP function answers the requests that reach it; timer and topic \
         triggers invoke event functions"
    )]
    TriggerOnHttpFunction(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A decoded, validated function package.
#[derive(Debug, Clone)]
pub struct Package {
    files: BTreeMap<String, Bytes>,
    /// The files that keep the executable bit (an HTTP function's
    /// `scf_bootstrap`, a compiled server it starts).
    executables: BTreeSet<String>,
    config: FunctionConfig,
    version: VersionId,
}

impl Package {
    /// Decodes a zip or tar.gz archive (told apart by their magic bytes).
    pub fn from_archive(archive: &[u8]) -> Result<Self, PackageError> {
        let (files, executables) =
            if archive.starts_with(b"PK\x03\x04") || archive.starts_with(b"PK\x05\x06") {
                read_zip(archive)?
            } else if archive.starts_with(&[0x1f, 0x8b]) {
                read_tar_gz(archive)?
            } else {
                return Err(PackageError::UnknownFormat);
            };
        Self::from_parts(files, executables)
    }

    /// Builds a package from paths and contents, none of them executable.
    pub fn from_files(files: BTreeMap<String, Bytes>) -> Result<Self, PackageError> {
        Self::from_parts(files, BTreeSet::new())
    }

    /// Builds a package from paths and contents, as found in a function
    /// folder, and the paths that are executable.
    pub fn from_parts(
        files: BTreeMap<String, Bytes>,
        executables: BTreeSet<String>,
    ) -> Result<Self, PackageError> {
        let (files, executables) = strip_single_top_dir(files, executables);
        let (mut config, stated) = match files.get("config.json") {
            Some(bytes) => FunctionConfig::from_json_stating_kind(bytes)?,
            None => (FunctionConfig::default(), None),
        };
        match (files.get(HTTP_FUNCTION_BOOTSTRAP), stated) {
            (None, Some(FunctionKind::Http)) => return Err(PackageError::MissingBootstrap),
            (Some(_), Some(FunctionKind::Event)) => return Err(PackageError::UnexpectedBootstrap),
            (Some(bootstrap), _) => {
                check_bootstrap(bootstrap, &executables)?;
                config.kind = FunctionKind::Http;
                if let Some(trigger) = config.triggers.first() {
                    return Err(PackageError::TriggerOnHttpFunction(trigger.name.clone()));
                }
            }
            (None, _) => check_handler(&config, &files)?,
        }
        let version = content_version(&files, &executables);
        Ok(Self {
            files,
            executables,
            config,
            version,
        })
    }

    /// Whether the package is an HTTP function: a web server its
    /// `scf_bootstrap` starts, rather than a handler called with events.
    pub fn is_http_function(&self) -> bool {
        self.config.kind == FunctionKind::Http
    }

    /// Whether the file at `path` keeps the executable bit.
    pub fn is_executable(&self, path: &str) -> bool {
        self.executables.contains(path)
    }

    /// The paths of the files that keep the executable bit.
    pub fn executables(&self) -> &BTreeSet<String> {
        &self.executables
    }

    pub fn config(&self) -> &FunctionConfig {
        &self.config
    }

    pub fn version(&self) -> &VersionId {
        &self.version
    }

    pub fn files(&self) -> &BTreeMap<String, Bytes> {
        &self.files
    }

    pub fn file(&self, path: &str) -> Option<&Bytes> {
        self.files.get(path)
    }

    /// Encodes the package as a deterministic tar.gz (sorted paths, zeroed times),
    /// the form the CLI uploads and the store keeps.
    pub fn to_tar_gz(&self) -> Result<Vec<u8>, PackageError> {
        write_tar(&self.files, &self.executables)
    }
}

/// An event function's package must hold its handler's file; only an HTTP
/// function may name another language.
fn check_handler(
    config: &FunctionConfig,
    files: &BTreeMap<String, Bytes>,
) -> Result<(), PackageError> {
    if let Runtime::Other(name) = &config.runtime {
        return Err(PackageError::UnknownRuntime(name.clone()));
    }
    let handler_file = format!("{}.js", config.handler.module);
    if !files.contains_key(&handler_file) {
        return Err(PackageError::MissingHandlerFile {
            handler: config.handler.to_string(),
            file: handler_file,
        });
    }
    Ok(())
}

/// An HTTP function's bootstrap must be something the system can execute,
/// as CloudBase requires: with the executable bit, without CRLF endings.
fn check_bootstrap(bootstrap: &[u8], executables: &BTreeSet<String>) -> Result<(), PackageError> {
    if !executables.contains(HTTP_FUNCTION_BOOTSTRAP) {
        return Err(PackageError::BootstrapNotExecutable);
    }
    let is_script = bootstrap.starts_with(b"#!");
    if is_script && bootstrap.windows(2).any(|pair| pair == b"\r\n") {
        return Err(PackageError::BootstrapLineEndings);
    }
    Ok(())
}

/// Writes files, none of them executable, as a deterministic tar.gz.
pub fn write_tar_gz(files: &BTreeMap<String, Bytes>) -> Result<Vec<u8>, PackageError> {
    write_tar(files, &BTreeSet::new())
}

fn write_tar(
    files: &BTreeMap<String, Bytes>,
    executables: &BTreeSet<String>,
) -> Result<Vec<u8>, PackageError> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(if executables.contains(path) {
            0o755
        } else {
            0o644
        });
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, data.as_ref())
            .map_err(|e| PackageError::Corrupt(e.to_string()))?;
    }
    let gz = tar
        .into_inner()
        .map_err(|e| PackageError::Corrupt(e.to_string()))?;
    gz.finish()
        .map_err(|e| PackageError::Corrupt(e.to_string()))
}

/// The version ID: SHA-256 over every (path, content) pair in path order, with
/// lengths so that no two different file sets can produce the same byte stream.
/// An executable file is followed by a marker no path length can equal, so
/// the bit is part of the version and packages without one keep the IDs
/// they had before executables were kept.
fn content_version(files: &BTreeMap<String, Bytes>, executables: &BTreeSet<String>) -> VersionId {
    let mut hasher = Sha256::new();
    for (path, data) in files {
        hasher.update((path.len() as u64).to_le_bytes());
        hasher.update(path.as_bytes());
        hasher.update((data.len() as u64).to_le_bytes());
        hasher.update(data);
        if executables.contains(path) {
            hasher.update(u64::MAX.to_le_bytes());
        }
    }
    let hex = hex::encode(hasher.finalize());
    // A hex SHA-256 always satisfies the VersionId rule.
    VersionId::parse(hex).unwrap_or_else(|e| unreachable!("{e}"))
}

/// Makes an archive path relative and safe, or refuses it. Returns `None` for
/// entries that carry no function code (macOS metadata).
fn normalize_path(raw: &str) -> Result<Option<String>, PackageError> {
    let unsafe_path = || PackageError::UnsafePath(raw.to_owned());
    let mut parts = Vec::new();
    for part in raw.split(['/', '\\']) {
        match part {
            "" | "." => continue,
            ".." => return Err(unsafe_path()),
            p if p.contains('\0') || p.contains(':') => return Err(unsafe_path()),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(unsafe_path());
    }
    if parts[0] == "__MACOSX" || parts.last().is_some_and(|p| *p == ".DS_Store") {
        return Ok(None);
    }
    Ok(Some(parts.join("/")))
}

/// Archives made by zipping the folder itself (`zip -r add.zip add`) put every
/// file under one directory; the function's root is that directory.
fn strip_single_top_dir(
    files: BTreeMap<String, Bytes>,
    executables: BTreeSet<String>,
) -> (BTreeMap<String, Bytes>, BTreeSet<String>) {
    let mut tops = files.keys().map(|p| p.split_once('/').map(|(top, _)| top));
    let first = match tops.next() {
        Some(Some(top)) => top.to_owned(),
        _ => return (files, executables),
    };
    if !tops.all(|t| t == Some(first.as_str())) {
        return (files, executables);
    }
    let strip = |p: String| p[first.len() + 1..].to_owned();
    (
        files.into_iter().map(|(p, d)| (strip(p), d)).collect(),
        executables.into_iter().map(strip).collect(),
    )
}

/// Whether a Unix mode gives anyone the right to execute.
fn is_executable_mode(mode: u32) -> bool {
    mode & 0o111 != 0
}

/// An archive's files and the paths of those that are executable.
type Unpacked = (BTreeMap<String, Bytes>, BTreeSet<String>);

/// What unpacking has taken so far: entries (folders and skipped entries
/// count too, as each costs work to read) and bytes.
struct Budget {
    files: usize,
    bytes: u64,
}

impl Budget {
    fn take(&mut self, size: u64) -> Result<(), PackageError> {
        self.files += 1;
        self.bytes += size;
        if self.files > MAX_FILES {
            return Err(PackageError::TooManyFiles);
        }
        if self.bytes > MAX_UNPACKED_BYTES {
            return Err(PackageError::TooLarge);
        }
        Ok(())
    }
}

/// Reads at most `limit` bytes, so a lying size header cannot make us allocate more.
fn read_bounded(reader: impl Read, limit: u64) -> Result<Vec<u8>, PackageError> {
    let mut data = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| PackageError::Corrupt(e.to_string()))?;
    if data.len() as u64 > limit {
        return Err(PackageError::TooLarge);
    }
    Ok(data)
}

fn read_zip(archive: &[u8]) -> Result<Unpacked, PackageError> {
    let corrupt = |e: zip::result::ZipError| PackageError::Corrupt(e.to_string());
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive)).map_err(corrupt)?;
    if zip.len() > MAX_FILES {
        return Err(PackageError::TooManyFiles);
    }
    let mut budget = Budget { files: 0, bytes: 0 };
    let mut files = BTreeMap::new();
    let mut executables = BTreeSet::new();
    for i in 0..zip.len() {
        let entry = zip.by_index(i).map_err(corrupt)?;
        if entry.is_dir() {
            continue;
        }
        let Some(path) = normalize_path(entry.name())? else {
            continue;
        };
        if entry.unix_mode().is_some_and(is_executable_mode) {
            executables.insert(path.clone());
        }
        let remaining = MAX_UNPACKED_BYTES.saturating_sub(budget.bytes);
        let data = read_bounded(entry, remaining)?;
        budget.take(data.len() as u64)?;
        files.insert(path, Bytes::from(data));
    }
    Ok((files, executables))
}

fn read_tar_gz(archive: &[u8]) -> Result<Unpacked, PackageError> {
    let corrupt = |e: std::io::Error| PackageError::Corrupt(e.to_string());
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let mut budget = Budget { files: 0, bytes: 0 };
    let mut files = BTreeMap::new();
    let mut executables = BTreeSet::new();
    for entry in tar.entries().map_err(corrupt)? {
        let entry = entry.map_err(corrupt)?;
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            budget.take(0)?;
            continue;
        }
        let raw_path = entry
            .path()
            .map_err(corrupt)?
            .to_string_lossy()
            .into_owned();
        if !kind.is_file() {
            // Links could point outside the package; nothing in a function needs them.
            return Err(PackageError::UnsafePath(raw_path));
        }
        let Some(path) = normalize_path(&raw_path)? else {
            budget.take(0)?;
            continue;
        };
        if entry.header().mode().is_ok_and(is_executable_mode) {
            executables.insert(path.clone());
        }
        let remaining = MAX_UNPACKED_BYTES.saturating_sub(budget.bytes);
        let data = read_bounded(entry, remaining)?;
        budget.take(data.len() as u64)?;
        files.insert(path, Bytes::from(data));
    }
    Ok((files, executables))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> BTreeMap<String, Bytes> {
        list.iter()
            .map(|(p, d)| (p.to_string(), Bytes::copy_from_slice(d.as_bytes())))
            .collect()
    }

    #[test]
    fn another_language_needs_an_http_function() {
        let python = files(&[
            ("index.js", "exports.main = () => 1"),
            ("config.json", r#"{"runtime": "Python3.9"}"#),
        ]);
        let error = Package::from_files(python).unwrap_err();
        assert!(matches!(error, PackageError::UnknownRuntime(_)), "{error}");
        assert!(error.to_string().contains("Nodejs18.15"), "{error}");
        let node = files(&[
            ("index.js", "exports.main = () => 1"),
            ("config.json", r#"{"runtime": "nodejs20.x"}"#),
        ]);
        assert_eq!(
            Package::from_files(node).unwrap().config().runtime,
            Runtime::Node("nodejs20.x".into())
        );
    }

    #[test]
    fn folders_in_a_tar_count_toward_the_entry_limit() {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for i in 0..=MAX_FILES {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            header.set_mode(0o755);
            builder
                .append_data(&mut header, format!("d{i}/"), std::io::empty())
                .unwrap();
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, "index.js", &b"//"[..])
            .unwrap();
        let archive = builder.into_inner().unwrap().finish().unwrap();
        assert!(matches!(
            Package::from_archive(&archive),
            Err(PackageError::TooManyFiles)
        ));
    }

    #[test]
    fn tar_gz_round_trip_keeps_version() {
        let p = Package::from_files(files(&[("index.js", "exports.main=()=>1")])).unwrap();
        let again = Package::from_archive(&p.to_tar_gz().unwrap()).unwrap();
        assert_eq!(p.version(), again.version());
        assert_eq!(
            again.file("index.js").unwrap().as_ref(),
            b"exports.main=()=>1"
        );
    }

    #[test]
    fn zip_with_top_dir_is_stripped() {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            let opts = zip::write::SimpleFileOptions::default();
            w.add_directory("add/", opts).unwrap();
            w.start_file("add/index.js", opts).unwrap();
            std::io::Write::write_all(&mut w, b"exports.main=e=>e.x+e.y").unwrap();
            w.start_file("add/config.json", opts).unwrap();
            std::io::Write::write_all(&mut w, br#"{"timeout":5}"#).unwrap();
            w.finish().unwrap();
        }
        let p = Package::from_archive(buf.get_ref()).unwrap();
        assert!(p.file("index.js").is_some());
        assert_eq!(p.config().timeout, 5);
    }

    #[test]
    fn refuses_bad_packages() {
        assert!(matches!(
            Package::from_archive(b"hello"),
            Err(PackageError::UnknownFormat)
        ));
        assert!(matches!(
            Package::from_files(files(&[("main.js", "")])),
            Err(PackageError::MissingHandlerFile { .. })
        ));
        assert!(matches!(
            Package::from_files(files(&[
                ("index.js", ""),
                ("config.json", r#"{"bogus":1}"#)
            ])),
            Err(PackageError::Config(_))
        ));
        assert!(matches!(
            normalize_path("../x.js"),
            Err(PackageError::UnsafePath(_))
        ));
        assert_eq!(
            normalize_path("/a/./b.js").unwrap().as_deref(),
            Some("a/b.js")
        );
    }

    #[test]
    fn different_content_different_version() {
        let a = Package::from_files(files(&[("index.js", "a")])).unwrap();
        let b = Package::from_files(files(&[("index.js", "b")])).unwrap();
        assert_ne!(a.version(), b.version());
    }

    fn http_function(bootstrap: &str, executable: bool) -> Result<Package, PackageError> {
        let files = files(&[
            ("scf_bootstrap", bootstrap),
            ("app.py", "print('hi')"),
            ("config.json", r#"{"runtime": "Python3.9"}"#),
        ]);
        let executables = if executable {
            BTreeSet::from(["scf_bootstrap".to_owned()])
        } else {
            BTreeSet::new()
        };
        Package::from_parts(files, executables)
    }

    #[test]
    fn an_http_function_needs_no_handler_file_and_may_name_any_language() {
        let package = http_function("#!/bin/bash\npython3 app.py\n", true).unwrap();
        assert!(package.is_http_function());
        assert!(package.is_executable("scf_bootstrap"));
        assert!(!package.is_executable("app.py"));
    }

    #[test]
    fn a_bootstrap_without_the_executable_bit_is_refused() {
        let error = http_function("#!/bin/bash\npython3 app.py\n", false).unwrap_err();
        assert!(
            matches!(error, PackageError::BootstrapNotExecutable),
            "{error}"
        );
    }

    #[test]
    fn a_bootstrap_script_with_crlf_endings_is_refused() {
        let error = http_function("#!/bin/bash\r\npython3 app.py\r\n", true).unwrap_err();
        assert!(
            matches!(error, PackageError::BootstrapLineEndings),
            "{error}"
        );
    }

    #[test]
    fn the_executable_bit_survives_the_archive_and_is_part_of_the_version() {
        let package = http_function("#!/bin/bash\npython3 app.py\n", true).unwrap();
        let again = Package::from_archive(&package.to_tar_gz().unwrap()).unwrap();
        assert!(again.is_executable("scf_bootstrap"));
        assert_eq!(again.version(), package.version());
        let plain = files(&[("index.js", "a")]);
        let executable = Package::from_parts(plain.clone(), BTreeSet::from(["index.js".into()]));
        assert_ne!(
            executable.unwrap().version(),
            Package::from_files(plain).unwrap().version()
        );
    }

    #[test]
    fn a_zip_keeps_the_executable_bit() {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            let exec = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
            w.start_file("scf_bootstrap", exec).unwrap();
            std::io::Write::write_all(&mut w, b"#!/bin/bash\n./server\n").unwrap();
            w.finish().unwrap();
        }
        let package = Package::from_archive(buf.get_ref()).unwrap();
        assert!(package.is_executable("scf_bootstrap"));
    }

    #[test]
    fn a_stated_type_must_agree_with_the_package() {
        let http_without_bootstrap = Package::from_files(files(&[
            ("index.js", ""),
            ("config.json", r#"{"type": "HTTP"}"#),
        ]));
        assert!(matches!(
            http_without_bootstrap,
            Err(PackageError::MissingBootstrap)
        ));
        let event_with_bootstrap = Package::from_parts(
            files(&[
                ("scf_bootstrap", "#!/bin/sh\n"),
                ("config.json", r#"{"type": "event"}"#),
            ]),
            BTreeSet::from(["scf_bootstrap".to_owned()]),
        );
        assert!(matches!(
            event_with_bootstrap,
            Err(PackageError::UnexpectedBootstrap)
        ));
        let stated = Package::from_parts(
            files(&[
                ("scf_bootstrap", "#!/bin/sh\n"),
                ("config.json", r#"{"type": "HTTP"}"#),
            ]),
            BTreeSet::from(["scf_bootstrap".to_owned()]),
        );
        assert_eq!(stated.unwrap().config().kind, FunctionKind::Http);
    }

    #[test]
    fn an_http_function_has_no_timer_or_topic_triggers() {
        let triggered = Package::from_parts(
            files(&[
                ("scf_bootstrap", "#!/bin/sh\n"),
                (
                    "config.json",
                    r#"{"triggers": [{"name": "t", "type": "timer", "config": "0 * * * * * *"}]}"#,
                ),
            ]),
            BTreeSet::from(["scf_bootstrap".to_owned()]),
        );
        assert!(matches!(
            triggered,
            Err(PackageError::TriggerOnHttpFunction(name)) if name == "t"
        ));
    }
}
