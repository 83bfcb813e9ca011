//! The Rust functions an instance's JavaScript can reach: `console` capture,
//! read-only access to the function's own package, module compilation, the
//! Node-compatible built-in modules, and a monotonic clock. Nothing here
//! touches the host's file system, processes or sockets.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use cloudlet_core::{LogLevel, LogLine, Package};
use parking_lot::Mutex;
use rquickjs::{
    context::EvalOptions, function::Func, module::ModuleDef, Ctx, Function, Module, Object, Value,
    WriteOptions,
};

use super::calls::HostCalls;
use super::watchdog::Watchdog;
use crate::sse::SseChannel;

/// Where the invocation in progress writes its server-sent events, when its
/// caller takes them (`context.sse()`).
pub(crate) type SseSlot = Mutex<Option<SseChannel>>;

/// Captured `console` output of the invocation in progress.
#[derive(Debug)]
pub(crate) struct LogSink {
    inner: Mutex<LogBuffer>,
}

#[derive(Debug, Default)]
struct LogBuffer {
    lines: Vec<LogLine>,
    bytes: usize,
    cap: usize,
    /// Bytes cut from the line that reached the cap.
    cut_bytes: usize,
    /// Lines dropped whole after the cap was reached (not formatted, so not measured).
    dropped_lines: usize,
    /// `console.group` depth: each level indents the lines by two spaces.
    group_depth: usize,
}

impl LogSink {
    pub(crate) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(LogBuffer {
                cap,
                ..LogBuffer::default()
            }),
        })
    }

    /// Takes what the invocation printed, leaving the sink empty for the next one.
    /// Returns the lines and whether output was dropped past the cap; a final
    /// marker line says how much.
    pub(crate) fn take(&self) -> (Vec<LogLine>, bool) {
        let mut buf = self.inner.lock();
        let mut lines = std::mem::take(&mut buf.lines);
        let cut = std::mem::take(&mut buf.cut_bytes);
        let dropped = std::mem::take(&mut buf.dropped_lines);
        buf.bytes = 0;
        buf.group_depth = 0;
        let truncated = cut > 0 || dropped > 0;
        if truncated {
            lines.push(LogLine {
                timestamp: cloudlet_core::now_unix_ms(),
                level: LogLevel::Warn,
                message: format!(
                    "[cloudlet] log output truncated at its limit of {} bytes per invocation: \
                     {cut} bytes cut from the last line kept, {dropped} later line{} dropped",
                    buf.cap,
                    if dropped == 1 { "" } else { "s" }
                ),
            });
        }
        (lines, truncated)
    }

    fn is_full(&self) -> bool {
        let buf = self.inner.lock();
        buf.bytes >= buf.cap
    }

    fn push(&self, level: LogLevel, mut message: String) {
        let mut buf = self.inner.lock();
        let room = buf.cap.saturating_sub(buf.bytes);
        if buf.group_depth > 0 {
            // Indented only as far as the cap lets the line go, so that deep
            // groups cannot make a line larger than the cap first.
            let indent = " ".repeat((2 * buf.group_depth).min(room));
            let mut indented = String::with_capacity(message.len().min(room) + indent.len());
            for (i, line) in message.split('\n').enumerate() {
                if indented.len() > room {
                    break;
                }
                if i > 0 {
                    indented.push('\n');
                }
                indented.push_str(&indent);
                indented.push_str(line);
            }
            message = indented;
        }
        if message.len() > room {
            let mut cut = room;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            let removed = message.len() - cut;
            message.truncate(cut);
            if message.is_empty() {
                buf.dropped_lines += 1;
                return;
            }
            buf.cut_bytes += removed;
        }
        buf.bytes += message.len();
        buf.lines.push(LogLine {
            timestamp: cloudlet_core::now_unix_ms(),
            level,
            message,
        });
    }

    fn drop_unformatted(&self) {
        // Past the cap we stop formatting (it can be costly for large objects)
        // and only count the line.
        self.inner.lock().dropped_lines += 1;
    }

    fn group(&self, deeper: bool) {
        let mut buf = self.inner.lock();
        buf.group_depth = if deeper {
            buf.group_depth + 1
        } else {
            buf.group_depth.saturating_sub(1)
        };
    }
}

