//! The js engine's `fetch` of other origins: what `serve --js-fetch-allow`
//! lets through, over real sockets to an origin served by this test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use support::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ADMIN: &str = "admin-secret";

/// Sends `event.request` through `fetch` and answers what came back, or
/// the error.
const FETCHER: &str = r"exports.main = async (event) => {
  try {
    const { url, ...init } = event.request
    const answer = await fetch(url, init)
    const headers = {}
    answer.headers.forEach((value, name) => { headers[name] = value })
    return { status: answer.status, statusText: answer.statusText, url: answer.url, headers, text: await answer.text() }
  } catch (error) {
    return { error: error.name + ': ' + error.message }
  }
}
";

/// An origin on 127.0.0.1: `/echo` answers 201 with the request's method,
/// `x-test` header, content type and body as JSON; `/moved` redirects to
/// `/echo` with 302; `/big` answers 2 MiB.
async fn origin() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(answer(socket));
        }
    });
    url
}

async fn answer(mut socket: TcpStream) {
    let mut request = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the request ends before its head does");
        request.extend_from_slice(&chunk[..n]);
        if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
    let header = |name: &str| {
        head.lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let length: usize = header("content-length").parse().unwrap_or(0);
    while request.len() < head_end + length {
        let n = socket.read(&mut chunk).await.unwrap();
        request.extend_from_slice(&chunk[..n]);
    }
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap(), words.next().unwrap());
    let (status, extra, body) = match path {
        "/echo" => {
            let echoed = serde_json::json!({
                "method": method,
                "xTest": header("x-test"),
                "contentType": header("content-type"),
                "body": String::from_utf8_lossy(&request[head_end..]),
            });
            ("201 Created", "x-origin: test\r\n", echoed.to_string())
        }
        "/moved" => ("302 Found", "location: /echo\r\n", String::new()),
        "/big" => ("200 OK", "", "x".repeat(2 * 1024 * 1024)),
        _ => ("404 Not Found", "", String::new()),
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = socket.write_all(answer.as_bytes()).await;
}

/// A server that lets the js engine fetch `allowed`, with FETCHER deployed.
fn serving_fetcher(allowed: &str) -> (TestServer, tempfile::TempDir) {
    let server = TestServer::start(&[
        "--admin-key",
        ADMIN,
        "--js-fetch-allow",
        allowed,
        "--js-fetch-max-response-bytes",
        "1048576",
    ]);
    let root = tempfile::tempdir().unwrap();
    let dir = support::write_js_function(root.path(), "fetcher", FETCHER, "{}");
    let out = server.cli(&["deploy", &dir, "--key", ADMIN]);
    assert!(out.status.success(), "{out:?}");
    (server, root)
}

async fn fetch(server: &TestServer, request: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}/v1/functions/fetcher", server.url))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({ "request": request }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_post_to_an_allowed_origin_carries_its_headers_and_body_and_answers_in_full() {
    let origin = origin().await;
    let (server, _root) = serving_fetcher(&origin);
    let answer = fetch(
        &server,
        serde_json::json!({
            "url": format!("{origin}/echo"),
            "method": "post",
            "headers": {"X-Test": "yes", "Content-Type": "application/json"},
            "body": "{\"n\":1}",
        }),
    )
    .await;
    assert_eq!(answer["status"], 201, "{answer}");
    assert_eq!(answer["statusText"], "Created");
    assert_eq!(answer["headers"]["x-origin"], "test");
    let echoed: Value = serde_json::from_str(answer["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        echoed,
        serde_json::json!({"method": "POST", "xTest": "yes", "contentType": "application/json", "body": "{\"n\":1}"})
    );
}

#[tokio::test]
async fn a_redirect_on_an_allowed_origin_is_followed_and_a_redirected_post_turns_into_a_get() {
    let origin = origin().await;
    let (server, _root) = serving_fetcher(&origin);
    let answer = fetch(
        &server,
        serde_json::json!({"url": format!("{origin}/moved"), "method": "POST", "body": "gone"}),
    )
    .await;
    assert_eq!(answer["status"], 201, "{answer}");
    let echoed: Value = serde_json::from_str(answer["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        echoed["method"], "GET",
        "a POST redirected by 302 continues as a GET"
    );
    assert_eq!(echoed["body"], "");
}

#[tokio::test]
async fn an_origin_the_server_does_not_allow_is_refused_with_the_setting_that_would_allow_it() {
    let origin = origin().await;
    let (server, _root) = serving_fetcher("https://api.example.com");
    let answer = fetch(
        &server,
        serde_json::json!({"url": format!("{origin}/echo")}),
    )
    .await;
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("TypeError: fetch failed:") && error.contains("--js-fetch-allow"),
        "{answer}"
    );
}

#[tokio::test]
async fn an_answer_over_the_response_limit_fails_the_fetch_and_the_server_goes_on() {
    let origin = origin().await;
    let (server, _root) = serving_fetcher(&origin);
    let answer = fetch(&server, serde_json::json!({"url": format!("{origin}/big")})).await;
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(error.contains("over 1048576 bytes"), "{answer}");
    let again = fetch(
        &server,
        serde_json::json!({"url": format!("{origin}/echo")}),
    )
    .await;
    assert_eq!(again["status"], 201, "{again}");
}

#[test]
fn serve_refuses_an_allowed_origin_that_is_not_an_origin() {
    let out = std::process::Command::new(support::cloudlet_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--js-fetch-allow"])
        .arg("https://api.example.com/v1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("without a path"), "{stderr}");
}
