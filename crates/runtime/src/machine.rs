//! What this machine gives the engines: the memory budget's default.

/// Half of the memory this machine (or the cgroup the process runs in) has:
/// room for function instances, with the rest left to the server's own
/// buffers, the page cache and other processes. 1 GiB where neither can be read.
pub fn default_memory_budget() -> usize {
    const FALLBACK: usize = 1 << 30;
    machine_memory_bytes().map_or(FALLBACK, |bytes| bytes / 2)
}

/// MemTotal from /proc/meminfo, lowered to the cgroup's memory.max when that
/// is set. Read by hand: two small files, where a system-information crate
/// would bring far more than these two numbers.
fn machine_memory_bytes() -> Option<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let total_kib: usize = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let total = total_kib.saturating_mul(1024);
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|max| max.trim().parse::<usize>().ok());
    Some(cgroup.map_or(total, |limit| limit.min(total)))
}