/// The log functions the bootstrap's `console` writes through: a line at a
/// level, whether the cap is reached (past it, lines are counted without being
/// formatted, which can be costly for large objects), and the group depth.
fn add_log_functions<'js>(host: &Object<'js>, sink: &Arc<LogSink>) -> rquickjs::Result<()> {
    let log = sink.clone();
    host.set(
        "log",
        Func::from(move |level: String, message: String| {
            let level = match level.as_str() {
                "debug" => LogLevel::Debug,
                "warn" => LogLevel::Warn,
                "error" => LogLevel::Error,
                _ => LogLevel::Info,
            };
            log.push(level, message);
        }),
    )?;
    let full = sink.clone();
    host.set("logFull", Func::from(move || full.is_full()))?;
    let dropped = sink.clone();
    host.set("logDropped", Func::from(move || dropped.drop_unformatted()))?;
    let group = sink.clone();
    host.set(
        "logGroup",
        Func::from(move |deeper: bool| group.group(deeper)),
    )?;
    Ok(())
}

/// Built-in modules `require` can load, beyond the ones the bootstrap provides
/// itself (`timers`, `process`, `console`).
const BUILTIN_MODULES: &[&str] = &[
    // The vendors' SDKs for calling functions, in process (`calls.rs`); a
    // copy in the function's node_modules does not shadow them.
    "wx-server-sdk",
    "@cloudbase/node-sdk",
    "linkedge-core-sdk",
    "buffer",
    "crypto",
    "events",
    "path",
    "url",
    "util",
    "string_decoder",
    "timers",
    "process",
    "console",
];

/// Node modules that exist but are deliberately unavailable, with the reason
/// `require` reports.
fn denied_reason(name: &str) -> Option<&'static str> {
    match name {
        "fs" | "fs/promises" | "child_process" | "net" | "tls" | "http" | "https" | "http2"
        | "dgram" | "dns" | "os" | "worker_threads" | "cluster" | "vm" | "v8" | "module"
        | "inspector" | "readline" | "repl" => {
            Some("functions on the js engine have no file system, process or network access")
        }
        _ => None,
    }
}

fn evaluate_builtin<'js, D: ModuleDef>(ctx: &Ctx<'js>, name: &str) -> rquickjs::Result<Value<'js>> {
    let (module, promise) = Module::evaluate_def::<D, _>(ctx.clone(), name)?;
    promise.finish::<()>()?;
    module.namespace()?.get("default")
}

/// Node's `crypto`: LLRT's crypto module (hashes, HMACs and random values) and
/// Cloudlet's ciphers, PBKDF2 and signatures (`ciphers.rs`, `signatures.rs`), wrapped into Node's API by
/// `crypto.js`. The watchdog lets long key derivations stop at the deadline.
///
/// LLRT's `init` also installs a global `crypto` whose `subtle` methods are
/// futures for LLRT's own event loop, which instances here do not run; the module
/// needs that global while it evaluates, and it is removed afterwards (the
/// bootstrap installs a Web Crypto global of its own).
fn crypto_builtin<'js>(ctx: &Ctx<'js>, watchdog: Arc<Watchdog>) -> rquickjs::Result<Value<'js>> {
    llrt_crypto::init(ctx)?;
    let llrt = evaluate_builtin::<llrt_crypto::CryptoModule>(ctx, "crypto")?;
    ctx.globals().remove("crypto")?;
    let native = Object::new(ctx.clone())?;
    super::ciphers::install(&native, watchdog)?;
    super::signatures::install(&native)?;
    CRYPTO.default_export(ctx)?.call((llrt, native))
}

/// The clock behind `process.hrtime` and `performance.now`.
pub(crate) fn monotonic_ns() -> f64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as f64
}

/// `performance.timeOrigin`: the wall-clock time (Unix ms, to the
/// microsecond) that [`monotonic_ns`] counts from, so that `timeOrigin +
/// performance.now()` is the wall clock, as in Node.
fn time_origin_ms() -> f64 {
    static ORIGIN: OnceLock<f64> = OnceLock::new();
    *ORIGIN.get_or_init(|| {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        wall - monotonic_ns() / 1e6
    })
}

/// The bootstrap's `sse` function, made when an instance's function first
/// calls `context.sse()`: `sse(0)` opens the invocation's event stream
/// (false when its caller takes none), `sse(1, json)` sends an event,
/// `sse(2)` ends the stream.
fn sse_function<'js>(ctx: &Ctx<'js>, slot: Arc<SseSlot>) -> rquickjs::Result<Function<'js>> {
    Function::new(
        ctx.clone(),
        move |ctx: Ctx<'_>, op: i32, message: rquickjs::function::Opt<String>| {
            let slot = slot.lock();
            let Some(channel) = slot.as_ref() else {
                return Ok(false);
            };
            match (op, message.0) {
                (0, _) => channel.open(),
                (1, Some(message)) => channel.send(&message).map_err(|refused| {
                    rquickjs::Exception::throw_message(&ctx, &refused.to_string())
                })?,
                _ => channel.end(),
            }
            Ok::<_, rquickjs::Error>(true)
        },
    )
}

