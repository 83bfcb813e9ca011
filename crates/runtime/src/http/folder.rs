//! An HTTP function's folder on disk: its package, with its executables'
//! bits, its npm dependencies linked in, and its `scf_bootstrap` pointed at
//! this machine's interpreters.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use cloudlet_core::package::HTTP_FUNCTION_BOOTSTRAP;
use cloudlet_core::VersionId;

use super::Shared;
use crate::DeployedFunction;

/// Where CloudBase's runtimes keep their interpreters, which real
/// bootstraps name by absolute path (`/var/lang/node18/bin/node`).
const CLOUDBASE_LANG: &str = "/var/lang/";

/// The function's folder, written on first use (see `Pool::folder`).
pub(super) async fn ready(
    shared: &Arc<Shared>,
    function: &Arc<DeployedFunction>,
) -> Result<PathBuf, String> {
    let dir = shared.dirs.packages.join(function.version.as_str());
    if dir.exists() {
        return Ok(dir);
    }
    let modules = install_dependencies(shared, function).await?;
    let package = Arc::clone(&function.package);
    let lang = format!("{}/", shared.dirs.lang.display());
    let target = dir.clone();
    tokio::task::spawn_blocking(move || {
        crate::folder::write_package(&package, modules.as_deref(), &target, |path, bytes| {
            if path == HTTP_FUNCTION_BOOTSTRAP {
                with_local_interpreters(bytes, &lang)
            } else {
                bytes.clone()
            }
        })
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("cannot write the function's folder: {e}"))?;
    Ok(dir)
}

/// The bootstrap with CloudBase's interpreter folder replaced by the one
/// where this engine links the local interpreters (`interpreters.rs`): the
/// one change that lets a real bootstrap run unmodified here.
fn with_local_interpreters(bootstrap: &Bytes, lang: &str) -> Bytes {
    let needle = CLOUDBASE_LANG.as_bytes();
    if !bootstrap
        .windows(needle.len())
        .any(|window| window == needle)
    {
        return bootstrap.clone();
    }
    let text = String::from_utf8_lossy(bootstrap);
    Bytes::from(text.replace(CLOUDBASE_LANG, lang))
}

/// The function's npm dependencies, installed at deploy as the node
/// engine's are, when its `package.json` names some and the server has npm.
pub(super) async fn install_dependencies(
    shared: &Shared,
    function: &DeployedFunction,
) -> Result<Option<PathBuf>, String> {
    let Some(hash) = crate::node::install::needed(&function.package) else {
        return Ok(None);
    };
    let Some(node) = &shared.options.node else {
        return Err(
            "package.json names dependencies, but this server has no Node.js to install them \
             with: ship node_modules in the package, or install node 18 or later"
                .to_owned(),
        );
    };
    crate::node::install::install(&function.package, &hash, &shared.dirs.modules, &node.npm())
        .await
        .map(Some)
}

/// Removes the folders of versions no pool runs any more, off the async
/// workers (a function may have many files).
pub(super) fn forget_unused(shared: &Shared) {
    let mut in_use: Vec<VersionId> = shared
        .pools
        .read()
        .keys()
        .map(|(_, _, version)| version.clone())
        .collect();
    in_use.extend(
        shared
            .retired
            .lock()
            .iter()
            .map(|(version, _)| version.clone()),
    );
    let packages = shared.dirs.packages.clone();
    tokio::task::spawn_blocking(move || {
        let Ok(entries) = std::fs::read_dir(&packages) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let unused = VersionId::parse(name).is_ok_and(|v| !in_use.contains(&v));
            if unused {
                let gone = crate::folder::unique_sibling(&entry.path(), "gone");
                if std::fs::rename(entry.path(), &gone).is_ok() {
                    let _ = std::fs::remove_dir_all(gone);
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudbase_interpreter_paths_lead_to_the_local_ones() {
        let bootstrap = Bytes::from_static(
            b"#!/bin/bash\nexport PORT=9000\n/var/lang/node18/bin/node app.js\n",
        );
        let local = with_local_interpreters(&bootstrap, "/data/http/lang/");
        assert_eq!(
            local,
            "#!/bin/bash\nexport PORT=9000\n/data/http/lang/node18/bin/node app.js\n"
        );
    }

    #[test]
    fn a_bootstrap_naming_no_cloudbase_path_is_left_as_it_is() {
        let bootstrap = Bytes::from_static(b"#!/bin/sh\nexec ./server\n");
        assert_eq!(with_local_interpreters(&bootstrap, "/x/"), bootstrap);
    }
}
