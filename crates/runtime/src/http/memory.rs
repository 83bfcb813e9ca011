//! The memory limit of HTTP functions' instances: every second, the resident
//! memory of each instance's process group is summed from `/proc`, and an
//! instance over its function's `memorySize` (at least [`MIN_LIMIT_MB`],
//! what a runtime holds before any code) is killed. Its requests in flight
//! end with `FUNCTION_MEMORY_LIMIT_EXCEEDED`.
//!
//! Polling, not a cgroup: creating cgroups needs privileges this server
//! does not assume. Between two looks an instance can exceed its limit for
//! up to a second.

use std::collections::HashMap;
use std::time::Duration;

use super::instance::Killed;
use super::Shared;

const INTERVAL: Duration = Duration::from_secs(1);
const MIN_LIMIT_MB: u64 = 128;

/// Watches the instances' memory while the server serves; never returns.
pub(super) async fn watch(shared: &Shared) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let pools = shared.all_pools();
        let instances: Vec<_> = pools.iter().flat_map(|pool| pool.instances()).collect();
        if instances.is_empty() {
            continue;
        }
        let Ok(by_group) = tokio::task::spawn_blocking(resident_by_group).await else {
            continue;
        };
        for (pool, instance) in pools
            .iter()
            .flat_map(|pool| pool.instances().into_iter().map(move |i| (pool, i)))
        {
            let limit = pool.memory_limit_mb().max(MIN_LIMIT_MB) * 1024 * 1024;
            let held = by_group.get(&instance.group()).copied().unwrap_or(0);
            if held > limit {
                tracing::info!(
                    port = instance.port,
                    held_mb = held / 1024 / 1024,
                    "an HTTP function's instance went past its memorySize and was killed"
                );
                instance.kill(Killed::Memory);
            }
        }
    }
}

/// Resident bytes of every process group on the machine, from each
/// process's `/proc/<pid>/stat`.
fn resident_by_group() -> HashMap<i32, u64> {
    // SAFETY: sysconf has no preconditions.
    #[allow(unsafe_code)]
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = u64::try_from(page).unwrap_or(4096);
    let mut groups = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return groups;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((group, pages)) = group_and_pages(&stat) {
            *groups.entry(group).or_insert(0) += pages * page;
        }
    }
    groups
}

/// The process group (field 5) and resident pages (field 24) of a
/// `/proc/<pid>/stat` line; the command name (field 2) may hold spaces and
/// parentheses, so fields are counted from its closing parenthesis.
fn group_and_pages(stat: &str) -> Option<(i32, u64)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state is field 3, so field n is at index n - 3.
    let group = fields.get(5 - 3)?.parse().ok()?;
    let pages = fields.get(24 - 3)?.parse().ok()?;
    Some((group, pages))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_its_group_and_resident_pages() {
        let stat = "4242 (node (worker) x) S 1 4240 4240 0 -1 4194560 1 0 0 0 5 1 0 0 20 0 \
                    11 0 123 1000000 2500 18446744073709551615";
        assert_eq!(group_and_pages(stat), Some((4240, 2500)));
    }

    #[test]
    fn this_process_is_found_in_its_group() {
        // SAFETY: getpgrp has no preconditions.
        #[allow(unsafe_code)]
        let group = unsafe { libc::getpgrp() };
        assert!(resident_by_group().get(&group).copied().unwrap_or(0) > 0);
    }
}