/// Builds the `host` object the bootstrap receives.
pub(crate) fn host_object<'js>(
    ctx: &Ctx<'js>,
    package: &Arc<Package>,
    env: &[(String, String)],
    watchdog: &Arc<Watchdog>,
    logs: &Arc<LogSink>,
    calls: &Arc<HostCalls>,
    sse: &Arc<SseSlot>,
) -> rquickjs::Result<Object<'js>> {
    let host = Object::new(ctx.clone())?;
    add_log_functions(&host, logs)?;
    // The engine's own modules that the bootstrap loads on first use, so that
    // instances that never need them do not carry their functions and atoms.
    let sse = Arc::clone(sse);
    let fetches = Arc::clone(calls);
    host.set(
        "engineModule",
        Func::from(
            move |ctx: Ctx<'js>, name: String| -> rquickjs::Result<Function<'js>> {
                match name.as_str() {
                    "buffer" => BUFFER.default_export(&ctx),
                    "extras" => EXTRAS.default_export(&ctx),
                    "inspect" => INSPECT.default_export(&ctx),
                    "sse" => sse_function(&ctx, Arc::clone(&sse)),
                    "fetch" => super::fetch::fetch_function(&ctx, &fetches),
                    other => Err(rquickjs::Exception::throw_message(
                        &ctx,
                        &format!("no engine module {other}"),
                    )),
                }
            },
        ),
    )?;

    let files = package.clone();
    host.set(
        "hasFile",
        Func::from(move |path: String| files.file(&path).is_some()),
    )?;
    let files = package.clone();
    host.set(
        "readFile",
        Func::from(move |ctx: Ctx<'js>, path: String| match files.file(&path) {
            Some(bytes) => Ok(String::from_utf8_lossy(bytes).into_owned()),
            None => Err(rquickjs::Exception::throw_message(
                &ctx,
                &format!("ENOENT: no such file in the function package: {path}"),
            )),
        }),
    )?;
    host.set(
        "compile",
        Func::from(|ctx: Ctx<'js>, source: String, filename: String| {
            compile_commonjs(&ctx, &source, filename)
        }),
    )?;
    host.set(
        "isBuiltin",
        Func::from(|name: String| BUILTIN_MODULES.contains(&name.as_str())),
    )?;
    host.set(
        "isDenied",
        Func::from(|name: String| denied_reason(&name).map(str::to_owned)),
    )?;
    let watchdog = Arc::clone(watchdog);
    let calls = Arc::clone(calls);
    host.set(
        "builtinModule",
        Func::from(
            move |ctx: Ctx<'js>, name: String| -> rquickjs::Result<Value<'js>> {
                use {
                    llrt_buffer as buffer, llrt_path as path,
                    llrt_string_decoder as string_decoder, llrt_url as url, llrt_util as util,
                };
                match name.as_str() {
                    "buffer" => evaluate_builtin::<buffer::BufferModule>(&ctx, "buffer"),
                    "crypto" => crypto_builtin(&ctx, Arc::clone(&watchdog)),
                    "events" => EVENTS.default_export(&ctx)?.call(()),
                    "path" => evaluate_builtin::<path::PathModule>(&ctx, "path"),
                    "url" => evaluate_builtin::<url::UrlModule>(&ctx, "url"),
                    "util" => evaluate_builtin::<util::UtilModule>(&ctx, "util"),
                    "string_decoder" => evaluate_builtin::<string_decoder::StringDecoderModule>(
                        &ctx,
                        "string_decoder",
                    ),
                    sdk if super::calls::is_sdk(sdk) => super::calls::sdk_module(&ctx, &calls, sdk),
                    other => Err(rquickjs::Exception::throw_message(
                        &ctx,
                        &format!("no built-in module {other}"),
                    )),
                }
            },
        ),
    )?;
    host.set("monotonicNs", Func::from(monotonic_ns))?;
    host.set("timeOrigin", time_origin_ms())?;
    // Math.random: QuickJS seeds each context from the clock in microseconds,
    // so instances created in the same microsecond (concurrent cold starts)
    // would draw the same numbers. The thread's generator serves them all.
    host.set("random", Func::from(rand::random::<f64>))?;
    host.set("wrapperColumns", COMMONJS_PREFIX.len())?;
    host.set(
        "reserveMemory",
        Func::from(|bytes: f64| crate::heap_meter::reserve(bytes)),
    )?;

    let env_object = Object::new(ctx.clone())?;
    for (key, value) in env {
        env_object.set(key.as_str(), value.as_str())?;
    }
    host.set("env", env_object)?;
    Ok(host)
}

