//! What both baselines share: the tokio runtime a command line asks for.

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
