//! A CloudBase project's `cloudbaserc.json`, as `cloudlet dev` reads it: where
//! the function folders are (`functionRoot`) and the settings the CloudBase CLI
//! keeps for each function in `functions` instead of in the folder's
//! `config.json`.
//!
//! An entry gives its settings at the top level (`{"name": "app", "timeout": 5,
//! …}`) or, in older projects, under `config` (`{"name": "app", "config":
//! {"timeout": 5, …}, "handler": "index.main"}`). The settings a function
//! package knows are taken from it (see [`SETTINGS`]); the CLI's deploy-time
//! keys (`ignore`, `vpc`, `params`, `layers`, …) mean nothing here and are left
//! out. The folder's own `config.json` wins over the project file for any key
//! both set: it is the more specific of the two.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use bytes::Bytes;
use cloudlet_core::Package;
use serde_json::{Map, Value};

/// The keys of an entry that are function settings (`config.json`'s own keys).
const SETTINGS: &[&str] = &[
    "timeout",
    "memorySize",
    "envVariables",
    "runtime",
    "handler",
    "triggers",
    "installDependency",
];

/// One function's settings from the project file, as `config.json` keys.
pub type Settings = Map<String, Value>;

pub struct Project {
    /// The folder holding the function folders.
    pub function_root: PathBuf,
    /// The project file, when there is one.
    pub rc_path: Option<PathBuf>,
    /// Settings by function name.
    functions: BTreeMap<String, Settings>,
}

impl Project {
    /// Reads DIR's `cloudbaserc.json`, if it has one. The function root is
    /// canonical, because the watcher reports canonical paths on some platforms.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let dir = dir
            .canonicalize()
            .with_context(|| format!("cannot open {}", dir.display()))?;
        anyhow::ensure!(dir.is_dir(), "{} is not a directory", dir.display());
        let rc_path = dir.join("cloudbaserc.json");
        let bytes = match std::fs::read(&rc_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    function_root: dir,
                    rc_path: None,
                    functions: BTreeMap::new(),
                })
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", rc_path.display())),
        };
        let rc: Value = serde_json::from_slice(cloudlet_core::without_bom(&bytes))
            .with_context(|| format!("{} is not valid JSON", rc_path.display()))?;
        let function_root = match rc.get("functionRoot").and_then(Value::as_str) {
            Some(sub) => {
                let root = dir.join(sub);
                let root = root.canonicalize().with_context(|| {
                    format!(
                        "cloudbaserc.json names the functionRoot {sub:?}, but {} cannot be opened",
                        root.display()
                    )
                })?;
                anyhow::ensure!(root.is_dir(), "{} is not a directory", root.display());
                root
            }
            None => dir,
        };
        Ok(Self {
            function_root,
            functions: function_settings(&rc),
            rc_path: Some(rc_path),
        })
    }

    /// Re-reads the project file after it changed, keeping the function root
    /// (the watcher is on it). Returns the functions whose settings changed;
    /// an unreadable file keeps the settings it had, with a warning.
    pub fn reload(&mut self) -> Vec<String> {
        let Some(rc_path) = &self.rc_path else {
            return Vec::new();
        };
        let rc = std::fs::read(rc_path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                serde_json::from_slice::<Value>(cloudlet_core::without_bom(&bytes))
                    .map_err(|e| e.to_string())
            });
        let functions = match rc {
            Ok(rc) => function_settings(&rc),
            Err(error) => {
                eprintln!(
                    "error: {} not reloaded: {error}; the functions keep their settings",
                    rc_path.display()
                );
                return Vec::new();
            }
        };
        let mut changed: Vec<String> = functions
            .iter()
            .filter(|(name, settings)| self.functions.get(*name) != Some(settings))
            .map(|(name, _)| name.clone())
            .collect();
        changed.extend(
            self.functions
                .keys()
                .filter(|name| !functions.contains_key(*name))
                .cloned(),
        );
        self.functions = functions;
        changed
    }

    /// The project file's settings for one function, if it has any.
    pub fn settings(&self, name: &str) -> Option<Settings> {
        self.functions.get(name).cloned()
    }
}

/// The settings a function folder gets from the project it is in: the
/// `cloudbaserc.json` next to the folder, or one level up whose `functionRoot`
/// holds it. That is how `cloudlet deploy` finds them, as the CloudBase CLI does.
pub fn settings_for_folder(folder: &Path) -> anyhow::Result<Option<Settings>> {
    let folder = folder
        .canonicalize()
        .with_context(|| format!("cannot open the function folder {}", folder.display()))?;
    let (Some(parent), Some(name)) = (folder.parent(), folder.file_name().and_then(|n| n.to_str()))
    else {
        return Ok(None);
    };
    for candidate in [Some(parent), parent.parent()].into_iter().flatten() {
        if candidate.join("cloudbaserc.json").is_file() {
            // A project file that cannot be read, or whose functionRoot is
            // missing, may well not be about this folder: it is passed over.
            let project = match Project::open(candidate) {
                Ok(project) => project,
                Err(error) => {
                    eprintln!(
                        "warning: ignoring {}: {error:#}",
                        candidate.join("cloudbaserc.json").display()
                    );
                    return Ok(None);
                }
            };
            return Ok(if project.function_root == parent {
                project.settings(name)
            } else {
                None
            });
        }
    }
    Ok(None)
}

