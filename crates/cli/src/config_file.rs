//! `--config FILE`: the settings of `serve` (and `dev`) from a TOML file, with
//! this precedence: built-in defaults < file < `CLOUDLET_*` environment < flags.
//!
//! The file's values become the defaults of the matching flags and the command
//! line is parsed again, so a value from the file is checked exactly as the
//! same flag would be, and clap's own order (flag, environment, default) gives
//! the precedence. Keys are the flags' long names (`max-body-bytes`, or
//! `max_body_bytes`); an unknown key is an error, as in `config.json`.
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! data-dir = "/var/lib/cloudlet"
//! admin-key = "…"
//! max-body-bytes = 1048576
//! ```

use std::path::{Path, PathBuf};

use clap::{ArgMatches, Args, Command};

use crate::serve::ServeArgs;

/// The subcommands whose flags a config file sets.
const SERVER_COMMANDS: &[&str] = &["serve", "dev"];

/// Flags that a file does not set: the file's own path.
const NOT_IN_FILE: &[&str] = &["config"];

/// `command` with the defaults the config file named in `matches` gives, or
/// `None` when no file is named. The error is a message for the user.
pub fn with_file_defaults(
    command: Command,
    matches: &ArgMatches,
) -> Result<Option<Command>, String> {
    let Some((name, sub)) = matches.subcommand() else {
        return Ok(None);
    };
    if !SERVER_COMMANDS.contains(&name) {
        return Ok(None);
    }
    let Some(path) = sub.get_one::<PathBuf>("config") else {
        return Ok(None);
    };
    let defaults = read(path)?;
    let name = name.to_owned();
    Ok(Some(command.mut_subcommand(name, |mut sub| {
        for (id, value) in defaults {
            // A secret from the file must not show up in --help.
            let hide = id == "admin_key";
            sub = sub.mut_arg(id, |arg| arg.default_value(value).hide_default_value(hide));
        }
        sub
    })))
}

/// The file's settings as (argument id, value) pairs.
fn read(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("the config file {} is not valid TOML: {e}", path.display()))?;
    let server = ServeArgs::augment_args(Command::new("serve"));
    let settings: Vec<(String, String)> = server
        .get_arguments()
        .filter_map(|arg| Some((arg.get_long()?.to_owned(), arg.get_id().to_string())))
        .filter(|(long, _)| !NOT_IN_FILE.contains(&long.as_str()))
        .collect();
    let mut defaults = Vec::new();
    for (key, value) in table {
        let long = key.replace('_', "-");
        let Some((_, id)) = settings.iter().find(|(l, _)| *l == long) else {
            let known: Vec<&str> = settings.iter().map(|(l, _)| l.as_str()).collect();
            return Err(format!(
                "unknown setting {key:?} in {} (the settings are {})",
                path.display(),
                known.join(", ")
            ));
        };
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(format!(
                "the setting {key:?} in {} takes a string, a whole number or true/false, not {}",
                path.display(),
                other.type_str()
            ))
            }
        };
        defaults.push((id.clone(), value));
    }
    Ok(defaults)
}
