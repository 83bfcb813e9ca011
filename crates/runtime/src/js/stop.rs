//! Why a limit stopped an instance.

/// Why an instance was stopped. An instance stopped for any reason is discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Stop {
    /// The invocation ran past its deadline.
    Deadline = 1,
    /// An allocation was refused: the instance reached its memory limit.
    Memory = 2,
    /// The server is shutting down and the grace period for running invocations is over.
    Shutdown = 3,
}

impl Stop {
    /// The stop a stored number names, if any (0 means running).
    pub(crate) fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(Stop::Deadline),
            2 => Some(Stop::Memory),
            3 => Some(Stop::Shutdown),
            _ => None,
        }
    }
}
