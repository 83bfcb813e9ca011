//! Test support: a real `cloudlet` server process on a free loopback port.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Writes a function folder `name` under `root` with `files` (path, text);
/// returns the folder's path.
pub fn write_function(root: &Path, name: &str, files: &[(&str, &str)]) -> String {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (path, content) in files {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }
    dir.to_str().unwrap().to_owned()
}

/// A function folder with `index.js` and `config.json`.
pub fn write_js_function(root: &Path, name: &str, source: &str, config: &str) -> String {
    write_function(root, name, &[("index.js", source), ("config.json", config)])
}

/// Whether a `node` is on PATH for the node engine; says so when not, since
/// the tests that need one then skip.
pub fn node_found() -> bool {
    let found = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        eprintln!("skipped: no node on PATH for the node engine");
    }
    found
}

/// Whether Node.js and the npm registry are there, for functions whose
/// dependencies are installed from npm at deploy; says why not when not.
pub fn npm_reachable() -> bool {
    if !node_found() {
        return false;
    }
    let ping = Command::new("npm")
        .args(["ping", "--fetch-timeout=20000"])
        .output();
    let reachable = ping.as_ref().is_ok_and(|out| out.status.success());
    if !reachable {
        eprintln!("skipped: npm cannot reach its registry ({ping:?})");
    }
    reachable
}

/// npm packages (`name@version` each) installed once in the cache outside
/// the clone, under `folder`; returns their `node_modules` for `NODE_PATH`.
/// Callers check [`npm_reachable`] first.
pub fn npm_packages(folder: &str, specs: &[&str]) -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = home.join(".cache/cloudlet-tests").join(folder);
    // Written after a whole install: an interrupted one is tried again.
    let marker = dir.join(".installed");
    let wanted = specs.join("\n");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .args(specs)
            .output()
            .unwrap();
        assert!(out.status.success(), "npm install {specs:?}: {out:?}");
        std::fs::write(&marker, wanted).unwrap();
    }
    dir.join("node_modules")
}

/// Debian's Chromium for browser tests, installed with apt when it is
/// missing and this runs as root; says why not when it cannot be had.
pub fn chromium() -> Option<PathBuf> {
    debian_tool("/usr/bin/chromium", "chromium")
}

/// The program at `path`, installing Debian's `package` for it if it is
/// missing (as root, with apt-get); `None`, saying why, when it cannot be had.
pub fn debian_tool(path: &str, package: &str) -> Option<PathBuf> {
    let path = PathBuf::from(path);
    if path.exists() {
        return Some(path);
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"));
    if !root {
        eprintln!(
            "skipped: no {}, and only root may apt-get install {package}",
            path.display()
        );
        return None;
    }
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
    };
    let _ = apt(&["update", "-q"]);
    let installed = apt(&["install", "-y", "-q", "--no-install-recommends", package]);
    if path.exists() {
        return Some(path);
    }
    eprintln!("skipped: apt-get could not install {package} ({installed:?})");
    None
}

/// The `cloudlet` binary under test.
pub fn cloudlet_bin() -> &'static str {
    env!("CARGO_BIN_EXE_cloudlet")
}

/// The repository's `examples/` folder.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// A `cloudlet serve` child process, killed on drop.
pub struct TestServer {
    pub url: String,
    pub data_dir: tempfile::TempDir,
    child: Child,
}

impl TestServer {
    /// Starts `cloudlet serve` on 127.0.0.1 with a port chosen by the OS and a fresh data dir.
    pub fn start(extra_args: &[&str]) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        Self::start_in(data_dir, extra_args)
    }

    /// Starts `cloudlet serve` on an existing data dir (to test restarts).
    pub fn start_in(data_dir: tempfile::TempDir, extra_args: &[&str]) -> Self {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--data-dir"];
        let dir = data_dir.path().to_str().unwrap().to_owned();
        args.push(&dir);
        args.extend_from_slice(extra_args);
        let mut child = Command::new(cloudlet_bin())
            .args(&args)
            .env_remove("CLOUDLET_ADMIN_KEY")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cloudlet serve starts");
        let url = read_listening_url(&mut child);
        Self {
            url,
            data_dir,
            child,
        }
    }

    /// Stops the server (SIGKILL: tests of durability must not rely on a clean shutdown)
    /// and hands back its data dir.
    pub fn kill(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.data_dir, dir)
    }

    /// Sends SIGTERM and waits for the server to exit; returns its exit status,
    /// how long it took, and its data dir.
    pub fn terminate(
        mut self,
    ) -> (
        std::process::ExitStatus,
        std::time::Duration,
        tempfile::TempDir,
    ) {
        let started = std::time::Instant::now();
        self.send_sigterm();
        let status = self.child.wait().unwrap();
        let dir = tempfile::tempdir().unwrap();
        (
            status,
            started.elapsed(),
            std::mem::replace(&mut self.data_dir, dir),
        )
    }

    /// Sends SIGTERM without waiting for the server to exit.
    pub fn send_sigterm(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Runs a `cloudlet` CLI command against this server.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(cloudlet_bin())
            .args(args)
            .env("CLOUDLET_SERVER", &self.url)
            .env_remove("CLOUDLET_KEY")
            .output()
            .expect("cloudlet runs")
    }

    /// Deploys the folder `dir`, which must be refused; returns why (the
    /// CLI's stderr).
    pub fn deploy_refused(&self, dir: &str) -> String {
        let out = self.cli(&["deploy", dir]);
        assert!(!out.status.success(), "the deploy of {dir} was accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the child's stdout until the `cloudlet listening on http://…` line and
/// keeps draining it in the background so the child never blocks on a full pipe.
pub fn read_listening_url(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read server stdout");
        assert!(n > 0, "the server exited before it listened");
        if let Some(url) = line.trim().strip_prefix("cloudlet listening on ") {
            let url = url.to_owned();
            std::thread::spawn(move || {
                let mut sink = String::new();
                while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                    sink.clear();
                }
            });
            return url;
        }
    }
}

/// The resident memory of process `pid`, in MiB.
pub fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

/// What the server at `url` answers to `request` (a request's line and
/// headers, and whatever part of its body the test sends) over a raw
/// socket that then waits. A request refused before its body is read must
/// be tested this way: a client that has sent bytes the server never reads
/// may see the connection reset, and lose the answer, when the server closes it.
pub async fn answer_to(url: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("answered before the body ended")
        .unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}
