//! `cloudlet invoke NAME`: invoke a function and print its result, or, with
//! `--path`, send an HTTP function a request and print its response as it
//! streams.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use cloudlet_client::{ClientError, InvokeOptions, WebRequest};
use cloudlet_core::{EnvId, FunctionName, RequestId};

use super::{Global, Reported};

/// The full help of `cloudlet invoke`.
pub const LONG_ABOUT: &str =
    "Invoke a function and print its result as JSON on stdout (`3`, `\"hi\"`, \
    `{\"a\":1}`). The request ID goes to stderr; pass it to `cloudlet logs` for the record \
    and the function's console output.\n\nOn an error, stderr gets `error: CODE: message` \
    and the request ID.\n\nWith --path, the function is an HTTP function: the request goes \
    to its own server at that path (with --method, --header and --data as the body), and its \
    response body is printed on stdout as it arrives, chunk by chunk (server-sent events \
    included); the status goes to stderr, and a status of 400 or more exits with 1.\n\n\
    --cdn FIELD=FILE uploads FILE to the env's temporary storage and puts its URL in the \
    event's FIELD, as the client SDK's cloud.CDN() does: the function fetches it by URL.";

#[derive(clap::Args, Debug)]
pub struct InvokeArgs {
    /// The function to invoke.
    pub name: FunctionName,

    /// The env the function lives in.
    #[arg(long, default_value = "default")]
    pub env: EnvId,

    /// The event, as JSON (default: `{}`); with --path, the request body as it is.
    #[arg(long, short = 'd', value_name = "JSON", conflicts_with = "data_file")]
    pub data: Option<String>,

    /// Call an HTTP function at this path and query (`/sse`, `/items?page=2`).
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,

    /// The HTTP method, with --path (default: GET, or POST with --data).
    #[arg(long, short = 'X', value_name = "METHOD", requires = "path")]
    pub method: Option<String>,

    /// A request header `Name: value`, with --path; repeat for more.
    #[arg(
        long = "header",
        short = 'H',
        value_name = "NAME:VALUE",
        requires = "path"
    )]
    pub headers: Vec<String>,

    /// Upload FILE to temporary storage and put its URL in the event's FIELD,
    /// as the client SDK does with a field marked `cloud.CDN()`; repeat for more.
    #[arg(long, value_name = "FIELD=FILE", conflicts_with = "path")]
    pub cdn: Vec<String>,

    /// Read the event from a JSON file, or from stdin with `-`.
    #[arg(long, value_name = "FILE")]
    pub data_file: Option<PathBuf>,

    /// Use this request ID (letters, digits, `-_.:`) instead of one the server generates.
    #[arg(long, value_name = "ID")]
    pub request_id: Option<RequestId>,

    /// Run this version of the function (its ID or the first 12 characters,
    /// as `deploy` and `functions show` print them) instead of the current one.
    #[arg(long, value_name = "VERSION")]
    pub qualifier: Option<String>,

    /// Pretty-print the result over several lines.
    #[arg(long)]
    pub pretty: bool,

    /// Queue the invocation and print its request ID once the server has it
    /// on disk, without waiting for it to run (`cloudlet logs ID` follows it).
    #[arg(long = "async", conflicts_with = "path")]
    pub asynchronous: bool,
}

pub async fn run(global: &Global, args: InvokeArgs) -> anyhow::Result<()> {
    if args.path.is_some() {
        return run_web(global, &args).await;
    }
    let client = global.client()?;
    let event = with_cdn_fields(&client, &args, read_event(&args)?).await?;
    let options = InvokeOptions {
        trigger: Some("cli"),
        request_id: args.request_id.as_ref(),
        qualifier: args.qualifier.as_deref(),
    };
    if args.asynchronous {
        let queued = client
            .invoke_async(&args.env, &args.name, event, options)
            .await;
        return match queued {
            Ok(request_id) => {
                println!("{request_id}");
                Ok(())
            }
            Err(error) => Err(reported(error, &args.env)),
        };
    }
    let outcome = client.invoke(&args.env, &args.name, event, options).await;
    match outcome {
        Ok(invocation) => {
            let text = if args.pretty {
                serde_json::to_string_pretty(&invocation.result)?
            } else {
                serde_json::to_string(&invocation.result)?
            };
            println!("{text}");
            eprintln!("request id: {}", invocation.request_id);
            Ok(())
        }
        Err(error) => Err(reported(error, &args.env)),
    }
}

