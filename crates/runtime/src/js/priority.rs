//! The scheduling policy of the calling thread, switched between Linux's
//! `SCHED_OTHER` and `SCHED_IDLE` for long-running JavaScript (`lane.rs`).
//!
//! Written over libc rather than taken from the `thread-priority` crate: its
//! Linux path for normal policies also resets the thread's nice value on
//! every call, which an unprivileged process can lower but never raise again.
//! Only the policy is switched here.

#[cfg(target_os = "linux")]
fn set_policy(policy: libc::c_int) -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid, initialised
    // sched_param that outlives the call. (A system call needs `unsafe`.)
    #[allow(unsafe_code)]
    let status = unsafe { libc::sched_setscheduler(0, policy, &param) };
    status == 0
}

/// Whether this process may put a thread under `SCHED_IDLE` and take it back
/// to `SCHED_OTHER` (it needs `CAP_SYS_NICE` or an `RLIMIT_NICE` of 20): tried
/// once, on a thread of its own.
pub(super) fn can_lower_and_restore() -> bool {
    #[cfg(target_os = "linux")]
    {
        static ALLOWED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ALLOWED.get_or_init(|| {
            let probe = std::thread::Builder::new()
                .name("cloudlet-priority-probe".into())
                .spawn(|| set_policy(libc::SCHED_IDLE) && set_policy(libc::SCHED_OTHER));
            probe.ok().and_then(|t| t.join().ok()).unwrap_or(false)
        })
    }
    #[cfg(not(target_os = "linux"))]
    false
}

/// Puts the calling thread under `SCHED_IDLE`. True when it was.
pub(super) fn lower() -> bool {
    #[cfg(target_os = "linux")]
    return set_policy(libc::SCHED_IDLE);
    #[cfg(not(target_os = "linux"))]
    false
}

/// Puts the calling thread back under `SCHED_OTHER` if it runs under
/// `SCHED_IDLE`. Threads inherit the policy of the thread that starts them,
/// and a thread of the lane may be the one that makes tokio start a thread
/// (a worker's replacement, a blocking-pool thread): every thread tokio
/// starts calls this first.
pub fn normal_priority_for_new_thread() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: pid 0 is the calling thread; the call only reads its policy.
        #[allow(unsafe_code)]
        let policy = unsafe { libc::sched_getscheduler(0) };
        if policy == libc::SCHED_IDLE {
            restore();
        }
    }
}

/// Puts the calling thread back under `SCHED_OTHER`.
pub(super) fn restore() {
    #[cfg(target_os = "linux")]
    if !set_policy(libc::SCHED_OTHER) {
        tracing::warn!("cannot restore a thread's scheduling policy after long-running JavaScript");
    }
}