/// The start of the function a CommonJS module is compiled into. It shares the
/// module's first line, so that line numbers match the file; the bootstrap
/// takes its length off the columns of first-line stack frames.
const COMMONJS_PREFIX: &str = "(function (exports, require, module, __filename, __dirname) {";

/// Compiles a CommonJS module into its wrapper function, keeping the file name
/// for stack traces. The wrapper starts on the module's first line, so line
/// numbers in stacks match the file.
pub(crate) fn compile_commonjs<'js>(
    ctx: &Ctx<'js>,
    source: &str,
    filename: String,
) -> rquickjs::Result<Function<'js>> {
    let body = match source.strip_prefix("#!") {
        Some(rest) => format!("//{rest}"),
        None => source.to_owned(),
    };
    let wrapped = format!("{COMMONJS_PREFIX}{body}\n}})");
    let mut options = EvalOptions::default();
    options.strict = false;
    options.filename = Some(filename);
    ctx.eval_with_options(wrapped, options)
}

/// One of the engine's own JavaScript modules (`bootstrap.js`, and those it
/// loads on first use: `crypto.js`, `events.js`, `inspect.js`, `buffer.js`,
/// `extras.js`),
/// compiled to QuickJS bytecode once per process: parsing and compiling the
/// bootstrap would otherwise be most of what creating an instance costs.
pub(crate) struct EngineModule {
    name: &'static str,
    source: &'static str,
    bytecode: OnceLock<Result<Vec<u8>, String>>,
}

static BOOTSTRAP: EngineModule =
    EngineModule::new("cloudlet:bootstrap", include_str!("bootstrap.js"));
static CRYPTO: EngineModule = EngineModule::new("cloudlet:crypto", include_str!("crypto.js"));
static EVENTS: EngineModule = EngineModule::new("cloudlet:events", include_str!("events.js"));
static INSPECT: EngineModule = EngineModule::new("cloudlet:inspect", include_str!("inspect.js"));
static BUFFER: EngineModule = EngineModule::new("cloudlet:buffer", include_str!("buffer.js"));
static EXTRAS: EngineModule = EngineModule::new("cloudlet:extras", include_str!("extras.js"));
pub(crate) static FETCH: EngineModule =
    EngineModule::new("cloudlet:fetch", include_str!("fetch.js"));
pub(crate) static SDKS: EngineModule = EngineModule::new("cloudlet:sdks", include_str!("sdks.js"));

impl EngineModule {
    const fn new(name: &'static str, source: &'static str) -> Self {
        Self {
            name,
            source,
            bytecode: OnceLock::new(),
        }
    }

    fn bytecode(&self) -> rquickjs::Result<&[u8]> {
        let compiled = self.bytecode.get_or_init(|| {
            let compile = || -> rquickjs::Result<Vec<u8>> {
                let runtime = rquickjs::Runtime::new()?;
                let context = rquickjs::Context::full(&runtime)?;
                context.with(|ctx| {
                    // Without the source text, which only `Function.prototype.toString`
                    // reads: each instance would otherwise keep its own copy.
                    let options = WriteOptions {
                        strip_source: true,
                        ..WriteOptions::default()
                    };
                    Module::declare(ctx, self.name, self.source)?.write(options)
                })
            };
            compile().map_err(|e| e.to_string())
        });
        compiled.as_deref().map_err(|message| {
            rquickjs::Error::new_from_js_message(self.name, "bytecode", message.clone())
        })
    }

    /// Loads and evaluates the module in this context; returns its default export.
    pub(crate) fn default_export<'js>(
        &'static self,
        ctx: &Ctx<'js>,
    ) -> rquickjs::Result<Function<'js>> {
        let bytecode = self.bytecode()?;
        // SAFETY: `Module::load` trusts its bytes to be valid bytecode of this
        // QuickJS build and, reading them as ROM data, to outlive the module. They
        // were written by `Module::write` of the same build in this process and sit
        // in a static that is never dropped.
        #[allow(unsafe_code)]
        let module = unsafe { Module::load(ctx.clone(), bytecode)? };
        let (module, evaluated) = module.eval()?;
        evaluated.finish::<()>()?;
        module.get("default")
    }
}

/// Evaluates the bootstrap and hands it the host object; returns its API.
pub(crate) fn run_bootstrap<'js>(
    ctx: &Ctx<'js>,
    host: Object<'js>,
) -> rquickjs::Result<Object<'js>> {
    BOOTSTRAP.default_export(ctx)?.call((host,))
}
