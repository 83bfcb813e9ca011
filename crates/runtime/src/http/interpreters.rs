//! CloudBase's interpreter paths on this machine.
//!
//! CloudBase's bootstraps must start their server by absolute path, under
//! `/var/lang/` (`/var/lang/node18/bin/node`, `/var/lang/python39/bin/python3`).
//! The engine links the same names, under its own `lang/` folder, to the
//! interpreters this machine has, and a bootstrap's `/var/lang/` is read as
//! that folder (`folder.rs`). Every version of a language leads to the one
//! local interpreter of that language; a language this machine lacks has no
//! links, and a bootstrap that names it fails to start with the shell's
//! "No such file or directory" in its output.

use std::path::{Path, PathBuf};

use crate::node::NodeBinary;

/// One language: the folder names CloudBase gives its versions, the
/// commands each folder's `bin/` holds, and the local command they lead to.
struct Language {
    versions: &'static [&'static str],
    commands: &'static [&'static str],
    /// What runs here, found on `PATH` unless the engine was told.
    local: &'static str,
}

const LANGUAGES: &[Language] = &[
    Language {
        versions: &[
            "node10", "node12", "node14", "node16", "node18", "node20", "node22",
        ],
        commands: &["node"],
        local: "node",
    },
    Language {
        versions: &[
            "node10", "node12", "node14", "node16", "node18", "node20", "node22",
        ],
        commands: &["npm"],
        local: "npm",
    },
    Language {
        versions: &[
            "python2",
            "python27",
            "python3",
            "python36",
            "python37",
            "python38",
            "python39",
            "python310",
            "python311",
            "python312",
            "python313",
        ],
        commands: &["python3", "python"],
        local: "python3",
    },
    Language {
        versions: &[
            "php7", "php72", "php73", "php74", "php8", "php80", "php81", "php82",
        ],
        commands: &["php"],
        local: "php",
    },
    Language {
        versions: &["java8", "java11", "java17"],
        commands: &["java"],
        local: "java",
    },
];

/// Links every known CloudBase interpreter path under `lang` to the local
/// interpreter, where this machine has one (the Node.js the server uses for
/// Node.js).
pub(super) fn link(lang: &Path, node: Option<&NodeBinary>) -> std::io::Result<()> {
    let _ = std::fs::remove_dir_all(lang);
    for language in LANGUAGES {
        let local = match (language.local, node) {
            ("node", Some(node)) => on_path(&node.path.to_string_lossy()),
            ("npm", Some(node)) => on_path(&node.npm().to_string_lossy()),
            (command, _) => on_path(command),
        };
        let Some(local) = local else {
            continue;
        };
        for version in language.versions {
            let bin = lang.join(version).join("bin");
            std::fs::create_dir_all(&bin)?;
            for command in language.commands {
                let link = bin.join(command);
                if !link.exists() {
                    std::os::unix::fs::symlink(&local, link)?;
                }
            }
        }
    }
    Ok(())
}

/// The executable `command` names: a path as it is, a bare name looked up on
/// `PATH` as a shell would. Written here rather than taken from a crate: one
/// lookup per language at start, over `PATH`'s folders.
fn on_path(command: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |path: &Path| {
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if command.contains('/') {
        let path = std::path::absolute(command).ok()?;
        return executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|folder| folder.join(command))
        .find(|candidate| executable(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_version_leads_to_the_servers_node() {
        let dir = tempfile::tempdir().unwrap();
        let Some(node) = on_path("node") else {
            eprintln!("skipped: no node on PATH");
            return;
        };
        let binary = NodeBinary {
            path: node.clone(),
            version: String::new(),
        };
        link(dir.path(), Some(&binary)).unwrap();
        for version in ["node16", "node18", "node20"] {
            let link = dir.path().join(version).join("bin").join("node");
            assert_eq!(std::fs::read_link(link).unwrap(), node);
        }
    }

    #[test]
    fn a_language_the_machine_lacks_gets_no_links() {
        assert_eq!(on_path("surely-no-such-interpreter-here"), None);
    }
}