/// Reads a function folder into a validated package, with the project's
/// settings added when there are any.
pub fn read_package(dir: &Path, settings: Option<&Settings>) -> Result<Package, String> {
    let folder = cloudlet_client::read_dir_files(dir).map_err(|e| e.to_string())?;
    let mut files = folder.files;
    if let Some(settings) = settings {
        files = apply(files, settings);
    }
    let from = if settings.is_some() {
        " (with its settings from cloudbaserc.json)"
    } else {
        ""
    };
    Package::from_parts(files, folder.executables).map_err(|error| {
        format!(
            "the function folder {}{from} is not valid: {error}",
            dir.display()
        )
    })
}

/// The settings of every entry in `functions`, by name.
fn function_settings(rc: &Value) -> BTreeMap<String, Settings> {
    let Some(entries) = rc.get("functions").and_then(Value::as_array) else {
        return BTreeMap::new();
    };
    let mut functions = BTreeMap::new();
    for entry in entries {
        let Some(name) = entry.get("name").and_then(Value::as_str) else {
            continue;
        };
        let mut settings = Settings::new();
        // The older nested form first, so a key also given at the top level wins.
        for source in [entry.get("config"), Some(entry)].into_iter().flatten() {
            for key in SETTINGS {
                if let Some(value) = source.get(*key) {
                    settings.insert((*key).to_owned(), value.clone());
                }
            }
        }
        if !settings.is_empty() {
            functions.insert(name.to_owned(), settings);
        }
    }
    functions
}

/// A function folder's files with the project's settings written into its
/// `config.json`, under the keys the folder's own `config.json` leaves unset. A
/// `config.json` that is not a JSON object is left as it is, so that
/// validating the package reports it.
pub fn apply(mut files: BTreeMap<String, Bytes>, settings: &Settings) -> BTreeMap<String, Bytes> {
    let own = match files.get("config.json") {
        Some(bytes) => match serde_json::from_slice::<Value>(cloudlet_core::without_bom(bytes)) {
            Ok(Value::Object(own)) => own,
            _ => return files,
        },
        None => Map::new(),
    };
    let mut merged = settings.clone();
    merged.extend(own);
    let json = Value::Object(merged).to_string();
    files.insert("config.json".to_owned(), Bytes::from(json));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(files: &[(&str, &str)]) -> BTreeMap<String, Bytes> {
        files
            .iter()
            .map(|(path, text)| ((*path).to_owned(), Bytes::from(text.to_string())))
            .collect()
    }

    #[test]
    fn entries_give_settings_flat_or_under_config() {
        let rc = serde_json::json!({
            "envId": "{{env.ENV_ID}}",
            "functions": [
                {"name": "flat", "timeout": 5, "memorySize": 128, "envVariables": {"A": "1"},
                 "installDependency": true, "ignore": ["node_modules"]},
                {"name": "nested", "config": {"timeout": 9, "runtime": "Nodejs8.9", "vpc": {}},
                 "handler": "app.run", "params": {}},
                {"name": "both", "config": {"timeout": 9}, "timeout": 4},
                {"name": "bare"},
                {"timeout": 1},
            ]
        });
        let functions = function_settings(&rc);
        assert_eq!(
            Value::Object(functions["flat"].clone()),
            serde_json::json!({"timeout": 5, "memorySize": 128, "envVariables": {"A": "1"}, "installDependency": true})
        );
        assert_eq!(
            Value::Object(functions["nested"].clone()),
            serde_json::json!({"timeout": 9, "runtime": "Nodejs8.9", "handler": "app.run"})
        );
        assert_eq!(functions["both"]["timeout"], 4);
        assert!(!functions.contains_key("bare"));
        assert_eq!(functions.len(), 3);
    }

    #[test]
    fn the_folder_config_wins() {
        let settings: Settings = serde_json::from_value(
            serde_json::json!({"timeout": 20, "envVariables": {"FROM": "rc"}, "handler": "app.run"}),
        )
        .expect("an object");
        let applied = Package::from_files(apply(
            files(&[("app.js", "exports.run = () => 1")]),
            &settings,
        ))
        .expect("valid with the project's handler");
        assert_eq!(applied.config().timeout, 20);
        assert_eq!(applied.config().env_variables["FROM"], "rc");
        assert_eq!(applied.config().handler.module, "app");

        let own = files(&[
            ("app.js", "exports.run = () => 1"),
            ("config.json", r#"{"timeout": 7, "handler": "app.run"}"#),
        ]);
        let applied = Package::from_files(apply(own, &settings)).expect("valid");
        assert_eq!(applied.config().timeout, 7);
        assert_eq!(applied.config().env_variables["FROM"], "rc");

        let broken = files(&[("index.js", ""), ("config.json", "{not json")]);
        assert_eq!(apply(broken.clone(), &settings), broken);
    }
}
