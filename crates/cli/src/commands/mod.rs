//! The client commands, one module each, and what they share: the connection
//! flags, error reporting with exit codes, and human-readable formatting.

pub mod cloudbaserc;
pub mod dead_letters;
pub mod deploy;
pub mod dev;
pub mod envs;
pub mod functions;
pub mod invocations;
pub mod invoke;
pub mod logs;
pub mod publish;
pub mod queue;
pub mod routes;
pub mod status;
pub mod triggers;

use cloudlet_client::{Client, ClientError};

/// Flags every client command accepts.
#[derive(clap::Args, Debug)]
pub struct Global {
    /// URL of the cloudlet server that client commands talk to.
    #[arg(
        long,
        global = true,
        env = "CLOUDLET_SERVER",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL",
        help_heading = "Connection"
    )]
    pub server: String,

    /// Key sent as `Authorization: Bearer`: the admin key, or an env key (invoke, logs).
    #[arg(
        long,
        global = true,
        env = "CLOUDLET_KEY",
        hide_env_values = true,
        value_name = "KEY",
        help_heading = "Connection"
    )]
    pub key: Option<String>,
}

impl Global {
    pub fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(&self.server, self.key.clone())?)
    }
}

/// A failure the command already explained on stderr; only the exit code is left.
#[derive(Debug, thiserror::Error)]
#[error("exit code {0}")]
pub struct Reported(pub u8);

/// Prints a failed command's error to stderr and picks the exit code: 1 when the
/// server answered with an error, 2 for everything that kept the command from
/// reaching that point (arguments, local files, connection).
pub fn report(error: &anyhow::Error) -> u8 {
    if let Some(Reported(code)) = error.downcast_ref::<Reported>() {
        return *code;
    }
    if let Some(ClientError::Api { body, .. }) = error.downcast_ref::<ClientError>() {
        eprintln!("error: {}: {}", body.code, body.message);
        if let Some(id) = &body.request_id {
            eprintln!("request id: {id}");
        }
        return 1;
    }
    eprintln!("error: {error:#}");
    2
}

/// Unix milliseconds as an RFC 3339 UTC timestamp with milliseconds.
pub fn format_time(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let millis = unix_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = cloudlet_core::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A duration in microseconds, in the unit that reads best.
pub fn format_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.2} ms", us as f64 / 1e3)
    } else {
        format!("{:.3} s", us as f64 / 1e6)
    }
}

/// A size in bytes, in binary units past 1 KiB.
pub fn format_bytes(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(1_795_330_531_516), "2026-11-22T06:55:31.516Z");
        assert_eq!(format_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_time(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn units() {
        assert_eq!(format_us(412), "412 µs");
        assert_eq!(format_us(1_500), "1.50 ms");
        assert_eq!(format_us(2_000_000), "2.000 s");
        assert_eq!(format_bytes(312), "312 B");
        assert_eq!(format_bytes(2048), "2.0 KiB");
    }
}