/// Prints Cloudlet's error (its code, message and request ID, and where its
/// record is), or hands any other error on.
fn reported(error: ClientError, env: &EnvId) -> anyhow::Error {
    let ClientError::Api { body, .. } = error else {
        return error.into();
    };
    eprintln!("error: {}: {}", body.code, body.message);
    if let Some(id) = &body.request_id {
        eprintln!("request id: {id}");
        if body.code.is_function_error() {
            let env = if *env == EnvId::default_env() {
                String::new()
            } else {
                format!(" --env {env}")
            };
            eprintln!("(the stack and the logs: cloudlet logs {id}{env})");
        }
    }
    Reported(1).into()
}

/// The event with each `--cdn FIELD=FILE` uploaded and its URL in FIELD.
async fn with_cdn_fields(
    client: &cloudlet_client::Client,
    args: &InvokeArgs,
    event: Vec<u8>,
) -> anyhow::Result<Vec<u8>> {
    if args.cdn.is_empty() {
        return Ok(event);
    }
    let mut event: serde_json::Value = serde_json::from_slice(&event)?;
    let Some(fields) = event.as_object_mut() else {
        anyhow::bail!("--cdn needs an event that is a JSON object");
    };
    for cdn in &args.cdn {
        let (field, file) = cdn
            .split_once('=')
            .with_context(|| format!("--cdn {cdn:?} is not of the form FIELD=FILE"))?;
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read the --cdn file {file}"))?;
        let object = client
            .upload_temporary(&args.env, "application/octet-stream", bytes)
            .await
            .map_err(|error| reported(error, &args.env))?;
        fields.insert(field.to_owned(), object.url.into());
    }
    Ok(serde_json::to_vec(&event)?)
}

/// Sends an HTTP function its request and prints the response as it streams.
async fn run_web(global: &Global, args: &InvokeArgs) -> anyhow::Result<()> {
    let body = read_body(args, "body")?;
    let method = match (&args.method, &body) {
        (Some(method), _) => method.clone(),
        (None, Some(_)) => "POST".to_owned(),
        (None, None) => "GET".to_owned(),
    };
    let headers = args
        .headers
        .iter()
        .map(|header| {
            header
                .split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .with_context(|| format!("--header {header:?} is not of the form Name: value"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let client = global.client()?;
    let request = WebRequest {
        method: &method,
        path: args.path.as_deref().unwrap_or("/"),
        headers: &headers,
        body,
        request_id: args.request_id.as_ref(),
    };
    let mut response = client
        .web(&args.env, &args.name, request)
        .await
        .map_err(|error| reported(error, &args.env))?;
    eprintln!("HTTP {}", response.status);
    let mut stdout = std::io::stdout();
    while let Some(chunk) = response.chunk().await? {
        stdout.write_all(&chunk)?;
        stdout.flush()?;
    }
    if let Some(id) = &response.request_id {
        eprintln!("request id: {id}");
    }
    if response.status >= 400 {
        return Err(Reported(1).into());
    }
    Ok(())
}

/// The bytes of `--data` or `--data-file` as they are: the request body, or
/// the event (`what` names it in errors).
fn read_body(args: &InvokeArgs, what: &str) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(match (&args.data, &args.data_file) {
        (Some(data), _) => Some(data.clone().into_bytes()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .with_context(|| format!("cannot read the {what} from stdin"))?;
            Some(buf)
        }
        (None, Some(path)) => Some(
            std::fs::read(path)
                .with_context(|| format!("cannot read the {what} file {}", path.display()))?,
        ),
        (None, None) => None,
    })
}

/// The event's JSON text, checked locally so a typo is reported before any request.
fn read_event(args: &InvokeArgs) -> anyhow::Result<Vec<u8>> {
    let Some(bytes) = read_body(args, "event")? else {
        return Ok(b"{}".to_vec());
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(b"{}".to_vec());
    }
    let source = match &args.data_file {
        Some(path) if args.data.is_none() && path.as_os_str() == "-" => {
            "the event on stdin".to_owned()
        }
        Some(path) if args.data.is_none() => path.display().to_string(),
        _ => "--data".to_owned(),
    };
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .with_context(|| format!("{source} is not valid JSON"))?;
    Ok(bytes)
}
