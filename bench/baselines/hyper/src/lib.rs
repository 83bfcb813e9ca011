//! What both baselines share: the tokio runtime a command line asks for, and
//! the loopback socket they announce.

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The runtime `flavour` names: `st` (current_thread) or `mt` (multi_thread,
/// with the next argument's number of workers, else one per CPU).
pub fn runtime(
    flavour: &str,
    mut args: impl Iterator<Item = String>,
    usage: &str,
) -> Result<tokio::runtime::Runtime, Error> {
    match flavour {
        "st" => Ok(tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?),
        "mt" => {
            let workers = match args.next() {
                Some(n) => n.parse()?,
                None => std::thread::available_parallelism().map_or(1, usize::from),
            };
            Ok(tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()?)
        }
        other => Err(format!("unknown runtime flavour {other:?}; {usage}").into()),
    }
}

/// Binds 127.0.0.1:`port` and prints `listening on http://ADDR`, which
/// bench/run.sh waits for.
pub async fn listen(port: u16) -> Result<tokio::net::TcpListener, Error> {
    use std::io::Write;
    let listener =
        tokio::net::TcpListener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let addr = listener.local_addr()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{addr}")?;
    stdout.flush()?;
    Ok(listener)
}
